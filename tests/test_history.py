"""Run history in the warehouse: records round-trip, newest first, and dead runs are marked."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import duckdb

from optimizely_courier.runs.history import RunRecord, list_runs, mark_interrupted, save

UTC = dt.UTC


def record(run_id: str, courier: str = "optimizely", minute: int = 0, **fields) -> RunRecord:
    started = dt.datetime(2026, 11, 29, 8, minute, tzinfo=UTC)
    return RunRecord(run_id=run_id, courier=courier, dates="2026-11-28", started_at=started, **fields)


def test_runs_come_back_newest_first_with_their_json_fields_and_filtered_by_courier(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    save(warehouse, record("a", minute=1, status="success", landed={"decisions": 2}, rows={"decisions": 300},
                           rejected=[{"file": "x.parquet", "reason": "not Parquet"}]))
    save(warehouse, record("b", minute=2, status="failed", error="boom"))
    save(warehouse, record("c", courier="shop", minute=3, status="success"))

    runs = list_runs(warehouse, courier="optimizely")

    assert [r["run_id"] for r in runs] == ["b", "a"]
    assert runs[1]["landed"] == {"decisions": 2} and runs[1]["rows"] == {"decisions": 300}
    assert runs[1]["rejected"] == [{"file": "x.parquet", "reason": "not Parquet"}]
    assert runs[0]["error"] == "boom" and runs[0]["skipped"] == [] and runs[0]["new_columns"] == {}
    assert runs[1]["started_at"] == "2026-11-29T08:01:00+00:00"
    assert [r["run_id"] for r in list_runs(warehouse, limit=1)] == ["c"]


def test_saving_a_run_again_updates_it_in_place(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    run = record("a")
    save(warehouse, run)
    run.status, run.load_id = "success", "1795974209.6"
    save(warehouse, run)

    assert [(r["run_id"], r["status"], r["load_id"]) for r in list_runs(warehouse)] == [("a", "success", "1795974209.6")]


def test_a_running_run_whose_process_is_gone_is_marked_failed_and_a_live_one_is_left(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    save(warehouse, record("dead", pid=int(gone.stdout)))
    save(warehouse, record("alive", minute=1, pid=os.getpid()))

    assert mark_interrupted(warehouse) == ["dead"]

    statuses = {r["run_id"]: (r["status"], r["error"]) for r in list_runs(warehouse)}
    assert statuses == {"dead": ("failed", "interrupted: the run's process ended before the run finished"),
                        "alive": ("running", None)}


def test_a_warehouse_from_an_older_version_gains_the_new_history_columns(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as db:
        db.execute("create schema courier")
        db.execute("create table courier.runs (run_id varchar primary key, courier varchar, dates varchar, "
                   "status varchar, started_at timestamptz)")
        db.execute("insert into courier.runs values ('old', 'optimizely', '2026-11-01', 'success', "
                   "'2026-11-02 08:00:00+00')")

    save(warehouse, record("new", status="partial", new_columns={"decisions": ["coupon"]}))

    runs = {r["run_id"]: r for r in list_runs(warehouse)}
    assert runs["new"]["new_columns"] == {"decisions": ["coupon"]} and runs["new"]["status"] == "partial"
    assert runs["old"]["status"] == "success" and runs["old"]["new_columns"] == {}
