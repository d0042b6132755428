-- generated from feeds/optimizely/decisions.yml; do not edit
{{ config(alias=courier_alias('Optimizely:Decisions'), unique_key='_pk', pre_hook="{{ courier_truncate('df-7k2m9q') }}") }}
{% set q = adapter.quote %}
-- depends_on: {{ ref('optimizely__decisions__rejected') }}
{{ courier_check_error_threshold(ref('stg_optimizely__decisions'), 'df-7k2m9q', 0.01, 'Optimizely:Decisions', 'feeds/optimizely/decisions.yml') }}
-- Optimizely:Decisions: one row per uuid; the newest load wins.

with incoming as (
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
        _pk,
        _uuid_pk,
        _updated,
        _load_id,
        _file,
        _file_date,
        _file_row
    from {{ ref('stg_optimizely__decisions') }}
    where _reject_reason is null and {{ courier_window(ref('stg_optimizely__decisions'), 'df-7k2m9q') }}
),

{% if courier_is_incremental() %}
current_rows as (
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
        _pk,
        _uuid_pk,
        _updated,
        _load_id,
        _file,
        _file_date,
        _file_row
    from {{ this }}
    where _pk in (select _pk from incoming)
),

candidates as (
    select *, 1 as _is_new from incoming
    union all
    select *, 0 as _is_new from current_rows
),
{% else %}
candidates as (
    select *, 1 as _is_new from incoming
),
{% endif %}

ranked as (
    select
        *,
        row_number() over (partition by _pk order by _updated desc, _file_date desc, _file desc, _file_row desc, _is_new desc) as _rank
    from candidates
)

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
    _pk,
    _uuid_pk,
    _updated,
    _load_id,
    _file,
    _file_date,
    _file_row
from ranked
where _rank = 1 and _is_new = 1
