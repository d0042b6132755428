"""The shared definitions in tests/cases/ are what tests/cases/__init__.py says: each feed a valid feed the
`shop` courier loads, each sources.yml valid with the couriers it names."""

import pytest

from optimizely_courier.config.sources import parse_sources_text
from optimizely_courier.feeds.feed import read_feeds
from optimizely_courier.feeds.loadops import check_project
from tests.cases import CASES, SHOP_LOADING_ORDERS, text

FEED_CASES = sorted(path.name for path in (CASES / "feeds").glob("*.yml"))
SOURCES_CASES = {"shop.yml": ["shop"], "shop_loading_orders.yml": ["shop"], "optimizely.yml": ["optimizely"],
                 "optimizely_ready.yml": ["optimizely"]}


@pytest.mark.parametrize("name", FEED_CASES)
def test_each_feed_case_is_a_valid_feed_the_shop_courier_loads(tmp_path, name):
    (tmp_path / "feeds" / "shop").mkdir(parents=True)
    (tmp_path / "feeds" / "shop" / "orders.yml").write_text(text(f"feeds/{name}"))

    feeds, problems = read_feeds(tmp_path)

    assert problems == []
    assert [(f.id, f.domain_table, f.courier, f.tag) for f in feeds] == [("df-aaaaaa", "Shop:Orders", "shop", "orders")]
    assert check_project(parse_sources_text(SHOP_LOADING_ORDERS, tmp_path, {}), feeds) == []


def test_every_sources_case_is_listed():
    assert sorted(SOURCES_CASES) == sorted(path.name for path in (CASES / "sources").glob("*.yml"))


@pytest.mark.parametrize("name, couriers", SOURCES_CASES.items())
def test_each_sources_case_is_a_valid_sources_yml_with_its_couriers(tmp_path, name, couriers):
    project = parse_sources_text(text(f"sources/{name}"), tmp_path, {})

    assert sorted(project.couriers) == couriers
