-- generated from feeds/optimizely/decisions.yml; do not edit
{{ config(alias=courier_alias('Optimizely:Decisions__rejected'), unique_key=['_load_id', '_file', '_file_row']) }}
{%- set feed = courier_feed('df-7k2m9q', 'optimizely', 'decisions') %}
{% set q = courier_quote %}
-- Optimizely:Decisions: rows that failed a cast or missed a required value, with the raw values as text.
-- Built by the courier_rejected materialization (macros/materializations.sql: the build's mode, the record).
-- Queries run while dbt compiles this model (macros/courier.sql), each deciding its SQL:
--   courier_rejected_in_window   any rejected rows in the window? If none, the model reads nothing
--   courier_in_window            the window's load ids, written as literals the scan prunes on
--   courier_incremental_rows     on Spark only: the date partitions the new rows touch

with incoming as (
select
    _reject_reason,
    {{ courier_text('_src__uuid') }} as uuid,
    {{ courier_text('_src__decided_at') }} as decided_at,
    {{ courier_text('_src__processed_at') }} as processed_at,
    {{ courier_text('_src__visitor_id') }} as visitor_id,
    {{ courier_text('_src__session_id') }} as session_id,
    {{ courier_text('_src__account_id') }} as account_id,
    {{ courier_text('_src__campaign_id') }} as campaign_id,
    {{ courier_text('_src__experiment_id') }} as experiment_id,
    {{ courier_text('_src__variation_id') }} as variation_id,
    {{ courier_text('_src__is_holdback') }} as is_holdback,
    {{ courier_text('_src__attributes') }} as attributes,
    {{ courier_text('_src__plan') }} as plan,
    {{ courier_text('_src__country') }} as country,
    {{ courier_text('_src__device') }} as device,
    {{ courier_text('_src__user_ip') }} as user_ip,
    {{ courier_text('_src__user_agent') }} as user_agent,
    {{ courier_text('_src__referer') }} as referer,
    {{ courier_text('_src__revision') }} as revision,
    {{ courier_text('_src__client_engine') }} as client_engine,
    {{ courier_text('_src__client_version') }} as client_version,
    _load_id,
    _file,
    _file_date,
    _file_row
from {{ ref('stg_optimizely__decisions') }}
where {{ courier_rejected_in_window(feed, ref('stg_optimizely__decisions')) }}
),

-- (on Spark, an incremental build adds the rest of the date partitions it touches, which it overwrites)
final as (
    {{ courier_incremental_rows('incoming', ['_load_id', '_file', '_file_row']) }}
)

select * from final
