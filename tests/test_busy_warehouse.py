"""Commands while another process writes the warehouse: a `dbt build` started by hand (DuckDB's own file
lock) or a courier run holding the run lock. `status`, `history` and `group history` answer at once and show
the run in progress; a run, its build and `explore` wait for the warehouse up to --lock-timeout, saying who
holds it. The processes are real: a DuckDB session in another process, and courier runs stopped in place by a
fault point (`COURIER_FAULT=<point>:STOP`) until the test lets them go on.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cases import SHOP_LOADING_ORDERS
from tests.conftest import query, run_cli, write_feed
from tests.faults import fault_env
from tests.test_runs import FEED, orders, write_part

DAY, NEXT_DAY = "2026-11-25", "2026-11-26"
GROUP = """courier_groups:
  nightly:
    schedule: "0 6 * * *"
    couriers: [{name: shop, wait: 0}]
"""


@pytest.fixture
def built(dbt_project) -> Path:
    """A project whose group has landed and built one day, and a second day ready to run."""
    write_feed(dbt_project, FEED)
    (dbt_project / "sources.yml").write_text(SHOP_LOADING_ORDERS + GROUP)
    assert run_cli(dbt_project, "feeds", "compile").exit_code == 0
    write_part(dbt_project, DAY, "part-0.parquet", [{"order_id": "A", "amount": 1}, {"order_id": "B", "amount": 2}])
    first = run_cli(dbt_project, "group", "run", "nightly", "--date", DAY)
    assert first.exit_code == 0, first.output
    write_part(dbt_project, NEXT_DAY, "part-0.parquet", [{"order_id": "C", "amount": 3}])
    return dbt_project


def courier(root: Path, *args: str, fault: str | None = None) -> subprocess.Popen:
    """`courier -C root ...` in a process of its own, its output (stdout and stderr) in one pipe."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env = fault_env(fault, env) if fault else env
    return subprocess.Popen([sys.executable, "-m", "optimizely_courier", "-C", str(root), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_until(process: subprocess.Popen, text: str) -> list[str]:
    """The process's lines up to the first holding `text` (all of them, if it ends first)."""
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if text in line:
            break
    return lines


def wait_stopped(process: subprocess.Popen) -> bool:
    """Wait until the process stops itself at its fault point (True), or ends (False)."""
    _, status = os.waitpid(process.pid, os.WUNTRACED)
    return os.WIFSTOPPED(status)


def finish(process: subprocess.Popen) -> tuple[int, str]:
    output, _ = process.communicate(timeout=300)
    return process.returncode, output


def json_of(root: Path, *args: str):  # noqa: ANN201
    result = run_cli(root, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_status_and_history_answer_while_a_dbt_build_holds_the_warehouse_and_show_the_run_waiting_for_it(
        built, hold_warehouse):
    holder = hold_warehouse(built / "warehouse.duckdb")
    run = courier(built, "run", "shop", "--date", NEXT_DAY, "--lock-timeout", "600")
    try:
        waiting = read_until(run, "Waiting for the warehouse")

        [status] = json_of(built, "status", "shop")
        text = run_cli(built, "status", "shop")
        history = json_of(built, "history")
        group_history = json_of(built, "group", "history")
        history_text = run_cli(built, "history").output
    finally:
        holder.release()
    code, output = finish(run)

    assert f"Waiting for the warehouse: PID {holder.pid} (" in waiting[-1], waiting
    assert code == 0, output
    progress = status["in_progress"]
    assert progress["run_id"] == history[0]["run_id"] and history[0]["status"] == "running"
    assert progress["phase"].startswith(f"Waiting for the warehouse: PID {holder.pid} (")
    assert progress["phase_since"] >= progress["started_at"]
    # the run has the run lock (so no courier reader opens the file under it) and waits for the file itself
    assert status["warehouse"]["busy"].startswith(f"run {progress['run_id']} (courier shop, pid {run.pid}, ")
    assert status["warehouse"]["as_of"] is not None
    # what the group's run saw at its end: landed and built data, and the freshness they give
    assert status["landed"] == {"files": 1, "rows": 2, "newest_partition": DAY}
    assert status["freshness"]["status"] == "error"
    assert [(t["rows"], t["files_to_build"]) for t in status["domain_tables"]] == [(2, 0)]
    assert status["last_success"]["dates"] == DAY
    assert text.exit_code == 0 and "  in progress     run " in text.output
    assert f"busy: run {progress['run_id']}" in text.output and "Shop:Orders: 2 rows" in text.output
    assert f"Waiting for the warehouse: PID {holder.pid}" in text.output
    assert "    in progress: Waiting for the warehouse" in history_text
    assert [(g["status"], g["dates"]) for g in group_history] == [("success", f"shop {DAY}")]
    assert orders(built) == [("A", 1), ("B", 2), ("C", 3)]  # the run went on once the warehouse was free
    assert json_of(built, "history")[0]["status"] == "success"


def test_status_and_history_show_a_group_run_stopped_mid_landing_while_it_holds_the_run_lock(built):
    group = courier(built, "group", "run", "nightly", "--date", NEXT_DAY, fault="between-jobs:STOP")
    try:
        assert wait_stopped(group), "the run did not stop at its fault point"

        [status] = json_of(built, "status", "shop")
        text = run_cli(built, "status", "nightly").output
        [running, _] = json_of(built, "history")
        [group_running, _] = json_of(built, "group", "history")
        group_text = run_cli(built, "group", "history").output
        explore = run_cli(built, "explore", "Shop:Orders", "--lock-timeout", "0.2")
    finally:
        group.send_signal(signal.SIGCONT)
    code, output = finish(group)

    assert (running["status"], running["group_name"], running["dates"]) == ("running", "nightly", NEXT_DAY)
    progress = status["in_progress"]
    assert (progress["run_id"], progress["phase"]) == (running["run_id"], "Loading data")
    assert (progress["progress"]["files_done"], progress["progress"]["files_total"], progress["progress"]["rows"]) == (
        1, 1, 1)
    assert status["warehouse"]["busy"].startswith(f"run {running['run_id']} (courier shop, pid {group.pid}, ")
    assert status["landed"] == {"files": 1, "rows": 2, "newest_partition": DAY}
    [nightly] = status["groups"]
    assert nightly["in_progress"]["run_id"] == group_running["run_id"] and group_running["status"] == "running"
    assert nightly["in_progress"]["phase"] == f"Running courier shop (run {running['run_id'][:8]})"
    assert group_running["courier_runs"] == [running["run_id"]]
    assert "Loading data since" in text and "1/1 files, 1 rows so far" in text and "running: run " in text
    assert "in progress: Running courier shop" in group_text
    assert explore.exit_code == 1
    assert f"busy: run {running['run_id']} (courier shop, pid {group.pid}" in explore.output
    assert code == 0, output
    assert json_of(built, "group", "history")[0]["status"] == "success"
    assert json_of(built, "status", "shop")[0]["in_progress"] is None


def test_a_run_gives_up_after_its_lock_timeout_naming_the_process_outside_the_courier(built, hold_warehouse):
    holder = hold_warehouse(built / "warehouse.duckdb")

    result = run_cli(built, "run", "shop", "--date", NEXT_DAY, "--lock-timeout", "0.5")
    history = json_of(built, "history")

    warehouse = built / "warehouse.duckdb"
    expected = (rf"warehouse {re.escape(str(warehouse))} is busy: PID {holder.pid} \(.+\), not a courier run "
                r"\(a `dbt build` or a DuckDB session started by hand\?\) holds it; waited 0\.5s\. "
                r"Try again when it has finished")
    assert result.exit_code == 1
    assert re.fullmatch("Error: " + expected, result.output.strip().splitlines()[-1]), result.output
    assert history[0]["status"] == "failed" and re.fullmatch(expected, history[0]["error"])


def test_a_run_waits_for_a_dbt_build_started_by_hand_after_it_landed_then_builds(built, hold_warehouse):
    run = courier(built, "run", "shop", "--date", NEXT_DAY, "--lock-timeout", "600", fault="before-build:STOP")
    try:
        assert wait_stopped(run), "the run did not stop at its fault point"
        holder = hold_warehouse(built / "warehouse.duckdb")  # started by hand while the run had let go of it
        run.send_signal(signal.SIGCONT)
        waiting = read_until(run, "Waiting for the warehouse")
        [status] = json_of(built, "status", "shop")
        holder.release()
    finally:
        run.send_signal(signal.SIGCONT)
    code, output = finish(run)

    assert f"Waiting for the warehouse: PID {holder.pid} (" in waiting[-1], waiting
    assert status["in_progress"]["phase"].startswith(f"Waiting for the warehouse: PID {holder.pid}")
    assert code == 0, output
    assert orders(built) == [("A", 1), ("B", 2), ("C", 3)]
    [run_record, *_] = json_of(built, "history")
    assert (run_record["status"], run_record["phase"]) == ("success", "Committing domain transactions")  # went on
    assert run_record["progress"]["models_built"] > 0


def test_explore_waits_for_a_dbt_build_started_by_hand_then_answers(built, hold_warehouse):
    holder = hold_warehouse(built / "warehouse.duckdb")
    gave_up = run_cli(built, "explore", "Shop:Orders", "--lock-timeout", "0.2")
    look = courier(built, "explore", "Shop:Orders", "--format", "json", "--lock-timeout", "600")
    try:
        waiting = read_until(look, "Waiting up to")
    finally:
        holder.release()
    code, output = finish(look)

    assert gave_up.exit_code == 1 and f"is busy: PID {holder.pid} (" in gave_up.output
    assert f"Waiting up to 600s for the warehouse: PID {holder.pid} (" in waiting[-1], waiting
    assert code == 0, output
    rows = json.loads(output[output.index("["):])
    assert sorted((row["order_id"], row["amount"]) for row in rows) == [("A", 1), ("B", 2)]


def test_the_record_of_landed_and_built_files_stays_in_the_warehouse_and_history_moves_out(built):
    tables = {row[0] for row in query(built, "select table_name from information_schema.tables "
                                             "where table_schema = 'courier'")}
    assert {"builds", "built_files"} <= tables and not tables & {"runs", "group_runs"}
    assert (built / ".courier" / "warehouse.runs.sqlite").exists()
