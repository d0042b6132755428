{#-
  Snowflake and BigQuery versions of the feed macros. dlt lands nested E3 columns there as VARIANT
  (Snowflake) and JSON (BigQuery). The Snowflake ones run against an emulator (tests/test_snowflake.py);
  both are compiled for their targets and the SQL parsed (tests/test_cloud_compile.py).
-#}

{# -- Snowflake ---------------------------------------------------------------------------------- #}

{% macro snowflake__courier_string(text) -%}
  '{{ text | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}

{% macro snowflake_json_field(element, name) -%}
  {{ element }}:{{ name }}::string
{%- endmacro %}

{% macro snowflake__courier_lookup(column, key, by) -%}
  case when is_array({{ column }})
       then get(filter({{ column }}, a -> {{ courier_attribute_key(snowflake_json_field, 'a', by) }} = {{ courier_string(key) }}), 0):value::string
       else {{ column }}[{{ courier_string(key) }}]::string
  end
{%- endmacro %}

{% macro snowflake__courier_field(column, field) -%}
  {{ column }}[{{ courier_string(field) }}]::string
{%- endmacro %}

{% macro snowflake__courier_unnest(column) -%}
  , lateral flatten(input => {{ column }}) as _unnested
{%- endmacro %}

{% macro snowflake__courier_element() -%}
  _unnested.value
{%- endmacro %}

{% macro snowflake__courier_try_cast(expression, data_type) -%}
  {%- set types = {'timestamp with time zone': 'timestamp_tz'} -%}
  try_cast(cast({{ expression }} as varchar) as {{ types.get(data_type, data_type) }})
{%- endmacro %}

{% macro snowflake__courier_uuid(expression) -%}
  regexp_replace(md5({{ expression }}), '^(.{8})(.{4})(.{4})(.{4})(.{12})$', '\\1-\\2-\\3-\\4-\\5')
{%- endmacro %}

{% macro snowflake__courier_load_time(load_id) -%}
  to_timestamp_tz(cast({{ load_id }} as number(20, 6)))
{%- endmacro %}


{# -- BigQuery ----------------------------------------------------------------------------------- #}

{% macro bigquery__courier_string(text) -%}
  '{{ text | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}

{% macro bigquery_json_field(element, name) -%}
  json_value({{ element }}, '$.{{ name }}')
{%- endmacro %}

{% macro bigquery__courier_lookup(column, key, by) -%}
  case when json_type({{ column }}) = 'array'
       then (select json_value(_item, '$.value') from unnest(json_query_array({{ column }})) as _item
             where {{ courier_attribute_key(bigquery_json_field, '_item', by) }} = {{ courier_string(key) }} limit 1)
       else json_value({{ column }}, {{ courier_string('$."' ~ key ~ '"') }})
  end
{%- endmacro %}

{% macro bigquery__courier_field(column, field) -%}
  json_value({{ column }}, {{ courier_string('$."' ~ field ~ '"') }})
{%- endmacro %}

{% macro bigquery__courier_unnest(column) -%}
  cross join unnest(json_query_array({{ column }})) as _element
{%- endmacro %}

{% macro bigquery__courier_try_cast(expression, data_type) -%}
  {%- set types = {'timestamp with time zone': 'timestamp', 'varchar': 'string', 'bigint': 'int64',
                   'double': 'float64', 'boolean': 'bool'} -%}
  {%- set bq_type = types.get(data_type, data_type) -%}
  safe_cast({{ expression }} as {{ 'bignumeric' if bq_type.startswith('decimal') else bq_type }})
{%- endmacro %}

{% macro bigquery__courier_uuid(expression) -%}
  regexp_replace(to_hex(md5({{ expression }})), r'^(.{8})(.{4})(.{4})(.{4})(.{12})$', r'\1-\2-\3-\4-\5')
{%- endmacro %}

{% macro bigquery__courier_load_time(load_id) -%}
  timestamp_micros(cast(cast({{ load_id }} as float64) * 1000000 as int64))
{%- endmacro %}
