"""The operational store: courier runs, group runs, the progress of runs in progress, and the last view
of the warehouse per courier, for people and schedulers (`courier history`, `status`, `group history`).

It is SQLite in WAL mode (Python's own sqlite3) at `.courier/<warehouse name>.runs.sqlite` beside the
warehouse, so its readers never wait for a writer: `status` and `history` answer while a courier run or a
plain `dbt build` holds the DuckDB file. What is landed and built (`landing.record`) stays in the warehouse,
in the transactions that change the data it describes.

This module is the only one that opens the store: its tables, its writes and its reads. Values go in as
JSON-ready Python (dicts, lists, UTC datetimes) and come out the same way, timestamps as ISO text.

Warehouses of earlier versions kept the history in DuckDB (`courier.runs`, `courier.group_runs`); the
first time the store is opened it copies those rows in, once, as soon as the warehouse can be read.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from optimizely_courier.settings import STATE_DIR

BUSY_TIMEOUT_SECONDS = 30  # how long a writer waits for another writer's transaction (they take milliseconds)
# Per table, its columns: (SQLite type, whether it holds JSON). The first column is the key.
RUN_COLUMNS = {
    "run_id": ("text primary key", False), "courier": ("text", False), "group_name": ("text", False),
    "dates": ("text", False), "status": ("text", False), "started_at": ("text", False),
    "ended_at": ("text", False), "duration_seconds": ("real", False), "files": ("text", True),
    "landed": ("text", True), "already_landed": ("text", True), "rows": ("text", True), "feeds": ("text", True),
    "skipped": ("text", True), "rejected": ("text", True), "new_columns": ("text", True),
    "error": ("text", False), "load_id": ("text", False), "host": ("text", False), "pid": ("integer", False),
    "phase": ("text", False), "phase_since": ("text", False), "progress": ("text", True),
}
GROUP_COLUMNS = {
    "run_id": ("text primary key", False), "group_name": ("text", False), "scheduled_for": ("text", False),
    "dates": ("text", False), "status": ("text", False), "started_at": ("text", False),
    "ended_at": ("text", False), "courier_runs": ("text", True), "alerts": ("text", True),
    "downstream": ("text", True), "error": ("text", False), "host": ("text", False), "pid": ("integer", False),
    "phase": ("text", False), "phase_since": ("text", False),
}
VIEW_COLUMNS = {"courier": ("text primary key", False), "taken_at": ("text", False), "view": ("text", True)}
META_COLUMNS = {"key": ("text primary key", False), "value": ("text", False)}
TABLES = {"runs": RUN_COLUMNS, "group_runs": GROUP_COLUMNS, "warehouse_views": VIEW_COLUMNS, "meta": META_COLUMNS}
# JSON columns that hold a mapping (the others hold a list): what an empty one reads as
MAPPINGS = {"files", "landed", "already_landed", "rows", "feeds", "new_columns", "progress", "view"}
INDEXES = ("create index if not exists runs_by_courier on runs (courier, started_at)",
           "create index if not exists group_runs_by_group on group_runs (group_name, started_at)")
MIGRATED = "migrated_from_warehouse"  # meta key: when the warehouse's own history was copied in


def store_path(warehouse: Path) -> Path:
    """Where the store of a warehouse lives: `.courier/` beside it (the project's, by default)."""
    return warehouse.parent / STATE_DIR / f"{warehouse.stem}.runs.sqlite"


def save(warehouse: Path, table: str, row: dict[str, Any]) -> None:
    """Insert or replace one row (a run or a group run) by its key."""
    columns = TABLES[table]
    names = [name for name in columns if name in row]
    with _connect(warehouse, create=True) as db:
        db.execute(f"insert or replace into {table} ({', '.join(names)}) values ({', '.join('?' * len(names))})",
                   [_stored(row[name], columns[name][1]) for name in names])


def update(warehouse: Path, table: str, run_id: str, values: dict[str, Any]) -> None:
    """Set some columns of one run or group run (its phase and progress, say)."""
    columns = TABLES[table]
    assignments = ", ".join(f"{name} = ?" for name in values)
    with _connect(warehouse, create=True, migrate=False) as db:  # (often, mid-run: see `_connect`)
        db.execute(f"update {table} set {assignments} where run_id = ?",
                   [*(_stored(value, columns[name][1]) for name, value in values.items()), run_id])


def running(warehouse: Path, host: str) -> list[tuple[str, str, int]]:
    """(table, run id, pid) of every run and group run of `host` recorded as running."""
    with _connect(warehouse, create=False) as db:
        if db is None:
            return []
        return [(table, run_id, pid) for table in ("runs", "group_runs")
                for run_id, pid in db.execute(f"select run_id, pid from {table} where status = 'running' and "
                                              "host = ?", [host]).fetchall()]


def select(warehouse: Path, table: str, filters: dict[str, str | None], limit: int) -> list[dict[str, Any]]:
    """Rows of `runs` or `group_runs` matching `filters` (column: value, None for any), newest first."""
    chosen = {name: value for name, value in filters.items() if value is not None}
    where = ("where " + " and ".join(f"{name} = ?" for name in chosen)) if chosen else ""
    with _connect(warehouse, create=False) as db:
        if db is None:
            return []
        cursor = db.execute(f"select * from {table} {where} order by started_at desc limit ?",
                            [*chosen.values(), limit])
        names = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
    return [{name: _loaded(name, value, TABLES[table][name][1]) for name, value in zip(names, row)} for row in rows]


def last_success(warehouse: Path, group: str) -> str | None:
    """The scheduled time (ISO, UTC) of a group's newest successful scheduled run, if any."""
    with _connect(warehouse, create=False) as db:
        if db is None:
            return None
        return db.execute("select max(scheduled_for) from group_runs where group_name = ? and status = 'success' "
                          "and scheduled_for is not null", [group]).fetchall()[0][0]


def save_view(warehouse: Path, courier: str, view: dict[str, Any]) -> None:
    """Keep what a courier's data looked like in the warehouse now (for `status` while it is busy)."""
    save(warehouse, "warehouse_views", {"courier": courier, "taken_at": dt.datetime.now(dt.UTC), "view": view})


def view(warehouse: Path, courier: str) -> dict[str, Any] | None:
    """The courier's last kept view of the warehouse, with `taken_at`, or None."""
    with _connect(warehouse, create=False) as db:
        if db is None:
            return None
        found = db.execute("select taken_at, view from warehouse_views where courier = ?", [courier]).fetchone()
    return {**json.loads(found[1]), "taken_at": found[0]} if found else None


def migration_pending(warehouse: Path) -> bool:
    """Whether the warehouse may still hold history of an earlier version not yet copied in (it was busy)."""
    if not warehouse.exists():
        return False
    with _connect(warehouse, create=False) as db:
        return db is None or _meta(db, MIGRATED) is None


@contextmanager
def _connect(warehouse: Path, create: bool, migrate: bool = True) -> Iterator[sqlite3.Connection | None]:
    """The store, in autocommit mode (each statement its own transaction); None when it does not exist
    and `create` is false (it is created anyway when there is a warehouse, whose earlier history the
    first reader then copies in). Progress updates do not `migrate`: they come while the run's own
    landing may have the warehouse open in this process."""
    path = store_path(warehouse)
    if not path.exists() and not create and not warehouse.exists():
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        db.execute("pragma journal_mode = wal")  # readers never wait for the writer, nor it for them
        db.execute("pragma synchronous = normal")  # WAL: a crash of the process loses no committed run
        _create_tables(db)
        if migrate and _meta(db, MIGRATED) is None:
            _migrate(db, warehouse)
        yield db
    finally:
        db.close()


def _create_tables(db: sqlite3.Connection) -> None:
    for table, columns in TABLES.items():
        definition = ", ".join(f"{name} {kind}" for name, (kind, _) in columns.items())
        db.execute(f"create table if not exists {table} ({definition})")
        present = {row[1] for row in db.execute(f"pragma table_info({table})")}
        for name, (kind, _) in columns.items():  # a store of an earlier version gains new columns
            if name not in present:
                db.execute(f"alter table {table} add column {name} {kind.split()[0]}")
    for index in INDEXES:
        db.execute(index)


def _meta(db: sqlite3.Connection, key: str) -> str | None:
    found = db.execute("select value from meta where key = ?", [key]).fetchone()
    return found[0] if found else None


def _migrate(db: sqlite3.Connection, warehouse: Path) -> None:
    """Copy the history an earlier version kept in the warehouse (`courier.runs`, `courier.group_runs`), once.

    The warehouse is read only when no one writes it (`lock.reading`); while it is busy, or cannot be
    read at all, the copy waits for the next time the store is opened. Rows the store already has are kept.
    """
    import duckdb

    from optimizely_courier.errors import WarehouseBusy
    from optimizely_courier.runs.lock import reading

    legacy: dict[str, list[dict]] = {}
    if warehouse.exists():
        try:
            with reading(warehouse) as duck:
                legacy = {table: _legacy_rows(duck, table) for table in ("runs", "group_runs")}
        except (WarehouseBusy, duckdb.Error):
            return
    db.execute("begin immediate")
    try:
        if _meta(db, MIGRATED) is None:  # another process may have copied it meanwhile
            for table, rows in legacy.items():
                for row in rows:
                    columns = TABLES[table]
                    names = [name for name in columns if name in row]
                    db.execute(f"insert or ignore into {table} ({', '.join(names)}) "
                               f"values ({', '.join('?' * len(names))})",
                               [_stored(row[name], columns[name][1], legacy=True) for name in names])
            db.execute("insert into meta (key, value) values (?, ?)", [MIGRATED, dt.datetime.now(dt.UTC).isoformat()])
        db.execute("commit")
    except BaseException:
        db.execute("rollback")
        raise


def _legacy_rows(duck: Any, table: str) -> list[dict]:  # noqa: ANN401 - a DuckDB connection
    exists = duck.execute("select count(*) from information_schema.tables where table_schema = 'courier' and "
                          "table_name = ?", [table]).fetchall()[0][0]
    if not exists:
        return []
    cursor = duck.execute(f"select * from courier.{table}")
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _stored(value: Any, is_json: bool, legacy: bool = False) -> Any:  # noqa: ANN401
    """A value as the store keeps it: JSON as text, datetimes as ISO text in UTC (so they sort)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if is_json and value is not None and not (legacy and isinstance(value, str)):  # DuckDB's json is text already
        return json.dumps(value)
    return value


def _loaded(name: str, value: Any, is_json: bool) -> Any:  # noqa: ANN401
    if not is_json:
        return value
    return json.loads(value) if value else ({} if name in MAPPINGS else [])
