"""`courier status`: where each courier stands, from the run history and the warehouse (no S3 request).

Per courier: a run in progress (its phase, since when, files so far), its last run and last success,
what is landed (files, rows, the newest partition and how fresh it is), the files the last run rejected,
each feed's domain table and how many landed file versions it has not built yet, and the groups that
run it (a group run in progress, a failed last run, the next scheduled time, the last success).

The history is always readable. The warehouse is read only when no one writes it: while a run or another
process (a `dbt build` started by hand) has it, status shows what the last courier run saw there, says
as of when, and who holds the warehouse now.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from optimizely_courier.config.sources import Freshness, Project
from optimizely_courier.errors import WarehouseBusy
from optimizely_courier.landing import record
from optimizely_courier.runs.history import last_success, last_view, list_runs, save_view
from optimizely_courier.runs.lock import reading

RUNNING = "running"


def courier_status(project: Project, name: str, now: dt.datetime | None = None,
                   busy: str | None = None) -> dict[str, Any]:
    """Everything `courier status` shows for one courier, as JSON-ready values.

    Args:
        busy: who writes the warehouse, when the caller knows it is written (a run in progress): the
            warehouse is then not opened at all, and landed and built data are the last run's view.
    """
    from optimizely_courier.feeds.feed import read_feeds

    now = now or dt.datetime.now(dt.UTC)
    courier = project.courier(name)
    runs = list_runs(project.warehouse, name, limit=50)
    finished = [run for run in runs if run["status"] != RUNNING]
    running = next((run for run in runs if run["status"] == RUNNING), None)
    succeeded = next((run for run in finished if run["status"] == "success"), None)
    feeds = [feed for feed in read_feeds(project.root)[0] if feed.courier == name]
    warehouse, view = _warehouse_view(project, courier.dataset, name, feeds, busy)
    landed = view["landed"]
    return {
        "courier": name,
        # history is local on every engine; landed and built data are read only from DuckDB
        "engine": project.engine,
        "in_progress": _progress_summary(running) if running else None,
        "last_run": _run_summary(finished[0]) if finished else None,
        "last_success": _run_summary(succeeded) if succeeded else None,
        "warehouse": warehouse,
        "landed": landed,
        "freshness": _freshness(landed["newest_partition"] if landed else None, now, project.freshness(name)),
        "rejected_last_run": finished[0]["rejected"] if finished else [],
        "domain_tables": view["domain_tables"],
        "groups": [_group_status(project, group, now) for group in project.groups.values()
                   if any(member.name == name for member in group.couriers)],
    }


def keep_view(project: Project, name: str) -> None:
    """Read the courier's landed and built data now and keep them in the history, for `status` while the
    warehouse is busy. A run calls it at its end, still holding the warehouse.

    Raises:
        WarehouseBusy: another process has the warehouse open.
    """
    from optimizely_courier.feeds.feed import read_feeds

    if project.engine != "duckdb" or not project.warehouse.exists():
        return
    feeds = [feed for feed in read_feeds(project.root)[0] if feed.courier == name]
    with reading(project.warehouse) as db:
        view = _read_view(db, project.root, project.courier(name).dataset, feeds)
    save_view(project.warehouse, name, view)


def _warehouse_view(project: Project, dataset: str, name: str, feeds: list,
                    busy: str | None = None) -> tuple[dict, dict]:
    """({busy: who holds the warehouse or None, as_of: when the view was read or None}, the view)."""
    unread = {"landed": {"files": 0, "rows": 0, "newest_partition": None},
              "domain_tables": [_feed_entry(feed) for feed in feeds]}
    if project.engine != "duckdb" or not project.warehouse.exists():
        return {"busy": None, "as_of": None}, unread
    try:
        if busy is not None:
            raise WarehouseBusy(busy, holder=busy)
        with reading(project.warehouse) as db:
            return {"busy": None, "as_of": None}, _read_view(db, project.root, dataset, feeds)
    except WarehouseBusy as exc:
        kept = last_view(project.warehouse, name)
        if kept is None:
            return {"busy": exc.holder, "as_of": None}, {**unread, "landed": None}
        return {"busy": exc.holder, "as_of": kept.pop("taken_at")}, kept


def _read_view(db, root: Path, dataset: str, feeds: list) -> dict:  # noqa: ANN001 - a DuckDB connection
    from optimizely_courier.feeds.compile import definition

    return {"landed": _landed(db, dataset),
            "domain_tables": [_feed_status(db, root, feed, definition(feed)) for feed in feeds]}


def _run_summary(run: dict) -> dict:
    return {key: run[key] for key in ("run_id", "status", "dates", "started_at", "duration_seconds", "error")}


def _progress_summary(run: dict) -> dict:
    return {key: run.get(key) for key in ("run_id", "group_name", "dates", "started_at", "phase", "phase_since",
                                          "progress", "pid")}


def _landed(db, dataset: str) -> dict:  # noqa: ANN001 - a DuckDB connection
    if not record.has_table(db, dataset, record.RECORD_TABLE):
        return {"files": 0, "rows": 0, "newest_partition": None}
    files, rows, newest = db.execute(
        f'select count(distinct file), coalesce(sum(row_count), 0), max(file_date) from "{dataset}".'
        f'{record.RECORD_TABLE} where _dlt_load_id in (select load_id from "{dataset}".{record.LOADS_TABLE} '
        "where status = 0)").fetchall()[0]
    return {"files": files, "rows": int(rows), "newest_partition": newest.isoformat() if newest else None}


def _freshness(newest: str | None, now: dt.datetime, limits: Freshness) -> dict:
    """The newest landed partition's age against the courier's thresholds, as `dbt source freshness`
    judges it (from the partition date's midnight, UTC)."""
    hours = {"warn_after_hours": limits.warn_after / dt.timedelta(hours=1),
             "error_after_hours": limits.error_after / dt.timedelta(hours=1)}
    if newest is None:
        return {"status": "nothing landed", "age_hours": None, **hours}
    age = now - dt.datetime.fromisoformat(newest).replace(tzinfo=dt.UTC)
    status = "error" if age > limits.error_after else "warn" if age > limits.warn_after else "pass"
    return {"status": status, "age_hours": round(age.total_seconds() / 3600, 1), **hours}


def _feed_entry(feed) -> dict:  # noqa: ANN001 - a feeds.Feed
    return {"feed_id": feed.id, "domain_table": feed.domain_table, "rows": None, "files_to_build": None}


def _feed_status(db, root: Path, feed, fingerprint: str) -> dict:  # noqa: ANN001 - a DuckDB connection, a Feed
    status = _feed_entry(feed)
    if record.has_table(db, "domain", feed.domain_table):
        status["rows"] = db.execute(f'select count(*) from domain."{feed.domain_table}"').fetchall()[0][0]
        status["files_to_build"] = record.unbuilt_files(db, root, f"raw_{feed.courier}", feed.tag, feed.id,
                                                        fingerprint)
    else:
        status["files_to_build"] = record.unbuilt_files(db, root, f"raw_{feed.courier}", feed.tag, feed.id, "")
    return status


def _group_status(project: Project, group, now: dt.datetime) -> dict:  # noqa: ANN001 - a config.CourierGroup
    from optimizely_courier.config.schedule import scheduled_times

    upcoming = next(scheduled_times(group.schedule, group.timezone, now), None) if group.schedule else None
    succeeded = last_success(project.warehouse, group.name)
    runs = list_runs(project.warehouse, group=group.name, limit=20, table="group_runs")
    running = next((run for run in runs if run["status"] == RUNNING), None)
    finished = next((run for run in runs if run["status"] != RUNNING), None)
    return {"group": group.name, "status": group.status,
            "next_run": upcoming.astimezone(group.timezone).isoformat() if upcoming and group.active else None,
            "last_scheduled_success": succeeded.isoformat() if succeeded else None,
            "in_progress": {key: running[key] for key in ("run_id", "started_at", "scheduled_for", "phase",
                                                          "phase_since")} if running else None,
            "last_run": {key: finished[key] for key in ("run_id", "status", "started_at", "ended_at", "scheduled_for",
                                                        "error")} if finished else None}


def progress_text(run: dict) -> str:
    """What a run in progress is doing: `Loading data since 08:31:05, 12/24 files, 5,000 rows so far`."""
    since = (run.get("phase_since") or run["started_at"])[11:19]
    parts = [f"{run.get('phase') or 'starting'} since {since}"]
    progress = run.get("progress") or {}
    if "files_total" in progress:
        parts.append(f"{progress.get('files_done', 0):,}/{progress['files_total']:,} files")
        parts.append(f"{progress.get('rows', 0):,} rows so far")
    if progress.get("models_built"):
        parts.append(f"{progress['models_built']} model(s) built")
    return ", ".join(parts)


def render(status: dict) -> str:
    """The status of one courier as text."""
    lines = [f"courier {status['courier']}"]
    running = status["in_progress"]
    if running:
        group = f", group {running['group_name']}" if running["group_name"] else ""
        lines.append(f"  {'in progress':<15} run {running['run_id'][:8]} (started {running['started_at'][:19]}{group}"
                     f"): {progress_text(running)}")
    for label, key in (("last run", "last_run"), ("last success", "last_success")):
        run = status[key]
        lines.append(f"  {label:<15} " + (f"{run['started_at'][:16]}  {run['status']:<8} {run['dates']}  "
                                          f"(run {run['run_id'][:8]})" if run else "none"))
    if status["engine"] != "duckdb":
        lines.append(f"  {'tables':<15} on {status['engine']}: landed and built data are not read here "
                     "(use the engine's own tools)")
        return "\n".join(lines + _group_lines(status))
    lines += _warehouse_lines(status)
    if status["rejected_last_run"]:
        lines.append(f"  {'rejected':<15} {len(status['rejected_last_run'])} file(s) in the last run "
                     "(see `courier history`; retried on the next run)")
    return "\n".join(lines + _group_lines(status))


def _warehouse_lines(status: dict) -> list[str]:
    busy, as_of = status["warehouse"]["busy"], status["warehouse"]["as_of"]
    lines = []
    if busy:
        seen = f"as the last run saw it at {as_of[:19]}" if as_of else "not read (no run has kept a view of it yet)"
        lines.append(f"  {'warehouse':<15} busy: {busy} holds it; landed and built data {seen}")
    landed, fresh = status["landed"], status["freshness"]
    if landed is not None:
        newest = landed["newest_partition"]
        lines.append(f"  {'landed':<15} {landed['files']:,} files, {landed['rows']:,} rows" +
                     (f"; newest partition {newest} ({fresh['age_hours']:.0f} h old: {fresh['status']})"
                      if newest else ""))
    for table in status["domain_tables"]:
        if table["files_to_build"] is None and busy:
            continue
        rows = "not built yet" if table["rows"] is None else f"{table['rows']:,} rows"
        lines.append(f"  {'domain table':<15} {table['domain_table']}: {rows}, "
                     f"{table['files_to_build'] or 0:,} landed file(s) to build")
    return lines


def _group_lines(status: dict) -> list[str]:
    lines = []
    for group in status["groups"]:
        lines.append(f"  {'group':<15} {group['group']} ({group['status']}): next run {group['next_run'] or '-'}, "
                     f"last scheduled success {group['last_scheduled_success'] or '-'}")
        running, last = group["in_progress"], group["last_run"]
        if running:
            since = (running["phase_since"] or running["started_at"])[11:19]
            lines.append(f"  {'':<15}   running: run {running['run_id'][:8]} started {running['started_at'][:19]}, "
                         f"{running['phase'] or 'starting'} since {since}")
        if last and last["status"] == "failed":
            lines.append(f"  {'':<15}   last run failed: run {last['run_id'][:8]} started {last['started_at'][:19]}: "
                         f"{last['error']}")
    return lines
