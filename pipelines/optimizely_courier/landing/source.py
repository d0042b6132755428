"""The courier's dlt source: one resource per file tag, as an ordinary dlt pipeline runs it.

    pipeline = dlt.pipeline(pipeline_name="optimizely", destination="duckdb", dataset_name="raw_optimizely")
    pipeline.run(courier_source("optimizely", dates="2026-11-27"), loader_file_format="parquet")

`optimizely_courier` is the source; its arguments resolve from dlt's config like any source's
(`[sources.optimizely_courier]` in .dlt/config.toml, or `SOURCES__OPTIMIZELY_COURIER__COURIER=...`), and the
courier's credential secrets from dlt's secrets under `couriers.<courier>.credential`, where `courier run`
reads them (see `config/secrets.py`). Building the source reads only sources.yml; each resource lists its
tag's files when dlt extracts it and keeps those the record does not hold as landed (the record filter).
What a dead run left is taken back by the run, before the source is built (`ingest.recover_courier`).

Each landed row carries the file's own columns plus `_file` (object key), `_file_date` (the date
the pattern matched), `_file_row` (0-based row in the file) and the file's Hive partition values
(`experiment`, `event`; URL-decoded). dlt adds `_dlt_load_id`.

Two ways to land, one set of rules:
- a resource here yields Arrow batches of each file (this source; `courier run` into a lake or a
  cloud warehouse);
- `courier run` into DuckDB hands dlt one SQL model per tag that reads the part files in place
  (`optimizely_courier.landing.direct`); the files are fetched before the run (`ingest.land`).

The record entries of the files (`optimizely_courier.landing.record`) go into the same load package
(an Arrow resource yields them file by file; into DuckDB, a model reads them from the facts that
`direct.model_for` writes): a file counts as landed once dlt records the load as complete, never before.

Bad files, by policy:
- a file that is not readable Parquet (truncated, not Parquet at all) is rejected;
- a file whose column has another type than the raw table has (integer became string) is rejected;
- a file with a timestamp DuckDB cannot hold (year 300000: valid Parquet) is rejected (`parts.check_timestamps`);
- a file with a new column lands, and the raw table gains the column (schema evolution);
- an empty Parquet file lands no rows;
- a file whose footer reads but whose data is corrupt fails its load; `ingest.land` takes that
  load back and lands the other files without it.
A rejected file is named in the run result and history and gets no record entry, so the next run
retries it; the run's other files land as usual.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import dlt
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from optimizely_courier import compat
from optimizely_courier.config.sources import Courier, Project, load_project
from optimizely_courier.errors import DataError
from optimizely_courier.landing.discovery import DataFile, FileCallback, RunDates, TagStats, parse_date, plan_run
from optimizely_courier.landing.parts import check_timestamps, check_types, file_columns, open_part_file
from optimizely_courier.landing.record import RECORD_COLUMNS, RECORD_TABLE
from optimizely_courier.landing.storage import Downloads, ObjectStore, clear_dir, download_dir, open_store
from optimizely_courier.settings import BATCH_ROWS, PREFETCH_FILES

# What a resource lands, asked when dlt extracts it: where the files are read from, the files (of one
# tag, in load order) and the column types they must have (dlt hints of the raw table's columns).
Selection = Callable[[], tuple[ObjectStore, list[DataFile], dict]]


@compat.configspec
class CourierSourceConfiguration(compat.BaseConfiguration):
    """The arguments of `optimizely_courier`, as dlt's config resolves them."""

    courier: str = None  # a courier of the project's sources.yml (required)
    dates: str = "all"  # `all`, a day (2026-11-27), or days from..to (2026-11-01..2026-11-28, the end exclusive)
    project_dir: str = "."  # the courier project: the directory holding sources.yml


@dlt.source(section="optimizely_courier", max_table_nesting=0, spec=CourierSourceConfiguration)
def optimizely_courier(courier: str = dlt.config.value, dates: str = "all",
                       project_dir: str = ".") -> list[dlt.sources.DltResource]:
    """A courier's files of `dates` that are not landed yet, as Arrow batches with the landing columns,
    and their record rows, under the same type policy as `courier run`.

    Loaded into the project's warehouse, they count as landed for the courier and for `dbt build`.
    Name the source after the courier (`courier_source` does), so its schema is the one `courier run`
    keeps in the courier's pipeline.

    Args:
        courier: the courier to land, as sources.yml names it.
        dates: `all` (every date present), a day (`2026-11-27`), or days `2026-11-01..2026-11-28` (the end
            exclusive, as `courier run --to`).
        project_dir: the courier project (holding sources.yml).

    Raises:
        CourierError: a config error, when the source is built; a readiness, storage or data error when
            dlt extracts it (dlt's `PipelineStepFailed` carries it).
    """
    project = load_project(Path(project_dir).resolve())
    config = project.courier(courier)
    run_dates = parse_dates(dates)

    @functools.cache
    def listing() -> tuple[ObjectStore, dict[str, list[DataFile]]]:
        directory = download_dir(project, config)
        clear_dir(directory)  # a dead run's downloads
        store = open_store(config, directory)
        return store, plan_run(config, store, run_dates).files

    return [files_resource(entity.tag, functools.partial(_not_landed, project, config, listing, entity.tag),
                           TagStats()) for entity in config.entities]


def courier_source(courier: str, dates: str = "all", project_dir: str | Path = ".") -> dlt.sources.DltSource:
    """`optimizely_courier` named after `courier`: its schema is the courier pipeline's own."""
    return optimizely_courier.clone(name=courier)(courier=courier, dates=dates, project_dir=str(project_dir))


def parse_dates(text: str) -> RunDates:
    """`all`, a day (`2026-11-27`), or days `2026-11-01..2026-11-28` (the end exclusive)."""
    if text == "all":
        return RunDates.everything()
    start, separator, end = text.partition("..")
    if not separator:
        return RunDates.one(parse_date(start, "dates"))
    return RunDates.between(parse_date(start, "dates"), parse_date(end, "dates"))


def _not_landed(project: Project, courier: Courier, listing: Callable, tag: str) -> tuple[ObjectStore, list, dict]:
    """The record filter of `tag`'s resource: the files of the run's days that are not landed in their
    version, and the column types the raw table (as the running pipeline knows it) expects of them."""
    from optimizely_courier.landing.landed import not_landed
    from optimizely_courier.landing.pipeline import expected_columns, raw_columns

    store, files = listing()
    pipeline = dlt.current.pipeline()
    new = not_landed(project, courier, {tag: files.get(tag, [])}, pipeline)[tag]
    return store, new, dict(expected_columns(courier, raw_columns(pipeline)).get(tag, {}))


@dlt.source(max_table_nesting=0)
def landing_package(resources: list[dlt.sources.DltResource]) -> list[dlt.sources.DltResource]:
    """One load package of `courier run`: the resources it made for the files it chose to land
    (cloned with the courier's name: `landing_package.clone(name=courier)`)."""
    return resources


def files_resource(tag: str, selection: Selection, stats: TagStats,
                   on_file: FileCallback | None = None) -> dlt.sources.DltResource:
    """The resource that lands the files `selection` gives (asked when dlt extracts it) as Arrow batches.

    Args:
        tag: the file tag: the resource and its raw table are named after it.
        selection: the store, the files and the column types they must have (see `Selection`).
        stats: filled in as files land or are rejected.
        on_file: called with each file and its row count once it is read (progress reporting).
    """
    @dlt.resource(name=tag, table_name=tag, write_disposition="append")
    def files_of_tag() -> Iterator[pa.Table]:
        store, files, known = selection()
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


RECORD_SCHEMA = pa.schema([("file", pa.string()), ("etag", pa.string()), ("size_bytes", pa.int64()),
                           ("tag", pa.string()), ("file_date", pa.date32()), ("row_count", pa.int64())])


def record_row(datafile: DataFile, rows: int) -> pa.Table:
    """The record entry of a landed file (`optimizely_courier.landing.record`), as a table of one row."""
    return pa.table([[datafile.key], [datafile.etag], [datafile.size], [datafile.tag], [datafile.date], [rows]],
                    schema=RECORD_SCHEMA)


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


def _with_landing_columns(table: pa.Table, datafile: DataFile, offset: int) -> pa.Table:
    n = table.num_rows
    for name, value in datafile.partition.items():
        if name not in table.column_names:  # the file's own column wins over the path
            table = table.append_column(name, pa.array([value] * n, pa.string()))
    return (table.append_column("_file", pa.array([datafile.key] * n, pa.string()))
                 .append_column("_file_date", pa.array([datafile.date] * n, pa.date32()))
                 .append_column("_file_row", pa.array(np.arange(offset, offset + n, dtype=np.int64))))
