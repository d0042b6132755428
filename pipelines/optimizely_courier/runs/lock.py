"""One run at a time per warehouse: DuckDB has one writer, and two runs must not interleave.

The lock is an OS file lock next to the warehouse (`warehouse.duckdb.lock`), so a killed run
releases it at once; the file also says which run holds it, for the message the waiting run gives.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from optimizely_courier.errors import WarehouseBusy

POLL_SECONDS = 0.2


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


@contextmanager
def warehouse_lock(warehouse: Path, holder: dict, timeout_seconds: float) -> Iterator[None]:
    """Hold the warehouse's run lock, waiting up to `timeout_seconds` for the run that has it.

    Raises:
        WarehouseBusy: naming the run that holds the lock.
    """
    path = lock_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseBusy(_busy_message(path, warehouse, timeout_seconds)) from None
                time.sleep(POLL_SECONDS)
        os.ftruncate(handle, 0)
        os.pwrite(handle, json.dumps({**holder, "pid": os.getpid()}).encode(), 0)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _busy_message(path: Path, warehouse: Path, waited: float) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    who = (f"run {holder.get('run_id', '?')} (courier {holder.get('courier', '?')}, pid {holder.get('pid', '?')}, "
           f"started {holder.get('started_at', '?')})") if holder else "another process"
    return f"warehouse {warehouse} is busy: {who} holds it; waited {waited:g}s. Try again when it has finished"
