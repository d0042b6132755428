"""A busy account's shape: thousands of part files a day land and build in one run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from optimizely_courier.dev.generate import E3Spec, generate
from tests.conftest import DBT_FILES, ROOT, query, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.scaleout]

# 600 experiments, two part files each, for three days: 3,600 decision files, plus the events.
SPEC = E3Spec(days=3, experiments=600, events=("purchase", "add:cart", "signup", "NULL"), rows=6000,
              rows_per_file=5, seed=3)
SOURCES = """couriers:
  optimizely:
    local_path: mirror
    entities:
      - object/file-pattern: "'type=decisions/date='yyyy-MM-dd'/experiment=*/'"
        object/ready-marker: "'type=decisions/date='yyyy-MM-dd'/_SUCCESS'"
        object/land-as: {file/tag: decisions}
      - object/file-pattern: "'type=events/date='yyyy-MM-dd'/event=*/'"
        object/ready-marker: "'type=events/date='yyyy-MM-dd'/_SUCCESS'"
        object/land-as: {file/tag: conversions}
    load_operations:
      df-7k2m9q: [{type: load, file: decisions}]
      df-3p8x1w: [{type: load, file: conversions}]
"""


def test_thousands_of_part_files_land_and_build_in_one_run_and_a_plain_dbt_build_then_has_nothing_to_do(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    generate(SPEC, root / "mirror")
    (root / "sources.yml").write_text(SOURCES)
    for name in (*DBT_FILES, "models", "feeds"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, root / name)
    decision_files = len(list((root / "mirror").glob("type=decisions/*/*/*.parquet")))
    assert decision_files == 3600

    result = run_cli(root, "run", "optimizely", "--all")

    assert result.exit_code == 0, result.output
    total = SPEC.days * SPEC.rows
    assert query(root, 'select count(*), count(distinct uuid) from domain."Optimizely:Decisions"') == [(total, total)]
    assert query(root, "select count(*) from raw_optimizely._courier_files where tag = 'decisions'") == [(3600,)]
    builds = query(root, "select count(*) from courier.builds")
    build = subprocess.run([str(Path(sys.executable).parent / "dbt"), "build", "--quiet"], cwd=root,
                           capture_output=True, text=True, env={**os.environ, "DO_NOT_TRACK": "1"}, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    assert query(root, "select count(*) from courier.builds") == builds  # nothing to build: none made, none recorded
    assert query(root, 'select count(*) from domain."Optimizely:Decisions"') == [(total,)]
