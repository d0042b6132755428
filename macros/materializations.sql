{#- DuckDB: dbt's own view and incremental materializations, less the statements that would change
    nothing. Every `dbt build` runs every selected model, and a model costs about a dozen statements
    and a tenth of a second even with nothing to do: a plain `dbt build` after a `courier run` (which
    built everything) paid that for every model. Both call dbt's materialization as is when there is work. -#}


{#- A feed's staging view whose compiled SQL is the one it was created from (a fingerprint kept as
    the view's comment) is left as it is. (Only generated staging views: their columns are the feed's,
    so a raw table that gained columns leaves them as they were.) -#}
{% materialization view, adapter='duckdb' %}
  {%- set fingerprint = 'courier:' ~ local_md5(sql) -%}
  {%- if model.config.get('meta', {}).get('feed_id') and not dbt.should_full_refresh()
        and courier_view_fingerprint(this) == fingerprint -%}
    {%- call statement('main') -%} select 1 {%- endcall -%}
    {%- do adapter.commit() -%}
    {{ return({'relations': [this]}) }}
  {%- endif -%}
  {%- set relations = dbt.materialization_view_default() -%}
  {#- after dbt's commit: on its own (DuckDB commits a statement outside a transaction) -#}
  {%- call statement('courier_view_fingerprint', auto_begin=false) -%}
    comment on view {{ this }} is {{ courier_string(fingerprint) }}
  {%- endcall -%}
  {{ return(relations) }}
{% endmaterialization %}

{% macro courier_view_fingerprint(relation) -%}
  {%- set found = run_query("select comment from duckdb_views() where database_name = " ~ courier_string(relation.database)
                            ~ " and schema_name = " ~ courier_string(relation.schema)
                            ~ " and view_name = " ~ courier_string(relation.identifier)) -%}
  {{ return(found.columns[0].values()[0] if found.rows | length > 0 else none) }}
{%- endmacro %}


{#- A feed model (domain table or its rejected rows) built incrementally with no file version in its
    window, or an experiment's observations with no file version built into the tables they read since
    their last build, would write nothing: they run nothing either (no hooks, so no build is recorded:
    none was made). Full builds, truncates and changed definitions go through dbt's materialization. -#}
{% materialization incremental, adapter='duckdb' %}
  {%- set feed = courier_model_feed() -%}
  {%- set experiment = courier_model_experiment() -%}
  {%- if (feed is not none and courier_build_mode(feed) == 'incremental' and courier_window_is_empty(feed))
        or (experiment is not none and courier_is_incremental() and courier_observations_untouched(experiment)) -%}
    {%- call statement('main') -%} select 0 {%- endcall -%}
    {%- do adapter.commit() -%}
    {{ return({'relations': [this]}) }}
  {%- endif -%}
  {{ return(dbt.materialization_incremental_duckdb()) }}
{% endmaterialization %}

{% macro courier_window_is_empty(feed) -%}
  {%- set found = run_query("select count(*) from (" ~ courier_window(feed, 'incremental') ~ ") as files") -%}
  {{ return(found.columns[0].values()[0] == 0) }}
{%- endmacro %}
