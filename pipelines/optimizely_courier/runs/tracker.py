"""A run in progress, seen from outside: its phase, since when, and its counts so far, kept in the run
history as the run goes (`courier status` and `courier history` show them while it runs).

`RunTracker` stands where the run's `Reporter` stood: each call is passed on to the reporter (the
run's own output), and what changed is recorded. Counts are written at most every `SAVE_SECONDS`,
and on a phase's first and last file, so a run of thousands of files writes a few rows a second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from optimizely_courier.runs.history import CourierRun, save_phase, save_progress

SAVE_SECONDS = 1.0
WAITING_FOR_WAREHOUSE = "Waiting for the warehouse"


class RunTracker:
    """Passes a run's progress to its reporter and keeps it in the run history."""

    def __init__(self, warehouse: Path, run: CourierRun, reporter):  # noqa: ANN001 - a progress.Reporter
        self.warehouse = warehouse
        self.run = run
        self.reporter = reporter
        self._saved = 0.0
        self._resume: str | None = None  # the phase a wait for the warehouse interrupted

    def status(self, message: str) -> None:
        # recorded before it is said: what the run's output shows, `courier status` already has
        self._resume = None
        self.run.progress = {}
        save_phase(self.warehouse, self.run, message)
        self.reporter.status(message)

    def waiting(self, holder: str) -> None:
        """The run waits for the warehouse: `holder` has it (the phase it was in goes on at its next count)."""
        resume = self._resume or self.run.phase
        self.status(f"{WAITING_FOR_WAREHOUSE}: {holder} holds it")
        self._resume = resume

    def listing(self) -> AbstractContextManager:
        return self.reporter.listing()

    def listed(self, files: int) -> None:
        self.reporter.listed(files)

    @contextmanager
    def landing(self, plan, new: dict) -> Iterator[None]:  # noqa: ANN001 - a discovery.Plan
        self._resume = None
        files = sum(len(found) for found in plan.files.values())
        self.run.progress = {"files_done": 0, "files_total": files, "rows": 0, "bytes_total": plan.total_bytes}
        save_phase(self.warehouse, self.run, "Loading data")
        try:
            with self.reporter.landing(plan, new):
                yield
        finally:
            self._save(first_or_last=True)

    def file(self, datafile, rows: int) -> None:  # noqa: ANN001 - a discovery.DataFile
        self.reporter.file(datafile, rows)
        self._resume_after_wait()
        progress = self.run.progress
        progress["files_done"] = progress.get("files_done", 0) + 1
        progress["rows"] = progress.get("rows", 0) + rows
        self._save(first_or_last=progress["files_done"] in (1, progress.get("files_total")))

    def committing(self) -> AbstractContextManager:
        return self.reporter.committing()

    def building(self) -> AbstractContextManager:
        return self.reporter.building()

    def node(self, event: dict) -> None:
        """dbt's progress: a model or test started or finished (see `build.DbtProcess.run`)."""
        self.reporter.node(event)
        self._resume_after_wait()
        if event.get("event", "finished") == "finished" and not event.get("test"):
            self.run.progress["models_built"] = self.run.progress.get("models_built", 0) + 1
            self._save(first_or_last=False)

    def warn(self, message: str) -> None:
        self.reporter.warn(message)

    def _resume_after_wait(self) -> None:
        if self._resume is not None:
            phase, self._resume = self._resume, None
            save_phase(self.warehouse, self.run, phase)

    def _save(self, first_or_last: bool) -> None:
        now = time.monotonic()
        if first_or_last or now - self._saved >= SAVE_SECONDS:
            self._saved = now
            save_progress(self.warehouse, self.run)
