"""Run history in the operational store: records round-trip, newest first, dead runs are marked, and the
history an earlier version kept in the warehouse is copied in once, even when the warehouse was busy."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import duckdb

from optimizely_courier.runs.history import (
    CourierRun,
    history_pending,
    last_success,
    list_runs,
    mark_interrupted,
    save,
)

UTC = dt.UTC


def record(run_id: str, courier: str = "optimizely", minute: int = 0, **fields) -> CourierRun:
    started = dt.datetime(2026, 11, 29, 8, minute, tzinfo=UTC)
    return CourierRun(run_id=run_id, courier=courier, dates="2026-11-28", started_at=started, **fields)


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


def legacy_warehouse(warehouse) -> None:
    """A warehouse as an earlier version left it: the run history in DuckDB's `courier.runs` and
    `courier.group_runs`, with their columns of then."""
    with duckdb.connect(str(warehouse)) as db:
        db.execute("create schema courier")
        db.execute("create table courier.runs (run_id varchar primary key, courier varchar, group_name varchar, "
                   "dates varchar, status varchar, started_at timestamptz, ended_at timestamptz, "
                   "duration_seconds double, files json, landed json, already_landed json, rows json, feeds json, "
                   "skipped json, rejected json, new_columns json, error varchar, load_id varchar, host varchar, "
                   "pid integer)")
        db.execute("create table courier.group_runs (run_id varchar primary key, group_name varchar, "
                   "scheduled_for timestamptz, dates varchar, status varchar, started_at timestamptz, "
                   "ended_at timestamptz, courier_runs json, alerts json, downstream json, error varchar, "
                   "host varchar, pid integer)")
        db.execute("""insert into courier.runs values
            ('old-1', 'optimizely', 'nightly', '2026-11-01', 'success', '2026-11-02 08:00:00+00',
             '2026-11-02 08:01:00+00', 60.0, '{"decisions": 2}', '{"decisions": 2}', '{"decisions": 0}',
             '{"decisions": 300}', '{"df-7k2m9q": {"upserted": 300}}', '[]', '[]', '{}', null, '1.2', 'h', 1),
            ('old-2', 'optimizely', null, '2026-11-02', 'failed', '2026-11-03 08:00:00+00', null, null,
             null, null, null, null, null, null, null, null, 'boom', null, 'h', 2)""")
        db.execute("""insert into courier.group_runs values
            ('group-1', 'nightly', '2026-11-02 16:30:00+00', 'optimizely 2026-11-01', 'success',
             '2026-11-02 16:30:05+00', '2026-11-02 16:40:00+00', '["old-1"]', '[]',
             '[{"command": "dbt test", "exit_code": 0}]', null, 'h', 3)""")


def test_history_an_earlier_version_kept_in_the_warehouse_is_copied_into_the_store_once(tmp_path):
    from optimizely_courier.runs.store import store_path

    warehouse = tmp_path / "warehouse.duckdb"
    legacy_warehouse(warehouse)

    runs = list_runs(warehouse)
    save(warehouse, record("new", minute=0, status="success"))  # 2026-11-29: newer than both
    again = list_runs(warehouse)
    [group_run] = list_runs(warehouse, table="group_runs")

    assert store_path(warehouse) == tmp_path / ".courier" / "warehouse.runs.sqlite"
    assert [(r["run_id"], r["status"], r["group_name"]) for r in runs] == [("old-2", "failed", None),
                                                                           ("old-1", "success", "nightly")]
    old = runs[1]
    assert (old["started_at"], old["ended_at"], old["duration_seconds"]) == (
        "2026-11-02T08:00:00+00:00", "2026-11-02T08:01:00+00:00", 60.0)
    assert (old["rows"], old["feeds"], old["skipped"]) == ({"decisions": 300}, {"df-7k2m9q": {"upserted": 300}}, [])
    assert (runs[0]["error"], runs[0]["rows"], runs[0]["rejected"]) == ("boom", {}, [])
    assert [r["run_id"] for r in again] == ["new", "old-2", "old-1"]  # copied once: nothing twice
    assert (group_run["courier_runs"], group_run["downstream"]) == (["old-1"], [{"command": "dbt test",
                                                                                "exit_code": 0}])
    assert last_success(warehouse, "nightly") == dt.datetime(2026, 11, 2, 16, 30, tzinfo=UTC)  # catch-up goes on


def test_history_kept_in_a_busy_warehouse_is_copied_once_it_is_free_and_new_runs_are_kept_meanwhile(
        tmp_path, hold_warehouse):
    warehouse = tmp_path / "warehouse.duckdb"
    legacy_warehouse(warehouse)
    holder = hold_warehouse(warehouse)

    save(warehouse, record("new", status="running"))
    while_busy = [r["run_id"] for r in list_runs(warehouse)]
    pending = history_pending(warehouse)
    holder.release()

    assert (while_busy, pending) == (["new"], True)
    assert [r["run_id"] for r in list_runs(warehouse)] == ["new", "old-2", "old-1"]
    assert history_pending(warehouse) is False
