"""`courier explore`: a quick look at a domain table, with column types and semantic tags.

`--where` is a filter and nothing else: it must parse as one SQL expression on its own (so it
cannot end the statement, comment out the rest, or add clauses), it is placed in parentheses on
lines of its own, the row limit is applied by the cursor, not in the SQL, and the query runs on a
read-only connection with external access off (so no expression can write, or read a file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import duckdb

from pipelines.errors import CourierError
from pipelines.feeds import Feed

CELL_WIDTH = 32
DOMAIN_SCHEMA = "domain"


@dataclass
class Exploration:
    table: str
    columns: list[tuple[str, str, tuple[str, ...]]]  # name, type, semantic tags
    rows: list[tuple]


def explore(warehouse: Path, table: str, feeds: list[Feed], limit: int = 20, where: Optional[str] = None) -> Exploration:
    """Rows of `domain."<table>"` with each column's type and semantic tags.

    Raises:
        CourierError: no warehouse, no such table, or a `where` clause DuckDB rejects.
    """
    if not warehouse.exists():
        raise CourierError(f"no warehouse at {warehouse}: run a courier first")
    config = {"enable_external_access": False}
    with duckdb.connect(str(warehouse), read_only=True, config=config) as db:
        tables = [r[0] for r in db.execute("select table_name from information_schema.tables where table_schema = ? "
                                           "order by 1", [DOMAIN_SCHEMA]).fetchall()]
        if table not in tables:
            known = ", ".join(tables) or "none yet (run a courier with load operations, or dbt build)"
            raise CourierError(f"no domain table {table!r}; domain tables: {known}")
        relation = f'{DOMAIN_SCHEMA}."{table}"'
        sql = f"select * from {relation}" + (f" where (\n{_filter(where)}\n)" if where else "")
        try:
            cursor = db.execute(sql)
            rows = cursor.fetchmany(limit)
        except duckdb.Error as exc:
            raise CourierError(f"--where: {str(exc).splitlines()[0]}") from None
        names = [d[0] for d in cursor.description]
        types = dict(db.execute("select column_name, data_type from information_schema.columns "
                                "where table_schema = ? and table_name = ?", [DOMAIN_SCHEMA, table]).fetchall())
    feed = next((f for f in feeds if f.domain_table == table), None)
    tags = {c.name: c.semantics for c in feed.columns} if feed else {}
    return Exploration(table, [(n, types.get(n, "?"), tags.get(n, ())) for n in names], rows)


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


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


def render(exploration: Exploration) -> str:
    """A plain-text table; the header has each column's name, type and tags."""
    header = [[name, kind.lower(), " ".join(tags)] for name, kind, tags in exploration.columns]
    body = [[_cell(v) for v in row] for row in exploration.rows]
    widths = [max([len(h) for h in column] + [len(r[i]) for r in body])
              for i, column in enumerate(header)]
    lines = []
    for level in range(3):
        lines.append(" | ".join(column[level].ljust(widths[i]) for i, column in enumerate(header)).rstrip())
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in body]
    lines.append(f"({len(body)} row{'s' if len(body) != 1 else ''} of domain.\"{exploration.table}\")")
    return "\n".join(lines)
