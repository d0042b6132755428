"""The record of every landed file: what is landed, and which version of it each feed has built.

One table per courier, `raw_<courier>._courier_files`, lands in the same dlt load package as the
rows it describes (key, ETag, size, tag, partition date, rows; `_dlt_load_id` is the load that
landed them). dlt writes `_dlt_loads` once every job of a package has committed, so:

    a file version is landed  <=>  its record row's load is in `_dlt_loads` with status 0

Rows of any other load are leftovers of a run that died; `take_back_incomplete_loads` deletes them
before a run decides anything. Which landed versions each feed has built into its domain table
lives in `courier.built_files`, written by the domain model itself (`macros/courier.sql`), in the
transaction that changes the table. The courier, the models and the history all read these two.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

RECORD_TABLE = "_courier_files"
LOADS_TABLE = "_dlt_loads"
BUILT_TABLE = "courier.built_files"
BUILDS_TABLE = "courier.builds"
# dlt column hints of the record (the Arrow types carry them too; the hints keep them exact).
RECORD_COLUMNS = {
    "file": {"data_type": "text", "nullable": False},
    "etag": {"data_type": "text", "nullable": False},
    "size_bytes": {"data_type": "bigint", "nullable": False},
    "tag": {"data_type": "text", "nullable": False},
    "file_date": {"data_type": "date", "nullable": False},
    "row_count": {"data_type": "bigint", "nullable": False},
}


@dataclass(frozen=True)
class Landed:
    """One landed version of a file."""

    etag: str
    load_id: str


def has_table(db: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(db.execute("select count(*) from information_schema.tables where table_schema = ? and "
                           "table_name = ?", [schema, table]).fetchall()[0][0])


def take_back_incomplete_loads(db: duckdb.DuckDBPyConnection, dataset: str) -> list[str]:
    """Delete every row a load that did not complete left in `dataset`; return those load ids.

    A run that died mid-load may have committed some of its table jobs (rows, record entries)
    without dlt recording the load in `_dlt_loads`. Such loads are newer than the newest complete
    one (every run starts here), and the record names any older one: both kinds are found without
    scanning the raw history (DuckDB prunes on the load id's min/max per row group).
    """
    tables = [row[0] for row in db.execute(
        "select table_name from information_schema.columns where table_schema = ? and column_name = '_dlt_load_id' "
        "order by table_name", [dataset]).fetchall()]
    if not tables:
        return []
    complete = (f'(select load_id from "{dataset}".{LOADS_TABLE} where status = 0)'
                if has_table(db, dataset, LOADS_TABLE) else "(select null::varchar as load_id where false)")
    newest = f"(select coalesce(max(load_id), '') from {complete})"
    incomplete: set[str] = set()
    if RECORD_TABLE in tables:
        incomplete |= {row[0] for row in db.execute(
            f'select distinct _dlt_load_id from "{dataset}".{RECORD_TABLE} where _dlt_load_id not in {complete}'
        ).fetchall()}
    for table in tables:
        incomplete |= {row[0] for row in db.execute(
            f'select distinct _dlt_load_id from "{dataset}"."{table}" where _dlt_load_id > {newest}').fetchall()}
    if incomplete:
        marks = ", ".join("?" for _ in incomplete)
        for table in tables:
            db.execute(f'delete from "{dataset}"."{table}" where _dlt_load_id in ({marks})', sorted(incomplete))
    return sorted(incomplete)


def take_back_load(db: duckdb.DuckDBPyConnection, dataset: str, load_id: str) -> None:
    """Delete a completed load from `dataset`: its rows, record entries, state and `_dlt_loads` entry."""
    tables = [row[0] for row in db.execute(
        "select table_name from information_schema.columns where table_schema = ? and column_name = '_dlt_load_id'",
        [dataset]).fetchall()]
    for table in tables:
        db.execute(f'delete from "{dataset}"."{table}" where _dlt_load_id = ?', [load_id])
    db.execute(f'delete from "{dataset}".{LOADS_TABLE} where load_id = ?', [load_id])


def landed_versions(db: duckdb.DuckDBPyConnection, dataset: str, tag: str,
                    dates: Iterable[dt.date] | None = None) -> dict[str, Landed]:
    """The newest landed version of each key of `tag` (of `dates` only, when given)."""
    if not has_table(db, dataset, RECORD_TABLE):
        return {}
    day_filter, params = "", [tag]
    if dates is not None:
        days = sorted(set(dates))
        if not days:
            return {}
        day_filter = " and file_date between ? and ? and file_date in (select unnest(?::date[]))"
        params += [days[0], days[-1], days]
    rows = db.execute(
        f'select file, arg_max(etag, _dlt_load_id), max(_dlt_load_id) from "{dataset}".{RECORD_TABLE} '
        f'where tag = ?{day_filter} and _dlt_load_id in (select load_id from "{dataset}".{LOADS_TABLE} '
        f"where status = 0) group by file", params).fetchall()
    return {file: Landed(etag, load_id) for file, etag, load_id in rows}


def unbuilt_files(db: duckdb.DuckDBPyConnection, dataset: str, tag: str, feed_id: str, definition: str) -> int:
    """How many landed file versions of `tag` the feed has not built with `definition` (nor excluded).

    The same rule as the models' `courier_window` macro, for deciding whether to run dbt at all.
    """
    if not has_table(db, dataset, RECORD_TABLE):
        return 0
    built = (f"select 1 from {BUILT_TABLE} as b where b.feed_id = ? and b.file = f.file and "
             "b.load_id = f._dlt_load_id and (b.excluded or b.definition = ?)")
    exists = f"and not exists ({built})" if has_table(db, "courier", "built_files") else ""
    params = [tag] + ([feed_id, definition] if exists else [])
    return db.execute(
        f'select count(*) from "{dataset}".{RECORD_TABLE} as f where f.tag = ? and f._dlt_load_id in '
        f'(select load_id from "{dataset}".{LOADS_TABLE} where status = 0) {exists}', params).fetchall()[0][0]


def already_built(db: duckdb.DuckDBPyConnection, dataset: str, tag: str, feed_id: str, definition: str,
                  days: Iterable[dt.date]) -> int:
    """How many files of `days` the feed's table holds in their newest landed version."""
    landed = landed_versions(db, dataset, tag, days)
    if not landed or not has_table(db, "courier", "built_files"):
        return 0
    built = {(file, load_id) for file, load_id in db.execute(
        f"select file, load_id from {BUILT_TABLE} where feed_id = ? and definition = ? and not excluded "
        "and file in (select unnest(?::varchar[]))", [feed_id, definition, list(landed)]).fetchall()}
    return sum((file, version.load_id) in built for file, version in landed.items())


@dataclass
class BuildStats:
    """What one dbt build did to one domain table (a row of `courier.builds`)."""

    mode: str  # incremental | full | truncate
    files: int
    built: int
    inserted: int
    updated: int
    rejected: int


def build_stats(db: duckdb.DuckDBPyConnection, invocation_id: str) -> dict[str, BuildStats]:
    """Per feed id, what the dbt invocation `invocation_id` built."""
    if not has_table(db, "courier", "builds"):
        return {}
    rows = db.execute(f"select feed_id, mode, files, built_rows, rows_before, rows_after, rejected_rows from "
                      f"{BUILDS_TABLE} where invocation_id = ? and rows_after is not null", [invocation_id]).fetchall()
    stats = {}
    for feed_id, mode, files, built, before, after, rejected in rows:
        inserted = after if mode != "incremental" else max(0, after - before)
        stats[feed_id] = BuildStats(mode, files, built, inserted, max(0, built - inserted), rejected)
    return stats
