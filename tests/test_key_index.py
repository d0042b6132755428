"""A domain table's key index (macros/keys.sql): an increment whose keys are new appends them without
reading the table; a key the table holds still goes by the newest-load rule; the index always holds
every key of the table, and one the courier cannot trust is made again from the table."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import query, write_feed, write_part
from tests.test_domain import build, feed, land, table

INDEX = 'courier."keys__df-aaaaaa"'
STAMP = "select comment from duckdb_tables() where schema_name = 'courier' and table_name = 'keys__df-aaaaaa'"


def model_sql(root: Path, stage: str) -> str:
    """The domain model's SQL as dbt last compiled (`compiled`) or ran (`run`) it."""
    [path] = (root / "target" / stage).rglob("shop__orders.sql")
    return path.read_text()


def keys_missing_from_index(root: Path) -> int:
    [(missing,)] = query(root, f'select count(*) from domain."Shop:Orders" where hash(_pk) not in '
                               f"(select key_hash from {INDEX})")
    return missing


def index_asks_in_last_build(root: Path) -> int:
    """How many times dbt's last invocation asked the key index about the window's keys (its debug log)."""
    last = (root / ".courier" / "logs" / "dbt.log").read_text().split("Running with dbt")[-1]
    return last.count('from "courier"."keys__df-aaaaaa" where key_hash in')


def change(root: Path, sql: str) -> None:
    import duckdb

    with duckdb.connect(str(root / "warehouse.duckdb")) as db:
        db.execute(sql)


def day(root: Path, date: str, rows: list[dict]) -> None:
    write_part(root, date, "part-0.parquet", rows)
    land(root, "--date", date)
    build(root)


def test_new_keys_are_appended_without_reading_the_table_and_a_known_key_still_obeys_the_newest_load(dbt_project):
    write_feed(dbt_project, feed())
    day(dbt_project, "2026-11-25", [{"order_id": "A", "amount": 1}, {"order_id": "B", "amount": 5}])

    day(dbt_project, "2026-11-26", [{"order_id": "C", "amount": 3}])
    assert "current_row" not in model_sql(dbt_project, "compiled")  # no lookup of the table's rows
    assert "delete" not in model_sql(dbt_project, "run").lower()  # appended: no row replaced
    assert "__dbt_tmp" not in model_sql(dbt_project, "run")  # straight from the model's query
    assert index_asks_in_last_build(dbt_project) == 1  # the compile's answer chose the append too
    assert table(dbt_project) == [("A", 1), ("B", 5), ("C", 3)]
    assert keys_missing_from_index(dbt_project) == 0

    day(dbt_project, "2026-11-27", [{"order_id": "A", "amount": 9}, {"order_id": "D", "amount": 4}])
    assert "current_row" in model_sql(dbt_project, "compiled")
    assert "delete" in model_sql(dbt_project, "run").lower()
    assert table(dbt_project) == [("A", 9), ("B", 5), ("C", 3), ("D", 4)]
    assert keys_missing_from_index(dbt_project) == 0

    build(dbt_project, "--full-refresh")
    assert keys_missing_from_index(dbt_project) == 0
    assert table(dbt_project) == [("A", 9), ("B", 5), ("C", 3), ("D", 4)]


def test_an_index_made_by_another_duckdb_or_missing_is_not_trusted_and_is_made_again(dbt_project):
    write_feed(dbt_project, feed())
    day(dbt_project, "2026-11-25", [{"order_id": "A", "amount": 1}, {"order_id": "B", "amount": 5}])
    stamp = query(dbt_project, STAMP)
    assert stamp[0][0].startswith("courier-keys:")
    # another DuckDB's hash(): none of the table's keys is found by this one's
    change(dbt_project, f"update {INDEX} set key_hash = key_hash + 1")
    change(dbt_project, f"comment on table {INDEX} is 'courier-keys:0'")

    day(dbt_project, "2026-11-26", [{"order_id": "A", "amount": 7}])
    assert table(dbt_project) == [("A", 7), ("B", 5)]  # replaced, not appended beside the old row
    assert query(dbt_project, STAMP) == stamp
    assert keys_missing_from_index(dbt_project) == 0

    change(dbt_project, f"drop table {INDEX}")  # a warehouse built before the index
    day(dbt_project, "2026-11-27", [{"order_id": "B", "amount": 8}])
    assert table(dbt_project) == [("A", 7), ("B", 8)]
    assert keys_missing_from_index(dbt_project) == 0
