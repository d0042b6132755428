"""An emulated Snowflake on loopback: fakesnow's HTTP server (Snowflake's REST protocol over DuckDB), in a
process of its own, that the unmodified Snowflake connector talks to: dlt's `snowflake` destination in the
courier and dbt-snowflake in its dbt process, as they would talk to an account.

fakesnow 0.12 lacks a few things of Snowflake's SQL that dlt's loads and the shipped models use. They are
closed here, in the emulator, each rewriting what Snowflake accepts into what fakesnow runs (the courier
sends Snowflake's SQL, unchanged; docs/engines.md lists these):
- `PUT 'file://…' '@stage/path'`: a quoted stage location (dlt quotes it) is not taken as a stage;
- `FILE_FORMAT = (TYPE = 'PARQUET', BINARY_AS_TEXT = FALSE, …)`: options separated by commas;
- `MATCH_BY_COLUMN_NAME = 'CASE_INSENSITIVE'`: the value quoted;
- `create temporary table db.schema.t`: DuckDB keeps temporary tables in one catalog of their own
  (dbt-snowflake's incremental models stage their rows so): made an ordinary table;
- `filter(<variant array>, x -> …)`: FILTER over a VARIANT holding an array;
- `to_timestamp_tz(<number>)`: seconds since the epoch.

    python tests/snowflake_emulator.py <port>    # serves until killed
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

DATABASE = "OPTIMIZELY"
USER, PASSWORD, ACCOUNT = "fake", "snow", "fakesnow"


def _close_parse_gaps(node):  # noqa: ANN001, ANN202 - sqlglot expressions
    """Snowflake syntax fakesnow's statement handlers do not take, rewritten as they take it."""
    from sqlglot import exp

    if isinstance(node, exp.Put):
        target = node.args["target"].text("this")
        if len(target) > 1 and target[0] == target[-1] == "'":
            node.set("target", exp.Var(this=target[1:-1]))
    if isinstance(node, exp.SequenceProperties) and not any(node.args.values()):
        return None  # what sqlglot leaves for the comma between two FILE_FORMAT options
    if (isinstance(node, exp.CopyParameter) and node.this.name.upper() == "MATCH_BY_COLUMN_NAME"
            and isinstance(node.expression, exp.Literal)):
        node.set("expression", exp.Var(this=node.expression.name))
    if (isinstance(node, exp.TemporaryProperty) and isinstance(node.parent, exp.Properties)
            and isinstance(node.parent.parent, exp.Create) and node.parent.parent.this.find(exp.Table).catalog):
        return None
    return node


def _close_duckdb_gaps(node):  # noqa: ANN001, ANN202 - sqlglot expressions
    """Snowflake functions fakesnow passes to DuckDB as they are, written as DuckDB runs them."""
    from sqlglot import exp

    if isinstance(node, exp.ArrayFilter) and not isinstance(node.parent, exp.Cast):
        # VARIANT is DuckDB's JSON: filter it as a list of JSON values, and give JSON back
        node.set("this", exp.Cast(this=node.this, to=exp.DataType.build("JSON[]", dialect="duckdb")))
        return exp.Cast(this=node.copy(), to=exp.DataType.build("JSON", dialect="duckdb"))
    if isinstance(node, exp.Anonymous) and node.name.upper() == "TO_TIMESTAMP_TZ" and len(node.expressions) == 1:
        return exp.func("to_timestamp", node.expressions[0])
    return node


def _serve(port: int) -> None:
    import fakesnow
    import fakesnow.cursor

    parse_one = fakesnow.cursor.parse_one
    fakesnow.cursor.parse_one = lambda sql: parse_one(sql).transform(_close_parse_gaps, copy=False)
    transform = fakesnow.cursor.FakeSnowflakeCursor._transform
    fakesnow.cursor.FakeSnowflakeCursor._transform = (
        lambda cursor, expression, params: transform(cursor, expression, params).transform(_close_duckdb_gaps,
                                                                                            copy=False))
    with fakesnow.server(port=port):  # one in-memory database, shared by every session
        threading.Event().wait()


class SnowflakeEmulator:
    """The emulator in a child process on 127.0.0.1 and a free port, for a `with` block.

    Example:
        with SnowflakeEmulator(tmp_path / "log") as snowflake:
            monkeypatch.setenv(...snowflake.environment())
    """

    def __init__(self, log: Path):
        self.log = log
        self.port = 0
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> SnowflakeEmulator:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        with self.log.open("w") as log:
            self._process = subprocess.Popen([sys.executable, __file__, str(self.port)], stdout=log,
                                             stderr=subprocess.STDOUT)
        self._wait_listening(deadline=time.monotonic() + 60)
        return self

    def _wait_listening(self, deadline: float) -> None:
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"the Snowflake emulator exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the Snowflake emulator is not listening: {self.log.read_text()[-2000:]}") \
                        from exc
                time.sleep(0.1)

    def __exit__(self, *exc: Any) -> None:
        self._process.kill()
        self._process.wait()

    def environment(self) -> dict[str, str]:
        """What points dlt's destination and the shipped `snowflake` dbt output at the emulator."""
        endpoint = {"host": "127.0.0.1", "port": str(self.port), "protocol": "http"}
        query = "&".join(f"{key}={value}" for key, value in {"warehouse": "LOADING", **endpoint}.items())
        return {
            "DESTINATION__SNOWFLAKE__CREDENTIALS": f"snowflake://{USER}:{PASSWORD}@{ACCOUNT}/{DATABASE}?{query}",
            "SNOWFLAKE_ACCOUNT": ACCOUNT, "SNOWFLAKE_USER": USER, "SNOWFLAKE_PASSWORD": PASSWORD,
            "SNOWFLAKE_DATABASE": DATABASE, "SNOWFLAKE_HOST": endpoint["host"], "SNOWFLAKE_PORT": endpoint["port"],
            "SNOWFLAKE_PROTOCOL": endpoint["protocol"],
        }

    def connect(self):  # noqa: ANN201 - a snowflake.connector connection
        import snowflake.connector

        return snowflake.connector.connect(user=USER, password=PASSWORD, account=ACCOUNT, database=DATABASE,
                                           host="127.0.0.1", port=self.port, protocol="http")


if __name__ == "__main__":
    os.environ.setdefault("DO_NOT_TRACK", "1")
    _serve(int(sys.argv[1]))
