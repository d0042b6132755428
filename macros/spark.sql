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


{#- Incremental on Spark: Parquet tables cannot delete rows, so the domain and rejected tables are
    partitioned by `_file_date` and a build overwrites the date partitions it touches (dbt-spark's
    insert_overwrite, dynamic partition overwrite). A new day costs its own rows plus the partitions
    that held an older version of one of its keys; the rest of the history is not rewritten.

    The record (which landed file versions each table holds) is the same as on DuckDB, append-only:
    a full build or a truncate starts a new generation of a feed's rows, and only the newest
    generation counts. A build that dies before its post-hook leaves the record as it was, and the
    next build reads those files again (newest-wins makes that a no-op). -#}

{% macro spark__courier_prepare_record() -%}
  {%- if execute -%}
    {%- do run_query('create database if not exists courier') -%}
    {%- do run_query('create table if not exists courier.built_files (file string, load_id string, definition string,'
                     ~ ' excluded boolean, built_at timestamp, generation timestamp, feed_id string)'
                     ~ ' using parquet partitioned by (feed_id)') -%}
    {%- do run_query('create table if not exists courier.builds (invocation_id string, feed_id string, mode string,'
                     ~ ' started_at timestamp) using parquet') -%}
    {%- do run_query('create table if not exists courier.key_checks (feed_id string, checked_through timestamp)'
                     ~ ' using parquet') -%}
  {%- endif -%}
{%- endmacro %}

{#- (no ETags here: a file landed again after a drop is built again) -#}
{% macro spark__courier_record(feed) -%}
  select file, load_id, definition, excluded, cast(null as string) as etag from courier.built_files
  where feed_id = {{ courier_string(feed.id) }} and file is not null
    and generation = (select max(generation) from courier.built_files where feed_id = {{ courier_string(feed.id) }})
{%- endmacro %}

{#- A full rebuild also for a truncate (rows cannot be deleted), and for a table without a record
    (built before the record existed: not partitioned the way an incremental build needs). -#}
{% macro spark__courier_definition_changed(feed) -%}
  {%- if feed.id in var('courier_truncate', {}) -%}
    {{ return(true) }}
  {%- endif -%}
  {%- set feed_rows = "from courier.built_files where feed_id = " ~ courier_string(feed.id) -%}
  {%- set counts = run_query("select count(*), count(case when not excluded and definition <> "
                             ~ courier_string(feed.definition) ~ " then 1 end) " ~ feed_rows
                             ~ " and generation = (select max(generation) " ~ feed_rows ~ ")").rows[0] -%}
  {{ return(counts[0] == 0 or counts[1] > 0) }}
{%- endmacro %}

{#- The incoming rows no row of the table beats, and the rest of the date partitions they touch:
    the table's rows there that no incoming row replaces. The touched partitions are looked up first
    (the dates of the window's files, and, when `source` is given, of the table's rows that share a
    key with the window's rows in it: a scan of the table's key column) and written into the SQL, so
    the build reads only those partitions of the table. A touched date left with no row at all (every
    row of it replaced from a newer date) is written as one tombstone row, a null `_pk`, whose
    partition the post-hook drops: an insert overwrite cannot empty a partition it writes no row to. -#}
{% macro spark__courier_incremental_rows(rows, key, order, source) -%}
{%- if not courier_is_incremental() -%}
select * from {{ rows }}
{%- else -%}
{%- set columns = [] -%}
{%- for column in adapter.get_columns_in_relation(this) -%}
  {%- do columns.append(adapter.quote(column.name)) -%}
{%- endfor -%}
{%- set touched = spark_touched_dates(courier_model_feed(), key, source) -%}
{%- set in_touched = "current_row._file_date in (" ~ (touched | join(", ") if touched else "null") ~ ")" -%}
{%- set same_key -%}
  {%- for column in key %}current_row.{{ column }} = incoming_row.{{ column }}{{ ' and ' if not loop.last }}{% endfor -%}
{%- endset -%}
select {{ columns | join(', ') }} from (
    with kept_incoming as (
        select * from {{ rows }} as incoming_row
        where not exists (select 1 from {{ this }} as current_row
                          where {{ in_touched }} and {{ same_key }} and {{ courier_newer('current_row', 'incoming_row', order) }})
    ),
    written as (
        select {{ columns | join(', ') }} from kept_incoming
        union all
        select current_row.{{ columns | join(', current_row.') }}
        from {{ this }} as current_row
        where {{ in_touched }} and not exists (select 1 from kept_incoming as incoming_row where {{ same_key }})
    )
    select * from written
    {%- for date in touched %}
    union all
    select {% for column in columns %}{{ date if column == adapter.quote('_file_date') else 'null' }} as {{ column }}{{ ', ' if not loop.last }}{% endfor %}
    where not exists (select 1 from written where written._file_date = {{ date }})
    {%- endfor %}
)
{%- endif -%}
{%- endmacro %}

{#- The date partitions (as SQL literals) an incremental build of `feed` may change: its window's file
    dates, and the dates of the table's rows whose `key` is in the window's rows of `source`. -#}
{% macro spark_touched_dates(feed, key, source) -%}
  {%- set sql -%}
    select landed.file_date from ({{ courier_landed(feed) }}) as landed
    where (landed.file, landed.load_id) in (select file, load_id from ({{ courier_window(feed) }}) as window_files)
    {%- if source is not none %}
    union
    select current_row._file_date from {{ this }} as current_row
    where (current_row.{{ key | join(', current_row.') }}) in (
        select {{ key | join(', ') }} from {{ source }} where _reject_reason is null and {{ courier_in_window(feed) }})
    {%- endif %}
  {%- endset -%}
  {%- set dates = [] -%}
  {%- for row in run_query("select distinct cast(file_date as string) from (" ~ sql ~ ") as touched") -%}
    {%- do dates.append("date " ~ courier_string(row[0])) -%}
  {%- endfor -%}
  {{ return(dates | sort) }}
{%- endmacro %}

{#- Before the build: note it (Spark runs no transaction: the record is written after the table). -#}
{% macro spark__courier_note_build(feed, mode, rebuild) -%}
  {%- do run_query("insert into courier.builds values (" ~ courier_string(invocation_id) ~ ", "
                   ~ courier_string(feed.id) ~ ", " ~ courier_string(mode) ~ ", current_timestamp())") -%}
{%- endmacro %}

{#- After the build: drop the partitions left holding only a tombstone, then record the window's file
    versions (in a new generation after a full build or a truncate, with the versions it excluded). -#}
{% macro spark__courier_record_build(feed, mode) -%}
    {%- for row in run_query("select distinct cast(_file_date as string) from " ~ this ~ " where _pk is null") -%}
      {%- do run_query("alter table " ~ this ~ " drop if exists partition (_file_date = " ~ courier_string(row[0]) ~ ")") -%}
    {%- endfor -%}
    {%- set generation = "current_timestamp()" if mode != 'incremental' else
          "(select max(generation) from courier.built_files where feed_id = " ~ courier_string(feed.id) ~ ")" -%}
    {%- set excluded -%}
      {%- if mode == 'truncate' -%}
        select landed.file, landed.load_id from ({{ courier_landed(feed) }}) as landed
        where not ({{ courier_truncate_dates(feed, 'landed.file_date') }})
      {%- elif mode == 'full' -%}
        select built.file, built.load_id from ({{ courier_record(feed) }}) as built where built.excluded
      {%- endif -%}
    {%- endset -%}
    {%- do run_query("insert into courier.built_files partition (feed_id = " ~ courier_string(feed.id) ~ ")"
                     ~ " select file, load_id, " ~ courier_string(feed.definition) ~ ", excluded, current_timestamp(), "
                     ~ generation ~ " from (select window_files.file, window_files.load_id, false as excluded from ("
                     ~ courier_window(feed, mode) ~ ") as window_files"
                     ~ (" union all select cast(null as string), cast(null as string), false" if mode != 'incremental' else "")
                     ~ (" union all select file, load_id, true from (" ~ excluded ~ ") as excluded_files" if excluded else "")
                     ~ ") as record") -%}
{%- endmacro %}


{#- The feed models' materializations on Spark: dbt-spark's incremental steps with the courier's
    modes (macros/materializations.sql). Parquet tables cannot delete rows and Spark runs no
    transaction, so an increment overwrites the date partitions it touches (courier_incremental_rows
    writes their whole new content), and the record is written after the table (see above). -#}
{% materialization courier_domain, adapter='spark' %}
  {{ return(spark_courier_build_feed_table(records=true)) }}
{% endmaterialization %}

{% materialization courier_rejected, adapter='spark' %}
  {{ return(spark_courier_build_feed_table(records=false)) }}
{% endmaterialization %}

{% macro spark_courier_build_feed_table(records) %}
  {%- set feed = courier_model_feed() -%}
  {%- set existing_relation = load_relation(this) -%}
  {%- set target_relation = this -%}
  {%- set rebuild = courier_rebuilds(feed) -%}
  {%- set mode = courier_build_mode(feed) -%}
  {%- if mode == 'incremental' and courier_window_is_empty(feed) -%}
    {%- call statement('main') -%} select 0 {%- endcall -%}
    {{ return({'relations': [target_relation]}) }}
  {%- endif -%}

  {%- call statement() -%} set spark.sql.sources.partitionOverwriteMode = DYNAMIC {%- endcall -%}
  {{ run_hooks(pre_hooks) }}
  {%- if records -%}
    {%- do courier_note_build(feed, mode, rebuild) -%}
  {%- endif -%}
  {%- if rebuild -%}
    {%- if existing_relation is not none -%}
      {%- do adapter.drop_relation(existing_relation) -%}
    {%- endif -%}
    {%- call statement('main') -%} {{ create_table_as(False, target_relation, sql) }} {%- endcall -%}
  {%- else -%}
    {%- set temp_relation = this.incorporate(path={"identifier": this.identifier ~ '__dbt_tmp'}).include(
          database=false, schema=false) -%}
    {%- call statement('create_tmp_relation') -%} {{ create_table_as(True, temp_relation, sql) }} {%- endcall -%}
    {%- call statement('main') -%} {{ get_insert_overwrite_sql(temp_relation, target_relation, existing_relation) }} {%- endcall -%}
  {%- endif -%}
  {%- if records -%}
    {%- do courier_record_build(feed, mode) -%}
  {%- endif -%}
  {% do persist_docs(target_relation, model) %}
  {{ run_hooks(post_hooks) }}
  {{ return({'relations': [target_relation]}) }}
{% endmacro %}
