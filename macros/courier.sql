{#-
  Macros the generated feed models are written in. Each dispatches, so an engine without DuckDB's
  SQL can override it (`spark__courier_lookup`, ...); the default is DuckDB SQL.
  Nested E3 fields land as JSON text in the raw tables.
-#}

{#- Schemas are used as written (`domain`, `staging`), not prefixed with the target schema. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {{ custom_schema_name | trim if custom_schema_name else target.schema }}
{%- endmacro %}


{#- The relation name of a domain table. `Source:Feed` as is where quoted names may hold a colon
    (DuckDB, Snowflake); `Source__Feed` on engines whose table names cannot (Spark, Databricks,
    BigQuery, Athena). -#}
{% macro courier_alias(name) -%}
  {{ return(adapter.dispatch('courier_alias')(name)) }}
{%- endmacro %}

{% macro default__courier_alias(name) -%}
  {{ return(name) }}
{%- endmacro %}

{% macro spark__courier_alias(name) -%}
  {{ return(name | replace(':', '__')) }}
{%- endmacro %}

{% macro databricks__courier_alias(name) -%}
  {{ return(name | replace(':', '__')) }}
{%- endmacro %}

{% macro bigquery__courier_alias(name) -%}
  {{ return(name | replace(':', '__')) }}
{%- endmacro %}

{% macro athena__courier_alias(name) -%}
  {{ return(name | replace(':', '__') | lower) }}
{%- endmacro %}


{#- On-run-start: raw tables that live as Parquet in a lake (Spark) are registered first. -#}
{% macro courier_register_lake() -%}
  {{ return(adapter.dispatch('courier_register_lake')()) }}
{%- endmacro %}

{% macro default__courier_register_lake() -%}
{%- endmacro %}


{#- A value by key: the `value` of the attribute named `key` in a list of {name, value} structs
    (E3 `attributes`), or the entry `key` of a map (E3 `tags`). -#}
{% macro courier_lookup(column, key) -%}
  {{ return(adapter.dispatch('courier_lookup')(column, key)) }}
{%- endmacro %}

{% macro default__courier_lookup(column, key) -%}
  case when json_type({{ column }}) = 'ARRAY'
       then json_extract_string(list_filter(cast({{ column }} as json[]),
                lambda a: json_extract_string(a, '$.name') = {{ courier_string(key) }})[1], '$.value')
       else json_extract_string({{ column }}, {{ courier_string('$."' ~ key ~ '"') }})
  end
{%- endmacro %}


{#- The current element of the list a feed unnests (see courier_unnest). -#}
{% macro courier_element() -%}
  {{ return(adapter.dispatch('courier_element')()) }}
{%- endmacro %}

{% macro default__courier_element() -%}
  _element
{%- endmacro %}


{#- One field of a struct (or of the current element of an unnested list). -#}
{% macro courier_field(column, field) -%}
  {{ return(adapter.dispatch('courier_field')(column, field)) }}
{%- endmacro %}

{% macro default__courier_field(column, field) -%}
  json_extract_string({{ column }}, {{ courier_string('$."' ~ field ~ '"') }})
{%- endmacro %}


{#- Joins one row per element of a list column; the element is `_element`. Rows with an empty or
    null list produce no rows. -#}
{% macro courier_unnest(column) -%}
  {{ return(adapter.dispatch('courier_unnest')(column)) }}
{%- endmacro %}

{% macro default__courier_unnest(column) -%}
  cross join unnest(cast({{ column }} as json[])) as _unnested(_element)
{%- endmacro %}


{#- A SQL string literal. -#}
{% macro courier_string(text) -%}
  {{ return(adapter.dispatch('courier_string')(text)) }}
{%- endmacro %}

{% macro default__courier_string(text) -%}
  '{{ text | replace("'", "''") }}'
{%- endmacro %}


{#- Cast that yields null instead of failing; failures are reported as rejected rows. -#}
{% macro courier_try_cast(expression, data_type) -%}
  {{ return(adapter.dispatch('courier_try_cast')(expression, data_type)) }}
{%- endmacro %}

{% macro default__courier_try_cast(expression, data_type) -%}
  try_cast({{ expression }} as {{ data_type }})
{%- endmacro %}


{#- A value as text, for keys and messages. -#}
{% macro courier_text(expression) -%}
  cast({{ expression }} as {{ dbt.type_string() }})
{%- endmacro %}


{#- `_pk`: key columns as text, escaped and joined with '|', so composite keys never collide. -#}
{% macro courier_pk(columns) -%}
  {{ return(adapter.dispatch('courier_pk')(columns)) }}
{%- endmacro %}

{% macro default__courier_pk(columns) -%}
  {%- if columns | length == 1 -%}
    {{ courier_text(columns[0]) }}
  {%- else -%}
    concat(
    {%- for column in columns -%}
      {{ ", '|', " if not loop.first }}replace(replace({{ courier_text(column) }}, {{ courier_string('\\') }},
        {{ courier_string('\\\\') }}), {{ courier_string('|') }}, {{ courier_string('\\|') }})
    {%- endfor -%})
  {%- endif -%}
{%- endmacro %}


{#- `_uuid_pk`: a deterministic UUID (from the MD5 of `_pk`). -#}
{% macro courier_uuid(expression) -%}
  {{ return(adapter.dispatch('courier_uuid')(expression)) }}
{%- endmacro %}

{% macro default__courier_uuid(expression) -%}
  cast(md5({{ expression }}) as uuid)
{%- endmacro %}


{#- `_updated` of a row: when its load happened (dlt load ids are epoch seconds). -#}
{% macro courier_load_time(load_id) -%}
  {{ return(adapter.dispatch('courier_load_time')(load_id)) }}
{%- endmacro %}

{% macro default__courier_load_time(load_id) -%}
  to_timestamp(cast({{ load_id }} as double))
{%- endmacro %}


{#- `is_incremental()`, except in a compile-only check for an engine that cannot be reached here
    (`--vars '{courier_compile_only: true}'`), which renders the full-build SQL without a connection. -#}
{% macro courier_is_incremental() -%}
  {{ return(false if var('courier_compile_only', false) else is_incremental()) }}
{%- endmacro %}


{#- Which raw rows a build reads. A courier run names its files per feed (`courier_files`): the
    newest landing of each of those files. Otherwise an incremental build reads the loads after the
    newest one already in the table, and a full build reads everything. -#}
{% macro courier_window(staging, feed_id) -%}
  {{ return(adapter.dispatch('courier_window')(staging, feed_id)) }}
{%- endmacro %}

{% macro courier_files_window(staging, files) -%}
  {%- if files | length == 0 -%}
    1 = 0
  {%- else -%}
    (_file, _load_id) in (
        select _file, max(_load_id) from {{ staging }}
        where _file in ({% for f in files %}{{ courier_string(f) }}{{ ", " if not loop.last }}{% endfor %})
        group by _file)
  {%- endif -%}
{%- endmacro %}

{% macro default__courier_window(staging, feed_id) -%}
  {%- set files = var('courier_files', {}) -%}
  {%- if feed_id in files -%}
    {{ courier_files_window(staging, files[feed_id]) }}
  {%- elif courier_is_incremental() -%}
    _load_id > (select coalesce(max(_load_id), '') from {{ this }})
  {%- else -%}
    1 = 1
  {%- endif -%}
{%- endmacro %}


{#- Pre-hook of a domain model: a courier run whose load operations truncate this feed empties the
    table first, in the same transaction as the load, so a failed load leaves it as it was. -#}
{% macro courier_truncate(feed_id) -%}
  {%- if courier_is_incremental() and feed_id in var('courier_truncate', []) -%}
    delete from {{ this }}
  {%- endif -%}
{%- endmacro %}


{#- Fails the model, before it changes anything, when too many of the window's rows are rejected. -#}
{% macro courier_check_error_threshold(staging, feed_id, threshold, domain_table, feed_file) -%}
  {%- if execute and not var('courier_compile_only', false) -%}
    {%- set window = courier_window(staging, feed_id) -%}
    {%- set counts = run_query("select count(*), count(_reject_reason) from " ~ staging ~ " where " ~ window) -%}
    {%- set total, rejected = counts.rows[0][0], counts.rows[0][1] -%}
    {%- if total > 0 and rejected / total > threshold -%}
      {{ exceptions.raise_compiler_error(
           "feed " ~ domain_table ~ " (" ~ feed_file ~ "): " ~ rejected ~ " of " ~ total ~ " rows rejected ("
           ~ "%.2f" | format(100 * rejected / total) ~ "%), over the error threshold of "
           ~ "%.2f" | format(100 * threshold) ~ "%; the domain table is unchanged. The reasons are in "
           ~ domain_table ~ "__rejected") }}
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}
