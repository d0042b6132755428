-- generated from experiments/demo_checkout.yml; do not edit
{{ config(materialized='table', schema='experiments', tags=['experiments', 'demo_checkout']) }}
-- Experiment 9300000001: per variation and metric, the sufficient statistics
-- `courier results` tests on (units, total, mean, variance).

-- the units the results count: a visitor decided into more than one variation is left out
with units as (
    select * from {{ ref('exp_demo_checkout__observations') }}
    where not is_multiple_exposure
),

-- where the metrics capped at a quantile are capped (winsorized): that quantile of all the units'
-- values, pooled over the variations (one row)
caps as (
    select
        percentile_cont(0.99) within group (order by units.revenue_per_visitor) as revenue_per_visitor__cap
    from units
),

-- one row per unit, metric and segment (`all`, then each segment column's): its observation, over 1
-- (or, for a ratio, over the denominator metric's), and its CUPED covariate (the value before the
-- decision; 0 without), each capped where its metric is
observations as (
    select variation_id, 'all' as segment,
        'all' as segment_value,
        'purchase_rate' as metric, 'unique' as kind,
        units.purchase_rate as observation, 1 as denominator,
        0 as covariate, 0 as nonfinite,
        cast(null as double) as cap, cast(null as double) as covariate_cap
    from units cross join caps
    union all
    select variation_id, 'all' as segment,
        'all' as segment_value,
        'purchases_per_visitor' as metric, 'count' as kind,
        units.purchases_per_visitor as observation, 1 as denominator,
        0 as covariate, 0 as nonfinite,
        cast(null as double) as cap, cast(null as double) as covariate_cap
    from units cross join caps
    union all
    select variation_id, 'all' as segment,
        'all' as segment_value,
        'revenue_per_visitor' as metric, 'sum' as kind,
        least(units.revenue_per_visitor, caps.revenue_per_visitor__cap) as observation, 1 as denominator,
        0 as covariate, units.revenue_per_visitor__nonfinite as nonfinite,
        caps.revenue_per_visitor__cap as cap, cast(null as double) as covariate_cap
    from units cross join caps
),

sums as (
    select
        variation_id,
        segment,
        segment_value,
        metric,
        kind,
        count(*) as units,
        sum(observation) as total,
        sum(denominator) as denominator,
        var_samp(observation) as observation_variance,
        var_samp(denominator) as denominator_variance,
        covar_samp(observation, denominator) as covariance,
        sum(covariate) as covariate_total,
        var_samp(covariate) as covariate_variance,
        covar_samp(observation, covariate) as covariate_covariance,
        sum(nonfinite) as nonfinite_rows,
        max(cap) as cap,
        max(covariate_cap) as covariate_cap
    from observations
    group by variation_id, segment, segment_value, metric, kind
),

-- the mean is total / denominator; its variance per unit by the delta method (for a denominator of 1,
-- the observations' sample variance); the variances are NULL, undefined, with fewer than 2 units
final as (
    select
        variation_id,
        segment,
        segment_value,
        metric,
        kind,
        units,
        total,
        denominator,
        total / nullif(denominator, 0) as mean,
        (observation_variance
            - 2 * (total / nullif(denominator, 0)) * covariance
            + (total / nullif(denominator, 0)) * (total / nullif(denominator, 0)) * denominator_variance)
            / nullif((denominator / units) * (denominator / units), 0) as variance,
        covariate_total,
        covariate_variance,
        covariate_covariance,
        nonfinite_rows,
        cap,
        covariate_cap
    from sums
)

select * from final
