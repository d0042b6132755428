"""`courier explore`: a quick look at a domain table, with column types and semantic tags.

`--where` is a filter and nothing else: it must parse as one SQL expression on its own (so it
cannot end the statement, comment out the rest, or add clauses), it is placed in parentheses on
lines of its own, the row limit is applied by the cursor, not in the SQL, and the query runs on a
read-only connection with external access off (so no expression can write, or read a file). A sort
(`courier ui`) names one of the table's columns, quoted; paging skips a whole number of rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from optimizely_courier.errors import CourierError
from optimizely_courier.feeds.feed import Feed
from optimizely_courier.runs.lock import reading
from optimizely_courier.text import as_text

CELL_WIDTH = 32
DOMAIN_SCHEMA = "domain"
KEY_SYSTEM_COLUMNS = ("_pk", "_uuid_pk")  # the key as text and as a UUID: key columns too


@dataclass
class Exploration:
    table: str
    columns: list[tuple[str, str, tuple[str, ...]]]  # name, type, semantic tags
    rows: list[tuple]
    keys: tuple[str, ...] = ()  # the primary key's columns and `_pk`, `_uuid_pk`: never cut
    matching: int | None = None  # rows the filter matches (when counted)

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.columns]


def explore(warehouse: Path, table: str, feeds: list[Feed], limit: int = 20, where: str | None = None,
            lock_timeout: float = 0.0, on_wait: Callable[[str], None] | None = None, order_by: str | None = None,
            descending: bool = False, offset: int = 0, count: bool = False) -> Exploration:
    """Rows of `domain."<table>"` with each column's type and semantic tags.

    Args:
        lock_timeout: how long to wait for a run or another process writing the warehouse.
        on_wait: told who holds the warehouse, when that wait begins.
        order_by: a column of the table to sort by (`descending` for the largest first); rows
            otherwise come in the table's order.
        offset: rows to skip (after the filter and the sort): a page's start.
        count: also count the rows the filter matches (`matching`).

    Raises:
        CourierError: no warehouse, no such table, no such sort column, or a `where` clause DuckDB rejects.
        WarehouseBusy: the warehouse was still being written after `lock_timeout` seconds.
    """
    if not warehouse.exists():
        raise CourierError(f"no warehouse at {warehouse}: run a courier first")
    config = {"enable_external_access": False}
    with reading(warehouse, lock_timeout, config, on_wait) as db:
        tables = [r[0] for r in db.execute("select table_name from information_schema.tables where table_schema = ? "
                                           "order by 1", [DOMAIN_SCHEMA]).fetchall()]
        if table not in tables:
            known = ", ".join(tables) or "none yet (run a courier with load operations, or dbt build)"
            raise CourierError(f"no domain table {table!r}; domain tables: {known}")
        relation = f'{DOMAIN_SCHEMA}."{table}"'
        types = dict(db.execute("select column_name, data_type from information_schema.columns "
                                "where table_schema = ? and table_name = ?", [DOMAIN_SCHEMA, table]).fetchall())
        filtered = f"from {relation}" + (f" where (\n{_filter(where)}\n)" if where else "")
        sql = f"select * {filtered}{_order(order_by, descending, types)}" + (f" offset {int(offset)}" if offset else "")
        try:
            cursor = db.execute(sql)
            rows = cursor.fetchmany(limit)
            names = [d[0] for d in cursor.description]
            matching = db.execute(f"select count(*) {filtered}").fetchall()[0][0] if count else None
        except duckdb.Error as exc:
            raise CourierError(f"--where: {str(exc).splitlines()[0]}") from None
    feed = next((f for f in feeds if f.domain_table == table), None)
    tags = {c.name: c.semantics for c in feed.columns} if feed else {}
    return Exploration(table, [(n, types.get(n, "?"), tags.get(n, ())) for n in names], rows,
                       keys=_keys(feed), matching=matching)


def _keys(feed: Feed | None) -> tuple[str, ...]:
    """The table's key columns."""
    return KEY_SYSTEM_COLUMNS + (feed.primary_key if feed else ())


def _order(column: str | None, descending: bool, columns: dict[str, str]) -> str:
    """An `order by` on one of the table's columns (quoted), or nothing."""
    if column is None:
        return ""
    if column not in columns:
        raise CourierError(f"sort: no column {column!r}; columns: {', '.join(columns)}")
    quoted = '"' + column.replace('"', '""') + '"'
    return f" order by {quoted} {'desc' if descending else 'asc'} nulls last"


def _filter(where: str) -> str:
    """`where`, checked to be exactly one expression: `select <where>` parses as one statement
    (a `;`, an unbalanced parenthesis or a trailing comment that swallows the rest does not)."""
    try:
        statements = duckdb.extract_statements(f"select (\n{where}\n)")
    except duckdb.Error as exc:
        raise CourierError(f"--where: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise CourierError("--where: expected one condition, such as \"revenue_cents > 1000\"; got more than one "
                           "statement")
    return where


def render(exploration: Exploration, output_format: str = "table", vertical: bool = False) -> str:
    """The rows as a table (a header of name, type and semantic tags per column), one block per row
    (`vertical`), CSV or JSON. Tables cut long cells, never a key column's."""
    if output_format == "json":
        return json.dumps([dict(zip(exploration.names, row)) for row in exploration.rows], default=_json_value,
                          indent=2)
    if output_format == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(exploration.names)
        writer.writerows([_csv_value(value) for value in row] for row in exploration.rows)
        return out.getvalue().rstrip("\n")
    body = _vertical(exploration) if vertical else _table(exploration)
    count = len(exploration.rows)
    return f"{body}\n({count} row{'s' if count != 1 else ''} of domain.\"{exploration.table}\")"


def _table(exploration: Exploration) -> str:
    from rich import box
    from rich.table import Table

    table = Table(box=box.MARKDOWN, show_edge=True, pad_edge=True)
    for name, kind, tags in exploration.columns:
        header = "\n".join([name, kind.lower(), " ".join(tags)])
        if name in exploration.keys:
            table.add_column(header, no_wrap=True, overflow="ignore")
        else:
            table.add_column(header, no_wrap=True, overflow="ellipsis", max_width=CELL_WIDTH)
    for row in exploration.rows:
        table.add_row(*[_text(value) for value in row])
    return as_text(table)


def _vertical(exploration: Exploration) -> str:
    """One block per row, a line per column: wide rows read top to bottom, nothing cut."""
    width = max((len(name) for name in exploration.names), default=0)
    blocks = []
    for number, row in enumerate(exploration.rows, 1):
        lines = [f"-[ row {number} ]" + "-" * max(width - 8, 0)]
        lines += [f"{name:<{width}} | {_text(value)}".rstrip() for name, value in zip(exploration.names, row)]
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _json_value(value: object) -> object:
    """What JSON has no type for: dates and timestamps in ISO 8601 (`T`, and the offset when there is
    one), anything else (decimals, UUIDs) as text."""
    return value.isoformat() if isinstance(value, dt.date | dt.time) else str(value)


def _csv_value(value: object) -> object:
    """A cell as other tools write it: `true`/`false`, ISO 8601 dates and timestamps."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return value
