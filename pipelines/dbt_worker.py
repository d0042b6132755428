"""The dbt child process: `python -m pipelines.dbt_worker <dbt arguments>` runs dbt once.

The courier runs dbt in its own process (see `build.run_dbt`). With `COURIER_FAULT=during-dbt`,
the worker kills its parent and itself inside the first domain model's transaction, after the
table was written and before the build is recorded and committed.
"""

from __future__ import annotations

import os
import sys

from pipelines import faults


def _die_in_domain_transaction(event) -> None:  # noqa: ANN001 - a dbt EventMsg
    """A dbt callback: die just before a domain model's post-hook records what it built."""
    sql = event.data.sql.lower() if event.info.name == "SQLQuery" else ""
    if "insert into" in sql and "built_files" in sql:
        os.kill(os.getppid(), 9)
        faults.die()


def main(args: list[str]) -> int:
    from dbt.cli.main import dbtRunner

    callbacks = [_die_in_domain_transaction] if faults.armed("during-dbt") else []
    result = dbtRunner(callbacks=callbacks).invoke(args)
    if result.exception is not None:
        print(f"{type(result.exception).__name__}: {result.exception}", file=sys.stderr)
        return 2
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
