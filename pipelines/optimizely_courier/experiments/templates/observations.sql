-- generated from [[ path ]]; do not edit
[% if incremental %]
{{ config(materialized='courier_observations', schema='experiments', tags=['experiments', '[[ experiment.id ]]']) }}
[% else %]
{{ config(materialized='table', schema='experiments', tags=['experiments', '[[ experiment.id ]]']) }}
[% endif %]
{% set q = courier_quote %}
[% for source in sources if source.check %]
[[ source.check ]]
[% endfor %]
-- Experiment [[ experiment_text ]]: one row per unit (a visitor's first decision, holdback
-- left out) and a column per metric, from the unit's events within [[ window_text ]] of its decision.
[% if incremental %]
-- On DuckDB an incremental build (see macros/experiments.sql) computes again only the units of the
-- visitors with decisions or conversions built since the last one, and replaces their rows.
[% else %]
-- Rebuilt whole on each build: a metric reads a model (`from`) whose changes are not recorded.
[% endif %]

with [% if incremental %]{% if courier_is_incremental() %}touched as (
    select visitor_id from {{ ref('[[ decisions ]]') }}
    where experiment_id = [[ experiment_literal ]] and {{ courier_built_since('[[ decisions_feed ]]') }}
    union
    select visitor_id from {{ ref('[[ conversions ]]') }}
    where {{ courier_built_since('[[ conversions_feed ]]') }}
),

{% endif %}[% endif %]units as (
    -- a visitor's first decision; `is_multiple_exposure` when its decisions name more than one variation
    select visitor_id, variation_id, decided_at, is_multiple_exposure[% for column in segments %], [[ column.sql ]][% endfor %]

    from (
        select
            visitor_id,
            variation_id,
            decided_at,
            min(variation_id) over (partition by visitor_id)
                <> max(variation_id) over (partition by visitor_id) as is_multiple_exposure,
[% for column in segments %]
            [[ column.sql ]],
[% endfor %]
            row_number() over (partition by visitor_id order by decided_at, uuid) as _rank
        from {{ ref('[[ decisions ]]') }}
        where experiment_id = [[ experiment_literal ]]
            and not coalesce(is_holdback, false)
[% if incremental %]
{% if courier_is_incremental() %}
            and visitor_id in (select visitor_id from touched)
{% endif %}
[% endif %]
    ) as ranked
    where _rank = 1
),
[% for source in sources %]

-- per unit, the metrics of [[ source.text ]]: its rows within the window
[[ source.name ]] as (
    select
        units.visitor_id,
[% for metric in source.metrics %]
        [[ metric.sql ]] as [[ metric.name ]][[ "," if not loop.last ]]
[% endfor %]
    from units
    join {{ ref('[[ source.model ]]') }} as attributed
        on attributed.[[ source.visitor_id ]] = units.visitor_id
        and [[ source.time ]] between [[ window_start ]]
            and units.decided_at + interval [[ window_seconds ]] second
    group by units.visitor_id
),
[% endfor %]

final as (
    select
        units.visitor_id,
        units.variation_id,
        units.decided_at,
        units.is_multiple_exposure,
[% for column in segments %]
        units.[[ column.sql ]],
[% endfor %]
[% for metric in metrics %]
        coalesce([[ metric.source ]].[[ metric.name ]], 0) as [[ metric.name ]][[ "," if not loop.last ]]
[% endfor %]
    from units
[% for source in sources %]
    left join [[ source.name ]] on [[ source.name ]].visitor_id = units.visitor_id
[% endfor %]
)

select * from final
