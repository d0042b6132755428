"""`courier serve`: a long-running scheduler for every active courier group.

Groups run one at a time (DuckDB has one writer). At start, a group whose last successful
scheduled run is older than its latest scheduled time catches up at once. SIGTERM or SIGINT stops
the scheduler: a run in progress finishes (a wait for late data is cut short and the group run is
recorded as failed, interrupted); nothing half-loaded is committed, since landing and each domain
build commit atomically.
"""

from __future__ import annotations

import datetime as dt
import signal

from optimizely_courier.config.schedule import previous_time, scheduled_times
from optimizely_courier.config.sources import Project
from optimizely_courier.errors import CourierError, Interrupted
from optimizely_courier.groups.clock import Clock
from optimizely_courier.runs.history import last_success
from optimizely_courier.runs.progress import Reporter

MAX_SLEEP_SECONDS = 1.0  # how often the loop looks at the clock and the stop flag


def _install_stop_handlers(clock: Clock, received: list) -> None:
    def stop(signum: int, _frame: object) -> None:
        # Only set flags here: printing or locking in a handler can deadlock the code it interrupted.
        received.append(signal.Signals(signum).name)
        clock.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _catch_up(project: Project, clock: Clock) -> dict[str, dt.datetime]:
    """Groups whose latest scheduled time has no successful run, with that time."""
    due = {}
    for name, group in project.groups.items():
        if not group.active:
            continue
        latest = previous_time(group.schedule, group.timezone, clock.now())
        since = last_success(project.warehouse, name)
        if latest is not None and since is not None and latest > since:
            due[name] = latest
    return due


def _announce(project: Project, upcoming: dict[str, dt.datetime], pending: dict[str, dt.datetime],
              reporter: Reporter) -> None:
    """Say when each group runs next, in its zone and in UTC (a missed run: now, to catch up)."""
    for name, when in upcoming.items():
        zone = project.groups[name].timezone
        times = f"{when.astimezone(zone).isoformat()} {zone.key} ({when.astimezone(dt.UTC).isoformat()} UTC)"
        if name in pending:
            reporter.status(f"Group {name} missed its run of {times}: running it now")
        else:
            reporter.status(f"Group {name} runs next at {times}")


def serve(project: Project, clock: Clock | None = None, reporter: Reporter | None = None) -> int:
    """Run active groups on their schedules until stopped; returns the number of group runs made."""
    from optimizely_courier.groups.group_run import run_group

    clock = clock or Clock()
    reporter = reporter or Reporter()
    received: list[str] = []
    _install_stop_handlers(clock, received)
    active = [name for name, group in project.groups.items() if group.active]
    if not active:
        raise CourierError("no active courier group with a schedule in sources.yml: nothing to serve")
    reporter.status(f"Serving courier groups: {', '.join(active)}")
    runs = 0
    cursor = {name: clock.now() for name in active}
    pending = _catch_up(project, clock)
    announce = True  # at start and after each run: when each group runs next
    while not clock.stop_requested:
        now = clock.now()
        upcoming = {name: pending.get(name) or next(scheduled_times(project.groups[name].schedule,
                                                                    project.groups[name].timezone, cursor[name]))
                    for name in active}
        if announce:
            _announce(project, upcoming, pending, reporter)
            announce = False
        name, when = min(upcoming.items(), key=lambda item: item[1])
        if when > now:
            try:
                clock.sleep(min(MAX_SLEEP_SECONDS, (when - now).total_seconds()))
            except Interrupted:
                break
            continue
        pending.pop(name, None)
        cursor[name] = max(cursor[name], when)
        runs += 1
        try:
            run_group(project, name, scheduled_for=when, clock=clock, reporter=reporter)
        except CourierError as exc:
            reporter.warn(f"group {name} failed: {exc}")
        announce = True
    if received:
        reporter.status(f"Received {received[0]}: stopped after the current run")
    reporter.status(f"Stopped after {runs} group run(s)")
    return runs
