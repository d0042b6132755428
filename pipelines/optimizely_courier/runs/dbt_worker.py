"""The dbt child process (see `build.DbtProcess`):
`python -m optimizely_courier.runs.dbt_worker '<paths as JSON>'`.

It imports dbt and parses the project right away, then reads one line from stdin: the arguments of
one dbt command as a JSON list (an empty line ends it without running anything). Its exit code is
dbt's: 0 success, 1 failure, 2 an error before dbt could run.

With `COURIER_FAULT=during-dbt`, it kills its parent and itself inside the first domain model's
transaction, after the table was written and before the build is recorded and committed.
"""

from __future__ import annotations

import json
import os
import sys
import threading

from optimizely_courier import faults


def _die_in_domain_transaction(event) -> None:  # noqa: ANN001 - a dbt EventMsg
    """A dbt callback: die just before a domain model's post-hook records what it built."""
    sql = event.data.sql.lower() if event.info.name == "SQLQuery" else ""
    if "insert into" in sql and "built_files" in sql:
        os.kill(os.getppid(), 9)
        faults.die()


NODE_LINE = "::courier-node::"
# dbt finishes nodes on several threads at once (`threads` in profiles.yml): one whole line at a time
_STDOUT = threading.Lock()


def _send(line: dict) -> None:
    with _STDOUT:
        sys.stdout.write(NODE_LINE + json.dumps(line) + "\n")
        sys.stdout.flush()


def _report_node(event) -> None:  # noqa: ANN001 - a dbt EventMsg
    """A dbt callback: a line per model or test as it starts and as it finishes, for the courier's progress."""
    if event.info.name not in ("NodeStart", "NodeFinished"):
        return
    try:
        node = event.data.node_info
        line = {"event": "started", "name": node.node_name, "test": node.resource_type == "test"}
        if event.info.name == "NodeFinished":
            result = event.data.run_result
            response = result.adapter_response  # a protobuf Struct: a mapping, not a dict
            rows = response["rows_affected"] if "rows_affected" in response else None
            line.update({"event": "finished", "status": result.status, "seconds": result.execution_time,
                         "rows": int(rows) if rows is not None else None})
    except Exception:  # noqa: BLE001 - progress must never fail a build (dbt turns it into a node error)
        return
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
    tags = {s.removeprefix("tag:") for s in selectors}
    return sum(1 for node in manifest.nodes.values()
               if node.resource_type == "model" and tags & set(node.tags))


def main(paths: list[str]) -> int:
    from dbt.cli.main import dbtRunner

    # (the parse writes manifest.json: skipping it only moves the cost to the command's end, where
    # dbt serializes a manifest for the first time in the process, which is the slow one)
    parsed = dbtRunner().invoke(["parse", *paths, "--quiet"])
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    args = json.loads(line)
    callbacks = [_report_node] + ([_die_in_domain_transaction] if faults.armed("during-dbt") else [])
    # the project was parsed above: reuse it (a parse that failed is left for the command to report)
    manifest = parsed.result if parsed.success else None
    models = _selected_models(manifest, args)
    if models is not None:
        _send({"event": "selected", "models": models})
    runner = dbtRunner(manifest=manifest, callbacks=callbacks)
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

    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager

        if DuckDBConnectionManager._ENV is not None:  # the one database dbt-duckdb keeps open
            DuckDBConnectionManager._ENV.close()
    except ImportError:  # another adapter: its connections die with the process
        pass
    multiprocessing.util._exit_function()  # what atexit would run: semaphores and pools
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    _exit_now(main(json.loads(sys.argv[1])))
