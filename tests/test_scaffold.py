"""`courier feeds init`: a feed inferred from a sample file."""

import datetime as dt
import shutil

from optimizely_courier.dev.generate import E3Spec, generate
from optimizely_courier.feeds.feed import load_feeds
from optimizely_courier.settings import SAMPLES_DIR
from tests.conftest import run_cli


def _events_sample(tmp_path):
    files = generate(E3Spec(start=dt.date(2026, 11, 25), days=1, experiments=1, events=("purchase",), rows=200),
                     tmp_path / "e3")
    return next(f for f in files if "type=events" in str(f) and f.suffix == ".parquet")


def test_init_infers_types_key_semantics_and_surfaced_keys_into_a_valid_feed(make_project, tmp_path):
    project = make_project("couriers: {}\n")
    sample = _events_sample(tmp_path)

    result = run_cli(project, "feeds", "init", "--courier", "optimizely", "--tag", "conversions",
                     "--source", "Optimizely", "--name", "Conversions", "--sample", str(sample))

    assert result.exit_code == 0, result.output
    assert "wrote feeds/optimizely/conversions.yml" in result.output
    (feed,) = load_feeds(project)
    assert (feed.domain_table, feed.courier, feed.tag, feed.primary_key) == (
        "Optimizely:Conversions", "optimizely", "conversions", ("uuid",))
    assert feed.id.startswith("df-") and len(feed.id) == 9
    types = {c.name: c.type for c in feed.columns}
    assert (types["timestamp"], types["revenue"], types["value"], types["tags"]) == (
        "Datetime", "Integer", "Float", "String")
    assert feed.column("visitor_id").semantics == ("fk-optimizely-visitor",)
    assert str(feed.column("attributes_plan").source) == "attributes[plan]"
    assert str(feed.column("tags_sku").source) == "tags[sku]"
    assert run_cli(project, "feeds", "compile").exit_code == 0


def test_init_refuses_to_overwrite_an_existing_feed(make_project, tmp_path):
    project = make_project("couriers: {}\n")
    sample = str(_events_sample(tmp_path))
    args = ["feeds", "init", "--courier", "optimizely", "--tag", "conversions", "--source", "Optimizely",
            "--name", "Conversions", "--sample", sample]
    assert run_cli(project, *args).exit_code == 0
    before = (project / "feeds/optimizely/conversions.yml").read_text()

    again = run_cli(project, *args)

    assert again.exit_code == 1
    assert again.output.strip() == ("Error: feeds/optimizely/conversions.yml already exists; edit it, or choose "
                                    "another --name")
    assert (project / "feeds/optimizely/conversions.yml").read_text() == before


def test_init_uses_the_newest_kept_sample_and_says_how_to_get_one(make_project, tmp_path):
    project = make_project("couriers: {}\n")
    args = ["feeds", "init", "--courier", "optimizely", "--tag", "conversions", "--source", "Optimizely",
            "--name", "Conversions"]
    missing = run_cli(project, *args)
    assert missing.exit_code == 1
    assert "no sample file for optimizely/conversions: run `courier run optimizely --date D`" in missing.output

    kept = project / SAMPLES_DIR / "optimizely" / "conversions"
    kept.mkdir(parents=True)
    shutil.copy(_events_sample(tmp_path), kept / "2026-11-25__part-00000.parquet")
    result = run_cli(project, *args)
    assert result.exit_code == 0, result.output
    assert "inferred from .courier/samples/optimizely/conversions/2026-11-25__part-00000.parquet" in (
        project / "feeds/optimizely/conversions.yml").read_text()


def test_init_still_takes_the_old_option_file_hidden_from_help_with_a_warning(make_project, tmp_path):
    project = make_project("couriers: {}\n")
    args = ["feeds", "init", "--courier", "optimizely", "--source", "Optimizely", "--name", "Conversions",
            "--sample", str(_events_sample(tmp_path))]

    result = run_cli(project, *args, "--file", "conversions")

    assert result.exit_code == 0, result.output
    assert result.stderr == "warning: --file is deprecated: use --tag\n"
    assert [feed.tag for feed in load_feeds(project)] == ["conversions"]
    shown = run_cli(project, "feeds", "init", "--help").output
    assert "--tag" in shown and "--file" not in shown
    missing = run_cli(project, *args)
    assert missing.exit_code == 2 and "Missing option '--tag'" in missing.output
