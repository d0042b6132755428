"""`courier feeds diff`: git repositories with two commits, one case per kind of change."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

DECISIONS = "feeds/optimizely/decisions.yml"


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A project repository whose first commit is the shipped feeds and sources.yml."""
    monkeypatch.setenv("OPTIMIZELY_EXTERNAL_ID", "ext")
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("feeds", "sources.yml"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, root / name)
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "empty")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "base")
    return root


def change(root: Path, path: str, old: str, new: str) -> None:
    target = root / path
    text = target.read_text()
    assert old in text, old
    target.write_text(text.replace(old, new))
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "change")


def diff(root: Path, *args: str):
    return run_cli(root, "feeds", "diff", "HEAD~1", *args)


def lines(root: Path) -> list[str]:
    result = diff(root)
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_key_change_and_new_email_tag_is_breaking_and_names_both(repo):
    text = (repo / DECISIONS).read_text()
    text = text.replace("primary_key: [uuid]", "primary_key: [uuid, visitor_id]")
    text = text.replace("{name: referer, type: String}", "{name: referer, type: String, semantic: email}")
    (repo / DECISIONS).write_text(text)
    git(repo, "commit", "-qam", "x", "--author", "t <t@example.com>")

    output = lines(repo)

    assert output[0] == "**Verdict: breaking** (1 breaking, 1 needs attention, 0 safe; compared with `HEAD~1`)"
    assert "**Optimizely:Decisions** (feeds/optimizely/decisions.yml)" in output
    assert ("- **breaking**: primary key changed from `uuid` to `uuid`, `visitor_id`: the next `courier run` or "
            "`dbt build` rebuilds the table from every landed file") in output
    assert "- **needs attention**: column `referer` becomes PII (semantic tag email)" in output
    assert diff(repo, "--fail-on", "breaking").exit_code == 1


@pytest.mark.parametrize("old, new, verdict, line", [
    ("  - {name: device, type: String, from: \"attributes[device]\"}\n", "",
     "breaking", "- **breaking**: column `device` removed: queries on it break"),
    ("{name: referer, type: String}", "{name: referer, type: String, rename_to: referrer}",
     "breaking", "- **breaking**: column `referer` renamed to `referrer`: queries on the old name break; the next "
                 "`courier run` or `dbt build` rebuilds the table from every landed file"),
    ("  - {name: revision, type: String}\n", "  - {name: revision, type: String}\n  - {name: session, type: String, "
     "from: \"attributes[session]\"}\n",
     "safe", "- **safe**: column `session` added (String)"),
    ("{name: revision, type: String}", "{name: revision, type: Integer}",
     "needs attention", "- **needs attention**: column `revision` retyped from String to Integer: not checked "
                        "against existing values (no warehouse)"),
    ("{name: plan, type: String, from: \"attributes[plan]\"}", "{name: plan, type: String, from: \"attributes[tier]\"}",
     "needs attention", "- **needs attention**: column `plan` now reads `attributes[tier]` instead of "
                        "`attributes[plan]`"),
    ("stitch: false", "stitch: true", "needs attention",
     "- **needs attention**: stitch turned on: its PII columns now feed stitch_input"),
    ("last_updated: generated", "last_updated: processed_at", "needs attention",
     "- **needs attention**: last-updated changed from `generated` to `processed_at`: a different row may win "
     "per key"),
    ("error_threshold: 0.01", "error_threshold: 0.05", "needs attention",
     "- **needs attention**: error threshold changed from 1.00% to 5.00%"),
    ("{name: country, type: String, from: \"attributes[country]\"}",
     "{name: country, type: String, from: \"attributes[country]\", semantic: country}", "needs attention",
     "- **needs attention**: column `country` becomes PII (semantic tag country)"),
    ("{name: account_id, type: String}", "{name: account_id, type: String, semantic: fk-optimizely-account}", "safe",
     "- **safe**: column `account_id` semantic tags changed from none to `fk-optimizely-account`"),
    ("{name: campaign_id, type: String}", "{name: campaign_id, type: String, required: true}", "needs attention",
     "- **needs attention**: column `campaign_id` is now required: rows without it will be rejected"),
    ("name: Decisions", "name: Decision", "breaking",
     "- **breaking**: domain table renamed from `Optimizely:Decisions` to `Optimizely:Decision`: queries on the old "
     "name break"),
])
def test_each_kind_of_feed_change_gets_its_rank_and_line(repo, old, new, verdict, line):
    change(repo, DECISIONS, old, new)
    output = lines(repo)
    assert output[0].startswith(f"**Verdict: {verdict}**")
    assert line in output


def test_added_and_removed_feeds(repo):
    shutil.copy(repo / DECISIONS, repo / "feeds/optimizely/visitors.yml")
    change(repo, "feeds/optimizely/visitors.yml", "id: df-7k2m9q\nsource: Optimizely\nname: Decisions",
           "id: df-v151t0\nsource: Optimizely\nname: Visitors")
    assert "- **safe**: new feed `df-v151t0` reading `optimizely/decisions`" in lines(repo)
    (repo / "feeds/optimizely/conversions.yml").unlink()
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "rm")
    assert ("- **breaking**: feed `df-3p8x1w` removed: `Optimizely:Conversions` is no longer maintained and queries "
            "on it will go stale") in lines(repo)


@pytest.mark.parametrize("old, new, verdict, line", [
    ("df-7k2m9q: [{type: load, file: decisions}]", "df-7k2m9q: [{type: truncate}, {type: load, file: decisions}]",
     "needs attention", "- **needs attention**: `df-7k2m9q` (Optimizely:Decisions): truncate added: every run empties "
                        "the table first, keeping only that run's rows"),
    ("      df-3p8x1w: [{type: load, file: conversions}]   # Optimizely:Conversions\n", "",
     "needs attention", "- **needs attention**: `df-3p8x1w` (Optimizely:Conversions): no longer loaded by courier runs"),
    ("\"'type=events/date='yyyy-MM-dd'/event=*/'\"", "\"'type=events/date='yyyy-MM-dd'/event=purchase/'\"",
     "needs attention", "- **needs attention**: `optimizely/conversions`: file pattern "
                        "`'type=events/date='yyyy-MM-dd'/event=*/'` -> `'type=events/date='yyyy-MM-dd'/event=purchase/'`"
                        " (not checked: no landed files)"),
    ("        object/ready-marker: \"'type=events/date='yyyy-MM-dd'/_SUCCESS'\"\n", "", "needs attention",
     "- **needs attention**: `optimizely/conversions`: ready marker changed to `none`"),
])
def test_load_operation_and_entity_changes(repo, old, new, verdict, line):
    change(repo, "sources.yml", old, new)
    output = lines(repo)
    assert output[0].startswith(f"**Verdict: {verdict}**")
    assert line in output


def test_no_change_is_safe_and_json_has_the_schema(repo):
    unchanged = run_cli(repo, "feeds", "diff", "HEAD").output.splitlines()
    assert unchanged == ["**Verdict: safe** (0 breaking, 0 needs attention, 0 safe; compared with `HEAD`)", "",
                         "No changes to feeds, load operations, couriers or experiments."]
    change(repo, DECISIONS, "error_threshold: 0.01", "error_threshold: 0.02")
    document = json.loads(diff(repo, "--format", "json").output)
    assert document == {"base": "HEAD~1", "verdict": "needs attention",
                        "counts": {"breaking": 0, "needs attention": 1, "safe": 0},
                        "changes": [{"severity": "needs attention", "scope": "feed", "subject": "Optimizely:Decisions",
                                     "kind": "error_threshold", "file": DECISIONS,
                                     "message": "error threshold changed from 1.00% to 2.00%"}]}


@pytest.mark.parametrize("fail_on, code", [(None, 0), ("breaking", 0), ("attention", 1)])
def test_fail_on_sets_the_exit_code(repo, fail_on, code):
    change(repo, DECISIONS, "error_threshold: 0.01", "error_threshold: 0.02")
    args = ["--fail-on", fail_on] if fail_on else []
    assert diff(repo, *args).exit_code == code


def test_default_base_is_origin_main_then_main_and_a_missing_ref_is_one_line(repo):
    change(repo, DECISIONS, "error_threshold: 0.01", "error_threshold: 0.02")
    assert "compared with `main`" in run_cli(repo, "feeds", "diff").output.splitlines()[0]
    missing = run_cli(repo, "feeds", "diff", "no-such-branch")
    assert missing.exit_code == 1
    assert missing.output.strip() == f"Error: no git ref 'no-such-branch' in {repo}"


def test_retype_is_checked_against_the_warehouse(repo):
    import duckdb

    with duckdb.connect(str(repo / "warehouse.duckdb")) as db:
        db.execute('create schema domain; create table domain."Optimizely:Decisions" (revision varchar, '
                   "client_version varchar); insert into domain.\"Optimizely:Decisions\" values ('101', '1.2.3'), "
                   "('102', '5.1.0'), (null, null)")
    change(repo, DECISIONS, "{name: revision, type: String}", "{name: revision, type: Integer}")
    assert ("- **needs attention**: column `revision` retyped from String to Integer: all 2 existing values cast "
            "cleanly") in lines(repo)
    change(repo, DECISIONS, "{name: client_version, type: String}", "{name: client_version, type: Float}")
    assert ("- **breaking**: column `client_version` retyped from String to Float: 2 of 2 existing values do not "
            "cast; rebuild or fix the data") in lines(repo)


def test_validate_reports_several_errors_with_lines_including_stale_models(repo):
    shutil.copytree(ROOT / "models", repo / "models")
    shutil.copytree(ROOT / "experiments", repo / "experiments")
    change(repo, DECISIONS, "{name: revision, type: String}", "{name: revision, type: Text}")
    change(repo, "feeds/optimizely/conversions.yml", "primary_key: [uuid]", "primary_key: [id]")
    result = run_cli(repo, "feeds", "validate")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "feeds/optimizely/conversions.yml:8: `primary_key`: `id` is not a column of this feed (columns: uuid, "
        "converted_at, processed_at, visitor_id, session_id, account_id, entity_id, event_type, event_name, "
        "revenue_cents, value, quantity, experiments, attributes, tags, sku, category, plan, user_ip, user_agent, "
        "referer, revision, client_engine, client_version)",
        "feeds/optimizely/decisions.yml:32: `columns[17].type`: expected one of Boolean, Date, Datetime, Decimal, "
        "Float, Integer, String; got 'Text'",
    ]
    change(repo, DECISIONS, "{name: revision, type: Text}", "{name: revision, type: Integer}")
    change(repo, "feeds/optimizely/conversions.yml", "primary_key: [id]", "primary_key: [uuid]")
    stale = run_cli(repo, "feeds", "validate")
    assert stale.exit_code == 1
    assert stale.output.splitlines() == [
        "models/staging/optimizely/stg_optimizely__decisions.sql:1: generated model is missing or out of date: run "
        "`courier feeds compile`",
        "models/domain/optimizely/optimizely__decisions.yml:1: generated model is missing or out of date: run "
        "`courier feeds compile`",
        "models/rejected/optimizely/optimizely__decisions__rejected.yml:1: generated model is missing or out of "
        "date: run `courier feeds compile`"]


def test_ci_workflow_runs_validate_compile_check_and_a_gated_diff():
    workflow = (ROOT / ".github/workflows/feeds.yml").read_text()
    import yaml

    steps = [step.get("run", "") for step in yaml.safe_load(workflow)["jobs"]["review"]["steps"]]
    assert ".venv/bin/courier validate" in steps
    assert ".venv/bin/courier feeds compile --check" in steps
    assert any("feeds diff" in s and "--fail-on breaking" in s for s in steps)
    assert any("GITHUB_STEP_SUMMARY" in s for s in steps)


def test_experiment_changes_are_safe_when_they_add_results_and_need_attention_when_they_change_them(repo):
    (repo / "experiments").mkdir()
    shutil.copy(ROOT / "experiments" / "demo_checkout.yml", repo / "experiments")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "experiment")
    definition = repo / "experiments" / "demo_checkout.yml"
    text = definition.read_text().replace("window: 48h", "window: 24h")
    text = text.replace("{name: purchases_per_visitor, kind: count, event: purchase}",
                        "{name: purchases_per_visitor, kind: count, event: purchase, where: {category: shoes}}")
    text = re.sub(r"  - \{name: revenue_per_visitor.*?\}[^\n]*\n", "  - {name: signups, kind: unique, event: signup}\n",
                  text, flags=re.S)
    text = text.replace("multiple_exposures: exclude", "multiple_exposures: first")
    definition.write_text(text)
    git(repo, "commit", "-qam", "x", "--author", "t <t@example.com>")

    output = lines(repo)

    assert output[0] == ("**Verdict: needs attention** (0 breaking, 4 needs attention, 1 safe; compared with "
                         "`HEAD~1`)")
    assert "### Experiments" in output and "**demo_checkout** (experiments/demo_checkout.yml)" in output
    assert [line for line in output if line.startswith("- ")] == [
        "- **needs attention**: window changed from `2d` to `1d`: every result is recomputed",
        "- **needs attention**: multiple_exposures changed from `exclude` to `first`: every result is recomputed",
        "- **needs attention**: metric `revenue_per_visitor` removed: its results go away",
        "- **needs attention**: metric `purchases_per_visitor` changed (where from none to `category: shoes`): "
        "its results are recomputed",
        "- **safe**: metric `signups` added",
    ]
