"""Live status of a run: status lines in order, and within them phases with their counts.

    listing     prefixes listed, files found
    landing     files read, rows, MB, rate           (a bar on a terminal: reading is half of landing)
    committing  the files and rows of a load, elapsed (the other half: the load commits them)
    building    model i of N started, elapsed, rows of each model built

On a terminal a live line shows the current phase, redrawn on every event and at least every
REFRESH_SECONDS; it never shows 100% (a phase ends when its work is done, and its line goes). In logs
(any other stream) a phase prints plain lines: its start and end, a line per tenth of the bytes read,
and, when nothing else was printed for HEARTBEAT_SECONDS, a line saying where it stands. A timer thread
runs while a phase does and stops when the phase ends.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

from optimizely_courier.landing.discovery import DataFile, Plan

SENSOR_STARTED = "Courier sensor started"
WAITING = "Waiting for source data"
LOADING = "Loading data"
COMMITTING = "Committing domain transactions"
COMPLETED = "Courier job completed"
FAILED = "Courier job failed"

REFRESH_SECONDS = 1.0  # a terminal's live line is redrawn at least this often (promised: every 2 s)
HEARTBEAT_SECONDS = 25.0  # in logs, a line at least this often while a phase lasts (promised: every 30 s)
TICK_SECONDS = 0.25  # how often the timer looks at the clock (added to both of the above at most)
BAR_WIDTH = 24


def duration_text(seconds: float) -> str:
    """`5 minutes 12 seconds`, or `12 seconds` under a minute."""
    whole = int(round(seconds))
    minutes, rest = divmod(whole, 60)

    def unit(n: int, name: str) -> str:
        return f"{n} {name}{'' if n == 1 else 's'}"

    return f"{unit(minutes, 'minute')} {unit(rest, 'second')}" if minutes else unit(rest, "second")


def elapsed_text(seconds: float) -> str:
    """`0.4 s`, `12 s`, `3 min 05 s`: short, for a line that is redrawn."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def run_table(report) -> str:  # noqa: ANN001 - a run.RunReport
    """Per-tag files and rows landed, then per-feed rows upserted and rejected."""
    landing = report.landing
    lines = [f"Courier {landing.courier} ({landing.location}), {landing.dates.describe()}:"]
    width = max([len("tag")] + [len(tag) for tag in landing.tags])
    lines.append(f"  {'tag':<{width}}  {'files':>7}  {'rows':>12}  {'already landed':>14}")
    for tag, stats in landing.tags.items():
        lines.append(f"  {tag:<{width}}  {stats.files:>7,}  {stats.rows:>12,}  {stats.already_landed:>14,}")
    if report.feeds:
        width = max(len(feed.domain_table) for feed in report.feeds.values())
        lines.append(f"  {'domain table':<{width}}  {'inserted':>10}  {'updated':>10}  {'rejected':>9}")
        for feed in report.feeds.values():
            note = ("  (truncated first)" if feed.truncated else
                    f"  (up to date: {feed.already_built:,} file(s) already built)" if not feed.files else "")
            lines.append(f"  {feed.domain_table:<{width}}  {feed.inserted:>10,}  {feed.updated:>10,}  "
                         f"{feed.rejected:>9,}{note}")
    for tag, stats in landing.tags.items():
        if stats.new_columns:
            lines.append(f"  raw table {tag} gained column(s): {', '.join(stats.new_columns)}")
        lines += [f"  warning: rejected {item['reason']} (retried on the next run)" for item in stats.rejected]
    if landing.samples:
        lines.append(f"  samples kept: {', '.join(str(p.name) for p in landing.samples)} (see `courier samples`)")
    return "\n".join(lines)


@dataclass
class _Phase:
    """A phase in progress: what its live line and heartbeat say, given the seconds since it began."""

    text: Callable[[float], str]
    started: float
    fraction: Callable[[], float] | None = None  # how far it is, for a terminal's bar


@dataclass
class _Landing:
    """Counts of the files a run lands: totals, read so far, and committed so far."""

    files: int = 0
    bytes: int = 0
    read: list[int] = field(default_factory=lambda: [0, 0, 0])  # files, rows, bytes
    committed: list[int] = field(default_factory=lambda: [0, 0, 0])
    started: float = 0.0


@dataclass
class _Build:
    """What dbt has done so far in a build."""

    models: int | None = None  # how many models the build selects, when dbt's worker could tell
    started: int = 0
    built: int = 0
    running: list[str] = field(default_factory=list)


class Reporter:
    """Prints a run's progress to `stream` (stderr for --json runs, so stdout stays one document).

    Args:
        stream: where to print (default stdout).
        interactive: draw a live line (default: whether `stream` is a terminal).
        enabled: False prints nothing at all.
        clock: seconds, monotonic (tests pass their own and call `beat()` themselves).
        timer: run a thread that calls `beat()` while a phase lasts.
    """

    def __init__(self, stream: TextIO | None = None, interactive: bool | None = None, enabled: bool = True,
                 clock: Callable[[], float] = time.monotonic, timer: bool = True):
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.enabled = enabled
        self._clock = clock
        self._timer_wanted = timer
        self._lock = threading.RLock()  # the timer thread prints too
        self._phases: list[_Phase] = []
        self._listed = [0, 0]  # prefixes listed, files found
        self._landing = _Landing()
        self._build = _Build()
        self._last_line = clock()  # when a line was last printed
        self._last_draw = clock()  # when the live line was last drawn
        self._drawn = False
        self._timer: threading.Thread | None = None
        self._stop_timer = threading.Event()

    # ---- lines

    def status(self, message: str) -> None:
        """A status line, with the time of day."""
        self._line(f"{dt.datetime.now().strftime('%H:%M:%S')} {message}")

    def warn(self, message: str) -> None:
        self._line(f"  warning: {message}")

    def completed(self, seconds: float) -> None:
        self.status(COMPLETED)
        self._line(f"Completed in {duration_text(seconds)}")

    def block(self, text: str) -> None:
        """Lines printed as they are (a run's table, a command's output)."""
        for line in text.splitlines():
            self._line(line)

    # ---- phases

    @contextmanager
    def listing(self) -> Iterator[None]:
        """Listing the run's days: prefixes listed and files found (`listed` counts them)."""
        self._listed = [0, 0]
        with self._phase(lambda s: f"listing: {self._listed[0]} prefix(es), {self._listed[1]:,} file(s) found, "
                                   f"{elapsed_text(s)}") as phase:
            yield
            self._line(f"  listed {self._listed[0]} prefix(es) in {elapsed_text(self._clock() - phase.started)}: "
                       f"{self._listed[1]:,} file(s) found")

    def listed(self, files: int) -> None:
        """One more prefix listed, holding `files` data files."""
        with self._lock:
            self._listed = [self._listed[0] + 1, self._listed[1] + files]
            self._draw()

    @contextmanager
    def landing(self, plan: Plan, new: dict[str, list[DataFile]]) -> Iterator[None]:
        """Landing the new files of `plan` (`file` and `committing` report on them)."""
        files = sum(len(f) for f in plan.files.values())
        self.status(f"{LOADING}: {files} file(s), {plan.total_bytes / 1e6:,.1f} MB for {len(plan.dates)} day(s)")
        for warning in plan.skipped:
            self.warn(warning)
        new_files = [datafile for tag_files in new.values() for datafile in tag_files]
        self._landing = _Landing(len(new_files), sum(f.size for f in new_files), started=self._clock())
        if len(new_files) < files:
            self._line(f"  {files - len(new_files)} file(s) already landed, {len(new_files)} new "
                       f"({self._landing.bytes / 1e6:,.1f} MB)")
        if not new_files:
            yield
            return
        with self._phase(lambda s: f"landing: {self._read_text()}, {elapsed_text(s)}", fraction=self._landed_fraction):
            yield

    def file(self, datafile: DataFile, rows: int) -> None:
        """One more new file fetched and checked, with its rows (it lands when its load commits)."""
        with self._lock:
            read = self._landing.read
            before = read[2]
            self._landing.read = [read[0] + 1, read[1] + rows, read[2] + datafile.size]
            if self.interactive:
                self._draw()  # on every file, not only on the timer: a terminal sees each step
            elif self._next_tenth(before) <= self._landing.read[2]:
                self._line(f"  {self._read_text()}")

    @contextmanager
    def committing(self) -> Iterator[None]:
        """A load of the files read since the last one commits (the warehouse writes their rows)."""
        landing = self._landing
        pending = [now - done for now, done in zip(landing.read, landing.committed, strict=True)]
        what = f"{pending[0]} file(s), {pending[1]:,} rows"
        self._line(f"  committing {what}")
        with self._phase(lambda s: f"committing {what}: {elapsed_text(s)}", fraction=self._landed_fraction) as phase:
            yield
            self._line(f"  committed {what} in {elapsed_text(self._clock() - phase.started)}")
            landing.committed = [done + more for done, more in zip(landing.committed, pending, strict=True)]

    @contextmanager
    def building(self) -> Iterator[None]:
        """dbt builds the domain tables (`node` reports each model as it starts and ends)."""
        self._build = _Build()
        with self._phase(self._build_text):
            yield

    @contextmanager
    def running(self, what: str) -> Iterator[None]:
        """Any other step that takes a while: `what`, and for how long."""
        with self._phase(lambda s: f"{what}: {elapsed_text(s)}"):
            yield

    def node(self, event: dict) -> None:
        """A dbt event from the build: `selected` (how many models), a node `started` or `finished`
        (models only: tests are not shown)."""
        kind = event.get("event", "finished")
        with self._lock:
            build = self._build
            if kind == "selected":
                build.models = event.get("models")
            elif event.get("test"):
                return
            elif kind == "started":
                build.started += 1
                build.running.append(event["name"])
                of = f" of {build.models}" if build.models and build.started <= build.models else ""
                self._line(f"  model {build.started}{of} started: {event['name']}")
            elif kind == "finished":
                build.built += 1
                if event["name"] in build.running:
                    build.running.remove(event["name"])
                rows = event.get("rows")
                rows = f" ({rows:,} rows)" if isinstance(rows, int) and rows >= 0 else ""
                status = "" if event["status"] == "success" else f" {event['status']}"
                self._line(f"  built {event['name']}{rows} in {event['seconds']:.1f}s{status}")

    def beat(self) -> None:
        """What the timer does: redraw a terminal's live line, or print a heartbeat line in logs, when due."""
        with self._lock:
            if not self.enabled or not self._phases:
                return
            now = self._clock()
            if self.interactive:
                if now - self._last_draw >= REFRESH_SECONDS:
                    self._draw()
            elif now - self._last_line >= HEARTBEAT_SECONDS:
                self._line(f"  {self._live_text()}")

    # ---- inside

    @contextmanager
    def _phase(self, text: Callable[[float], str], fraction: Callable[[], float] | None = None) -> Iterator[_Phase]:
        phase = _Phase(text, self._clock(), fraction)
        with self._lock:
            self._phases.append(phase)
            first = len(self._phases) == 1
            self._draw()
        if first:
            self._start_timer()
        try:
            yield phase
        finally:
            with self._lock:
                self._phases.remove(phase)
                last = not self._phases
                self._clear() if last else self._draw()
            if last:
                self._stop()

    def _start_timer(self) -> None:
        if not (self.enabled and self._timer_wanted):
            return
        self._stop_timer.clear()
        self._timer = threading.Thread(target=self._tick, name="courier-progress", daemon=True)
        self._timer.start()

    def _tick(self) -> None:
        while not self._stop_timer.wait(TICK_SECONDS):
            self.beat()

    def _stop(self) -> None:
        """Stop the timer (outside the lock: the timer may be waiting for it)."""
        if self._timer is not None:
            self._stop_timer.set()
            self._timer.join()
            self._timer = None

    def _line(self, text: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._clear()
            print(text, file=self.stream, flush=True)
            self._last_line = self._clock()
            self._draw()

    def _live_text(self) -> str:
        phase = self._phases[-1]
        return phase.text(self._clock() - phase.started)

    def _draw(self) -> None:
        """Draw the live line of the current phase (terminals only), over the last one."""
        if not (self.enabled and self.interactive and self._phases):
            return
        text, fraction = self._live_text(), self._phases[-1].fraction
        if fraction is not None:
            # a phase ends when its work is done: while it lasts, it shows at most 99%
            done = min(max(fraction(), 0.0), 0.99)
            filled = int(done * BAR_WIDTH)
            text = f"[{'=' * filled}{' ' * (BAR_WIDTH - filled)}] {int(done * 100):>2}%  {text}"
        width = max(shutil.get_terminal_size().columns - 1, 20)
        self.stream.write(f"\r{text[:width]}\x1b[K")
        self.stream.flush()
        self._drawn, self._last_draw = True, self._clock()

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False

    def _read_text(self) -> str:
        landing = self._landing
        files, rows, done = landing.read
        seconds = max(self._clock() - landing.started, 1e-3)
        return (f"read {files}/{landing.files} files, {rows:,} rows, {done / 1e6:,.1f} MB, "
                f"{done / 1e6 / seconds:,.1f} MB/s")

    def _landed_fraction(self) -> float:
        """Reading a file is half of landing it, committing it the other half."""
        landing = self._landing
        return (landing.read[2] + landing.committed[2]) / max(2 * landing.bytes, 1)

    def _next_tenth(self, done_bytes: int) -> int:
        """The byte count of the next tenth of the run's bytes after `done_bytes` (the last file
        always reaches it)."""
        step = max(self._landing.bytes // 10, 1)
        return min((done_bytes // step + 1) * step, self._landing.bytes)

    def _build_text(self, seconds: float) -> str:
        build = self._build
        if not build.started:
            return f"building: starting dbt, {elapsed_text(seconds)}"
        of = f" of {build.models}" if build.models else ""
        running = f", running {', '.join(build.running)}" if build.running else ""
        return f"building: {build.built}{of} models built{running}, {elapsed_text(seconds)}"
