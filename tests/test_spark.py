"""Scale-out: the shipped feeds built by a real Spark (dbt-spark in session mode, local pyspark) from
raw Parquet the courier landed in a lake equal the DuckDB build, row for row."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from optimizely_courier.config.sources import load_project
from optimizely_courier.dev.generate import E3Spec, generate
from optimizely_courier.runs.build import run_dbt
from tests.conftest import query, run_cli
from tests.equivalence import EXPERIMENT, RESULTS, SKIP, TABLES, project, rounded, rows

DAY1, DAY2, DAY3 = "2026-11-25", "2026-11-26", "2026-11-27"

pytestmark = [pytest.mark.slow, pytest.mark.scaleout,
              pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java (a JVM) on PATH")]


def _assert_spark_build_equals_duckdb_build(tmp_path: Path) -> None:
    """Two runs on each engine: the first lands two days; the second a third day that re-sends every
    decision of the first (a day partition whose rows all move to a newer date) and one events file
    of the second (a partition partly replaced), and leaves the first day's events untouched; then a
    plain `dbt build`."""
    export = tmp_path / "e3" / "v1" / "account_id=12345"
    generate(E3Spec(days=3, experiments=2, events=("purchase", "add:cart", "NULL"), rows=600, seed=3), export)
    later = tmp_path / "later"
    for kind in ("decisions", "events"):
        shutil.move(export / f"type={kind}" / f"date={DAY3}", later / f"type={kind}" / f"date={DAY3}")
    resent = later / "type=decisions" / f"date={DAY3}" / "experiment=resent"
    for index, part in enumerate(sorted((export / "type=decisions" / f"date={DAY1}").glob("*/*.parquet"))):
        resent.mkdir(exist_ok=True)
        shutil.copy(part, resent / f"part-{index:05d}-resent.c000.snappy.parquet")
    (events,) = (export / "type=events" / f"date={DAY2}" / "event=purchase").glob("*.parquet")
    shutil.copytree(events.parent, later / "type=events" / f"date={DAY3}" / "event=resent")

    duck = project(tmp_path / "duck", tmp_path / "e3", "")
    spark = project(tmp_path / "spark", tmp_path / "e3", "warehouse: {type: spark, lake: lake}\n")
    domain = spark / ".courier/spark/warehouse/domain.db"
    for root in (duck, spark):  # each run lands, then builds the feeds from this run's files
        (root / "experiments").mkdir(exist_ok=True)
        (root / "experiments" / "generated.yml").write_text(EXPERIMENT)
        assert run_cli(root, "feeds", "compile").exit_code == 0
        assert run_cli(root, "run", "optimizely", "--all").exit_code == 0
        if root == spark:
            first = _partition_files(domain)
        shutil.copytree(later, root / "mirror" / "v1" / "account_id=12345", dirs_exist_ok=True)
        landed = run_cli(root, "run", "optimizely", "--all")
        assert landed.exit_code == 0, landed.output
        if root == spark:
            second = _partition_files(domain)
        run_dbt(load_project(root), "build")  # a plain build: the experiment, and the feeds with nothing new
    assert (spark / "lake" / "raw_optimizely" / "decisions").is_dir()

    # the second build overwrote only the partitions it touched, and dropped the one it emptied;
    # the plain build rewrote nothing
    assert _partition_files(domain) == second
    decisions, conversions = TABLES.values()
    assert second[conversions, DAY1] == first[conversions, DAY1]
    assert second[conversions, DAY2] != first[conversions, DAY2]
    assert (decisions, DAY1) in first and (decisions, DAY1) not in second

    # the experiment's results: the same statistics on both engines
    results = ".courier/spark/warehouse/experiments.db/exp_generated__results"
    expected = rows(f"select {RESULTS} from experiments.exp_generated__results", duck / "warehouse.duckdb")
    actual = rows(f"select {RESULTS} from read_parquet('{spark / results}/*.parquet')")
    # every variation has units for each of the 4 metrics, and conversions were attributed
    assert len(expected) == 4 * len({row[0] for row in expected}) >= 8
    assert all(row[5] > 0 for row in expected) and any(row[6] > 0 for row in expected if row[3] == "carts")
    assert {row[3]: row[10] for row in expected if row[3] in ("carts", "revenue")}["carts"] == 2.0
    excluded = query(duck, "select count(*) from experiments.exp_generated__observations where is_multiple_exposure")
    assert excluded[0][0] > 0 and sum(row[5] for row in expected if row[3] == "carts") == query(
        duck, "select count(*) from experiments.exp_generated__observations where not is_multiple_exposure")[0][0]
    assert [rounded(row) for row in actual] == [rounded(row) for row in expected]

    for table, folder in TABLES.items():
        columns = [name for (name,) in query(duck, "select column_name from information_schema.columns where "
                                                   f"table_schema = 'domain' and table_name = '{table}' "
                                                   "order by ordinal_position") if name not in SKIP]
        selected = ", ".join(f'"{c}"' for c in columns)
        expected = rows(f'select {selected} from domain."{table}"', duck / "warehouse.duckdb")
        actual = rows(f"select {selected} from read_parquet('{domain / folder}/*/*.parquet', hive_partitioning = true)")
        assert len(expected) == 1800  # three days of 600 keys; the re-sent rows replaced theirs
        assert actual == expected, table


def _partition_files(domain: Path) -> dict[tuple[str, str], set[str]]:
    """The Parquet file names of each (table, date partition) of the Spark domain tables."""
    return {(table.name, partition.name.removeprefix("_file_date=")): {f.name for f in partition.glob("*.parquet")}
            for table in domain.glob("*") for partition in table.glob("_file_date=*")}


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


def test_spark_rebuilds_a_feed_whose_definition_changed_whole_and_the_next_build_reads_nothing_again(tmp_path):
    export = tmp_path / "e3" / "v1" / "account_id=12345"
    generate(E3Spec(days=2, experiments=2, events=("purchase",), rows=300, seed=5), export)
    later = tmp_path / "later" / "type=decisions" / f"date={DAY2}"
    shutil.move(export / "type=decisions" / f"date={DAY2}", later)
    spark = project(tmp_path / "spark", tmp_path / "e3", "warehouse: {type: spark, lake: lake}\n")
    domain = spark / ".courier/spark/warehouse/domain.db"
    assert run_cli(spark, "run", "optimizely", "--all").exit_code == 0
    first = _partition_files(domain)

    feed = spark / "feeds" / "optimizely" / "decisions.yml"
    feed.write_text(feed.read_text().replace("  - {name: referer, type: String}\n", ""))
    assert run_cli(spark, "feeds", "compile").exit_code == 0
    shutil.copytree(later, spark / "mirror" / "v1" / "account_id=12345" / "type=decisions" / f"date={DAY2}")
    landed = run_cli(spark, "run", "optimizely", "--all")
    assert landed.exit_code == 0, landed.output

    # decisions: rebuilt whole with the new definition (both days, no referer); conversions: unchanged
    second = _partition_files(domain)
    decisions, conversions = TABLES.values()
    table = f"read_parquet('{domain / decisions}/*/*.parquet', hive_partitioning = true)"
    assert rows(f"select count(*), count(distinct uuid) from {table}") == [(600, 600)]
    assert "referer" not in {name for (name,) in rows(f"select column_name from (describe select * from {table})")}
    assert second[decisions, DAY1] != first[decisions, DAY1]
    assert second[conversions, DAY1] == first[conversions, DAY1] and second[conversions, DAY2] == first[conversions, DAY2]

    # the rebuild recorded every file it read: a plain build rewrites nothing
    run_dbt(load_project(spark), "build")
    assert _partition_files(domain) == second
