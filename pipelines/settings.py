"""Tuning constants and project-relative locations, named once."""

from __future__ import annotations

import os

# Rows per Arrow batch read from a part file: peak memory is bounded by a few batches, not a file.
BATCH_ROWS = 100_000
# Objects downloaded at once, and how far downloads may run ahead of the file being landed.
FETCH_WORKERS = 4
PREFETCH_FILES = 8

# Inside the project directory, git-ignored.
STATE_DIR = ".courier"
PIPELINES_DIR = ".courier/pipelines"
DOWNLOAD_DIR = ".courier/tmp"
WAREHOUSE_FILE = "warehouse.duckdb"
WAREHOUSE_ENV = "COURIER_DUCKDB"


def quiet_telemetry() -> None:
    """Turn dlt and dbt telemetry off before either is imported: nothing may wait on the network."""
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
