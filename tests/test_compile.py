"""The feed compiler: golden output, freshness checks (`--check`) and the shipped models."""

import os
import shutil
from pathlib import Path

import pytest

from optimizely_courier.feeds.compile import compile_feeds, write_models
from optimizely_courier.feeds.feed import load_feeds
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_compiled_models_match_the_golden_files():
    outputs = compile_feeds(load_feeds(FIXTURES))
    expected_dir = FIXTURES / "expected"
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(expected_dir, ignore_errors=True)
        for output in outputs:
            (expected_dir / output.path).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / output.path).write_text(output.text)
    expected = sorted(p.relative_to(expected_dir).as_posix() for p in expected_dir.rglob("*") if p.is_file())
    assert sorted(o.path for o in outputs) == expected
    for output in outputs:
        assert output.text == (expected_dir / output.path).read_text(), output.path


def test_every_generated_file_names_its_feed_in_a_header():
    for output in compile_feeds(load_feeds(FIXTURES)):
        first = output.text.splitlines()[0]
        assert first.startswith(("-- generated from feeds", "# generated from feeds")) and first.endswith(
            "do not edit"), output.path


def test_shipped_models_are_up_to_date_with_the_shipped_feeds():
    result = run_cli(ROOT, "feeds", "compile", "--check")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Generated models are up to date."


@pytest.fixture
def compiled(tmp_path):
    shutil.copytree(FIXTURES / "feeds", tmp_path / "feeds")
    (tmp_path / "sources.yml").write_text("couriers: {}\n")
    assert run_cli(tmp_path, "feeds", "compile").exit_code == 0
    return tmp_path


def test_check_fails_on_a_feed_change_until_recompiled(compiled):
    feed = compiled / "feeds/shop/everything.yml"
    feed.write_text(feed.read_text().replace("error_threshold: 0.05", "error_threshold: 0.10"))

    stale = run_cli(compiled, "feeds", "compile", "--check")
    assert stale.exit_code == 1
    # the threshold is a test in the rejected model's YAML: no SQL changes, nothing is rebuilt
    assert "stale: models/rejected/shop/shop__everything__rejected.yml" in stale.output
    assert ".sql" not in stale.output

    assert run_cli(compiled, "feeds", "compile").exit_code == 0
    assert run_cli(compiled, "feeds", "compile", "--check").exit_code == 0


def test_check_reports_missing_and_orphaned_generated_files_and_compile_removes_orphans(compiled):
    (compiled / "models/staging/shop/stg_shop__everything.sql").unlink()
    orphan = compiled / "models/domain/shop/old_feed.sql"
    orphan.write_text("-- generated from feeds/shop/old.yml; do not edit\nselect 1\n")
    handwritten = compiled / "models/marts/mine.sql"
    handwritten.parent.mkdir(parents=True)
    handwritten.write_text("select 1 as x\n")

    stale = run_cli(compiled, "feeds", "compile", "--check")
    assert stale.exit_code == 1
    assert "stale: models/staging/shop/stg_shop__everything.sql" in stale.output
    assert "stale: models/domain/shop/old_feed.sql" in stale.output

    report = write_models(compiled, load_feeds(compiled))
    assert report.removed == ["models/domain/shop/old_feed.sql"]
    assert handwritten.exists()


def test_invalid_feed_stops_compile_with_one_line(compiled):
    feed = compiled / "feeds/shop/everything.yml"
    feed.write_text(feed.read_text().replace("type: Decimal", "type: Money"))
    result = run_cli(compiled, "feeds", "compile")
    assert result.exit_code == 1
    assert result.output.startswith("Error: feeds/shop/everything.yml:17: `columns[3].type`: expected one of")
