"""A courier run: land the files, apply the load operations, record the run.

    sensor started -> waiting for source data -> loading data -> committing domain transactions
    -> completed

Load operations are validated before anything is pulled; a load operation naming a feed id that no
feed has still lets the files land, then fails the run (as the workflow this replaces does).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Optional

from pipelines.config import SOURCES_FILE, Project
from pipelines.discovery import RunDates
from pipelines.errors import CourierError
from pipelines.history import RunRecord, built_files, mark_interrupted, record_built, save
from pipelines.lock import warehouse_lock
from pipelines.progress import COMMITTING, FAILED, SENSOR_STARTED, WAITING, Reporter


@dataclass
class FeedReport:
    """What a run did to one domain table."""

    domain_table: str
    truncated: bool
    upserted: int = 0
    rejected: int = 0
    up_to_date: bool = False  # every file of the run was already in the table: nothing was built


DEFAULT_LOCK_TIMEOUT_SECONDS = 300.0


@dataclass
class RunOptions:
    skip_missing: bool = False
    ingest_only: bool = False
    group: Optional[str] = None
    run_id: Optional[str] = None  # chosen by the caller (a group run lists its courier runs)
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS  # how long to wait for a run holding the warehouse


@dataclass
class RunReport:
    record: RunRecord
    feeds: dict[str, FeedReport] = field(default_factory=dict)
    landing: object = None

    def to_json(self) -> dict:
        return self.record.to_json()


def run_courier(project: Project, courier_name: str, dates: RunDates, options: Optional[RunOptions] = None,
                reporter: Optional[Reporter] = None) -> RunReport:
    """Run a courier once and record it in `courier.runs`.

    Raises:
        CourierError: after recording the failed run; the message is the run's error.
    """
    options = options or RunOptions()
    reporter = reporter or Reporter(enabled=False)
    record = RunRecord(run_id=options.run_id or str(uuid.uuid4()), courier=courier_name, dates=dates.describe(),
                       group_name=options.group)
    holder = {"run_id": record.run_id, "courier": courier_name, "started_at": record.started_at.isoformat()}
    with warehouse_lock(project.warehouse, holder, options.lock_timeout):
        return _locked_run(project, courier_name, dates, options, reporter, record)


def _locked_run(project: Project, courier_name: str, dates: RunDates, options: RunOptions, reporter: Reporter,
                record: RunRecord) -> RunReport:
    from pipelines.loadops import parse_operations

    started = time.monotonic()
    report = RunReport(record)
    mark_interrupted(project.warehouse)
    save(project.warehouse, record)
    reporter.status(SENSOR_STARTED)
    try:
        courier = project.courier(courier_name)
        operations = parse_operations(courier, project.root / SOURCES_FILE)
        reporter.status(WAITING)
        landing = _land(project, courier_name, dates, options, reporter, sample_mode=not courier.load_operations)
        report.landing = landing
        record.load_id = landing.load_id
        record.files = {tag: len(landing.files_of(tag)) for tag in landing.tags}
        record.rows = {tag: stats.rows for tag, stats in landing.tags.items()}
        record.skipped = list(landing.skipped)
        record.rejected = [item for stats in landing.tags.values() for item in stats.rejected]
        record.new_columns = {tag: stats.new_columns for tag, stats in landing.tags.items() if stats.new_columns}
        if operations and not options.ingest_only:
            reporter.status(COMMITTING)
            report.feeds = _apply_operations(project, operations, landing)
            record.feeds = {feed_id: vars(feed) for feed_id, feed in report.feeds.items()}
        record.status = "success"
    except CourierError as exc:
        record.status, record.error = "failed", str(exc)
        reporter.status(FAILED)
        raise
    except BaseException as exc:  # a bug or an interrupt: still record how the run ended
        record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        record.ended_at = dt.datetime.now(dt.timezone.utc)
        record.duration_seconds = round(time.monotonic() - started, 3)
        save(project.warehouse, record)
    return report


def _land(project: Project, courier_name: str, dates: RunDates, options: RunOptions, reporter: Reporter,
          sample_mode: bool):  # noqa: ANN202
    from pipelines.ingest import land

    return land(project, courier_name, dates, skip_missing=options.skip_missing, on_plan=reporter.plan,
                on_file=reporter.file, sample=sample_mode)


def _apply_operations(project: Project, operations: list, landing) -> dict[str, FeedReport]:  # noqa: ANN001
    """Build the domain tables the operations name, from this run's files that are not in them yet."""
    from pipelines.build import feed_selector, run_dbt
    from pipelines.feeds import load_feeds
    from pipelines.loadops import resolve

    pairs = resolve(operations, load_feeds(project.root))
    window = {feed.id: {key: landing.load_ids[key] for tag in op.files for key in landing.files_of(tag)
                        if key in landing.load_ids} for feed, op in pairs}
    pending = {feed.id: _pending_files(project, feed, op, window[feed.id]) for feed, op in pairs}
    to_build = [(feed, op) for feed, op in pairs if pending[feed.id] or op.truncate]
    if to_build:
        if project.engine == "duckdb":
            _check_raw_columns(project, [feed for feed, _ in to_build])
        run_dbt(project, "build", select=feed_selector([feed.id for feed, _ in to_build]),
                variables={"courier_files": {feed.id: sorted(pending[feed.id]) for feed, _ in to_build},
                           "courier_truncate": [feed.id for feed, op in to_build if op.truncate]})
        for feed, op in to_build:
            record_built(project.warehouse, feed.id, pending[feed.id], _definition(feed), replace_all=op.truncate)
    built = {feed.id for feed, _ in to_build}
    return {feed.id: _feed_report(project, feed, op, list(window[feed.id]), up_to_date=feed.id not in built)
            for feed, op in pairs}


def _definition(feed) -> str:  # noqa: ANN001
    """A fingerprint of the SQL a feed compiles to: a changed feed rebuilds files it already has."""
    from pipelines.compile import compile_feeds

    text = "".join(output.text for output in compile_feeds([feed]))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _pending_files(project: Project, feed, op, window: dict[str, str]) -> dict[str, str]:  # noqa: ANN001
    """The window's files (file -> load) the feed's table does not have yet, in their current version.

    After a truncate, or when the table is missing, that is every file; a no-op run builds nothing.
    """
    if op.truncate or project.engine != "duckdb" or not _domain_table_exists(project, feed.domain_table):
        return dict(window)
    built, definition = built_files(project.warehouse, feed.id), _definition(feed)
    return {key: load for key, load in window.items() if built.get(key) != (load, definition)}


def _domain_table_exists(project: Project, table: str) -> bool:
    import duckdb

    with duckdb.connect(str(project.warehouse), read_only=True) as db:
        return bool(db.execute("select count(*) from information_schema.tables where table_schema = 'domain' "
                               "and table_name = ?", [table]).fetchall()[0][0])


def _check_raw_columns(project: Project, feeds: list) -> None:
    """A clear error, before dbt runs, for a feed reading a raw table or column that is not there."""
    import duckdb

    with duckdb.connect(str(project.warehouse), read_only=True) as db:
        for feed in feeds:
            dataset = f"raw_{feed.courier}"
            found = {row[0] for row in db.execute("select column_name from information_schema.columns "
                                                  "where table_schema = ? and table_name = ?",
                                                  [dataset, feed.file]).fetchall()}
            if not found:
                raise CourierError(f"{feed.path}: nothing has been landed into {dataset}.{feed.file} yet, so "
                                   f"{feed.domain_table} cannot be built")
            needed = {column.source.column for column in feed.columns} | ({feed.unnest} if feed.unnest else set())
            missing = sorted(needed - found)
            if missing:
                raise CourierError(f"{feed.path}: {dataset}.{feed.file} has no column "
                                   f"{', '.join(f'`{m}`' for m in missing)}; fix the feed's `name`/`from`")


def _feed_report(project: Project, feed, op, files: list[str], up_to_date: bool) -> FeedReport:  # noqa: ANN001
    """Rows of this run's files now in the domain table, and rejected."""
    import duckdb

    report = FeedReport(feed.domain_table, op.truncate, up_to_date=up_to_date)
    if not files or project.engine != "duckdb":
        return report
    marks = ", ".join("?" for _ in files)
    with duckdb.connect(str(project.warehouse), read_only=True) as db:
        for attribute, table in (("upserted", feed.domain_table), ("rejected", f"{feed.domain_table}__rejected")):
            count = db.execute(f'select count(*) from domain."{table}" where _file in ({marks})', files)
            setattr(report, attribute, count.fetchall()[0][0])
    return report
