-- generated from [[ path ]]; do not edit
{{ config(materialized='table', schema='experiments', tags=['experiments', '[[ experiment.id ]]']) }}
-- Experiment [[ experiment_text ]]: per variation and metric, the sufficient statistics
-- `courier results` tests on (units, total, mean, sample variance).

[% for metric in metrics %]
select
    variation_id,
    '[[ metric.name ]]' as metric,
    '[[ metric.kind ]]' as kind,
    count(*) as units,
    sum([[ metric.name ]]) as total,
    avg([[ metric.name ]]) as mean,
    coalesce(var_samp([[ metric.name ]]), 0) as variance
from {{ ref('exp_[[ experiment.id ]]__observations') }}
group by variation_id
[% if not loop.last %]
union all
[% endif %]
[% endfor %]
