"""Courier groups: config errors, manual and scheduled runs, waits, on_missing, catch-up, downstream,
`courier serve` and exports."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from optimizely_courier.config.sources import load_project
from optimizely_courier.errors import GroupFailed
from optimizely_courier.groups.clock import Clock
from optimizely_courier.groups.group_run import run_group
from tests.conftest import query, run_cli, write_part

UTC = dt.UTC
# Scheduled 08:30 in Los Angeles on 2026-11-28 is 16:30 UTC; a 24h offset loads 2026-11-27.
SCHEDULED = dt.datetime(2026, 11, 28, 16, 30, tzinfo=UTC)

SOURCES = """couriers:
  shop:
    local_path: mirror
    entities:
      - object/file-pattern: "'orders/date='yyyy-MM-dd'/'"
        object/ready-marker: "'orders/date='yyyy-MM-dd'/_SUCCESS'"
        object/land-as: {{file/tag: orders}}
    load_operations: {{}}
courier_groups:
  nightly:
    schedule: "30 8 * * *"
    timezone: America/Los_Angeles
    poll: 100ms
{extra}    couriers:
      - {{name: shop, wait: {wait}, offset: 24h, on_missing: {on_missing}}}
    downstream: ["echo ran > downstream.txt"]
"""


@pytest.fixture
def project(dbt_project):
    def make(wait: str = "0", on_missing: str = "stop", extra: str = "") -> Path:
        (dbt_project / "sources.yml").write_text(SOURCES.format(wait=wait, on_missing=on_missing, extra=extra))
        return dbt_project
    return make


def ready_day(root: Path, day: str, rows: int = 1, marker: bool = True) -> None:
    write_part(root, day, "part-0.parquet", [{"order_id": f"{day}-{i}", "amount": i} for i in range(rows)])
    if marker:
        (root / "mirror" / "orders" / f"date={day}" / "_SUCCESS").write_text("")


def raw_days(root: Path) -> list[str]:
    return [str(d) for (d,) in query(root, "select distinct _file_date from raw_shop.orders order by 1")]


@pytest.mark.parametrize("change, message", [
    (("30 8 * * *", "30 25 * * *"), "`courier_groups.nightly.schedule`: hour field '25'"),
    (("America/Los_Angeles", "America/Springfield"), "`courier_groups.nightly.timezone`: unknown time zone"),
    (("{name: shop,", "{name: store,"), "`courier_groups.nightly.couriers[0].name`: no courier `store`"),
    (("wait: 0,", "wait: six hours,"), "`courier_groups.nightly.couriers[0].wait`: expected a duration"),
    (("on_missing: stop", "on_missing: ignore"), "`courier_groups.nightly.couriers[0].on_missing`: expected one of"),
])
def test_group_config_errors_name_the_key(project, change, message):
    root = project()
    text = (root / "sources.yml").read_text()
    (root / "sources.yml").write_text(text.replace(*change))
    result = run_cli(root, "group", "next", "nightly")
    assert result.exit_code == 1
    assert message in result.output


def test_manual_group_run_uses_only_the_given_dates_and_records_group_and_courier_runs(project):
    root = project()
    for day in ("2026-11-20", "2026-11-21", "2026-11-27"):
        ready_day(root, day)

    result = run_cli(root, "group", "run", "nightly", "--from", "2026-11-20", "--to", "2026-11-22")

    assert result.exit_code == 0, result.output
    assert raw_days(root) == ["2026-11-20", "2026-11-21"]
    [group_run] = json.loads(run_cli(root, "group", "history", "--json").output)
    [courier_run] = json.loads(run_cli(root, "history", "--json").output)
    assert (group_run["status"], group_run["scheduled_for"], group_run["courier_runs"]) == (
        "success", None, [courier_run["run_id"]])
    assert courier_run["group_name"] == "nightly"
    assert (root / "downstream.txt").read_text().strip() == "ran"


def test_scheduled_run_loads_the_offset_window_in_utc(project):
    root = project()
    for day in ("2026-11-26", "2026-11-27", "2026-11-28"):
        ready_day(root, day)
    run_group(load_project(root), "nightly", scheduled_for=SCHEDULED)
    assert raw_days(root) == ["2026-11-27"]


def test_wait_sees_data_that_becomes_ready_during_the_wait(project):
    root = project(wait="10s")
    ready_day(root, "2026-11-27", marker=False)
    writer = threading.Timer(1.0, lambda: (root / "mirror/orders/date=2026-11-27/_SUCCESS").write_text(""))
    writer.start()
    clock = Clock(start=SCHEDULED)

    report = run_group(load_project(root), "nightly", scheduled_for=SCHEDULED, clock=clock)

    writer.join()
    assert report.record.status == "success"
    assert raw_days(root) == ["2026-11-27"]


def test_data_never_ready_with_stop_fails_the_group_and_skips_downstream(project):
    root = project(wait="1s")
    ready_day(root, "2026-11-27", marker=False)

    with pytest.raises(GroupFailed, match=r"courier shop: source data not ready by 2026-11-28T16:30:01\+00:00 "
                                          r"\(wait 0:00:01\): .*_SUCCESS not found"):
        run_group(load_project(root), "nightly", scheduled_for=SCHEDULED, clock=Clock(start=SCHEDULED))

    assert not (root / "downstream.txt").exists()
    [group_run] = json.loads(run_cli(root, "group", "history", "--json").output)
    assert group_run["status"] == "failed" and "source data not ready" in group_run["error"]


def test_data_never_ready_with_notify_alerts_lands_what_is_ready_and_goes_on(project, webhook):
    root = project(wait="500ms", on_missing="notify",
                   extra='    notify: [{webhook: "${HOOK_URL}", events: [data_missing]}]\n')
    (root / "sources.yml").write_text((root / "sources.yml").read_text().replace("offset: 24h", "offset: 48h"))
    ready_day(root, "2026-11-26")
    ready_day(root, "2026-11-27", marker=False)

    report = run_group(load_project(root), "nightly", scheduled_for=SCHEDULED, clock=Clock(start=SCHEDULED))

    assert report.record.status == "success"
    assert len(report.record.alerts) == 1 and "courier shop: source data not ready" in report.record.alerts[0]
    assert [(item["event"], item["group"]) for item in webhook.received] == [("data_missing", "nightly")]
    assert raw_days(root) == ["2026-11-26"]
    assert (root / "downstream.txt").exists()


def test_catch_up_loads_every_day_since_the_last_success_oldest_first(project):
    root = project()
    for day in ("2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27"):
        ready_day(root, day)
    run_group(load_project(root), "nightly", scheduled_for=SCHEDULED - dt.timedelta(days=3))  # loads 11-24
    assert raw_days(root) == ["2026-11-24"]

    report = run_group(load_project(root), "nightly", scheduled_for=SCHEDULED)  # machine was off for two runs

    assert report.record.dates == "shop 2026-11-25 to 2026-11-27"
    assert raw_days(root) == ["2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27"]
    files = query(root, "select _file from raw_shop.orders where _dlt_load_id = (select max(_dlt_load_id) "
                        "from raw_shop.orders) order by _file_date")
    assert [f[0].split("/")[1] for f in files] == ["date=2026-11-25", "date=2026-11-26", "date=2026-11-27"]


def test_only_past_day_skips_catch_up(project):
    root = project(extra="    only_past_day: true\n")
    for day in ("2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27"):
        ready_day(root, day)
    run_group(load_project(root), "nightly", scheduled_for=SCHEDULED - dt.timedelta(days=3))
    report = run_group(load_project(root), "nightly", scheduled_for=SCHEDULED)
    assert report.record.dates == "shop 2026-11-27"


def test_group_without_dates_runs_as_its_latest_scheduled_time(project):
    root = project()
    ready_day(root, "2026-11-27")
    report = run_group(load_project(root), "nightly", clock=Clock(start=SCHEDULED + dt.timedelta(hours=2)))
    assert report.record.scheduled_for == SCHEDULED
    assert raw_days(root) == ["2026-11-27"]


def test_group_next_shows_local_and_utc_times_with_dates_across_a_dst_change(project):
    root = project()
    result = run_cli(root, "group", "next", "nightly", "-n", "2", "--after", "2027-03-13T17:00:00Z", "--json")
    assert json.loads(result.output) == [
        {"local": "2027-03-14T08:30:00-07:00", "utc": "2027-03-14T15:30:00+00:00", "dates": {"shop": ["2027-03-13"]}},
        {"local": "2027-03-15T08:30:00-07:00", "utc": "2027-03-15T15:30:00+00:00", "dates": {"shop": ["2027-03-14"]}}]
    text = run_cli(root, "group", "next", "nightly", "-n", "1", "--after", "2027-03-13T17:00:00Z").output
    assert text.splitlines() == ["nightly: 30 8 * * * in America/Los_Angeles",
                                 "  2027-03-14T08:30:00-07:00  (2027-03-14T15:30:00+00:00)  loads shop 2027-03-13"]


def test_export_writes_a_cron_line_with_cron_tz_and_an_airflow_dag(project, tmp_path):
    root = project()
    cron = run_cli(root, "group", "export", "nightly", "--to", "cron").output.splitlines()
    assert cron[1] == "CRON_TZ=America/Los_Angeles"
    assert cron[2].startswith("30 8 * * * cd ") and cron[2].endswith("/courier group run nightly")
    dag_file = tmp_path / "dag.py"
    assert run_cli(root, "group", "export", "nightly", "--to", "airflow", "-o", str(dag_file)).exit_code == 0
    dag = dag_file.read_text()
    compile(dag, str(dag_file), "exec")
    assert "CronTriggerTimetable('30 8 * * *', timezone='America/Los_Angeles')" in dag
    assert "group run nightly" in dag


def test_serve_runs_a_group_on_schedule_and_stops_cleanly_on_sigterm(project):
    root = project()
    ready_day(root, "2026-11-27")
    start = (SCHEDULED - dt.timedelta(seconds=2)).isoformat()
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen([sys.executable, "-m", "optimizely_courier", "-C", str(root), "serve", "--clock-start", start],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    deadline = time.monotonic() + 120
    try:
        for line in server.stdout:
            lines.append(line.rstrip())
            if "Courier group nightly succeeded" in line or time.monotonic() > deadline:
                break
        server.send_signal(signal.SIGTERM)
        rest, _ = server.communicate(timeout=60)
    finally:
        server.kill()
    output = "\n".join(lines) + rest
    assert server.returncode == 0, output
    assert "Courier group nightly started for 2026-11-28T16:30:00+00:00" in output
    assert "Received SIGTERM: stopped after the current run" in output
    assert "Stopped after 1 group run(s)" in output
    [group_run] = json.loads(run_cli(root, "group", "history", "--json").output)
    assert (group_run["status"], group_run["scheduled_for"]) == ("success", "2026-11-28T16:30:00+00:00")
    assert [r["status"] for r in json.loads(run_cli(root, "history", "--json").output)] == ["success"]
    assert raw_days(root) == ["2026-11-27"]


def test_sigterm_during_loading_lets_the_run_finish_then_stops_serve(project):
    from optimizely_courier.faults import FAULT_ENV

    root = project()
    ready_day(root, "2026-11-27")
    start = (SCHEDULED - dt.timedelta(seconds=2)).isoformat()
    # the serve process sends itself SIGTERM right after the first raw table job commits
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "PYTHONUNBUFFERED": "1", FAULT_ENV: "between-jobs:TERM"}
    server = subprocess.Popen([sys.executable, "-m", "optimizely_courier", "-C", str(root), "serve", "--clock-start", start],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        output, _ = server.communicate(timeout=120)
    finally:
        server.kill()

    assert server.returncode == 0, output
    assert "Received SIGTERM: stopped after the current run" in output
    assert "Stopped after 1 group run(s)" in output
    [group_run] = json.loads(run_cli(root, "group", "history", "--json").output)
    assert group_run["status"] == "success"
    assert raw_days(root) == ["2026-11-27"]


def test_the_courier_pipeline_leaves_sigterm_to_the_courier(project):
    """dlt would hold a SIGTERM arriving mid-normalize or mid-load and drop it when the step ends."""
    from optimizely_courier.config.sources import load_project
    from optimizely_courier.landing.ingest import make_pipeline

    project_ = load_project(project())
    assert make_pipeline(project_, project_.courier("shop")).runtime_config.intercept_signals is False


def test_sigterm_during_a_wait_records_the_group_run_as_interrupted(project):
    root = project(wait="1h")
    ready_day(root, "2026-11-27", marker=False)
    start = (SCHEDULED - dt.timedelta(seconds=1)).isoformat()
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen([sys.executable, "-m", "optimizely_courier", "-C", str(root), "serve", "--clock-start", start],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        for line in server.stdout:
            if "Waiting for source data" in line:
                break
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    finally:
        server.kill()
    assert server.returncode == 0, output
    [group_run] = json.loads(run_cli(root, "group", "history", "--json").output)
    assert group_run["status"] == "failed" and "interrupted by a stop request" in group_run["error"]
    assert not (root / "downstream.txt").exists()


def test_a_group_stopped_by_missing_data_fails_a_run_of_that_courier_and_tells_the_courier_s_targets(
        project, webhook):
    root = project(wait="500ms")
    text = (root / "sources.yml").read_text()
    (root / "sources.yml").write_text(text.replace("    load_operations: {}\n", "    load_operations: {}\n"
                                                   '    notify: [{webhook: "${HOOK_URL}", events: [data_missing, '
                                                   "run_failed]}]\n", 1))
    ready_day(root, "2026-11-27", marker=False)

    with pytest.raises(GroupFailed):
        run_group(load_project(root), "nightly", scheduled_for=SCHEDULED, clock=Clock(start=SCHEDULED))

    [courier_run] = json.loads(run_cli(root, "history", "--json").output)
    [group_run] = json.loads(run_cli(root, "group", "history", "--json").output)
    [status] = json.loads(run_cli(root, "status", "shop", "--json").output)
    text = run_cli(root, "status", "shop").output
    assert (courier_run["courier"], courier_run["status"], courier_run["group_name"], courier_run["dates"]) == (
        "shop", "failed", "nightly", "2026-11-27")
    assert courier_run["error"].startswith("source data not ready by 2026-11-28T16:30:00.500000+00:00 (wait ")
    assert "_SUCCESS not found" in courier_run["error"]
    assert group_run["courier_runs"] == [courier_run["run_id"]]
    assert [(item["event"], item["courier"], item["run_id"]) for item in webhook.received] == [
        ("data_missing", "shop", courier_run["run_id"])]
    assert "in group nightly: source data not ready" in webhook.received[0]["text"]
    assert status["last_run"]["run_id"] == courier_run["run_id"]
    [nightly] = status["groups"]
    assert (nightly["last_run"]["status"], nightly["last_run"]["run_id"]) == ("failed", group_run["run_id"])
    assert nightly["next_run"] is not None and nightly["in_progress"] is None
    assert "last run failed: run " in text and "courier shop: source data not ready" in text


def test_data_missing_with_notify_also_tells_the_courier_s_own_targets(project, webhook):
    root = project(wait="500ms", on_missing="notify")
    text = (root / "sources.yml").read_text()
    (root / "sources.yml").write_text(text.replace("    load_operations: {}\n", "    load_operations: {}\n"
                                                   '    notify: [{webhook: "${HOOK_URL}", events: [data_missing]}]\n', 1)
                                      .replace("offset: 24h", "offset: 48h"))
    ready_day(root, "2026-11-26")
    ready_day(root, "2026-11-27", marker=False)

    report = run_group(load_project(root), "nightly", scheduled_for=SCHEDULED, clock=Clock(start=SCHEDULED))

    assert report.record.status == "success"
    [courier_run] = json.loads(run_cli(root, "history", "--json").output)
    assert courier_run["status"] == "success"
    assert [(item["event"], item["courier"], item["run_id"]) for item in webhook.received] == [
        ("data_missing", "shop", courier_run["run_id"])]
    assert webhook.received[0]["text"].endswith("; landing what is ready")
