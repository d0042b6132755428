"""Fault points: with `COURIER_FAULT=<point>` set, the process kills itself (SIGKILL) at that point;
`COURIER_FAULT=<point>:TERM` sends SIGTERM instead (a polite stop, as a scheduler's would be), and
`COURIER_FAULT=<point>:STOP` stops it (SIGSTOP) until a SIGCONT, holding whatever it holds there (a
test looks at a run in progress, or changes the world under it, then lets it go on).

The crash tests use them instead of a timed kill, so each fault happens exactly where it is named,
every time. Points inside dlt's load step are armed by wrapping two of dlt's load methods, and only
when the variable names them; without it nothing here changes anything.

    after-extract      the load package is extracted, not normalized
    after-normalize    the package is normalized, no job has run
    between-jobs       the first raw table job has committed, the others have not run
    before-complete    every job has committed; dlt has not recorded the load in `_dlt_loads`
    before-build       landing has committed; the run has not started to build (see `run.py`)
    during-dbt         dbt is inside the domain model's transaction (see `build.py`)
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "COURIER_FAULT"
# The crash points the recovery tests kill runs at (a kill at `before-build` is a run that landed only).
POINTS = ("after-extract", "after-normalize", "between-jobs", "before-complete", "during-dbt")


def armed(point: str) -> bool:
    return os.environ.get(FAULT_ENV, "").split(":")[0] == point


def fault_point(point: str) -> None:
    """Die here when COURIER_FAULT names `point`."""
    if armed(point):
        die()


def die() -> None:
    """SIGKILL this process, or SIGTERM when the fault says `:TERM`, or SIGSTOP when it says `:STOP`."""
    action = os.environ.get(FAULT_ENV, "").rpartition(":")[2]
    os.kill(os.getpid(), {"TERM": signal.SIGTERM, "STOP": signal.SIGSTOP}.get(action, signal.SIGKILL))


def arm_load_faults() -> None:
    """Wrap dlt's load step for the fault points inside it (a no-op unless one of them is named)."""
    if armed("between-jobs"):
        from dlt.common.destination.client import RunnableLoadJob

        run_managed = RunnableLoadJob.run_managed

        done = []

        def run_then_die(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            result = run_managed(self, *args, **kwargs)
            if not self.load_table_name.startswith("_dlt") and not done:
                done.append(True)  # after the first job only (a stopped run that goes on does not stop again)
                die()
            return result

        RunnableLoadJob.run_managed = run_then_die
    if armed("before-complete"):
        from dlt.load.load import Load

        def die_instead(self, load_id, schema, aborted=False):  # noqa: ANN001, ANN202
            die()

        Load.complete_package = die_instead
