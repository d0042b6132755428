import json
from pathlib import Path

import pytest

from optimizely_courier.errors import FeedErrors
from optimizely_courier.feeds.compile import compile_feeds
from optimizely_courier.feeds.feed import load_feeds, read_feeds
from tests.cases import ORDER_IDS_FEED as BASE
from tests.cases import SHOP_LOADING_ORDERS
from tests.cases.feeds import INVALID_FEEDS
from tests.conftest import SHOP_SOURCES, run_cli


def write(root: Path, text: str, name: str = "orders.yml") -> None:
    path = root / "feeds" / "shop" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("text, message, line, key", INVALID_FEEDS)
def test_feed_problems_name_the_file_line_and_key(tmp_path, text, message, line, key):
    write(tmp_path, text)
    feeds, problems = read_feeds(tmp_path)
    assert feeds == []
    assert problems, "expected a problem"
    first = problems[0]
    assert (first.file, first.line, first.key) == ("feeds/shop/orders.yml", line, key)
    assert message in str(first)


@pytest.mark.parametrize("tag", ["email", "given-name", "fk-customer-id", "bk-store", "txn-item/order-id",
                                 "pc/product-name", "db/unique", "custom-loyalty-tier", "loy-event/points"])
def test_documented_and_custom_tags_are_accepted(tmp_path, tag):
    write(tmp_path, BASE + f"  - {{name: x, type: String, semantic: {tag}}}\n")
    feeds, problems = read_feeds(tmp_path)
    assert problems == [] and feeds[0].columns[1].semantics == (tag,)


def test_duplicate_feed_ids_across_files_are_reported(tmp_path):
    write(tmp_path, BASE)
    write(tmp_path, BASE.replace("name: Orders", "name: Returns"), "returns.yml")
    _, problems = read_feeds(tmp_path)
    assert [str(p) for p in problems] == [
        "feeds/shop/returns.yml:1: `id`: feed id `df-aaaaaa` is also used by feeds/shop/orders.yml"]


def test_valid_feed_parses_into_columns_sources_and_defaults(tmp_path):
    write(tmp_path, BASE + "  - {name: timestamp, type: Datetime, rename_to: placed_at}\n"
                           "  - {name: plan, type: String, from: \"attributes[plan]\"}\n"
                           "  - {name: total, type: Decimal, scale: 2}\n")
    (feed,) = load_feeds(tmp_path)
    assert feed.domain_table == "Shop:Orders" and feed.model_name == "shop__orders"
    assert (feed.last_updated, feed.stitch, feed.error_threshold) == ("generated", False, 0.01)
    assert [(c.name, str(c.source), c.type) for c in feed.columns] == [
        ("order_id", "order_id", "String"), ("placed_at", "timestamp", "Datetime"),
        ("plan", "attributes[plan]", "String"), ("total", "total", "Decimal")]
    assert feed.column("total").scale == 2


def test_validate_reports_every_problem_at_once_with_lines(make_project):
    project = make_project("couriers: {}\n")
    write(project, BASE.replace("df-aaaaaa", "bad") + "  - {name: x, type: Text}\n")
    write(project, BASE.replace("name: Orders", "name: Returns").replace("[order_id]", "[nope]"), "returns.yml")

    result = run_cli(project, "feeds", "validate")

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "feeds/shop/orders.yml:1: `id`: expected a feed id like df-7k2m9q (courier feeds init generates one); "
        "got 'bad'",
        "feeds/shop/orders.yml:9: `columns[1].type`: expected one of Boolean, Date, Datetime, Decimal, Float, "
        "Integer, String; got 'Text'",
        "feeds/shop/returns.yml:6: `primary_key`: `nope` is not a column of this feed (columns: order_id)",
    ]


def test_a_misspelt_semantic_tag_is_one_problem_not_also_a_missing_feed(make_project):
    project = make_project(SHOP_LOADING_ORDERS)
    write(project, BASE + "  - {name: email, type: String, semantic: emial}\n")

    result = run_cli(project, "validate")

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "feeds/shop/orders.yml:9: `columns[1].semantic`: unknown semantic tag `emial`: did you mean `email`? Use a "
        "documented tag (e.g. email, given-name, fk-<namespace>, txn-item/<field>) or a custom tag starting with "
        "`custom-`"]


def test_commands_needing_valid_feeds_stop_at_the_first_problem_with_a_count(tmp_path):
    write(tmp_path, BASE.replace("df-aaaaaa", "bad") + "  - {name: x, type: Text}\n")
    with pytest.raises(FeedErrors, match=r"orders.yml:1: `id`: .* \(and 1 more problem\(s\): run `courier feeds "
                                         r"validate`\)"):
        load_feeds(tmp_path)


OLD_SPELLING = BASE.replace("tag: orders", "file: orders")
DEPRECATED = "feeds/shop/orders.yml:5: `file`: deprecated, rename it to `tag`"


def test_a_feed_spelling_tag_the_old_way_is_the_same_feed_and_compiles_to_the_same_models(tmp_path):
    write(tmp_path, BASE)
    (new,) = load_feeds(tmp_path)
    write(tmp_path, OLD_SPELLING)
    (old,) = load_feeds(tmp_path)

    assert (old.tag, old.deprecations, new.deprecations) == ("orders", (DEPRECATED,), ())
    assert old == new
    assert compile_feeds([old]) == compile_feeds([new])


@pytest.mark.parametrize("command", [["feeds", "validate"], ["feeds", "compile"], ["feeds", "compile", "--check"],
                                     ["validate"]])
def test_each_feeds_check_warns_once_about_the_old_spelling_naming_file_line_and_new_key(make_project, command):
    project = make_project(SHOP_LOADING_ORDERS)
    write(project, OLD_SPELLING)
    assert run_cli(project, "feeds", "compile").exit_code == 0

    result = run_cli(project, *command)

    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"warning: {DEPRECATED}"]


def test_feeds_list_json_names_the_tag_and_keeps_its_old_name_file(make_project):
    project = make_project(SHOP_SOURCES)
    write(project, BASE)

    [listed] = json.loads(run_cli(project, "feeds", "list", "--json").output)

    assert (listed["tag"], listed["file"]) == ("orders", "orders")
