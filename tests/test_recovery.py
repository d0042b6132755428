"""Exactly once: a run killed at each fault point is finished by the next run, every row once.

The kill is deterministic: `COURIER_FAULT=<point>` makes the courier process kill itself there
(`tests/faults.py`, armed by `tests/fault_site`), and each test first checks that the process died of SIGKILL. Set
`COURIER_FAULT_RUNS=20` to repeat each case (make reliability does).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from optimizely_courier.dev.generate import E3Spec, generate
from tests.cases import OPTIMIZELY_READY_SOURCES
from tests.conftest import DBT_FILES, ROOT, query, run_cli
from tests.faults import POINTS, fault_env
from tests.reliability_report import record

pytestmark = [pytest.mark.reliability, pytest.mark.faults]

SPEC = E3Spec(days=2, experiments=3, events=("purchase", "add:cart"), rows=3000, rows_per_file=500, seed=11)
TOTAL = SPEC.days * SPEC.rows  # decisions, and as many conversions
RUNS = int(os.environ.get("COURIER_FAULT_RUNS", "1"))


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recovery") / "mirror"
    generate(SPEC, path)
    return path


def make_project(root: Path, mirror: Path) -> Path:
    root.mkdir(parents=True)
    shutil.copytree(mirror, root / "mirror")
    (root / "sources.yml").write_text(OPTIMIZELY_READY_SOURCES)
    for name in (*DBT_FILES, "models", "feeds"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, root / name)
    return root


def run_with_fault(root: Path, point: str, *args: str) -> subprocess.CompletedProcess:
    """A `courier run` in its own process that kills itself at `point`."""
    env = {**fault_env(point), "RUNTIME__DLTHUB_TELEMETRY": "false"}
    return subprocess.run([sys.executable, "-m", "optimizely_courier", "-C", str(root), "run", "optimizely", *args],
                          capture_output=True, text=True, env=env, timeout=300)


# Fault points at which the killed load has already committed rows that the next run must take back.
COMMITTED_BEFORE_DEATH = ("between-jobs", "before-complete")


def incomplete_rows(root: Path) -> int:
    """Raw rows of loads dlt never recorded as complete."""
    complete = "(select load_id from raw_optimizely._dlt_loads)" if query(
        root, "select count(*) from information_schema.tables where table_name = '_dlt_loads'")[0][0] else "('')"
    return sum(query(root, f"select count(*) from raw_optimizely.{tag} where _dlt_load_id not in {complete}")[0][0]
               for tag in ("decisions", "conversions", "_courier_files")
               if query(root, f"select count(*) from information_schema.tables where table_name = '{tag}'")[0][0])


def assert_exactly_once(root: Path) -> None:
    for tag, table in (("decisions", "Optimizely:Decisions"), ("conversions", "Optimizely:Conversions")):
        rows, distinct = query(root, f"select count(*), count(distinct (_file, _file_row)) from raw_optimizely.{tag}")[0]
        record("rows_lost", max(0, TOTAL - distinct))
        record("rows_duplicated", rows - distinct)
        assert (rows, distinct) == (TOTAL, TOTAL), tag
        assert query(root, f'select count(*), count(distinct uuid) from domain."{table}"') == [(TOTAL, TOTAL)], table


@pytest.mark.parametrize("first_run", [True, False], ids=["into an empty warehouse", "after a landed day"])
@pytest.mark.parametrize("point", POINTS)
def test_a_run_killed_at_any_fault_point_is_finished_by_the_next_run_exactly_once(tmp_path, mirror, point, first_run):
    for attempt in range(RUNS):
        root = make_project(tmp_path / f"run{attempt}", mirror)
        if not first_run:
            assert run_cli(root, "run", "optimizely", "--date", str(SPEC.start)).exit_code == 0

        killed = run_with_fault(root, point, "--all")

        assert killed.returncode == -signal.SIGKILL, f"the fault did not happen:\n{killed.stdout}{killed.stderr}"
        if point in COMMITTED_BEFORE_DEATH:
            assert incomplete_rows(root) > 0, "the killed load committed no rows: nothing was left to take back"
        record("faults_injected")
        result = run_cli(root, "run", "optimizely", "--all")
        assert result.exit_code == 0, result.output
        assert_exactly_once(root)
        record("runs_recovered")
        runs = json.loads(run_cli(root, "history", "--json").output)
        assert runs[0]["status"] == "success" and runs[1]["status"] == "failed" and "interrupted" in runs[1]["error"]


def test_a_killed_run_followed_by_a_plain_dbt_build_lands_nothing_twice_and_builds_what_is_landed(tmp_path, mirror):
    root = make_project(tmp_path / "project", mirror)
    assert run_cli(root, "run", "optimizely", "--all", "--ingest-only").exit_code == 0
    killed = run_with_fault(root, "during-dbt", "--all")
    assert killed.returncode == -signal.SIGKILL

    build = subprocess.run([str(Path(sys.executable).parent / "dbt"), "build", "--quiet"], cwd=root,
                           capture_output=True, text=True, env={**os.environ, "DO_NOT_TRACK": "1"}, timeout=300)

    assert build.returncode == 0, build.stdout + build.stderr
    assert_exactly_once(root)
