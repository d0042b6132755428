"""A courier run: land the files, apply the load operations, record the run.

    sensor started -> waiting for source data -> loading data -> committing domain transactions
    -> completed

Load operations are validated before anything is pulled; a load operation naming a feed id that no
feed has still lets the files land, then fails the run (as the workflow this replaces does).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass, field
from typing import Optional

from pipelines.config import SOURCES_FILE, Project
from pipelines.discovery import RunDates
from pipelines.errors import CourierError
from pipelines.history import RunRecord, mark_interrupted, save
from pipelines.lock import warehouse_lock
from pipelines.progress import COMMITTING, FAILED, SENSOR_STARTED, WAITING, Reporter


@dataclass
class FeedReport:
    """What a run did to one domain table."""

    domain_table: str
    truncated: bool
    upserted: int = 0
    rejected: int = 0


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
    """Build the domain tables the operations name, reading exactly this run's files."""
    from pipelines.build import feed_selector, run_dbt
    from pipelines.feeds import load_feeds
    from pipelines.loadops import resolve

    pairs = resolve(operations, load_feeds(project.root))
    _check_raw_columns(project, [feed for feed, _ in pairs])
    files = {op.feed_id: [key for tag in op.files for key in landing.files_of(tag)] for _, op in pairs}
    truncate = [op.feed_id for _, op in pairs if op.truncate]
    run_dbt(project, "build", select=feed_selector([op.feed_id for _, op in pairs]),
            variables={"courier_files": files, "courier_truncate": truncate})
    return {feed.id: _feed_report(project, feed, op, files[feed.id]) for feed, op in pairs}


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


def _feed_report(project: Project, feed, op, files: list[str]) -> FeedReport:  # noqa: ANN001
    """Rows of this run's files now in the domain table, and rejected."""
    import duckdb

    report = FeedReport(feed.domain_table, op.truncate)
    if not files:
        return report
    marks = ", ".join("?" for _ in files)
    with duckdb.connect(str(project.warehouse), read_only=True) as db:
        for attribute, table in (("upserted", feed.domain_table), ("rejected", f"{feed.domain_table}__rejected")):
            count = db.execute(f'select count(*) from domain."{table}" where _file in ({marks})', files)
            setattr(report, attribute, count.fetchall()[0][0])
    return report
