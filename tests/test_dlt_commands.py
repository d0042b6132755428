"""dlt's own CLI on the courier's pipeline, from the project root, with no extra flags."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from optimizely_courier.cli.main import cli
from optimizely_courier.cli.main import run as courier_run
from tests.conftest import ROOT, landed, query, run_cli, sources_yaml, write_feed, write_part
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
