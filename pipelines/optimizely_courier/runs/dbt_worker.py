"""The dbt child process (see `build.DbtProcess`):
`python -m optimizely_courier.runs.dbt_worker '<paths as JSON>'`.

It imports dbt and parses the project right away, then reads one line from stdin: the arguments of
one dbt command as a JSON list (an empty line ends it without running anything). Its exit code is
dbt's: 0 success, 1 failure, 2 an error before dbt could run. What it reads of dbt's events and
objects goes through `optimizely_courier.compat`.
"""

from __future__ import annotations

import json
import os
import sys
import threading

from optimizely_courier import compat

NODE_LINE = "::courier-node::"
# dbt finishes nodes on several threads at once (`threads` in profiles.yml): one whole line at a time
_STDOUT = threading.Lock()


def _send(line: dict) -> None:
    with _STDOUT:
        sys.stdout.write(NODE_LINE + json.dumps(line) + "\n")
        sys.stdout.flush()


def _report_node(event) -> None:  # noqa: ANN001 - a dbt EventMsg
    """A dbt callback: a line per model or test as it starts and as it finishes, for the courier's progress."""
    try:
        line = compat.node_progress(event)
    except Exception:  # noqa: BLE001 - progress must never fail a build (dbt turns it into a node error)
        return
    if line is not None:
        _send(line)


def _selected_models(manifest, args: list[str]) -> int | None:  # noqa: ANN001 - a dbt Manifest
    """How many models a command selecting only by tags (`--select tag:a tag:b`, as the courier's builds do)
    will run; None for any other selection, or without a parsed project."""
    if manifest is None or "--select" not in args:
        return None
    selectors = []
    for arg in args[args.index("--select") + 1:]:
        if arg.startswith("--"):
            break
        selectors.append(arg)
    if not selectors or not all(s.startswith("tag:") for s in selectors):
        return None
    return compat.models_tagged(manifest, {s.removeprefix("tag:") for s in selectors})


def main(paths: list[str]) -> int:
    from dbt.cli.main import dbtRunner

    # (the parse writes manifest.json: skipping it only moves the cost to the command's end, where
    # dbt serializes a manifest for the first time in the process, which is the slow one)
    parsed = dbtRunner().invoke(["parse", *paths, "--quiet"])
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    args = json.loads(line)
    # the project was parsed above: reuse it (a parse that failed is left for the command to report)
    manifest = parsed.result if parsed.success else None
    models = _selected_models(manifest, args)
    if models is not None:
        _send({"event": "selected", "models": models})
    runner = dbtRunner(manifest=manifest, callbacks=[_report_node])
    result = runner.invoke(args)
    if result.exception is not None:
        print(f"{type(result.exception).__name__}: {result.exception}")
        return 2
    return 0 if result.success else 1


def _exit_now(code: int) -> None:
    """End the process without the interpreter's teardown of dbt's modules (about half a second the
    courier would wait for): the warehouse is closed first (DuckDB checkpoints it), then logs and
    multiprocessing's resources are released as a normal exit would."""
    import logging
    import multiprocessing.util

    compat.close_duckdb()  # another adapter's connections die with the process
    multiprocessing.util._exit_function()  # what atexit would run: semaphores and pools
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main(json.loads(sys.argv[1])))
