"""`make demo`, the first of the two setup commands, in a copy of the repository's project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from tests.conftest import ROOT, query

PROJECT_FILES = ("sources.yml", "feeds", "models", "macros", "dbt_project.yml", "profiles.yml", ".dlt")


def test_the_demo_lands_two_ready_days_and_builds_both_domain_tables(tmp_path):
    for name in PROJECT_FILES:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, tmp_path / name)
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}

    demo = subprocess.run([sys.executable, "-m", "optimizely_courier.dev.demo"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)

    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "Domain tables in warehouse.duckdb:" in demo.stdout
    assert query(tmp_path, "select count(distinct _file_date) from raw_optimizely.decisions") == [(2,)]
    for table, tag in (("Optimizely:Decisions", "decisions"), ("Optimizely:Conversions", "conversions")):
        raw = query(tmp_path, f"select count(distinct uuid) from raw_optimizely.{tag}")[0][0]
        assert raw > 0
        assert query(tmp_path, f'select count(*), count(distinct _pk) from domain."{table}"') == [(raw, raw)]
