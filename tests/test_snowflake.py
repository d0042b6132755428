"""Scale-out: the whole flow on an emulated Snowflake (tests/snowflake_emulator.py, fakesnow's server on
loopback). The courier lands through dlt's `snowflake` destination and dbt-snowflake builds the shipped
feeds; the domain tables equal the DuckDB build row for row, a later day is upserted incrementally, and
what is landed is read back from Snowflake's own record tables, so nothing lands twice."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from optimizely_courier.config.sources import load_project
from optimizely_courier.dev.generate import E3Spec, generate
from optimizely_courier.runs.build import run_dbt
from tests.conftest import landed, query, run_cli
from tests.equivalence import EXPERIMENT, RESULTS, SKIP, TABLES, normal, project, rounded, rows
from tests.snowflake_emulator import SnowflakeEmulator

DAYS = [dt.date(2026, 11, 25) + dt.timedelta(days=n) for n in range(3)]


@pytest.fixture
def snowflake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SnowflakeEmulator:
    with SnowflakeEmulator(tmp_path / "snowflake.log") as emulator:
        for name, value in emulator.environment().items():
            monkeypatch.setenv(name, value)
        yield emulator


def _snowflake_rows(snowflake: SnowflakeEmulator, sql: str) -> list[tuple]:
    with snowflake.connect() as connection:
        return sorted(tuple(normal(v) for v in row) for row in connection.cursor().execute(sql).fetchall())


def _assert_domain_tables_equal(duck: Path, snowflake: SnowflakeEmulator, rows_each: int) -> None:
    for table in TABLES:
        columns = [name for (name,) in query(duck, "select column_name from information_schema.columns where "
                                                   f"table_schema = 'domain' and table_name = '{table}' "
                                                   "order by ordinal_position") if name not in SKIP]
        quoted = ", ".join(f'"{name}"' for name in columns)
        expected = rows(f'select {quoted} from domain."{table}"', duck / "warehouse.duckdb")
        # Snowflake keeps the quoted table name's case; the unquoted column names resolve to upper case
        actual = _snowflake_rows(snowflake, f'select {", ".join(columns)} from domain."{table}"')
        assert (len(expected), len(actual)) == (rows_each, rows_each), table
        differing = next(((column, want, got) for mine, theirs in zip(actual, expected, strict=False) if mine != theirs
                          for column, got, want in zip(columns, mine, theirs, strict=True) if got != want), None)
        assert actual == expected, f"{table}: first differing column (name, DuckDB, Snowflake): {differing}"


def _run(root: Path, *dates: str) -> str:
    result = run_cli(root, "run", "optimizely", *dates)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.long  # slow end to end: make scaleout (CI), for make test's 10 minutes
def test_snowflake_lands_and_builds_the_shipped_feeds_equal_to_the_duckdb_build_row_for_row(tmp_path, snowflake):
    mirror = tmp_path / "e3" / "v1" / "account_id=12345"
    generate(E3Spec(start=DAYS[0], days=3, experiments=2, events=("purchase", "add:cart", "NULL"), rows=400,
                    seed=3), mirror)
    duck = project(tmp_path / "duck", tmp_path / "e3", "")
    snow = project(tmp_path / "snow", tmp_path / "e3", "warehouse: {type: snowflake}\n")
    # an experiment with caps, built by the plain build; each of this export's 66 visitors is decided into
    # both variations, so they count in their first (Spark's test leaves them out)
    for root in (duck, snow):
        (root / "experiments").mkdir(exist_ok=True)
        (root / "experiments" / "generated.yml").write_text(EXPERIMENT.replace("metrics:", "multiple_exposures: "
                                                                                           "first\nmetrics:"))
        assert run_cli(root, "feeds", "compile").exit_code == 0
    _run(duck, "--all")

    _run(snow, "--from", str(DAYS[0]), "--to", str(DAYS[2]))  # the end is exclusive
    # the third day onto the first two: an incremental upsert (dbt-snowflake's delete+insert)
    third_day = _run(snow, "--date", str(DAYS[2]))
    assert landed(third_day, "decisions") == (2, 400, 0)
    _assert_domain_tables_equal(duck, snowflake, rows_each=1200)

    # what is landed is read from the record tables in Snowflake: nothing lands twice
    again = _run(snow, "--all")
    assert landed(again, "decisions") == (0, 0, 6)
    assert landed(again, "conversions")[:2] == (0, 0)
    assert _snowflake_rows(snowflake, "select count(*) from raw_optimizely.decisions") == [(1200,)]
    _assert_domain_tables_equal(duck, snowflake, rows_each=1200)

    # a plain `dbt build` there, as a user runs it: the whole-table key tests pass, the tables stay
    build = subprocess.run([str(Path(sys.executable).parent / "dbt"), "build", "--quiet"], cwd=snow, text=True,
                           capture_output=True, env={**os.environ, "COURIER_TARGET": "snowflake"}, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    _assert_domain_tables_equal(duck, snowflake, rows_each=1200)
    # the experiment's results: the same statistics as DuckDB's, capped alike
    run_dbt(load_project(duck), "build", select=["tag:generated"])
    expected = [rounded(row) for row in rows(f"select {RESULTS} from experiments.exp_generated__results",
                                             duck / "warehouse.duckdb")]
    assert len(expected) >= 8 and {row[3]: row[10] for row in expected}["carts"] == 2.0
    assert [rounded(row) for row in _snowflake_rows(snowflake, f"select {RESULTS} from "
                                                               "experiments.exp_generated__results")] == expected

    # history stays local; explore says where the tables are
    assert run_cli(snow, "history").output.split()[1:3] == ["success", "optimizely"]
    explore = run_cli(snow, "explore", "Optimizely:Decisions")
    assert explore.exit_code == 1
    assert "this project's tables are on snowflake: query them with its own tools" in explore.output


def test_snowflake_without_credentials_is_one_line_naming_what_to_set(tmp_path, snowflake, monkeypatch):
    mirror = tmp_path / "e3" / "v1" / "account_id=12345"
    generate(E3Spec(start=DAYS[0], days=1, experiments=1, rows=10, seed=3), mirror)
    snow = project(tmp_path / "snow", tmp_path / "e3", "warehouse: {type: snowflake}\n")
    monkeypatch.delenv("DESTINATION__SNOWFLAKE__CREDENTIALS")

    result = run_cli(snow, "run", "optimizely", "--all")

    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert ("Error: warehouse snowflake: dlt found no credentials for its snowflake destination: set them in "
            ".dlt/secrets.toml ([destination.snowflake.credentials]) or in the environment "
            "(DESTINATION__SNOWFLAKE__CREDENTIALS)") in result.output
