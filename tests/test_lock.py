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
