"""How a page reads the warehouse: never in a writer's way, never an error because one is writing.

- A courier run records itself as running (in the operational store) before it asks for the warehouse. A
  page that finds one does not open the warehouse at all: it shows the run in progress instead. So a run
  waits at most for the reads already under way (each is one request), never for a stream of new ones.
- Otherwise a page reads through `runs.lock.reading` without waiting: a `dbt build` or a DuckDB session
  started by hand that holds the file makes the page say who holds it, not fail.
- One read at a time in this process, each opening the file and closing it before the response is sent:
  no connection is held between requests, and the library functions a page calls (which open the file
  themselves, read-only) never meet a connection of another configuration in the same process.
- After a read the file stays free for a while, FREE_SHARE times as long as the read held it: pages read
  in a tight loop leave a `dbt build` started by hand (which retries its open, see profiles.yml) most of
  the time to take the file, and a run waiting for it the same.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from optimizely_courier.config.sources import Project
from optimizely_courier.errors import CourierError, WarehouseBusy
from optimizely_courier.runs import store
from optimizely_courier.runs.history import mark_interrupted

READ_QUEUE_SECONDS = 30.0  # how long a request waits for another request's read in this process
FREE_SHARE = 3  # after a read, no other read starts for this many times as long as it took
FREE_AT_LEAST = 0.05  # ... and not for this many seconds
RUNNING = "running"
_ONE_READ = threading.Lock()
_free_until = [0.0]  # (monotonic) before this, no read starts: the file is left to writers


class Unavailable(CourierError):
    """The warehouse is being written (a run in progress, or a process holding the file): shown, not failed."""

    def __init__(self, message: str, runs: list[dict]):
        super().__init__(message)
        self.runs = runs


class NoWarehouse(CourierError):
    """There is no DuckDB warehouse to read: nothing landed yet, or the tables are on another engine."""


def runs_in_progress(project: Project) -> list[dict]:
    """Courier runs recorded as running whose process is alive (a dead one is marked failed, as `courier
    status` does), newest first."""
    mark_interrupted(project.warehouse)
    return store.select(project.warehouse, "runs", {"status": RUNNING}, 50)


def run_holder(runs: list[dict]) -> str:
    run = runs[0]
    return f"run {run['run_id']} (courier {run['courier']}, pid {run['pid']}, started {run['started_at']})"


@contextmanager
def reading(project: Project, config: dict | None = None) -> Iterator[object]:
    """A read-only connection to the warehouse for one request (`config`: DuckDB settings). Library calls
    made inside may open the file themselves (read-only, with the same settings).

    Raises:
        Unavailable: a courier run is in progress, or another process holds the warehouse.
        NoWarehouse: the tables are on another engine, or nothing was landed yet.
    """
    from optimizely_courier.runs.lock import reading as locked

    if project.engine != "duckdb":
        raise NoWarehouse(f"this project's tables are on {project.engine}: the pages read the DuckDB warehouse "
                           "only (run history and status are shown all the same)")
    if not project.warehouse.exists():
        raise NoWarehouse(f"no warehouse at {project.warehouse} yet: run a courier first")
    with serialized():
        running = runs_in_progress(project)
        if running:
            raise Unavailable(f"a courier run is in progress: {run_holder(running)} writes the warehouse", running)
        try:
            with locked(project.warehouse, config=config) as db:
                yield db
        except WarehouseBusy as exc:
            raise Unavailable(f"the warehouse is busy: {exc.holder} holds it", runs_in_progress(project)) from None


@contextmanager
def serialized() -> Iterator[None]:
    """One read at a time in this process, also for a library call that decides itself whether to open the
    file (`courier_status`)."""
    if not _ONE_READ.acquire(timeout=READ_QUEUE_SECONDS):
        raise Unavailable("other pages kept the warehouse for too long; try again", [])
    try:
        time.sleep(max(0.0, _free_until[0] - time.monotonic()))  # pacing reads, so writers find gaps
        started = time.monotonic()
        try:
            yield
        finally:
            ended = time.monotonic()
            _free_until[0] = ended + max(FREE_AT_LEAST, FREE_SHARE * (ended - started))
    finally:
        _ONE_READ.release()
