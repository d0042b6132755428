-- generated from experiments/demo_checkout.yml; do not edit
{{ config(materialized='table', schema='experiments', tags=['experiments', 'demo_checkout']) }}
{% set q = courier_quote %}
-- Experiment 9300000001: one row per unit (a visitor's first decision, holdback
-- left out) and a column per metric, from the unit's conversions within 48 hours of its decision.

with units as (
    select visitor_id, variation_id, decided_at
    from (
        select
            visitor_id,
            variation_id,
            decided_at,
            row_number() over (partition by visitor_id order by decided_at, uuid) as _rank
        from {{ ref('optimizely__decisions') }}
        where experiment_id = '9300000001'
            and not coalesce(is_holdback, false)
    ) as ranked
    where _rank = 1
),

attributed as (
    select
        units.visitor_id,
        conversions.event_name,
        conversions.revenue_cents,
        conversions.converted_at
    from units
    join {{ ref('optimizely__conversions') }} as conversions
        on conversions.visitor_id = units.visitor_id
        and conversions.converted_at between units.decided_at
                                         and units.decided_at + interval 172800 second
)

select
    units.visitor_id,
    units.variation_id,
    units.decided_at,
    coalesce(max(case when attributed.event_name = 'purchase' then 1 end), 0) as purchase_rate,
    count(case when attributed.event_name = 'purchase' then 1 end) as purchases_per_visitor,
    coalesce(sum(case when attributed.event_name = 'purchase' then attributed.revenue_cents end), 0) as revenue_per_visitor
from units
left join attributed on attributed.visitor_id = units.visitor_id
group by units.visitor_id, units.variation_id, units.decided_at
