"""Run history: every courier run, successful or not, in the warehouse table `courier.runs`.

A run is recorded as `running` when it starts and updated when it ends. A run whose process died
(killed, machine off) is marked `failed` by the next run that finds it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

SCHEMA = "courier"
COLUMNS = {
    "run_id": "varchar primary key", "courier": "varchar", "group_name": "varchar", "dates": "varchar",
    "status": "varchar", "started_at": "timestamptz", "ended_at": "timestamptz", "duration_seconds": "double",
    "files": "json", "landed": "json", "already_landed": "json", "rows": "json", "feeds": "json", "skipped": "json",
    "rejected": "json", "new_columns": "json",
    "error": "varchar", "load_id": "varchar", "host": "varchar", "pid": "integer",
}
GROUP_COLUMNS = {
    "run_id": "varchar primary key", "group_name": "varchar", "scheduled_for": "timestamptz", "dates": "varchar",
    "status": "varchar", "started_at": "timestamptz", "ended_at": "timestamptz", "courier_runs": "json",
    "alerts": "json", "downstream": "json", "error": "varchar", "host": "varchar", "pid": "integer",
}
JSON_FIELDS = ("files", "landed", "already_landed", "rows", "feeds", "skipped", "rejected", "new_columns",
               "courier_runs", "alerts", "downstream")
JSON_MAPPINGS = ("files", "landed", "already_landed", "rows", "feeds", "new_columns")
TABLES = {"runs": COLUMNS, "group_runs": GROUP_COLUMNS}


@dataclass
class RunRecord:
    """One row of `courier.runs`."""

    run_id: str
    courier: str
    dates: str
    status: str = "running"
    group_name: str | None = None
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    ended_at: dt.datetime | None = None
    duration_seconds: float | None = None
    files: dict = field(default_factory=dict)  # per tag, files the run's days hold
    landed: dict = field(default_factory=dict)  # per tag, files this run landed
    already_landed: dict = field(default_factory=dict)  # per tag, files an earlier run landed
    rows: dict = field(default_factory=dict)  # per tag, rows this run landed
    feeds: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    rejected: list = field(default_factory=list)  # files rejected by policy: {"file", "reason"}
    new_columns: dict = field(default_factory=dict)  # per tag, columns the run added to the raw table
    error: str | None = None
    load_id: str | None = None
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    def to_json(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass
class GroupRecord:
    """One row of `courier.group_runs`: a courier group run and the courier runs it made."""

    run_id: str
    group_name: str
    dates: str
    scheduled_for: dt.datetime | None = None
    status: str = "running"
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    ended_at: dt.datetime | None = None
    courier_runs: list = field(default_factory=list)
    alerts: list = field(default_factory=list)
    downstream: list = field(default_factory=list)
    error: str | None = None
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    def to_json(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in data.items()}


def _connect(warehouse: Path) -> duckdb.DuckDBPyConnection:
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    db = duckdb.connect(str(warehouse))
    db.execute(f"create schema if not exists {SCHEMA}")
    for table, columns in TABLES.items():
        definition = ", ".join(f'"{name}" {kind}' for name, kind in columns.items())
        db.execute(f"create table if not exists {SCHEMA}.{table} ({definition})")
        for name, kind in columns.items():  # a warehouse from an older version gains new columns
            db.execute(f'alter table {SCHEMA}.{table} add column if not exists "{name}" {kind.split()[0]}')
    return db


def save(warehouse: Path, record: RunRecord | GroupRecord) -> None:
    """Insert or update a courier run or a group run."""
    table = "runs" if isinstance(record, RunRecord) else "group_runs"
    columns = TABLES[table]
    data = asdict(record)
    values = [json.dumps(data[name]) if name in JSON_FIELDS else data[name] for name in columns]
    names = ", ".join(f'"{name}"' for name in columns)
    marks = ", ".join("?" for _ in columns)
    with _connect(warehouse) as db:
        db.execute(f"insert or replace into {SCHEMA}.{table} ({names}) values ({marks})", values)


def mark_interrupted(warehouse: Path) -> list[str]:
    """Mark `running` runs and group runs of this host whose process is gone as failed; return their ids."""
    if not warehouse.exists():
        return []
    dead: list[str] = []
    with _connect(warehouse) as db:
        for table in ("runs", "group_runs"):
            rows = db.execute(f"select run_id, pid from {SCHEMA}.{table} where status = 'running' and host = ?",
                              [socket.gethostname()]).fetchall()
            for run_id, pid in rows:
                if not _alive(pid):
                    db.execute(f"update {SCHEMA}.{table} set status = 'failed', error = ? where run_id = ?",
                               ["interrupted: the run's process ended before the run finished", run_id])
                    dead.append(run_id)
    return dead


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_runs(warehouse: Path, courier: str | None = None, limit: int = 20, group: str | None = None,
              table: str = "runs") -> list[dict[str, Any]]:
    """Courier runs (or, with table="group_runs", group runs), newest first."""
    if not warehouse.exists():
        return []
    filters = [(column, value) for column, value in (("courier", courier), ("group_name", group)) if value]
    where = ("where " + " and ".join(f"{column} = ?" for column, _ in filters)) if filters else ""
    with duckdb.connect(str(warehouse), read_only=True) as db:
        exists = db.execute("select count(*) from information_schema.tables where table_schema = ? and "
                            "table_name = ?", [SCHEMA, table]).fetchall()[0][0]
        if not exists:
            return []
        cursor = db.execute(f"select * from {SCHEMA}.{table} {where} order by started_at desc limit {int(limit)}",
                            [value for _, value in filters])
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row)) for row in cursor.fetchall()]
    for row in rows:
        for key in JSON_FIELDS:
            if key in row:
                row[key] = json.loads(row[key]) if row[key] else ({} if key in JSON_MAPPINGS else [])
    return [_jsonable(row) for row in rows]


def last_success(warehouse: Path, group: str) -> dt.datetime | None:
    """The scheduled time of a group's newest successful scheduled run, if any."""
    if not warehouse.exists():
        return None
    with _connect(warehouse) as db:
        found = db.execute(f"select max(scheduled_for) from {SCHEMA}.group_runs where group_name = ? and "
                           "status = 'success' and scheduled_for is not null", [group]).fetchall()[0][0]
    return found.astimezone(dt.UTC) if found else None
