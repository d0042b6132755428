-- generated from [[ path ]]; do not edit
{{ config(materialized='table', schema='experiments', tags=['experiments', '[[ experiment.id ]]']) }}
-- Experiment [[ experiment_text ]]: per variation and metric, the sufficient statistics
-- `courier results` tests on (units, total, mean, variance).

[% if exclude %]
-- the units the results count: a visitor decided into more than one variation is left out
[% else %]
-- the units the results count: all, a visitor decided into more than one variation in its first one
[% endif %]
with units as (
    select * from {{ ref('exp_[[ experiment.id ]]__observations') }}
[% if exclude %]
    where not is_multiple_exposure
[% endif %]
),
[% if caps %]

-- where the metrics capped at a quantile are capped (winsorized): that quantile of all the units'
-- values, pooled over the variations (one row)
caps as (
    select
[% for cap in caps %]
        [[ cap.sql ]] as [[ cap.name ]][[ "," if not loop.last ]]
[% endfor %]
    from units
),
[% endif %]

-- one row per unit, metric and segment (`all`, then each segment column's): its observation, over 1
-- (or, for a ratio, over the denominator metric's), and its CUPED covariate (the value before the
-- decision; 0 without), each capped where its metric is
observations as (
[% for segment in [{"name": "all", "sql": "'all'"}] + segments %]
[% for metric in results %]
    select variation_id, '[[ segment.name ]]' as segment,
        [[ segment.sql if segment.name == "all" else "cast(units." ~ segment.sql ~ " as {{ dbt.type_string() }})" ]] as segment_value,
        '[[ metric.name ]]' as metric, '[[ metric.kind ]]' as kind,
        [[ metric.observation ]] as observation, [[ metric.denominator ]] as denominator,
        [[ metric.covariate ]] as covariate, [[ metric.nonfinite ]] as nonfinite,
        [[ metric.cap ]] as cap, [[ metric.covariate_cap ]] as covariate_cap
    from units[[ " cross join caps" if caps ]]
[% if not loop.last %]
    union all
[% endif %]
[% endfor %]
[% if not loop.last %]
    union all
[% endif %]
[% endfor %]
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
