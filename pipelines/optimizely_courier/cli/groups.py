"""`courier group ...` and `courier serve`: courier groups on their schedules."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from optimizely_courier.cli.common import (
    check_output,
    current_project,
    date_options,
    iso_instant,
    note_pending_history,
    run_dates,
    write_failed,
)
from optimizely_courier.errors import CourierError
from optimizely_courier.text import to_json

if TYPE_CHECKING:
    from optimizely_courier.config.sources import Project

# How far in the future --scheduled-for may be: an orchestrator's clock may be a little ahead of this machine's.
FUTURE_TOLERANCE = dt.timedelta(minutes=15)


@click.group()
def group() -> None:
    """Courier groups: couriers run as a unit on a schedule, gating downstream work.

    \b
    Examples:
      courier group next optimizely -n 3
      courier group run optimizely --date 2026-11-27
      courier group export optimizely --to cron
    """


@group.command("run")
@click.argument("name")
@date_options
@click.option("--scheduled-for", "scheduled_for", metavar="INSTANT",
              help="Load what a scheduled run at this ISO instant loads (what an orchestrator passes).")
@click.option("--if-scheduled-utc", "fired_by", metavar="CRON",
              help="For a crontab line of these UTC times: run as the time it fired for, if that is one of the "
                   "group's scheduled times; else exit 0.")
@click.pass_context
def group_run(ctx: click.Context, name: str, date: str | None, start: str | None, end: str | None,
              everything: bool, scheduled_for: str | None, fired_by: str | None) -> None:
    """Run a courier group now.

    With dates, it loads exactly those (the schedule is ignored). Without, it runs as its latest
    scheduled time would: each courier's offset window and the dates since the previous scheduled
    time's window, catching up on missed runs, waiting up to each courier's `wait` for late data.
    `--scheduled-for` runs as the scheduled time given (an Airflow DAG passes its run's
    data_interval_end, so clearing a past run loads that run's dates). Downstream commands run only
    when every courier succeeded.

    \b
    Examples:
      courier group run optimizely --date 2026-11-27
      courier group run optimizely            # as its latest scheduled time
      courier group run optimizely --scheduled-for 2026-11-28T16:30:00+00:00
    """
    from optimizely_courier.groups.group_run import run_group
    from optimizely_courier.runs.progress import Reporter
    from optimizely_courier.runs.run import PARTIAL, PARTIAL_EXIT_CODE

    given = date or start or end or everything
    if sum(bool(choice) for choice in (given, scheduled_for, fired_by)) > 1:
        raise click.UsageError("choose one of: dates (--date, --from/--to, --all), --scheduled-for, "
                               "--if-scheduled-utc")
    dates = run_dates(date, start, end, everything) if given else None
    project = current_project(ctx)
    when = iso_instant(scheduled_for, "--scheduled-for")
    if when is not None and when > dt.datetime.now(dt.UTC) + FUTURE_TOLERANCE:
        raise click.BadParameter(f"{when.isoformat()} is in the future: a run can be scheduled for a time that has "
                                 "passed (Airflow passes its run's data_interval_end)", param_hint="'--scheduled-for'")
    if fired_by is not None:
        when = _fired_scheduled_time(project, name, fired_by)
        if when is None:
            return
    if run_group(project, name, dates, scheduled_for=when, reporter=Reporter()).run.status == PARTIAL:
        ctx.exit(PARTIAL_EXIT_CODE)


def _fired_scheduled_time(project: Project, name: str, line: str) -> dt.datetime | None:
    """The scheduled time a UTC crontab line fired for, or None (after saying so) when it is not one."""
    from optimizely_courier.config.schedule import ScheduleError
    from optimizely_courier.groups.export import fired_scheduled_time

    try:
        when, note = fired_scheduled_time(project.group(name), line)
    except ScheduleError as exc:
        raise click.BadParameter(str(exc), param_hint="'--if-scheduled-utc'") from None
    if when is None:
        click.echo(note)
    return when


@group.command("next")
@click.argument("name")
@click.option("-n", "count", default=5, show_default=True, type=click.IntRange(1), help="How many times.")
@click.option("--after", help="ISO date-time to start from (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def group_next(ctx: click.Context, name: str, count: int, after: str | None, as_json: bool) -> None:
    """Show the next scheduled times, in the group's zone and in UTC, with the dates each loads.

    \b
    Examples:
      courier group next optimizely
      courier group next optimizely -n 3 --after 2027-03-13T00:00:00Z --json
    """
    import itertools

    from optimizely_courier.config.schedule import scheduled_times
    from optimizely_courier.groups.coverage import coverage_warnings
    from optimizely_courier.groups.group_run import scheduled_dates

    chosen = current_project(ctx).group(name)
    if chosen.schedule is None:
        raise CourierError(f"courier group {name} has no schedule: it runs by hand only")
    start = iso_instant(after, "--after") or dt.datetime.now(dt.UTC)
    times = list(itertools.islice(scheduled_times(chosen.schedule, chosen.timezone, start), count))
    if not times:
        raise CourierError(f"courier group {name}: {chosen.schedule.text!r} has no scheduled time after "
                           f"{start.isoformat()}")
    entries = [{"local": t.astimezone(chosen.timezone).isoformat(), "utc": t.isoformat(),
                "dates": {m.name: [str(d) for d in scheduled_dates(chosen, m, t, None).days()]
                          for m in chosen.couriers}} for t in times]
    for warning in coverage_warnings(chosen):
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        click.echo(to_json(entries))
        return
    status = "" if chosen.status == "active" else "  (inactive: runs by hand only)"
    click.echo(f"{name}: {chosen.schedule.text} in {chosen.timezone.key}{status}")
    for entry in entries:
        loads = "; ".join(f"{courier} {days[0]}" + (f" to {days[-1]}" if len(days) > 1 else "")
                          for courier, days in entry["dates"].items())
        click.echo(f"  {entry['local']}  ({entry['utc']})  loads {loads}")


@group.command("export")
@click.argument("name")
@click.option("--to", "target", type=click.Choice(["airflow", "cron", "systemd"]), required=True,
              help="Orchestrator.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Write to a file (for systemd: a directory, for the .service and the .timer).")
@click.pass_context
def group_export(ctx: click.Context, name: str, target: str, output: Path | None) -> None:
    """Write an Airflow DAG, crontab lines or systemd units that run the group on its schedule.

    The DAG passes each run's data_interval_end as `--scheduled-for`, so a cleared or backfilled
    run loads its own dates; it retries with back-off and times out after the longest wait plus 2h.
    The crontab lines are in UTC (no CRON_TZ), one per set of UTC times the schedule falls on, each
    running the group only at a scheduled time (`--if-scheduled-utc`), logging to .courier/.
    The systemd timer's OnCalendar= carries the zone.

    \b
    Examples:
      courier group export optimizely --to cron >> my.crontab
      courier group export optimizely --to airflow -o dags/courier_optimizely.py
      courier group export optimizely --to systemd -o ~/.config/systemd/user
    """
    from optimizely_courier.groups.export import export

    if output is not None:
        check_output(output, "'-o' / '--output'", directory=target == "systemd")
        if target != "systemd" and output.is_dir():
            raise click.BadParameter(f"cannot write {output}: it is a directory", param_hint="'-o' / '--output'")
    exported = export(current_project(ctx).group(name), target, ctx.obj.project_dir)
    files = exported if isinstance(exported, dict) else {None: exported}
    if output is None:
        click.echo("\n".join(text if file is None else f"# ---- {file}\n{text}" for file, text in files.items()),
                   nl=False)
        return
    for file, text in files.items():
        path = output if file is None else output / file
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        except OSError as exc:
            raise write_failed(path, exc) from None
        click.echo(f"wrote {path}")


@group.command("history")
@click.argument("name", required=False)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def group_history(ctx: click.Context, name: str | None, limit: int, as_json: bool) -> None:
    """Show group runs, newest first, with their courier runs, alerts and downstream results.

    \b
    Example:
      courier group history optimizely --limit 5
    """
    from optimizely_courier.runs.history import list_runs, mark_interrupted
    from optimizely_courier.runs.status import progress_text

    warehouse = current_project(ctx).warehouse
    mark_interrupted(warehouse)
    runs = list_runs(warehouse, group=name, limit=limit, table="group_runs")
    note_pending_history(warehouse)
    if as_json:
        click.echo(to_json(runs))
        return
    for run in runs:
        scheduled = f" scheduled {run['scheduled_for'][:16]}" if run["scheduled_for"] else " by hand"
        click.echo(f"{run['started_at'][:19]}  {run['status']:<8} {run['group_name']}{scheduled}  {run['dates']}")
        if run["status"] == "running":
            click.echo(f"    in progress: {progress_text(run)}")
        for line in run["alerts"] + ([run["error"]] if run["error"] else []):
            click.echo(f"    {line}")
    if not runs:
        click.echo("No group runs recorded yet.")


@click.command()
@click.option("--clock-start", hidden=True, help="Start the clock at this ISO instant (rehearsals, tests).")
@click.pass_context
def serve(ctx: click.Context, clock_start: str | None) -> None:
    """Run every active courier group on its schedule until stopped (SIGTERM or Ctrl-C).

    Groups run one at a time; a run in progress finishes before the scheduler stops. Missed
    scheduled runs are caught up at start.

    \b
    Example:
      courier serve
    """
    from optimizely_courier.groups.clock import Clock
    from optimizely_courier.groups.serve import serve as run_forever

    run_forever(current_project(ctx), Clock(iso_instant(clock_start, "--clock-start")))
