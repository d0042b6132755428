{#-
  Experiment observations, incremental on DuckDB (pipelines/optimizely_courier/experiments/templates/
  observations.sql). Their record, beside the feeds' (macros/courier.sql):
    courier.experiment_builds   one row per build of an observations model: its definition, mode, time
  An incremental build computes again the units of the visitors whose rows were built into the domain
  tables since the model's last build (the experiment's decisions, any conversions) and replaces their
  rows. A unit depends only on its visitor's rows, so that is exact while the domain tables have only
  gained rows since. Otherwise the model is rebuilt whole: see courier_observations_stale.
-#}

{#- The observations model's facts, from its YAML `meta` (none for every other model). -#}
{% macro courier_model_experiment() -%}
  {%- set meta = model.config.get('meta', {}) -%}
  {%- if not meta.get('experiment_definition') -%}
    {{ return(none) }}
  {%- endif -%}
  {{ return({'model': model.name, 'definition': meta['experiment_definition'], 'feeds': meta['experiment_feeds']}) }}
{%- endmacro %}


{#- The model's latest build, as a query of (definition, built_at): none before its first. Builds of the
    running invocation are left out (the pre-hook notes this build before the model's SQL runs). -#}
{% macro courier_last_observations(experiment) -%}
  select definition, built_at from courier.experiment_builds
  where model = {{ courier_string(experiment.model) }} and invocation_id <> {{ courier_string(invocation_id) }}
  order by built_at desc limit 1
{%- endmacro %}


{#- True when the observations must be rebuilt whole: never built with this definition (a changed
    window, filter or metric changes every unit), or since their last build a feed they read was not
    only added to: a full build or a truncate of its domain table, or an incremental build that replaced
    rows (rows before + rows built <> rows after). A replaced or removed row's visitor is no longer in
    the table, so which units it changed cannot be told. -#}
{% macro courier_observations_stale(experiment) -%}
  {%- set last = courier_last_observations(experiment) -%}
  {%- set found = run_query(
      "select (select count(*) from (" ~ last ~ ") as last where definition = " ~ courier_string(experiment.definition)
      ~ ") = 0 or exists (select 1 from courier.builds as build, (" ~ last ~ ") as last"
      ~ " where build.feed_id in (" ~ courier_strings(experiment.feeds) ~ ") and build.started_at > last.built_at"
      ~ " and not coalesce(build.mode = 'incremental' and build.rows_before + build.built_rows = build.rows_after, false))") -%}
  {{ return(found.columns[0].values()[0]) }}
{%- endmacro %}


{#- The file versions (file, load_id) of feeds `feed_ids` built since the observations' last build. -#}
{% macro courier_files_built_since(experiment, feed_ids) -%}
  select file, load_id from {{ courier_built_files() }} where feed_id in ({{ courier_strings(feed_ids) }})
    and not excluded and built_at > (select built_at from ({{ courier_last_observations(experiment) }}) as last)
{%- endmacro %}


{#- A condition on a domain table's rows: they come from file versions of feed `feed_id` built since the
    observations' last build. -#}
{% macro courier_built_since(feed_id) -%}
  {{ courier_in_files(courier_files_built_since(courier_model_experiment(), [feed_id])) }}
{%- endmacro %}


{#- True when no feed the observations read has built a file version since their last build: an
    increment would compute no unit again. -#}
{% macro courier_observations_untouched(experiment) -%}
  {%- set found = run_query("select count(*) from (" ~ courier_files_built_since(experiment, experiment.feeds)
                            ~ ") as files") -%}
  {{ return(found.columns[0].values()[0] == 0) }}
{%- endmacro %}


{#- True when this build of the observations adds to their table: on DuckDB, a table exists, no
    `--full-refresh`, and an increment is exact (not courier_observations_stale). -#}
{% macro courier_observations_incremental(experiment) -%}
  {%- if var('courier_compile_only', false) or not execute or target.type != 'duckdb' -%}
    {{ return(false) }}
  {%- endif -%}
  {{ return(adapter.get_relation(this.database, this.schema, this.identifier) is not none
            and not should_full_refresh() and not courier_observations_stale(experiment)) }}
{%- endmacro %}


{#- Before a build of the observations, in its transaction (courier_observations): note it, so the next
    one knows what it holds. -#}
{% macro courier_note_observations(experiment, incremental) -%}
    insert into courier.experiment_builds (invocation_id, model, definition, mode, built_at)
    values ({{ courier_string(invocation_id) }}, {{ courier_string(experiment.model) }},
            {{ courier_string(experiment.definition) }},
            {{ courier_string('incremental' if incremental else 'full') }}, current_timestamp)
{%- endmacro %}


{#- True when a metric's value is a number: NaN and infinite values are left out of a sum (and counted),
    or one of them would be the whole total. NULL stays NULL (a missing value adds nothing either). -#}
{% macro courier_is_finite(expression) -%}
  {{ return(adapter.dispatch('courier_is_finite')(expression)) }}
{%- endmacro %}

{% macro default__courier_is_finite(expression) -%}
  isfinite({{ expression }})
{%- endmacro %}

{% macro spark__courier_is_finite(expression) -%}
  (not isnan({{ expression }}) and abs({{ expression }}) != cast('Infinity' as double))
{%- endmacro %}

{% macro snowflake__courier_is_finite(expression) -%}
  (cast({{ expression }} as float) not in ('NaN'::float, 'inf'::float, '-inf'::float))
{%- endmacro %}

{% macro bigquery__courier_is_finite(expression) -%}
  not (is_nan(cast({{ expression }} as float64)) or is_inf(cast({{ expression }} as float64)))
{%- endmacro %}


{#- A `from` model's text timestamp read with its experiment's `timestamp_format` (strptime directives
    %Y %y %m %d %H %I %M %S %p %b, checked by the courier) as a time in `timezone` (an IANA name). -#}
{% macro courier_parse_timestamp(expression, format, timezone) -%}
  {{ return(adapter.dispatch('courier_parse_timestamp')(expression, format, timezone)) }}
{%- endmacro %}

{% macro default__courier_parse_timestamp(expression, format, timezone) -%}
  timezone({{ courier_string(timezone) }}, strptime(cast({{ expression }} as varchar), {{ courier_string(format) }}))
{%- endmacro %}

{% macro spark__courier_parse_timestamp(expression, format, timezone) -%}
  to_utc_timestamp(to_timestamp(cast({{ expression }} as string),
    {{ courier_string(courier_timestamp_format(format, "'T'", [('%Y', 'yyyy'), ('%y', 'yy'), ('%m', 'M'), ('%d', 'd'),
      ('%H', 'H'), ('%I', 'h'), ('%M', 'mm'), ('%S', 'ss'), ('%p', 'a'), ('%b', 'MMM')])) }}),
    {{ courier_string(timezone) }})
{%- endmacro %}

{% macro snowflake__courier_parse_timestamp(expression, format, timezone) -%}
  convert_timezone({{ courier_string(timezone) }}, 'UTC', to_timestamp_ntz(cast({{ expression }} as varchar),
    {{ courier_string(courier_timestamp_format(format, '"T"', [('%Y', 'YYYY'), ('%y', 'YY'), ('%m', 'MM'),
      ('%d', 'DD'), ('%H', 'HH24'), ('%I', 'HH12'), ('%M', 'MI'), ('%S', 'SS'), ('%p', 'AM'), ('%b', 'MON')])) }}))
{%- endmacro %}

{% macro bigquery__courier_parse_timestamp(expression, format, timezone) -%}
  parse_timestamp({{ courier_string(format) }}, cast({{ expression }} as string), {{ courier_string(timezone) }})
{%- endmacro %}

{#- A strptime format in another engine's words: the literal `T` as `literal_t`, each directive as its pattern. -#}
{% macro courier_timestamp_format(format, literal_t, patterns) -%}
  {%- set translated = namespace(text=format.replace('T', literal_t)) -%}
  {%- for directive, pattern in patterns -%}
    {%- set translated.text = translated.text.replace(directive, pattern) -%}
  {%- endfor -%}
  {{ return(translated.text) }}
{%- endmacro %}


{#- Stop the build, naming the experiment, metric, model and column, when a `from` model's timestamp column
    is text and the experiment declares no `timestamp_format`: comparing it with the decision's time would
    fail with an engine error naming none of them. Checked when the build runs (the columns are known then). -#}
{% macro courier_require_timestamp(relation, column, definition, experiment, metric) -%}
  {%- if execute and not var('courier_compile_only', false) -%}
    {%- for found in adapter.get_columns_in_relation(relation) if found.name | lower == column | lower and found.is_string() -%}
      {{ exceptions.raise_compiler_error(definition ~ ": experiment `" ~ experiment ~ "`, metric `" ~ metric
         ~ "`: column `" ~ column ~ "` of model `" ~ relation.identifier ~ "` is text; declare how to read it in the "
         ~ "metric's `from`, e.g. timestamp_format: \"%m/%d/%Y %H:%M:%S\" (and timezone, default UTC)") }}
    {%- endfor -%}
  {%- endif -%}
{%- endmacro %}
