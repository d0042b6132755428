"""Tuning constants and project-relative locations, named once."""

from __future__ import annotations

import os

# Rows per Arrow batch read from a part file: peak memory is bounded by a few batches, not a file.
BATCH_ROWS = 50_000
# DuckDB settings for landing: a bounded buffer pool (384MB: a fifth faster than 256MB, and with dbt
# importing and parsing beside it the run stays under 1 GB; it spills; loads stay fast), no ordering
# guarantee across threads (large inserts do not need it), and Parquet read a column chunk at a
# time: prefetching reads a whole row group into one buffer, and an E3 row group can be 140 MB.
DUCKDB_LANDING_CONFIG = {"memory_limit": "384MB", "preserve_insertion_order": False,
                         "disable_parquet_prefetching": True}
# Bytes of part files per DuckDB load: bounds the disk a run's downloads take, and the next load's
# files download while one loads.
LANDING_CHUNK_BYTES = 1 << 30
# Objects downloaded at once, and how far downloads may run ahead of the file being landed.
FETCH_WORKERS = 4
PREFETCH_FILES = 8

# Inside the project directory, git-ignored.
STATE_DIR = ".courier"
PIPELINES_DIR = ".courier/pipelines"
DOWNLOAD_DIR = ".courier/tmp"
DBT_LOG_DIR = ".courier/logs"
DBT_TARGET_DIR = "target"
SAMPLES_DIR = ".courier/samples"
WAREHOUSE_FILE = "warehouse.duckdb"
WAREHOUSE_ENV = "COURIER_DUCKDB"
# What the courier tells profiles.yml and the dbt macros when it runs dbt.
TARGET_ENV = "COURIER_TARGET"  # the dbt target: the warehouse type (duckdb, spark, ...)
LAKE_ENV = "COURIER_LAKE"  # spark: where raw Parquet landed
SPARK_DIR = ".courier/spark"  # spark: the local metastore and warehouse directory
SPARK_DIR_ENV = "COURIER_SPARK_DIR"


def configure_runtime() -> None:
    """Set dlt/dbt defaults before either is imported (the environment still wins).

    Telemetry is off so nothing waits on the network. dlt logs at ERROR: otherwise every run warns
    that DuckDB keeps the time zone over millisecond precision, which is what we want.
    """
    from optimizely_courier.compat import RUNTIME_DEFAULTS

    # (SIGTERM and Ctrl-C reach the courier, not dlt: dlt would swallow one arriving mid-load, and a
    # `courier serve` told to stop would go on scheduling runs.)
    for name, value in RUNTIME_DEFAULTS.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
