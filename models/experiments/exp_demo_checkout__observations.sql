-- generated from experiments/demo_checkout.yml; do not edit
{{ config(materialized='courier_observations', schema='experiments', tags=['experiments', 'demo_checkout']) }}
{% set q = courier_quote %}
-- Experiment 9300000001: one row per unit (a visitor's first decision, holdback
-- left out) and a column per metric, from the unit's events within 48 hours of its decision.
-- On DuckDB an incremental build (see macros/experiments.sql) computes again only the units of the
-- visitors with decisions or conversions built since the last one, and replaces their rows.

with {% if courier_is_incremental() %}touched as (
    select visitor_id from {{ ref('optimizely__decisions') }}
    where experiment_id = '9300000001' and {{ courier_built_since('df-7k2m9q') }}
    union
    select visitor_id from {{ ref('optimizely__conversions') }}
    where {{ courier_built_since('df-3p8x1w') }}
),

{% endif %}units as (
    -- a visitor's first decision; `is_multiple_exposure` when its decisions name more than one variation
    select visitor_id, variation_id, decided_at, is_multiple_exposure
    from (
        select
            visitor_id,
            variation_id,
            decided_at,
            min(variation_id) over (partition by visitor_id)
                <> max(variation_id) over (partition by visitor_id) as is_multiple_exposure,
            row_number() over (partition by visitor_id order by decided_at, uuid) as _rank
        from {{ ref('optimizely__decisions') }}
        where experiment_id = '9300000001'
            and not coalesce(is_holdback, false)
{% if courier_is_incremental() %}
            and visitor_id in (select visitor_id from touched)
{% endif %}
    ) as ranked
    where _rank = 1
),

-- per unit, the metrics of `Optimizely:Conversions`: its rows within the window
from_optimizely__conversions as (
    select
        units.visitor_id,
        max(case when attributed.event_name = 'purchase' then 1 else 0 end) as purchase_rate,
        count(case when attributed.event_name = 'purchase' then 1 end) as purchases_per_visitor,
        sum(case when attributed.event_name = 'purchase' and {{ courier_is_finite('attributed.revenue_cents') }} then attributed.revenue_cents end) as revenue_per_visitor,
        count(case when attributed.event_name = 'purchase' and not {{ courier_is_finite('attributed.revenue_cents') }} then 1 end) as revenue_per_visitor__nonfinite
    from units
    join {{ ref('optimizely__conversions') }} as attributed
        on attributed.visitor_id = units.visitor_id
        and attributed.converted_at between units.decided_at
            and units.decided_at + interval 172800 second
    group by units.visitor_id
),

final as (
    select
        units.visitor_id,
        units.variation_id,
        units.decided_at,
        units.is_multiple_exposure,
        coalesce(from_optimizely__conversions.purchase_rate, 0) as purchase_rate,
        coalesce(from_optimizely__conversions.purchases_per_visitor, 0) as purchases_per_visitor,
        coalesce(from_optimizely__conversions.revenue_per_visitor, 0) as revenue_per_visitor,
        coalesce(from_optimizely__conversions.revenue_per_visitor__nonfinite, 0) as revenue_per_visitor__nonfinite
    from units
    left join from_optimizely__conversions on from_optimizely__conversions.visitor_id = units.visitor_id
)

select * from final
