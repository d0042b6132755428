"""Which files are landed: the record (`optimizely_courier.landing.record`) read wherever the warehouse is,
and the filter of the files a run's days hold that no complete load has landed in their version.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import duckdb

from optimizely_courier.config.sources import Courier, Project
from optimizely_courier.landing import record
from optimizely_courier.landing.discovery import DataFile

if TYPE_CHECKING:
    import dlt


@contextmanager
def record_reader(project: Project, courier: Courier,
                  pipeline: dlt.Pipeline | None = None) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """A DuckDB connection that sees `<dataset>._courier_files` and `<dataset>._dlt_loads` (None before
    anything was landed into the DuckDB warehouse). A cloud warehouse is read through `pipeline` (by
    default the courier's own)."""
    if project.engine == "duckdb":
        if not project.warehouse.exists():
            yield None
            return
        with duckdb.connect(str(project.warehouse), read_only=True) as db:
            yield db
    elif project.engine == "spark":
        from optimizely_courier.landing.lake import lake_record

        with lake_record(project.lake, courier.dataset) as db:
            yield db
    else:
        from optimizely_courier.landing.cloud import warehouse_record
        from optimizely_courier.landing.pipeline import make_pipeline

        with warehouse_record(pipeline or make_pipeline(project, courier), courier.dataset) as db:
            yield db


def not_landed(project: Project, courier: Courier, files: dict[str, list[DataFile]],
               pipeline: dlt.Pipeline | None = None) -> dict[str, list[DataFile]]:
    """Per tag, the files whose key and ETag the record does not hold as landed (all of them when the
    raw table is gone, say dropped with `dlt pipeline <courier> drop <tag>`: they land again)."""
    new: dict[str, list[DataFile]] = {}
    with record_reader(project, courier, pipeline) as db:
        for tag, tag_files in files.items():
            days = {f.date for f in tag_files}
            present = db is not None and tag_files and (project.engine != "duckdb"
                                                        or record.raw_table_exists(db, courier.dataset, tag))
            landed = record.landed_versions(db, courier.dataset, tag, days) if present else {}
            new[tag] = [f for f in tag_files if landed.get(f.key, record.Landed("", "")).etag != f.etag]
    return new
