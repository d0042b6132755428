"""Shared by the scale-out tests: two projects over the same generated export, one per engine, and their
domain tables read as comparable rows."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from tests.conftest import copy_dbt_files

SOURCES = """{warehouse}couriers:
  optimizely:
    local_path: mirror
    prefix: v1/account_id=12345
    entities:
      - object/file-pattern: "'type=decisions/date='yyyy-MM-dd'/experiment=*/'"
        object/ready-marker: "'type=decisions/date='yyyy-MM-dd'/_SUCCESS'"
        object/land-as: {{file/tag: decisions}}
      - object/file-pattern: "'type=events/date='yyyy-MM-dd'/event=*/'"
        object/ready-marker: "'type=events/date='yyyy-MM-dd'/_SUCCESS'"
        object/land-as: {{file/tag: conversions}}
    load_operations:
      df-7k2m9q: [{{type: load, file: decisions}}]
      df-3p8x1w: [{{type: load, file: conversions}}]
"""
TABLES = {"Optimizely:Decisions": "optimizely__decisions", "Optimizely:Conversions": "optimizely__conversions"}
# An experiment of the generated data (its first experiment id), with a metric of every kind, a cap at a
# quantile and a fixed one; the generated visitors are decided into both variations often, and those
# multiple exposures are left out (the default)
EXPERIMENT = """id: generated
experiment_id: "18786493712"
metrics:
  - {name: purchase_rate, kind: unique, event: purchase}
  - {name: carts, kind: count, event: "add:cart", cap_value: 2}
  - {name: revenue, kind: sum, event: purchase, value: revenue_cents, cap: 90%}
  - {name: revenue_per_cart, kind: ratio, numerator: revenue, denominator: carts}
"""
# The results model's columns both engines must agree on
RESULTS = "variation_id, segment, segment_value, metric, kind, units, total, denominator, mean, variance, cap"
# _load_id and _updated name the landing run, which differs between the two projects by design.
SKIP = ("_load_id", "_updated")


def project(root: Path, mirror: Path, warehouse: str) -> Path:
    root.mkdir()
    shutil.copytree(mirror, root / "mirror")
    (root / "sources.yml").write_text(SOURCES.format(warehouse=warehouse))
    copy_dbt_files(root, "feeds", "models")
    return root


def normal(value):  # noqa: ANN001
    if isinstance(value, dt.datetime):  # DuckDB gives aware UTC values, Spark's Parquet naive UTC ones
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    return str(value) if value.__class__.__name__ == "UUID" else value


def rows(sql: str, database: Path | None = None) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(database) if database else ":memory:", read_only=bool(database)) as db:
        return sorted(tuple(normal(v) for v in row) for row in db.execute(sql).fetchall())


def rounded(row: tuple) -> tuple:
    """Sums of floats differ in their last bits between engines: compare to 9 significant digits."""
    return tuple(float(f"{value:.9g}") if isinstance(value, float) else value for value in row)
