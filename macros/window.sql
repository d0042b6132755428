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


{#-
  The landed versions of `landed` (a query of file, load_id, etag, ...) that `record` does not hold in a
  row `counts` accepts (courier_not_built), as a query with the columns of `landed`. `every_landed`: a
  query of every landed version of the tag, whole loads (its load_id is read), when `landed` holds only
  some of them (by default `landed` itself). `judge_all`: true when no load can be vouched for (`counts`
  accepts excluded rows only, as for a full build): then the rule is asked of every version at once.

  The same versions as `select * from (landed) as landed where courier_not_built(...)`, in a time that
  follows what is new rather than what the record holds: the rule is asked only of the versions of the
  loads courier_judged_loads names, and reads only the record's rows that can hold them: of those loads,
  and every row of a file one of whose rows has the ETag of one of them (a row can come twice, which
  changes no answer; DuckDB reads the record's ETags first, its file names only when one matches). On a year
  of daily files (219,000 versions) each of a build's questions takes 20-25 ms, where the rule asked of
  every version took 0.15-0.3 s.
-#}
{% macro courier_unbuilt(landed, record, counts, every_landed=none, judge_all=false) -%}
  {%- if judge_all -%}
select landed.* from ({{ landed }}) as landed
where {{ courier_not_built('landed', record, counts) }}
  {%- else -%}
  {%- set judged -%}
    select landed.* from ({{ landed }}) as landed
    where landed.load_id in ({{ courier_judged_loads(every_landed or landed, record, counts) }})
  {%- endset -%}
  {%- set versions -%}
    select versions.* from ({{ record }}) as versions
    where versions.load_id in (select judged_loads.load_id from ({{ judged }}) as judged_loads)
    union all
    select versions.* from ({{ record }}) as versions
    where versions.file in (select same_etag.file from ({{ record }}) as same_etag
                            where same_etag.etag in (select matched.etag from ({{ record }}) as matched
                                                     where matched.etag in (select judged_etags.etag
                                                                            from ({{ judged }}) as judged_etags)))
  {%- endset -%}
select judged.* from ({{ judged }}) as judged
where {{ courier_not_built('judged', versions, counts) }}
  {%- endif -%}
{%- endmacro %}


{#-
  The loads of `landed` (every landed version of the tag, whole loads) some version of which `record`
  may not hold: all but those every version of which it holds in a row of the same load that `counts`
  accepts and that is not excluded, found by a count per load on each side, no file compared. Equal
  counts are enough because of what such rows are. A row counts, not excluded, only when it was built
  with one definition of the feed (`counts` tests `definition`; with none, as for a full build, every
  load is named), which reads one tag; a build writes a row for a version of that tag's window, after
  deleting the rows it replaces; and a load's versions of a tag leave the record all at once (a dropped
  raw table, a load taken back), never some of them. So those rows of a load are some of its landed
  versions, each at most once, and as many as all of them only when they are all of them. (Versions
  held through the ETag of an earlier load, or by excluded rows, are judged by courier_not_built.)
-#}
{% macro courier_judged_loads(landed, record, counts) -%}
select landed_loads.load_id
    from (select every_landed.load_id, count(*) as versions from ({{ landed }}) as every_landed
          group by every_landed.load_id) as landed_loads
    left join (select built.load_id, count(*) as versions from ({{ record }}) as built
               where not built.excluded and ({{ counts }}) group by built.load_id) as built_loads
      on built_loads.load_id = landed_loads.load_id
    where built_loads.versions is null or built_loads.versions <> landed_loads.versions
{%- endmacro %}
