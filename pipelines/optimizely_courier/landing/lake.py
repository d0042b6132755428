"""The record in a lake (Spark): dlt's filesystem layout, read and cleaned with DuckDB and fsspec.

dlt lands each table as files named `<table>/<load_id>.<file id>.parquet` and records a completed
load as `_dlt_loads/<schema>__<load_id>.jsonl` (the layout is dlt's: `compat.lake_load_id`). A load
id with files but no such entry belongs to a run that died; its files are deleted before a run decides
anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import fsspec

from optimizely_courier.compat import LAKE_LOADS_FOLDER, LAKE_SCHEMA_FOLDER, lake_load_id
from optimizely_courier.landing.record import LOADS_TABLE, RECORD_TABLE


def _folder(lake: str, dataset: str) -> tuple[fsspec.AbstractFileSystem, str]:
    filesystem, path = fsspec.core.url_to_fs(lake)
    return filesystem, f"{path.rstrip('/')}/{dataset}"


def _complete_loads(filesystem: fsspec.AbstractFileSystem, folder: str) -> set[str]:
    loads = f"{folder}/{LAKE_LOADS_FOLDER}"
    names = filesystem.ls(loads, detail=False) if filesystem.isdir(loads) else []
    return {lake_load_id(LAKE_LOADS_FOLDER, name.rsplit("/", 1)[-1]) for name in names}


def _table_files(filesystem: fsspec.AbstractFileSystem, folder: str) -> Iterator[tuple[str, str]]:
    """(path, load id) of every file that belongs to a load (schema versions and markers do not)."""
    if not filesystem.isdir(folder):
        return
    for table_path in filesystem.ls(folder, detail=False):
        table = table_path.rsplit("/", 1)[-1]
        if table in (LAKE_LOADS_FOLDER, LAKE_SCHEMA_FOLDER) or not filesystem.isdir(table_path):
            continue
        for path in filesystem.ls(table_path, detail=False):
            yield path, lake_load_id(table, path.rsplit("/", 1)[-1])


def take_back_lake_loads(lake: str, dataset: str) -> list[str]:
    """Delete the files of loads that have no `_dlt_loads` entry; return their load ids."""
    filesystem, folder = _folder(lake, dataset)
    complete = _complete_loads(filesystem, folder)
    incomplete = sorted({load_id for _, load_id in _table_files(filesystem, folder) if load_id not in complete})
    for path, load_id in list(_table_files(filesystem, folder)):
        if load_id in incomplete:
            filesystem.rm(path)
    return incomplete


@contextmanager
def lake_record(lake: str, dataset: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB where `<dataset>._courier_files` and `<dataset>._dlt_loads` are views of the lake."""
    filesystem, folder = _folder(lake, dataset)
    with duckdb.connect() as db:
        db.execute(f'create schema "{dataset}"')
        loads = ", ".join(f"('{load_id}', 0)" for load_id in sorted(_complete_loads(filesystem, folder)))
        db.execute(f'create view "{dataset}".{LOADS_TABLE} as select * from (values {loads or "(null, null)"}) '
                   f"as t(load_id, status) where load_id is not null")
        if filesystem.isdir(f"{folder}/{RECORD_TABLE}") and filesystem.ls(f"{folder}/{RECORD_TABLE}"):
            db.execute(f'create view "{dataset}".{RECORD_TABLE} as select * from '
                       f"read_parquet('{folder}/{RECORD_TABLE}/*.parquet', union_by_name = true)")
        yield db
