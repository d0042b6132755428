"""Fault points for the crash tests (see tests/faults.py), armed in a process started with COURIER_FAULT set
and this directory on PYTHONPATH: Python imports `sitecustomize` at start-up.

Each point wraps one function when its module is first imported, so nothing is imported earlier than
the courier would import it:

    after-extract      dlt's `Pipeline.normalize`: stop before it runs
    after-normalize    dlt's `Pipeline.load`: stop before it runs
    between-jobs       dlt's `RunnableLoadJob.run_managed`: stop after the first raw table job ran
    before-complete    dlt's `Load.complete_package`: stop instead of recording the load
    before-build       the courier's `runs.run._apply_operations`: stop before it runs
    during-dbt         dbt's `dbtRunner`: a callback stops the courier and dbt when dbt's statement writes
                       `built_files` (the domain model records what it built, in its transaction)
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import signal
import sys

FAULT = os.environ.get("COURIER_FAULT", "")
POINT, _, ACTION = FAULT.partition(":")


def die() -> None:
    """SIGKILL this process, or SIGTERM when the fault says `:TERM`, or SIGSTOP when it says `:STOP`."""
    os.kill(os.getpid(), {"TERM": signal.SIGTERM, "STOP": signal.SIGSTOP}.get(ACTION, signal.SIGKILL))


def _stop_before(owner: type, name: str) -> None:
    original = getattr(owner, name)

    def stopped_first(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        die()
        return original(*args, **kwargs)

    setattr(owner, name, stopped_first)


def _after_extract(module) -> None:  # noqa: ANN001 - dlt.pipeline.pipeline
    _stop_before(module.Pipeline, "normalize")


def _after_normalize(module) -> None:  # noqa: ANN001 - dlt.pipeline.pipeline
    _stop_before(module.Pipeline, "load")


def _between_jobs(module) -> None:  # noqa: ANN001 - dlt.common.destination.client
    run_managed = module.RunnableLoadJob.run_managed
    done = []

    def run_then_die(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        result = run_managed(self, *args, **kwargs)
        if not self.load_table_name.startswith("_dlt") and not done:
            done.append(True)  # after the first job only (a stopped run that goes on does not stop again)
            die()
        return result

    module.RunnableLoadJob.run_managed = run_then_die


def _before_complete(module) -> None:  # noqa: ANN001 - dlt.load.load
    def die_instead(self, load_id, schema, aborted=False):  # noqa: ANN001, ANN202
        die()

    module.Load.complete_package = die_instead


def _before_build(module) -> None:  # noqa: ANN001 - optimizely_courier.runs.run
    original = module._apply_operations

    def stopped_first(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        die()
        return original(*args, **kwargs)

    module._apply_operations = stopped_first


def _during_dbt(module) -> None:  # noqa: ANN001 - dbt.cli.main
    from optimizely_courier.compat import executed_sql

    def die_in_domain_transaction(event) -> None:  # noqa: ANN001 - a dbt EventMsg
        sql = (executed_sql(event) or "").lower()
        if "insert into" in sql and "built_files" in sql:
            os.kill(os.getppid(), signal.SIGKILL)  # the courier that runs this dbt
            die()

    runner = module.dbtRunner
    init = runner.__init__

    def with_fault(self, manifest=None, callbacks=None):  # noqa: ANN001, ANN202
        init(self, manifest=manifest, callbacks=[*(callbacks or []), die_in_domain_transaction])

    runner.__init__ = with_fault


# point -> (the module whose import arms it, what is wrapped there)
PATCHES = {
    "after-extract": ("dlt.pipeline.pipeline", _after_extract),
    "after-normalize": ("dlt.pipeline.pipeline", _after_normalize),
    "between-jobs": ("dlt.common.destination.client", _between_jobs),
    "before-complete": ("dlt.load.load", _before_complete),
    "before-build": ("optimizely_courier.runs.run", _before_build),
    "during-dbt": ("dbt.cli.main", _during_dbt),
}


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Runs `patch(module)` right after `name` is first imported."""

    def __init__(self, name: str, patch) -> None:  # noqa: ANN001
        self.name, self.patch = name, patch

    def find_spec(self, fullname, path, target=None):  # noqa: ANN001, ANN201
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once; and the search below goes on without it
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module, patch = spec.loader.exec_module, self.patch

        def exec_then_patch(module) -> None:  # noqa: ANN001
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_then_patch
        return spec


if POINT:
    if POINT not in PATCHES:
        raise SystemExit(f"COURIER_FAULT: unknown fault point {POINT!r} (known: {', '.join(PATCHES)})")
    sys.meta_path.insert(0, _PatchOnImport(*PATCHES[POINT]))
