"""Landing: run one courier's dlt pipeline for a set of dates into `raw_<courier>.<tag>`.

`prepare` lists the days' files, takes back the rows of loads a dead run did not complete, and
reads the record (`optimizely_courier.landing.record`): a file whose key and ETag are landed is not new. It needs
neither dlt nor a download, so a run with nothing new ends there. `land_new` aborts the dead
run's dlt packages, syncs the local state from the warehouse, and lands the new files in loads of
about LANDING_CHUNK_BYTES, each one dlt package holding the rows and their record entries.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from optimizely_courier import faults
from optimizely_courier.config.sources import Courier, Project
from optimizely_courier.errors import DataError, find_courier_error, one_line
from optimizely_courier.landing import record
from optimizely_courier.landing.discovery import (
    DataFile,
    FileCallback,
    ListCallback,
    Plan,
    RunDates,
    TagStats,
    plan_run,
)
from optimizely_courier.landing.samples import keep_samples
from optimizely_courier.landing.storage import Downloads, ObjectStore, open_store
from optimizely_courier.settings import DOWNLOAD_DIR, DUCKDB_LANDING_CONFIG, LANDING_CHUNK_BYTES, PIPELINES_DIR

# Entered while a load commits the files read since the last one (progress): dlt normalizes the
# package and the warehouse writes its rows.
CommitCallback = Callable[[], AbstractContextManager]

if TYPE_CHECKING:
    import dlt
    from dlt.pipeline.exceptions import PipelineStepFailed

    from optimizely_courier.landing.direct import PartFile


def _dlt():  # noqa: ANN202 - the dlt module
    """dlt, imported on first use (a run with nothing new never pays for it), configured for landing."""
    from optimizely_courier.settings import configure_runtime

    configure_runtime()  # telemetry off before dlt is imported
    import dlt
    import pyarrow as pa

    # The system allocator gives memory back between batches; Arrow's default (mimalloc) keeps it, and the
    # peak RSS of a large landing grows with it.
    pa.set_memory_pool(pa.system_memory_pool())
    # Arrow tables get the load id at extract time, without rewriting any file.
    dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True
    return dlt


@dataclass
class LandingResult:
    """A landing run: what its days hold, what was new, and what landed."""

    courier: str
    location: str
    dates: RunDates
    plan: Plan
    tags: dict[str, TagStats]
    new: dict[str, list[DataFile]] = field(default_factory=dict)  # per tag, files not landed before this run
    load_ids: list[str] = field(default_factory=list)
    samples: list[Path] = field(default_factory=list)
    taken_back: list[str] = field(default_factory=list)  # loads of a dead run whose rows recovery removed
    store: ObjectStore | None = field(default=None, repr=False)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tags.values())

    @property
    def skipped(self) -> list[str]:
        return self.plan.skipped

    @property
    def has_new_files(self) -> bool:
        return any(self.new.values())

    def found(self, tag: str) -> int:
        """Files of `tag` the run's days hold (landed now or by an earlier run)."""
        return len(self.plan.files.get(tag, []))


def destination(project: Project):  # noqa: ANN201 - a dlt destination
    """Where raw tables land: the DuckDB warehouse, Parquet in the lake (Spark), or a cloud warehouse
    (configured the dlt way, credentials in .dlt/secrets.toml)."""
    dlt = _dlt()
    if project.engine == "duckdb":
        from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

        credentials = DuckDbCredentials(str(project.warehouse), global_config=dict(DUCKDB_LANDING_CONFIG))
        return dlt.destinations.duckdb(credentials)
    if project.engine == "spark":
        return dlt.destinations.filesystem(bucket_url=project.lake)
    if project.engine == "snowflake":
        # Parquet for dlt's own tables too (typed; its default, JSON, is for rows of Python dicts), and one
        # statement per request (a few more round trips per schema change; Snowflake emulators take no more)
        return dlt.destinations.snowflake(preferred_loader_file_format="parquet", supports_multiple_statements=False)
    return getattr(dlt.destinations, project.engine)()


def make_pipeline(project: Project, courier: Courier) -> dlt.Pipeline:
    """The courier's dlt pipeline: named after it, landing into the project's warehouse or lake."""
    return _dlt().pipeline(
        pipeline_name=courier.name,
        destination=destination(project),
        dataset_name=courier.dataset,
        pipelines_dir=str(project.root / PIPELINES_DIR),
    )


def land(project: Project, courier_name: str, dates: RunDates, skip_missing: bool = False,
         on_plan: Callable[[Plan], None] | None = None, on_file: FileCallback | None = None,
         sample: bool = False) -> LandingResult:
    """Pull a courier's files for `dates` into its raw tables (`prepare`, then `land_new`).

    Args:
        project: the loaded project.
        courier_name: which courier to run.
        dates: one day, a range, or every date present.
        skip_missing: skip days that are missing or not ready instead of failing.
        on_plan: called with the Plan once listing is done (progress reporting).
        on_file: called with each new file and its row count once it is fetched and checked.
        sample: keep a local copy of the newest file of each tag (sample mode).

    Raises:
        CourierError: config, credential, readiness, storage or data problems, with one clear message.
    """
    landing = prepare(project, courier_name, dates, skip_missing)
    if on_plan is not None:
        on_plan(landing.plan)
    return land_new(project, landing, on_file, sample)


def prepare(project: Project, courier_name: str, dates: RunDates, skip_missing: bool = False,
            on_listed: ListCallback | None = None) -> LandingResult:
    """List the files of `dates`, take back what a dead run left, and find the files not landed yet.

    Needs neither dlt nor a download: a run with nothing new ends after this.
    """
    courier = project.courier(courier_name)
    download_dir = _download_dir(project, courier)
    _clear(download_dir)  # a dead run's downloads: its packages are aborted before anything lands
    store = open_store(courier, download_dir)
    plan: Plan = plan_run(courier, store, dates, skip_missing, on_listed)
    taken_back = take_back(project, courier)
    stats = {tag: TagStats() for tag in plan.files}
    new = _not_landed(project, courier, plan, stats)
    return LandingResult(courier.name, store.location, dates, plan, stats, new, taken_back=taken_back, store=store)


def courier_source(pipeline: dlt.Pipeline, courier_name: str, dates: RunDates,
                   project_dir: Path = Path(".")) -> dlt.sources.DltSource:
    """The courier's dlt source, for an ordinary dlt pipeline (`pipelines/optimizely_pipeline.py`).

    It yields the files of `dates` that the record says are not landed yet, as Arrow batches with
    the landing columns, and their record rows, under the same type policy as `courier run`. Loaded
    by `pipeline` into the project's warehouse, they count as landed for the courier and for
    `dbt build`. (`courier run` lands faster into DuckDB, and takes the warehouse lock.)
    """
    from optimizely_courier.config.sources import load_project
    from optimizely_courier.landing.source import arrow_source

    project = load_project(project_dir.resolve())
    courier = project.courier(courier_name)
    landing = prepare(project, courier_name, dates)
    recover(pipeline)
    known = _expected_columns(courier, _raw_columns(pipeline))
    return arrow_source(courier, landing.store, landing.new, landing.tags, known)


def land_new(project: Project, landing: LandingResult, on_file: FileCallback | None = None,
             sample: bool = False, on_commit: CommitCallback | None = None) -> LandingResult:
    """Land the files `prepare` found new; keep samples in sample mode. Returns `landing`, filled in.

    `on_file` is called as each file is read, `on_commit` entered while each load commits (progress).
    """
    courier, store = project.courier(landing.courier), landing.store
    download_dir = _download_dir(project, courier)
    if landing.has_new_files:
        faults.arm_load_faults()
        pipeline = make_pipeline(project, courier)
        recover(pipeline)
        known = _expected_columns(courier, _raw_columns(pipeline))
        if project.engine == "duckdb":
            landing.load_ids = _land_direct(pipeline, project, courier, store, landing.new, landing.tags, known,
                                            on_file, download_dir, on_commit)
        else:
            landing.load_ids = _land_arrow(pipeline, courier, store, landing.new, landing.tags, known, on_file,
                                           on_commit)
    if sample:
        landing.samples = keep_samples(project.root, courier.name, store, landing.plan)
    return landing


def _download_dir(project: Project, courier: Courier) -> Path:
    """Where a run's objects download to."""
    path = project.root / DOWNLOAD_DIR / courier.name
    path.mkdir(parents=True, exist_ok=True)
    return path


def take_back(project: Project, courier: Courier) -> list[str]:
    """Delete what loads that never completed left in the warehouse (or lake); return their load ids.

    Into DuckDB, the record rows of raw tables that are gone (`dlt pipeline <courier> drop <tag>`) go
    too, so their files land again (`record.forget_dropped_tables`).
    """
    if project.engine == "duckdb":
        if not project.warehouse.exists():
            return []
        with duckdb.connect(str(project.warehouse)) as db:
            taken_back = record.take_back_incomplete_loads(db, courier.dataset)
            record.forget_dropped_tables(db, courier.dataset)
            return taken_back
    if project.engine == "spark":
        from optimizely_courier.landing.lake import take_back_lake_loads

        return take_back_lake_loads(project.lake, courier.dataset)
    return []  # cloud warehouses: rows of incomplete loads are ignored (they are not in _dlt_loads)


def recover(pipeline: dlt.Pipeline) -> None:
    """Abort dlt's pending packages (a dead run's: the record decides again what to land) and sync
    the local state and schema from the warehouse."""
    from dlt.pipeline.exceptions import PipelineStepFailed

    try:
        pipeline.abort_packages()
    except PipelineStepFailed as exc:
        if exc.step != "load":
            raise
    pipeline.sync_destination()


@contextmanager
def record_reader(project: Project, courier: Courier) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """A DuckDB connection that sees `<dataset>._courier_files` and `<dataset>._dlt_loads` (None before
    anything was landed into the DuckDB warehouse)."""
    if project.engine == "duckdb":
        if not project.warehouse.exists():
            yield None
            return
        with duckdb.connect(str(project.warehouse), read_only=True) as db:
            yield db
    elif project.engine == "spark":
        from optimizely_courier.landing.lake import lake_record

        with lake_record(project.lake, courier.dataset) as db:
            yield db
    else:
        from optimizely_courier.landing.cloud import warehouse_record

        with warehouse_record(make_pipeline(project, courier), courier.dataset) as db:
            yield db


def _not_landed(project: Project, courier: Courier, plan: Plan,
                stats: dict[str, TagStats]) -> dict[str, list[DataFile]]:
    """Per tag, the plan's files whose key and ETag the record does not hold as landed (all of them when
    the raw table is gone, say dropped with `dlt pipeline <courier> drop <tag>`: they land again)."""
    new: dict[str, list[DataFile]] = {}
    with record_reader(project, courier) as db:
        for tag, files in plan.files.items():
            days = {f.date for f in files}
            present = db is not None and files and (project.engine != "duckdb"
                                                     or record.raw_table_exists(db, courier.dataset, tag))
            landed = record.landed_versions(db, courier.dataset, tag, days) if present else {}
            new[tag] = [f for f in files if landed.get(f.key, record.Landed("", "")).etag != f.etag]
            stats[tag].already_landed = len(files) - len(new[tag])
    return new


def _raw_columns(pipeline: dlt.Pipeline) -> dict[str, dict]:
    """Per tag, the raw table's columns as dlt's schema (synced from the warehouse) knows them."""
    if pipeline.default_schema_name is None:
        return {}
    return {name: dict(table.get("columns", {})) for name, table in pipeline.default_schema.tables.items()}


def _expected_columns(courier: Courier, raw: dict[str, dict]) -> dict[str, dict]:
    """Per tag, the column types files must have: the raw table's, and for an entity with a known
    schema (E3 decisions and events) that schema's, so no first file can decide them otherwise."""
    from optimizely_courier.landing.direct import file_columns
    from optimizely_courier.landing.e3 import KNOWN_SCHEMAS

    for entity in courier.entities:
        if entity.schema is not None:
            columns = raw.setdefault(entity.tag, {})
            columns.update({k: v for k, v in file_columns(KNOWN_SCHEMAS[entity.schema]).items() if k not in columns})
    return raw


def _run(pipeline: dlt.Pipeline, source: dlt.sources.DltSource, on_commit: CommitCallback | None = None,
         **options: str) -> str | None:
    """Extract, normalize and load one package; a courier error raised inside dlt comes out as itself.

    Returns the load id (None when the source yielded nothing).
    """
    from dlt.pipeline.exceptions import PipelineStepFailed

    from optimizely_courier.landing.direct import count_model_rows

    try:
        extracted = pipeline.extract(source, **options)
        faults.fault_point("after-extract")
        with (on_commit or nullcontext)():
            count_model_rows(extracted, pipeline.normalize())
            faults.fault_point("after-normalize")
            info = pipeline.load()
    except PipelineStepFailed as exc:
        error = find_courier_error(exc)
        if error is None:
            raise
        raise error from None
    return info.loads_ids[-1] if info.loads_ids else None


def _land_arrow(pipeline: dlt.Pipeline, courier: Courier, store: ObjectStore, files: dict[str, list[DataFile]],
                stats: dict[str, TagStats], known: dict[str, dict], on_file: FileCallback | None,
                on_commit: CommitCallback | None = None) -> list[str]:
    """Land `files` as Arrow batches, in one load (lake and cloud warehouses)."""
    from optimizely_courier.landing.source import arrow_source

    if not any(files.values()):
        return []
    load_id = _run(pipeline, arrow_source(courier, store, files, stats, known, on_file), on_commit,
                   loader_file_format="parquet")
    return [load_id] if load_id else []


def _land_direct(pipeline: dlt.Pipeline, project: Project, courier: Courier, store: ObjectStore,
                 files: dict[str, list[DataFile]], stats: dict[str, TagStats], known: dict[str, dict],
                 on_file: FileCallback | None, download_dir: Path,
                 on_commit: CommitCallback | None = None) -> list[str]:
    """Land `files` into DuckDB in loads of about LANDING_CHUNK_BYTES, fetching the next while one loads.

    Returns the load ids.
    """
    # A failed DuckDB load is a bad file or a bad disk: retrying it five times only reads the data again.
    # (Lake and cloud loads keep dlt's retries, which ride out network errors.)
    _dlt().config["load.raise_on_max_retries"] = 1
    chunks = _chunks(files, LANDING_CHUNK_BYTES)
    load_ids = []
    with Downloads(store) as downloads:
        for index, chunk in enumerate(chunks):
            downloads.start(_files_of(chunk))
            if index + 1 < len(chunks):
                downloads.start(_files_of(chunks[index + 1]))
            load_id, landed = _land_chunk(pipeline, project, courier, store, chunk, downloads, stats, known,
                                          download_dir, on_file, on_commit)
            downloads.release(_files_of(chunk))
            load_ids += [load_id] if load_id else []
            for part in landed:
                stats[part.datafile.tag].add(part.datafile, part.rows)
    _clear(download_dir)
    return load_ids


def _land_chunk(pipeline: dlt.Pipeline, project: Project, courier: Courier, store: ObjectStore,
                chunk: dict[str, list[DataFile]], downloads: Downloads, stats: dict[str, TagStats],
                known: dict[str, dict], scratch: Path, on_file: FileCallback | None,
                on_commit: CommitCallback | None = None) -> tuple[str | None, list[PartFile]]:
    """One load of `chunk`; returns its load id and the part files it landed.

    A file whose data DuckDB cannot read is rejected: the load is taken back and the other files
    land again without it.
    """
    from dlt.pipeline.exceptions import PipelineStepFailed

    from optimizely_courier.landing.direct import read_footer
    from optimizely_courier.landing.source import accept_parts, direct_source

    parts = []
    for datafile in _files_of(chunk):
        try:
            parts.append(read_footer(datafile, downloads.path(datafile), store.url(datafile.key)))
        except DataError as exc:
            stats[datafile.tag].rejected.append({"file": datafile.key, "reason": str(exc)})
            continue
        if on_file is not None:
            on_file(datafile, parts[-1].rows)
    while True:
        before = copy.deepcopy((stats, known))
        accepted = accept_parts(parts, known, stats, store.url)
        if not accepted:
            return None, []
        try:
            load_id = _run(pipeline, direct_source(courier, accepted, scratch), on_commit)
        except PipelineStepFailed as exc:
            if exc.step != "load" or exc.load_id is None:
                raise
            recover(pipeline)
            take_back(project, courier)
            _restore(stats, known, before)
            _clear(scratch, f"{exc.load_id}.")
            reason = _load_error(exc)
            named = _named_part(reason, accepted)
            if named is None:
                raise DataError(f"loading into {courier.dataset} failed and was taken back, so none of its files "
                                f"landed; the next run tries them again: {reason}") from None
            link, bad = named
            reason = reason.replace(link, store.url(bad.key))
            stats[bad.tag].rejected.append({"file": bad.key, "reason": f"{store.url(bad.key)} is corrupt: {reason}"})
            parts = [part for part in parts if part.datafile.key != bad.key]
            continue
        if load_id is not None:
            _clear(scratch, f"{load_id}.")  # the load's model, links and facts
        landed = [part for tag_parts in accepted.values() for part in tag_parts]
        short = _short_tags(project.warehouse, courier.dataset, load_id, landed)
        if short:
            with duckdb.connect(str(project.warehouse)) as db:
                record.take_back_load(db, courier.dataset, load_id)
            raise DataError(f"load {load_id} into {courier.dataset} has fewer rows than its files' footers "
                            f"({'; '.join(short)}), so it was taken back; run again with --debug and report it")
        return load_id, landed


def _named_part(message: str, accepted: dict[str, list[PartFile]]) -> tuple[str, DataFile] | None:
    """The part file a load error names (by its link `<scratch>/<load id>.<tag>/<n>.parquet`, see
    `direct.model_for`), and the path as the message writes it."""
    import re

    for match in re.finditer(r"[^\s\"']*\.(?P<tag>[^/\s\"']+)/(?P<index>\d+)\.parquet", message):
        parts = accepted.get(match["tag"], [])
        if int(match["index"]) < len(parts):
            return match.group(0), parts[int(match["index"])].datafile
    return None


def _restore(stats: dict[str, TagStats], known: dict[str, dict], before: tuple) -> None:
    """Put back the stats and known columns as they were before a load that was taken back."""
    saved_stats, saved_known = before
    stats.clear()
    stats.update(saved_stats)
    known.clear()
    known.update(saved_known)


def _short_tags(warehouse: Path, dataset: str, load_id: str | None, landed: list[PartFile]) -> list[str]:
    """Tags whose rows in the load differ from what the footers promised (a guard: DuckDB names each
    row's file, and a row whose file name did not match would be dropped without a word)."""
    expected: dict[str, int] = {}
    for part in landed:
        expected[part.datafile.tag] = expected.get(part.datafile.tag, 0) + part.rows
    if load_id is None or not expected:
        return []
    with duckdb.connect(str(warehouse), read_only=True) as db:
        found = {tag: db.execute(f'select count(*) from "{dataset}"."{tag}" where _dlt_load_id = ?',
                                 [load_id]).fetchall()[0][0] for tag in expected}
    return [f"{tag}: {found[tag]:,} of {rows:,}" for tag, rows in expected.items() if found[tag] != rows]


def _chunks(files: dict[str, list[DataFile]], limit: int) -> list[dict[str, list[DataFile]]]:
    """Split the files to land into loads of at most `limit` bytes (a larger file is a load of its own)."""
    chunks: list[dict[str, list[DataFile]]] = []
    size = limit
    for tag, tag_files in files.items():
        for datafile in tag_files:
            if size + datafile.size > limit:
                chunks.append({})
                size = 0
            chunks[-1].setdefault(tag, []).append(datafile)
            size += datafile.size
    return chunks


def _files_of(chunk: dict[str, list[DataFile]]) -> list[DataFile]:
    return [datafile for files in chunk.values() for datafile in files]


def _load_error(exc: PipelineStepFailed) -> str:
    """The database's own words from a failed load (dlt quotes them in its retry message)."""
    lines = [line for line in str(exc).splitlines() if "Exception: " in line]
    return one_line(lines[-1].split("Exception: ", 1)[1] if lines else str(exc).strip().splitlines()[0])


def _clear(directory: Path, prefix: str = "") -> None:
    """Delete what `directory` holds (only the entries whose names start with `prefix`)."""
    import shutil

    for path in directory.glob(f"{prefix}*"):
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
