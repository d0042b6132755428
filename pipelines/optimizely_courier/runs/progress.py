"""Live status of a run: status lines in order; while landing, a bar over files, rows and bytes with
an ETA on a terminal (a plain line each tenth of the bytes otherwise, for logs and CI); a line per
built model; and the closing `Completed in ...` line."""

from __future__ import annotations

import datetime as dt
import sys
from typing import TextIO

from optimizely_courier.landing.discovery import DataFile, Plan

SENSOR_STARTED = "Courier sensor started"
WAITING = "Waiting for source data"
LOADING = "Loading data"
COMMITTING = "Committing domain transactions"
COMPLETED = "Courier job completed"
FAILED = "Courier job failed"


def duration_text(seconds: float) -> str:
    """`5 minutes 12 seconds`, or `12 seconds` under a minute."""
    whole = int(round(seconds))
    minutes, rest = divmod(whole, 60)

    def unit(n: int, name: str) -> str:
        return f"{n} {name}{'' if n == 1 else 's'}"

    return f"{unit(minutes, 'minute')} {unit(rest, 'second')}" if minutes else unit(rest, "second")


class Reporter:
    """Prints a run's progress to `stream` (stderr for --json runs, so stdout stays one document)."""

    def __init__(self, stream: TextIO | None = None, interactive: bool | None = None, enabled: bool = True):
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.enabled = enabled
        self._bar = None
        self._task = None
        self._total = (0, 0)  # files, bytes the run reads
        self._done = [0, 0, 0]  # files, rows, bytes read so far

    def status(self, message: str) -> None:
        if self.enabled:
            self._stop_bar()
            stamp = dt.datetime.now().strftime("%H:%M:%S")
            print(f"{stamp} {message}", file=self.stream, flush=True)

    def plan(self, plan: Plan) -> None:
        files = sum(len(f) for f in plan.files.values())
        self.status(f"{LOADING}: {files} file(s), {plan.total_bytes / 1e6:,.1f} MB for {len(plan.dates)} day(s)")
        for warning in plan.skipped:
            self.warn(warning)
        self._total, self._done = (files, plan.total_bytes), [0, 0, 0]
        if self.enabled and self.interactive and files:
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("  {task.description}"), BarColumn(), DownloadColumn(),
                                 TimeRemainingColumn(), console=Console(file=self.stream), transient=True,
                                 auto_refresh=False)
            self._task = self._bar.add_task(self._read_text(), total=plan.total_bytes)
            self._bar.start()

    def file(self, datafile: DataFile, rows: int) -> None:
        """One more new file fetched and checked, with its rows (it lands when its load commits)."""
        before = self._done[2]
        self._done = [self._done[0] + 1, self._done[1] + rows, self._done[2] + datafile.size]
        if self._bar is not None:
            # drawn on every file, not on a timer: a terminal sees each step, even a fast one
            self._bar.update(self._task, completed=self._done[2], description=self._read_text())
            self._bar.refresh()
        elif self.enabled and self._next_tenth(before) <= self._done[2]:
            print(f"  {self._read_text()}, {self._done[2] / 1e6:,.1f} MB", file=self.stream, flush=True)

    def landing_done(self) -> None:
        """Landing ended (committed or failed): the bar gives way to what follows."""
        self._stop_bar()

    def _read_text(self) -> str:
        return f"read {self._done[0]}/{self._total[0]} files, {self._done[1]:,} rows"

    def _next_tenth(self, done_bytes: int) -> int:
        """The byte count of the next tenth of the run's bytes after `done_bytes` (the last file
        always reaches it)."""
        step = max(self._total[1] // 10, 1)
        return min((done_bytes // step + 1) * step, self._total[1])

    def node(self, result: dict) -> None:
        """A dbt model finished (tests and hooks are not shown)."""
        if not self.enabled or result.get("test"):
            return
        rows = f" ({result['rows']:,} rows)" if isinstance(result.get("rows"), int) and result["rows"] >= 0 else ""
        status = "" if result["status"] == "success" else f" {result['status']}"
        print(f"  built {result['name']}{rows} in {result['seconds']:.1f}s{status}", file=self.stream, flush=True)

    def warn(self, message: str) -> None:
        if self.enabled:
            self._stop_bar()
            print(f"  warning: {message}", file=self.stream, flush=True)

    def completed(self, seconds: float) -> None:
        self.status(COMPLETED)
        if self.enabled:
            print(f"Completed in {duration_text(seconds)}", file=self.stream, flush=True)

    def _stop_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
