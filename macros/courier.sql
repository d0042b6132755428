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

{#- (the Hive metastore keeps names in lower case: dbt would not find a mixed-case one again) -#}
{% macro spark__courier_alias(name) -%}
  {{ return(name | replace(':', '__') | lower) }}
{%- endmacro %}

{% macro databricks__courier_alias(name) -%}
  {{ return(name | replace(':', '__') | lower) }}
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


{#- A value by key: the `value` of an attribute in a list of {id, name, type, value} structs (E3
    `attributes`), or the entry `key` of a map (E3 `tags`). An attribute matches on `by`: its
    `name`, `type` or `id`; by default its name, or, when it has none (the built-in attributes of
    Optimizely Web exports: browserId, device, campaign, source_type), its type. -#}
{% macro courier_lookup(column, key, by='name-or-type') -%}
  {{ return(adapter.dispatch('courier_lookup')(column, key, by)) }}
{%- endmacro %}

{#- The attribute field `by` names, for one element `element` read with `field(element, name)`. -#}
{% macro courier_attribute_key(field, element, by) -%}
  {%- if by == 'name-or-type' -%}
    coalesce({{ field(element, 'name') }}, {{ field(element, 'type') }})
  {%- else -%}
    {{ field(element, by) }}
  {%- endif -%}
{%- endmacro %}

{#- A list is parsed once into structs of just the fields the lookup reads (text, as json_extract_string
    gives them): about three times faster than reading each element's fields from JSON. No CASE on the
    JSON's type: from_json gives NULL for anything but a list, and outside a CASE DuckDB parses the list
    once for all the lookups of a column in one select (three lookups: 0.7 s -> 0.35 s per 1 M rows).
    The key of an object (a map such as E3 `tags`) is read only where the list gave no value. -#}
{% macro default__courier_lookup(column, key, by) -%}
  {%- set schema = {'value': 'VARCHAR'} -%}
  {%- for field in (['name', 'type'] if by == 'name-or-type' else [by]) -%}
    {%- do schema.update({field: 'VARCHAR'}) -%}
  {%- endfor -%}
  coalesce(list_filter(from_json({{ column }}, {{ courier_string('[' ~ tojson(schema) ~ ']') }}),
                       lambda a: {{ courier_attribute_key(courier_struct_field, 'a', by) }} = {{ courier_string(key) }})[1].value,
           json_extract_string({{ column }}, {{ courier_string('$."' ~ key ~ '"') }}))
{%- endmacro %}

{% macro courier_struct_field(element, name) -%}
  {{ element }}."{{ name }}"
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

{#- SQL string literals of `values`, comma-separated. -#}
{% macro courier_strings(values) -%}
  {%- for value in values -%}{{ courier_string(value) }}{{ ", " if not loop.last }}{%- endfor -%}
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


{#- Whether this model's SQL adds to its table (else it makes the whole table): dbt's `is_incremental()`
    asks for dbt's own `incremental` materialization, so the courier's models ask their own (macros/
    materializations.sql): a feed model adds unless it rebuilds, an experiment's observations when an
    increment is exact. Always false in a compile-only check for an engine that cannot be reached here
    (`--vars '{courier_compile_only: true}'`), which renders the full-build SQL without a connection. -#}
{% macro courier_is_incremental() -%}
  {%- if var('courier_compile_only', false) or not execute -%}
    {{ return(false) }}
  {%- endif -%}
  {%- set feed = courier_model_feed() -%}
  {%- set experiment = courier_model_experiment() -%}
  {%- if feed is not none -%}
    {{ return(not courier_rebuilds(feed)) }}
  {%- elif experiment is not none -%}
    {{ return(courier_observations_incremental(experiment)) }}
  {%- endif -%}
  {{ return(is_incremental()) }}
{%- endmacro %}


{#- What a feed model is built from is decided by the record (pipelines/optimizely_courier/landing/record.py):
      raw_<courier>._courier_files   every landed file version; landed once its load is in _dlt_loads
      courier.built_files            per feed, the versions its domain table holds (or excluded by a
                                     truncate), written by the domain model in its own transaction
    A build reads, per mode:
      incremental  landed versions not built with this feed definition, nor excluded
      full         (first build, --full-refresh) every landed version not excluded
      truncate     (a courier run's load operations) the landed versions of the run's dates
    A landed version counts as built (or excluded) when its load was built, or when it has the ETag of
    the newest version of its file the feed built: the same file landed again, in a new load, after
    its raw table was dropped (`dlt pipeline <courier> drop <tag>`). -#}

{#- A feed's facts for the macros below. The definition (a fingerprint of what the feed's models
    compute, pipelines/optimizely_courier/feeds/compile.py) lives in the model's YAML `meta`, so a feed change that only
    changes values touches the staging model and the YAML, not every SQL file. -#}
{% macro courier_feed(feed_id, courier, tag) -%}
  {%- set definition = model.config.get('meta', {}).get('definition') if execute else none -%}
  {{ return({'id': feed_id, 'courier': courier, 'tag': tag, 'definition': definition}) }}
{%- endmacro %}


{#- The mode of this build of a feed's model (see above). A courier run asks for a truncate with
    `--vars '{courier_truncate: {<feed id>: {from: D, to: D} | all}}'`. -#}
{% macro courier_build_mode(feed) -%}
  {%- if feed.id in var('courier_truncate', {}) -%}
    {{ return('truncate') }}
  {%- elif courier_rebuilds(feed) -%}
    {{ return('full') }}
  {%- else -%}
    {{ return('incremental') }}
  {%- endif -%}
{%- endmacro %}


{#- True when a feed model's table is made anew: there is none yet, `--full-refresh` (dbt's own
    should_full_refresh), or the table was built with another definition of the feed, so renamed,
    added and removed columns come out exactly as a --full-refresh would make them. -#}
{% macro courier_rebuilds(feed) -%}
  {%- if var('courier_compile_only', false) or not execute -%}
    {{ return(true) }}
  {%- endif -%}
  {{ return(adapter.get_relation(this.database, this.schema, this.identifier) is none
            or should_full_refresh() or courier_definition_changed(feed)) }}
{%- endmacro %}

{% macro courier_definition_changed(feed) -%}
  {{ return(adapter.dispatch('courier_definition_changed')(feed)) }}
{%- endmacro %}

{% macro default__courier_definition_changed(feed) -%}
  {#- (the record is not a dbt node, so dbt's relation cache does not know it) -#}
  {%- set exists = run_query("select count(*) from information_schema.tables where table_schema = 'courier' "
                             ~ "and table_name = 'built_files'").columns[0].values()[0] -%}
  {%- if not exists or not feed.definition -%}
    {{ return(false) }}
  {%- endif -%}
  {%- set found = run_query("select count(*) from (" ~ courier_record(feed) ~ ") as built where not excluded"
                            ~ " and definition <> " ~ courier_string(feed.definition)) -%}
  {{ return(found.columns[0].values()[0] > 0) }}
{%- endmacro %}


{% macro courier_built_files() -%}
  {{ return(api.Relation.create(schema='courier', identifier='built_files')) }}
{%- endmacro %}

{#- The record's rows of one feed: (file, load_id, definition, excluded). -#}
{% macro courier_record(feed) -%}
  {{ return(adapter.dispatch('courier_record')(feed)) }}
{%- endmacro %}

{% macro default__courier_record(feed) -%}
  select file, load_id, definition, excluded, etag from {{ courier_built_files() }} where feed_id = {{ courier_string(feed.id) }}
{%- endmacro %}


{#- A staging model's first line: a clear error, naming what to run, when nothing is landed yet. -#}
{% macro courier_require_landed(courier, tag) -%}
  {%- if execute and not var('courier_compile_only', false) -%}
    {%- set raw = source('raw_' ~ courier, tag) -%}
    {%- set found = adapter.get_relation(database=raw.database, schema=raw.schema,
                                         identifier=courier_landed_name(raw.identifier)) -%}
    {%- if found is none -%}
      {{ exceptions.raise_compiler_error("nothing has been landed into " ~ raw.schema ~ "." ~ raw.identifier
           ~ " yet: run `courier run " ~ courier ~ " --date YYYY-MM-DD` (or `--all`) first; dbt builds the"
           ~ " domain tables from what the courier lands") }}
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}


{#- A column name the models quote (a reserved word such as `timestamp`, or upper case), folded as the
    engine folds unquoted names: Snowflake keeps a quoted name's case and dlt creates its columns in upper
    case, so a quoted `timestamp` must be "TIMESTAMP" there. -#}
{% macro courier_quote(name) -%}
  {{ return(adapter.dispatch('courier_quote')(name)) }}
{%- endmacro %}

{% macro default__courier_quote(name) -%}
  {{ return(adapter.quote(name)) }}
{%- endmacro %}

{% macro snowflake__courier_quote(name) -%}
  {{ return(adapter.quote(name | upper)) }}
{%- endmacro %}


{#- A raw table's name as dlt created it: in the warehouse's own case (looked up with the project's
    quoting, which is exact for the domain tables' mixed-case names). -#}
{% macro courier_landed_name(name) -%}
  {{ return(adapter.dispatch('courier_landed_name')(name)) }}
{%- endmacro %}

{% macro default__courier_landed_name(name) -%}
  {{ return(name) }}
{%- endmacro %}

{% macro snowflake__courier_landed_name(name) -%}
  {{ return(name | upper) }}
{%- endmacro %}


{#- Landed versions of a file tag: (file, load_id, file_date, etag). -#}
{% macro courier_landed(feed) -%}
  {{ return(adapter.dispatch('courier_landed')(feed)) }}
{%- endmacro %}

{% macro default__courier_landed(feed) -%}
  select record.file, record._dlt_load_id as load_id, record.file_date, record.etag
  from {{ source('raw_' ~ feed.courier, '_courier_files') }} as record
  where record.tag = {{ courier_string(feed.tag) }}
    and record._dlt_load_id in (select loads.load_id from {{ source('raw_' ~ feed.courier, '_dlt_loads') }} as loads
                                where loads.status = 0)
{%- endmacro %}


{#- The (file, load_id, etag) versions a build of `feed` reads. -#}
{% macro courier_window(feed, mode=none) -%}
  {{ return(adapter.dispatch('courier_window')(feed, mode or courier_build_mode(feed))) }}
{%- endmacro %}

{% macro default__courier_window(feed, mode) -%}
  {%- if mode == 'truncate' %}
  select landed.file, landed.load_id, landed.etag from ({{ courier_landed(feed) }}) as landed
  where {{ courier_truncate_dates(feed, 'landed.file_date') }}
  {%- else %}
  {#- built with this definition, or excluded by a truncate; for a full build, excluded only -#}
  {%- set counts = 'built.excluded' ~ (' or built.definition = ' ~ courier_string(feed.definition)
                                       if mode == 'incremental' else '') %}
  select landed.file, landed.load_id, landed.etag
  from ({{ courier_unbuilt(courier_landed(feed), courier_record(feed), counts, judge_all=(mode == 'full')) }}) as landed
  {%- endif %}
{%- endmacro %}


{#- True when an incremental build of `feed` has no file version to read. -#}
{% macro courier_window_is_empty(feed) -%}
  {%- set found = run_query("select count(*) from (" ~ courier_window(feed, 'incremental') ~ ") as files") -%}
  {{ return(found.columns[0].values()[0] == 0) }}
{%- endmacro %}


{#- A condition on a model's rows: they come from the window's file versions. -#}
{% macro courier_in_window(feed, mode=none) -%}
  {{ courier_in_files(courier_window(feed, mode)) }}
{%- endmacro %}


{#- A condition on a staging view's rows: rejected, and from the window's file versions. Whether
    there are any is asked first, by a query that reads only the columns that decide a rejection;
    when there are none (the usual case) the condition is constant false and the rejected model reads
    nothing more. (A filter over the view reads every column of every row of the window before it
    filters: 0.7 s for 1 M decision rows, to find none.) -#}
{% macro courier_rejected_in_window(feed, staging) -%}
  {%- set condition = "_reject_reason is not null and " ~ courier_in_window(feed) -%}
  {%- if execute and not var('courier_compile_only', false) -%}
    {%- set found = run_query("select count(*) from " ~ staging ~ " where " ~ condition) -%}
    {%- if found.columns[0].values()[0] == 0 -%}
      {{ return('1 = 0') }}
    {%- endif -%}
  {%- endif -%}
  {{ return(condition) }}
{%- endmacro %}


{#- A condition on a model's rows: they come from the file versions `files` (a query of file, load_id),
    their loads written as literals first (see courier_load_literals). -#}
{% macro courier_in_files(files) -%}
  {{ courier_load_literals(files) }} and
  (_file, _load_id) in (select listed.file, listed.load_id from ({{ files }}) as listed)
{%- endmacro %}


{#- The window's load ids as literals (see courier_load_literals). -#}
{% macro courier_window_loads(feed, mode=none) -%}
  {{ courier_load_literals(courier_window(feed, mode)) }}
{%- endmacro %}


{#- A condition on a model's rows: their load is one of those of `files` (a query of file versions:
    file, load_id), looked up when the model runs and written as literals: a constant filter the
    engine pushes into the table's scan, so only the row groups of those loads are read (rows are
    appended load by load), and no file reads nothing. -#}
{% macro courier_load_literals(files) -%}
  {%- if not execute or var('courier_compile_only', false) -%}
    1 = 1
  {%- else -%}
    {%- set loads = run_query("select distinct load_id from (" ~ files ~ ") as files").columns[0].values() -%}
    {%- if loads | length == 0 -%}
      1 = 0
    {%- else -%}
      _load_id in ({{ courier_strings(loads | sort) }})
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}


{% macro courier_truncate_dates(feed, column) -%}
  {%- set dates = var('courier_truncate', {}).get(feed.id) -%}
  {%- if dates is mapping -%}
    {{ column }} >= cast({{ courier_string(dates['from']) }} as date) and {{ column }} < cast({{ courier_string(dates['to']) }} as date)
  {%- else -%}
    1 = 1
  {%- endif -%}
{%- endmacro %}


{#- Which of two rows with the same key wins: `left` beats `right` when it is newer in `columns`
    (compared in order, each descending; a null loses to a value). Rows equal in every column do
    not beat each other. -#}
{% macro courier_newer(left, right, columns) -%}
  {%- set ns = namespace(sql='false') -%}
  {%- for column in columns | reverse -%}
    {%- set l = left ~ '.' ~ column -%}
    {%- set r = right ~ '.' ~ column -%}
    {%- set ns.sql = '(' ~ l ~ ' > ' ~ r ~ ' or (' ~ l ~ ' is not null and ' ~ r ~ ' is null) or ((' ~ l ~ ' = ' ~ r
                     ~ ' or (' ~ l ~ ' is null and ' ~ r ~ ' is null)) and ' ~ ns.sql ~ '))' -%}
  {%- endfor -%}
  {{ ns.sql }}
{%- endmacro %}


{#- What an incremental build of a feed model writes, from `rows` (a CTE of the window's rows, one per
    `key`): those no row of the table beats in `order` (see courier_newer; no order: all of them). The
    incremental strategy then replaces the table's rows of the same keys (delete+insert, merge).
    `source`, the model `rows` come from, is where Spark finds which partitions hold those keys. -#}
{% macro courier_incremental_rows(rows, key, order=[], source=none) -%}
  {{ return(adapter.dispatch('courier_incremental_rows')(rows, key, order, source)) }}
{%- endmacro %}

{% macro default__courier_incremental_rows(rows, key, order, source) -%}
select *
from {{ rows }}
{%- if courier_is_incremental() and order %}
where not exists (
    select 1 from {{ this }} as current_row
    where {% for column in key %}current_row.{{ column }} = {{ rows }}.{{ column }} and {% endfor -%}
    {{ courier_newer('current_row', rows, order) }}
)
{%- endif %}
{%- endmacro %}


{#- On-run-start: the tables the domain models keep their record in. -#}
{% macro courier_prepare_record() -%}
  {{ return(adapter.dispatch('courier_prepare_record')()) }}
{%- endmacro %}

{% macro default__courier_prepare_record() -%}
  create schema if not exists courier;
  create table if not exists courier.built_files (feed_id varchar, file varchar, load_id varchar,
      definition varchar, excluded boolean, built_at timestamp with time zone, etag varchar);
  alter table courier.built_files add column if not exists etag varchar;
  create table if not exists courier.builds (invocation_id varchar, feed_id varchar, mode varchar,
      started_at timestamp with time zone, ended_at timestamp with time zone, files bigint, rows_before bigint,
      rows_after bigint, built_rows bigint, rejected_rows bigint);
  create table if not exists courier.experiment_builds (invocation_id varchar, model varchar, definition varchar,
      mode varchar, built_at timestamp with time zone);
  create table if not exists courier.key_checks (feed_id varchar, checked_through timestamp with time zone)
{%- endmacro %}


{#- A feed model's facts, from its YAML `meta` (known when the model runs); none for other models. -#}
{% macro courier_model_feed() -%}
  {%- set meta = model.config.get('meta', {}) -%}
  {%- if not meta.get('feed_id') -%}
    {{ return(none) }}
  {%- endif -%}
  {{ return(courier_feed(meta['feed_id'], meta['courier'], meta['tag'])) }}
{%- endmacro %}


{#- While a feed's domain model builds: its staging model (feeds/compile.py names the domain model after
    the feed, and the staging model `stg_` + that). -#}
{% macro courier_feed_staging() -%}
  {{ return(ref('stg_' ~ model.name)) }}
{%- endmacro %}


{#- Before a domain table's build, in its transaction (courier_domain): note the build, and empty the
    table for a truncate into it, so a failed build leaves it as it was. -#}
{% macro courier_note_build(feed, mode, rebuild) -%}
  {{ return(adapter.dispatch('courier_note_build')(feed, mode, rebuild)) }}
{%- endmacro %}

{% macro default__courier_note_build(feed, mode, rebuild) -%}
    insert into courier.builds (invocation_id, feed_id, mode, started_at, rows_before)
    values ({{ courier_string(invocation_id) }}, {{ courier_string(feed.id) }}, {{ courier_string(mode) }},
            current_timestamp, {% if mode == 'incremental' %}(select count(*) from {{ this }}){% else %}0{% endif %});
    {%- if mode == 'truncate' and not rebuild %}
    delete from {{ this }};
    {%- endif %}
{%- endmacro %}


{#- After a domain table's build, in its transaction (courier_domain): record which file versions the
    table now holds, and what the build did. -#}
{% macro courier_record_build(feed, mode) -%}
  {{ return(adapter.dispatch('courier_record_build')(feed, mode)) }}
{%- endmacro %}

{% macro default__courier_record_build(feed, mode) -%}
    {%- set build = "invocation_id = " ~ courier_string(invocation_id) ~ " and feed_id = " ~ courier_string(feed.id) -%}
    {%- set built = courier_built_files() -%}
    {%- set rejected = api.Relation.create(schema=this.schema, identifier=this.identifier ~ '__rejected') -%}
    {%- set loads = courier_window_loads(feed, mode) -%}  {#- rendered now, before the record changes -#}
    create or replace temporary table courier_build_window as {{ courier_window(feed, mode) }};
    {%- if mode == 'truncate' %}
    delete from {{ built }} where feed_id = {{ courier_string(feed.id) }};
    insert into {{ built }} (feed_id, file, load_id, definition, excluded, built_at, etag)
    select {{ courier_string(feed.id) }}, landed.file, landed.load_id, {{ courier_string(feed.definition) }},
           window_files.file is null, current_timestamp, landed.etag
    from ({{ courier_landed(feed) }}) as landed
    left join courier_build_window as window_files on window_files.file = landed.file and window_files.load_id = landed.load_id;
    {%- else %}
    delete from {{ built }} where feed_id = {{ courier_string(feed.id) }} and
      {%- if mode == 'full' %} not excluded{% else %} (file, load_id) in (select file, load_id from courier_build_window){% endif %};
    insert into {{ built }} (feed_id, file, load_id, definition, excluded, built_at, etag)
    select {{ courier_string(feed.id) }}, file, load_id, {{ courier_string(feed.definition) }}, false, current_timestamp, etag
    from courier_build_window;
    {%- endif %}
    update courier.builds set
      ended_at = current_timestamp,
      files = (select count(*) from courier_build_window),
      rows_after = (select count(*) from {{ this }}),
      built_rows = (select count(*) from {{ this }} where {{ loads }}
                      and (_file, _load_id) in (select file, load_id from courier_build_window)),
      rejected_rows = (select count(*) from {{ rejected }} where {{ loads }}
                         and (_file, _load_id) in (select file, load_id from courier_build_window))
    where {{ build }};
    drop table courier_build_window
{%- endmacro %}


{#- A domain table's key test: the keys of the rows built since it last passed appear once in the
    table. Rows come in only by builds, so this holds for the whole table while its cost follows what
    was built: those keys are checked against the table in a semi-join, where dbt's `unique` groups
    every row each time (by hand here: 5 s at 30 M rows, against 0.5 s for one load's keys). When most of the
    table is new to the test (its first run, after a full rebuild), the whole table is grouped, as
    `unique` does; on DuckDB the keys are grouped by their 64-bit hash first and only keys whose hash
    repeats are grouped as text (31 M keys: 2.4 s, against 5.5 s grouping the text); the answer is the
    same, as equal keys have equal hashes. When it passed is recorded at the end of the run
    (courier_record_key_checks); a failed, skipped or killed test is checked again next time. -#}
{% test courier_unique_key(model, column_name, feed_id) %}
  {%- set record = courier_built_files() ~ " where feed_id = " ~ courier_string(feed_id)
                   ~ " and file is not null and not excluded" -%}
  {%- set since = "built_at > coalesce((select max(checked_through) from courier.key_checks where feed_id = "
                  ~ courier_string(feed_id) ~ "), cast('1970-01-01' as timestamp))" -%}
  {%- set counts = run_query("select count(*), sum(case when " ~ since ~ " then 1 else 0 end) from " ~ record).rows[0]
                   if execute and not var('courier_compile_only', false) else [0, 0] -%}
select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
{%- if (counts[1] or 0) * 2 <= counts[0] %}
    and {{ column_name }} in (
        select {{ column_name }} from {{ model }}
        where {{ courier_in_files("select file, load_id from " ~ record ~ " and " ~ since) }}
    )
{%- elif target.type == 'duckdb' %}
    and hash({{ column_name }}) in (
        select hash({{ column_name }}) from {{ model }}
        where {{ column_name }} is not null
        group by 1
        having count(*) > 1
    )
{%- endif %}
group by {{ column_name }}
having count(*) > 1
{% endtest %}


{#- On-run-end: for each key test that passed, the feed's record is checked through its newest build. -#}
{% macro courier_record_key_checks(results) -%}
  {%- set passed = [] -%}
  {%- for result in results if execute -%}
    {%- set test = result.node.test_metadata if result.node.resource_type == 'test' else none -%}
    {%- if test and test.name == 'courier_unique_key' and result.status == 'pass' -%}
      {%- do passed.append(test.kwargs['feed_id']) -%}
    {%- endif -%}
  {%- endfor -%}
  {%- for feed_id in passed -%}
    {%- do run_query("insert into courier.key_checks select " ~ courier_string(feed_id) ~ ", max(built_at) from "
                     ~ courier_built_files() ~ " where feed_id = " ~ courier_string(feed_id)) -%}
  {%- endfor -%}
{%- endmacro %}


{#- A feed's error threshold, as a test on its rejected model: one row (the counts) when more of
    the window's rows were rejected than the feed allows. The domain model is built after the
    rejected one, so in `dbt build` a failing threshold skips it and the domain table stays as it
    was. The window is the one the domain build will read: the run's dates for a truncate, else
    the landed versions not yet built with this definition (all of them on a first build). All rows
    are counted in staging (a count reads no values, so the casts are not computed once more). -#}
{% test courier_error_threshold(model, staging, feed_id, courier, tag, definition, threshold) %}
  {%- set feed = {'id': feed_id, 'courier': courier, 'tag': tag, 'definition': definition} -%}
  {%- set mode = 'truncate' if feed_id in var('courier_truncate', {}) else 'incremental' -%}
  {%- set in_window = courier_in_window(feed, mode) -%}  {#- looks the window's loads up once -#}
select rejected, total
from (
    select
        (select count(*) from {{ model }} where {{ in_window }}) as rejected,
        (select count(*) from {{ staging }} where {{ in_window }}) as total
) as counts
where rejected > {{ threshold }} * total
{% endtest %}
