{#-
  Spark SQL versions of the feed macros (dbt-spark dispatches to `spark__`). In the lake, nested E3
  columns are native Parquet lists, maps and structs; the raw views registered here turn them into
  JSON text, exactly as DuckDB holds them, so the same feed SQL gives the same values.
-#}

{% macro spark__courier_register_lake() -%}
  {%- if execute -%}
    {%- set lake = env_var('COURIER_LAKE', '') -%}
    {%- if not lake -%}
      {{ exceptions.raise_compiler_error("COURIER_LAKE is not set: run dbt through the courier, or set it to the lake location") }}
    {%- endif -%}
    {%- for source in graph.sources.values() -%}
      {%- set files = source.schema ~ '.' ~ source.name ~ '__files' -%}
      {%- do run_query('create database if not exists ' ~ source.schema) -%}
      {#- recreated each run, so columns that new files add are seen (the files stay where they are) -#}
      {%- do run_query('drop table if exists ' ~ files) -%}
      {#- dlt records completed loads as JSON lines; everything else lands as Parquet -#}
      {%- set format = "json" if source.name == "_dlt_loads" else "parquet options (mergeSchema 'true')" -%}
      {%- do run_query("create table " ~ files ~ " using " ~ format ~ " location '"
                       ~ lake ~ "/" ~ source.schema ~ "/" ~ source.name ~ "'") -%}
      {%- set columns = adapter.get_columns_in_relation(api.Relation.create(schema=source.schema,
                                                                            identifier=source.name ~ '__files')) -%}
      {%- set selected = [] -%}
      {%- for column in columns -%}
        {%- set name = adapter.quote(column.name) -%}
        {%- if column.dtype.lower().startswith(('array', 'map', 'struct')) -%}
          {#- nulls kept ("name": null), as DuckDB's JSON has them -#}
          {%- do selected.append('to_json(' ~ name ~ ", map('ignoreNullFields', 'false')) as " ~ name) -%}
        {%- else -%}
          {%- do selected.append(name) -%}
        {%- endif -%}
      {%- endfor -%}
      {%- do run_query('create or replace view ' ~ source.schema ~ '.' ~ source.name ~ ' as select '
                       ~ selected | join(', ') ~ ' from ' ~ files) -%}
    {%- endfor -%}
  {%- endif -%}
{%- endmacro %}


{#- Spark string literals escape with a backslash, not by doubling the quote. -#}
{% macro spark__courier_string(text) -%}
  '{{ text | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}


{% macro spark_json_field(element, name) -%}
  get_json_object({{ element }}, '$.{{ name }}')
{%- endmacro %}

{% macro spark__courier_lookup(column, key, by) -%}
  case when substr(ltrim({{ column }}), 1, 1) = '['
       then get_json_object(element_at(filter(from_json({{ column }}, 'array<string>'),
                a -> {{ courier_attribute_key(spark_json_field, 'a', by) }} = {{ courier_string(key) }}), 1), '$.value')
       else from_json({{ column }}, 'map<string,string>')[{{ courier_string(key) }}]
  end
{%- endmacro %}


{% macro spark__courier_field(column, field) -%}
  get_json_object({{ column }}, {{ courier_string("$['" ~ field ~ "']") }})
{%- endmacro %}


{% macro spark__courier_unnest(column) -%}
  lateral view explode(from_json({{ column }}, 'array<string>')) _unnested as _element
{%- endmacro %}


{% macro spark__courier_try_cast(expression, data_type) -%}
  {%- set spark_types = {'timestamp with time zone': 'timestamp', 'varchar': 'string'} -%}
  try_cast({{ expression }} as {{ spark_types.get(data_type, data_type) }})
{%- endmacro %}


{% macro spark__courier_uuid(expression) -%}
  regexp_replace(md5({{ expression }}), '^(.{8})(.{4})(.{4})(.{4})(.{12})$', '$1-$2-$3-$4-$5')
{%- endmacro %}


{% macro spark__courier_load_time(load_id) -%}
  timestamp_seconds(cast({{ load_id }} as double))
{%- endmacro %}


{#- Spark tables are rebuilt whole, from every landed file version (or, for a truncate, those of the
    run's dates): there is no record of built versions to keep. -#}
{% macro spark__courier_window(feed, mode) -%}
  select landed.file, landed.load_id from ({{ courier_landed(feed) }}) as landed
  where {{ courier_truncate_dates(feed, 'landed.file_date') if mode == 'truncate' else '1 = 1' }}
{%- endmacro %}

{% macro spark__courier_definition_changed(feed) -%}
  {{ return(false) }}
{%- endmacro %}

{% macro spark__courier_prepare_record() -%}
{%- endmacro %}

{% macro spark__courier_before_build() -%}
{%- endmacro %}

{% macro spark__courier_after_build() -%}
{%- endmacro %}
