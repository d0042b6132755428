-- generated from feeds/optimizely/decisions.yml; do not edit
{{ config(alias=courier_alias('Optimizely:Decisions__rejected'), unique_key=['_load_id', '_file', '_file_row']) }}
{%- set feed = courier_feed('df-7k2m9q', 'optimizely', 'decisions') %}
{% set q = adapter.quote %}
-- Optimizely:Decisions: rows that failed a cast or missed a required value, with the raw values as text.

select
    _reject_reason,
    {{ courier_text(q('_src__uuid')) }} as {{ q('uuid') }},
    {{ courier_text(q('_src__decided_at')) }} as {{ q('decided_at') }},
    {{ courier_text(q('_src__processed_at')) }} as {{ q('processed_at') }},
    {{ courier_text(q('_src__visitor_id')) }} as {{ q('visitor_id') }},
    {{ courier_text(q('_src__session_id')) }} as {{ q('session_id') }},
    {{ courier_text(q('_src__account_id')) }} as {{ q('account_id') }},
    {{ courier_text(q('_src__campaign_id')) }} as {{ q('campaign_id') }},
    {{ courier_text(q('_src__experiment_id')) }} as {{ q('experiment_id') }},
    {{ courier_text(q('_src__variation_id')) }} as {{ q('variation_id') }},
    {{ courier_text(q('_src__is_holdback')) }} as {{ q('is_holdback') }},
    {{ courier_text(q('_src__attributes')) }} as {{ q('attributes') }},
    {{ courier_text(q('_src__plan')) }} as {{ q('plan') }},
    {{ courier_text(q('_src__country')) }} as {{ q('country') }},
    {{ courier_text(q('_src__device')) }} as {{ q('device') }},
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
from {{ ref('stg_optimizely__decisions') }}
where _reject_reason is not null and {{ courier_in_window(feed) }}
