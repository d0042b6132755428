-- generated from experiments/demo_checkout.yml; do not edit
{{ config(materialized='table', schema='experiments', tags=['experiments', 'demo_checkout']) }}
-- Experiment 9300000001: per variation and metric, the sufficient statistics
-- `courier results` tests on (units, total, mean, sample variance).

select
    variation_id,
    'purchase_rate' as metric,
    'unique' as kind,
    count(*) as units,
    sum(purchase_rate) as total,
    avg(purchase_rate) as mean,
    coalesce(var_samp(purchase_rate), 0) as variance
from {{ ref('exp_demo_checkout__observations') }}
group by variation_id
union all
select
    variation_id,
    'purchases_per_visitor' as metric,
    'count' as kind,
    count(*) as units,
    sum(purchases_per_visitor) as total,
    avg(purchases_per_visitor) as mean,
    coalesce(var_samp(purchases_per_visitor), 0) as variance
from {{ ref('exp_demo_checkout__observations') }}
group by variation_id
union all
select
    variation_id,
    'revenue_per_visitor' as metric,
    'sum' as kind,
    count(*) as units,
    sum(revenue_per_visitor) as total,
    avg(revenue_per_visitor) as mean,
    coalesce(var_samp(revenue_per_visitor), 0) as variance
from {{ ref('exp_demo_checkout__observations') }}
group by variation_id
