"""The exported Airflow DAG under a real Airflow: `airflow dags test` for a past scheduled time loads that
run's dates, not the latest scheduled time's (`make scaleout`; the first run installs Airflow).

Airflow's dependencies conflict with dbt's, so each version gets its own virtual environment, kept between
runs in .courier/airflow-<version> (70 to 180 s and about 300 MB to install each, once; then about 25 s a
test). The DAG's task calls this installation's `courier`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import optimizely_courier
from tests.conftest import ROOT, run_cli
from tests.test_groups import SOURCES, raw_days, ready_day

pytestmark = pytest.mark.scaleout

# The last Airflow 2 and an Airflow 3 (the DAG imports Airflow 3's BashOperator first, then Airflow 2's).
AIRFLOW_VERSIONS = ("2.10.5", "3.1.5")
INSTALL_TIMEOUT = 1800


def install_airflow(version: str) -> Path:
    """The `airflow` command of a virtual environment holding only Airflow (installed once, then reused)."""
    venv = ROOT / ".courier" / f"airflow-{version}"
    command = venv / "bin" / "airflow"
    if not command.exists():
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        install = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", f"apache-airflow=={version}"],
                                 capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        assert install.returncode == 0, f"pip install apache-airflow=={version} failed:\n{install.stderr[-3000:]}"
        print(f"installed apache-airflow {version} in {time.monotonic() - started:.0f} s")
    return command


@pytest.mark.parametrize("version", AIRFLOW_VERSIONS)
def test_airflow_dags_test_for_a_past_date_loads_that_run_s_dates(version, dbt_project, tmp_path):
    airflow = install_airflow(version)
    (dbt_project / "sources.yml").write_text(SOURCES.format(wait="0", on_missing="stop", extra=""))
    for day in ("2026-11-19", "2026-11-20", "2026-11-21"):
        ready_day(dbt_project, day)
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    assert run_cli(dbt_project, "group", "export", "nightly", "--to", "airflow",
                   "-o", str(home / "dags" / "courier.py")).exit_code == 0
    # only Airflow's own packages, and this checkout's sources for the `courier` the task runs
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", RUNTIME__DLTHUB_TELEMETRY="false",
               DO_NOT_TRACK="1", PYTHONPATH=str(Path(optimizely_courier.__file__).parents[1]))
    subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, check=True, timeout=300)

    # 2026-11-21 08:30 in Los Angeles, a past run: its 24h offset window is 2026-11-20 (the latest
    # scheduled time's would be yesterday's, which has no data here)
    started = time.monotonic()
    test = subprocess.run([str(airflow), "dags", "test", "courier_group_nightly", "2026-11-21T16:30:00+00:00"],
                          env=env, capture_output=True, text=True, timeout=600)
    print(f"airflow dags test took {time.monotonic() - started:.0f} s")

    log = test.stdout + test.stderr
    assert test.returncode == 0, log[-3000:]
    assert "group run nightly --scheduled-for 2026-11-21T16:30:00+00:00" in log
    assert raw_days(dbt_project) == ["2026-11-20"]
    [group_run] = json.loads(run_cli(dbt_project, "group", "history", "--json").output)
    assert (group_run["status"], group_run["scheduled_for"], group_run["dates"]) == (
        "success", "2026-11-21T16:30:00+00:00", "shop 2026-11-20")
