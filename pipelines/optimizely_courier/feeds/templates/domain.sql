[[ header ]]
{{ config(alias=courier_alias('[[ feed.domain_table ]]'), unique_key='_pk') }}
{%- set feed = courier_feed('[[ feed.id ]]', '[[ feed.courier ]]', '[[ feed.tag ]]') %}
{% set q = courier_quote %}
-- built after the rejected rows, whose error threshold test stops this model in `dbt build`:
-- depends_on: {{ ref('[[ feed.model_name ]]__rejected') }}
-- [[ feed.domain_table ]]: one row per [[ feed.primary_key | join(", ") ]]; the newest [[ winner ]] wins.
-- Built by the courier_domain materialization (macros/materializations.sql: the build's mode, the record).
-- Queries run while dbt compiles this model (macros/courier.sql), each deciding its SQL:
--   courier_keys_unique        are the window's keys unique? If not, `winners` ranks them first
--   courier_in_window          the window's load ids, written as literals the scan prunes on
--   courier_window_keys_new    on DuckDB: are all the window's keys new to the table (its key index,
--                              macros/keys.sql)? Then no row of the table can beat them, and it is not read
--   courier_incremental_rows   on Spark only: the date partitions the new rows touch

-- Keys unique in the window (the usual case): the rows stream straight through. Otherwise the winning
-- row of each key is decided on the key and the winner order alone, so the wide rows are never ranked.
{% set unique = courier_keys_unique([[ staging ]], feed) %}
with {% if not unique %}winners as (
    select _load_id, _file, _file_row
    from (
        select
            [[ ranked_columns | join(", ") ]],
            row_number() over (partition by _pk order by [[ ranking | join(", ") ]]) as _rank
        from {{ [[ staging ]] }}
        where _reject_reason is null and {{ courier_in_window(feed) }}
    ) as ranked
    where _rank = 1
),

{% endif %}incoming as (
    select
        [[ columns | join(",\n        ") ]]
    from {{ [[ staging ]] }}
    where _reject_reason is null and {{ courier_in_window(feed) }}
{% if not unique %}
        and (_load_id, _file, _file_row) in (select _load_id, _file, _file_row from winners)
{% endif %}
),

-- An incremental build writes the incoming rows no row of the table beats (on Spark, with the rest of the
-- date partitions they touch, which it overwrites).
final as (
{% if courier_window_keys_new([[ staging ]], feed) %}
    select * from incoming
{% else %}
    {{ courier_incremental_rows('incoming', ['_pk'], [[ order ]], [[ staging ]]) }}
{% endif %}
)

select * from final
