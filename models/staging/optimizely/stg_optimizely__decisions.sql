-- generated from feeds/optimizely/decisions.yml; do not edit
{{ courier_require_landed('optimizely', 'decisions') }}
{% set q = courier_quote %}
-- Optimizely:Decisions: raw_optimizely.decisions rows extracted, cast, keyed and checked.
-- A view (the courier_staging materialization); while compiling, courier_require_landed asks whether
-- anything has been landed (if not, the build stops with what to run first).

with source as (
    select * from {{ source('raw_optimizely', 'decisions') }}
),

extracted as (
    select
        uuid as _src__uuid,
        {{ q('timestamp') }} as _src__decided_at,
        process_timestamp as _src__processed_at,
        visitor_id as _src__visitor_id,
        session_id as _src__session_id,
        account_id as _src__account_id,
        campaign_id as _src__campaign_id,
        experiment_id as _src__experiment_id,
        variation_id as _src__variation_id,
        is_holdback as _src__is_holdback,
        attributes as _src__attributes,
        {{ courier_lookup('attributes', 'plan') }} as _src__plan,
        {{ courier_lookup('attributes', 'country') }} as _src__country,
        {{ courier_lookup('attributes', 'device') }} as _src__device,
        user_ip as _src__user_ip,
        user_agent as _src__user_agent,
        referer as _src__referer,
        revision as _src__revision,
        client_engine as _src__client_engine,
        client_version as _src__client_version,
        _dlt_load_id as _load_id,
        _file,
        _file_date,
        _file_row
    from source
),

typed as (
    select
        extracted.*,
        {{ courier_text('_src__uuid') }} as uuid,
        {{ courier_try_cast('_src__decided_at', 'timestamp with time zone') }} as decided_at,
        {{ courier_try_cast('_src__processed_at', 'timestamp with time zone') }} as processed_at,
        {{ courier_text('_src__visitor_id') }} as visitor_id,
        {{ courier_text('_src__session_id') }} as session_id,
        {{ courier_text('_src__account_id') }} as account_id,
        {{ courier_text('_src__campaign_id') }} as campaign_id,
        {{ courier_text('_src__experiment_id') }} as experiment_id,
        {{ courier_text('_src__variation_id') }} as variation_id,
        {{ courier_try_cast('_src__is_holdback', 'boolean') }} as is_holdback,
        {{ courier_text('_src__attributes') }} as attributes,
        {{ courier_text('_src__plan') }} as plan,
        {{ courier_text('_src__country') }} as country,
        {{ courier_text('_src__device') }} as device,
        {{ courier_text('_src__user_ip') }} as user_ip,
        {{ courier_text('_src__user_agent') }} as user_agent,
        {{ courier_text('_src__referer') }} as referer,
        {{ courier_text('_src__revision') }} as revision,
        {{ courier_text('_src__client_engine') }} as client_engine,
        {{ courier_text('_src__client_version') }} as client_version
    from extracted
),

-- the feed's columns, the raw values they came from (for the rejected rows), the key and lineage
final as (
    select
        typed.*,
        {{ courier_pk(['uuid']) }} as _pk,
        {{ courier_uuid(courier_pk(['uuid'])) }} as _uuid_pk,
        {{ courier_load_time('_load_id') }} as _updated,
        nullif(substr(concat(
            coalesce('; ' || case when _src__uuid is null then 'uuid: required value missing' end, ''),
            coalesce('; ' || case when _src__decided_at is not null and decided_at is null
            then 'decided_at: cannot cast ' || left({{ courier_text('_src__decided_at') }}, 80) || ' to Datetime' end, ''),
            coalesce('; ' || case when _src__processed_at is not null and processed_at is null
            then 'processed_at: cannot cast ' || left({{ courier_text('_src__processed_at') }}, 80) || ' to Datetime' end, ''),
            coalesce('; ' || case when _src__visitor_id is null then 'visitor_id: required value missing' end, ''),
            coalesce('; ' || case when _src__experiment_id is null then 'experiment_id: required value missing' end, ''),
            coalesce('; ' || case when _src__variation_id is null then 'variation_id: required value missing' end, ''),
            coalesce('; ' || case when _src__is_holdback is not null and is_holdback is null
            then 'is_holdback: cannot cast ' || left({{ courier_text('_src__is_holdback') }}, 80) || ' to Boolean' end, '')
        ), 3), '') as _reject_reason
    from typed
)

select * from final
