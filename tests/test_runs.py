"""Courier runs: load operations, sample mode, statuses, --json, history, validate and explore."""

from __future__ import annotations

import json
import re

import psutil
import pyarrow as pa
import pytest

from tests.cases import ORDERS_FEED
from tests.conftest import SHOP_SOURCES, landed, query, run_cli, write_feed
from tests.conftest import write_part as write_any

FEED = ORDERS_FEED + "  - {name: email, type: String, semantic: email}\n"
SCHEMA = pa.schema([("order_id", pa.string()), ("amount", pa.int64()), ("email", pa.string())])


def write_part(root, day: str, name: str, rows: list[dict]) -> None:
    write_any(root, day, name, rows, SCHEMA)


def with_operations(root, operations: str) -> None:
    (root / "sources.yml").write_text(SHOP_SOURCES + f"    load_operations: {operations}\n")


@pytest.fixture
def shop(dbt_project):
    write_feed(dbt_project, FEED)
    assert run_cli(dbt_project, "feeds", "compile").exit_code == 0
    return dbt_project


def orders(root) -> list[tuple]:
    return query(root, 'select order_id, amount from domain."Shop:Orders" order by all')


def domain_tables(root) -> list[tuple]:
    return query(root, "select table_name from information_schema.tables where table_schema = 'domain' order by 1")


def test_sample_mode_lands_files_keeps_samples_and_touches_no_domain_table(shop):
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])
    write_part(shop, "2026-11-26", "part-0.parquet", [{"order_id": "B", "amount": 2}])
    with_operations(shop, "{}")

    result = run_cli(shop, "run", "shop", "--all")

    assert result.exit_code == 0, result.output
    assert landed(result.output, "orders") == (2, 2, 0)
    assert domain_tables(shop) == []
    listing = run_cli(shop, "samples", "shop").output.splitlines()
    assert listing == ["orders           2026-11-26          1 rows  "
                       ".courier/samples/shop/orders/2026-11-26__part-0.parquet"]


def test_unknown_feed_id_fails_with_the_exact_message_after_landing_the_files(shop):
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])
    with_operations(shop, '{df-xxxxxx: [{type: load, file: orders}], df-aaaaaa: [{type: load, file: orders}], '
                          'df-yyyyyy: [{type: truncate}]}')

    result = run_cli(shop, "run", "shop", "--date", "2026-11-25")

    assert result.exit_code == 1
    assert result.output.splitlines()[-2:] == ["Error running load-operations task",
                                               'Cannot find required feeds: "df-xxxxxx", "df-yyyyyy"']
    assert query(shop, "select count(*) from raw_shop.orders") == [(1,)]
    assert domain_tables(shop) == []
    [(status, error)] = [(r["status"], r["error"]) for r in json.loads(run_cli(shop, "history", "--json").output)]
    assert status == "failed" and error.endswith('"df-xxxxxx", "df-yyyyyy"')


def test_load_then_load_upserts_and_prints_statuses_in_order(shop):
    with_operations(shop, "{df-aaaaaa: [{type: load, file: orders}]}")
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}, {"order_id": "B", "amount": 1}])
    assert run_cli(shop, "run", "shop", "--date", "2026-11-25").exit_code == 0
    write_part(shop, "2026-11-26", "part-0.parquet", [{"order_id": "A", "amount": 2}])

    result = run_cli(shop, "run", "shop", "--date", "2026-11-26")

    assert result.exit_code == 0, result.output
    assert orders(shop) == [("A", 2), ("B", 1)]
    statuses = [re.sub(r"^\d\d:\d\d:\d\d ", "", line) for line in result.output.splitlines()
                if re.match(r"^\d\d:\d\d:\d\d ", line)]
    assert statuses == ["Courier sensor started", "Waiting for source data",
                        "Loading data: 1 file(s), 0.0 MB for 1 day(s)", "Committing domain transactions",
                        "Courier job completed"]
    assert re.fullmatch(r"Completed in \d+ seconds?", result.output.splitlines()[-1])
    assert re.search(r"Shop:Orders\s+0\s+1\s+0$", result.output, re.M)  # A updated: 0 inserted, 1 updated


def test_truncate_runs_first_wherever_it_appears_and_leaves_only_this_runs_rows(shop):
    with_operations(shop, "{df-aaaaaa: [{type: load, file: orders}, {type: truncate}]}")
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}, {"order_id": "B", "amount": 1}])
    write_part(shop, "2026-11-26", "part-0.parquet", [{"order_id": "C", "amount": 3}])
    assert run_cli(shop, "run", "shop", "--date", "2026-11-25").exit_code == 0
    assert orders(shop) == [("A", 1), ("B", 1)]

    result = run_cli(shop, "run", "shop", "--date", "2026-11-26")

    assert result.exit_code == 0, result.output
    assert orders(shop) == [("C", 3)]
    assert "(truncated first)" in result.output


@pytest.mark.long  # slow end to end: make scaleout (CI), for make test's 10 minutes
def test_rerunning_an_already_landed_day_reloads_its_rows_into_the_domain_table(shop):
    with_operations(shop, "{df-aaaaaa: [{type: truncate}, {type: load, file: orders}]}")
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])
    write_part(shop, "2026-11-26", "part-0.parquet", [{"order_id": "B", "amount": 2}])
    assert run_cli(shop, "run", "shop", "--date", "2026-11-25").exit_code == 0
    assert run_cli(shop, "run", "shop", "--date", "2026-11-26").exit_code == 0

    again = run_cli(shop, "run", "shop", "--date", "2026-11-25")

    assert again.exit_code == 0, again.output
    assert landed(again.output, "orders") == (0, 0, 1)
    assert orders(shop) == [("A", 1)]


def test_a_run_with_nothing_new_builds_nothing_until_the_feed_changes(shop):
    with_operations(shop, "{df-aaaaaa: [{type: load, file: orders}]}")
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])
    assert run_cli(shop, "run", "shop", "--date", "2026-11-25").exit_code == 0
    (shop / "dbt_project.yml").write_text((shop / "dbt_project.yml").read_text() + "\nthis is: [not yaml\n")

    again = run_cli(shop, "run", "shop", "--date", "2026-11-25")  # dbt would fail on the broken project

    assert again.exit_code == 0, again.output
    assert re.search(r"Shop:Orders\s+0\s+0\s+0\s+\(up to date: 1 file\(s\) already built\)", again.output)
    assert json.loads(run_cli(shop, "history", "--json", "--limit", "1").output)[0]["feeds"]["df-aaaaaa"][
        "upserted"] == 0
    (shop / "dbt_project.yml").write_text((shop / "dbt_project.yml").read_text().replace("this is: [not yaml\n", ""))
    write_feed(shop, FEED.replace("{name: amount, type: Integer}", "{name: amount, type: Integer, required: true}"))
    assert run_cli(shop, "feeds", "compile").exit_code == 0

    rebuilt = run_cli(shop, "run", "shop", "--date", "2026-11-25")

    assert rebuilt.exit_code == 0, rebuilt.output
    assert "(up to date)" not in rebuilt.output
    assert query(shop, 'select order_id, amount from domain."Shop:Orders"') == [("A", 1)]


def dbt_workers() -> list[psutil.Process]:
    """The dbt processes this test process started that are still alive."""
    return [child for child in psutil.Process().children(recursive=True)
            if "optimizely_courier.runs.dbt_worker" in " ".join(child.cmdline())]


def test_a_run_leaves_no_dbt_process_behind_whether_it_built_or_not(shop):
    with_operations(shop, "{df-aaaaaa: [{type: load, file: orders}]}")
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])

    built = run_cli(shop, "run", "shop", "--date", "2026-11-25")
    assert built.exit_code == 0, built.output
    assert dbt_workers() == []

    # dbt starts with the run, before it knows whether anything is new: here it is ended unused
    up_to_date = run_cli(shop, "run", "shop", "--date", "2026-11-25")
    assert up_to_date.exit_code == 0, up_to_date.output
    assert "(up to date: 1 file(s) already built)" in up_to_date.output
    assert dbt_workers() == []


@pytest.mark.long  # slow end to end: make scaleout (CI), for make test's 10 minutes
def test_a_renamed_feed_column_rebuilds_every_landed_file_into_the_renamed_column(shop):
    with_operations(shop, "{df-aaaaaa: [{type: load, file: orders}]}")
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])
    assert run_cli(shop, "run", "shop", "--date", "2026-11-25").exit_code == 0
    write_feed(shop, FEED.replace("{name: amount, type: Integer}", "{name: total, type: Integer, from: amount}"))
    assert run_cli(shop, "feeds", "compile").exit_code == 0
    write_part(shop, "2026-11-26", "part-0.parquet", [{"order_id": "B", "amount": 2}])

    result = run_cli(shop, "run", "shop", "--date", "2026-11-26")

    assert result.exit_code == 0, result.output
    assert query(shop, 'select order_id, total from domain."Shop:Orders" order by 1') == [("A", 1), ("B", 2)]
    columns = query(shop, "select column_name from information_schema.columns where table_name = 'Shop:Orders'")
    assert ("amount",) not in columns


def test_ingest_only_lands_raw_rows_and_leaves_domain_tables_alone(shop):
    with_operations(shop, "{df-aaaaaa: [{type: load, file: orders}]}")
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])

    result = run_cli(shop, "run", "shop", "--date", "2026-11-25", "--ingest-only")

    assert result.exit_code == 0, result.output
    assert query(shop, "select count(*) from raw_shop.orders") == [(1,)]
    assert domain_tables(shop) == []
    assert "Committing domain transactions" not in result.output


def test_json_prints_one_document_with_the_run(shop):
    with_operations(shop, "{df-aaaaaa: [{type: load, file: orders}]}")
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}, {"order_id": "", "amount": 2}])
    import click.testing

    from optimizely_courier.cli.main import cli

    result = click.testing.CliRunner().invoke(cli, ["-C", str(shop), "run", "shop", "--date", "2026-11-25", "--json"])

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) >= {"run_id", "courier", "dates", "status", "files", "rows", "feeds", "started_at",
                             "ended_at", "duration_seconds", "error"}
    assert (document["courier"], document["dates"], document["status"], document["error"]) == (
        "shop", "2026-11-25", "success", None)
    assert (document["files"], document["rows"]) == ({"orders": 1}, {"orders": 2})
    assert (document["landed"], document["already_landed"]) == ({"orders": 1}, {"orders": 0})
    assert document["feeds"] == {"df-aaaaaa": {"domain_table": "Shop:Orders", "truncated": False, "files": 1,
                                               "inserted": 2, "updated": 0, "upserted": 2, "rejected": 0,
                                               "already_built": 0}}
    assert "Courier sensor started" in result.stderr


def test_history_records_failed_and_successful_runs_newest_first(shop):
    with_operations(shop, "{df-aaaaaa: [{type: load, file: orders}]}")
    assert run_cli(shop, "run", "shop", "--date", "2026-11-25").exit_code == 1  # no files yet
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])
    assert run_cli(shop, "run", "shop", "--date", "2026-11-25").exit_code == 0

    runs = json.loads(run_cli(shop, "history", "--json").output)
    text = run_cli(shop, "history").output.splitlines()

    assert [(r["status"], r["courier"], r["dates"]) for r in runs] == [("success", "shop", "2026-11-25"),
                                                                          ("failed", "shop", "2026-11-25")]
    assert "no files match" in runs[1]["error"]
    assert runs[0]["feeds"]["df-aaaaaa"]["upserted"] == 1
    assert text[0].split()[1] == "success" and "1 rows landed, 1 upserted" in text[0]
    assert "no files match" in text[-1]


def test_an_unknown_courier_is_an_error_of_the_command_and_no_run_is_recorded(shop):
    from optimizely_courier.config.sources import load_project
    from optimizely_courier.errors import ConfigError
    from optimizely_courier.landing.discovery import RunDates
    from optimizely_courier.runs.run import run_courier

    message = f"{shop / 'sources.yml'}: `couriers.nosuch`: no such courier; configured couriers: shop"
    for json_flag in ([], ["--json"]):
        result = run_cli(shop, "run", "nosuch", "--all", *json_flag)
        assert (result.exit_code, result.output) == (1, f"Error: {message}\n")
    with pytest.raises(ConfigError, match="no such courier"):
        run_courier(load_project(shop), "nosuch", RunDates.everything())

    assert json.loads(run_cli(shop, "history", "--json").output) == []


@pytest.mark.parametrize("operations, feed_text, message", [
    ("{df-aaaaaa: [{type: load, file: returns}]}", FEED,
     "`couriers.shop.load_operations.df-aaaaaa`: loads file tag `returns`, which no entity of courier shop lands"),
    ("{df-aaaaaa: [{file: orders}]}", FEED,
     "`couriers.shop.load_operations.df-aaaaaa[0]`: expected {type: truncate} or {type: load, file: <tag>}"),
    ("{df-aaaaaa: [{type: upsert, file: orders}]}", FEED,
     "`couriers.shop.load_operations.df-aaaaaa[0].type`: expected one of truncate, load; got 'upsert'"),
    ("{df-zzzzzz: [{type: load, file: orders}]}", FEED, "`couriers.shop.load_operations.df-zzzzzz`: no feed in feeds/"),
    ("{}", FEED.replace("tag: orders", "file: refunds"), "feeds/shop/orders.yml:5: `file`: courier shop lands no "
                                                         "file tag `refunds`"),
    ("{}", FEED.replace("tag: orders", "tag: refunds"), "feeds/shop/orders.yml:5: `tag`: courier shop lands no "
                                                        "file tag `refunds`"),
    ("{}", FEED.replace("courier: shop", "courier: store"), "feeds/shop/orders.yml:4: `courier`: no courier `store`"),
])
def test_validate_catches_each_inconsistency_between_sources_and_feeds(dbt_project, operations, feed_text, message):
    write_feed(dbt_project, feed_text)
    with_operations(dbt_project, operations)
    result = run_cli(dbt_project, "validate")
    assert result.exit_code == 1
    assert message in result.output


def test_a_run_warns_about_a_feed_spelling_tag_the_old_way_and_builds_it(dbt_project):
    write_feed(dbt_project, FEED.replace("tag: orders", "file: orders"))
    assert run_cli(dbt_project, "feeds", "compile").exit_code == 0
    with_operations(dbt_project, "{df-aaaaaa: [{type: load, file: orders}]}")
    write_part(dbt_project, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])

    result = run_cli(dbt_project, "run", "shop", "--date", "2026-11-25")

    assert result.exit_code == 0, result.output
    assert "  warning: feeds/shop/orders.yml:5: `file`: deprecated, rename it to `tag`" in result.output.splitlines()
    assert orders(dbt_project) == [("A", 1)]


def test_validate_reports_duplicate_feed_ids_and_passes_a_consistent_project(dbt_project):
    write_feed(dbt_project, FEED)
    with_operations(dbt_project, "{df-aaaaaa: [{type: load, file: orders}]}")
    assert "generated model is missing or out of date" in run_cli(dbt_project, "validate").output
    assert run_cli(dbt_project, "feeds", "compile").exit_code == 0
    assert run_cli(dbt_project, "validate").output.strip() == "sources.yml and 1 feed(s) are consistent"
    write_feed(dbt_project, FEED.replace("name: Orders", "name: Orders2"), "copy.yml")
    result = run_cli(dbt_project, "validate")
    assert result.exit_code == 1
    assert "feed id `df-aaaaaa` is also used by" in result.output


def test_malformed_operations_fail_before_anything_is_pulled(shop):
    with_operations(shop, "{df-aaaaaa: {type: load}}")
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])
    result = run_cli(shop, "run", "shop", "--date", "2026-11-25")
    assert result.exit_code == 1
    assert "`couriers.shop.load_operations.df-aaaaaa`: expected a list of operations" in result.output
    assert not (shop / "warehouse.duckdb").exists() or query(  # (the run history is kept beside it)
        shop, "select count(*) from information_schema.tables where table_schema = 'raw_shop'") == [(0,)]


def test_explore_shows_types_and_semantic_tags_and_runs_where_read_only(shop):
    with_operations(shop, "{df-aaaaaa: [{type: load, file: orders}]}")
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1, "email": "a@example.com"},
                                                      {"order_id": "B", "amount": 5, "email": None}])
    assert run_cli(shop, "run", "shop", "--date", "2026-11-25").exit_code == 0

    result = run_cli(shop, "explore", "Shop:Orders", "--where", "amount > 2", "--limit", "5")

    assert result.exit_code == 0, result.output
    lines = [[cell.strip() for cell in line.strip("|").split("|")] for line in result.output.splitlines()]
    assert lines[0][:3] == ["order_id", "amount", "email"]
    assert lines[1][:3] == ["varchar", "bigint", "varchar"]
    assert lines[2][:3] == ["", "", "email"]
    assert lines[4][:3] == ["B", "5", ""]
    assert result.output.splitlines()[-1] == '(1 row of domain."Shop:Orders")'


def test_explore_cuts_long_cells_but_never_the_key_and_prints_vertical_csv_and_json(shop):
    with_operations(shop, "{df-aaaaaa: [{type: load, file: orders}]}")
    key, mail = "k" * 60, "m" * 60 + "@example.com"
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": key, "amount": 1, "email": mail}])
    assert run_cli(shop, "run", "shop", "--date", "2026-11-25").exit_code == 0

    table = run_cli(shop, "explore", "Shop:Orders").output
    vertical = run_cli(shop, "explore", "Shop:Orders", "--vertical").output
    as_csv = run_cli(shop, "explore", "Shop:Orders", "--format", "csv").output
    as_json = run_cli(shop, "explore", "Shop:Orders", "--format", "json").output

    assert key in table and mail not in table and "…" in table
    pk_column = [line for line in table.splitlines() if key in line][0].split("|")[4].strip()
    assert pk_column == key  # `_pk`, the key as text, is a key column too: never cut
    assert re.search(rf"^order_id +\| {key}$", vertical, re.M) and re.search(rf"^email +\| {mail}$", vertical, re.M)
    assert as_csv.splitlines()[0].startswith("order_id,amount,email")
    assert f"{key},1,{mail}" in as_csv
    rows = json.loads(as_json)
    assert [(r["order_id"], r["amount"], r["email"]) for r in rows] == [(key, 1, mail)]


def test_explore_writes_booleans_and_timestamps_as_other_tools_read_them(dbt_project):
    import datetime as dt

    write_feed(dbt_project, ORDERS_FEED + "  - {name: paid, type: Boolean}\n  - {name: placed_at, type: Datetime}\n")
    assert run_cli(dbt_project, "feeds", "compile").exit_code == 0
    with_operations(dbt_project, "{df-aaaaaa: [{type: load, file: orders}]}")
    placed = dt.datetime(2026, 11, 25, 9, 30, 5, tzinfo=dt.UTC)
    schema = pa.schema([("order_id", pa.string()), ("amount", pa.int64()), ("paid", pa.bool_()),
                        ("placed_at", pa.timestamp("us", tz="UTC"))])
    write_any(dbt_project, "2026-11-25", "part-0.parquet", [
        {"order_id": "A", "amount": 1, "paid": True, "placed_at": placed},
        {"order_id": "B", "amount": 2, "paid": False, "placed_at": None}], schema)
    assert run_cli(dbt_project, "run", "shop", "--date", "2026-11-25").exit_code == 0

    as_csv = run_cli(dbt_project, "explore", "Shop:Orders", "--format", "csv").output.splitlines()
    as_json = json.loads(run_cli(dbt_project, "explore", "Shop:Orders", "--format", "json").output)

    header = as_csv[0].split(",")
    rows = {cells[0]: dict(zip(header, cells)) for cells in (line.split(",") for line in as_csv[1:])}
    assert (rows["A"]["paid"], rows["A"]["placed_at"]) == ("true", "2026-11-25T09:30:05+00:00")
    assert (rows["B"]["paid"], rows["B"]["placed_at"]) == ("false", "")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", rows["A"]["_updated"])
    by_key = {row["order_id"]: row for row in as_json}
    assert (by_key["A"]["paid"], by_key["A"]["placed_at"]) == (True, "2026-11-25T09:30:05+00:00")
    assert by_key["B"]["placed_at"] is None and by_key["A"]["_file_date"] == "2026-11-25"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", by_key["A"]["_updated"])


def test_feeds_list_and_samples_print_json(shop):
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1, "email": None}])
    assert run_cli(shop, "run", "shop", "--date", "2026-11-25").exit_code == 0

    listed = json.loads(run_cli(shop, "feeds", "list", "--json").output)
    kept = json.loads(run_cli(shop, "samples", "shop", "--json").output)

    assert [(f["id"], f["domain_table"], f["courier"], f["file"], f["primary_key"]) for f in listed] == [
        ("df-aaaaaa", "Shop:Orders", "shop", "orders", ["order_id"])]
    assert kept == [{"tag": "orders", "date": "2026-11-25", "rows": 1,
                     "path": ".courier/samples/shop/orders/2026-11-25__part-0.parquet"}]


def test_samples_of_an_unknown_courier_is_an_error_naming_the_configured_ones(shop):
    result = run_cli(shop, "samples", "shpo")

    assert result.exit_code == 1
    assert "sources.yml: `couriers.shpo`: no such courier; configured couriers: shop" in result.output
    assert "Traceback" not in result.output


def test_explore_where_cannot_write_or_read_files(shop):
    with_operations(shop, "{df-aaaaaa: [{type: load, file: orders}]}")
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])
    assert run_cli(shop, "run", "shop", "--date", "2026-11-25").exit_code == 0

    for where in ("1=1; drop table domain.\"Shop:Orders\"", "order_id in (select 1 from read_csv('/etc/passwd'))",
                  "1=1) to '/tmp/leak.csv' (format csv"):
        result = run_cli(shop, "explore", "Shop:Orders", "--where", where)

        assert result.exit_code == 1, where
        assert result.output.startswith("Error: --where: "), where
        assert orders(shop) == [("A", 1)], where


def test_explore_where_is_a_filter_and_nothing_else(shop):
    with_operations(shop, "{df-aaaaaa: [{type: load, file: orders}]}")
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": str(i), "amount": i} for i in range(5)])
    assert run_cli(shop, "run", "shop", "--date", "2026-11-25").exit_code == 0

    commented = run_cli(shop, "explore", "Shop:Orders", "--where", "1=1 --", "--limit", "1")
    huge = run_cli(shop, "explore", "Shop:Orders", "--limit", "99999999999999999999")
    unbalanced = run_cli(shop, "explore", "Shop:Orders", "--where", "(((")
    two = run_cli(shop, "explore", "Shop:Orders", "--where", "1=1); select 42 where (1=1")

    assert commented.exit_code == 0 and commented.output.splitlines()[-1] == '(1 row of domain."Shop:Orders")'
    assert huge.exit_code == 2 and "--limit" in huge.output and "--where" not in huge.output
    assert unbalanced.exit_code == 1 and unbalanced.output.startswith("Error: --where: ")
    assert "limit" not in unbalanced.output.lower()
    assert two.exit_code == 1 and two.output.startswith("Error: --where: ")


def test_explore_names_the_domain_tables_when_the_table_is_unknown(shop):
    with_operations(shop, "{df-aaaaaa: [{type: load, file: orders}]}")
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])
    assert run_cli(shop, "run", "shop", "--date", "2026-11-25").exit_code == 0
    result = run_cli(shop, "explore", "Shop:Order")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no domain table 'Shop:Order'; domain tables: Shop:Orders, " \
                                    "Shop:Orders__rejected"


@pytest.mark.long  # slow end to end: make scaleout (CI), for make test's 10 minutes
def test_seed_workflow_from_sample_run_to_domain_tables(bucket, make_project, tmp_path):
    import shutil

    from optimizely_courier.dev.generate import E3Spec
    from optimizely_courier.feeds.feed import load_feeds
    from tests.conftest import DBT_FILES, ROOT, sources_yaml

    bucket.seed(E3Spec(days=2, rows=300), tmp_path)
    project = make_project(sources_yaml(bucket=bucket.name, endpoint=bucket.s3.url))
    for name in DBT_FILES:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, project / name)

    sample_run = run_cli(project, "run", "optimizely", "--all")
    assert sample_run.exit_code == 0, sample_run.output
    assert len(run_cli(project, "samples", "optimizely").output.splitlines()) == 2
    for tag, name in (("decisions", "Decisions"), ("conversions", "Conversions")):
        made = run_cli(project, "feeds", "init", "--courier", "optimizely", "--tag", tag, "--source", "Optimizely",
                       "--name", name)
        assert made.exit_code == 0, made.output
    assert run_cli(project, "feeds", "compile").exit_code == 0
    ids = {feed.tag: feed.id for feed in load_feeds(project)}
    operations = (f"{{{ids['decisions']}: [{{type: truncate}}, {{type: load, file: decisions}}], "
                  f"{ids['conversions']}: [{{type: load, file: conversions}}]}}")
    sources = project / "sources.yml"
    sources.write_text(sources.read_text().replace("load_operations: {}", f"load_operations: {operations}"))
    assert run_cli(project, "validate").exit_code == 0

    result = run_cli(project, "run", "optimizely", "--all")

    assert result.exit_code == 0, result.output
    assert "Committing domain transactions" in result.output
    assert re.fullmatch(r"Completed in \d+ seconds?", result.output.splitlines()[-1])
    for tag, table in (("decisions", "Optimizely:Decisions"), ("conversions", "Optimizely:Conversions")):
        raw = query(project, f"select count(distinct uuid) from raw_optimizely.{tag}")[0][0]
        assert raw == 600
        assert query(project, f'select count(*), count(distinct uuid) from domain."{table}"') == [(raw, raw)]


def test_notifications_reach_a_webhook_and_a_command_for_the_events_they_listen_to(shop, webhook):
    (shop / "sources.yml").write_text(SHOP_SOURCES + """    load_operations: {df-aaaaaa: [{type: load, file: orders}]}
    notify:
      - {webhook: "${HOOK_URL}", events: [run_failed, files_rejected, new_columns, freshness]}
      - {command: "cat > notified.txt", events: [files_rejected]}
""")
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])
    bad = shop / "mirror" / "orders" / "date=2026-11-25" / "part-1.parquet"
    bad.write_text("not parquet")
    partial = run_cli(shop, "run", "shop", "--date", "2026-11-25")
    broken = run_cli(shop, "run", "shop", "--date", "2026-11-26")  # no files that day: the run fails

    assert partial.exit_code == 3, partial.output
    assert broken.exit_code == 1, broken.output
    received = webhook.received
    events = [item["event"] for item in received]
    assert events == ["files_rejected", "freshness", "run_failed"]  # 2026-11-25 is days old: not fresh
    assert "part-1.parquet is not a readable Parquet file" in received[0]["text"]
    assert received[2]["courier"] == "shop" and "no files match" in received[2]["text"]
    assert "rejected" in (shop / "notified.txt").read_text()
    assert "secret-token" not in partial.output + broken.output



@pytest.mark.long  # slow end to end: make scaleout (CI), for make test's 10 minutes
def test_new_columns_and_rows_rejected_over_the_threshold_reach_the_webhook(shop, webhook):
    (shop / "sources.yml").write_text(SHOP_SOURCES + """    load_operations: {df-aaaaaa: [{type: load, file: orders}]}
    notify:
      - {webhook: "${HOOK_URL}", events: [new_columns, rows_rejected]}
""")
    write_part(shop, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])
    assert run_cli(shop, "run", "shop", "--date", "2026-11-25").exit_code == 0
    write_any(shop, "2026-11-26", "part-0.parquet", [{"order_id": None, "amount": 2, "coupon": "X"}])

    result = run_cli(shop, "run", "shop", "--date", "2026-11-26")

    assert result.exit_code == 1, result.output
    sent = {item["event"]: item["text"] for item in webhook.received}
    assert sorted(sent) == ["new_columns", "rows_rejected"] and len(webhook.received) == 2
    assert "coupon" in sent["new_columns"]
    assert "rejected" in sent["rows_rejected"] and "Shop:Orders" in sent["rows_rejected"]


def test_status_shows_runs_landed_files_freshness_from_the_schedule_unbuilt_files_and_groups(shop):
    import datetime as dt

    today = dt.date.today()
    with_operations(shop, "{df-aaaaaa: [{type: load, file: orders}]}")
    (shop / "sources.yml").write_text((shop / "sources.yml").read_text() + """courier_groups:
  nightly:
    schedule: "0 6 * * *"
    timezone: UTC
    couriers: [{name: shop, wait: 2h}]
""")
    write_part(shop, today.isoformat(), "part-0.parquet", [{"order_id": "A", "amount": 1}])
    first = run_cli(shop, "run", "shop", "--date", today.isoformat())
    assert first.exit_code == 0, first.output
    write_part(shop, today.isoformat(), "part-1.parquet", [{"order_id": "B", "amount": 2}])
    assert run_cli(shop, "run", "shop", "--date", today.isoformat(), "--ingest-only").exit_code == 0

    [status] = json.loads(run_cli(shop, "status", "shop", "--json").output)
    text = run_cli(shop, "status", "nightly").output

    assert status["last_run"]["status"] == status["last_success"]["status"] == "success"
    assert status["landed"] == {"files": 2, "rows": 2, "newest_partition": today.isoformat()}
    fresh = status["freshness"]
    assert fresh["status"] == "pass" and 0 <= fresh["age_hours"] <= 24
    # before a 06:00 run the newest date is 54 h old; 2 h of wait and an hour to land; a day more is an error
    assert (fresh["warn_after_hours"], fresh["error_after_hours"]) == (48 + 6 + 2 + 1, 57 + 24)
    assert [(t["domain_table"], t["rows"], t["files_to_build"]) for t in status["domain_tables"]] == [
        ("Shop:Orders", 1, 1)]  # the second file landed without a build
    assert [(g["group"], g["status"]) for g in status["groups"]] == [("nightly", "active")]
    assert text.splitlines()[0] == "courier shop"
    assert "Shop:Orders: 1 rows, 1 landed file(s) to build" in text
