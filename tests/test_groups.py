"""Courier groups: config errors, manual and scheduled runs, waits, on_missing, catch-up, downstream,
`courier serve` and exports."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from optimizely_courier.config.schedule import Cron, scheduled_times
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


def test_group_run_prints_each_courier_s_table_and_the_tail_of_each_downstream_command(project):
    root = project()
    (root / "sources.yml").write_text((root / "sources.yml").read_text().replace(
        'downstream: ["echo ran > downstream.txt"]', 'downstream: ["seq 1 25", "echo done >&2"]'))
    ready_day(root, "2026-11-27", rows=3)

    result = run_cli(root, "group", "run", "nightly", "--date", "2026-11-27")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    table = lines.index(f"Courier shop ({root / 'mirror'}), 2026-11-27:")
    assert lines[table + 2].split() == ["orders", "1", "3", "0"]
    tail = lines.index("  output of `seq 1 25` (last 20 of 25 lines):")
    assert lines[tail + 1:tail + 22] == [f"    {n}" for n in range(6, 26)] + ["  `seq 1 25` exited with 0"]
    assert lines[tail + 22].endswith(" Downstream: echo done >&2")
    assert lines[tail + 23:tail + 26] == ["  output of `echo done >&2` (1 line(s)):", "    done",
                                          "  `echo done >&2` exited with 0"]
    assert table < tail


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
    assert report.run.status == "success"
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

    assert report.run.status == "success"
    assert len(report.run.alerts) == 1 and "courier shop: source data not ready" in report.run.alerts[0]
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

    assert report.run.dates == "shop 2026-11-25 to 2026-11-27"
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
    assert report.run.dates == "shop 2026-11-27"


def test_group_without_dates_runs_as_its_latest_scheduled_time(project):
    root = project()
    ready_day(root, "2026-11-27")
    report = run_group(load_project(root), "nightly", clock=Clock(start=SCHEDULED + dt.timedelta(hours=2)))
    assert report.run.scheduled_for == SCHEDULED
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


WEEKDAYS = """couriers:
  shop:
    local_path: mirror
    entities:
      - object/file-pattern: "'orders/date='yyyy-MM-dd'/'"
        object/ready-marker: "'orders/date='yyyy-MM-dd'/_SUCCESS'"
        object/land-as: {{file/tag: orders}}
    load_operations: {{}}
courier_groups:
  weekdays:
    schedule: "{schedule}"
    timezone: {zone}
{extra}    couriers:
      - {{name: shop, offset: 24h}}
"""


def test_a_weekday_schedule_s_monday_run_loads_friday_to_sunday(dbt_project):
    (dbt_project / "sources.yml").write_text(WEEKDAYS.format(schedule="15 6 * * 1-5", zone="Europe/Berlin", extra=""))
    for day in ("2026-11-26", "2026-11-27", "2026-11-28", "2026-11-29", "2026-11-30"):
        ready_day(dbt_project, day)

    # Monday 2026-11-30 06:15 in Berlin; the run before it was Friday's, which loaded Thursday
    result = run_cli(dbt_project, "group", "run", "weekdays", "--scheduled-for", "2026-11-30T06:15:00+01:00")

    assert result.exit_code == 0, result.output
    assert raw_days(dbt_project) == ["2026-11-27", "2026-11-28", "2026-11-29"]
    [group_run] = json.loads(run_cli(dbt_project, "group", "history", "--json").output)
    assert (group_run["scheduled_for"], group_run["dates"]) == ("2026-11-30T05:15:00+00:00",
                                                                "shop 2026-11-27 to 2026-11-29")


def test_scheduled_for_loads_that_past_run_s_dates_not_the_latest(project):
    root = project()
    for day in ("2026-11-20", "2026-11-27"):
        ready_day(root, day)
    result = run_cli(root, "group", "run", "nightly", "--scheduled-for", "2026-11-21T16:30:00Z")
    assert result.exit_code == 0, result.output
    assert raw_days(root) == ["2026-11-20"]
    assert json.loads(run_cli(root, "group", "history", "--json").output)[0]["scheduled_for"] == (
        "2026-11-21T16:30:00+00:00")


@pytest.mark.parametrize("args", [("--date", "2026-11-27", "--scheduled-for", "2026-11-28T16:30:00Z"),
                                  ("--scheduled-for", "2026-11-28T16:30:00Z", "--if-scheduled-utc", "30 16 * * *")])
def test_dates_scheduled_for_and_if_scheduled_utc_exclude_each_other(project, args):
    result = run_cli(project(), "group", "run", "nightly", *args)
    assert result.exit_code == 2
    assert "choose one of: dates (--date, --from/--to, --all), --scheduled-for, --if-scheduled-utc" in result.output


def test_only_past_day_leaves_the_weekend_unloaded_and_validate_and_next_warn_by_weekday(dbt_project):
    (dbt_project / "sources.yml").write_text(WEEKDAYS.format(schedule="15 6 * * 1-5", zone="Europe/Berlin",
                                                             extra="    only_past_day: true\n"))
    warning = ("courier_groups.weekdays.couriers[0] (shop): with only_past_day: true, no scheduled run loads every "
               "Friday, every Saturday (UTC dates, 2026, offset 24h); set only_past_day: false to load "
               "every date")
    validate = run_cli(dbt_project, "validate")
    assert validate.exit_code == 0 and f"warning: sources.yml: {warning}" in validate.stderr
    upcoming = run_cli(dbt_project, "group", "next", "weekdays", "-n", "1", "--after", "2026-11-29T00:00:00Z",
                       "--json")
    assert upcoming.exit_code == 0 and f"warning: {warning}" in upcoming.stderr
    assert json.loads(upcoming.stdout)[0]["dates"] == {"shop": ["2026-11-29"]}  # Monday: Sunday only


def test_a_schedule_that_covers_every_date_gets_no_warning(dbt_project):
    (dbt_project / "sources.yml").write_text(WEEKDAYS.format(schedule="15 6 * * 1-5", zone="Europe/Berlin", extra=""))
    assert "warning" not in run_cli(dbt_project, "validate").output
    upcoming = run_cli(dbt_project, "group", "next", "weekdays", "-n", "1", "--after", "2026-11-29T00:00:00Z",
                       "--json")
    assert json.loads(upcoming.output)[0]["dates"] == {"shop": ["2026-11-27", "2026-11-28", "2026-11-29"]}


def test_airflow_dag_passes_its_data_interval_retries_and_times_out_after_the_longest_wait(project, tmp_path):
    root = project(wait="6h")
    dag_file = tmp_path / "dag.py"
    assert run_cli(root, "group", "export", "nightly", "--to", "airflow", "-o", str(dag_file)).exit_code == 0
    dag = dag_file.read_text()
    compile(dag, str(dag_file), "exec")
    assert "CronTriggerTimetable('30 8 * * *', timezone='America/Los_Angeles')" in dag
    assert "group run nightly'\n        + ' {% if data_interval_end %}--scheduled-for " \
           "{{ data_interval_end.isoformat() }}{% endif %}'" in dag
    assert '"retries": 3' in dag and '"retry_exponential_backoff": True' in dag
    assert '"execution_timeout": datetime.timedelta(seconds=28800)' in dag  # 6h wait + 2h
    assert "max_active_runs=1" in dag


def test_cron_export_has_utc_lines_without_cron_tz_that_log_to_a_file(project):
    root = project()
    cron = run_cli(root, "group", "export", "nightly", "--to", "cron").output
    assert "CRON_TZ" not in cron.replace("ignore CRON_TZ", "")
    [line] = [text for text in cron.splitlines() if not text.startswith("#")]
    # 08:30 in Los Angeles is 16:30 UTC in winter and 15:30 UTC in summer
    assert line.startswith("30 15,16 * * * cd ")
    assert line.endswith("/courier group run nightly --if-scheduled-utc '30 15,16 * * *' "
                         ">> .courier/cron-nightly.log 2>&1")
    assert "&& mkdir -p .courier &&" in line


@pytest.mark.parametrize("now, expected", [
    ("2026-11-28T16:30:04+00:00", "2026-11-28T16:30:00+00:00"),  # winter: the 16:30 UTC line is 08:30 in LA
    ("2026-11-28T15:30:02+00:00", None),  # the summer line, in winter: nothing to run
    ("2026-07-01T15:31:00+00:00", "2026-07-01T15:30:00+00:00"),
    ("2026-07-01T16:30:00+00:00", None),
])
def test_a_utc_cron_line_runs_only_at_the_group_s_scheduled_times(project, now, expected):
    from optimizely_courier.groups.export import fired_scheduled_time

    group = load_project(project()).group("nightly")
    when, note = fired_scheduled_time(group, "30 15,16 * * *", dt.datetime.fromisoformat(now))
    assert (when.isoformat() if when else None) == expected
    assert bool(note) == (expected is None)


def test_a_utc_cron_line_does_not_run_an_inactive_group(project):
    from optimizely_courier.groups.export import fired_scheduled_time

    group = load_project(project(extra="    status: inactive\n")).group("nightly")
    when, note = fired_scheduled_time(group, "30 15,16 * * *", dt.datetime(2026, 11, 28, 16, 30, tzinfo=UTC))
    assert when is None and "is inactive: it runs by hand only" in note


def test_a_utc_cron_line_fired_by_a_clock_not_on_utc_fails_saying_so(project):
    away = dt.datetime.now(UTC) + dt.timedelta(hours=12)  # the line last fired about 12 hours ago
    result = run_cli(project(), "group", "run", "nightly", "--if-scheduled-utc", f"{away.minute} {away.hour} * * *")
    assert result.exit_code == 1
    assert "is the cron daemon's clock on UTC?" in result.output.strip().splitlines()[-1]


def test_the_exported_crontab_line_runs_the_group_at_its_scheduled_time_and_logs(dbt_project):
    # every minute is a scheduled time, so the line's run does not depend on when the test starts or how
    # long the machine takes to reach it (the UTC lines of other schedules are tested apart)
    now = dt.datetime.now(UTC)
    (dbt_project / "sources.yml").write_text(WEEKDAYS.format(schedule="* * * * *", zone="Asia/Kolkata", extra=""))
    yesterday = str((now - dt.timedelta(days=1)).date())
    ready_day(dbt_project, yesterday)
    cron = run_cli(dbt_project, "group", "export", "weekdays", "--to", "cron").output
    lines = [text for text in cron.splitlines() if not text.startswith("#")]
    [command] = [line.split(" ", 5)[5] for line in lines]
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "PYTHONPATH": os.pathsep.join(sys.path)}

    subprocess.run(["/bin/sh", "-c", command.replace("\\%", "%")], env=env, timeout=300, check=True)

    log = (dbt_project / ".courier" / "cron-weekdays.log").read_text()
    assert "Courier group weekdays succeeded" in log, log
    assert raw_days(dbt_project) == [yesterday]


@pytest.mark.parametrize("schedule, zone", [
    ("15 6 * * 1-5", "Europe/Berlin"),
    ("30 1 * * *", "America/Los_Angeles"),  # 01:30 happens twice on 2026-11-01: once, the first time
    ("0 12 1 * mon", "UTC"),  # both day fields: a day matching either
    ("*/20 9-10 * * *", "Asia/Kolkata"),
    ("0 3 */2 * *", "Australia/Sydney"),
])
def test_the_systemd_timer_fires_at_the_group_s_scheduled_times(dbt_project, tmp_path, schedule, zone):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (Debian's systemd package) checks the timer's OnCalendar="
    (dbt_project / "sources.yml").write_text(WEEKDAYS.format(schedule=schedule, zone=zone, extra=""))
    result = run_cli(dbt_project, "group", "export", "weekdays", "--to", "systemd", "-o", str(tmp_path / "units"))
    assert result.exit_code == 0, result.output
    timer = (tmp_path / "units" / "courier-group-weekdays.timer").read_text()
    service = (tmp_path / "units" / "courier-group-weekdays.service").read_text()
    assert f"WorkingDirectory={dbt_project}\n" in service and service.rstrip().endswith("group run weekdays")
    base = dt.datetime(2026, 10, 20, tzinfo=UTC)  # a stretch with the clock changes of both hemispheres
    fired: set[dt.datetime] = set()
    for spec in [line.split("=", 1)[1] for line in timer.splitlines() if line.startswith("OnCalendar=")]:
        shown = subprocess.run([analyze, "calendar", "--iterations=40", f"--base-time={base:%Y-%m-%d %H:%M:%S} UTC",
                                spec], capture_output=True, text=True, check=True, env={**os.environ, "TZ": "UTC"})
        fired |= {dt.datetime.strptime(match, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
                  for match in re.findall(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", shown.stdout)}
    last = max(fired) if len(fired) < 40 else sorted(fired)[39]
    expected = itertools.takewhile(lambda t: t <= last, scheduled_times(Cron.parse(schedule), ZoneInfo(zone), base))
    assert sorted(t for t in fired if t <= last) == list(expected)


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
            if "Group nightly runs next at 2026-11-29" in line or time.monotonic() > deadline:
                break
        server.send_signal(signal.SIGTERM)
        rest, _ = server.communicate(timeout=60)
    finally:
        server.kill()
    output = "\n".join(lines) + "\n" + rest
    assert server.returncode == 0, output
    said = [re.sub(r"^\d\d:\d\d:\d\d ", "", line) for line in output.splitlines()]
    first, then = (said.index("Group nightly runs next at 2026-11-28T08:30:00-08:00 America/Los_Angeles "
                              "(2026-11-28T16:30:00+00:00 UTC)"),
                   said.index("Group nightly runs next at 2026-11-29T08:30:00-08:00 America/Los_Angeles "
                              "(2026-11-29T16:30:00+00:00 UTC)"))
    assert first < said.index("Courier group nightly succeeded") < then
    assert "Courier group nightly started for 2026-11-28T16:30:00+00:00" in output
    assert "Received SIGTERM: stopped after the current run" in output
    assert "Stopped after 1 group run(s)" in output
    [group_run] = json.loads(run_cli(root, "group", "history", "--json").output)
    assert (group_run["status"], group_run["scheduled_for"]) == ("success", "2026-11-28T16:30:00+00:00")
    assert [r["status"] for r in json.loads(run_cli(root, "history", "--json").output)] == ["success"]
    assert raw_days(root) == ["2026-11-27"]


def test_sigterm_during_loading_lets_the_run_finish_then_stops_serve(project):
    from tests.faults import fault_env

    root = project()
    ready_day(root, "2026-11-27")
    start = (SCHEDULED - dt.timedelta(seconds=2)).isoformat()
    # the serve process sends itself SIGTERM right after the first raw table job commits
    env = {**fault_env("between-jobs:TERM"), "RUNTIME__DLTHUB_TELEMETRY": "false", "PYTHONUNBUFFERED": "1"}
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
    from optimizely_courier.landing.pipeline import make_pipeline

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

    assert report.run.status == "success"
    [courier_run] = json.loads(run_cli(root, "history", "--json").output)
    assert courier_run["status"] == "success"
    assert [(item["event"], item["courier"], item["run_id"]) for item in webhook.received] == [
        ("data_missing", "shop", courier_run["run_id"])]
    assert webhook.received[0]["text"].endswith("; landing what is ready")
