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


def dbt_selected(root: Path, selector: str) -> set[str]:
    """The models real `dbt ls --select <selector>` selects in `root`."""
    import subprocess
    import sys

    listed = subprocess.run([str(Path(sys.executable).parent / "dbt"), "ls", "--quiet", "--resource-type", "model",
                             "--output", "name", "--select", selector], cwd=root, capture_output=True, text=True,
                            env={**os.environ, "DO_NOT_TRACK": "1"})
    assert listed.returncode == 0, listed.stdout + listed.stderr
    return set(listed.stdout.split())


@pytest.mark.long  # slow end to end: make scaleout (CI), for make test's 10 minutes
def test_dbt_selects_a_couriers_a_sources_the_pii_and_the_experiment_models_by_tag(dbt_project):
    from tests.cases import OPTIMIZELY_SOURCES, ORDERS_FEED
    from tests.conftest import write_feed

    shutil.copytree(ROOT / "feeds" / "optimizely", dbt_project / "feeds" / "optimizely")
    shutil.copytree(ROOT / "experiments", dbt_project / "experiments")
    (dbt_project / "sources.yml").write_text(
        (dbt_project / "sources.yml").read_text() + OPTIMIZELY_SOURCES.removeprefix("couriers:\n"))
    write_feed(dbt_project, ORDERS_FEED + "  - {name: email, type: String, semantic: email}\n")
    before = {path.name: path.read_text() for path in (ROOT / "models").rglob("*.yml")}
    assert run_cli(dbt_project, "feeds", "compile").exit_code == 0
    optimizely = {f"{stage}optimizely__{feed}{rejected}" for feed in ("decisions", "conversions")
                  for stage, rejected in (("stg_", ""), ("", ""), ("", "__rejected"))}
    shop = {"stg_shop__orders", "shop__orders", "shop__orders__rejected"}
    experiment = {"exp_demo_checkout__observations", "exp_demo_checkout__results"}

    assert dbt_selected(dbt_project, "tag:courier:optimizely") == optimizely
    assert dbt_selected(dbt_project, "tag:source:shop") == shop
    assert dbt_selected(dbt_project, "tag:pii") == shop  # the orders feed has an email column
    assert dbt_selected(dbt_project, "tag:experiment") == experiment
    assert dbt_selected(dbt_project, "tag:feed") == optimizely | shop  # the tags there were stay
    assert dbt_selected(dbt_project, "tag:experiments") == experiment
    # tags are not part of what a model computes: a fingerprint that stays keeps every build done before
    after = {path.name: path.read_text() for path in (dbt_project / "models").rglob("*.yml")}
    for name in ("optimizely__decisions.yml", "exp_demo_checkout.yml"):
        assert _fingerprints(after[name]) == _fingerprints(before[name]), name


def _fingerprints(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith(("definition:",
                                                                                   "experiment_definition:"))]


def test_experiment_models_are_tagged_pii_when_a_segment_is_a_pii_column(tmp_path):
    import yaml

    from optimizely_courier.experiments.compile import compile_experiments
    from optimizely_courier.experiments.definition import load_experiments

    shutil.copytree(ROOT / "feeds", tmp_path / "feeds")
    decisions = tmp_path / "feeds" / "optimizely" / "decisions.yml"
    plain = "{name: country, type: String, from: \"attributes[country]\"}"
    assert plain in decisions.read_text()
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "by_country.yml").write_text(
        'id: by_country\nexperiment_id: "1001"\nbaseline: "100"\nsegments: [country]\n'
        "metrics:\n  - {name: purchases, kind: count, event: purchase}\n")

    def tags() -> list[list[str]]:
        [docs] = [o for o in compile_experiments(load_experiments(tmp_path), load_feeds(tmp_path))
                  if o.path.endswith(".yml")]
        return [model["config"]["tags"] for model in yaml.safe_load(docs.text)["models"]]

    assert tags() == [["experiment"], ["experiment"]]
    decisions.write_text(decisions.read_text().replace(plain, plain[:-1] + ", semantic: country}"))
    assert tags() == [["experiment", "pii"], ["experiment", "pii"]]
