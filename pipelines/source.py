"""The dlt source of a courier: one resource per file tag.

Each landed row carries the file's own columns plus `_file` (object key), `_file_date` (the date
the pattern matched), `_file_row` (0-based row in the file) and the file's Hive partition values
(`experiment`, `event`; URL-decoded). dlt adds `_dlt_load_id`.

Two ways to land, one set of rules:
- into DuckDB, a resource hands dlt one SQL model per tag that reads the part files in place
  (`pipelines.direct`); the files are fetched before the run (`ingest.land`);
- into a lake or a cloud warehouse, a resource yields Arrow batches of each file.

The resource state remembers the ETag each key was landed with, and dlt commits that state in the
same transaction as the rows: a re-run skips files it already has, and a rewritten file (new ETag)
lands again.

Bad files, by policy:
- a file that is not readable Parquet (truncated, not Parquet at all) is rejected;
- a file whose column has another type than the raw table has (integer became string) is rejected;
- a file with a new column lands, and the raw table gains the column (schema evolution);
- an empty Parquet file lands no rows;
- a file whose footer reads but whose data is corrupt fails its load; `ingest.land` takes that
  load back and lands the other files without it.
A rejected file is named in the run result and history and is not marked as landed, so the next
run retries it; the run's other files land as usual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import dlt
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.config import Courier
from pipelines.direct import file_columns, model_for, open_part_file, read_footer
from pipelines.discovery import DataFile, Plan
from pipelines.errors import DataError
from pipelines.settings import BATCH_ROWS, PREFETCH_FILES
from pipelines.storage import Downloads, ObjectStore

@dataclass
class TagStats:
    """What one run landed for one file tag."""

    files: int = 0
    rows: int = 0
    bytes: int = 0
    already_loaded: int = 0
    rejected: list = field(default_factory=list)  # {"file": key, "reason": ...}
    new_columns: list = field(default_factory=list)  # columns this run added to the raw table

    def note_new_columns(self, schema: pa.Schema, columns: dict) -> None:
        self.new_columns += [c for c in _new_columns(schema, columns) if c not in self.new_columns]


FileCallback = Callable[[DataFile, int], None]


def courier_source(courier: Courier, store: ObjectStore, plan: Plan, stats: dict[str, TagStats],
                   on_file: Optional[FileCallback] = None) -> dlt.sources.DltSource:
    """The dlt source that lands `plan` for `courier` as Arrow batches (lake and cloud warehouses).

    Args:
        courier: the courier being run.
        store: where its objects are read from.
        plan: the files to land, per tag, in load order.
        stats: filled in per tag as files land.
        on_file: called with each landed file and its row count (progress reporting).
    """
    return _source(courier, [_arrow_resource(tag, files, store, stats.setdefault(tag, TagStats()), on_file)
                             for tag, files in plan.files.items()])


def direct_source(courier: Courier, store: ObjectStore, files: dict[str, list[DataFile]],
                  local_copy: Callable[[DataFile], Path], stats: dict[str, TagStats], scratch: Path,
                  landed: list[tuple[DataFile, int]]) -> dlt.sources.DltSource:
    """The dlt source that lands `files` into DuckDB, which reads them in place (`pipelines.direct`).

    Args:
        courier: the courier being run.
        store: where its objects are read from (names them in messages).
        files: the files to land, per tag, in load order.
        local_copy: the local path of a file (waits for its download).
        stats: filled in per tag as files are accepted.
        scratch: a directory for the model files handed to dlt.
        landed: gets each accepted file and its row count; they are landed once the load commits.
    """
    return _source(courier, [_direct_resource(tag, tag_files, store, local_copy, stats.setdefault(tag, TagStats()),
                                              scratch, landed)
                             for tag, tag_files in files.items()])


def _source(courier: Courier, resources: list) -> dlt.sources.DltSource:
    @dlt.source(name=courier.name, max_table_nesting=0)
    def land() -> list:
        return resources

    return land()


LANDING_HINTS = {"_file_date": {"data_type": "date"}, "_file_row": {"data_type": "bigint"}}


def _arrow_resource(tag: str, files: list[DataFile], store: ObjectStore, stats: TagStats,
                    on_file: Optional[FileCallback]) -> dlt.sources.DltResource:
    @dlt.resource(name=tag, table_name=tag, write_disposition="append", columns=LANDING_HINTS)
    def files_of_tag() -> Iterator[pa.Table]:
        landing = _LandingState(files, stats)
        for datafile, path in _fetch_in_order(store, landing.pending):
            url = store.url(datafile.key)
            try:
                parquet = open_part_file(path, url)
                _check_types(parquet.schema_arrow, _raw_columns(tag), url)
            except DataError as exc:
                stats.rejected.append({"file": datafile.key, "reason": str(exc)})
                continue
            stats.note_new_columns(parquet.schema_arrow, _raw_columns(tag))
            rows = 0
            for table in read_batches(parquet, datafile, url):
                rows += table.num_rows
                yield table
            landing.mark_landed(datafile, rows)
            if on_file is not None:
                on_file(datafile, rows)

    return files_of_tag()


def _direct_resource(tag: str, files: list[DataFile], store: ObjectStore, local_copy: Callable[[DataFile], Path],
                     stats: TagStats, scratch: Path, landed: list) -> dlt.sources.DltResource:
    # The column hints come with the model, in table order (file columns first).
    @dlt.resource(name=tag, table_name=tag, write_disposition="append")
    def files_of_tag() -> Iterator:
        landing = _LandingState(files, stats)
        known = dict(_raw_columns(tag))  # grows with each accepted file: one run cannot mix types either
        accepted = []
        for datafile in landing.pending:
            url = store.url(datafile.key)
            try:
                part = read_footer(datafile, local_copy(datafile), url)
                _check_types(part.schema, known, url)
            except DataError as exc:
                stats.rejected.append({"file": datafile.key, "reason": str(exc)})
                continue
            stats.note_new_columns(part.schema, known)
            known.update({k: v for k, v in file_columns(part.schema).items() if k not in known})
            accepted.append(part)
        if not accepted:
            return
        text, columns = model_for(accepted, dlt.current.source_schema().naming.normalize_identifier)
        model = scratch / f"{landing.load_id}.{tag}.model"
        model.write_text(text, encoding="utf-8")
        yield dlt.mark.with_file_import(str(model), "model", hints=dlt.mark.make_hints(columns=columns))
        model.unlink()  # dlt linked it into the load package
        for part in accepted:
            landing.mark_landed(part.datafile, part.rows)
            landed.append((part.datafile, part.rows))

    return files_of_tag()


class _LandingState:
    """A tag's resource state: which files are new, and recording what lands with the load."""

    def __init__(self, files: list[DataFile], stats: TagStats):
        state = dlt.current.resource_state()
        self.loaded: dict = state.setdefault("loaded", {})
        self.load_ids: dict = state.setdefault("load_ids", {})  # the load that landed each key's current version
        self.load_id = dlt.current.load_package_state()["load_id"]
        self.stats = stats
        self.pending = [f for f in files if self.loaded.get(f.key) != f.etag]
        stats.already_loaded += len(files) - len(self.pending)

    def mark_landed(self, datafile: DataFile, rows: int) -> None:
        self.loaded[datafile.key], self.load_ids[datafile.key] = datafile.etag, self.load_id
        self.stats.files, self.stats.rows = self.stats.files + 1, self.stats.rows + rows
        self.stats.bytes += datafile.size


def _fetch_in_order(store: ObjectStore, files: list[DataFile]) -> Iterator[tuple[DataFile, Path]]:
    """Local copies of `files` in order, downloading up to PREFETCH_FILES ahead; each is deleted once used."""
    with Downloads(store) as downloads:
        try:
            for index, datafile in enumerate(files):
                downloads.start(files[index:index + PREFETCH_FILES])
                yield datafile, downloads.path(datafile)
                downloads.release([datafile])
        finally:  # the consumer stopped early or failed: drop what was fetched ahead
            downloads.release(files)


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
