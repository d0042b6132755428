{#-
  The courier's materializations: one per kind of generated model, set by folder in dbt_project.yml
  (models/staging: courier_staging, models/domain: courier_domain, models/rejected: courier_rejected)
  or in the model (an experiment's observations: courier_observations). Hand-written models keep
  dbt's own materializations: nothing here overrides them or dbt's global macros.

  A feed model is built from landed file versions (its window, macros/record.sql) in one of three modes:
    incremental  the landed versions this table has not built with the feed's current definition;
                 nothing to build: no statement runs and no build is recorded
    full         every landed version not excluded; the table is made again (no table yet,
                 `--full-refresh`, or a table built with another definition of the feed)
    truncate     a courier run's load operations (`--vars courier_truncate`): the run's dates only
  and the domain table records what it built in the same transaction (courier_note_build before the
  build, courier_record_build after it).

  Each materialization reads top to bottom: decide, skip, hooks, build, record, hooks, commit.
-#}


{#- A feed's staging view (models/staging). On DuckDB a view whose compiled SQL is the one it was
    created from (a fingerprint kept as the view's comment) is left as it is: a plain `dbt build`
    would otherwise remake every view each time, for nothing. -#}
{% materialization courier_staging, default %}
  {%- set target_relation = this.incorporate(type='view') -%}
  {%- set fingerprint = 'courier:' ~ local_md5(sql) -%}
  {%- set unchanged = target.type == 'duckdb' and not should_full_refresh()
                      and courier_view_fingerprint(target_relation) == fingerprint -%}
  {%- if unchanged -%}
    {%- call statement('main') -%} select 1 {%- endcall -%}
    {{ return({'relations': [target_relation]}) }}
  {%- endif -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- if existing_relation is not none -%}
    {%- do adapter.drop_relation(existing_relation) -%}
  {%- endif -%}
  {%- call statement('main') -%}
    {{ get_create_view_as_sql(target_relation, sql) }}
  {%- endcall -%}
  {%- if target.type == 'duckdb' -%}
    {%- call statement('courier_view_fingerprint') -%}
      comment on view {{ target_relation }} is {{ courier_string(fingerprint) }}
    {%- endcall -%}
  {%- endif -%}
  {% do persist_docs(target_relation, model) %}
  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% do adapter.commit() %}
  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}

{% macro courier_view_fingerprint(relation) -%}
  {%- set found = run_query("select comment from duckdb_views() where database_name = " ~ courier_string(relation.database)
                            ~ " and schema_name = " ~ courier_string(relation.schema)
                            ~ " and view_name = " ~ courier_string(relation.identifier)) -%}
  {{ return(found.columns[0].values()[0] if found.rows | length > 0 else none) }}
{%- endmacro %}


{#- A feed's domain table (models/domain): upserted by key from its window, its build recorded. -#}
{% materialization courier_domain, default %}
  {{ return(courier_build_feed_table(records=true)) }}
{% endmaterialization %}

{#- The rows a feed rejected (models/rejected), beside its domain table: the same windows. -#}
{% materialization courier_rejected, default %}
  {{ return(courier_build_feed_table(records=false)) }}
{% endmaterialization %}

{#- The body of both, on DuckDB, Snowflake and BigQuery: dbt's incremental materialization's steps
    (a temporary table of the new rows, then the incremental strategy's SQL: delete+insert, merge), the
    rows appended straight when none of their keys is in the table (DuckDB's key index), or a new table
    swapped in for a full build. `records`: note and record the build (the domain table). -#}
{% macro courier_build_feed_table(records) %}
  {%- set feed = courier_model_feed() -%}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set rebuild = courier_rebuilds(feed) -%}
  {%- set mode = courier_build_mode(feed) -%}

  {#- nothing landed that this table has not built: write nothing, record nothing -#}
  {%- if mode == 'incremental' and courier_window_is_empty(feed) -%}
    {%- call statement('main') -%} select 0 {%- endcall -%}
    {{ return({'relations': [target_relation]}) }}
  {%- endif -%}

  {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
  {%- set backup_relation = make_backup_relation(target_relation, 'table') -%}
  {{ drop_relation_if_exists(load_cached_relation(intermediate_relation)) }}
  {{ drop_relation_if_exists(load_cached_relation(backup_relation)) }}
  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {#- BEGIN: the build, and its record, commit together or not at all -#}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}
  {%- if records -%}
    {%- call statement('courier_note_build') -%} {{ courier_note_build(feed, mode, rebuild) }} {%- endcall -%}
  {%- endif -%}

  {%- set increment = mode == 'incremental' and existing_relation is not none and not rebuild -%}
  {%- set new_rows = none -%}  {#- an increment's rows, whose keys the index is given -#}
  {%- if existing_relation is none -%}
    {%- set build_sql = get_create_table_as_sql(False, target_relation, sql) -%}
  {%- elif rebuild -%}
    {%- set build_sql = get_create_table_as_sql(False, intermediate_relation, sql) -%}
  {%- elif records and increment and courier_window_keys_new(courier_feed_staging(), feed) -%}
    {#- none of the window's keys is in the table (macros/keys.sql): nothing to replace, so the model's
        rows are appended as they are computed, without a temporary table -#}
    {%- set build_sql = courier_append_sql(target_relation, sql, adapter.get_columns_in_relation(existing_relation)) -%}
    {%- set new_rows = "(select _pk from " ~ target_relation ~ " where " ~ courier_in_window(feed) ~ ")" -%}
  {%- else -%}
    {#- a feed's columns change only with its definition, which rebuilds: no schema change to follow here -#}
    {%- set temp_relation = make_temp_relation(target_relation) -%}
    {%- do run_query(get_create_table_as_sql(True, temp_relation, sql)) -%}
    {%- set strategy = adapter.get_incremental_strategy_macro(context, config.get('incremental_strategy') or 'default') -%}
    {%- set build_sql = strategy({'target_relation': target_relation, 'temp_relation': temp_relation,
                                  'unique_key': config.get('unique_key'),
                                  'dest_columns': adapter.get_columns_in_relation(existing_relation),
                                  'incremental_predicates': none}) -%}
    {%- set new_rows = temp_relation if increment else none -%}  {#- a truncate makes the index again -#}
  {%- endif -%}
  {%- call statement('main') -%} {{ build_sql }} {%- endcall -%}
  {%- if existing_relation is not none and rebuild -%}
    {%- do adapter.rename_relation(target_relation, backup_relation) -%}
    {%- do adapter.rename_relation(intermediate_relation, target_relation) -%}
  {%- endif -%}

  {%- if records and target.type == 'duckdb' -%}
    {%- call statement('courier_index_keys') -%}
      {{ courier_index_keys(feed, target_relation, new_rows) }}
    {%- endcall -%}
  {%- endif -%}
  {%- if records -%}
    {%- call statement('courier_record_build') -%} {{ courier_record_build(feed, mode) }} {%- endcall -%}
  {%- endif -%}
  {% do apply_grants(target_relation, config.get('grants'), should_revoke=should_revoke(existing_relation, rebuild)) %}
  {% do persist_docs(target_relation, model) %}
  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {#- COMMIT -#}
  {% do adapter.commit() %}
  {%- if existing_relation is not none and rebuild -%}
    {% do adapter.drop_relation(backup_relation) %}
  {%- endif -%}
  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target_relation]}) }}
{% endmacro %}


{#- The model's rows (`sql`) appended to `target_relation` as they are computed: dbt's append without
    its temporary table. -#}
{% macro courier_append_sql(target_relation, sql, dest_columns) -%}
  {%- set dest_cols_csv = get_quoted_csv(dest_columns | map(attribute='name')) -%}
  insert into {{ target_relation }} ({{ dest_cols_csv }})
  select {{ dest_cols_csv }}
  from (
{{ sql }}
  ) as appended
{%- endmacro %}


{#- An experiment's observations (the template's `courier_observations`): on DuckDB, incremental by
    the units of visitors with rows built into the domain tables since the last build (see
    macros/experiments.sql), nothing when there are none; a new table when an increment cannot be exact;
    on other engines a new table each build. -#}
{% materialization courier_observations, default %}
  {%- set experiment = courier_model_experiment() -%}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set incremental = courier_observations_incremental(experiment) -%}
  {%- if incremental and courier_observations_untouched(experiment) -%}
    {%- call statement('main') -%} select 0 {%- endcall -%}
    {{ return({'relations': [target_relation]}) }}
  {%- endif -%}

  {%- set intermediate_relation = make_intermediate_relation(target_relation) -%}
  {%- set backup_relation = make_backup_relation(target_relation, 'table') -%}
  {{ drop_relation_if_exists(load_cached_relation(intermediate_relation)) }}
  {{ drop_relation_if_exists(load_cached_relation(backup_relation)) }}
  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}
  {%- if target.type == 'duckdb' -%}
    {%- call statement('courier_note_observations') -%} {{ courier_note_observations(experiment, incremental) }} {%- endcall -%}
  {%- endif -%}
  {%- if existing_relation is none -%}
    {%- set build_sql = get_create_table_as_sql(False, target_relation, sql) -%}
  {%- elif not incremental -%}
    {%- set build_sql = get_create_table_as_sql(False, intermediate_relation, sql) -%}
  {%- else -%}
    {%- set temp_relation = make_temp_relation(target_relation) -%}
    {%- do run_query(get_create_table_as_sql(True, temp_relation, sql)) -%}
    {%- set build_sql = get_incremental_delete_insert_sql({
          'target_relation': target_relation, 'temp_relation': temp_relation, 'unique_key': 'visitor_id',
          'dest_columns': adapter.get_columns_in_relation(existing_relation), 'incremental_predicates': none}) -%}
  {%- endif -%}
  {%- call statement('main') -%} {{ build_sql }} {%- endcall -%}
  {%- if existing_relation is not none and not incremental -%}
    {%- do adapter.rename_relation(target_relation, backup_relation) -%}
    {%- do adapter.rename_relation(intermediate_relation, target_relation) -%}
  {%- endif -%}
  {% do persist_docs(target_relation, model) %}
  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% do adapter.commit() %}
  {%- if existing_relation is not none and not incremental -%}
    {% do adapter.drop_relation(backup_relation) %}
  {%- endif -%}
  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
