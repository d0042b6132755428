-- generated from feeds/optimizely/decisions.yml; do not edit
{{ courier_require_landed('optimizely', 'decisions') }}
{% set q = adapter.quote %}
-- Optimizely:Decisions: raw_optimizely.decisions rows extracted, cast, keyed and checked.

with source as (
    select * from {{ source('raw_optimizely', 'decisions') }}
),

extracted as (
    select
        {{ q('uuid') }} as {{ q('_src__uuid') }},
        {{ q('timestamp') }} as {{ q('_src__decided_at') }},
        {{ q('process_timestamp') }} as {{ q('_src__processed_at') }},
        {{ q('visitor_id') }} as {{ q('_src__visitor_id') }},
        {{ q('session_id') }} as {{ q('_src__session_id') }},
        {{ q('account_id') }} as {{ q('_src__account_id') }},
        {{ q('campaign_id') }} as {{ q('_src__campaign_id') }},
        {{ q('experiment_id') }} as {{ q('_src__experiment_id') }},
        {{ q('variation_id') }} as {{ q('_src__variation_id') }},
        {{ q('is_holdback') }} as {{ q('_src__is_holdback') }},
        {{ q('attributes') }} as {{ q('_src__attributes') }},
        {{ courier_lookup(q('attributes'), 'plan') }} as {{ q('_src__plan') }},
        {{ courier_lookup(q('attributes'), 'country') }} as {{ q('_src__country') }},
        {{ courier_lookup(q('attributes'), 'device') }} as {{ q('_src__device') }},
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
        {{ courier_try_cast(q('_src__decided_at'), 'timestamp with time zone') }} as {{ q('decided_at') }},
        {{ courier_try_cast(q('_src__processed_at'), 'timestamp with time zone') }} as {{ q('processed_at') }},
        {{ courier_text(q('_src__visitor_id')) }} as {{ q('visitor_id') }},
        {{ courier_text(q('_src__session_id')) }} as {{ q('session_id') }},
        {{ courier_text(q('_src__account_id')) }} as {{ q('account_id') }},
        {{ courier_text(q('_src__campaign_id')) }} as {{ q('campaign_id') }},
        {{ courier_text(q('_src__experiment_id')) }} as {{ q('experiment_id') }},
        {{ courier_text(q('_src__variation_id')) }} as {{ q('variation_id') }},
        {{ courier_try_cast(q('_src__is_holdback'), 'boolean') }} as {{ q('is_holdback') }},
        {{ courier_text(q('_src__attributes')) }} as {{ q('attributes') }},
        {{ courier_text(q('_src__plan')) }} as {{ q('plan') }},
        {{ courier_text(q('_src__country')) }} as {{ q('country') }},
        {{ courier_text(q('_src__device')) }} as {{ q('device') }},
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
            coalesce('; ' || case when {{ q('_src__decided_at') }} is not null and {{ q('decided_at') }} is null
                 then 'decided_at: cannot cast ' || left({{ courier_text(q('_src__decided_at')) }}, 80) || ' to Datetime' end, ''),
            coalesce('; ' || case when {{ q('_src__processed_at') }} is not null and {{ q('processed_at') }} is null
                 then 'processed_at: cannot cast ' || left({{ courier_text(q('_src__processed_at')) }}, 80) || ' to Datetime' end, ''),
            coalesce('; ' || case when {{ q('_src__visitor_id') }} is null then 'visitor_id: required value missing' end, ''),
            coalesce('; ' || case when {{ q('_src__experiment_id') }} is null then 'experiment_id: required value missing' end, ''),
            coalesce('; ' || case when {{ q('_src__variation_id') }} is null then 'variation_id: required value missing' end, ''),
            coalesce('; ' || case when {{ q('_src__is_holdback') }} is not null and {{ q('is_holdback') }} is null
                 then 'is_holdback: cannot cast ' || left({{ courier_text(q('_src__is_holdback')) }}, 80) || ' to Boolean' end, '')
        ), 3), '') as _reject_reason
    from typed
),

final as (
    select
        {{ q('uuid') }},
        {{ q('decided_at') }},
        {{ q('processed_at') }},
        {{ q('visitor_id') }},
        {{ q('session_id') }},
        {{ q('account_id') }},
        {{ q('campaign_id') }},
        {{ q('experiment_id') }},
        {{ q('variation_id') }},
        {{ q('is_holdback') }},
        {{ q('attributes') }},
        {{ q('plan') }},
        {{ q('country') }},
        {{ q('device') }},
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
        {{ q('_src__decided_at') }},
        {{ q('_src__processed_at') }},
        {{ q('_src__visitor_id') }},
        {{ q('_src__session_id') }},
        {{ q('_src__account_id') }},
        {{ q('_src__campaign_id') }},
        {{ q('_src__experiment_id') }},
        {{ q('_src__variation_id') }},
        {{ q('_src__is_holdback') }},
        {{ q('_src__attributes') }},
        {{ q('_src__plan') }},
        {{ q('_src__country') }},
        {{ q('_src__device') }},
        {{ q('_src__user_ip') }},
        {{ q('_src__user_agent') }},
        {{ q('_src__referer') }},
        {{ q('_src__revision') }},
        {{ q('_src__client_engine') }},
        {{ q('_src__client_version') }}
    from checked
)

select * from final
