"""What the overview and a courier's page show: `courier status` per courier, the groups' next runs and
last results, recent alerts, a courier's run history and its raw and domain tables. JSON-ready values,
read from the operational store (always readable) and, when no one writes it, the warehouse."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from optimizely_courier.config.sources import CourierGroup, Project
from optimizely_courier.runs.history import list_runs
from optimizely_courier.runs.status import courier_status, progress_text
from optimizely_courier.ui.access import Unavailable, reading, run_holder, runs_in_progress, serialized

NEXT_RUNS = 3  # scheduled times shown per group
GROUP_RUNS = 5  # last group runs shown per group
ALERTS = 12  # recent alerts on the overview
HISTORY = 50  # runs on a courier's page


def overview(project: Project, now: dt.datetime | None = None) -> dict[str, Any]:
    """Every courier's status, every group's schedule and runs, and the recent alerts."""
    now = now or dt.datetime.now(dt.UTC)
    running = runs_in_progress(project)
    with serialized():  # `courier_status` opens the warehouse itself, unless a run is writing it
        couriers = [courier_status(project, name, now, busy=run_holder(running) if running else None)
                    for name in project.couriers]
    for status in couriers:
        if status["in_progress"]:
            status["in_progress"]["text"] = progress_text(status["in_progress"])
    groups = [group_view(project, group, now) for group in project.groups.values()]
    return {"couriers": couriers, "groups": groups, "alerts": recent_alerts(project), "now": now.isoformat(),
            "running": bool(running) or any(group["in_progress"] for group in groups)}


def group_view(project: Project, group: CourierGroup, now: dt.datetime) -> dict[str, Any]:
    """A group's next scheduled times (in its zone and UTC, with the dates each loads), last runs and runs in
    progress."""
    from optimizely_courier.config.schedule import scheduled_times
    from optimizely_courier.groups.group_run import scheduled_dates

    upcoming = itertools.islice(scheduled_times(group.schedule, group.timezone, now), NEXT_RUNS) if group.active else []
    next_runs = [{"local": at.astimezone(group.timezone).isoformat(), "utc": at.isoformat(),
                  "dates": {member.name: _span(scheduled_dates(group, member, at, None).days())
                            for member in group.couriers}} for at in upcoming]
    runs = list_runs(project.warehouse, group=group.name, limit=GROUP_RUNS, table="group_runs")
    return {"group": group.name, "status": group.status, "schedule": group.schedule.text if group.schedule else None,
            "timezone": group.timezone.key, "couriers": [member.name for member in group.couriers],
            "next_runs": next_runs, "runs": runs, "in_progress": [run for run in runs if run["status"] == "running"]}


def _span(days: list[dt.date]) -> str:
    if not days:
        return "-"
    return str(days[0]) if len(days) == 1 else f"{days[0]} to {days[-1]}"


def recent_alerts(project: Project) -> list[dict[str, Any]]:
    """The newest alerts of group runs, their failures, and courier runs that failed or rejected files."""
    alerts = []
    for run in list_runs(project.warehouse, limit=HISTORY, table="group_runs"):
        at = run["ended_at"] or run["started_at"]
        source = f"group {run['group_name']} (run {run['run_id'][:8]})"
        alerts += [{"at": at, "level": "warn", "source": source, "message": text} for text in run["alerts"]]
        if run["error"]:
            alerts.append({"at": at, "level": "error", "source": source, "message": run["error"]})
    for run in list_runs(project.warehouse, limit=HISTORY):
        if run["status"] in ("failed", "partial"):
            message = run["error"] or f"{len(run['rejected'])} file(s) rejected (retried by the next run)"
            alerts.append({"at": run["ended_at"] or run["started_at"], "source": f"courier {run['courier']} "
                           f"(run {run['run_id'][:8]})", "level": "error" if run["status"] == "failed" else "warn",
                           "message": message})
    return sorted(alerts, key=lambda alert: alert["at"] or "", reverse=True)[:ALERTS]


def courier_view(project: Project, name: str) -> dict[str, Any]:
    """A courier's status, run history (each run's files, rows, feeds, rejected files and error), raw tables
    and domain tables.

    Raises:
        ConfigError: no courier of that name.
    """
    courier = project.courier(name)
    running = runs_in_progress(project)
    with serialized():
        status = courier_status(project, name, busy=run_holder(running) if running else None)
    if status["in_progress"]:
        status["in_progress"]["text"] = progress_text(status["in_progress"])
    runs = list_runs(project.warehouse, name, limit=HISTORY)
    for run in runs:
        if run["status"] == "running":
            run["progress_text"] = progress_text(run)
    raw, unavailable = [], None
    try:
        raw = raw_tables(project, courier.dataset, [entity.tag for entity in courier.entities])
    except Unavailable as exc:
        unavailable = str(exc)
    return {"courier": name, "location": courier.location, "status": status, "runs": runs, "raw_tables": raw,
            "unavailable": unavailable, "tags": [entity.tag for entity in courier.entities],
            "running": bool(status["in_progress"])}


def raw_tables(project: Project, dataset: str, tags: list[str]) -> list[dict[str, Any]]:
    """Per file tag, its raw table's rows, files, days and newest partition (rows None: nothing landed).

    Raises:
        Unavailable: a run or another process writes the warehouse.
    """
    from optimizely_courier.landing import record

    found = [{"tag": tag, "table": f"{dataset}.{tag}", "rows": None} for tag in tags]
    if project.engine != "duckdb" or not project.warehouse.exists():
        return found
    with reading(project) as db:
        for entry in found:
            if record.raw_table_exists(db, dataset, entry["tag"]):
                rows, files, days, newest = db.execute(
                    f'select count(*), count(distinct _file), count(distinct _file_date), max(_file_date) '
                    f'from "{dataset}"."{entry["tag"]}"').fetchall()[0]
                entry.update(rows=rows, files=files, days=days, newest=str(newest) if newest else None)
    return found
