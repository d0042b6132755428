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
from typing import Any, Optional

import duckdb

SCHEMA = "courier"
COLUMNS = {
    "run_id": "varchar primary key", "courier": "varchar", "group_name": "varchar", "dates": "varchar",
    "status": "varchar", "started_at": "timestamptz", "ended_at": "timestamptz", "duration_seconds": "double",
    "files": "json", "rows": "json", "feeds": "json", "skipped": "json", "error": "varchar", "load_id": "varchar",
    "host": "varchar", "pid": "integer",
}
JSON_FIELDS = ("files", "rows", "feeds", "skipped")


@dataclass
class RunRecord:
    """One row of `courier.runs`."""

    run_id: str
    courier: str
    dates: str
    status: str = "running"
    group_name: Optional[str] = None
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    ended_at: Optional[dt.datetime] = None
    duration_seconds: Optional[float] = None
    files: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)
    feeds: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    error: Optional[str] = None
    load_id: Optional[str] = None
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("started_at", "ended_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


def _connect(warehouse: Path) -> duckdb.DuckDBPyConnection:
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    db = duckdb.connect(str(warehouse))
    db.execute(f"create schema if not exists {SCHEMA}")
    columns = ", ".join(f'"{name}" {kind}' for name, kind in COLUMNS.items())
    db.execute(f"create table if not exists {SCHEMA}.runs ({columns})")
    return db


def _values(record: RunRecord) -> list[Any]:
    data = asdict(record)
    return [json.dumps(data[name]) if name in JSON_FIELDS else data[name] for name in COLUMNS]


def save(warehouse: Path, record: RunRecord) -> None:
    """Insert or update a run."""
    names = ", ".join(f'"{name}"' for name in COLUMNS)
    marks = ", ".join("?" for _ in COLUMNS)
    with _connect(warehouse) as db:
        db.execute(f"insert or replace into {SCHEMA}.runs ({names}) values ({marks})", _values(record))


def mark_interrupted(warehouse: Path) -> list[str]:
    """Mark `running` runs of this host whose process is gone as failed; return their ids."""
    if not warehouse.exists():
        return []
    with _connect(warehouse) as db:
        rows = db.execute(f"select run_id, pid from {SCHEMA}.runs where status = 'running' and host = ?",
                          [socket.gethostname()]).fetchall()
        dead = [run_id for run_id, pid in rows if not _alive(pid)]
        for run_id in dead:
            db.execute(f"update {SCHEMA}.runs set status = 'failed', error = ? where run_id = ?",
                       ["interrupted: the run's process ended before the run finished", run_id])
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


def list_runs(warehouse: Path, courier: Optional[str] = None, limit: int = 20) -> list[dict[str, Any]]:
    """Runs, newest first."""
    if not warehouse.exists():
        return []
    with duckdb.connect(str(warehouse), read_only=True) as db:
        exists = db.execute("select count(*) from information_schema.tables where table_schema = ? and "
                            "table_name = 'runs'", [SCHEMA]).fetchall()[0][0]
        if not exists:
            return []
        where = "where courier = ?" if courier else ""
        params = [courier] if courier else []
        cursor = db.execute(f"select * from {SCHEMA}.runs {where} order by started_at desc limit {int(limit)}",
                            params)
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row)) for row in cursor.fetchall()]
    for row in rows:
        for key in JSON_FIELDS:
            row[key] = json.loads(row[key]) if row[key] else ({} if key != "skipped" else [])
        for key in ("started_at", "ended_at"):
            row[key] = row[key].isoformat() if row[key] else None
    return rows
