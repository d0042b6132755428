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
from typing import TYPE_CHECKING

from optimizely_courier.config.sources import SOURCES_FILE, Project
from optimizely_courier.errors import CourierError, ThresholdExceeded
from optimizely_courier.landing.discovery import RunDates
from optimizely_courier.runs.build import DbtProcess
from optimizely_courier.runs.history import CourierRun, mark_interrupted, save
from optimizely_courier.runs.lock import wait_until_writable, warehouse_lock
from optimizely_courier.runs.progress import COMMITTING, FAILED, SENSOR_STARTED, WAITING, Reporter
from optimizely_courier.runs.tracker import RunTracker

if TYPE_CHECKING:  # imported by `_land` when the run gets there
    from optimizely_courier.landing.ingest import LandingResult


@dataclass
class FeedReport:
    """What a run did to one domain table."""

    domain_table: str
    truncated: bool
    files: int = 0  # landed file versions built into the table
    inserted: int = 0  # rows with a new key
    updated: int = 0  # rows that replaced an older version of their key
    upserted: int = 0  # inserted + updated
    rejected: int = 0
    already_built: int = 0  # files of the run's days the table already had


DEFAULT_LOCK_TIMEOUT_SECONDS = 300.0
# The status of a run that finished but rejected files (named in its `rejected`); `courier run` then
# exits with PARTIAL_EXIT_CODE. The next run retries the rejected files.
PARTIAL = "partial"
PARTIAL_EXIT_CODE = 3


@dataclass
class RunOptions:
    skip_missing: bool = False
    ingest_only: bool = False
    group: str | None = None
    run_id: str | None = None  # chosen by the caller (a group run lists its courier runs)
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS  # how long to wait for a run holding the warehouse


@dataclass
class RunReport:
    run: CourierRun
    feeds: dict[str, FeedReport] = field(default_factory=dict)
    landing: object = None

    def to_json(self) -> dict:
        return self.run.to_json()


def run_courier(project: Project, courier_name: str, dates: RunDates, options: RunOptions | None = None,
                reporter: Reporter | None = None) -> RunReport:
    """Run a courier once and record it in the run history (from its start: `status` shows it running).

    Raises:
        ConfigError: before anything is recorded, when no courier has that name.
        CourierError: after recording the failed run; the message is the run's error.
    """
    options = options or RunOptions()
    reporter = reporter or Reporter(enabled=False)
    project.courier(courier_name)  # an unknown courier is an error of the command, not a failed run to record
    run = CourierRun(run_id=options.run_id or str(uuid.uuid4()), courier=courier_name, dates=dates.describe(),
                     group_name=options.group)
    holder = {"run_id": run.run_id, "courier": courier_name, "started_at": run.started_at.isoformat()}
    tracker = RunTracker(project.warehouse, run, reporter)
    started = time.monotonic()
    mark_interrupted(project.warehouse)
    save(project.warehouse, run)
    # dbt imports and parses the project (seconds) while the run lists and lands its files: started
    # first, it is ready about when they have landed. Parsing touches no warehouse, so it needs no lock.
    dbt = DbtProcess(project) if _may_build(project, courier_name, options) else None
    failure: BaseException | None = None
    try:
        tracker.status(SENSOR_STARTED)
        with warehouse_lock(project.warehouse, holder, options.lock_timeout, on_wait=tracker.waiting):
            try:
                if project.engine == "duckdb":  # a process outside the courier may have the file itself
                    wait_until_writable(project.warehouse, options.lock_timeout, on_wait=tracker.waiting)
                return _locked_run(project, courier_name, dates, options, tracker, RunReport(run), dbt)
            finally:
                _keep_view(project, courier_name)
    except CourierError as exc:
        run.status, run.error, failure = "failed", str(exc), exc
        reporter.status(FAILED)
        raise
    except BaseException as exc:  # a bug or an interrupt: still record how the run ended
        run.status, run.error, failure = "failed", f"{type(exc).__name__}: {exc}", exc
        raise
    finally:
        run.ended_at = dt.datetime.now(dt.UTC)
        run.duration_seconds = round(time.monotonic() - started, 3)
        save(project.warehouse, run)
        _notify(project, run, reporter, failure)
        if dbt is not None:
            dbt.close()


def _may_build(project: Project, courier_name: str, options: RunOptions) -> bool:
    """Whether the run has load operations to apply (a config error is left for the run to report)."""
    try:
        return bool(project.courier(courier_name).load_operations) and not options.ingest_only
    except CourierError:
        return False


def _locked_run(project: Project, courier_name: str, dates: RunDates, options: RunOptions, tracker: RunTracker,
                report: RunReport, dbt: DbtProcess | None) -> RunReport:
    from optimizely_courier.feeds.loadops import parse_operations

    run = report.run
    courier = project.courier(courier_name)
    operations = parse_operations(courier, project.root / SOURCES_FILE)
    tracker.status(WAITING)
    builds = bool(operations) and not options.ingest_only
    landing = _land(project, courier_name, dates, options, tracker, sample=not courier.load_operations)
    report.landing = landing
    run.load_id = landing.load_ids[-1] if landing.load_ids else None
    run.files = {tag: landing.found(tag) for tag in landing.tags}
    run.landed = {tag: stats.files for tag, stats in landing.tags.items()}
    run.already_landed = {tag: stats.already_landed for tag, stats in landing.tags.items()}
    run.rows = {tag: stats.rows for tag, stats in landing.tags.items()}
    run.skipped = list(landing.skipped)
    run.rejected = [item for stats in landing.tags.values() for item in stats.rejected]
    run.new_columns = {tag: stats.new_columns for tag, stats in landing.tags.items() if stats.new_columns}
    if builds:
        tracker.status(COMMITTING)
        report.feeds = _apply_operations(project, operations, landing, dates, dbt, tracker, options.lock_timeout)
        run.feeds = {feed_id: vars(feed) for feed_id, feed in report.feeds.items()}
    # files rejected by the bad-file policy: the run landed the rest, and says so in its status
    run.status = PARTIAL if run.rejected else "success"
    return report


def _keep_view(project: Project, courier_name: str) -> None:
    """Keep what the warehouse now holds for the courier, for `status` while another process writes it
    (best effort: a run never fails for it)."""
    import duckdb

    from optimizely_courier.runs.status import keep_view

    try:
        keep_view(project, courier_name)
    except (CourierError, duckdb.Error):
        pass


def _notify(project: Project, run: CourierRun, reporter: Reporter, failure: BaseException | None) -> None:
    """Tell the courier's notification targets what the run did that someone should know (`failure`: what
    ended a failed run)."""
    from optimizely_courier.runs.notify import notify

    targets = project.couriers[run.courier].notify if run.courier in project.couriers else ()
    if not targets:
        return
    events = []
    if run.status == "failed":
        threshold = isinstance(failure, ThresholdExceeded)
        events.append(("rows_rejected" if threshold else "run_failed", f"run failed: {run.error}"))
    if run.rejected:
        events.append(("files_rejected", f"{len(run.rejected)} file(s) rejected: "
                                         + "; ".join(item["reason"] for item in run.rejected[:3])))
    for tag, columns in run.new_columns.items():
        events.append(("new_columns", f"raw table {tag} gained column(s): {', '.join(columns)}"))
    if run.status != "failed":
        events += _freshness_events(project, run.courier)
    details = {"courier": run.courier, "run_id": run.run_id, "dates": run.dates, "status": run.status}
    for event, message in events:
        notify(targets, event, f"courier {run.courier}", message, project, details, reporter.warn)


def _freshness_events(project: Project, courier: str) -> list[tuple[str, str]]:
    """A `freshness` event when the newest landed partition is older than dbt source freshness allows."""
    from optimizely_courier.runs.status import courier_status

    status = courier_status(project, courier)
    fresh = status["freshness"]
    if fresh["status"] not in ("warn", "error"):
        return []
    return [("freshness", f"newest landed partition {status['landed']['newest_partition']} is "
                          f"{fresh['age_hours']:.0f} h old ({fresh['status']})")]


def _land(project: Project, courier_name: str, dates: RunDates, options: RunOptions, tracker: RunTracker,
          sample: bool) -> LandingResult:
    """Land the run's new files."""
    from optimizely_courier.landing.ingest import land_new, prepare

    with tracker.listing():
        landing = prepare(project, courier_name, dates, skip_missing=options.skip_missing, on_listed=tracker.listed)
    with tracker.landing(landing.plan, landing.new):
        return land_new(project, landing, on_file=tracker.file, sample=sample, on_commit=tracker.committing)


def _apply_operations(project: Project, operations: list, landing, dates: RunDates,  # noqa: ANN001
                      dbt: DbtProcess | None, tracker: RunTracker, lock_timeout: float) -> dict[str, FeedReport]:
    """Build the domain tables the operations name: every landed file version not yet in them.

    What is landed and what is built come from the record (`optimizely_courier.landing.record`); dbt reads the same
    record, so this decides only whether dbt has anything to do. A truncate rebuilds the table from
    the landed versions of this run's dates.
    """
    from optimizely_courier.feeds.compile import definition
    from optimizely_courier.feeds.feed import load_feeds
    from optimizely_courier.feeds.loadops import resolve
    from optimizely_courier.runs.build import feed_selector

    if project.engine == "duckdb":  # a `dbt build` started by hand may have begun since the run landed
        wait_until_writable(project.warehouse, lock_timeout, on_wait=tracker.waiting)
    feeds = load_feeds(project.root)
    for message in (message for feed in feeds for message in feed.deprecations):
        tracker.warn(message)
    _check_models_fresh(project, feeds)
    pairs = resolve(operations, feeds)
    reports = {feed.id: FeedReport(feed.domain_table, op.truncate) for feed, op in pairs}
    pending = {feed.id: _pending(project, feed, definition(feed), landing) for feed, op in pairs}
    to_build = [(feed, op) for feed, op in pairs if op.truncate or pending[feed.id] is None or pending[feed.id][0]]
    for feed, _ in pairs:
        if pending[feed.id] is not None:
            reports[feed.id].already_built = pending[feed.id][1]
    if not to_build:
        return reports
    if project.engine == "duckdb":
        _check_raw_columns(project, [feed for feed, _ in to_build])
    truncate = {feed.id: _truncate_scope(dates) for feed, op in to_build if op.truncate}
    # The feeds' models and error thresholds only: their key tests (unique, not_null) hold by
    # construction and scan whole tables; a plain `dbt build` runs them.
    with tracker.building():
        result = (dbt or DbtProcess(project)).run("build", select=feed_selector([feed.id for feed, _ in to_build]),
                                                 variables={"courier_truncate": truncate} if truncate else None,
                                                 extra=["--indirect-selection", "empty"], on_node=tracker.node,
                                                 lock_timeout=lock_timeout, on_wait=tracker.waiting)
    for feed_id, stats in _build_stats(project, result.invocation_id).items():
        report = reports.get(feed_id)
        if report is not None:
            report.files, report.inserted, report.updated, report.rejected = (stats.files, stats.inserted,
                                                                             stats.updated, stats.rejected)
            report.upserted = stats.inserted + stats.updated
    return reports


def _truncate_scope(dates: RunDates):  # noqa: ANN202 - "all" or {"from", "to"}
    """What a truncate keeps: the landed versions of the run's dates."""
    if dates.is_all:
        return "all"
    return {"from": dates.start.isoformat(), "to": dates.end.isoformat()}


def _check_models_fresh(project: Project, feeds: list) -> None:
    """The generated feed models must match the feeds: a build records which feed definition it used.
    (The raw sources' file and the experiments' models are left to `courier feeds compile --check`:
    a courier run builds neither, and the thresholds they carry change no table it makes.)"""
    from optimizely_courier.experiments.compile import EXPERIMENT_MODELS
    from optimizely_courier.feeds.compile import SOURCES_YAML, write_models

    stale = [path for path in write_models(project.root, feeds, check=True, project=project).stale
             if path != SOURCES_YAML and not path.startswith(EXPERIMENT_MODELS)]
    if stale:
        raise CourierError(f"the generated models do not match feeds/ ({', '.join(stale[:3])}"
                           f"{' ...' if len(stale) > 3 else ''}): run `courier feeds compile` and commit the result")


def _pending(project: Project, feed, fingerprint: str, landing) -> tuple[int, int] | None:  # noqa: ANN001
    """(file versions the feed has not built, files of this run's days it already has); None when
    it cannot be known here (not DuckDB, or no domain table yet): then dbt decides."""
    import duckdb

    from optimizely_courier.landing import record

    if project.engine != "duckdb" or not _domain_table_exists(project, feed.domain_table):
        return None
    days = {datafile.date for datafile in landing.plan.files.get(feed.tag, [])}
    with duckdb.connect(str(project.warehouse), read_only=True) as db:
        dataset = f"raw_{feed.courier}"
        return (record.unbuilt_files(db, project.root, dataset, feed.tag, feed.id, fingerprint),
                record.already_built(db, project.root, dataset, feed.tag, feed.id, fingerprint, days))


def _build_stats(project: Project, invocation_id: str | None) -> dict:
    """Per feed id, what the dbt invocation built (DuckDB keeps the numbers; elsewhere nothing)."""
    import duckdb

    from optimizely_courier.landing import record

    if project.engine != "duckdb" or invocation_id is None:
        return {}
    with duckdb.connect(str(project.warehouse), read_only=True) as db:
        return record.build_stats(db, invocation_id)


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
                                                  [dataset, feed.tag]).fetchall()}
            if not found:
                raise CourierError(f"{feed.path}: nothing has been landed into {dataset}.{feed.tag} yet, so "
                                   f"{feed.domain_table} cannot be built")
            needed = {column.source.column for column in feed.columns} | ({feed.unnest} if feed.unnest else set())
            missing = sorted(needed - found)
            if missing:
                raise CourierError(f"{feed.path}: {dataset}.{feed.tag} has no column "
                                   f"{', '.join(f'`{m}`' for m in missing)}; fix the feed's `name`/`from`")
