"""Scale-out: the shipped feeds built by a real Spark (dbt-spark in session mode, local pyspark) from
raw Parquet the courier landed in a lake equal the DuckDB build, row for row."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from optimizely_courier.dev.generate import E3Spec, generate
from tests.conftest import DBT_FILES, ROOT, query, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.scaleout,
              pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java (a JVM) on PATH")]

SOURCES = """{warehouse}couriers:
  optimizely:
    local_path: mirror
    prefix: v1/account_id=12345
    entities:
      - object/file-pattern: "'type=decisions/date='yyyy-MM-dd'/experiment=*/'"
        object/ready-marker: "'type=decisions/date='yyyy-MM-dd'/_SUCCESS'"
        object/land-as: {{file/tag: decisions}}
      - object/file-pattern: "'type=events/date='yyyy-MM-dd'/event=*/'"
        object/ready-marker: "'type=events/date='yyyy-MM-dd'/_SUCCESS'"
        object/land-as: {{file/tag: conversions}}
    load_operations:
      df-7k2m9q: [{{type: load, file: decisions}}]
      df-3p8x1w: [{{type: load, file: conversions}}]
"""
TABLES = {"Optimizely:Decisions": "optimizely__decisions", "Optimizely:Conversions": "optimizely__conversions"}
# _load_id and _updated name the landing run, which differs between the two projects by design.
SKIP = ("_load_id", "_updated")


def _project(root: Path, mirror: Path, warehouse: str) -> Path:
    root.mkdir()
    shutil.copytree(mirror, root / "mirror")
    (root / "sources.yml").write_text(SOURCES.format(warehouse=warehouse))
    for name in (*DBT_FILES, "feeds", "models"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, root / name)
    return root


def _normal(value):  # noqa: ANN001
    if isinstance(value, dt.datetime):  # DuckDB gives aware UTC values, Spark's Parquet naive UTC ones
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    return str(value) if value.__class__.__name__ == "UUID" else value


def _rows(sql: str, database: Path | None = None) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(database) if database else ":memory:", read_only=bool(database)) as db:
        return sorted(tuple(_normal(v) for v in row) for row in db.execute(sql).fetchall())


def _assert_spark_build_equals_duckdb_build(tmp_path: Path) -> None:
    mirror = tmp_path / "e3" / "v1" / "account_id=12345"
    generate(E3Spec(days=2, experiments=2, events=("purchase", "add:cart", "NULL"), rows=600, seed=3), mirror)
    duck = _project(tmp_path / "duck", tmp_path / "e3", "")
    spark = _project(tmp_path / "spark", tmp_path / "e3", "warehouse: {type: spark, lake: lake}\n")
    for root in (duck, spark):  # each run lands, then builds the feeds from this run's files
        landed = run_cli(root, "run", "optimizely", "--all")
        assert landed.exit_code == 0, landed.output
    assert (spark / "lake" / "raw_optimizely" / "decisions").is_dir()

    for table, folder in TABLES.items():
        columns = [name for (name,) in query(duck, "select column_name from information_schema.columns where "
                                                   f"table_schema = 'domain' and table_name = '{table}' "
                                                   "order by ordinal_position") if name not in SKIP]
        selected = ", ".join(f'"{c}"' for c in columns)
        expected = _rows(f'select {selected} from domain."{table}"', duck / "warehouse.duckdb")
        parquet = spark / ".courier/spark/warehouse/domain.db" / folder
        actual = _rows(f"select {selected} from read_parquet('{parquet}/*.parquet')")
        assert len(expected) == 1200
        assert actual == expected, table


def test_spark_builds_the_shipped_feeds_equal_to_the_duckdb_build_row_for_row(tmp_path):
    _assert_spark_build_equals_duckdb_build(tmp_path)

    # history stays local on every engine; explore and status say where the tables are instead
    spark = tmp_path / "spark"
    assert run_cli(spark, "history").output.split()[1:3] == ["success", "optimizely"]
    explore = run_cli(spark, "explore", "Optimizely:Decisions")
    assert explore.exit_code == 1
    assert "this project's tables are on spark: query them with its own tools" in explore.output
    assert "on spark: landed and built data are not read here" in run_cli(spark, "status").output


def test_spark_cluster_builds_the_shipped_feeds_equal_to_the_duckdb_build_row_for_row(tmp_path, monkeypatch):
    from tests.spark_cluster import SparkCluster

    with SparkCluster(tmp_path / "cluster", workers=2) as cluster:
        monkeypatch.setenv("COURIER_SPARK_MASTER", cluster.url)
        _assert_spark_build_equals_duckdb_build(tmp_path)
        # the domain tables were built by executors: JVMs each worker started, not the driver
        for worker in ("worker0", "worker1"):
            assert "Asked to launch executor" in cluster.log(worker), cluster.log(worker)
