"""The courier's materializations are opt-in: a hand-written incremental model in the same project
behaves exactly as dbt documents it (nothing overrides dbt's `incremental` or `should_full_refresh`)."""

from __future__ import annotations

from tests.conftest import query, write_feed, write_part
from tests.test_domain import build, feed, land

# dbt's documented incremental pattern: the first build and --full-refresh make the table from all
# rows; later builds add the rows not in it yet (is_incremental() true).
LOG = """{{ config(materialized='incremental', unique_key='order_id') }}
select order_id, amount, {{ 'true' if is_incremental() else 'false' }} as added_incrementally
from {{ ref('shop__orders') }}
{% if is_incremental() %}
where order_id not in (select order_id from {{ this }})
{% endif %}
"""
# `full_refresh: false` keeps a model incremental under --full-refresh (dbt's should_full_refresh)
PINNED = LOG.replace("config(", "config(full_refresh=false, ")


def test_a_hand_written_incremental_model_behaves_as_dbt_documents(dbt_project):
    (dbt_project / "models" / "marts").mkdir(parents=True)
    (dbt_project / "models" / "marts" / "orders_log.sql").write_text(LOG)
    (dbt_project / "models" / "marts" / "orders_pinned.sql").write_text(PINNED)
    write_feed(dbt_project, feed())

    def rows(model: str) -> list[tuple]:
        return query(dbt_project, f"select order_id, added_incrementally from main.{model} order by 1")

    write_part(dbt_project, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])
    land(dbt_project, "--date", "2026-11-25", "--ingest-only")
    build(dbt_project)
    assert rows("orders_log") == rows("orders_pinned") == [("A", False)]

    write_part(dbt_project, "2026-11-26", "part-0.parquet", [{"order_id": "B", "amount": 2}])
    land(dbt_project, "--date", "2026-11-26", "--ingest-only")
    build(dbt_project)
    assert rows("orders_log") == rows("orders_pinned") == [("A", False), ("B", True)]

    write_feed(dbt_project, feed().replace("{name: amount, type: Integer}", "{name: amount, type: Integer, required: true}"))
    build(dbt_project)  # a changed feed rebuilds its own tables, not a hand-written model
    assert rows("orders_log") == [("A", False), ("B", True)]

    build(dbt_project, "--full-refresh")
    assert rows("orders_log") == [("A", False), ("B", False)]
    assert rows("orders_pinned") == [("A", False), ("B", True)]  # full_refresh=false: kept, as dbt documents
