"""Landing: run one courier's dlt pipeline for a set of dates into `raw_<courier>.<tag>`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from pipelines.settings import configure_runtime

configure_runtime()

import dlt  # noqa: E402 - telemetry must be off before dlt is imported
import pyarrow as pa  # noqa: E402
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials  # noqa: E402
from dlt.pipeline.exceptions import PipelineStepFailed  # noqa: E402

from pipelines.config import Courier, Project  # noqa: E402
from pipelines.discovery import Plan, RunDates, plan_run  # noqa: E402
from pipelines.errors import find_courier_error  # noqa: E402
from pipelines.samples import keep_samples  # noqa: E402
from pipelines.settings import DOWNLOAD_DIR, DUCKDB_LANDING_CONFIG, PIPELINES_DIR  # noqa: E402
from pipelines.source import FileCallback, TagStats, courier_source  # noqa: E402
from pipelines.storage import open_store  # noqa: E402

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
    download_dir = project.root / DOWNLOAD_DIR
    download_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(courier, download_dir)
    plan: Plan = plan_run(courier, store, dates, skip_missing)
    if on_plan is not None:
        on_plan(plan)
    stats = {tag: TagStats() for tag in plan.files}
    pipeline = make_pipeline(project, courier)
    if project.engine == "duckdb":
        undo_interrupted_jobs(pipeline, project.warehouse, courier.dataset)
    try:
        info = pipeline.run(courier_source(courier, store, plan, stats, on_file), loader_file_format="parquet")
    except PipelineStepFailed as exc:
        error = find_courier_error(exc)
        if error is None:
            raise
        raise error from None
    load_id = info.loads_ids[-1] if info.loads_ids else None
    kept = keep_samples(project.root, courier.name, store, plan) if sample else []
    return LandingResult(courier.name, store.location, dates, plan, stats, load_id, kept,
                         _landed_load_ids(pipeline, courier.name))


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
    resources = pipeline.state.get("sources", {}).get(source, {}).get("resources", {})
    return {key: load for state in resources.values() for key, load in state.get("load_ids", {}).items()}
