{#-
  The window rule: whether a feed's record holds a landed file version. Its one definition, read by the
  models (courier_window, macros/courier.sql) on every engine and by the courier itself, which renders
  this file with plain Jinja to decide whether a run has anything to build and what `courier status`
  shows (pipelines/optimizely_courier/landing/record.py): keep it plain Jinja, no dbt function.

  A landed version (`landed`: an alias whose rows have file, load_id, etag) is held by a record row
  (`record`: a query of file, load_id, etag, definition, excluded) of the same load, or of the same ETag
  when that row is the newest version of the file the record holds (the file landed again in a new
  load after its raw table was dropped). `counts`: a condition on such a row `built` saying which rows
  count (e.g. built with this definition, or excluded by a truncate).
-#}
{% macro courier_not_built(landed, record, counts) -%}
not exists (
      select 1 from (select versions.*, max(versions.load_id) over (partition by versions.file) as newest
                     from ({{ record }}) as versions) as built
      where built.file = {{ landed }}.file
        and (built.load_id = {{ landed }}.load_id or (built.etag = {{ landed }}.etag and built.load_id = built.newest))
        and ({{ counts }}))
{%- endmacro %}
