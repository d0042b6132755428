-- generated from experiments/demo_checkout.yml; do not edit
{{ config(materialized='table', schema='experiments', tags=['experiments', 'demo_checkout']) }}
-- Experiment 9300000001: per variation and metric, the sufficient statistics
-- `courier results` tests on (units, total, mean, sample variance).

-- one row per unit and metric
with observations as (
    select variation_id, 'purchase_rate' as metric, 'unique' as kind, purchase_rate as observation
    from {{ ref('exp_demo_checkout__observations') }}
    union all
    select variation_id, 'purchases_per_visitor' as metric, 'count' as kind, purchases_per_visitor as observation
    from {{ ref('exp_demo_checkout__observations') }}
    union all
    select variation_id, 'revenue_per_visitor' as metric, 'sum' as kind, revenue_per_visitor as observation
    from {{ ref('exp_demo_checkout__observations') }}
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
