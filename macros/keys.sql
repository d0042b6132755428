{#-
  A domain table's key index (DuckDB): courier."keys__<feed id>", one row per row the table was built
  with, holding the hash of its key. An increment asks it whether any new key is in the table already,
  instead of reading the table's whole key column (strings) twice: at 30 M rows 0.2 s for the index's
  integers, against 1.1 s a read of the keys, each time. A new day's keys are new (the export
  de-duplicates by uuid), so the usual increment appends its rows as the model computes them (no
  temporary table) and reads no key of the table.

  The index may hold more than the table (rows since deleted, hash collisions), never less: every build
  of the domain table writes it in the same transaction (courier_index_keys). A key the index does not
  hold is not in the table; a key it holds may be, and is then looked up in the table itself. DuckDB's
  hash() is only stable within a version, so the index carries the hash of a fixed text as its comment
  and is made again from the table when that differs.
-#}

{% macro courier_key_index(feed) -%}
  {{ return(api.Relation.create(schema='courier', identifier='keys__' ~ feed.id)) }}
{%- endmacro %}

{#- The comment an index made by this DuckDB carries, as SQL: the hash of a fixed text. -#}
{% macro courier_key_index_stamp() -%}
  'courier-keys:' || cast(hash('optimizely-courier') as varchar)
{%- endmacro %}

{#- True when the feed's index exists and was made with this DuckDB's hash. -#}
{% macro courier_key_index_usable(feed) -%}
  {%- if target.type != 'duckdb' or not execute or var('courier_compile_only', false) -%}
    {{ return(false) }}
  {%- endif -%}
  {%- set index = courier_key_index(feed) -%}
  {%- set found = run_query("select count(*) from duckdb_tables() where database_name = current_database()"
                            ~ " and schema_name = " ~ courier_string(index.schema)
                            ~ " and table_name = " ~ courier_string(index.identifier)
                            ~ " and comment = " ~ courier_key_index_stamp()) -%}
  {{ return(found.columns[0].values()[0] > 0) }}
{%- endmacro %}

{#- The window's two key questions, asked together once per build of a domain model: are its keys unique
    (no two rows share one; the model then streams them without ranking), and, on DuckDB in an increment
    whose index is usable, is none of them in the table yet (no row of the table can beat them or be
    replaced by them, so the increment appends them without reading the table)? Keys are compared by
    hash: a collision only sends the build down the (equally correct) ranking or upsert path. Both false
    while parsing.
    The model's compile asks, and shapes its SQL by the answers; on DuckDB the answers are kept in a
    variable of dbt's connection to the node (named by the invocation and the feed), so the
    materialization writes the way the compiled SQL was shaped without asking the index again (0.2 s
    at 30 M keys). A build that finds no kept answer (another connection) asks again. -#}
{% macro courier_window_keys(staging, feed) -%}
  {%- if not execute or var('courier_compile_only', false) -%}
    {{ return({'unique': false, 'new': false}) }}
  {%- endif -%}
  {%- set kept = courier_kept_window_keys(feed) -%}
  {%- if kept is not none -%}
    {{ return(kept) }}
  {%- endif -%}
  {%- set window_keys = "select hash(_pk) as key_hash from " ~ staging ~ " where _reject_reason is null and "
                        ~ courier_in_window(feed) -%}
  {%- if courier_is_incremental() and courier_key_index_usable(feed) -%}
    {#- the index is scanned and the window's keys are the hash table it probes, not the other way round
        (100 M keys in the index, a window of 3.3 M: 0.7 s, against 1.3 s) -#}
    {%- set row = run_query("with window_keys as materialized (" ~ window_keys ~ ") select"
                            ~ " (select count(*) from window_keys) = (select count(distinct key_hash) from window_keys),"
                            ~ " (select count(*) from " ~ courier_key_index(feed)
                            ~ " where key_hash in (select key_hash from window_keys)) = 0").rows[0] -%}
    {%- set answer = {'unique': row[0], 'new': row[1]} -%}
  {%- else -%}
    {%- set row = run_query("select count(*), count(distinct key_hash) from (" ~ window_keys ~ ") as window_keys").rows[0] -%}
    {%- set answer = {'unique': row[0] == row[1], 'new': false} -%}
  {%- endif -%}
  {%- if target.type == 'duckdb' -%}
    {%- do run_query("set variable courier_window_keys = {'build': " ~ courier_window_keys_build(feed)
                     ~ ", 'unique': " ~ ('true' if answer.unique else 'false')
                     ~ ", 'new': " ~ ('true' if answer.new else 'false') ~ "}") -%}
  {%- endif -%}
  {{ return(answer) }}
{%- endmacro %}

{#- The build whose answers the variable holds, as an SQL literal: this invocation's, for this feed. -#}
{% macro courier_window_keys_build(feed) -%}
  {{ return(courier_string(invocation_id ~ '/' ~ feed.id)) }}
{%- endmacro %}

{#- The answers courier_window_keys gave earlier in this build, or none. -#}
{% macro courier_kept_window_keys(feed) -%}
  {%- if target.type != 'duckdb' -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set kept = run_query("select answer['unique'], answer['new'] from (select getvariable('courier_window_keys')"
                           ~ " as answer) as kept where answer['build'] = "
                           ~ courier_window_keys_build(feed)).rows -%}
  {{ return({'unique': kept[0][0], 'new': kept[0][1]} if kept | length else none) }}
{%- endmacro %}

{% macro courier_keys_unique(staging, feed) -%}
  {{ return(courier_window_keys(staging, feed).unique) }}
{%- endmacro %}

{% macro courier_window_keys_new(staging, feed) -%}
  {{ return(courier_window_keys(staging, feed).new) }}
{%- endmacro %}


{#- After a domain table's build, in its transaction: an increment adds the keys of its rows (`new_rows`,
    a relation or a query in parentheses with a `_pk` column) to a usable index; any other build (first,
    full, truncate, an index missing or made by another DuckDB) makes the index again from the whole table. -#}
{% macro courier_index_keys(feed, relation, new_rows) -%}
  {%- set index = courier_key_index(feed) -%}
  {%- if new_rows is not none and courier_key_index_usable(feed) -%}
    insert into {{ index }} (key_hash) select hash(_pk) from {{ new_rows }} as new_rows
  {%- else -%}
    {%- set stamp = run_query("select " ~ courier_key_index_stamp()).columns[0].values()[0] -%}
    create or replace table {{ index }} as select hash(_pk) as key_hash from {{ relation }};
    comment on table {{ index }} is {{ courier_string(stamp) }}
  {%- endif -%}
{%- endmacro %}
