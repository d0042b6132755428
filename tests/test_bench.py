"""Smoke runs of the benchmarks at a tiny size, so they cannot rot (timings are not asserted)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.scaleout  # a few minutes of benchmark runs: `make scaleout`, beside the other long suites

ROOT = Path(__file__).resolve().parent.parent


def test_ingest_benchmark_lands_every_row_in_both_cases_and_prints_ratios():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "ingest.py"), "--rows", "2000", "--repeat", "1"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "Landing 2,000 E3 decision rows from local Parquet (median of 1):"
    assert [line.split()[0] for line in lines[2:]] == ["duckdb", "courier"]
    (_, duckdb_text, *_), (_, courier_text, *_, ratio) = (line.split() for line in lines[2:])
    # the printed ratio is the courier's time over DuckDB's, both printed rounded to 10 ms
    duckdb, courier, half = float(duckdb_text), float(courier_text), 0.005
    assert (courier - half) / (duckdb + half) - 0.005 <= float(ratio.rstrip("x")) <= (courier + half) / (duckdb - half)


def test_performance_suite_smoke_run_measures_every_case_and_target():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "suite.py"), "--smoke"], capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for case in ("duckdb (local)", "courier (local)", "boto3 + duckdb (S3)", "courier (S3)",
                 "dlt filesystem, default", "dlt filesystem, arrow"):
        assert f"| {case} |" in text
    assert text.count("(target") == 6


def test_experiment_benchmark_gets_the_hand_written_querys_units_totals_and_means():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "experiment.py"), "--visitors", "3000", "--days", "2"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr  # it exits non-zero when the two results differ
    for case in ("land and build domain tables", "build the experiment's tables", "courier results", "baseline",
                 "new day: build the experiment's tables"):
        assert f"| {case} |" in out.stdout
    assert "the units, totals and means are equal" in out.stdout


def test_end_to_end_benchmark_reports_every_case_beside_dbts_own_floor():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "e2e.py"), "--rows", "20000", "--repeat", "1"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    assert "| 20,000 | " in out.stdout  # the courier beside bench/baseline.sql, with its ratio
    for label in ("a daily increment", "the same run again (nothing new)", "a plain `dbt build`",
                  "the same `dbt build` again", "dbt's own floor: `dbt build` of a one-model project"):
        assert f"| {label}" in out.stdout
    assert "- 3,600 small part files landed: courier " in out.stdout


def test_year_benchmark_runs_a_day_onto_each_record_and_times_status():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "year.py"), "--days", "4", "--files", "8",
                          "--rounds", "1"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr  # it checks the run left the synthetic record as it was
    for case in ("empty", "one day", "a year"):
        assert f"| {case} | " in out.stdout
    assert "- onto a year against onto an empty record: " in out.stdout
    assert "- `courier status` on the year's record: " in out.stdout


def test_month_benchmark_reports_every_case_and_target(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "month.py"), "--days", "2", "--rows-per-day", "2000",
                          "--work", str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr  # it exits non-zero when the courier and the statement differ in rows
    assert "### A month of decisions: 2 days x 2,000 rows (8 part files, 4,000 rows; median of 1)" in out.stdout
    for label in ("`courier run optimizely --all`", "hand-written DuckDB", "one more day", "the same day onto an empty",
                  "a plain `dbt build`", "the same `dbt build` again", "dbt's own floor"):
        assert f"| {label}" in out.stdout
    assert out.stdout.count("(target") == 4
    assert "- a month: courier / hand-written DuckDB " in out.stdout
    assert "- a day onto the month / that day alone: " in out.stdout
    assert (tmp_path / "data-2000x4" / "type=decisions" / "date=2026-11-03" / "_SUCCESS").exists()  # kept for reruns
    assert not (tmp_path / "round").exists()


def test_day_benchmark_with_a_small_increment_holds_it_to_dbts_floor(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "month.py"), "--days", "1", "--rows-per-day", "2000",
                          "--increment-rows", "400", "--work", str(tmp_path)], capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr
    assert ("### A day of decisions: 1 day x 2,000 rows (4 part files, 2,000 rows; a 400-row increment; median of 1)"
            in out.stdout)
    assert "| one more day (400 rows) onto the day, " in out.stdout
    assert "- a mid-size day: courier / hand-written DuckDB " in out.stdout and "(target <= 2.0x)" in out.stdout
    assert "- a 400-row day onto the history: " in out.stdout and "(target <= + 1.0 s)" in out.stdout
    assert (tmp_path / "data-400x4" / "type=decisions" / "date=2026-11-02" / "_SUCCESS").exists()
