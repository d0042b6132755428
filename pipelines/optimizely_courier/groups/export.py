"""`courier group export`: the same schedule for an orchestrator a team already runs.

- airflow: a DAG on the group's cron and zone whose task runs `courier group run G --scheduled-for
  <the DAG run's data_interval_end>` (with CronTriggerTimetable, the run's scheduled time), so a
  cleared or backfilled run loads that run's dates. It retries with back-off, times out after the
  group's longest wait plus a margin, and runs one at a time.
- cron: crontab lines in UTC, since Debian's and Ubuntu's cron ignore `CRON_TZ`: one line for each
  set of UTC times the schedule falls on (a daily 08:30 in Los Angeles is 16:30 UTC in winter, 15:30
  in summer). At each, `courier group run G --if-scheduled-utc '<the line's times>'` runs as the
  scheduled time the line fired for, if it is one, and otherwise logs that nothing was due; so DST
  changes need no edit. Output is appended to `.courier/cron-<group>.log` in the project.
- systemd: a .service running `courier group run G` and a .timer whose `OnCalendar=` takes the zone.
  systemd fires once at each scheduled time (a repeated wall time once, as here), and `Persistent=`
  fires a missed one at boot; it skips a wall time that does not exist that day (02:30 when clocks
  jump to 03:00), whose dates the next run's catch-up loads.
"""

from __future__ import annotations

import datetime as dt
import shlex
import sys
from pathlib import Path

from optimizely_courier.config.groups import CourierGroup
from optimizely_courier.config.schedule import Cron, previous_time
from optimizely_courier.errors import CourierError

TARGETS = ("airflow", "cron", "systemd")
UTC = dt.UTC
# An Airflow task may run this long past the group's longest wait (loading, building, downstream).
EXECUTION_MARGIN = dt.timedelta(hours=2)
# A crontab line starts within seconds of its minute; later than this, its clock is not on UTC.
FIRING_GRACE = dt.timedelta(minutes=15)
# The zone's UTC offsets over this span give every UTC time the schedule can fall on.
OFFSET_SPAN = dt.timedelta(days=2 * 366)

# Jinja, rendered by Airflow: a run without a data interval (a manual trigger in Airflow 3) runs as
# the latest scheduled time.
SCHEDULED_FOR = " {% if data_interval_end %}--scheduled-for {{ data_interval_end.isoformat() }}{% endif %}"

AIRFLOW_DAG = '''"""Airflow DAG for courier group {group}, exported by `courier group export {group} --to airflow`.

Each run loads the dates of its own scheduled time: the task passes the run's data_interval_end
(with CronTriggerTimetable, the time the run was scheduled for) to `courier group run
--scheduled-for`, so clearing or backfilling a past run loads that run's dates. Failed tries are
retried with back-off; a try times out {timeout_text} after it starts (the group's longest wait,
{wait_text}, plus {margin_text} to load, build and run downstream commands).
"""

import datetime

import pendulum
from airflow import DAG
from airflow.timetables.trigger import CronTriggerTimetable

try:  # Airflow 3: the standard provider
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

with DAG(
    dag_id="courier_group_{group}",
    schedule=CronTriggerTimetable({schedule!r}, timezone={timezone!r}),
    start_date=pendulum.datetime(2026, 1, 1, tz={timezone!r}),
    catchup=False,  # the courier group catches up missed runs itself
    max_active_runs=1,  # the warehouse takes one writer at a time
    default_args={{
        "retries": 3,
        "retry_delay": datetime.timedelta(minutes=5),
        "retry_exponential_backoff": True,  # 5, 10, 20 minutes
        "max_retry_delay": datetime.timedelta(hours=1),
        "execution_timeout": datetime.timedelta(seconds={timeout_seconds}),
    }},
    tags=["optimizely-courier"],
) as dag:
    BashOperator(
        task_id="run_{group}",
        bash_command={command!r}
        + {scheduled_for!r},
    )
'''


def _command(group: CourierGroup, project: Path, prepare: str = "") -> str:
    """`cd <project> && [prepare &&] <this installation's courier> group run <group>`, quoted for a shell."""
    courier = Path(sys.executable).parent / "courier"
    return (f"cd {shlex.quote(str(project))} && {prepare + ' && ' if prepare else ''}"
            f"{shlex.quote(str(courier))} group run {shlex.quote(group.name)}")


def _duration(delta: dt.timedelta) -> str:
    hours, seconds = divmod(int(delta.total_seconds()), 3600)
    return f"{hours}h{seconds // 60:02d}m" if seconds else f"{hours}h"


def airflow_dag(group: CourierGroup, project: Path) -> str:
    """An Airflow DAG (2 or 3) that runs the group on its schedule, for its runs' own dates."""
    command = _command(group, project)
    if any(token in command for token in ("{{", "{%", "{#")):  # Airflow renders bash_command with Jinja
        raise CourierError(f"cannot export to Airflow: the path {project} holds Jinja syntax ({{{{, {{% or {{#)")
    wait = max((member.wait for member in group.couriers), default=dt.timedelta(0))
    timeout = wait + EXECUTION_MARGIN
    return AIRFLOW_DAG.format(group=group.name, schedule=group.schedule.text, timezone=group.timezone.key,
                              command=command, scheduled_for=SCHEDULED_FOR,
                              timeout_seconds=int(timeout.total_seconds()), timeout_text=_duration(timeout),
                              wait_text=_duration(wait), margin_text=_duration(EXECUTION_MARGIN))


def utc_cron_lines(group: CourierGroup, start: dt.datetime | None = None) -> list[str]:
    """UTC cron expressions that together fire at every time the schedule can fall on (and a few more)."""
    start = start or dt.datetime.now(UTC)
    offsets = {group.timezone.utcoffset(start + dt.timedelta(hours=h))
               for h in range(int(OFFSET_SPAN / dt.timedelta(hours=1)))}
    local = [60 * hour + minute for hour in group.schedule.hours for minute in group.schedule.minutes]
    times = {(m - int(offset / dt.timedelta(minutes=1))) % 1440 for m in local for offset in offsets}
    hours_at: dict[int, set[int]] = {}
    for minute_of_day in times:
        hours_at.setdefault(minute_of_day % 60, set()).add(minute_of_day // 60)
    minutes_for: dict[tuple[int, ...], list[int]] = {}
    for minute, hours in sorted(hours_at.items()):
        minutes_for.setdefault(tuple(sorted(hours)), []).append(minute)
    return [f"{_field(minutes, 60)} {_field(list(hours), 24)} * * *"
            for hours, minutes in sorted(minutes_for.items(), key=lambda item: (item[1], item[0]))]


def _field(values: list[int], size: int) -> str:
    return "*" if len(values) == size else ",".join(str(v) for v in sorted(values))


def crontab(group: CourierGroup, project: Path) -> str:
    """Crontab lines in UTC, each running the group only at the scheduled times it fires for."""
    log = f".courier/cron-{group.name}.log"
    lines = [f"# courier group {group.name}: {group.schedule.text!r} in {group.timezone.key}, exported by "
             f"`courier group export {group.name} --to cron`.",
             "# The times below are UTC (Debian's and Ubuntu's cron ignore CRON_TZ): for a cron daemon whose clock",
             "# is on UTC. They are every UTC time the schedule falls on, in winter and in summer; at each,",
             "# --if-scheduled-utc runs the group as the scheduled time the line fired for, if it is one, and",
             "# else logs that nothing was due, so clock changes need no edit (re-export if the zone's rules",
             "# change). A line that fires off its UTC times (a cron clock not on UTC) fails and says so.",
             f"# Output is appended to {project / log}."]
    for fields in utc_cron_lines(group):
        command = (f"{_command(group, project, prepare='mkdir -p .courier')} --if-scheduled-utc "
                   f"{shlex.quote(fields)} >> {log} 2>&1")
        lines.append(f"{fields} {command}".replace("%", "\\%"))  # cron reads a bare % as a newline
    return "\n".join(lines) + "\n"


def fired_scheduled_time(group: CourierGroup, line: str,
                         now: dt.datetime | None = None) -> tuple[dt.datetime | None, str]:
    """The scheduled time a UTC crontab line with these fields fired for, or None and why not.

    Raises:
        CourierError: when the group has no schedule, or the line's latest time is not within
            FIRING_GRACE before now (the cron daemon's clock is not on UTC).
    """
    if group.schedule is None:
        raise CourierError(f"courier group {group.name} has no schedule: --if-scheduled-utc needs one")
    now = now or dt.datetime.now(UTC)
    fired = previous_time(Cron.parse(line), UTC, now)
    if fired is None or now - fired > FIRING_GRACE:
        raise CourierError(f"--if-scheduled-utc {line!r}: started at {now:%Y-%m-%dT%H:%M}Z, not within "
                           f"{int(FIRING_GRACE.total_seconds() // 60)} minutes of one of the line's UTC times: "
                           "is the cron daemon's clock on UTC? (`courier group export --to cron` writes UTC times)")
    if group.status != "active":
        return None, f"courier group {group.name} is {group.status}: it runs by hand only; nothing to run"
    if previous_time(group.schedule, group.timezone, fired) != fired:
        return None, (f"courier group {group.name}: {fired.isoformat()} is not a scheduled time of "
                      f"{group.schedule.text!r} in {group.timezone.key}; nothing to run")
    return fired, ""


def on_calendar(cron: Cron, zone: str) -> list[str]:
    """systemd `OnCalendar=` values for a cron schedule: two when both day fields are restricted
    (cron runs on a day matching either; a timer fires at the union of its OnCalendar= values)."""
    time = f"{_values(cron.hours)}:{_values(cron.minutes)}:00"
    months = "*" if len(cron.months) == 12 else _values(cron.months)
    weekdays = ",".join(SYSTEMD_WEEKDAYS[day] for day in sorted(cron.weekdays, key=lambda d: (d + 6) % 7))
    days = _values(cron.days)
    if cron.any_day or cron.any_weekday:
        day_part = f"*-{months}-{'*' if cron.any_day else days}"
        return [(f"{weekdays} " if not cron.any_weekday else "") + f"{day_part} {time} {zone}"]
    return [f"{weekdays} *-{months}-* {time} {zone}", f"*-{months}-{days} {time} {zone}"]


SYSTEMD_WEEKDAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


def _values(values: frozenset) -> str:
    return ",".join(f"{v:02d}" for v in sorted(values))


def systemd_units(group: CourierGroup, project: Path) -> dict[str, str]:
    """A .service and a .timer, by file name, that run the group on its schedule in its zone."""
    courier = str(Path(sys.executable).parent / "courier")
    quoted = courier.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$")  # systemd's own quoting
    exec_start = f'"{quoted}" group run {group.name}'.replace("%", "%%")  # % starts a systemd specifier
    unit = f"courier-group-{group.name}"
    header = (f"# courier group {group.name}: {group.schedule.text!r} in {group.timezone.key}, exported by "
              f"`courier group export {group.name} --to systemd`.\n")
    service = (f"{header}[Unit]\nDescription=optimizely-courier group {group.name}\n\n"
               f"[Service]\nType=oneshot\nWorkingDirectory={str(project).replace('%', '%%')}\n"
               f"ExecStart={exec_start}\n")
    calendars = "".join(f"OnCalendar={spec}\n" for spec in on_calendar(group.schedule, group.timezone.key))
    timer = (f"{header}# A wall time that does not exist on a day clocks jump (02:30) is skipped that day; the next\n"
             "# run loads its dates (catch-up). Persistent=true runs a time missed while the machine was off.\n"
             f"[Unit]\nDescription=optimizely-courier group {group.name} on its schedule\n\n"
             f"[Timer]\n{calendars}AccuracySec=1s\nPersistent=true\nUnit={unit}.service\n\n"
             "[Install]\nWantedBy=timers.target\n")
    return {f"{unit}.service": service, f"{unit}.timer": timer}


def export(group: CourierGroup, target: str, project: Path) -> dict[str, str] | str:
    """The Airflow DAG file text, the crontab lines, or the systemd units (by file name) for a group."""
    if group.schedule is None:
        raise CourierError(f"courier group {group.name} has no schedule to export")
    if target == "systemd":
        return systemd_units(group, project)
    return crontab(group, project) if target == "cron" else airflow_dag(group, project)
