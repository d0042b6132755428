"""`courier status`: where each courier stands, from the warehouse alone (no S3 request).

Per courier: its last run and last success, what is landed (files, rows, the newest partition and
how fresh it is), the files the last run rejected, each feed's domain table and how many landed
file versions it has not built yet, and the groups that run it (next scheduled time, last success).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from optimizely_courier.config.sources import Freshness, Project
from optimizely_courier.landing import record
from optimizely_courier.runs.history import last_success, list_runs


def courier_status(project: Project, name: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """Everything `courier status` shows for one courier, as JSON-ready values."""
    from optimizely_courier.feeds.compile import definition
    from optimizely_courier.feeds.feed import read_feeds

    now = now or dt.datetime.now(dt.UTC)
    courier = project.courier(name)
    runs = list_runs(project.warehouse, name, limit=50)
    succeeded = next((run for run in runs if run["status"] == "success"), None)
    landed = _landed(project, courier.dataset)
    feeds, _ = read_feeds(project.root)
    return {
        "courier": name,
        # history is local on every engine; landed and built data are read only from DuckDB
        "engine": project.engine,
        "last_run": _run_summary(runs[0]) if runs else None,
        "last_success": _run_summary(succeeded) if succeeded else None,
        "landed": landed,
        "freshness": _freshness(landed["newest_partition"], now, project.freshness(name)),
        "rejected_last_run": runs[0]["rejected"] if runs else [],
        "domain_tables": [_feed_status(project, feed, definition(feed)) for feed in feeds if feed.courier == name],
        "groups": [_group_status(project, group, now) for group in project.groups.values()
                   if any(member.name == name for member in group.couriers)],
    }


def _run_summary(run: dict) -> dict:
    return {key: run[key] for key in ("run_id", "status", "dates", "started_at", "duration_seconds", "error")}


def _landed(project: Project, dataset: str) -> dict:
    empty = {"files": 0, "rows": 0, "newest_partition": None}
    if project.engine != "duckdb" or not project.warehouse.exists():
        return empty
    with duckdb.connect(str(project.warehouse), read_only=True) as db:
        if not record.has_table(db, dataset, record.RECORD_TABLE):
            return empty
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


def _feed_status(project: Project, feed, fingerprint: str) -> dict:  # noqa: ANN001 - a feeds.Feed
    status = {"feed_id": feed.id, "domain_table": feed.domain_table, "rows": None, "files_to_build": None}
    if project.engine != "duckdb" or not project.warehouse.exists():
        return status
    with duckdb.connect(str(project.warehouse), read_only=True) as db:
        if record.has_table(db, "domain", feed.domain_table):
            status["rows"] = db.execute(f'select count(*) from domain."{feed.domain_table}"').fetchall()[0][0]
            status["files_to_build"] = record.unbuilt_files(db, f"raw_{feed.courier}", feed.file, feed.id, fingerprint)
        else:
            status["files_to_build"] = record.unbuilt_files(db, f"raw_{feed.courier}", feed.file, feed.id, "")
    return status


def _group_status(project: Project, group, now: dt.datetime) -> dict:  # noqa: ANN001 - a config.CourierGroup
    from optimizely_courier.config.schedule import scheduled_times

    upcoming = next(scheduled_times(group.schedule, group.timezone, now), None) if group.schedule else None
    succeeded = last_success(project.warehouse, group.name)
    return {"group": group.name, "status": group.status,
            "next_run": upcoming.astimezone(group.timezone).isoformat() if upcoming and group.active else None,
            "last_scheduled_success": succeeded.isoformat() if succeeded else None}


def render(status: dict) -> str:
    """The status of one courier as text."""
    lines = [f"courier {status['courier']}"]
    for label, key in (("last run", "last_run"), ("last success", "last_success")):
        run = status[key]
        lines.append(f"  {label:<15} " + (f"{run['started_at'][:16]}  {run['status']:<8} {run['dates']}  "
                                          f"(run {run['run_id'][:8]})" if run else "none"))
    if status["engine"] != "duckdb":
        lines.append(f"  {'tables':<15} on {status['engine']}: landed and built data are not read here "
                     "(use the engine's own tools)")
        return "\n".join(lines + _group_lines(status))
    landed, fresh = status["landed"], status["freshness"]
    newest = landed["newest_partition"]
    lines.append(f"  {'landed':<15} {landed['files']:,} files, {landed['rows']:,} rows" +
                 (f"; newest partition {newest} ({fresh['age_hours']:.0f} h old: {fresh['status']})" if newest else ""))
    if status["rejected_last_run"]:
        lines.append(f"  {'rejected':<15} {len(status['rejected_last_run'])} file(s) in the last run "
                     "(see `courier history`; retried on the next run)")
    for table in status["domain_tables"]:
        rows = "not built yet" if table["rows"] is None else f"{table['rows']:,} rows"
        lines.append(f"  {'domain table':<15} {table['domain_table']}: {rows}, "
                     f"{table['files_to_build'] or 0:,} landed file(s) to build")
    return "\n".join(lines + _group_lines(status))


def _group_lines(status: dict) -> list[str]:
    return [f"  {'group':<15} {group['group']} ({group['status']}): next run {group['next_run'] or '-'}, "
            f"last scheduled success {group['last_scheduled_success'] or '-'}" for group in status["groups"]]
