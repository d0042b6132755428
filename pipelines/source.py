"""The dlt source of a courier: one resource per file tag, yielding Arrow tables.

Each landed row carries the file's own columns plus `_file` (object key), `_file_date` (the date
the pattern matched), `_file_row` (0-based row in the file) and the file's Hive partition values
(`experiment`, `event`; URL-decoded). dlt adds `_dlt_load_id`.

The resource state remembers the ETag each key was landed with, and dlt commits that state in the
same transaction as the rows: a re-run skips files it already has, and a rewritten file (new ETag)
lands again.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
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
        loaded: dict = dlt.current.resource_state().setdefault("loaded", {})
        pending = [f for f in files if loaded.get(f.key) != f.etag]
        stats.already_loaded += len(files) - len(pending)
        for datafile, path in _fetch_in_order(store, pending):
            rows = 0
            for table in read_part_file(path, datafile, store.url(datafile.key)):
                rows += table.num_rows
                yield table
            loaded[datafile.key] = datafile.etag
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


def read_part_file(path: Path, datafile: DataFile, url: str) -> Iterator[pa.Table]:
    """Arrow tables of at most BATCH_ROWS rows from one part file, with the landing columns added."""
    try:
        parquet = pq.ParquetFile(path)
        offset = 0
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            yield _with_landing_columns(pa.Table.from_batches([batch]), datafile, offset)
            offset += batch.num_rows
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
        raise DataError(f"cannot read {url}: not a readable Parquet file ({exc})") from None


def _with_landing_columns(table: pa.Table, datafile: DataFile, offset: int) -> pa.Table:
    n = table.num_rows
    for name, value in datafile.partition.items():
        if name not in table.column_names:  # the file's own column wins over the path
            table = table.append_column(name, pa.array([value] * n, pa.string()))
    return (table.append_column("_file", pa.array([datafile.key] * n, pa.string()))
                 .append_column("_file_date", pa.array([datafile.date] * n, pa.date32()))
                 .append_column("_file_row", pa.array(np.arange(offset, offset + n, dtype=np.int64))))
