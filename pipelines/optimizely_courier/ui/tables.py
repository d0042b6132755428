"""A domain table's page: its feed's columns (types, semantic tags, PII marks), its row and rejected-row
counts, a profile per column, and rows with a filter, a sort and pages, read through `courier explore`'s
guard (the filter is one expression on a read-only connection with external access off; the sort names a
column; a page skips a whole number of rows)."""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass
from typing import Any

from optimizely_courier.config.sources import Project
from optimizely_courier.errors import CourierError
from optimizely_courier.feeds.feed import Feed
from optimizely_courier.runs.explore import DOMAIN_SCHEMA, explore
from optimizely_courier.ui.access import reading

PAGE_SIZES = (25, 50, 100, 200)
EXACT_DISTINCT_ROWS = 1_000_000  # above this many rows, distinct counts are estimated (HyperLogLog)
CELL_CHARACTERS = 120  # a longer cell is cut (its whole text in the cell's title); key columns never
GUARDED = {"enable_external_access": False}  # as `courier explore` reads


class BadQuery(CourierError):
    """A page's query string is not one the page takes (a page number that is not one, say)."""


class NotFound(CourierError):
    """No such table (or experiment): the page is a 404."""


@dataclass(frozen=True)
class RowQuery:
    """Which rows a page shows."""

    where: str | None = None
    sort: str | None = None
    descending: bool = False
    page: int = 1
    size: int = PAGE_SIZES[1]

    @classmethod
    def parse(cls, params: dict[str, str]) -> RowQuery:
        """From a query string: `where`, `sort`, `desc=1`, `page` (from 1), `size` (one of PAGE_SIZES)."""
        try:
            page, size = int(params.get("page") or 1), int(params.get("size") or PAGE_SIZES[1])
        except ValueError:
            raise BadQuery("page and size are whole numbers") from None
        if page < 1 or size not in PAGE_SIZES:
            raise BadQuery(f"page starts at 1; size is one of {', '.join(map(str, PAGE_SIZES))}")
        return cls(where=(params.get("where") or "").strip() or None, sort=params.get("sort") or None,
                   descending=params.get("desc") == "1", page=page, size=size)

    def link(self, **changes: Any) -> dict[str, str]:  # noqa: ANN401
        """The query string of this query with some parts changed (for sort and page links)."""
        values = {"where": self.where, "sort": self.sort, "desc": "1" if self.descending else None,
                  "page": str(self.page), "size": str(self.size)}
        values.update({key: None if value is None else str(value) for key, value in changes.items()})
        return {key: value for key, value in values.items() if value not in (None, "")}


def table_view(project: Project, table: str, feeds: list[Feed], query: RowQuery) -> dict[str, Any]:
    """Everything the page shows of `domain."<table>"`.

    Raises:
        Unavailable: a run or another process writes the warehouse.
        CourierError: no such table; a filter or sort the guard refuses (`rows_error` instead, the rest shown).
    """
    feed = next((f for f in feeds if f.domain_table == table), None)
    with reading(project, GUARDED) as db:
        names = _table_names(db)
        if table not in names:
            known = ", ".join(name for name in names if not name.endswith("__rejected")) or "none yet"
            raise NotFound(f"no domain table {table!r}; domain tables: {known}")
        types = db.execute("select column_name, data_type from information_schema.columns where table_schema = ? "
                           "and table_name = ? order by ordinal_position", [DOMAIN_SCHEMA, table]).fetchall()
        rows = db.execute(f"select count(*) from {_relation(table)}").fetchall()[0][0]
        rejected_table = f"{table}__rejected"
        rejected = (db.execute(f"select count(*) from {_relation(rejected_table)}").fetchall()[0][0]
                    if rejected_table in names else None)
        profile = _profile(db, table, types, rows)
        shown, rows_error = None, None
        try:  # through explore's guard, on its own read-only connection (the same settings)
            shown = explore(project.warehouse, table, feeds, limit=query.size, where=query.where,
                            order_by=query.sort, descending=query.descending, offset=(query.page - 1) * query.size,
                            count=True)
        except CourierError as exc:
            rows_error = str(exc)
    return {"table": table, "feed": _feed_summary(feed), "rows": rows, "rejected": rejected,
            "rejected_table": rejected_table if rejected is not None else None,
            "columns": _columns(types, feed, profile, rows),
            "shown": _shown(shown, feed) if shown else None, "rows_error": rows_error, "query": query,
            "pages": -(-shown.matching // query.size) if shown and shown.matching else 1}


def _table_names(db: Any) -> list[str]:  # noqa: ANN401 - a DuckDB connection
    return [row[0] for row in db.execute("select table_name from information_schema.tables where table_schema = ? "
                                         "order by 1", [DOMAIN_SCHEMA]).fetchall()]


def _relation(table: str) -> str:
    return f'{DOMAIN_SCHEMA}."{table.replace(chr(34), chr(34) * 2)}"'


def _quote(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _profile(db: Any, table: str, types: list[tuple[str, str]], rows: int) -> dict[str, dict]:  # noqa: ANN401
    """Per column: values present, distinct values, min and max (over the whole table)."""
    distinct = "count(distinct {})" if rows <= EXACT_DISTINCT_ROWS else "approx_count_distinct({})"
    parts = []
    for name, kind in types:
        column = _quote(name)
        ordered = not any(nested in kind for nested in ("[", "STRUCT", "MAP", "UNION"))
        parts += [f"count({column})", distinct.format(column),
                  f"min({column})" if ordered else "null", f"max({column})" if ordered else "null"]
    if not parts:
        return {}
    values = db.execute(f"select {', '.join(parts)} from {_relation(table)}").fetchall()[0]
    return {name: {"present": values[4 * i], "distinct": values[4 * i + 1], "min": values[4 * i + 2],
                   "max": values[4 * i + 3]} for i, (name, _) in enumerate(types)}


def _columns(types: list[tuple[str, str]], feed: Feed | None, profile: dict, rows: int) -> list[dict]:
    described = {column.name: column for column in feed.columns} if feed else {}
    found = []
    for name, kind in types:
        column, stats = described.get(name), profile.get(name, {})
        present = stats.get("present") or 0
        found.append({"name": name, "data_type": kind, "feed_type": column.type if column else None,
                      "semantics": list(column.semantics) if column else [], "pii": bool(column and column.is_pii),
                      "required": bool(column and column.required), "key": bool(feed and name in feed.primary_key),
                      "description": column.description if column else "", "system": name.startswith("_"),
                      "null_share": (rows - present) / rows if rows else None, "distinct": stats.get("distinct"),
                      "distinct_estimated": rows > EXACT_DISTINCT_ROWS,
                      "min": cell(stats.get("min")), "max": cell(stats.get("max"))})
    return found


def _feed_summary(feed: Feed | None) -> dict | None:
    if feed is None:
        return None
    return {"id": feed.id, "path": feed.path, "courier": feed.courier, "tag": feed.tag,
            "primary_key": list(feed.primary_key), "last_updated": feed.last_updated,
            "error_threshold": feed.error_threshold, "stitch": feed.stitch, "description": feed.description}


def _shown(exploration: Any, feed: Feed | None) -> dict:  # noqa: ANN401 - an explore.Exploration
    keys = set(exploration.keys)
    return {"names": exploration.names, "matching": exploration.matching, "keys": sorted(keys),
            "rows": [[{"text": cell(value), "cut": name not in keys and len(cell(value)) > CELL_CHARACTERS,
                       "null": value is None} for name, value in zip(exploration.names, row)]
                     for row in exploration.rows]}


def cell(value: object) -> str:
    """A value as a cell shows it: timestamps in ISO form, decimals and numbers as they are, nulls empty."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    return str(value)
