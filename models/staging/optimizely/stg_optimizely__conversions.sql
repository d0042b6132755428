-- generated from feeds/optimizely/conversions.yml; do not edit
{{ courier_require_landed('optimizely', 'conversions') }}
{% set q = courier_quote %}
-- Optimizely:Conversions: raw_optimizely.conversions rows extracted, cast, keyed and checked.
-- A view (the courier_staging materialization); while compiling, courier_require_landed asks whether
-- anything has been landed (if not, the build stops with what to run first).

with source as (
    select * from {{ source('raw_optimizely', 'conversions') }}
),

extracted as (
    select
        uuid as _src__uuid,
        {{ q('timestamp') }} as _src__converted_at,
        process_timestamp as _src__processed_at,
        visitor_id as _src__visitor_id,
        session_id as _src__session_id,
        account_id as _src__account_id,
        entity_id as _src__entity_id,
        event_type as _src__event_type,
        event_name as _src__event_name,
        revenue as _src__revenue_cents,
        value as _src__value,
        quantity as _src__quantity,
        experiments as _src__experiments,
        attributes as _src__attributes,
        tags as _src__tags,
        {{ courier_lookup('tags', 'sku') }} as _src__sku,
        {{ courier_lookup('tags', 'category') }} as _src__category,
        {{ courier_lookup('attributes', 'plan') }} as _src__plan,
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
        {{ courier_try_cast('_src__converted_at', 'timestamp with time zone') }} as converted_at,
        {{ courier_try_cast('_src__processed_at', 'timestamp with time zone') }} as processed_at,
        {{ courier_text('_src__visitor_id') }} as visitor_id,
        {{ courier_text('_src__session_id') }} as session_id,
        {{ courier_text('_src__account_id') }} as account_id,
        {{ courier_text('_src__entity_id') }} as entity_id,
        {{ courier_text('_src__event_type') }} as event_type,
        {{ courier_text('_src__event_name') }} as event_name,
        {{ courier_try_cast('_src__revenue_cents', 'bigint') }} as revenue_cents,
        {{ courier_try_cast('_src__value', 'double') }} as value,
        {{ courier_try_cast('_src__quantity', 'bigint') }} as quantity,
        {{ courier_text('_src__experiments') }} as experiments,
        {{ courier_text('_src__attributes') }} as attributes,
        {{ courier_text('_src__tags') }} as tags,
        {{ courier_text('_src__sku') }} as sku,
        {{ courier_text('_src__category') }} as category,
        {{ courier_text('_src__plan') }} as plan,
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
            coalesce('; ' || case when _src__converted_at is not null and converted_at is null
            then 'converted_at: cannot cast ' || left({{ courier_text('_src__converted_at') }}, 80) || ' to Datetime' end, ''),
            coalesce('; ' || case when _src__processed_at is not null and processed_at is null
            then 'processed_at: cannot cast ' || left({{ courier_text('_src__processed_at') }}, 80) || ' to Datetime' end, ''),
            coalesce('; ' || case when _src__visitor_id is null then 'visitor_id: required value missing' end, ''),
            coalesce('; ' || case when _src__revenue_cents is not null and revenue_cents is null
            then 'revenue_cents: cannot cast ' || left({{ courier_text('_src__revenue_cents') }}, 80) || ' to Integer' end, ''),
            coalesce('; ' || case when _src__value is not null and value is null
            then 'value: cannot cast ' || left({{ courier_text('_src__value') }}, 80) || ' to Float' end, ''),
            coalesce('; ' || case when _src__quantity is not null and quantity is null
            then 'quantity: cannot cast ' || left({{ courier_text('_src__quantity') }}, 80) || ' to Integer' end, '')
        ), 3), '') as _reject_reason
    from typed
)

select * from final
