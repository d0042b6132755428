"""Compile-only checks for the cloud warehouses that cannot run here: the shipped feeds (and a feed
using every compiler feature) compile with the Snowflake and BigQuery adapters, and every compiled
model parses in that engine's SQL dialect."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sqlglot

from optimizely_courier.config.sources import load_project
from optimizely_courier.runs.build import run_dbt
from tests.conftest import ROOT, copy_dbt_files, run_cli

pytestmark = pytest.mark.slow
COMPILE_ONLY = {"courier_compile_only": True}
NO_CONNECTION = ["--no-introspect", "--no-populate-cache"]
SOURCES = """warehouse: {{type: {engine}}}
couriers:
  optimizely:
    local_path: mirror
    entities:
      - object/file-pattern: "'type=decisions/date='yyyy-MM-dd'/experiment=*/'"
        object/land-as: {{file/tag: decisions}}
      - object/file-pattern: "'type=events/date='yyyy-MM-dd'/event=*/'"
        object/land-as: {{file/tag: conversions}}
"""


def _fake_service_account(path: Path) -> None:
    """A syntactically valid key: dbt-bigquery builds credentials from it without ever calling Google."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({"type": "service_account", "project_id": "compile-only", "private_key_id": "0",
                                "private_key": pem, "client_email": "compile@compile-only.iam.gserviceaccount.com",
                                "client_id": "0", "token_uri": "https://oauth2.googleapis.com/token"}))


def _compile(tmp_path: Path, engine: str) -> Path:
    root = tmp_path / engine
    root.mkdir()
    (root / "mirror").mkdir()
    (root / "sources.yml").write_text(SOURCES.format(engine=engine))
    copy_dbt_files(root, "feeds")
    everything = (ROOT / "tests/fixtures/feeds/shop/everything.yml").read_text()
    (root / "feeds/optimizely/everything.yml").write_text(
        everything.replace("courier: shop", "courier: optimizely").replace("tag: orders", "tag: decisions"))
    # the lab's experiment: its seed's text times are read with the engine's own parser
    shutil.copytree(ROOT / "examples/lab-metrics/experiments", root / "experiments")
    shutil.copytree(ROOT / "examples/lab-metrics/seeds", root / "seeds")
    assert run_cli(root, "feeds", "compile").exit_code == 0
    run_dbt(load_project(root), "compile", variables=COMPILE_ONLY, extra=NO_CONNECTION)
    return root / "target" / "compiled" / "optimizely_courier" / "models"


def _parse_all(compiled: Path, dialect: str) -> dict[str, str]:
    sql = {p.name: p.read_text() for p in sorted(compiled.rglob("*.sql"))}
    for text in sql.values():
        sqlglot.parse(text, read=dialect)  # raises on SQL the engine would not accept
    return sql


def test_feeds_compile_for_snowflake_and_the_sql_parses(tmp_path):
    sql = _parse_all(_compile(tmp_path, "snowflake"), "snowflake")
    assert len(sql) >= 20
    assert "lateral flatten(input =>" in sql["stg_shop__everything.sql"]
    assert "json_extract_string" not in "".join(sql.values())
    # dlt's Snowflake columns are upper case, and a quoted name keeps its case there
    assert '"TIMESTAMP" as _src__decided_at' in sql["stg_optimizely__decisions.sql"]
    assert ("convert_timezone('UTC', 'UTC', to_timestamp_ntz(cast(attributed.call_start as varchar),\n"
            "    'MM/DD/YYYY HH24:MI:SS'))") in sql["exp_lab_metrics__observations.sql"]


def test_feeds_compile_for_bigquery_and_the_sql_parses(tmp_path, monkeypatch):
    key = tmp_path / "service-account.json"
    _fake_service_account(key)
    monkeypatch.setenv("BIGQUERY_METHOD", "service-account")
    monkeypatch.setenv("BIGQUERY_KEYFILE", str(key))
    sql = _parse_all(_compile(tmp_path, "bigquery"), "bigquery")
    assert "cross join unnest(json_query_array(" in sql["stg_shop__everything.sql"]
    assert "safe_cast(" in sql["stg_optimizely__decisions.sql"]
    assert ("parse_timestamp('%m/%d/%Y %H:%M:%S', cast(attributed.call_start as string), 'UTC')"
            in sql["exp_lab_metrics__observations.sql"])


def test_the_parse_check_rejects_sql_written_for_another_engine(tmp_path):
    duckdb_sql = _compile(tmp_path, "duckdb") / "staging" / "optimizely" / "stg_optimizely__decisions.sql"
    with pytest.raises(sqlglot.errors.ParseError):
        sqlglot.parse(duckdb_sql.read_text(), read="snowflake")
