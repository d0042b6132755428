"""The dlt source of a courier: one resource per file tag, yielding Arrow tables.

Each landed row carries the file's own columns plus `_file` (object key), `_file_date` (the date
the pattern matched), `_file_row` (0-based row in the file) and the file's Hive partition values
(`experiment`, `event`; URL-decoded). dlt adds `_dlt_load_id`.

The resource state remembers the ETag each key was landed with, and dlt commits that state in the
same transaction as the rows: a re-run skips files it already has, and a rewritten file (new ETag)
lands again.

Bad files, by policy:
- a file that is not readable Parquet (truncated, not Parquet at all) is rejected;
- a file whose column has another type than the raw table has (integer became string) is rejected;
- a file with a new column lands, and the raw table gains the column (schema evolution);
- an empty Parquet file lands no rows.
A rejected file is named in the run result and history and is not marked as landed, so the next
run retries it; the run's other files land as usual.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import dlt
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.config import Courier
from pipelines.discovery import DataFile, Plan
from pipelines.errors import DataError
from pipelines.settings import BATCH_ROWS, FETCH_WORKERS, PREFETCH_FILES
from pipelines.storage import ObjectStore

SYSTEM_COLUMNS = ("_file", "_file_date", "_file_row")


@dataclass
class TagStats:
    """What one run landed for one file tag."""

    files: int = 0
    rows: int = 0
    bytes: int = 0
    already_loaded: int = 0
    rejected: list = field(default_factory=list)  # {"file": key, "reason": ...}
    new_columns: list = field(default_factory=list)  # columns this run added to the raw table


FileCallback = Callable[[DataFile, int], None]


def courier_source(courier: Courier, store: ObjectStore, plan: Plan, stats: dict[str, TagStats],
                   on_file: Optional[FileCallback] = None) -> dlt.sources.DltSource:
    """Build the dlt source that lands `plan` for `courier`.

    Args:
        courier: the courier being run.
        store: where its objects are read from.
        plan: the files to land, per tag, in load order.
        stats: filled in per tag as files land.
        on_file: called with each landed file and its row count (progress reporting).
    """

    @dlt.source(name=courier.name, max_table_nesting=0)
    def land() -> list:
        return [_tag_resource(tag, files, store, stats.setdefault(tag, TagStats()), on_file)
                for tag, files in plan.files.items()]

    return land()


def _tag_resource(tag: str, files: list[DataFile], store: ObjectStore, stats: TagStats,
                  on_file: Optional[FileCallback]) -> dlt.sources.DltResource:
    @dlt.resource(name=tag, table_name=tag, write_disposition="append",
                  columns={"_file_date": {"data_type": "date"}, "_file_row": {"data_type": "bigint"}})
    def files_of_tag() -> Iterator[pa.Table]:
        state = dlt.current.resource_state()
        loaded: dict = state.setdefault("loaded", {})
        load_ids: dict = state.setdefault("load_ids", {})  # the load that landed each key's current version
        load_id = dlt.current.load_package_state()["load_id"]
        pending = [f for f in files if loaded.get(f.key) != f.etag]
        stats.already_loaded += len(files) - len(pending)
        for datafile, path in _fetch_in_order(store, pending):
            url = store.url(datafile.key)
            try:
                parquet = open_part_file(path, url)
                _check_types(parquet.schema_arrow, _raw_columns(tag), url)
            except DataError as exc:
                stats.rejected.append({"file": datafile.key, "reason": str(exc)})
                continue
            stats.new_columns += [c for c in _new_columns(parquet.schema_arrow, _raw_columns(tag))
                                  if c not in stats.new_columns]
            rows = 0
            for table in read_batches(parquet, datafile, url):
                rows += table.num_rows
                yield table
            loaded[datafile.key], load_ids[datafile.key] = datafile.etag, load_id
            stats.files, stats.rows, stats.bytes = stats.files + 1, stats.rows + rows, stats.bytes + datafile.size
            if on_file is not None:
                on_file(datafile, rows)

    return files_of_tag()


def _fetch_in_order(store: ObjectStore, files: list[DataFile]) -> Iterator[tuple[DataFile, Path]]:
    """Local copies of `files` in order, downloading up to PREFETCH_FILES ahead on a bounded pool."""
    queue: deque[tuple[DataFile, Future]] = deque()
    upcoming = iter(files)
    with ThreadPoolExecutor(FETCH_WORKERS, thread_name_prefix="fetch") as pool:
        try:
            while True:
                while len(queue) < PREFETCH_FILES and (datafile := next(upcoming, None)) is not None:
                    queue.append((datafile, pool.submit(store.fetch, datafile.key)))
                if not queue:
                    return
                datafile, future = queue.popleft()
                path = future.result()
                try:
                    yield datafile, path
                finally:
                    store.release(path)
        finally:  # the consumer stopped early or failed: drop what was fetched ahead
            for _, future in queue:
                if not future.cancel() and future.exception() is None:
                    store.release(future.result())


def open_part_file(path: Path, url: str) -> pq.ParquetFile:
    """Open a part file, reading its footer: a truncated or non-Parquet object fails here, before any row."""
    try:
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
        raise DataError(f"{url} is not a readable Parquet file ({exc})") from None


def read_batches(parquet: pq.ParquetFile, datafile: DataFile, url: str) -> Iterator[pa.Table]:
    """Arrow tables of at most BATCH_ROWS rows from one part file, with the landing columns added."""
    offset = 0
    try:
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            yield _with_landing_columns(pa.Table.from_batches([batch]), datafile, offset)
            offset += batch.num_rows
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
        # Rows of this file may already be extracted: failing the run keeps them from being committed.
        raise DataError(f"{url} is corrupt after row {offset} ({exc})") from None


def _raw_columns(tag: str) -> dict:
    """The raw table's columns as the pipeline's schema knows them (empty before the first load)."""
    table = dlt.current.source_schema().tables.get(tag, {})
    return table.get("columns", {})


def _check_types(schema: pa.Schema, columns: dict, url: str) -> None:
    """Reject a file whose column has another type than the raw table's column of that name."""
    from dlt.common.libs.pyarrow import get_column_type_from_py_arrow

    for arrow_field in schema:
        existing = columns.get(arrow_field.name, {}).get("data_type")
        if existing is None or pa.types.is_null(arrow_field.type):
            continue
        found = get_column_type_from_py_arrow(arrow_field.type)["data_type"]
        if found != existing:
            raise DataError(f"{url}: column `{arrow_field.name}` is {found} here but {existing} in the raw table; "
                            f"the file is rejected until it is rewritten with {existing} values")


def _new_columns(schema: pa.Schema, columns: dict) -> list[str]:
    return [f.name for f in schema if columns and f.name not in columns]


def _with_landing_columns(table: pa.Table, datafile: DataFile, offset: int) -> pa.Table:
    n = table.num_rows
    for name, value in datafile.partition.items():
        if name not in table.column_names:  # the file's own column wins over the path
            table = table.append_column(name, pa.array([value] * n, pa.string()))
    return (table.append_column("_file", pa.array([datafile.key] * n, pa.string()))
                 .append_column("_file_date", pa.array([datafile.date] * n, pa.date32()))
                 .append_column("_file_row", pa.array(np.arange(offset, offset + n, dtype=np.int64))))
