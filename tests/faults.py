"""Fault points for the crash tests: a `courier` process started with `fault_env(point)` kills itself (SIGKILL)
at that point; `<point>:TERM` sends SIGTERM instead (a polite stop, as a scheduler's would be), and
`<point>:STOP` stops it (SIGSTOP) until a SIGCONT, holding whatever it holds there (a test looks at a run
in progress, or changes the world under it, then lets it go on).

The crash tests use them instead of a timed kill, so each fault happens exactly where it is named, every
time. The package knows nothing of them: `fault_env` puts `tests/fault_site` on the process's PYTHONPATH,
whose `sitecustomize` wraps the dlt, dbt and courier functions at the named point when their modules are
imported (see it for how each point is reached).

    after-extract      the load package is extracted, not normalized
    after-normalize    the package is normalized, no job has run
    between-jobs       the first raw table job has committed, the others have not run
    before-complete    every job has committed; dlt has not recorded the load in `_dlt_loads`
    before-build       landing has committed; the run has not started to build
    during-dbt         dbt is inside the domain model's transaction (it kills the courier too)
"""

from __future__ import annotations

import os
from pathlib import Path

FAULT_ENV = "COURIER_FAULT"
# The crash points the recovery tests kill runs at (a kill at `before-build` is a run that landed only).
POINTS = ("after-extract", "after-normalize", "between-jobs", "before-complete", "during-dbt")
SITE_DIR = Path(__file__).parent / "fault_site"


def fault_env(fault: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's environment) for a process that faults at `fault` (`<point>[:ACTION]`)."""
    env = dict(os.environ if env is None else env)
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = os.pathsep.join([str(SITE_DIR), *([path] if path else [])])
    env[FAULT_ENV] = fault
    return env
