"""Landing: run one courier's dlt pipeline for a set of dates into `raw_<courier>.<tag>`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from pipelines.settings import configure_runtime

configure_runtime()

import copy  # noqa: E402

import dlt  # noqa: E402 - telemetry must be off before dlt is imported
import pyarrow as pa  # noqa: E402
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials  # noqa: E402
from dlt.pipeline.exceptions import PipelineStepFailed  # noqa: E402

from pipelines.config import Courier, Project  # noqa: E402
from pipelines.discovery import DataFile, Plan, RunDates, plan_run  # noqa: E402
from pipelines.errors import DataError, find_courier_error, one_line  # noqa: E402
from pipelines.samples import keep_samples  # noqa: E402
from pipelines.settings import (DOWNLOAD_DIR, DUCKDB_LANDING_CONFIG, LANDING_CHUNK_BYTES,  # noqa: E402
                                PIPELINES_DIR)
from pipelines.source import FileCallback, TagStats, courier_source, direct_source  # noqa: E402
from pipelines.storage import Downloads, ObjectStore, open_store  # noqa: E402

# The system allocator gives memory back between batches; Arrow's default (mimalloc) keeps it, and the
# peak RSS of a large landing grows with it.
pa.set_memory_pool(pa.system_memory_pool())
# Arrow tables get the load id at extract time, without rewriting any file.
dlt.config["normalize.parquet_normalizer.add_dlt_load_id"] = True


@dataclass
class LandingResult:
    """What a landing run did."""

    courier: str
    location: str
    dates: RunDates
    plan: Plan
    tags: dict[str, TagStats]
    load_id: Optional[str] = None
    samples: list[Path] = field(default_factory=list)
    load_ids: dict[str, str] = field(default_factory=dict)  # key -> the load holding its current version

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tags.values())

    @property
    def skipped(self) -> list[str]:
        return self.plan.skipped

    def files_of(self, tag: str) -> list[str]:
        """Keys of every file of `tag` this run covers (landed now or by an earlier run)."""
        return [f.key for f in self.plan.files.get(tag, [])]


def destination(project: Project):  # noqa: ANN201 - a dlt destination
    """Where raw tables land: the DuckDB warehouse, Parquet in the lake (Spark), or a cloud warehouse
    (configured the dlt way, credentials in .dlt/secrets.toml)."""
    if project.engine == "duckdb":
        credentials = DuckDbCredentials(str(project.warehouse), global_config=dict(DUCKDB_LANDING_CONFIG))
        return dlt.destinations.duckdb(credentials)
    if project.engine == "spark":
        return dlt.destinations.filesystem(bucket_url=project.lake)
    return getattr(dlt.destinations, project.engine)()


def make_pipeline(project: Project, courier: Courier) -> dlt.Pipeline:
    """The courier's dlt pipeline: named after it, landing into the project's warehouse or lake."""
    return dlt.pipeline(
        pipeline_name=courier.name,
        destination=destination(project),
        dataset_name=courier.dataset,
        pipelines_dir=str(project.root / PIPELINES_DIR),
    )


def land(project: Project, courier_name: str, dates: RunDates, skip_missing: bool = False,
         on_plan: Optional[Callable[[Plan], None]] = None, on_file: Optional[FileCallback] = None,
         sample: bool = False) -> LandingResult:
    """Pull a courier's files for `dates` into its raw tables.

    Args:
        project: the loaded project.
        courier_name: which courier to run.
        dates: one day, a range, or every date present.
        skip_missing: skip days that are missing or not ready instead of failing.
        on_plan: called with the Plan once listing is done (progress reporting).
        on_file: called after each landed file with its row count.
        sample: keep a local copy of the newest file of each tag (sample mode).

    Raises:
        CourierError: config, credential, readiness, storage or data problems, with one clear message.
    """
    courier = project.courier(courier_name)
    download_dir = project.root / DOWNLOAD_DIR / courier.name
    download_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(courier, download_dir)
    plan: Plan = plan_run(courier, store, dates, skip_missing)
    if on_plan is not None:
        on_plan(plan)
    stats = {tag: TagStats() for tag in plan.files}
    pipeline = make_pipeline(project, courier)
    if project.engine == "duckdb":
        undo_interrupted_jobs(pipeline, project.warehouse, courier.dataset)
        pipeline, load_id = _land_direct(pipeline, project, courier, store, plan, stats, on_file, download_dir)
    else:
        load_id = _run(pipeline, courier_source(courier, store, plan, stats, on_file), loader_file_format="parquet")
    kept = keep_samples(project.root, courier.name, store, plan) if sample else []
    return LandingResult(courier.name, store.location, dates, plan, stats, load_id, kept,
                         _landed_load_ids(pipeline, courier.name))


def _run(pipeline: dlt.Pipeline, source: dlt.sources.DltSource, **options: str) -> Optional[str]:
    """Run the pipeline; a courier error raised inside dlt comes out as itself. Returns the load id."""
    try:
        info = pipeline.run(source, **options)
    except PipelineStepFailed as exc:
        error = find_courier_error(exc)
        if error is None:
            raise
        raise error from None
    return info.loads_ids[-1] if info.loads_ids else None


def _land_direct(pipeline: dlt.Pipeline, project: Project, courier: Courier, store: ObjectStore, plan: Plan,
                 stats: dict[str, TagStats], on_file: Optional[FileCallback],
                 download_dir: Path) -> tuple[dlt.Pipeline, Optional[str]]:
    """Land `plan` into DuckDB in loads of about LANDING_CHUNK_BYTES, fetching the next while one loads.

    Returns the pipeline (a new one if a load was taken back) and the last load id.
    """
    # A failed DuckDB load is a bad file or a bad disk: retrying it five times only reads the data again.
    # (Lake and cloud loads keep dlt's retries, which ride out network errors.)
    dlt.config["load.raise_on_max_retries"] = 1
    if not pipeline.has_pending_data:  # a killed run's downloads are needed by its pending load only
        _clear(download_dir)
    landed_etags = _landed_etags(pipeline, courier.name)
    new = {tag: [f for f in files if landed_etags.get(tag, {}).get(f.key) != f.etag]
           for tag, files in plan.files.items()}
    for tag, files in plan.files.items():
        stats[tag].already_loaded += len(files) - len(new[tag])
    chunks = _chunks(new, LANDING_CHUNK_BYTES)
    load_id = None
    with Downloads(store) as downloads:
        for index, chunk in enumerate(chunks):
            downloads.start(_files_of(chunk))
            if index + 1 < len(chunks):
                downloads.start(_files_of(chunks[index + 1]))
            pipeline, load_id, landed = _land_chunk(pipeline, project, courier, store, chunk, downloads, stats,
                                                    download_dir)
            downloads.release(_files_of(chunk))
            for datafile, rows in landed if on_file is not None else []:
                on_file(datafile, rows)
        if not chunks:  # still finish what a killed run left pending
            load_id = _run(pipeline, direct_source(courier, store, {}, downloads.path, stats, download_dir, []))
    _clear(download_dir)
    return pipeline, load_id


def _land_chunk(pipeline: dlt.Pipeline, project: Project, courier: Courier, store: ObjectStore,
                chunk: dict[str, list[DataFile]], downloads: "Downloads", stats: dict[str, TagStats],
                scratch: Path) -> tuple[dlt.Pipeline, Optional[str], list[tuple[DataFile, int]]]:
    """One load of `chunk`; returns the pipeline, the load id and the landed files with their rows.

    A file whose data DuckDB cannot read is rejected: the load is taken back and the other files
    land again without it.
    """
    while True:
        before = copy.deepcopy(stats)
        landed: list[tuple[DataFile, int]] = []
        try:
            load_id = _run(pipeline, direct_source(courier, store, chunk, downloads.path, stats, scratch, landed))
        except PipelineStepFailed as exc:
            if exc.step != "load" or exc.load_id is None:
                raise
            pipeline = take_back(pipeline, project.warehouse, courier.dataset, exc.load_id)
            stats.clear()
            stats.update(before)
            reason = _load_error(exc)
            bad = downloads.named_in(reason, _files_of(chunk))
            if bad is None:
                raise DataError(f"loading into {courier.dataset} failed and was taken back, so none of its files "
                                f"landed; the next run tries them again: {reason}") from None
            reason = reason.replace(str(downloads.path(bad)), store.url(bad.key))
            stats[bad.tag].rejected.append({"file": bad.key, "reason": f"{store.url(bad.key)} is corrupt: {reason}"})
            chunk = {tag: [f for f in files if f.key != bad.key] for tag, files in chunk.items()}
            continue
        short = _short_tags(pipeline, project.warehouse, courier.dataset, load_id, landed)
        if short:
            take_back(pipeline, project.warehouse, courier.dataset, load_id)
            raise DataError(f"load {load_id} into {courier.dataset} has fewer rows than its files' footers "
                            f"({'; '.join(short)}), so it was taken back; run again with --debug and report it")
        return pipeline, load_id, landed


def _short_tags(pipeline: dlt.Pipeline, warehouse: Path, dataset: str, load_id: Optional[str],
                landed: list[tuple[DataFile, int]]) -> list[str]:
    """Tags whose rows in the load differ from what the footers promised (a guard: DuckDB names each
    row's file, and a row whose file name did not match would be dropped without a word)."""
    import duckdb

    expected: dict[str, int] = {}
    for datafile, rows in landed:
        expected[datafile.tag] = expected.get(datafile.tag, 0) + rows
    if load_id is None or not expected:
        return []
    with duckdb.connect(str(warehouse), read_only=True) as db:
        table = pipeline.default_schema.naming.normalize_table_identifier
        found = {tag: db.execute(f'select count(*) from "{dataset}"."{table(tag)}" where _dlt_load_id = ?',
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


def _resource_states(pipeline: dlt.Pipeline, source: str) -> dict[str, dict]:
    """Each tag's resource state (`source.py`), as the pipeline's state holds it."""
    return pipeline.state.get("sources", {}).get(source, {}).get("resources", {})


def _landed_etags(pipeline: dlt.Pipeline, source: str) -> dict[str, dict[str, str]]:
    """Per tag, the ETag each key was landed with."""
    return {tag: dict(state.get("loaded", {})) for tag, state in _resource_states(pipeline, source).items()}


def _load_error(exc: PipelineStepFailed) -> str:
    """The database's own words from a failed load (dlt quotes them in its retry message)."""
    lines = [line for line in str(exc).splitlines() if "Exception: " in line]
    return one_line(lines[-1].split("Exception: ", 1)[1] if lines else str(exc).strip().splitlines()[0])


def take_back(pipeline: dlt.Pipeline, warehouse: Path, dataset: str, load_id: str) -> dlt.Pipeline:
    """Undo a failed load: delete the rows its finished jobs committed, drop its package, and forget
    the local state it advanced (the next run restores the state committed in the warehouse)."""
    import duckdb

    with duckdb.connect(str(warehouse)) as db:
        tables = db.execute("select table_name from information_schema.columns where table_schema = ? and "
                            "column_name = '_dlt_load_id'", [dataset]).fetchall()
        for (table,) in tables:
            db.execute(f'delete from "{dataset}"."{table}" where _dlt_load_id = ?', [load_id])
    return pipeline.drop()


def _clear(directory: Path) -> None:
    for path in directory.iterdir():
        path.unlink(missing_ok=True)


def undo_interrupted_jobs(pipeline: dlt.Pipeline, warehouse: Path, dataset: str) -> list[str]:
    """Take back the rows of load jobs a killed run may have committed without dlt recording it.

    dlt finishes an interrupted load on the next run by running its unfinished jobs again; a job whose
    INSERT committed just before the process died would then land its rows twice. Each package has
    one job per raw table, so deleting that table's rows of that load id first makes the retry exact.
    Returns the tables cleaned.
    """
    import duckdb

    cleaned = []
    for load_id in pipeline.list_normalized_load_packages():
        jobs = pipeline.get_load_package_info(load_id).jobs
        started = {job.job_file_info.table_name for job in jobs.get("started_jobs", [])}
        done = {job.job_file_info.table_name for job in jobs.get("completed_jobs", [])}
        tables = sorted(t for t in started - done if not t.startswith("_dlt"))
        if not tables or not warehouse.exists():
            continue
        with duckdb.connect(str(warehouse)) as db:
            present = {row[0] for row in db.execute("select table_name from information_schema.tables where "
                                                    "table_schema = ?", [dataset]).fetchall()}
            for table in (t for t in tables if t in present):
                db.execute(f'delete from "{dataset}"."{table}" where _dlt_load_id = ?', [load_id])
                cleaned.append(table)
    return cleaned


def _landed_load_ids(pipeline: dlt.Pipeline, source: str) -> dict[str, str]:
    """Which load holds each landed key, from the state dlt committed with the rows."""
    return {key: load for state in _resource_states(pipeline, source).values()
            for key, load in state.get("load_ids", {}).items()}
