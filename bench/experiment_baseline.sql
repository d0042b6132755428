-- The obvious alternative to the courier's experiment results, for bench/experiment.py: hand-written
-- DuckDB SQL from the export's Parquet files straight to per-variation statistics of
-- experiments/demo_checkout.yml. A unit is a visitor's first decision in the experiment (holdback left
-- out), unless the visitor was decided into more than one variation; its purchases count from its
-- decision to 48 hours after it, both ends included; revenue is capped at its 99% quantile over the
-- units. Per variation and metric: units, total, mean and sample variance (what the results table's
-- statistics are computed from). {data} is the directory holding type=decisions/ and type=events/.

create or replace table results as
with decided as (
    select visitor_id, variation_id, "timestamp" as decided_at,
        min(variation_id) over (partition by visitor_id) <> max(variation_id) over (partition by visitor_id)
            as is_multiple_exposure
    from read_parquet('{data}/type=decisions/date=*/experiment=*/*.parquet')
    where experiment_id = '{experiment}' and not coalesce(is_holdback, false)
    qualify row_number() over (partition by visitor_id order by "timestamp", uuid) = 1
),

units as (
    select visitor_id, variation_id, decided_at from decided where not is_multiple_exposure
),

purchases as (
    select visitor_id, "timestamp" as converted_at, revenue
    from read_parquet('{data}/type=events/date=*/event=*/*.parquet')
    where event_name = 'purchase'
),

observations as (
    select
        units.variation_id,
        max(case when purchases.visitor_id is not null then 1 else 0 end) as purchase_rate,
        count(purchases.visitor_id) as purchases_per_visitor,
        coalesce(sum(purchases.revenue), 0) as revenue_per_visitor
    from units
    left join purchases
        on purchases.visitor_id = units.visitor_id
        and purchases.converted_at between units.decided_at and units.decided_at + interval 48 hour
    group by units.visitor_id, units.variation_id
),

capped as (
    select variation_id, purchase_rate, purchases_per_visitor,
        least(revenue_per_visitor, (select quantile_cont(revenue_per_visitor, 0.99) from observations))
            as revenue_per_visitor
    from observations
)

select variation_id, 'purchase_rate' as metric, count(*) as units, sum(purchase_rate) as total,
       avg(purchase_rate) as mean, var_samp(purchase_rate) as variance
from capped group by variation_id
union all
select variation_id, 'purchases_per_visitor', count(*), sum(purchases_per_visitor),
       avg(purchases_per_visitor), var_samp(purchases_per_visitor)
from capped group by variation_id
union all
select variation_id, 'revenue_per_visitor', count(*), sum(revenue_per_visitor),
       avg(revenue_per_visitor), var_samp(revenue_per_visitor)
from capped group by variation_id;
