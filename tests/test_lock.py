"""The warehouse run lock: one run at a time, a clear message naming the holder, released by death."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from optimizely_courier.errors import WarehouseBusy
from optimizely_courier.runs.lock import warehouse_lock

HOLDER = {"run_id": "run-1", "courier": "optimizely", "started_at": "2026-11-29T08:00:00+00:00"}


def test_a_second_run_gives_up_after_its_timeout_naming_the_run_that_holds_the_lock(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with warehouse_lock(warehouse, HOLDER, timeout_seconds=0):
        with pytest.raises(WarehouseBusy) as busy:
            with warehouse_lock(warehouse, {"run_id": "run-2"}, timeout_seconds=0.3):
                pass
    message = str(busy.value)
    assert message.startswith(f"warehouse {warehouse} is busy: run run-1 (courier optimizely, pid ")
    assert message.endswith("waited 0.3s. Try again when it has finished")


def test_the_lock_is_free_again_once_its_holder_has_finished(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with warehouse_lock(warehouse, HOLDER, timeout_seconds=0):
        pass
    with warehouse_lock(warehouse, {"run_id": "run-2"}, timeout_seconds=0):
        assert '"run_id": "run-2"' in (tmp_path / "warehouse.duckdb.lock").read_text()


def test_a_killed_holder_releases_the_lock_at_once(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from pathlib import Path\n"
         "from optimizely_courier.runs.lock import warehouse_lock\n"
         f"with warehouse_lock(Path({str(warehouse)!r}), {{'run_id': 'doomed'}}, 0):\n"
         "    print('locked', flush=True)\n"
         "    time.sleep(600)\n"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"  # it holds the lock now
    with pytest.raises(WarehouseBusy, match="run doomed"):
        with warehouse_lock(warehouse, HOLDER, timeout_seconds=0):
            pass

    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)

    with warehouse_lock(warehouse, HOLDER, timeout_seconds=0):
        pass


def _create(warehouse) -> None:
    import duckdb

    with duckdb.connect(str(warehouse)) as db:
        db.execute("create table t as select 1 as x")


def test_reading_a_warehouse_another_process_writes_raises_a_typed_error_naming_its_pid(tmp_path, hold_warehouse):
    from optimizely_courier.runs.lock import reading

    warehouse = tmp_path / "warehouse.duckdb"
    _create(warehouse)
    holder = hold_warehouse(warehouse)
    told = []

    with pytest.raises(WarehouseBusy) as busy:
        with reading(warehouse, timeout_seconds=0.3, on_wait=told.append):
            pass

    assert busy.value.holder.startswith(f"PID {holder.pid} (") and "not a courier run" in busy.value.holder
    assert told == [busy.value.holder]  # told once, when the wait began
    assert str(busy.value).endswith("waited 0.3s. Try again when it has finished")
    holder.release()
    with reading(warehouse) as db:
        assert db.execute("select x from t").fetchall() == [(1,)]


def test_a_writer_waits_for_a_process_that_has_the_file_open_and_goes_on_once_it_closes(tmp_path, hold_warehouse):
    from optimizely_courier.runs.lock import wait_until_writable

    warehouse = tmp_path / "warehouse.duckdb"
    _create(warehouse)
    holder = hold_warehouse(warehouse)
    released = []

    def release_when_told(who: str) -> None:  # the wait has begun: the holder finishes now
        released.append(who)
        holder.release()

    wait_until_writable(warehouse, timeout_seconds=60, on_wait=release_when_told)

    assert len(released) == 1 and f"PID {holder.pid}" in released[0]


def test_courier_readers_share_the_run_lock_and_a_run_waits_for_them(tmp_path):
    from optimizely_courier.runs.lock import reading

    warehouse = tmp_path / "warehouse.duckdb"
    _create(warehouse)
    with reading(warehouse) as first, reading(warehouse) as second:
        assert first.execute("select x from t").fetchall() == second.execute("select x from t").fetchall()
        with pytest.raises(WarehouseBusy, match="a courier command reading it holds it"):
            with warehouse_lock(warehouse, HOLDER, timeout_seconds=0.3):
                pass
    with warehouse_lock(warehouse, HOLDER, timeout_seconds=0):
        reader = subprocess.run([sys.executable, "-c", "import sys\n"
                                 "from pathlib import Path\n"
                                 "from optimizely_courier.errors import WarehouseBusy\n"
                                 "from optimizely_courier.runs.lock import reading\n"
                                 "try:\n"
                                 "    with reading(Path(sys.argv[1])):\n"
                                 "        print('read')\n"
                                 "except WarehouseBusy as exc:\n"
                                 "    print(exc.holder)\n", str(warehouse)], capture_output=True, text=True)
    assert reader.stdout.startswith("run run-1 (courier optimizely, pid "), reader.stdout + reader.stderr
