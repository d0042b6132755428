-- generated from feeds/optimizely/conversions.yml; do not edit
{{ config(alias=courier_alias('Optimizely:Conversions__rejected'), unique_key=['_load_id', '_file', '_file_row']) }}
{%- set feed = courier_feed('df-3p8x1w', 'optimizely', 'conversions') %}
{% set q = adapter.quote %}
-- Optimizely:Conversions: rows that failed a cast or missed a required value, with the raw values as text.

select
    _reject_reason,
    {{ courier_text(q('_src__uuid')) }} as {{ q('uuid') }},
    {{ courier_text(q('_src__converted_at')) }} as {{ q('converted_at') }},
    {{ courier_text(q('_src__processed_at')) }} as {{ q('processed_at') }},
    {{ courier_text(q('_src__visitor_id')) }} as {{ q('visitor_id') }},
    {{ courier_text(q('_src__session_id')) }} as {{ q('session_id') }},
    {{ courier_text(q('_src__account_id')) }} as {{ q('account_id') }},
    {{ courier_text(q('_src__entity_id')) }} as {{ q('entity_id') }},
    {{ courier_text(q('_src__event_type')) }} as {{ q('event_type') }},
    {{ courier_text(q('_src__event_name')) }} as {{ q('event_name') }},
    {{ courier_text(q('_src__revenue_cents')) }} as {{ q('revenue_cents') }},
    {{ courier_text(q('_src__value')) }} as {{ q('value') }},
    {{ courier_text(q('_src__quantity')) }} as {{ q('quantity') }},
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
    {{ courier_text(q('_src__client_version')) }} as {{ q('client_version') }},
    _load_id,
    _file,
    _file_date,
    _file_row
from {{ ref('stg_optimizely__conversions') }}
where _reject_reason is not null and {{ courier_in_window(feed) }}
