"""Courier group runs: couriers one after another, waiting for late data, then the downstream gate.

A scheduled run at time T loads, per courier, the dates of its offset window
`[date(T - offset), date(T))`. Unless `only_past_day` is true, it also loads every date since the end
of the previous scheduled time's window (so a weekday schedule's Monday run loads the weekend) and,
when scheduled runs were missed (the machine was off), every day since the last successful group
run, oldest first.
During a courier's `wait` the ready markers are polled with back-off; when the wait expires,
`on_missing: stop` fails the group and `notify` records an alert and lands what is ready.
`downstream` commands run only after every courier succeeded.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field

from optimizely_courier.config.groups import CourierGroup, GroupCourier
from optimizely_courier.config.schedule import covering_window, previous_time, scheduled_times, window_dates
from optimizely_courier.config.sources import Project
from optimizely_courier.errors import CourierError, GroupDataMissing, GroupFailed, NotReadyError, one_line
from optimizely_courier.groups.clock import Clock
from optimizely_courier.landing.discovery import RunDates, plan_run
from optimizely_courier.runs.build import dbt_environment
from optimizely_courier.runs.history import GroupRun, last_success, mark_interrupted, save, save_phase
from optimizely_courier.runs.progress import WAITING, Reporter, run_table
from optimizely_courier.runs.run import PARTIAL

MAX_POLL_GROWTH = 16  # the poll interval doubles up to 16 times the configured `poll`
DOWNSTREAM_TAIL_LINES = 20  # how much of a downstream command's output a group run prints


@dataclass
class GroupReport:
    run: GroupRun
    courier_reports: list = field(default_factory=list)


def scheduled_dates(group: CourierGroup, member: GroupCourier, scheduled: dt.datetime,
                    since: dt.datetime | None) -> RunDates:
    """The dates a run scheduled at `scheduled` loads for one courier.

    Its offset window; unless `only_past_day`, also every date since the previous scheduled time's
    window (the days the schedule skips, such as a weekday schedule's weekend) and, when scheduled
    runs were missed, every date since the window of `since` (the last successful scheduled run).
    """
    zone = group.timezone if group.use_timezone_for_dates else None
    start, end = window_dates(scheduled, member.offset, zone)
    if group.only_past_day or group.schedule is None:
        return RunDates.between(start, end)
    start = min(start, covering_window(group.schedule, group.timezone, scheduled, member.offset, zone)[0])
    if since is not None:
        first_missed = next(scheduled_times(group.schedule, group.timezone, since), None)
        if first_missed is not None and first_missed < scheduled:
            start = min(start, covering_window(group.schedule, group.timezone, first_missed, member.offset, zone)[0])
    return RunDates.between(start, end)


def run_group(project: Project, name: str, dates: RunDates | None = None,
              scheduled_for: dt.datetime | None = None, clock: Clock | None = None,
              reporter: Reporter | None = None) -> GroupReport:
    """Run a courier group once: by hand for `dates`, or for a scheduled time (default: the latest one).

    Raises:
        GroupFailed: after recording the failed group run.
    """
    from optimizely_courier.runs.run import RunOptions, run_courier

    group = project.group(name)
    clock = clock or Clock()
    reporter = reporter or Reporter(enabled=False)
    if dates is None:
        scheduled_for = scheduled_for or _latest_scheduled(group, clock.now())
    since = last_success(project.warehouse, name) if dates is None else None
    plans = {m.name: dates or scheduled_dates(group, m, scheduled_for, since) for m in group.couriers}
    group_run = GroupRun(run_id=str(uuid.uuid4()), group_name=name, scheduled_for=scheduled_for,
                         dates="; ".join(f"{courier} {d.describe()}" for courier, d in plans.items()))
    report = GroupReport(group_run)
    mark_interrupted(project.warehouse)
    save(project.warehouse, group_run)
    started = clock.now()
    reporter.status(f"Courier group {name} started" + (f" for {scheduled_for.isoformat()}" if scheduled_for else ""))
    try:
        for member in group.couriers:
            deadline = (scheduled_for or started) + member.wait
            save_phase(project.warehouse, group_run, f"{WAITING} ({member.name})")
            ready = _wait_for_data(project, member, plans[member.name], deadline, group.poll, clock, reporter)
            run_id = str(uuid.uuid4())  # the courier's run: it fails here, or lands what is ready
            if not ready:
                missing = f"source data not ready by {deadline.isoformat()} (wait {member.wait}): {ready.reason}"
                _courier_data_missing(project, group, member, plans[member.name], missing, run_id, group_run, reporter)
                if member.on_missing == "stop":
                    raise GroupDataMissing(f"courier {member.name}: {missing}", ready.error.missing) from ready.error
                alert = f"courier {member.name}: source data not ready by {deadline.isoformat()}: {ready.reason}"
                group_run.alerts.append(alert)
                reporter.warn(f"alert: {alert}")
                _notify(project, group, "data_missing", alert, group_run, reporter)
            options = RunOptions(skip_missing=not ready, group=name, run_id=run_id)
            group_run.courier_runs.append(options.run_id)
            save_phase(project.warehouse, group_run, f"Running courier {member.name} (run {options.run_id[:8]})")
            try:
                report.courier_reports.append(run_courier(project, member.name, plans[member.name], options,
                                                          reporter))
            except CourierError as exc:
                raise GroupFailed(f"courier {member.name}: {exc}") from None
            reporter.block(run_table(report.courier_reports[-1]))
        _run_downstream(project, group, group_run, reporter)
        partial = [r.run.courier for r in report.courier_reports if r.run.status == PARTIAL]
        group_run.status = PARTIAL if partial else "success"
        if partial:
            group_run.alerts.append(f"courier(s) {', '.join(partial)} rejected files: see `courier history`")
    except CourierError as exc:
        group_run.status, group_run.error = "failed", str(exc)
        reporter.status(f"Courier group {name} failed: {exc}")
        missing = isinstance(exc, GroupDataMissing)
        _notify(project, group, "data_missing" if missing else "run_failed", str(exc), group_run, reporter)
        if isinstance(exc, GroupFailed):
            raise  # as it is, with its cause (the data missing keeps the NotReadyError that said so)
        raise GroupFailed(str(exc)) from None
    finally:
        group_run.ended_at = dt.datetime.now(dt.UTC)
        save(project.warehouse, group_run)
    outcome = "finished, some files rejected" if group_run.status == PARTIAL else "succeeded"
    reporter.status(f"Courier group {name} {outcome}")
    return report


def _courier_data_missing(project: Project, group: CourierGroup, member: GroupCourier, dates: RunDates,
                          missing: str, run_id: str, group_run: GroupRun, reporter: Reporter) -> None:
    """What the courier itself keeps of its data missing in a group run: with `on_missing: stop`, a failed
    run in its history (the group makes no other run of it); in both cases a `data_missing` event to its
    own notify targets."""
    from optimizely_courier.runs.history import CourierRun
    from optimizely_courier.runs.notify import notify

    stop = member.on_missing == "stop"
    if stop:
        run = CourierRun(run_id=run_id, courier=member.name, dates=dates.describe(), group_name=group.name,
                         status="failed", error=missing, duration_seconds=0.0)
        run.ended_at = run.started_at
        save(project.warehouse, run)
        group_run.courier_runs.append(run_id)
    details = {"courier": member.name, "group": group.name, "run_id": run_id, "dates": dates.describe(),
               "status": "failed" if stop else "running"}
    message = f"in group {group.name}: {missing}" + ("" if stop else "; landing what is ready")
    notify(project.courier(member.name).notify, "data_missing", f"courier {member.name}", message, project, details,
           reporter.warn)


def _notify(project: Project, group: CourierGroup, event: str, message: str, group_run: GroupRun,
            reporter: Reporter) -> None:
    from optimizely_courier.runs.notify import notify

    details = {"group": group.name, "run_id": group_run.run_id, "dates": group_run.dates}
    notify(group.notify, event, f"courier group {group.name}", message, project, details, reporter.warn)


def _latest_scheduled(group: CourierGroup, now: dt.datetime) -> dt.datetime:
    if group.schedule is None:
        raise CourierError(f"courier group {group.name} has no schedule: pass --date D, --from D --to D, or --all")
    found = previous_time(group.schedule, group.timezone, now)
    if found is None:
        raise CourierError(f"courier group {group.name}: schedule {group.schedule.text!r} has no past run time")
    return found


class _Readiness:
    """Truthy when the data is ready; otherwise carries why not (the error, and its message as the reason)."""

    def __init__(self, error: NotReadyError | None = None):
        self.error = error
        self.reason = str(error) if error is not None else None

    def __bool__(self) -> bool:
        return self.error is None


def _wait_for_data(project: Project, member: GroupCourier, dates: RunDates, deadline: dt.datetime,
                   poll: dt.timedelta, clock: Clock, reporter: Reporter) -> _Readiness:
    """Poll the ready markers until they are all there or `deadline` passes (back-off doubling)."""
    from optimizely_courier.landing.storage import open_store

    courier = project.courier(member.name)
    store = open_store(courier)
    interval = poll.total_seconds()
    while True:
        try:
            plan_run(courier, store, dates)
            return _Readiness()
        except NotReadyError as exc:
            remaining = (deadline - clock.now()).total_seconds()
            if remaining <= 0:
                return _Readiness(exc)
            reporter.status(f"{WAITING} ({member.name}: {exc.summary}; checking again in "
                            f"{min(interval, remaining):.0f}s)")
            clock.sleep(min(interval, remaining))
            interval = min(interval * 2, poll.total_seconds() * MAX_POLL_GROWTH)


def _run_downstream(project: Project, group: CourierGroup, group_run: GroupRun, reporter: Reporter) -> None:
    """Run the group's downstream commands in the project directory, in order; stop at a failure."""
    bin_dir = os.path.dirname(sys.executable)  # dbt and courier of this installation come first on PATH
    env = {**dbt_environment(project), "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    for command in group.downstream:
        reporter.status(f"Downstream: {command}")
        save_phase(project.warehouse, group_run, f"Downstream: {command}")
        with reporter.running(f"running `{command}`"):
            # one stream, so the tail shows what the command printed in the order it printed it
            process = subprocess.run(command, shell=True, cwd=project.root, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, errors="replace")
        group_run.downstream.append({"command": command, "exit_code": process.returncode})
        lines = [_redact(line, project.secrets()) for line in process.stdout.rstrip().splitlines()]
        _print_tail(reporter, command, lines, process.returncode)
        if process.returncode != 0:
            raise GroupFailed(f"downstream command `{command}` exited with {process.returncode}: "
                              f"{lines[-1] if lines else ''}")


def _print_tail(reporter: Reporter, command: str, lines: list[str], code: int) -> None:
    """The last DOWNSTREAM_TAIL_LINES lines a downstream command printed, indented, and how it ended."""
    shown = lines[-DOWNSTREAM_TAIL_LINES:]
    if shown:
        heading = f"last {len(shown)} of {len(lines)} lines" if len(shown) < len(lines) else f"{len(lines)} line(s)"
        reporter.block(f"  output of `{command}` ({heading}):")
        reporter.block("\n".join(f"    {one_line(line)}" for line in shown))
    reporter.block(f"  `{command}` exited with {code}")


def _redact(line: str, secrets: list[str]) -> str:
    """A line of a command's output without the courier's secrets (a command may print its environment)."""
    for secret in secrets:
        if secret:
            line = line.replace(secret, "***")
    return line
