"""The record in a cloud warehouse (Snowflake, ...): its two tables read through dlt's own client.

Landing decides what is new with DuckDB queries (`optimizely_courier.landing.record`). On a cloud
warehouse the record's tables live there, so they are fetched once per run (Arrow, one query each) into
an in-memory DuckDB under the dataset's name. They hold one row per landed file version and per load:
a year of a busy account is about 100,000 small rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import duckdb

from optimizely_courier.errors import CourierError, one_line
from optimizely_courier.landing.record import LOADS_TABLE, RECORD_TABLE

if TYPE_CHECKING:
    import dlt


@contextmanager
def warehouse_record(pipeline: dlt.Pipeline, dataset: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB where `<dataset>._courier_files` and `<dataset>._dlt_loads` are copies of the
    warehouse's (absent before the first landing)."""
    with duckdb.connect() as db:
        db.execute(f'create schema "{dataset}"')
        for table in (RECORD_TABLE, LOADS_TABLE):
            rows = _fetch(pipeline, dataset, table)
            if rows is not None:
                db.execute(f'create table "{dataset}".{table} as select * from rows')
        yield db


def _fetch(pipeline: dlt.Pipeline, dataset: str, table: str):  # noqa: ANN202 - a pyarrow Table, or None
    """The whole table, its columns named in lower case (Snowflake gives them in upper case); None when
    the table is not there yet."""
    from optimizely_courier.compat import ConfigFieldMissingException, DatabaseUndefinedRelation

    destination = pipeline.destination.destination_name
    try:
        with pipeline.sql_client() as client, \
                client.execute_query(f"select * from {client.make_qualified_table_name(table)}") as cursor:
            rows = cursor.arrow()
    except DatabaseUndefinedRelation:
        return None
    except ConfigFieldMissingException as exc:
        raise CourierError(f"warehouse {destination}: dlt found no {', '.join(exc.fields)} for its "
                           f"{destination} destination: set them in .dlt/secrets.toml "
                           f"([destination.{destination}.credentials]) or in the environment "
                           f"(DESTINATION__{destination.upper()}__CREDENTIALS)") from None
    except Exception as exc:  # noqa: BLE001 - each warehouse's driver has its own errors (refused, bad login)
        raise CourierError(f"warehouse {destination}: cannot read {dataset}.{table}: "
                           f"{one_line(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}") from exc
    return rows.rename_columns([name.lower() for name in rows.column_names])
