-- generated from [[ path ]]; do not edit
{{ config(materialized='table', schema='experiments', tags=['experiments', '[[ experiment.id ]]']) }}
{% set q = courier_quote %}
-- Experiment [[ experiment_text ]]: one row per unit (a visitor's first decision, holdback
-- left out) and a column per metric, from the unit's conversions within [[ window_text ]] of its decision.

with units as (
    select visitor_id, variation_id, decided_at
    from (
        select
            visitor_id,
            variation_id,
            decided_at,
            row_number() over (partition by visitor_id order by decided_at, uuid) as _rank
        from {{ ref('[[ decisions ]]') }}
        where experiment_id = [[ experiment_literal ]]
            and not coalesce(is_holdback, false)
    ) as ranked
    where _rank = 1
),

attributed as (
    select
        units.visitor_id,
        conversions.event_name,
[% for column in columns %]
        conversions.[[ column ]],
[% endfor %]
        conversions.converted_at
    from units
    join {{ ref('[[ conversions ]]') }} as conversions
        on conversions.visitor_id = units.visitor_id
        and conversions.converted_at between units.decided_at
                                         and units.decided_at + interval [[ window_seconds ]] second
)

select
    units.visitor_id,
    units.variation_id,
    units.decided_at,
[% for metric in metrics %]
    [[ metric.sql ]] as [[ metric.name ]][[ "," if not loop.last ]]
[% endfor %]
from units
left join attributed on attributed.visitor_id = units.visitor_id
group by units.visitor_id, units.variation_id, units.decided_at
