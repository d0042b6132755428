"""The record of every landed file: what is landed, and which version of it each feed has built.

One table per courier, `raw_<courier>._courier_files`, lands in the same dlt load package as the
rows it describes (key, ETag, size, tag, partition date, rows; `_dlt_load_id` is the load that
landed them). dlt writes `_dlt_loads` once every job of a package has committed, so:

    a file version is landed  <=>  its record row's load is in `_dlt_loads` with status 0

Rows of any other load are leftovers of a run that died; `take_back_incomplete_loads` deletes them
before a run decides anything, and `forget_dropped_tables` deletes the rows of a tag whose raw table
is gone (dropped with `dlt pipeline <courier> drop <tag>`), so its files land again. Which landed
versions each feed has built into its domain table lives in `courier.built_files` (key, load id and
ETag), written by the domain model itself (`macros/courier.sql`), in the transaction that changes the
table. The courier, the models and the history all read these two.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import jinja2

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


def has_column(db: duckdb.DuckDBPyConnection, schema: str, table: str, column: str) -> bool:
    return bool(db.execute("select count(*) from information_schema.columns where table_schema = ? and "
                           "table_name = ? and column_name = ?", [schema, table, column]).fetchall()[0][0])


def raw_table_exists(db: duckdb.DuckDBPyConnection, dataset: str, tag: str) -> bool:
    """Whether `tag`'s raw table exists. dlt names it in snake case (tag `OrderItems` lands in
    `order_items`), so names are compared in lower case without underscores."""
    return bool(db.execute(
        "select count(*) from information_schema.tables where table_schema = ? and "
        "replace(lower(table_name), '_', '') = replace(lower(?), '_', '')", [dataset, tag]).fetchall()[0][0])


def forget_dropped_tables(db: duckdb.DuckDBPyConnection, dataset: str) -> list[str]:
    """Delete the record rows of every tag whose raw table is gone; return those tags.

    dlt's `drop` command removes a raw table and leaves the record, which would still count the
    dropped rows as landed (in `courier status`, and for the days a run then asks for). Forgotten, the
    tag's files land again as each run reaches their days. The versions each feed has built stay in
    `courier.built_files` with their ETags, so an unchanged file that lands again is not built again.
    """
    if not has_table(db, dataset, RECORD_TABLE):
        return []
    tags = [tag for (tag,) in db.execute(f'select distinct tag from "{dataset}".{RECORD_TABLE} order by tag').fetchall()
            if not raw_table_exists(db, dataset, tag)]
    for tag in tags:
        db.execute(f'delete from "{dataset}".{RECORD_TABLE} where tag = ?', [tag])
    return tags


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


def unbuilt(root: Path, landed: str, record: str, counts: str, every_landed: str | None = None,
            judge_all: bool = False) -> str:
    """SQL: the landed versions of `landed` (a query of file, load_id, etag) that `record` (a query of a
    feed's built versions) does not hold in a row `counts` accepts: the project's window rule
    (macros/window.sql), rendered as the models render it. `every_landed`: every landed version of the
    tag, when `landed` is some of them; `judge_all`: no row `counts` accepts was built with a definition."""
    return _window_rule(root / "macros" / "window.sql").courier_unbuilt(landed, record, counts, every_landed,
                                                                      judge_all)


@functools.lru_cache(maxsize=8)
def _window_rule(path: Path):  # noqa: ANN202 - a Jinja template module
    return jinja2.Environment().from_string(path.read_text(encoding="utf-8")).module


def _record(db: duckdb.DuckDBPyConnection) -> str:
    """A feed's rows of `courier.built_files` (the parameter `$feed_id`); `etag` is null in a warehouse no
    build has migrated yet."""
    etag = "etag" if has_column(db, "courier", "built_files", "etag") else "null::varchar as etag"
    return f"select file, load_id, {etag}, definition, excluded from {BUILT_TABLE} where feed_id = $feed_id"


def _landed(dataset: str, newest_of_days: bool = False) -> str:
    """The landed versions of a tag (the parameter `$tag`), or the newest of each file of the days `$days`."""
    complete = f'_dlt_load_id in (select load_id from "{dataset}".{LOADS_TABLE} where status = 0)'
    if newest_of_days:
        return (f'select file, max(_dlt_load_id) as load_id, arg_max(etag, _dlt_load_id) as etag '
                f'from "{dataset}".{RECORD_TABLE} where {complete} and tag = $tag '
                "and file_date in (select unnest($days::date[])) group by file")
    return f'select file, _dlt_load_id as load_id, etag from "{dataset}".{RECORD_TABLE} where {complete} and tag = $tag'


def unbuilt_files(db: duckdb.DuckDBPyConnection, root: Path, dataset: str, tag: str, feed_id: str,
                  definition: str) -> int:
    """How many landed file versions of `tag` the feed has not built with `definition` (nor excluded):
    the window of its next incremental build (for deciding whether to run dbt at all)."""
    if not has_table(db, dataset, RECORD_TABLE):
        return 0
    if not has_table(db, "courier", "built_files"):
        return db.execute(f"select count(*) from ({_landed(dataset)}) as landed", {"tag": tag}).fetchall()[0][0]
    # (no definition: the feed has no table yet, so no row of its record counts but an excluded one)
    query = unbuilt(root, _landed(dataset), _record(db), "built.excluded or built.definition = $definition",
                    judge_all=not definition)
    return db.execute(f"select count(*) from ({query}) as unbuilt",
                      {"tag": tag, "feed_id": feed_id, "definition": definition}).fetchall()[0][0]


def already_built(db: duckdb.DuckDBPyConnection, root: Path, dataset: str, tag: str, feed_id: str,
                  definition: str, days: Iterable[dt.date]) -> int:
    """How many files of `days` the feed's table holds in their newest landed version."""
    days = sorted(set(days))
    if not days or not has_table(db, dataset, RECORD_TABLE) or not has_table(db, "courier", "built_files"):
        return 0
    newest = _landed(dataset, newest_of_days=True)
    query = unbuilt(root, newest, _record(db), "not built.excluded and built.definition = $definition",
                    every_landed=_landed(dataset))
    return db.execute(f"select (select count(*) from ({newest}) as landed) - "
                      f"(select count(*) from ({query}) as unbuilt)",
                      {"tag": tag, "days": days, "feed_id": feed_id, "definition": definition}).fetchall()[0][0]


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
