-- generated from feeds/optimizely/conversions.yml; do not edit
{{ courier_require_landed('optimizely', 'conversions') }}
{% set q = adapter.quote %}
-- Optimizely:Conversions: raw_optimizely.conversions rows extracted, cast, keyed and checked.

with source as (
    select * from {{ source('raw_optimizely', 'conversions') }}
),

extracted as (
    select
        {{ q('uuid') }} as {{ q('_src__uuid') }},
        {{ q('timestamp') }} as {{ q('_src__converted_at') }},
        {{ q('process_timestamp') }} as {{ q('_src__processed_at') }},
        {{ q('visitor_id') }} as {{ q('_src__visitor_id') }},
        {{ q('session_id') }} as {{ q('_src__session_id') }},
        {{ q('account_id') }} as {{ q('_src__account_id') }},
        {{ q('entity_id') }} as {{ q('_src__entity_id') }},
        {{ q('event_type') }} as {{ q('_src__event_type') }},
        {{ q('event_name') }} as {{ q('_src__event_name') }},
        {{ q('revenue') }} as {{ q('_src__revenue_cents') }},
        {{ q('value') }} as {{ q('_src__value') }},
        {{ q('quantity') }} as {{ q('_src__quantity') }},
        {{ q('experiments') }} as {{ q('_src__experiments') }},
        {{ q('attributes') }} as {{ q('_src__attributes') }},
        {{ q('tags') }} as {{ q('_src__tags') }},
        {{ courier_lookup(q('tags'), 'sku') }} as {{ q('_src__sku') }},
        {{ courier_lookup(q('tags'), 'category') }} as {{ q('_src__category') }},
        {{ courier_lookup(q('attributes'), 'plan') }} as {{ q('_src__plan') }},
        {{ q('user_ip') }} as {{ q('_src__user_ip') }},
        {{ q('user_agent') }} as {{ q('_src__user_agent') }},
        {{ q('referer') }} as {{ q('_src__referer') }},
        {{ q('revision') }} as {{ q('_src__revision') }},
        {{ q('client_engine') }} as {{ q('_src__client_engine') }},
        {{ q('client_version') }} as {{ q('_src__client_version') }},
        _dlt_load_id as _load_id,
        _file,
        _file_date,
        _file_row
    from source
),

typed as (
    select
        extracted.*,
        {{ courier_text(q('_src__uuid')) }} as {{ q('uuid') }},
        {{ courier_try_cast(q('_src__converted_at'), 'timestamp with time zone') }} as {{ q('converted_at') }},
        {{ courier_try_cast(q('_src__processed_at'), 'timestamp with time zone') }} as {{ q('processed_at') }},
        {{ courier_text(q('_src__visitor_id')) }} as {{ q('visitor_id') }},
        {{ courier_text(q('_src__session_id')) }} as {{ q('session_id') }},
        {{ courier_text(q('_src__account_id')) }} as {{ q('account_id') }},
        {{ courier_text(q('_src__entity_id')) }} as {{ q('entity_id') }},
        {{ courier_text(q('_src__event_type')) }} as {{ q('event_type') }},
        {{ courier_text(q('_src__event_name')) }} as {{ q('event_name') }},
        {{ courier_try_cast(q('_src__revenue_cents'), 'bigint') }} as {{ q('revenue_cents') }},
        {{ courier_try_cast(q('_src__value'), 'double') }} as {{ q('value') }},
        {{ courier_try_cast(q('_src__quantity'), 'bigint') }} as {{ q('quantity') }},
        {{ courier_text(q('_src__experiments')) }} as {{ q('experiments') }},
        {{ courier_text(q('_src__attributes')) }} as {{ q('attributes') }},
        {{ courier_text(q('_src__tags')) }} as {{ q('tags') }},
        {{ courier_text(q('_src__sku')) }} as {{ q('sku') }},
        {{ courier_text(q('_src__category')) }} as {{ q('category') }},
        {{ courier_text(q('_src__plan')) }} as {{ q('plan') }},
        {{ courier_text(q('_src__user_ip')) }} as {{ q('user_ip') }},
        {{ courier_text(q('_src__user_agent')) }} as {{ q('user_agent') }},
        {{ courier_text(q('_src__referer')) }} as {{ q('referer') }},
        {{ courier_text(q('_src__revision')) }} as {{ q('revision') }},
        {{ courier_text(q('_src__client_engine')) }} as {{ q('client_engine') }},
        {{ courier_text(q('_src__client_version')) }} as {{ q('client_version') }}
    from extracted
),

checked as (
    select
        typed.*,
        nullif(substr(concat(
            coalesce('; ' || case when {{ q('_src__uuid') }} is null then 'uuid: required value missing' end, ''),
            coalesce('; ' || case when {{ q('_src__converted_at') }} is not null and {{ q('converted_at') }} is null
                 then 'converted_at: cannot cast ' || left({{ courier_text(q('_src__converted_at')) }}, 80) || ' to Datetime' end, ''),
            coalesce('; ' || case when {{ q('_src__processed_at') }} is not null and {{ q('processed_at') }} is null
                 then 'processed_at: cannot cast ' || left({{ courier_text(q('_src__processed_at')) }}, 80) || ' to Datetime' end, ''),
            coalesce('; ' || case when {{ q('_src__visitor_id') }} is null then 'visitor_id: required value missing' end, ''),
            coalesce('; ' || case when {{ q('_src__revenue_cents') }} is not null and {{ q('revenue_cents') }} is null
                 then 'revenue_cents: cannot cast ' || left({{ courier_text(q('_src__revenue_cents')) }}, 80) || ' to Integer' end, ''),
            coalesce('; ' || case when {{ q('_src__value') }} is not null and {{ q('value') }} is null
                 then 'value: cannot cast ' || left({{ courier_text(q('_src__value')) }}, 80) || ' to Float' end, ''),
            coalesce('; ' || case when {{ q('_src__quantity') }} is not null and {{ q('quantity') }} is null
                 then 'quantity: cannot cast ' || left({{ courier_text(q('_src__quantity')) }}, 80) || ' to Integer' end, '')
        ), 3), '') as _reject_reason
    from typed
),

final as (
    select
        {{ q('uuid') }},
        {{ q('converted_at') }},
        {{ q('processed_at') }},
        {{ q('visitor_id') }},
        {{ q('session_id') }},
        {{ q('account_id') }},
        {{ q('entity_id') }},
        {{ q('event_type') }},
        {{ q('event_name') }},
        {{ q('revenue_cents') }},
        {{ q('value') }},
        {{ q('quantity') }},
        {{ q('experiments') }},
        {{ q('attributes') }},
        {{ q('tags') }},
        {{ q('sku') }},
        {{ q('category') }},
        {{ q('plan') }},
        {{ q('user_ip') }},
        {{ q('user_agent') }},
        {{ q('referer') }},
        {{ q('revision') }},
        {{ q('client_engine') }},
        {{ q('client_version') }},
        {{ courier_pk([q('uuid')]) }} as _pk,
        {{ courier_uuid(courier_pk([q('uuid')])) }} as _uuid_pk,
        {{ courier_load_time('_load_id') }} as _updated,
        _load_id,
        _file,
        _file_date,
        _file_row,
        _reject_reason,
        {{ q('_src__uuid') }},
        {{ q('_src__converted_at') }},
        {{ q('_src__processed_at') }},
        {{ q('_src__visitor_id') }},
        {{ q('_src__session_id') }},
        {{ q('_src__account_id') }},
        {{ q('_src__entity_id') }},
        {{ q('_src__event_type') }},
        {{ q('_src__event_name') }},
        {{ q('_src__revenue_cents') }},
        {{ q('_src__value') }},
        {{ q('_src__quantity') }},
        {{ q('_src__experiments') }},
        {{ q('_src__attributes') }},
        {{ q('_src__tags') }},
        {{ q('_src__sku') }},
        {{ q('_src__category') }},
        {{ q('_src__plan') }},
        {{ q('_src__user_ip') }},
        {{ q('_src__user_agent') }},
        {{ q('_src__referer') }},
        {{ q('_src__revision') }},
        {{ q('_src__client_engine') }},
        {{ q('_src__client_version') }}
    from checked
)

select * from final
