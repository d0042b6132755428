"""The optional features and the extra each needs: one check, one message (dlt's `MissingDependencyException`
style, on one line), before the feature's first import.

The runtime install stays small: Spark, the cloud adapters, the demo's S3 server, plotting and the web
pages are extras (`pip install 'optimizely-courier[spark]'`).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from optimizely_courier.errors import MissingExtra


@dataclass(frozen=True)
class Feature:
    """An optional feature: what it is called in the message, its extra, and the modules it imports."""

    what: str
    extra: str
    modules: tuple[str, ...]


FEATURES = {
    "spark": Feature("the spark engine (`warehouse: {type: spark}`)", "spark", ("pyspark", "dbt.adapters.spark")),
    "snowflake": Feature("the snowflake engine (`warehouse: {type: snowflake}`)", "cloud",
                         ("snowflake.connector", "dbt.adapters.snowflake")),
    "bigquery": Feature("the bigquery engine (`warehouse: {type: bigquery}`)", "cloud",
                        ("google.cloud.bigquery", "dbt.adapters.bigquery")),
    "plot": Feature("--plot", "plot", ("matplotlib",)),
    "ui": Feature("courier ui", "ui", ("starlette", "jinja2", "uvicorn")),
    "demo": Feature("the demo", "demo", ("moto", "flask")),
}


def require_extra(feature: str) -> None:
    """Check that the modules `feature` (a key of FEATURES) imports are installed, without importing them
    (the engines' adapters load in dbt's own process); other names (`duckdb`) need no extra.

    Raises:
        MissingExtra: naming the feature, the first missing module and the `pip install` line.
    """
    needed = FEATURES.get(feature)
    if needed is None:
        return
    for module in needed.modules:
        if not _installed(module):
            raise MissingExtra(needed.what, needed.extra, module)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing (`dbt` of `dbt.adapters.spark`), or refused
        return False
