"""The courier's dlt pipeline: dlt set up for landing, the destination of each engine, and one load package run.

A courier's pipeline is named after it and kept in `.courier/pipelines`, as dlt's own CLI finds it in a
courier project (`optimizely_courier.dlt_plugin`). dlt is imported on first use: a run with nothing new
never pays for it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

from optimizely_courier import compat
from optimizely_courier.config.sources import Courier, Project
from optimizely_courier.errors import find_courier_error
from optimizely_courier.extras import require_extra
from optimizely_courier.settings import DUCKDB_LANDING_CONFIG, PIPELINES_DIR

if TYPE_CHECKING:
    import dlt

# Entered while a load commits the files read since the last one (progress): dlt normalizes the
# package and the warehouse writes its rows.
CommitCallback = Callable[[], AbstractContextManager]


def import_dlt():  # noqa: ANN201 - the dlt module
    """dlt, imported on first use (a run with nothing new never pays for it), configured for landing."""
    from optimizely_courier.settings import configure_runtime

    configure_runtime()  # telemetry off before dlt is imported
    dlt = compat.import_dlt()
    import pyarrow as pa

    # The system allocator gives memory back between batches; Arrow's default (mimalloc) keeps it, and the
    # peak RSS of a large landing grows with it.
    pa.set_memory_pool(pa.system_memory_pool())
    # Arrow tables get the load id at extract time, without rewriting any file.
    dlt.config[compat.ADD_LOAD_ID] = True
    return dlt


def destination(project: Project):  # noqa: ANN201 - a dlt destination
    """Where raw tables land: the DuckDB warehouse, Parquet in the lake (Spark), or a cloud warehouse
    (configured the dlt way, credentials in .dlt/secrets.toml)."""
    require_extra(project.engine)
    dlt = import_dlt()
    if project.engine == "duckdb":
        return dlt.destinations.duckdb(compat.duckdb_credentials(str(project.warehouse), DUCKDB_LANDING_CONFIG))
    if project.engine == "spark":
        return dlt.destinations.filesystem(bucket_url=project.lake)
    if project.engine == "snowflake":
        # Parquet for dlt's own tables too (typed; its default, JSON, is for rows of Python dicts), and one
        # statement per request (a few more round trips per schema change; Snowflake emulators take no more)
        return dlt.destinations.snowflake(preferred_loader_file_format="parquet", supports_multiple_statements=False)
    return getattr(dlt.destinations, project.engine)()


def make_pipeline(project: Project, courier: Courier) -> dlt.Pipeline:
    """The courier's dlt pipeline: named after it, landing into the project's warehouse or lake."""
    return import_dlt().pipeline(
        pipeline_name=courier.name,
        destination=destination(project),
        dataset_name=courier.dataset,
        pipelines_dir=str(project.root / PIPELINES_DIR),
    )


def run_package(pipeline: dlt.Pipeline, source: dlt.sources.DltSource, on_commit: CommitCallback | None = None,
                **options: str) -> str | None:
    """Extract, normalize and load one package; a courier error raised inside dlt comes out as itself.

    Returns the load id (None when the source yielded nothing).
    """
    from dlt.pipeline.exceptions import PipelineStepFailed

    try:
        extracted = pipeline.extract(source, **options)
        with (on_commit or nullcontext)():
            compat.count_model_rows(extracted, pipeline.normalize())
            info = pipeline.load()
    except PipelineStepFailed as exc:
        error = find_courier_error(exc)
        if error is None:
            raise
        raise error from None
    return info.loads_ids[-1] if info.loads_ids else None


def raw_columns(pipeline: dlt.Pipeline) -> dict[str, dict]:
    """Per tag, the raw table's columns as dlt's schema (synced from the warehouse) knows them."""
    if pipeline.default_schema_name is None:
        return {}
    return {name: dict(table.get("columns", {})) for name, table in pipeline.default_schema.tables.items()}


def expected_columns(courier: Courier, raw: dict[str, dict]) -> dict[str, dict]:
    """Per tag, the column types files must have: the raw table's, and for an entity with a known
    schema (E3 decisions and events) that schema's, so no first file can decide them otherwise."""
    from optimizely_courier.landing.e3 import KNOWN_SCHEMAS
    from optimizely_courier.landing.parts import file_columns

    for entity in courier.entities:
        if entity.schema is not None:
            columns = raw.setdefault(entity.tag, {})
            columns.update({k: v for k, v in file_columns(KNOWN_SCHEMAS[entity.schema]).items() if k not in columns})
    return raw
