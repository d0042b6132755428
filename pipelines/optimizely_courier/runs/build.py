"""Building domain tables: dbt run on the project in a child process, selected by feed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from optimizely_courier.compat import NodeFailure, console_cause, read_run_results, require_dbt
from optimizely_courier.config.sources import Project
from optimizely_courier.errors import BuildError, ThresholdExceeded
from optimizely_courier.extras import require_extra
from optimizely_courier.runs.dbt_worker import NODE_LINE
from optimizely_courier.runs.lock import wait_until_writable
from optimizely_courier.settings import (
    DBT_LOG_DIR,
    DBT_TARGET_DIR,
    LAKE_ENV,
    SPARK_DIR,
    SPARK_DIR_ENV,
    TARGET_ENV,
    WAREHOUSE_ENV,
    WAREHOUSE_FILE,
)


@dataclass
class BuildResult:
    """What a dbt invocation did: dbt's own output, and its invocation id (the record's key)."""

    output: str = ""
    invocation_id: str | None = None


class DbtProcess:
    """dbt in a child process of its own, started ahead of need.

    It imports dbt and parses the project (seconds) while the courier lands, then waits for one
    command. dbt runs apart from the courier because dbt-duckdb keeps its database open for the
    life of its process, and DuckDB allows one writer per file: the courier's own process must not
    hold the warehouse while dbt builds. The child dies with the courier (kill -9 included).
    """

    def __init__(self, project: Project):
        self.project = project
        root = project.root
        self.paths = ["--project-dir", str(root), "--profiles-dir", str(root), "--log-path", str(root / DBT_LOG_DIR),
                      "--target-path", str(root / DBT_TARGET_DIR)]
        worker = [sys.executable, "-m", "optimizely_courier.runs.dbt_worker", json.dumps(self.paths)]
        self.process = subprocess.Popen(worker,
                                        cwd=root, env=dbt_environment(project), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        preexec_fn=_die_with_parent)

    def run(self, command: str, select: Sequence[str] = (), variables: dict | None = None,
            extra: Sequence[str] = (), on_node: Callable[[dict], None] | None = None,
            lock_timeout: float = 0.0, on_wait: Callable[[str], None] | None = None) -> BuildResult:
        """Run one dbt command (`build`, `run`, `docs generate`, ...) and end the process.

        Args:
            on_node: called with dbt's progress: `{"event": "selected", "models": N}` first when the
                selection is by tags, then as each model or test starts (`started`: its name) and
                finishes (`finished`: its name, status, seconds and rows).
            lock_timeout: how long to wait, first, for another process that has the DuckDB warehouse open.
            on_wait: told who has it, when that wait begins.

        Raises:
            BuildError: naming the first failing model or test and dbt's message (ThresholdExceeded for a
                feed over its error threshold).
            UnsupportedVersion: dbt-core (or dbt-duckdb) is outside the versions `compat` supports.
            WarehouseBusy: the warehouse stayed open in another process for `lock_timeout` seconds.
        """
        args = [*command.split(), *self.paths, "--quiet", *extra]
        if select:
            args += ["--select", *select]
        if variables:
            args += ["--vars", json.dumps(variables)]
        require_extra(self.project.engine)
        require_dbt(self.project.engine)
        results_file = self.project.root / DBT_TARGET_DIR / "run_results.json"
        results_file.unlink(missing_ok=True)
        if self.project.engine == "duckdb":  # dbt-duckdb would fail at once on a file another process has
            wait_until_writable(self.project.warehouse, lock_timeout, on_wait)
        self.process.stdin.write(json.dumps(args) + "\n")
        self.process.stdin.close()
        output = []
        for line in self.process.stdout:
            if line.startswith(NODE_LINE):
                if on_node is not None:
                    on_node(json.loads(line[len(NODE_LINE):]))
            else:
                output.append(line)
        self.process.wait()
        return _result(self.project, command, self.process.returncode, "".join(output), results_file)

    def close(self) -> None:
        """End the process if it was not used (dbt keeps nothing half-written that matters: a partial
        parse file it cannot read makes the next dbt parse in full)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            pipe.close()


def dbt_environment(project: Project) -> dict[str, str]:
    """The environment dbt runs in: what a plain `dbt build` in the project sees, plus only the
    settings that differ from profiles.yml's defaults. (dbt re-parses the whole project when an
    environment variable it read changes, so the courier's runs and the user's keep one parse.)"""
    env = dict(os.environ)
    if project.warehouse != project.root / WAREHOUSE_FILE:
        env[WAREHOUSE_ENV] = str(project.warehouse)
    if project.engine != "duckdb":
        env[TARGET_ENV] = project.engine
    if project.engine == "spark":
        env.update({LAKE_ENV: project.lake or "", SPARK_DIR_ENV: str(project.root / SPARK_DIR)})
    return env


def run_dbt(project: Project, command: str, select: Sequence[str] = (), variables: dict | None = None,
            extra: Sequence[str] = ()) -> BuildResult:
    """Run one dbt command in the project, in a new dbt process (see `DbtProcess`)."""
    return DbtProcess(project).run(command, select, variables, extra)


def _result(project: Project, command: str, returncode: int, output: str, results_file: Path) -> BuildResult:
    """What the invocation did; raises the first failure (a feed over its error threshold as ThresholdExceeded)."""
    results = read_run_results(results_file)
    result = BuildResult(output=output, invocation_id=results.invocation_id if results else None)
    failures = results.failures if results else []
    if returncode != 0 or failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        exceeded = _threshold_exceeded(project, f"dbt {command} failed: ", failures[0], more) if failures else None
        if exceeded is not None:
            raise exceeded
        detail = f"{failures[0].name}: {failures[0].message}" if failures else console_cause(result.output)
        raise BuildError(f"dbt {command} failed: {detail}{more}")
    return result


def _threshold_exceeded(project: Project, prefix: str, failure: NodeFailure, more: str) -> ThresholdExceeded | None:
    """The failure as a feed's error threshold exceeded (None when it is not a feed's threshold test): with
    the counts when the warehouse is a DuckDB file (the test's own query, run again now that dbt has let go)."""
    from optimizely_courier.feeds.compile import threshold_test_name
    from optimizely_courier.feeds.feed import load_feeds

    feed = next((feed for feed in load_feeds(project.root) if threshold_test_name(feed) == failure.name), None)
    if feed is None:
        return None
    counts = _threshold_counts(project, failure.compiled_code)
    share = (f"{counts[0]} of {counts[1]} rows rejected ({counts[0] / counts[1]:.2%})" if counts
             else "more rows rejected than it allows")
    rejected, total = counts or (None, None)
    return ThresholdExceeded(f"{prefix}feed {feed.domain_table} ({feed.path}): {share}, over the error threshold of "
                             f"{feed.error_threshold:.2%}; the domain table is unchanged. The reasons are in "
                             f"{feed.domain_table}__rejected{more}",
                             feed.domain_table, feed.error_threshold, rejected, total)


def _threshold_counts(project: Project, compiled_sql: str | None) -> tuple[int, int] | None:
    if project.engine != "duckdb" or not compiled_sql:
        return None
    import duckdb

    try:
        with duckdb.connect(str(project.warehouse), read_only=True) as db:
            row = db.execute(compiled_sql).fetchone()
    except duckdb.Error:
        return None
    return (int(row[0]), int(row[1])) if row and row[1] else None


def _die_with_parent() -> None:
    """In the dbt child: be killed when the courier process dies (kill -9 included), so an orphaned dbt
    never holds the warehouse after the run that started it is gone (Linux; elsewhere a no-op)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def feed_selector(feed_ids: Sequence[str]) -> list[str]:
    """dbt selection of the models of these feeds and their error threshold tests (each is tagged
    with its feed id; run with `--indirect-selection empty`, which leaves the key tests out)."""
    return [f"tag:{feed_id}" for feed_id in feed_ids]

