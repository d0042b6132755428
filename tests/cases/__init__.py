"""Definitions the tests share, as the files a project holds, and the case tables parametrized tests go
through (`tests/cases/feeds.py`).

    feeds/orders.yml                Shop:Orders (df-aaaaaa) over the `shop` courier's tag `orders`:
                                    order_id (required, the key) and amount
    feeds/order_ids.yml             the same feed with order_id only
    sources/shop.yml                the courier `shop`: a local mirror (`mirror/`) landing
                                    `orders/date=<d>/` as the tag `orders`; no load operations
    sources/shop_loading_orders.yml the same, loading Shop:Orders from `orders`
    sources/optimizely.yml          the courier `optimizely`: a local mirror of the export (decisions
                                    and conversions), loading the two shipped feeds
    sources/optimizely_ready.yml    the same, with each type's `_SUCCESS` as its ready marker

Tests write them unchanged, or add lines at the end (a column, a key): messages name their lines.
"""

from pathlib import Path

CASES = Path(__file__).resolve().parent


def text(name: str) -> str:
    """The text of the case file `name` (relative to tests/cases), e.g. `text("feeds/orders.yml")`."""
    return (CASES / name).read_text()


ORDERS_FEED = text("feeds/orders.yml")
ORDER_IDS_FEED = text("feeds/order_ids.yml")
SHOP_SOURCES = text("sources/shop.yml")
SHOP_LOADING_ORDERS = text("sources/shop_loading_orders.yml")
OPTIMIZELY_SOURCES = text("sources/optimizely.yml")
OPTIMIZELY_READY_SOURCES = text("sources/optimizely_ready.yml")
