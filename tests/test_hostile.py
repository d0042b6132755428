"""Input found to break the courier, each one now a clear one-line error or a warning, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.cases import ORDER_IDS_FEED, SHOP_LOADING_ORDERS
from tests.conftest import SHOP_SOURCES, run_cli, write_feed, write_part
from tests.reliability_report import record

pytestmark = pytest.mark.reliability

DAY = "2026-11-25"
GROUP = """courier_groups:
  nightly:
    schedule: "{schedule}"
    couriers:
      - {{name: shop, {member}}}
"""


def _one_error_line(result) -> str:  # noqa: ANN001 - a click Result
    record("bad_inputs_tried")
    record("tracebacks_seen", int("Traceback" in result.output))
    assert "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("Error: ") or "Error:" in lines[-1], result.output
    return lines[-1]


@pytest.mark.parametrize("member, schedule, command, message", [
    ("offset: 99999999999d", "30 8 * * *", ["validate"], "is longer than the longest duration allowed, 366d"),
    ("wait: 99999999999d", "30 8 * * *", ["group", "next", "nightly"], "longest duration allowed"),
    ("offset: 1d", "30 8 * * *", ["group", "run", "nightly"], None),  # poll, below
    ("offset: 1d", "0 0 31 2 *", ["group", "next", "nightly"], "never runs: none of its months has day 31"),
    ("offset: 1d", "30 8 * * *", ["group", "next", "nightly", "--after", "9999-12-31T23:59"],
     "has no scheduled time after 9999-12-31T23:59:00+00:00"),
    # a run scheduled for the far future would wait until then for data that cannot exist yet
    ("offset: 0", "30 8 * * *", ["group", "run", "nightly", "--scheduled-for", "9999-12-31T23:59:00Z"],
     "'--scheduled-for': 9999-12-31T23:59:00+00:00 is in the future"),
    ("offset: 1d", "30 8 * * *", ["group", "run", "nightly", "--if-scheduled-utc", "99 * * * *"],
     "'--if-scheduled-utc': minute field '99': values must be within 0-59"),
])
def test_impossible_schedules_and_durations_end_in_one_line(dbt_project, member, schedule, command, message):
    sources = SHOP_SOURCES + GROUP.format(schedule=schedule, member=member)
    if message is None:
        sources += "    poll: 99999999999d\n"
        message = "longest duration allowed"
    (dbt_project / "sources.yml").write_text(sources)
    result = run_cli(dbt_project, *command)
    assert result.exit_code != 0
    assert message in _one_error_line(result)


def test_lock_timeout_must_be_a_finite_number_of_seconds(dbt_project):
    result = run_cli(dbt_project, "run", "shop", "--date", DAY, "--lock-timeout", "nan")
    assert result.exit_code == 2
    assert "expected a number of seconds from 0 to 86400, got 'nan'" in _one_error_line(result)


@pytest.mark.parametrize("secrets, message", [
    ('[couriers.shop.credential]\nsecret_acces_key = "x"\n', "`couriers.shop.credential.secret_acces_key`: unknown key"),
    ('[couriers.shop.credential]\nsecret_access_key = 12\n', "expected a non-empty string, got a int"),
    ('[couriers.shop]\nbucket = "x"\n', "expected only a [couriers.<courier>.credential] table of secrets"),
])
def test_secrets_toml_names_unknown_keys_and_wrong_types(dbt_project, secrets, message):
    (dbt_project / ".dlt").mkdir()
    (dbt_project / ".dlt" / "secrets.toml").write_text(secrets)
    result = run_cli(dbt_project, "validate")
    assert result.exit_code == 1
    line = _one_error_line(result)
    assert message in line and ".dlt/secrets.toml" in line


def test_a_pattern_cannot_climb_out_of_a_local_mirror(dbt_project):
    secret = dbt_project.parent / "secretdir" / f"date={DAY}" / "x=1"
    secret.mkdir(parents=True)
    pq.write_table(pa.table({"password": ["hunter2"]}), secret / "part-0.parquet")
    (dbt_project / "sources.yml").write_text(SHOP_SOURCES.replace(
        "'orders/date='yyyy-MM-dd'/'", "'../../secretdir/date='yyyy-MM-dd'/x=*/'"))
    result = run_cli(dbt_project, "run", "shop", "--date", DAY)
    assert result.exit_code == 1
    assert "a '.' or '..' path segment would leave the courier's prefix" in _one_error_line(result)


def test_date_folders_that_are_not_dates_are_named_once_each(dbt_project):
    write_part(dbt_project, DAY, "part-0.parquet", [{"order_id": "a", "amount": 1}])
    for folder in ("date=notadate", "date=2026-13-45"):
        path = dbt_project / "mirror" / "orders" / folder
        path.mkdir(parents=True)
        pq.write_table(pa.table({"order_id": ["x"]}), path / "part-0.parquet")
    result = run_cli(dbt_project, "run", "shop", "--all")
    record("bad_inputs_tried", 2)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if "does not name a date" in line]
    assert len(warnings) == 2 and any("date=notadate" in w for w in warnings) and any("2026-13-45" in w for w in warnings)


def test_an_endpoint_with_nothing_listening_fails_in_seconds_naming_it(make_project):
    import socket
    import time

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    from tests.conftest import sources_yaml

    project = make_project(sources_yaml(bucket="b", endpoint=f"http://127.0.0.1:{port}"))
    started = time.monotonic()
    result = run_cli(project, "run", "optimizely", "--date", DAY)
    record("bad_inputs_tried")
    assert result.exit_code == 1
    assert f"cannot connect to the S3 endpoint http://127.0.0.1:{port} (Connection refused" in _one_error_line(result)
    assert time.monotonic() - started < 60  # not minutes of silent retries (botocore's would take ~90 s)


def test_a_dbt_error_before_any_model_runs_shows_its_cause_without_escapes(dbt_project):
    write_feed(dbt_project, ORDER_IDS_FEED)
    assert run_cli(dbt_project, "feeds", "compile").exit_code == 0
    (dbt_project / "sources.yml").write_text(SHOP_LOADING_ORDERS)
    (dbt_project / "macros" / "broken.sql").write_text("{% macro broken( %}\n{% endmacro %}\n")
    write_part(dbt_project, DAY, "part-0.parquet", [{"order_id": "a"}], pa.schema([("order_id", pa.string())]))

    result = run_cli(dbt_project, "run", "shop", "--date", DAY)

    assert result.exit_code == 1
    line = _one_error_line(result)
    assert line == "Error: dbt build failed: expected token 'name', got '%'; line 1; {% macro broken( %}"
    [run] = json.loads(run_cli(dbt_project, "history", "--json").output)
    assert "\x1b" not in run["error"] and "expected token 'name'" in run["error"]


def test_data_that_never_gets_a_ready_marker_suggests_removing_the_marker(dbt_project):
    (dbt_project / "sources.yml").write_text(SHOP_SOURCES.replace(
        "object/land-as", "object/ready-marker: \"'orders/date='yyyy-MM-dd'/_SUCCESS'\"\n        object/land-as"))
    write_part(dbt_project, DAY, "part-0.parquet", [{"order_id": "a", "amount": 1}])
    result = run_cli(dbt_project, "run", "shop", "--date", DAY)
    assert result.exit_code == 1
    assert ("has data files but no ready marker: if this export never writes one, remove `object/ready-marker` from "
            "the entity") in _one_error_line(result)


def test_a_group_waiting_for_data_names_the_marker_it_waits_for(dbt_project):
    (dbt_project / "sources.yml").write_text(SHOP_SOURCES.replace(
        "object/land-as", "object/ready-marker: \"'orders/date='yyyy-MM-dd'/_SUCCESS'\"\n        object/land-as")
        + GROUP.format(schedule="30 8 * * *", member="wait: 1s, offset: 1d") + "    poll: 500ms\n")
    process = subprocess.run([sys.executable, "-m", "optimizely_courier", "-C", str(dbt_project), "group", "run", "nightly",
                              "--date", DAY], capture_output=True, text=True, timeout=120)
    assert process.returncode == 1
    waiting = [line for line in process.stdout.splitlines() if "Waiting for source data (shop:" in line]
    assert waiting and f"orders/date={DAY}/_SUCCESS not found" in waiting[0]


@pytest.mark.parametrize("command, path, problem", [
    (["group", "export", "nightly", "--to", "airflow", "-o"], "dags/missing/dag.py", "directory {root}/dags/missing does not exist"),
    (["group", "export", "nightly", "--to", "cron", "-o"], "a-file/dag.py", "{root}/a-file is a file, not a directory"),
    (["generate"], "a-file/e3", "{root}/a-file is a file, not a directory"),
    (["generate"], "a-file/deeper/e3", "{root}/a-file is a file, not a directory"),
])
def test_an_output_path_that_cannot_be_written_is_one_line_naming_it(dbt_project, command, path, problem):
    (dbt_project / "sources.yml").write_text(SHOP_SOURCES + GROUP.format(schedule="30 8 * * *", member="offset: 1d"))
    (dbt_project / "a-file").write_text("a regular file")

    result = run_cli(dbt_project, *command, str(dbt_project / path))

    assert result.exit_code == 2, result.output
    assert _one_error_line(result).endswith(f"cannot write {dbt_project / path}: "
                                            f"{problem.format(root=dbt_project)}")
    assert (dbt_project / "a-file").read_text() == "a regular file"
