"""`courier group export`: the same schedule for an orchestrator a team already runs.

Both targets run `courier group run <group>` without dates, so the dates come from the group's
schedule, offsets and catch-up exactly as under `courier serve`.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from optimizely_courier.config.sources import CourierGroup
from optimizely_courier.errors import CourierError

TARGETS = ("airflow", "cron")

AIRFLOW_DAG = '''"""Airflow DAG for courier group {group}, exported by `courier group export {group} --to airflow`."""

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
    catchup=False,  # the courier group catches up missed days itself
    max_active_runs=1,
    tags=["optimizely-courier"],
) as dag:
    BashOperator(
        task_id="run_{group}",
        bash_command={command!r},
    )
'''


def _command(group: CourierGroup, project: Path) -> str:
    courier = Path(sys.executable).parent / "courier"
    return f"cd {shlex.quote(str(project))} && {shlex.quote(str(courier))} group run {shlex.quote(group.name)}"


def export(group: CourierGroup, target: str, project: Path) -> str:
    """The Airflow DAG file text, or the crontab lines, for a group."""
    if group.schedule is None:
        raise CourierError(f"courier group {group.name} has no schedule to export")
    zone = group.timezone.key
    if target == "cron":
        return (f"# courier group {group.name}: {group.schedule.text} in {zone}\n"
                f"CRON_TZ={zone}\n{group.schedule.text} {_command(group, project)}\n")
    return AIRFLOW_DAG.format(group=group.name, schedule=group.schedule.text, timezone=zone,
                              command=_command(group, project))
