"""Run history: every courier run and group run, successful or not, in the operational store
(`runs.store`: SQLite beside the warehouse, readable while the warehouse is written).

A run is recorded as `running` when it starts, its phase and counts as it goes, and the rest when it
ends. A run whose process died (killed, machine off) is marked `failed` by the next command that finds
it (a run, `status`, `history`).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from optimizely_courier.runs import store

INTERRUPTED = "interrupted: the run's process ended before the run finished"


@dataclass
class CourierRun:
    """One courier run."""

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
    phase: str | None = None  # while it runs: what it is doing, since when, and its counts so far
    phase_since: dt.datetime | None = None
    progress: dict = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass
class GroupRun:
    """A courier group run and the courier runs it made."""

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
    phase: str | None = None
    phase_since: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in data.items()}


def _table(run: CourierRun | GroupRun) -> str:
    return "runs" if isinstance(run, CourierRun) else "group_runs"


def save(warehouse: Path, run: CourierRun | GroupRun) -> None:
    """Insert or update a courier run or a group run."""
    store.save(warehouse, _table(run), asdict(run))


def save_phase(warehouse: Path, run: CourierRun | GroupRun, phase: str) -> None:
    """Record what a run in progress is doing now: a courier run's progress counts, a group run whole (its
    courier runs and alerts so far; it changes phase a few times)."""
    run.phase, run.phase_since = phase, dt.datetime.now(dt.UTC)
    if isinstance(run, GroupRun):
        save(warehouse, run)
    else:
        save_progress(warehouse, run)


def save_progress(warehouse: Path, run: CourierRun | GroupRun) -> None:
    """Record a run's phase and counts so far (cheaper than `save`: often called while it runs)."""
    values = {"phase": run.phase, "phase_since": run.phase_since}
    if isinstance(run, CourierRun):
        values["progress"] = run.progress
    store.update(warehouse, _table(run), run.run_id, values)


def mark_interrupted(warehouse: Path) -> list[str]:
    """Mark `running` runs and group runs of this host whose process is gone as failed; return their ids."""
    dead = [(table, run_id) for table, run_id, pid in store.running(warehouse, socket.gethostname())
            if not _alive(pid)]
    for table, run_id in dead:
        store.update(warehouse, table, run_id, {"status": "failed", "error": INTERRUPTED})
    return [run_id for _, run_id in dead]


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
    """Courier runs (or, with table="group_runs", group runs), newest first, as JSON-ready values."""
    filters = {"group_name": group} if table == "group_runs" else {"courier": courier, "group_name": group}
    return store.select(warehouse, table, filters, limit)


def history_pending(warehouse: Path) -> bool:
    """Whether runs an earlier version recorded in the warehouse are not shown yet (it is being written)."""
    return store.migration_pending(warehouse)


def last_success(warehouse: Path, group: str) -> dt.datetime | None:
    """The scheduled time of a group's newest successful scheduled run, if any."""
    found = store.last_success(warehouse, group)
    return dt.datetime.fromisoformat(found).astimezone(dt.UTC) if found else None


def save_view(warehouse: Path, courier: str, view: dict[str, Any]) -> None:
    """Keep a courier's landed and built data as the warehouse shows them now (see `status`)."""
    store.save_view(warehouse, courier, view)


def last_view(warehouse: Path, courier: str) -> dict[str, Any] | None:
    """The courier's last kept view of the warehouse, with `taken_at`."""
    return store.view(warehouse, courier)
