"""dlt's own CLI on the courier's pipeline, from the project root, with no extra flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from optimizely_courier.cli.main import cli
from optimizely_courier.cli.main import run as courier_run
from tests.conftest import ROOT, SHOP_SOURCES, landed, query, run_cli, sources_yaml, write_feed, write_part
from tests.test_domain import build, feed, table
from tests.test_landing import SPEC, _counts

pytestmark = pytest.mark.long  # make scaleout runs it: make test keeps to its 10 minutes

DLT = str(Path(sys.executable).parent / "dlt")


def dlt(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"}
    return subprocess.run([DLT, "pipeline", *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=300)


def raw_tables(project: Path) -> set[str]:
    return {name for (name,) in query(project, "select table_name from information_schema.tables "
                                               "where table_schema = 'raw_shop'")}


def test_dlt_commands_work_on_the_courier_pipeline_and_the_next_run_lands_what_drop_removed(dbt_project):
    root = dbt_project
    write_feed(root, feed())
    write_part(root, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}, {"order_id": "B", "amount": 2}])
    first = run_cli(root, "run", "shop", "--all")
    assert first.exit_code == 0, first.output
    build(root)

    for command in (["info"], ["trace"], ["load-package"], ["schema"], ["sync", "-y"]):
        result = dlt(root, "shop", *command)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        assert f"Found pipeline shop in {root / '.courier' / 'pipelines'}" in result.stdout, command
    assert "shop" in dlt(root, "--list").stdout.split()

    dropped = dlt(root, "shop", "drop", "orders", "-y")
    assert dropped.returncode == 0, dropped.stdout + dropped.stderr
    assert "orders" not in raw_tables(root)  # dropped in the project's warehouse, not in a new ./shop.duckdb
    assert not (root / "shop.duckdb").exists()

    write_part(root, "2026-11-26", "part-0.parquet", [{"order_id": "C", "amount": 3}])
    after = run_cli(root, "run", "shop", "--all")

    assert after.exit_code == 0, after.output
    build(root)
    assert query(root, "select order_id, count(*) from raw_shop.orders group by 1 order by 1") == [
        ("A", 1), ("B", 1), ("C", 1)]
    assert table(root) == [("A", 1), ("B", 2), ("C", 3)]


DOMAIN_ROWS = 'select order_id, amount, _updated, _load_id from domain."Shop:Orders" order by all'
RAW_ROWS = "select order_id, amount, _file, _file_date, _file_row from raw_shop.orders order by all"


def building_project(root: Path) -> None:
    """`root` (a dbt_project) with the orders feed compiled and loaded by every `courier run`."""
    write_feed(root, feed())
    (root / "sources.yml").write_text(SHOP_SOURCES + "    load_operations:\n      df-aaaaaa: [{type: load, file: orders}]\n")
    compiled = run_cli(root, "feeds", "compile")
    assert compiled.exit_code == 0, compiled.output


def record_counts(root: Path) -> tuple[int, int]:
    """(files, rows) the record holds as landed, as `courier status` counts them."""
    status = run_cli(root, "status", "shop", "--json")
    assert status.exit_code == 0, status.output
    landed_now = json.loads(status.output)[0]["landed"]
    return landed_now["files"], landed_now["rows"]


@pytest.mark.parametrize("drop", [["orders"], ["--drop-all"]], ids=["one-table", "all-tables"])
def test_a_table_dlt_dropped_lands_again_and_rows_built_from_unchanged_files_are_not_rewritten(dbt_project, drop):
    root = dbt_project
    building_project(root)
    write_part(root, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}, {"order_id": "B", "amount": 2}])
    write_part(root, "2026-11-26", "part-0.parquet", [{"order_id": "C", "amount": 3}])
    first = run_cli(root, "run", "shop", "--all")
    assert first.exit_code == 0, first.output
    raw_before, domain_before = query(root, RAW_ROWS), query(root, DOMAIN_ROWS)

    dropped = dlt(root, "shop", "drop", *drop, "-y")
    assert dropped.returncode == 0, dropped.stdout + dropped.stderr
    write_part(root, "2026-11-26", "part-0.parquet", [{"order_id": "C", "amount": 30}])  # rewritten: a new ETag
    again = run_cli(root, "run", "shop", "--all")

    assert again.exit_code == 0, again.output
    assert landed(again.output, "orders") == (2, 3, 0)
    assert query(root, RAW_ROWS) == [row if row[0] != "C" else ("C", 30, *row[2:]) for row in raw_before]
    domain = query(root, DOMAIN_ROWS)
    assert domain[:2] == domain_before[:2]  # A and B: the same file version, built before the drop
    assert domain[2][:2] == ("C", 30) and domain[2][3] != domain_before[2][3]
    raw_rows = query(root, "select count(*) from raw_shop.orders")[0][0]
    assert record_counts(root) == (2, raw_rows)
    assert query(root, "select count(*), sum(row_count) from raw_shop._courier_files") == [(2, raw_rows)]
    build(root, "--full-refresh")  # the record rebuilds the same table
    assert [row[:2] for row in query(root, DOMAIN_ROWS)] == [("A", 1), ("B", 2), ("C", 30)]


def test_after_a_dlt_drop_runs_of_one_day_each_land_every_day_again(dbt_project):
    root = dbt_project
    building_project(root)
    write_part(root, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}, {"order_id": "B", "amount": 2}])
    write_part(root, "2026-11-26", "part-0.parquet", [{"order_id": "C", "amount": 3}])
    assert run_cli(root, "run", "shop", "--all").exit_code == 0
    raw_before, domain_before = query(root, RAW_ROWS), query(root, DOMAIN_ROWS)
    dropped = dlt(root, "shop", "drop", "orders", "-y")
    assert dropped.returncode == 0, dropped.stdout + dropped.stderr

    for day in ("2026-11-25", "2026-11-26"):
        result = run_cli(root, "run", "shop", "--date", day)
        assert result.exit_code == 0, result.output

    assert query(root, RAW_ROWS) == raw_before
    assert query(root, DOMAIN_ROWS) == domain_before
    assert record_counts(root) == (2, 3)


def test_after_a_dlt_drop_status_and_a_plain_dbt_build_agree_that_only_a_rewritten_file_is_left_to_build(
        dbt_project):
    root = dbt_project
    building_project(root)
    write_part(root, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}, {"order_id": "B", "amount": 2}])
    write_part(root, "2026-11-26", "part-0.parquet", [{"order_id": "C", "amount": 3}])
    assert run_cli(root, "run", "shop", "--all").exit_code == 0
    domain_before = query(root, DOMAIN_ROWS)
    dropped = dlt(root, "shop", "drop", "orders", "-y")
    assert dropped.returncode == 0, dropped.stdout + dropped.stderr
    write_part(root, "2026-11-26", "part-0.parquet", [{"order_id": "C", "amount": 30}])

    ingested = run_cli(root, "run", "shop", "--all", "--ingest-only")
    status = run_cli(root, "status", "shop", "--json")
    build(root)

    assert ingested.exit_code == 0, ingested.output
    assert status.exit_code == 0, status.output
    assert [table["files_to_build"] for table in json.loads(status.output)[0]["domain_tables"]] == [1]
    domain = query(root, DOMAIN_ROWS)
    assert domain[:2] == domain_before[:2]
    assert domain[2][:2] == ("C", 30)


def test_dlt_trace_and_load_package_row_counts_show_each_tables_rows(dbt_project):
    root = dbt_project
    write_part(root, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}, {"order_id": "B", "amount": 2}])
    write_part(root, "2026-11-26", "part-0.parquet", [{"order_id": "C", "amount": 3}])
    assert run_cli(root, "run", "shop", "--all").exit_code == 0
    (load_id,) = query(root, "select distinct _dlt_load_id from raw_shop.orders")[0]

    trace = dlt(root, "shop", "trace")
    counts = dlt(root, "shop", "load-package", load_id, "row-counts")

    assert trace.returncode == 0, trace.stderr
    assert "- orders: 3 row(s)" in trace.stdout and "- _courier_files: 2 row(s)" in trace.stdout, trace.stdout
    assert counts.returncode == 0, counts.stdout + counts.stderr
    assert "orders: 3 " in counts.stdout and "_courier_files: 2 " in counts.stdout, counts.stdout + counts.stderr
    extracted = dlt_attach(root).last_trace.last_extract_info.metrics[load_id][0]["table_metrics"]
    assert extracted["orders"].items_count == 3 and extracted["_courier_files"].items_count == 2


def dlt_attach(root: Path):  # noqa: ANN201 - a dlt pipeline
    import dlt as dlt_library

    return dlt_library.attach("shop", pipelines_dir=str(root / ".courier" / "pipelines"))


def test_dlt_pipeline_run_documents_every_courier_run_option(dbt_project):
    result = dlt(dbt_project, "shop", "run", "--help")

    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "dlt pipeline optimizely run --date 2026-11-27" in text
    for option in [*courier_run.params, *cli.params]:
        if isinstance(option, click.Option) and option.name != "help":
            assert option.opts[0] in text and " ".join(option.help.split())[:30] in text, option.opts


def test_dlt_pipeline_run_passes_courier_run_options_through(dbt_project):
    write_part(dbt_project, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])

    result = dlt(dbt_project, "shop", "run", "--all", "--ingest-only", "--json", "--lock-timeout", "5")

    assert result.returncode == 0, result.stderr
    assert '"status": "success"' in result.stdout
    assert query(dbt_project, "select count(*) from raw_shop.orders") == [(1,)]


def test_the_ordinary_dlt_pipeline_script_lands_what_courier_run_then_counts_as_landed(bucket, make_project, tmp_path):
    bucket.seed(SPEC, tmp_path)
    project = make_project(sources_yaml(bucket=bucket.name, endpoint=bucket.s3.url))
    script = ROOT / "pipelines" / "optimizely_pipeline.py"
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"}

    result = subprocess.run([sys.executable, str(script), "2026-11-27"], cwd=project, env=env, capture_output=True,
                            text=True, timeout=300)
    again = run_cli(project, "run", "optimizely", "--date", "2026-11-27", "--ingest-only")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 load package(s) were loaded" in result.stdout
    assert _counts(project) == {"decisions": 300, "conversions": 300}
    assert again.exit_code == 0, again.output
    assert landed(again.output, "decisions") == (0, 0, 2) and landed(again.output, "conversions") == (0, 0, 2)
    assert _counts(project) == {"decisions": 300, "conversions": 300}
