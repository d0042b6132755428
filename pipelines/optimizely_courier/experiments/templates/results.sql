-- generated from [[ path ]]; do not edit
{{ config(materialized='table', schema='experiments', tags=['experiments', '[[ experiment.id ]]']) }}
-- Experiment [[ experiment_text ]]: per variation and metric, the sufficient statistics
-- `courier results` tests on (units, total, mean, sample variance).

-- one row per unit and metric
with observations as (
[% for metric in metrics %]
    select variation_id, '[[ metric.name ]]' as metric, '[[ metric.kind ]]' as kind, [[ metric.name ]] as observation
    from {{ ref('exp_[[ experiment.id ]]__observations') }}
[% if not loop.last %]
    union all
[% endif %]
[% endfor %]
)

select
    variation_id,
    metric,
    kind,
    count(*) as units,
    sum(observation) as total,
    avg(observation) as mean,
    coalesce(var_samp(observation), 0) as variance
from observations
group by variation_id, metric, kind
