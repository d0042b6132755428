"""The dlt source of a courier: one resource per file tag.

Each landed row carries the file's own columns plus `_file` (object key), `_file_date` (the date
the pattern matched), `_file_row` (0-based row in the file) and the file's Hive partition values
(`experiment`, `event`; URL-decoded). dlt adds `_dlt_load_id`.

Two ways to land, one set of rules:
- into DuckDB, a resource hands dlt one SQL model per tag that reads the part files in place
  (`optimizely_courier.landing.direct`); the files are fetched before the run (`ingest.land`);
- into a lake or a cloud warehouse, a resource yields Arrow batches of each file.

The record entries of the files (`optimizely_courier.landing.record`) go into the same load package
(an Arrow resource yields them file by file; into DuckDB, a model reads them from the facts that
`direct.model_for` writes): a file counts as landed once dlt records the load as complete, never before.

Bad files, by policy:
- a file that is not readable Parquet (truncated, not Parquet at all) is rejected;
- a file whose column has another type than the raw table has (integer became string) is rejected;
- a file with a timestamp DuckDB cannot hold (year 300000: valid Parquet) is rejected (`direct.check_timestamps`);
- a file with a new column lands, and the raw table gains the column (schema evolution);
- an empty Parquet file lands no rows;
- a file whose footer reads but whose data is corrupt fails its load; `ingest.land` takes that
  load back and lands the other files without it.
A rejected file is named in the run result and history and gets no record entry, so the next run
retries it; the run's other files land as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import dlt
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from optimizely_courier.config.sources import Courier
from optimizely_courier.errors import DataError
from optimizely_courier.landing.direct import (
    PartFile,
    check_timestamps,
    file_columns,
    model_for,
    open_part_file,
    record_model,
    schema_runs,
)
from optimizely_courier.landing.discovery import DataFile, FileCallback, TagStats
from optimizely_courier.landing.record import RECORD_COLUMNS, RECORD_TABLE
from optimizely_courier.landing.storage import Downloads, ObjectStore
from optimizely_courier.settings import BATCH_ROWS, PREFETCH_FILES


def arrow_source(courier: Courier, store: ObjectStore, files: dict[str, list[DataFile]],
                 stats: dict[str, TagStats], known: dict[str, dict],
                 on_file: FileCallback | None = None) -> dlt.sources.DltSource:
    """The dlt source that lands `files` as Arrow batches (lake and cloud warehouses).

    Args:
        courier: the courier being run.
        store: where its objects are read from.
        files: the files to land, per tag, in load order.
        stats: filled in per tag as files land.
        known: per tag, the raw table's columns (dlt hints) a file's types are checked against.
        on_file: called with each file and its row count once it is read (progress reporting).
    """
    return _source(courier, [_arrow_resource(tag, tag_files, store, stats.setdefault(tag, TagStats()),
                                             dict(known.get(tag, {})), on_file)
                             for tag, tag_files in files.items()])


def direct_source(courier: Courier, parts: dict[str, list[PartFile]], scratch: Path) -> dlt.sources.DltSource:
    """The dlt source that lands `parts` into DuckDB, which reads them in place (`optimizely_courier.landing.direct`).

    Args:
        courier: the courier being run.
        parts: the accepted part files, per tag, in load order (their footers already read).
        scratch: a directory for the model files handed to dlt.
    """
    tags = [tag for tag, tag_parts in parts.items() if tag_parts]
    return _source(courier, [_direct_resource(tag, parts[tag], scratch) for tag in tags]
                   + [_direct_record_resource(parts, tags, scratch)])


def _source(courier: Courier, resources: list) -> dlt.sources.DltSource:
    @dlt.source(name=courier.name, max_table_nesting=0)
    def land() -> list:
        return resources

    return land()


RECORD_SCHEMA = pa.schema([("file", pa.string()), ("etag", pa.string()), ("size_bytes", pa.int64()),
                           ("tag", pa.string()), ("file_date", pa.date32()), ("row_count", pa.int64())])


def record_row(datafile: DataFile, rows: int) -> pa.Table:
    """The record entry of a landed file (`optimizely_courier.landing.record`), as a table of one row."""
    return pa.table([[datafile.key], [datafile.etag], [datafile.size], [datafile.tag], [datafile.date], [rows]],
                    schema=RECORD_SCHEMA)


def _arrow_resource(tag: str, files: list[DataFile], store: ObjectStore, stats: TagStats, known: dict,
                    on_file: FileCallback | None) -> dlt.sources.DltResource:
    @dlt.resource(name=tag, table_name=tag, write_disposition="append")
    def files_of_tag() -> Iterator[pa.Table]:
        for datafile, path in _fetch_in_order(store, files):
            url = store.url(datafile.key)
            try:
                parquet = open_part_file(path, url)
                check_timestamps(parquet, path, url)
                check_types(parquet.schema_arrow, known, url)
            except DataError as exc:
                stats.rejected.append({"file": datafile.key, "reason": str(exc)})
                continue
            stats.note_new_columns(parquet.schema_arrow, known)
            known.update({k: v for k, v in file_columns(parquet.schema_arrow).items() if k not in known})
            rows = 0
            for table in read_batches(parquet, datafile, url):
                rows += table.num_rows
                yield table
            # into the record table, in the same package; a table variant, so the hints are its own
            yield dlt.mark.with_hints(record_row(datafile, rows),
                                      dlt.mark.make_hints(table_name=RECORD_TABLE, columns=RECORD_COLUMNS),
                                      create_table_variant=True)
            stats.add(datafile, rows)
            if on_file is not None:
                on_file(datafile, rows)

    return files_of_tag()


def _direct_resource(tag: str, parts: list[PartFile], scratch: Path) -> dlt.sources.DltResource:
    # The column hints come with the model, in table order (file columns first).
    @dlt.resource(name=tag, table_name=tag, write_disposition="append")
    def files_of_tag() -> Iterator:
        load_id = dlt.current.load_package_state()["load_id"]
        text, columns = model_for(parts, dlt.current.source_schema().naming.normalize_identifier,
                                  _links_folder(scratch, load_id, tag))
        yield from _import_model(scratch / f"{load_id}.{tag}.model", text, columns, sum(part.rows for part in parts))

    return files_of_tag()


def _direct_record_resource(parts: dict[str, list[PartFile]], tags: list[str],
                            scratch: Path) -> dlt.sources.DltResource:
    """The record entries of the files the resources of `tags` land, read from their facts files."""
    @dlt.resource(name=RECORD_TABLE, write_disposition="append")
    def record() -> Iterator:
        load_id = dlt.current.load_package_state()["load_id"]
        text = record_model([_links_folder(scratch, load_id, tag) for tag in tags])
        yield from _import_model(scratch / f"{load_id}.{RECORD_TABLE}.model", text, RECORD_COLUMNS,
                                 sum(len(parts[tag]) for tag in tags))

    return record()


def _links_folder(scratch: Path, load_id: str, tag: str) -> Path:
    """Where `direct.model_for` links a load's part files of `tag`."""
    return scratch / f"{load_id}.{tag}"


def _import_model(path: Path, text: str, columns: dict, rows: int) -> Iterator:
    """Hand dlt the model at `path`, which selects `rows` rows (dlt's extract metrics count them;
    `direct.count_model_rows` gives the counts to the normalize step, which `dlt pipeline trace` shows)."""
    path.write_text(text, encoding="utf-8")
    yield dlt.mark.with_file_import(str(path), "model", items_count=rows, hints=dlt.mark.make_hints(columns=columns))
    path.unlink()  # dlt linked it into the load package


def accept_parts(parts: list[PartFile], known: dict[str, dict], stats: dict[str, TagStats],
                 url: Callable[[str], str]) -> dict[str, list[PartFile]]:
    """The part files whose types agree with what is expected of their tag, per tag.

    Expected are the raw table's types (and a known schema's, see `ingest._expected_columns`). A
    column that is new decides its type by the majority of this load's files that have it (ties:
    the type of more rows, then the type's name), never by which file comes first. A file that
    disagrees is rejected into its tag's stats; what a load accepts is expected of later loads.
    """
    accepted: dict[str, list[PartFile]] = {}
    for tag in dict.fromkeys(part.datafile.tag for part in parts):
        tag_parts = [part for part in parts if part.datafile.tag == tag]
        runs = schema_runs(tag_parts)
        columns = known.setdefault(tag, {})
        seen = dict(columns)  # the columns before each accepted file: what it adds is new
        columns.update(_majority_types(runs, columns))
        # The first run of files of a schema checks it and notes its new columns (a later one brings none).
        agreed: set[pa.Schema] = set()
        for run in runs:
            schema = run[0].schema
            if schema not in agreed:
                conflict = type_conflict(schema, columns)
                if conflict is not None:
                    stats[tag].rejected += [{"file": part.datafile.key,
                                             "reason": f"{url(part.datafile.key)}: {conflict}"} for part in run]
                    continue
                agreed.add(schema)
                stats[tag].note_new_columns(schema, seen)
                seen.update(file_columns(schema))
            accepted.setdefault(tag, []).extend(run)
    return accepted


def _majority_types(runs: list[list[PartFile]], columns: dict) -> dict:
    """For each column none of `columns` has, the hint of the type most files of `runs` give it."""
    schemas: dict[pa.Schema, list[int]] = {}  # schema -> [files, rows]
    for run in runs:
        counts = schemas.setdefault(run[0].schema, [0, 0])
        counts[0], counts[1] = counts[0] + len(run), counts[1] + sum(part.rows for part in run)
    votes: dict[str, dict[str, list]] = {}  # column -> data type -> [files, rows, hint]
    for schema, (files, rows) in schemas.items():
        for name, hint in file_columns(schema).items():
            if name not in columns:
                vote = votes.setdefault(name, {}).setdefault(hint["data_type"], [0, 0, hint])
                vote[0], vote[1] = vote[0] + files, vote[1] + rows
    return {name: max(by_type.items(), key=lambda item: (item[1][0], item[1][1], item[0]))[1][2]
            for name, by_type in votes.items()}


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


def check_types(schema: pa.Schema, columns: dict, url: str) -> None:
    """Reject a file whose column has another type than the raw table's column of that name."""
    conflict = type_conflict(schema, columns)
    if conflict is not None:
        raise DataError(f"{url}: {conflict}")


def type_conflict(schema: pa.Schema, columns: dict) -> str | None:
    """Why a file of `schema` is rejected (`check_types`), or None when its types agree with `columns`."""
    for name, hint in file_columns(schema).items():
        existing, found = columns.get(name, {}).get("data_type"), hint["data_type"]
        if existing is not None and found != existing:
            return (f"column `{name}` is {found} here but {existing} in the raw table; "
                    f"the file is rejected until it is rewritten with {existing} values")
    return None


def _with_landing_columns(table: pa.Table, datafile: DataFile, offset: int) -> pa.Table:
    n = table.num_rows
    for name, value in datafile.partition.items():
        if name not in table.column_names:  # the file's own column wins over the path
            table = table.append_column(name, pa.array([value] * n, pa.string()))
    return (table.append_column("_file", pa.array([datafile.key] * n, pa.string()))
                 .append_column("_file_date", pa.array([datafile.date] * n, pa.date32()))
                 .append_column("_file_row", pa.array(np.arange(offset, offset + n, dtype=np.int64))))
