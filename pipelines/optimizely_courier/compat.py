"""Every dlt and dbt internal the courier relies on, in one place, with the versions it was checked against.

dlt's and dbt's public API (`dlt.pipeline`, `dlt.source`, `dlt.resource`, `dlt.mark`, `dlt.config`,
`dlt.secrets`, a pipeline's methods, `PipelineStepFailed`; dbt's `dbtRunner` and its artifacts) is used
where it is needed. What is not public goes through here: module paths, private attributes, file
layouts, metrics shapes, event payloads and console text. An upgrade that changes one of them breaks
this module only, and a version outside the checked range fails first, with one message naming the
installed version and the supported range (`UnsupportedVersion`), before anything is written.

Nothing here imports dlt or dbt when this module is imported: each is imported (and its version
checked) on first use, so a run with nothing to land never pays for dlt.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optimizely_courier.errors import UnsupportedVersion, one_line

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Supported:
    """The versions of a package the courier was checked against: from `low` up to, not including, `high`."""

    package: str
    low: tuple[int, ...]
    high: tuple[int, ...]
    checked: str  # the releases the test suite passed with

    def __str__(self) -> str:
        return f">={'.'.join(map(str, self.low))},<{'.'.join(map(str, self.high))}"

    def holds(self, version: str) -> bool:
        numbers = tuple(int(n) for n in re.findall(r"\d+", version)[:3])
        return self.low <= numbers < self.high


# The same ranges as pyproject.toml's; `make matrix` tests both ends (constraints/oldest.txt, newest.txt).
DLT = Supported("dlt", (1, 30, 0), (1, 32), "1.30.0, 1.31.0")
# From 1.10.13: the generated model YAML gives generic tests their `arguments:` property, which dbt-core
# reads by default from 1.10.8 (before, the test macro fails: "takes no keyword argument 'arguments'"),
# and columns their semantic tags under `config: meta:`, which the manifest (and `dbt docs`) shows as the
# column's meta from 1.10.13 (1.10.12 was withdrawn; before, the column's meta is empty).
DBT_CORE = Supported("dbt-core", (1, 10, 13), (1, 12), "1.10.13, 1.11.16")
DBT_DUCKDB = Supported("dbt-duckdb", (1, 10, 0), (1, 12), "1.10.0, 1.11.1")


@functools.cache
def require(supported: Supported) -> str:
    """The installed version of `supported.package`; raises UnsupportedVersion outside its range."""
    try:
        version = importlib.metadata.version(supported.package)
    except importlib.metadata.PackageNotFoundError:
        raise UnsupportedVersion(supported.package, None, str(supported)) from None
    if not supported.holds(version):
        raise UnsupportedVersion(supported.package, version, str(supported))
    return version


# -- dlt: names from its internal modules ---------------------------------------------------------------

# name -> the dlt module it lives in. `compat.<name>` imports it on first use, after the version check.
_DLT_NAMES = {
    # a `.model` job (SQL the destination runs) written by hand, and dlt's name of a job file
    "SqlModel": "dlt.common.destination.client",
    "ParsedLoadJobFileName": "dlt.common.storages.load_package",
    # Arrow types as dlt column hints
    "py_arrow_to_table_schema_columns": "dlt.common.libs.pyarrow",
    # DuckDB credentials that carry DuckDB settings (`global_config`)
    "DuckDbCredentials": "dlt.destinations.impl.duckdb.configuration",
    # what dlt raises for a missing destination credential and for a table that is not there
    "ConfigFieldMissingException": "dlt.common.configuration.exceptions",
    "DatabaseUndefinedRelation": "dlt.destinations.exceptions",
    # dlt's config system: specs, resolution in a project's run context, providers (the dlt plugin)
    "configspec": "dlt.common.configuration",
    "resolve_configuration": "dlt.common.configuration",
    "BaseConfiguration": "dlt.common.configuration.specs",
    "TSecretStrValue": "dlt.common.typing",
    "Container": "dlt.common.configuration.container",
    "PluggableRunContext": "dlt.common.configuration.specs.pluggable_run_context",
    "RunContextBase": "dlt.common.configuration.specs.pluggable_run_context",
    "RunContext": "dlt.common.runtime.run_context",
    "ConfigProvider": "dlt.common.configuration.providers",
    "BaseDocProvider": "dlt.common.configuration.providers.doc",
    "plugins": "dlt.common.configuration",
}


def _dlt_name(name: str) -> Any:
    require(DLT)
    module = importlib.import_module(_DLT_NAMES[name])
    if not hasattr(module, name):  # a submodule (`plugins`)
        return importlib.import_module(f"{module.__name__}.{name}")
    return getattr(module, name)


def __getattr__(name: str) -> Any:
    """`compat.SqlModel` and the other names of `_DLT_NAMES`, imported on first use."""
    if name not in _DLT_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _dlt_name(name)


# dlt config keys the courier sets. Runtime keys go in the environment before dlt is imported.
RUNTIME_DEFAULTS = {
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "RUNTIME__LOG_LEVEL": "ERROR",
    # SIGTERM and Ctrl-C reach the courier, not dlt (dlt would swallow one arriving mid-load)
    "RUNTIME__INTERCEPT_SIGNALS": "false",
}
# Arrow tables get `_dlt_load_id` at extract time, without rewriting any file.
ADD_LOAD_ID = "normalize.parquet_normalizer.add_dlt_load_id"
# How many times a failed load job is retried before the load step raises.
LOAD_RETRIES = "load.raise_on_max_retries"
# Where dlt keeps pipelines under its data directory, and the variables naming that and the project.
PIPELINES_FOLDER = "pipelines"
DATA_DIR_ENV = "DLT_DATA_DIR"
PROJECT_DIR_ENV = "DLT_PROJECT_DIR"


def import_dlt():  # noqa: ANN201 - the dlt module
    """dlt, after checking its version (call `settings.configure_runtime` first)."""
    require(DLT)
    import dlt

    return dlt


def duckdb_credentials(path: str, settings: dict[str, Any]) -> Any:
    """dlt's DuckDB credentials for the database at `path`, opened with DuckDB `settings`."""
    return _dlt_name("DuckDbCredentials")(path, global_config=dict(settings))


def arrow_columns(schema: pa.Schema) -> dict:
    """dlt column hints of an Arrow schema's columns."""
    return _dlt_name("py_arrow_to_table_schema_columns")(schema)


def sql_model(query: str) -> str:
    """The text of a `.model` job file: a DuckDB query dlt hands to the destination to run."""
    return str(_dlt_name("SqlModel")(query, "duckdb"))


def current_load_id() -> str:
    """The load id of the package being extracted (inside a resource)."""
    return import_dlt().current.load_package_state()["load_id"]


def count_model_rows(extracted: Any, normalized: Any) -> None:
    """Give dlt's normalize metrics the true row counts of the `.model` jobs of `normalized`'s loads.

    dlt counts a `.model` job as one item when it normalizes it (it never runs the query), so
    `dlt pipeline <courier> trace` would print `decisions: 1 row(s)` for a million rows. The extract
    step has the true counts (`items_count` of `dlt.mark.with_file_import`); they are copied into the
    normalize step's metrics, which the trace keeps. Relies on the layout of `NormalizeInfo.metrics`
    (per load id, a list of dicts whose `job_metrics` and `table_metrics` map job ids and table names to
    `DataWriterMetrics` named tuples); tests/test_dlt_commands.py fails if it changes.
    """
    parse = _dlt_name("ParsedLoadJobFileName").parse
    for load_id, steps in normalized.metrics.items():
        extracted_rows: dict[str, int] = {}
        for step in extracted.metrics.get(load_id, []):
            for table, metrics in step["table_metrics"].items():
                extracted_rows[table] = extracted_rows.get(table, 0) + metrics.items_count
        for step in steps:
            jobs: dict[str, list[tuple[str, str]]] = {}  # table -> (job id, file format) of its jobs
            for job_id, metrics in step["job_metrics"].items():
                job = parse(metrics.file_path)
                jobs.setdefault(job.table_name, []).append((job_id, job.file_format))
            for table, table_jobs in jobs.items():
                rows = extracted_rows.get(table)
                if not rows or any(file_format != "model" for _, file_format in table_jobs):
                    continue
                step["table_metrics"][table] = step["table_metrics"][table]._replace(items_count=rows)
                if len(table_jobs) == 1:
                    job_id = table_jobs[0][0]
                    step["job_metrics"][job_id] = step["job_metrics"][job_id]._replace(items_count=rows)


@dataclass(frozen=True)
class FailedLoad:
    """A load step that failed in the destination: its load id and the database's own words."""

    load_id: str
    reason: str


def failed_load(exc: Exception) -> FailedLoad | None:
    """What a `PipelineStepFailed` of the load step says (None for another step, or no load id).

    dlt quotes the database's error in its retry message, as the last line of a traceback: the text
    after its last `...Exception: `.
    """
    if getattr(exc, "step", None) != "load" or getattr(exc, "load_id", None) is None:
        return None
    text = str(exc)
    lines = [line for line in text.splitlines() if "Exception: " in line]
    reason = lines[-1].split("Exception: ", 1)[1] if lines else (text.strip().splitlines() or [""])[0]
    return FailedLoad(exc.load_id, one_line(reason))


# dlt's filesystem destination: `<dataset>/<table>/<load id>.<file id>.parquet` for a table's rows, and
# `<dataset>/_dlt_loads/<schema>__<load id>.jsonl` for a completed load.
LAKE_LOADS_FOLDER = "_dlt_loads"
LAKE_SCHEMA_FOLDER = "_dlt_version"


def lake_load_id(table: str, file_name: str) -> str:
    """The load id in the name of a file dlt's filesystem destination wrote into `table`'s folder."""
    if not table.startswith("_dlt"):
        return ".".join(file_name.split(".")[:2])
    return file_name.split("__")[1].removesuffix(".jsonl")


def adapt_dataset_qualify() -> None:
    """Let dlt's datasets qualify their queries with the sqlglot this project pins.

    dlt 1.30 calls sqlglot's `qualify(..., infer_schema=...)`, a keyword sqlglot no longer takes (the
    project pins sqlglot 30.22, which fakesnow needs), so every dataset query fails with "qualify() got
    an unexpected keyword argument 'infer_schema'", and `load-package <id> row-counts` with it. Without
    the keyword sqlglot qualifies against the schema dlt passes, as dlt asks. Relies on dlt's internal
    module `dlt.dataset.lineage` calling `qualify` by that name; where sqlglot still takes the keyword,
    nothing changes.
    """
    import functools as _functools
    import inspect

    require(DLT)
    try:  # (`import dlt.dataset.lineage` trips on dlt's lazy names)
        lineage = importlib.import_module("dlt.dataset.lineage")
    except ModuleNotFoundError:
        return
    qualify = lineage.qualify
    if getattr(qualify, "_courier_adapted", False) or "infer_schema" in inspect.signature(qualify).parameters:
        return

    @_functools.wraps(qualify)
    def adapted(*args: Any, infer_schema: bool | None = None, **kwargs: Any) -> Any:
        return qualify(*args, **kwargs)

    adapted._courier_adapted = True  # type: ignore[attr-defined]
    lineage.qualify = adapted


def resolve_in_project(root: Path, spec: Any, sections: tuple[str, ...]) -> Any:
    """Resolve the configspec `spec` under `sections` with dlt's providers for the project at `root`
    (which need not be the working directory)."""
    run_context = _dlt_name("PluggableRunContext")(_dlt_name("RunContext")(str(root)))
    with _dlt_name("Container")().injectable_context(run_context):
        return _dlt_name("resolve_configuration")(spec, sections=sections)


# -- dbt ----------------------------------------------------------------------------------------------

def require_dbt(adapter: str) -> None:
    """Check the versions of dbt-core and, for `adapter` duckdb, dbt-duckdb (without importing dbt)."""
    require(DBT_CORE)
    if adapter == "duckdb":
        require(DBT_DUCKDB)


def node_progress(event: Any) -> dict | None:
    """A dbt event as the courier's progress line: a model or test that started or finished; None for
    any other event. Relies on the payloads of `NodeStart` and `NodeFinished`."""
    if event.info.name not in ("NodeStart", "NodeFinished"):
        return None
    node = event.data.node_info
    line = {"event": "started", "name": node.node_name, "test": node.resource_type == "test"}
    if event.info.name == "NodeFinished":
        result = event.data.run_result
        response = result.adapter_response  # a protobuf Struct: a mapping, not a dict
        rows = response["rows_affected"] if "rows_affected" in response else None
        line.update({"event": "finished", "status": result.status, "seconds": result.execution_time,
                     "rows": int(rows) if rows is not None else None})
    return line


def executed_sql(event: Any) -> str | None:
    """The statement of a dbt `SQLQuery` event (None for any other event)."""
    return event.data.sql if event.info.name == "SQLQuery" else None


def models_tagged(manifest: Any, tags: set[str]) -> int:
    """How many models of a parsed dbt manifest carry one of `tags`."""
    return sum(1 for node in manifest.nodes.values() if node.resource_type == "model" and tags & set(node.tags))


def close_duckdb() -> None:
    """Close the one database dbt-duckdb keeps open for its process (`DuckDBConnectionManager._ENV`);
    nothing when another adapter ran."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    if DuckDBConnectionManager._ENV is not None:
        DuckDBConnectionManager._ENV.close()


# dbt's headers of an error message: the informative line comes after them.
ERROR_HEADERS = ("Runtime Error", "Compilation Error", "Database Error", "Parsing Error")


@dataclass(frozen=True)
class NodeFailure:
    """A model or test that failed in a dbt invocation."""

    name: str  # the model's or test's name (the last part of its unique id, before a test's hash)
    status: str  # error | fail
    message: str  # the informative line of dbt's message
    compiled_code: str | None = None


@dataclass
class RunResults:
    """What dbt's `run_results.json` says: the invocation id, and the nodes that failed, in order."""

    invocation_id: str | None = None
    failures: list[NodeFailure] = field(default_factory=list)


def read_run_results(path: Path) -> RunResults | None:
    """The run results dbt wrote at `path` (None when it wrote none)."""
    if not path.exists():
        return None
    results = json.loads(path.read_text())
    found = RunResults(results.get("metadata", {}).get("invocation_id"))
    for node in results.get("results", []):
        if node["status"] in ("error", "fail"):
            name = node["unique_id"].split(".")[2]  # models: <type>.<package>.<name>; tests add a hash
            found.failures.append(NodeFailure(name, node["status"], _first_line(node.get("message") or node["status"]),
                                              node.get("compiled_code")))
    return found


def _first_line(message: str) -> str:
    """dbt messages carry a header line ('Runtime Error in model ...'); keep the informative line."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(ERROR_HEADERS)]
    return (useful or lines or [message])[0]


def console_cause(output: str) -> str:
    """What dbt's console output says went wrong before any node ran (a project that does not parse,
    say): the lines after "Encountered an error:", without colours and timestamps."""
    lines = [re.sub(r"^\d\d:\d\d:\d\d(\.\d+)?\s+", "", re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line)).strip()
             for line in output.splitlines()]
    lines = [line for line in lines if line]
    marker = next((i for i, line in enumerate(lines) if line.startswith("Encountered an error")), None)
    cause = [line for line in (lines[marker + 1:marker + 5] if marker is not None else lines[-3:])
             if not line.startswith(ERROR_HEADERS)]
    return "; ".join(cause[:3]) if cause else "see .courier/logs/dbt.log"
