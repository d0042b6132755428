"""Progress of a run: file by file on a terminal (checked in a pseudo-terminal), bounded plain lines in
logs and CI; phases (listing, landing, committing, building) that show they are alive, driven by a
fake clock."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import os
import pty
import re
import select
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from optimizely_courier.landing.discovery import DataFile, Plan
from optimizely_courier.runs.progress import Reporter
from tests.cases import ORDERS_FEED, SHOP_LOADING_ORDERS
from tests.conftest import landed, run_cli, write_feed, write_part

COURIER = str(Path(sys.executable).parent / "courier")


def run_in_terminal(project: Path, *args: str) -> tuple[int, str]:
    """Run `courier` with a pseudo-terminal as its stdout and stderr; returns its exit code and output."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    process = subprocess.Popen([COURIER, *args], cwd=project, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    output = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 300)
        assert ready, "the run printed nothing for 300 s"
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes with the process
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    return process.wait(timeout=300), output.decode(errors="replace")


def test_a_terminal_sees_the_bar_move_file_by_file_with_rows(dbt_project):
    for index in range(3):
        write_part(dbt_project, "2026-11-25", f"part-{index}.parquet",
                   [{"order_id": f"{index}-{n}", "amount": n} for n in range(index + 1)])

    code, output = run_in_terminal(dbt_project, "run", "shop", "--all")

    assert code == 0, output
    steps = [int(done) for done in re.findall(r"read (\d)/3 files", output)]
    assert steps == sorted(steps) and set(steps) == {0, 1, 2, 3}, output
    assert "read 3/3 files, 6 rows" in output
    assert "\x1b[" in output  # drawn as a terminal bar, not as plain lines


def test_logs_get_at_most_ten_plain_progress_lines_ending_with_every_file(dbt_project):
    for index in range(30):
        write_part(dbt_project, "2026-11-25", f"part-{index:02}.parquet", [{"order_id": str(index), "amount": 1}])

    result = run_cli(dbt_project, "run", "shop", "--all")

    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines() if line.strip().startswith("read ")]
    assert 1 <= len(lines) <= 10, lines
    assert lines[-1].startswith("read 30/30 files, 30 rows, ")
    assert "\x1b[" not in result.output
    assert landed(result.output, "orders") == (30, 30, 0)


# ---- phases that never stall: a fake clock drives the Reporter's timer (`beat`), no sleeps


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Stamped(io.StringIO):
    """A stream that remembers the clock's time of each line written."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock, self.times = clock, []

    def write(self, text: str) -> int:
        self.times += [self.clock.now] * text.count("\n")
        return super().write(text)


def two_files() -> tuple[Plan, dict]:
    files = [DataFile("orders", f"orders/date=2026-11-25/part-{i}.parquet", 1_000_000, "e", dt.date(2026, 11, 25))
             for i in range(2)]
    return Plan([dt.date(2026, 11, 25)], {"orders": files}), {"orders": files}


def advance(clock: FakeClock, reporter: Reporter, seconds: float, step: float = 0.25) -> None:
    """What the timer thread does, `seconds` long: look at the clock every `step`."""
    for _ in range(int(seconds / step)):
        clock.now += step
        reporter.beat()


def test_a_terminal_s_live_line_moves_at_least_every_two_seconds_while_a_load_commits_and_never_shows_100():
    clock = FakeClock()
    stream = io.StringIO()
    reporter = Reporter(stream, interactive=True, clock=clock, timer=False)
    plan, new = two_files()

    with reporter.landing(plan, new):
        for datafile in new["orders"]:
            reporter.file(datafile, 500)
        with reporter.committing():
            advance(clock, reporter, 20)

    frames = stream.getvalue().split("\r")
    shown = [float(seconds) for seconds in re.findall(r"committing 2 file\(s\), 1,000 rows: ([\d.]+) s", "".join(frames))]
    assert shown[-1] >= 19 and all(b - a <= 2 for a, b in itertools.pairwise(shown)), shown
    assert "read 2/2 files, 1,000 rows" in stream.getvalue()
    assert "  committed 2 file(s), 1,000 rows in 20 s\n" in stream.getvalue()
    assert "100%" not in stream.getvalue() and "50%" in stream.getvalue()
    assert stream.getvalue().endswith("\r\x1b[K")  # the live line goes when the phase ends


def test_logs_get_a_line_at_least_every_thirty_seconds_while_dbt_builds_a_slow_model():
    clock = FakeClock()
    stream = Stamped(clock)
    reporter = Reporter(stream, interactive=False, clock=clock, timer=False)

    with reporter.building():
        reporter.node({"event": "selected", "models": 3})
        reporter.node({"event": "started", "name": "stg_shop__orders", "test": False})
        advance(clock, reporter, 95)
        reporter.node({"event": "finished", "name": "stg_shop__orders", "test": False, "status": "success",
                       "seconds": 95.0, "rows": None})
        reporter.node({"event": "started", "name": "shop__orders__error_threshold", "test": True})

    lines = stream.getvalue().splitlines()
    assert lines[0] == "  model 1 of 3 started: stg_shop__orders"
    assert lines[1].startswith("  building: 0 of 3 models built, running stg_shop__orders, ")
    assert lines[-1] == "  built stg_shop__orders in 95.0s"
    assert len(lines) == 2 + 3  # started, three heartbeats in 95 s, built; tests are not shown
    assert all(b - a <= 30 for a, b in itertools.pairwise([1000.0, *stream.times])), stream.times
    assert "\x1b[" not in stream.getvalue()


def test_a_listing_counts_prefixes_and_files_and_says_so_when_it_ends():
    clock = FakeClock()
    stream = io.StringIO()
    reporter = Reporter(stream, interactive=False, clock=clock, timer=False)

    with reporter.listing():
        reporter.listed(3)
        advance(clock, reporter, 40)
        reporter.listed(0)

    assert stream.getvalue().splitlines() == ["  listing: 1 prefix(es), 3 file(s) found, 25 s",
                                              "  listed 2 prefix(es) in 40 s: 3 file(s) found"]


def test_the_timer_thread_runs_only_while_a_phase_lasts_and_stops_on_an_error():
    reporter = Reporter(io.StringIO(), interactive=False)

    def timers() -> list[threading.Thread]:
        return [thread for thread in threading.enumerate() if thread.name == "courier-progress"]

    with reporter.running("waiting for the warehouse"):
        assert len(timers()) == 1
    assert timers() == []
    with pytest.raises(KeyError), reporter.building():
        raise KeyError("a bug")
    assert timers() == []


def test_a_run_s_log_shows_listing_committing_and_each_model_started_with_its_number(dbt_project):
    write_feed(dbt_project, ORDERS_FEED)
    (dbt_project / "sources.yml").write_text(SHOP_LOADING_ORDERS)
    assert run_cli(dbt_project, "feeds", "compile").exit_code == 0
    write_part(dbt_project, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])

    result = run_cli(dbt_project, "run", "shop", "--all")

    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    order = ["listed 1 prefix(es) in", "read 1/1 files, 1 rows,", "committing 1 file(s), 1 rows",
             "committed 1 file(s), 1 rows in", "model 1 of 3 started: stg_shop__orders",
             "model 3 of 3 started: shop__orders"]
    found = [next(i for i, line in enumerate(lines) if line.startswith(start)) for start in order]
    assert found == sorted(found), result.output
    assert re.search(r"^  built shop__orders( \(1 rows\))? in \d+\.\ds$", result.output, re.M)


def test_a_terminal_never_sees_100_percent_before_the_run_ends(dbt_project):
    write_feed(dbt_project, ORDERS_FEED)
    (dbt_project / "sources.yml").write_text(SHOP_LOADING_ORDERS)
    assert run_cli(dbt_project, "feeds", "compile").exit_code == 0
    for index in range(3):
        write_part(dbt_project, "2026-11-25", f"part-{index}.parquet", [{"order_id": str(index), "amount": 1}])

    code, output = run_in_terminal(dbt_project, "run", "shop", "--all")

    assert code == 0, output
    assert "committing 3 file(s), 3 rows" in output and "model 2 of 3 started" in output
    assert "building: " in output  # the live line of the build
    assert "100%" not in output
