"""Domain tables built by real dbt runs on landed data: upsert, tie-breaks, keys, rejects, nesting."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from optimizely_courier.config.sources import load_project
from optimizely_courier.errors import BuildError
from optimizely_courier.runs.build import run_dbt
from optimizely_courier.settings import DBT_LOG_DIR
from tests.cases import ORDERS_FEED
from tests.conftest import query, run_cli, write_feed, write_part


def feed(extra: str = "", columns: str = "") -> str:
    """The orders feed with `extra` keys before its columns and `columns` after them."""
    return ORDERS_FEED.replace("columns:\n", extra + "columns:\n") + columns


def land(root, *args: str, courier: str = "shop") -> None:
    result = run_cli(root, "run", courier, *args)
    assert result.exit_code == 0, result.output


def build(root, *extra: str) -> None:
    compiled = run_cli(root, "feeds", "compile")
    assert compiled.exit_code == 0, compiled.output
    run_dbt(load_project(root), "build", extra=extra)


def table(root, name: str = "Shop:Orders", columns: str = "order_id, amount") -> list[tuple]:
    return query(root, f'select {columns} from domain."{name}" order by all')


def test_later_row_in_a_file_wins_over_an_earlier_one(dbt_project):
    write_feed(dbt_project, feed())
    write_part(dbt_project, "2026-11-25", "part-0.parquet",
               [{"order_id": "A", "amount": 1}, {"order_id": "B", "amount": 5}, {"order_id": "A", "amount": 2}])
    land(dbt_project, "--date", "2026-11-25")
    build(dbt_project)
    assert table(dbt_project) == [("A", 2), ("B", 5)]


def test_later_loaded_file_of_the_same_date_wins(dbt_project):
    write_feed(dbt_project, feed())
    write_part(dbt_project, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])
    write_part(dbt_project, "2026-11-25", "part-1.parquet", [{"order_id": "A", "amount": 2}])
    land(dbt_project, "--date", "2026-11-25")
    build(dbt_project)
    assert table(dbt_project) == [("A", 2)]


def test_later_file_date_wins_within_one_run_over_a_range(dbt_project):
    write_feed(dbt_project, feed())
    # the later day's file sorts first by name: the date must decide, not the key
    write_part(dbt_project, "2026-11-25", "part-9.parquet", [{"order_id": "A", "amount": 1}])
    write_part(dbt_project, "2026-11-26", "part-0.parquet", [{"order_id": "A", "amount": 2}])
    land(dbt_project, "--from", "2026-11-25", "--to", "2026-11-27")
    build(dbt_project)
    assert table(dbt_project) == [("A", 2)]


def test_newer_load_beats_rows_already_in_the_table_even_from_an_older_date(dbt_project):
    write_feed(dbt_project, feed())
    write_part(dbt_project, "2026-11-26", "part-0.parquet", [{"order_id": "A", "amount": 1},
                                                             {"order_id": "B", "amount": 1}])
    land(dbt_project, "--date", "2026-11-26")
    build(dbt_project)
    write_part(dbt_project, "2026-11-20", "part-0.parquet", [{"order_id": "A", "amount": 9}])
    land(dbt_project, "--date", "2026-11-20")
    build(dbt_project)
    assert table(dbt_project) == [("A", 9), ("B", 1)]
    assert query(dbt_project, 'select count(*) from domain."Shop:Orders"') == [(2,)]


def test_last_updated_column_keeps_the_newest_value_against_a_newer_load(dbt_project):
    write_feed(dbt_project, feed(extra="last_updated: updated_at\n",
                                 columns="  - {name: updated_at, type: Datetime}\n"))
    write_part(dbt_project, "2026-11-26", "part-0.parquet",
               [{"order_id": "A", "amount": 2, "updated_at": "2026-11-26T10:00:00Z"},
                {"order_id": "A", "amount": 1, "updated_at": "2026-11-25T10:00:00Z"}])
    land(dbt_project, "--date", "2026-11-26")
    build(dbt_project)
    assert table(dbt_project) == [("A", 2)]
    write_part(dbt_project, "2026-11-27", "part-0.parquet",
               [{"order_id": "A", "amount": 3, "updated_at": "2026-11-20T00:00:00Z"}])
    land(dbt_project, "--date", "2026-11-27")
    build(dbt_project)
    assert table(dbt_project) == [("A", 2)]  # an older last-updated value loses, though its load is newer


def test_composite_key_concatenates_escaped_parts_into_pk_and_a_stable_uuid(dbt_project):
    write_feed(dbt_project, feed(columns="  - {name: line, type: String, required: true}\n").replace(
        "primary_key: [order_id]", "primary_key: [order_id, line]"))
    write_part(dbt_project, "2026-11-25", "part-0.parquet", [
        {"order_id": "A", "line": "1", "amount": 1}, {"order_id": "A", "line": "2", "amount": 2},
        {"order_id": "A|1", "line": "", "amount": 3}, {"order_id": "A", "line": "1", "amount": 4}])
    land(dbt_project, "--date", "2026-11-25")
    build(dbt_project)
    rows = table(dbt_project, columns="_pk, amount, _uuid_pk")
    assert [(pk, amount) for pk, amount, _ in rows] == [("A\\|1|", 3), ("A|1", 4), ("A|2", 2)]
    uuids = {str(u) for _, _, u in rows}
    assert len(uuids) == 3
    assert query(dbt_project, "select cast(md5('A|1') as uuid)")[0][0] in {u for _, _, u in rows}


def test_rejected_rows_go_to_the_side_table_with_their_reason_within_the_threshold(dbt_project):
    write_feed(dbt_project, feed(extra="error_threshold: 0.05\n",
                                 columns="  - {name: placed_at, type: Datetime}\n"))
    rows = [{"order_id": f"O{i:03d}", "amount": i, "placed_at": "2026-11-25T08:00:00Z"} for i in range(98)]
    rows += [{"order_id": None, "amount": 1, "placed_at": "2026-11-25T08:00:00Z"},
             {"order_id": "BAD", "amount": 2, "placed_at": "yesterday-ish"}]
    write_part(dbt_project, "2026-11-25", "part-0.parquet", rows)
    land(dbt_project, "--date", "2026-11-25")
    build(dbt_project)
    assert query(dbt_project, 'select count(*) from domain."Shop:Orders"') == [(98,)]
    rejected = query(dbt_project, 'select _reject_reason, order_id, placed_at, _file_row '
                                  'from domain."Shop:Orders__rejected" order by _file_row')
    assert rejected == [("order_id: required value missing", None, "2026-11-25T08:00:00Z", 98),
                        ("placed_at: cannot cast yesterday-ish to Datetime", "BAD", "yesterday-ish", 99)]


def test_rejects_over_the_threshold_fail_the_build_and_leave_the_table_unchanged(dbt_project):
    write_feed(dbt_project, feed())
    text = pa.schema([("order_id", pa.string()), ("amount", pa.string())])
    write_part(dbt_project, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": "1"}], text)
    land(dbt_project, "--date", "2026-11-25")
    build(dbt_project)
    bad = [{"order_id": "A", "amount": "lots"}] + [{"order_id": f"N{i}", "amount": "1"} for i in range(9)]
    write_part(dbt_project, "2026-11-26", "part-0.parquet", bad, text)
    land(dbt_project, "--date", "2026-11-26")

    with pytest.raises(BuildError) as failure:
        build(dbt_project)

    assert ("feed Shop:Orders (feeds/shop/orders.yml): 1 of 10 rows rejected (10.00%), over the error threshold "
            "of 1.00%; the domain table is unchanged") in str(failure.value)
    assert table(dbt_project) == [("A", 1)]
    assert query(dbt_project, 'select _reject_reason from domain."Shop:Orders__rejected"') == [
        ("amount: cannot cast lots to Integer",)]


NESTED = """id: df-bbbbbb
source: Shop
name: OrderExperiments
courier: shop
tag: orders
primary_key: [order_id, experiment_id]
unnest: experiments
columns:
  - {name: order_id, type: String, required: true}
  - {name: experiment_id, type: String, from: experiments.experiment_id}
  - {name: is_holdback, type: Boolean, from: experiments.is_holdback}
  - {name: plan, type: String, from: "attributes[plan]"}
  - {name: sku, type: String, from: "tags[sku]"}
  - {name: city, type: String, from: address.city}
"""

NESTED_SCHEMA = pa.schema([
    ("order_id", pa.string()),
    ("experiments", pa.list_(pa.struct([("experiment_id", pa.string()), ("is_holdback", pa.bool_())]))),
    ("attributes", pa.list_(pa.struct([("id", pa.string()), ("name", pa.string()), ("value", pa.string())]))),
    ("tags", pa.map_(pa.string(), pa.string())),
    ("address", pa.struct([("city", pa.string()), ("zip", pa.string())])),
])


def test_nested_fields_are_extracted_and_a_list_unnests_to_one_row_per_element(dbt_project):
    write_feed(dbt_project, NESTED, "order_experiments.yml")
    write_part(dbt_project, "2026-11-25", "part-0.parquet", [
        {"order_id": "A", "experiments": [{"experiment_id": "e1", "is_holdback": False},
                                          {"experiment_id": "e2", "is_holdback": True}],
         "attributes": [{"id": "1", "name": "country", "value": "DE"}, {"id": "2", "name": "plan", "value": "pro"}],
         "tags": [("sku", "s-1"), ("size", "M")], "address": {"city": "Berlin", "zip": "10115"}},
        {"order_id": "B", "experiments": [], "attributes": [], "tags": [], "address": None},
    ], NESTED_SCHEMA)
    land(dbt_project, "--date", "2026-11-25")
    build(dbt_project)
    assert table(dbt_project, "Shop:OrderExperiments", "order_id, experiment_id, is_holdback, plan, sku, city") == [
        ("A", "e1", False, "pro", "s-1", "Berlin"), ("A", "e2", True, "pro", "s-1", "Berlin")]


ATTRIBUTES = pa.schema([
    ("order_id", pa.string()),
    ("attributes", pa.list_(pa.struct([("id", pa.string()), ("name", pa.string()), ("type", pa.string()),
                                       ("value", pa.string())]))),
])


def test_an_attribute_is_found_by_name_or_for_built_in_attributes_by_type_and_on_request_by_id(dbt_project):
    write_feed(dbt_project, """id: df-aaaaaa
source: Shop
name: Orders
courier: shop
tag: orders
primary_key: [order_id]
columns:
  - {name: order_id, type: String, required: true}
  - {name: device, type: String, from: "attributes[device]"}
  - {name: plan, type: String, from: "attributes[plan]"}
  - {name: by_type, type: String, from: "attributes[type=custom]"}
  - {name: by_id, type: String, from: "attributes[id=6]"}
  - {name: named, type: String, from: "attributes[name=device]"}
""")
    write_part(dbt_project, "2026-11-25", "part-0.parquet", [
        # Optimizely Web: built-in attributes have no name, their key is the type
        {"order_id": "web", "attributes": [{"id": "5", "name": None, "type": "device", "value": "mobile"},
                                           {"id": "6", "name": "plan", "type": "custom", "value": "pro"}]},
        # Full Stack: every attribute is named, custom ones are typed `custom`
        {"order_id": "full-stack", "attributes": [{"id": "7", "name": "device", "type": "custom", "value": "desktop"}]},
    ], ATTRIBUTES)
    land(dbt_project, "--date", "2026-11-25")
    build(dbt_project)
    assert table(dbt_project, "Shop:Orders", "order_id, device, plan, by_type, by_id, named") == [
        ("full-stack", "desktop", None, "desktop", None, "desktop"), ("web", "mobile", "pro", "pro", "pro", None)]


def test_stitch_input_exposes_pii_columns_under_canonical_names(dbt_project):
    write_feed(dbt_project, feed(extra="stitch: true\n",
                                 columns="  - {name: mail, type: String, semantic: email}\n"
                                         "  - {name: first, type: String, semantic: given-name}\n"))
    write_part(dbt_project, "2026-11-25", "part-0.parquet",
               [{"order_id": "A", "amount": 1, "mail": "a@example.com", "first": "Ada"}])
    land(dbt_project, "--date", "2026-11-25")
    build(dbt_project)
    assert query(dbt_project, "select source, _pk, email, given_name from domain.stitch_input") == [
        ("Shop:Orders", "A", "a@example.com", "Ada")]


@pytest.mark.long  # slow end to end: make scaleout (CI), for make test's 10 minutes
def test_full_refresh_rebuilds_the_same_table_from_the_whole_raw_history(dbt_project):
    write_feed(dbt_project, feed())
    write_part(dbt_project, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1},
                                                             {"order_id": "B", "amount": 1}])
    land(dbt_project, "--date", "2026-11-25")
    build(dbt_project)
    write_part(dbt_project, "2026-11-26", "part-0.parquet", [{"order_id": "A", "amount": 2}])
    land(dbt_project, "--date", "2026-11-26")
    build(dbt_project)
    incremental = table(dbt_project, columns="order_id, amount, _file, _file_row, _updated")

    build(dbt_project, "--full-refresh")

    assert table(dbt_project, columns="order_id, amount, _file, _file_row, _updated") == incremental
    assert [row[:2] for row in incremental] == [("A", 2), ("B", 1)]


def test_model_yaml_carries_types_semantic_tags_pii_and_key_tests(dbt_project):
    write_feed(dbt_project, feed(columns="  - {name: mail, type: String, semantic: email}\n"))
    build_yaml = dbt_project / "models/domain/shop/shop__orders.yml"
    assert run_cli(dbt_project, "feeds", "compile").exit_code == 0
    import yaml

    [model] = yaml.safe_load(build_yaml.read_text())["models"]
    columns = {c["name"]: c for c in model["columns"]}
    assert model["config"]["meta"]["pii_columns"] == ["mail"]
    assert columns["mail"]["config"]["meta"] == {"type": "String", "from": "mail", "semantic": ["email"], "pii": True}
    assert columns["amount"]["data_type"] == "bigint"
    assert columns["_pk"]["data_tests"] == [{"courier_unique_key": {"name": "unique_shop__orders__pk",
                                                                   "arguments": {"feed_id": "df-aaaaaa"}}}, "not_null"]
    assert columns["order_id"]["data_tests"] == ["not_null"]
    assert json.dumps(columns["_updated"]["data_type"]) == '"timestamp with time zone"'


def _land_day(project, date: str, key: str) -> None:  # noqa: ANN001
    """A day's file, landed and built by a courier run (which runs no key test)."""
    write_part(project, date, "part-0.parquet", [{"order_id": key, "amount": 1}])
    land(project, "--date", date)


def _duplicate(project, key: str, like: str) -> None:  # noqa: ANN001
    """A second row of `key`, written as if by the build that wrote `like`'s row."""
    import duckdb

    with duckdb.connect(str(project / "warehouse.duckdb")) as db:
        db.execute('insert into domain."Shop:Orders" select * replace ((select _file from domain."Shop:Orders" '
                   f"where order_id = '{like}') as _file, (select _load_id from domain.\"Shop:Orders\" "
                   f"where order_id = '{like}') as _load_id) from domain.\"Shop:Orders\" where order_id = '{key}' "
                   "limit 1")


def _key_test(project) -> None:  # noqa: ANN001
    run_dbt(load_project(project), "test", select=["unique_shop__orders__pk"])


def _feed_built_by_courier_runs(project) -> None:  # noqa: ANN001
    write_feed(project, feed())
    with (project / "sources.yml").open("a") as sources:  # courier runs build the feed
        sources.write("    load_operations:\n      df-aaaaaa: [{type: load, file: orders}]\n")
    assert run_cli(project, "feeds", "compile").exit_code == 0


@pytest.mark.long  # slow end to end: make scaleout (CI), for make test's 10 minutes
def test_the_key_test_reads_the_keys_built_since_it_last_passed_and_fails_until_a_duplicate_is_gone(dbt_project):
    _feed_built_by_courier_runs(dbt_project)
    _land_day(dbt_project, "2026-11-25", "A")
    build(dbt_project)  # a plain dbt build: the key test passes, day 1 is checked
    _duplicate(dbt_project, "A", like="A")  # among rows already checked: not read again
    _land_day(dbt_project, "2026-11-26", "B")
    _key_test(dbt_project)  # day 2's keys only
    _land_day(dbt_project, "2026-11-27", "C")
    _duplicate(dbt_project, "B", like="C")  # day 3's build, not checked yet, wrote a key the table held

    for _ in range(2):  # a failed test records nothing: it fails again
        with pytest.raises(BuildError, match="unique_shop__orders__pk"):
            _key_test(dbt_project)


@pytest.mark.long  # slow end to end: make scaleout (CI), for make test's 10 minutes
def test_the_key_test_over_the_whole_table_finds_a_duplicate_among_distinct_keys(dbt_project):
    # never checked: the whole table is grouped (by hash first on DuckDB, then the repeated hashes' keys)
    _feed_built_by_courier_runs(dbt_project)
    _land_day(dbt_project, "2026-11-25", "A")
    _land_day(dbt_project, "2026-11-26", "B")
    _key_test(dbt_project)
    _land_day(dbt_project, "2026-11-27", "C")
    _land_day(dbt_project, "2026-11-28", "D")
    _land_day(dbt_project, "2026-11-29", "E")
    _duplicate(dbt_project, "D", like="D")  # 3 of 5 builds unchecked: the whole table is read again

    with pytest.raises(BuildError, match="unique_shop__orders__pk"):
        _key_test(dbt_project)


@pytest.mark.long  # slow end to end: make scaleout (CI), for make test's 10 minutes
def test_a_build_with_nothing_new_rewrites_no_table_or_view_until_something_changes(dbt_project):
    def state() -> tuple:
        """The domain rows, the builds recorded, and how often dbt has made the staging view."""
        log = (dbt_project / DBT_LOG_DIR / "dbt.log").read_text()
        return (table(dbt_project), query(dbt_project, "select count(*) from courier.builds"),
                log.count('create view "warehouse"."staging"."stg_shop__orders'))

    def view_sql() -> str:
        return query(dbt_project, "select sql from duckdb_views() where view_name = 'stg_shop__orders'")[0][0]

    write_feed(dbt_project, feed())
    write_part(dbt_project, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])
    land(dbt_project, "--date", "2026-11-25")
    build(dbt_project)
    built, sql = state(), view_sql()

    build(dbt_project)  # nothing new: no statement writes, no build is recorded
    assert state() == built

    write_part(dbt_project, "2026-11-26", "part-0.parquet", [{"order_id": "B", "amount": 2}])
    land(dbt_project, "--date", "2026-11-26")
    build(dbt_project)  # a new file: built and recorded; the view is as it was
    assert table(dbt_project) == [("A", 1), ("B", 2)]
    assert state()[1] != built[1] and state()[2] == built[2]

    write_feed(dbt_project, feed().replace("{name: amount, type: Integer}", "{name: amount, type: Integer, required: true}"))
    build(dbt_project)  # a changed feed: the view is made again, checking the newly required column
    assert state()[2] == built[2] + 1 and view_sql() != sql
    assert table(dbt_project) == [("A", 1), ("B", 2)]


def test_shipped_feeds_build_one_row_per_uuid_from_generated_e3(bucket, make_project, tmp_path):
    import shutil

    from optimizely_courier.dev.generate import E3Spec
    from tests.conftest import ROOT, sources_yaml

    bucket.seed(E3Spec(days=2, rows=400), tmp_path)
    project = make_project(sources_yaml(bucket=bucket.name, endpoint=bucket.s3.url))
    for name in ("dbt_project.yml", "profiles.yml", "macros", "feeds", "models"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, project / name)
    land(project, "--all", courier="optimizely")

    run_dbt(load_project(project), "build")

    for tag, table_name in (("decisions", "Optimizely:Decisions"), ("conversions", "Optimizely:Conversions")):
        raw = query(project, f"select count(distinct uuid) from raw_optimizely.{tag}")[0][0]
        assert query(project, f'select count(*), count(distinct uuid) from domain."{table_name}"') == [(raw, raw)]
    assert query(project, 'select count(*) from domain."Optimizely:Decisions" where plan is not null')[0][0] > 0
    # device is a built-in attribute in the generated export, as on Optimizely Web: no name, key in `type`
    assert query(project, 'select count(*) from domain."Optimizely:Decisions" where device is not null')[0][0] > 0
    assert query(project, 'select count(*) from domain."Optimizely:Conversions__rejected"') == [(0,)]


@pytest.mark.long  # slow end to end: make scaleout (CI), for make test's 10 minutes
def test_dbt_docs_show_semantic_tags_and_pii_flags(dbt_project):
    write_feed(dbt_project, feed(columns="  - {name: mail, type: String, semantic: email}\n"))
    write_part(dbt_project, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1, "mail": "a@example.com"}])
    land(dbt_project, "--date", "2026-11-25")
    build(dbt_project)

    run_dbt(load_project(dbt_project), "docs generate")

    manifest = json.loads((dbt_project / "target" / "manifest.json").read_text())
    model = manifest["nodes"]["model.optimizely_courier.shop__orders"]
    assert model["config"]["contract"]["enforced"] is True  # on DuckDB the column types are enforced
    assert model["meta"]["pii_columns"] == ["mail"]
    assert model["columns"]["mail"]["meta"] == {"type": "String", "from": "mail", "semantic": ["email"], "pii": True}
    catalog = json.loads((dbt_project / "target" / "catalog.json").read_text())
    assert "model.optimizely_courier.shop__orders" in catalog["nodes"]


@pytest.mark.long  # slow end to end: make scaleout (CI), for make test's 10 minutes
def test_dbt_builds_and_checks_freshness_from_another_directory(dbt_project, tmp_path):
    import datetime as dt
    import os
    import subprocess
    import sys

    today = dt.date.today().isoformat()
    write_feed(dbt_project, feed())
    write_part(dbt_project, today, "part-0.parquet", [{"order_id": "A", "amount": 1}])
    land(dbt_project, "--date", today)
    assert run_cli(dbt_project, "feeds", "compile").exit_code == 0
    elsewhere = tmp_path / "orchestrator"
    elsewhere.mkdir()
    dbt = [str(Path(sys.executable).parent / "dbt")]
    where = ["--project-dir", str(dbt_project), "--profiles-dir", str(dbt_project)]
    env = {**os.environ, "DO_NOT_TRACK": "1"}

    built = subprocess.run(dbt + ["build", *where], cwd=elsewhere, capture_output=True, text=True, env=env)
    fresh = subprocess.run(dbt + ["source", "freshness", *where], cwd=elsewhere, capture_output=True, text=True,
                           env=env)

    assert built.returncode == 0, built.stdout
    assert table(dbt_project) == [("A", 1)]
    assert fresh.returncode == 0, fresh.stdout
    assert "PASS freshness of raw_shop.orders" in fresh.stdout
    assert not list(elsewhere.glob("*.duckdb"))  # the project's warehouse, not a new one where dbt ran


def test_dbt_ls_lists_no_python_test_fixtures(dbt_project):
    import os
    import subprocess
    import sys

    fixtures = dbt_project / "tests" / "fixtures"
    fixtures.mkdir(parents=True)
    (fixtures / "orders_check.sql").write_text("select 1 as order_id where false\n")
    (fixtures / "schema.yml").write_text("version: 2\nsources: [{name: raw_fixture, tables: [{name: orders}]}]\n")
    write_feed(dbt_project, feed())
    assert run_cli(dbt_project, "feeds", "compile").exit_code == 0

    listed = subprocess.run([str(Path(sys.executable).parent / "dbt"), "ls", "--quiet"], cwd=dbt_project,
                            capture_output=True, text=True, env={**os.environ, "DO_NOT_TRACK": "1"})

    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "optimizely_courier.domain.shop.shop__orders" in listed.stdout.split()
    assert "fixture" not in listed.stdout and "orders_check" not in listed.stdout
