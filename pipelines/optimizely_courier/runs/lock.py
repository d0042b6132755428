"""Who may use the warehouse when: DuckDB has one writer per file, and two runs must not interleave.

Courier runs take the run lock, an OS file lock next to the warehouse (`warehouse.duckdb.lock`):
exclusive for a run, shared for the courier's readers (`status`, `explore`), so no reader opens the
file in the middle of a run's landing (a reader's open file stops a writer's next open). A killed run
releases it at once; the file also says which run holds it, for the messages of those waiting.

Processes outside the courier (a `dbt build` or a DuckDB session started by hand) take only DuckDB's
own lock on the file. So a run, its dbt child and `explore` also wait for the file itself to open, up
to their timeout, and say who holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from optimizely_courier.errors import WarehouseBusy

if TYPE_CHECKING:
    import duckdb

POLL_SECONDS = 0.2
OUTSIDE = "not a courier run (a `dbt build` or a DuckDB session started by hand?)"
# Warehouses whose run lock this process holds: its own reads need no shared lock (they would wait on it).
_HELD: set[Path] = set()

Waiting = Callable[[str], None]  # told once, with who holds the warehouse, when a wait begins


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


@contextmanager
def warehouse_lock(warehouse: Path, holder: dict, timeout_seconds: float,
                   on_wait: Waiting | None = None) -> Iterator[None]:
    """Hold the warehouse's run lock, waiting up to `timeout_seconds` for the run (or reader) that has it.

    Raises:
        WarehouseBusy: naming the run that holds the lock.
    """
    with _run_lock(warehouse, fcntl.LOCK_EX, timeout_seconds, on_wait) as handle:
        os.ftruncate(handle, 0)
        os.pwrite(handle, json.dumps({**holder, "pid": os.getpid()}).encode(), 0)
        _HELD.add(warehouse.resolve())
        try:
            yield
        finally:
            _HELD.discard(warehouse.resolve())
            os.ftruncate(handle, 0)  # nobody's name stays: a reader holding it next writes none


@contextmanager
def reading(warehouse: Path, timeout_seconds: float = 0.0, config: dict | None = None,
            on_wait: Waiting | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse once no run and no other process writes it, waiting up to
    `timeout_seconds` (0: not at all).

    Raises:
        WarehouseBusy: naming the run or the process that holds it.
    """
    if warehouse.resolve() in _HELD:  # this process runs: it reads between its own writes
        with _open(warehouse, True, config, 0.0, None) as db:
            yield db
        return
    deadline = time.monotonic() + timeout_seconds
    with _run_lock(warehouse, fcntl.LOCK_SH, timeout_seconds, on_wait):
        with _open(warehouse, True, config, timeout_seconds, on_wait, deadline) as db:
            yield db


def wait_until_writable(warehouse: Path, timeout_seconds: float, on_wait: Waiting | None = None) -> None:
    """Return once the warehouse file can be opened for writing (no other process has it open), waiting up
    to `timeout_seconds`. A run calls it holding its run lock, before it or its dbt child opens the file.

    Raises:
        WarehouseBusy: naming the process that holds it.
    """
    if warehouse.exists():
        with _open(warehouse, False, None, timeout_seconds, on_wait):
            pass


@contextmanager
def _run_lock(warehouse: Path, mode: int, timeout_seconds: float, on_wait: Waiting | None) -> Iterator[int]:
    path = lock_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                fcntl.flock(handle, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _busy(warehouse, run_holder(warehouse), timeout_seconds) from None
                if on_wait is not None:
                    on_wait(run_holder(warehouse))
                    on_wait = None
                time.sleep(POLL_SECONDS)
        yield handle
    finally:
        os.close(handle)  # closing releases the lock


@contextmanager
def _open(warehouse: Path, read_only: bool, config: dict | None, timeout_seconds: float,
          on_wait: Waiting | None, deadline: float | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the DuckDB file, retrying while another process holds DuckDB's own lock on it, until
    `deadline` (default: `timeout_seconds` from now)."""
    import duckdb

    deadline = time.monotonic() + timeout_seconds if deadline is None else deadline
    while True:
        try:
            db = duckdb.connect(str(warehouse), read_only=read_only, config=config or {})
            break
        except duckdb.IOException as exc:
            if not is_lock_conflict(exc):
                raise
            if time.monotonic() >= deadline:
                raise _busy(warehouse, file_holder(exc), timeout_seconds) from None
            if on_wait is not None:
                on_wait(file_holder(exc))
                on_wait = None
            time.sleep(POLL_SECONDS)
    with db:
        yield db


def is_lock_conflict(exc: BaseException) -> bool:
    """Whether DuckDB refused the file because another process holds its lock.

    DuckDB raises the same `IOException` for every I/O failure and tells a lock conflict only in the
    message; this is the one place that reads it.
    """
    return "Could not set lock on file" in str(exc)


def file_holder(exc: BaseException) -> str:
    """Who holds DuckDB's lock, from its message ("Conflicting lock is held in <program> (PID <n>)")."""
    import re

    found = re.search(r"Conflicting lock is held in (.+?) \(PID (\d+)\)", str(exc))
    who = f"PID {found.group(2)} ({found.group(1)})" if found else "another process"
    return f"{who}, {OUTSIDE}"


def run_holder(warehouse: Path) -> str:
    """The run holding the run lock, as its lock file names it (a reader writes nothing there)."""
    try:
        holder = json.loads(lock_path(warehouse).read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not holder:
        return "a courier command reading it"
    return (f"run {holder.get('run_id', '?')} (courier {holder.get('courier', '?')}, pid {holder.get('pid', '?')}, "
            f"started {holder.get('started_at', '?')})")


def _busy(warehouse: Path, who: str, waited: float) -> WarehouseBusy:
    return WarehouseBusy(f"warehouse {warehouse} is busy: {who} holds it; waited {waited:g}s. "
                         "Try again when it has finished", holder=who)
