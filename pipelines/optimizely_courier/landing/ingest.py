"""Landing, the run module: one courier's files for a set of dates into `raw_<courier>.<tag>`.

`prepare` lists the days' files, takes back the rows of loads a dead run did not complete, and
reads the record (`optimizely_courier.landing.landed`): a file whose key and ETag are landed is not new.
It needs neither dlt nor a download, so a run with nothing new ends there. `land_new` aborts the dead
run's dlt packages, syncs the local state from the warehouse, and lands the new files: into DuckDB in
chunks of about LANDING_CHUNK_BYTES, each one load through `landing.direct`; elsewhere in one load of
Arrow batches through `landing.source`. Each load is one dlt package holding the rows and their record
entries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from optimizely_courier import compat
from optimizely_courier.config.sources import Courier, Project
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
from optimizely_courier.landing.landed import not_landed
from optimizely_courier.landing.pipeline import (
    CommitCallback,
    expected_columns,
    import_dlt,
    make_pipeline,
    raw_columns,
    run_package,
)
from optimizely_courier.landing.samples import keep_samples
from optimizely_courier.landing.storage import Downloads, ObjectStore, clear_dir, download_dir, open_store
from optimizely_courier.settings import LANDING_CHUNK_BYTES

if TYPE_CHECKING:
    import dlt


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
    downloads = download_dir(project, courier)
    clear_dir(downloads)  # a dead run's downloads: its packages are aborted before anything lands
    store = open_store(courier, downloads)
    plan: Plan = plan_run(courier, store, dates, skip_missing, on_listed)
    taken_back = take_back(project, courier)
    stats = {tag: TagStats() for tag in plan.files}
    new = _not_landed(project, courier, plan, stats)
    return LandingResult(courier.name, store.location, dates, plan, stats, new, taken_back=taken_back, store=store)


def land_new(project: Project, landing: LandingResult, on_file: FileCallback | None = None,
             sample: bool = False, on_commit: CommitCallback | None = None) -> LandingResult:
    """Land the files `prepare` found new; keep samples in sample mode. Returns `landing`, filled in.

    `on_file` is called as each file is read, `on_commit` entered while each load commits (progress).
    """
    courier, store = project.courier(landing.courier), landing.store
    if landing.has_new_files:
        pipeline = make_pipeline(project, courier)
        recover(pipeline)
        known = expected_columns(courier, raw_columns(pipeline))
        if project.engine == "duckdb":
            landing.load_ids = _land_direct(pipeline, project, courier, store, landing.new, landing.tags, known,
                                            on_file, on_commit)
        else:
            landing.load_ids = _land_arrow(pipeline, courier, store, landing.new, landing.tags, known, on_file,
                                           on_commit)
    if sample:
        landing.samples = keep_samples(project.root, courier.name, store, landing.plan)
    return landing


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


def recover_courier(pipeline: dlt.Pipeline, courier_name: str, project_dir: Path = Path(".")) -> list[str]:
    """What `courier run` does before it decides what to land, for a dlt script that runs the courier's source
    (`pipelines/optimizely_pipeline.py`): take back what a dead run left, then `recover` the pipeline.
    Returns the load ids taken back."""
    from optimizely_courier.config.sources import load_project

    project = load_project(project_dir.resolve())
    taken_back = take_back(project, project.courier(courier_name))
    recover(pipeline)
    return taken_back


def _not_landed(project: Project, courier: Courier, plan: Plan,
                stats: dict[str, TagStats]) -> dict[str, list[DataFile]]:
    """Per tag, the plan's files not landed yet; the others are counted as already landed in `stats`."""
    new = not_landed(project, courier, plan.files)
    for tag, files in plan.files.items():
        stats[tag].already_landed = len(files) - len(new[tag])
    return new


def _land_arrow(pipeline: dlt.Pipeline, courier: Courier, store: ObjectStore, files: dict[str, list[DataFile]],
                stats: dict[str, TagStats], known: dict[str, dict], on_file: FileCallback | None,
                on_commit: CommitCallback | None = None) -> list[str]:
    """Land `files` as Arrow batches, in one load (lake and cloud warehouses)."""
    from optimizely_courier.landing.source import files_resource, landing_package

    if not any(files.values()):
        return []
    resources = [files_resource(tag, _selection(store, tag_files, known.get(tag, {})),
                                stats.setdefault(tag, TagStats()), on_file) for tag, tag_files in files.items()]
    load_id = run_package(pipeline, landing_package.clone(name=courier.name)(resources), on_commit,
                          loader_file_format="parquet")
    return [load_id] if load_id else []


def _selection(store: ObjectStore, files: list[DataFile], known: dict) -> Callable[[], tuple]:
    """A resource's selection (`source.Selection`) of files already chosen: `prepare` read the record."""
    return lambda: (store, files, dict(known))


def _land_direct(pipeline: dlt.Pipeline, project: Project, courier: Courier, store: ObjectStore,
                 files: dict[str, list[DataFile]], stats: dict[str, TagStats], known: dict[str, dict],
                 on_file: FileCallback | None, on_commit: CommitCallback | None = None) -> list[str]:
    """Land `files` into DuckDB in loads of about LANDING_CHUNK_BYTES, fetching the next while one loads.

    Returns the load ids.
    """
    from optimizely_courier.landing.direct import land_chunk

    # A failed DuckDB load is a bad file or a bad disk: retrying it five times only reads the data again.
    # (Lake and cloud loads keep dlt's retries, which ride out network errors.)
    import_dlt().config[compat.LOAD_RETRIES] = 1
    scratch = download_dir(project, courier)
    chunks = _chunks(files, LANDING_CHUNK_BYTES)
    load_ids = []

    def take_back_failed_load() -> None:
        recover(pipeline)
        take_back(project, courier)

    with Downloads(store) as downloads:
        for index, chunk in enumerate(chunks):
            downloads.start(chunk)
            if index + 1 < len(chunks):
                downloads.start(chunks[index + 1])
            load_id, landed = land_chunk(pipeline, project, courier, store, chunk, downloads, stats, known,
                                         scratch, take_back_failed_load, on_file, on_commit)
            downloads.release(chunk)
            load_ids += [load_id] if load_id else []
            for part in landed:
                stats[part.datafile.tag].add(part.datafile, part.rows)
    clear_dir(scratch)
    return load_ids


def _chunks(files: dict[str, list[DataFile]], limit: int) -> list[list[DataFile]]:
    """Split the files to land into loads of at most `limit` bytes (a larger file is a load of its own)."""
    chunks: list[list[DataFile]] = []
    size = limit
    for tag_files in files.values():
        for datafile in tag_files:
            if size + datafile.size > limit:
                chunks.append([])
                size = 0
            chunks[-1].append(datafile)
            size += datafile.size
    return chunks
