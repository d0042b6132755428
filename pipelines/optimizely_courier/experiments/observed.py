"""The observations model as `courier results` reads it beside the results model: the same units (a
visitor decided into more than one variation left out under `multiple_exposures: exclude`), each
metric capped where the results model capped it (its `cap` column: a quantile cap depends on every
unit, so it is taken once per build there, never per unit in the incremental observations), and the
experiment's health per enrollment day.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import duckdb

from optimizely_courier.errors import CourierError
from optimizely_courier.experiments.definition import Experiment
from optimizely_courier.experiments.stats import sample_ratio_p_value

SCHEMA = "experiments"
# Above this share of visitors decided into more than one variation, `courier results` warns: leaving
# them out (or counting them in their first variation) is then no longer a rounding matter. Visitors
# re-bucketed by a changed split or a reset cookie are not a random sample: they fall unevenly on the
# variations and differ from the rest (returning visitors, several devices), so removing 1% of the
# visitors unevenly can move a mean by as much as the 1-2% effects experiments are run to find.
MULTIPLE_EXPOSURES_WARNING = 0.01


def quote(name: str) -> str:
    """A DuckDB identifier (the names are validated; quoted so a reserved word reads as a name)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Units:
    """How to read an experiment's counted units from its observations model."""

    experiment: Experiment
    caps: dict[str, float]  # observations column -> where the results model capped it

    @property
    def table(self) -> str:
        return f"{SCHEMA}.{quote(f'exp_{self.experiment.id}__observations')}"

    @property
    def counted(self) -> str:
        """The condition on an observations row that makes it a unit of the results."""
        return "not is_multiple_exposure" if self.experiment.multiple_exposures == "exclude" else "true"

    def value(self, column: str) -> str:
        """A column's value per unit as the results model took it: capped where it was."""
        if column not in self.caps:
            return quote(column)
        return f"least({quote(column)}, {self.caps[column]!r})"


def counted_units(db: duckdb.DuckDBPyConnection, experiment: Experiment) -> Units:
    """The units of `experiment` with the caps its results model applied (a connection to the warehouse)."""
    table = f"{SCHEMA}.{quote(f'exp_{experiment.id}__results')}"
    rows = db.execute(f"select metric, max(cap), max(covariate_cap) from {table} where segment = 'all' "
                      "group by metric").fetchall()
    caps = {}
    for metric, cap, covariate_cap in rows:
        for column, value in ((metric, cap), (f"{metric}__before", covariate_cap)):
            if value is None:
                continue
            if not math.isfinite(value):
                raise CourierError(f"the results of experiment `{experiment.id}` hold a cap of {value} for "
                                   f"`{metric}`: rebuild them with `dbt build --select tag:{experiment.id}`")
            caps[column] = float(value)
    return Units(experiment, caps)


def enrollment(warehouse: Path, experiment: Experiment) -> list[tuple[dt.date, str, int, int, int]]:
    """Per enrollment day (UTC) and variation of the first decision: the visitors, the units the results
    count, and the visitors decided into more than one variation (counted or not)."""
    with duckdb.connect(str(warehouse), read_only=True) as db:
        units = counted_units(db, experiment)
        return db.execute(
            f"select cast(timezone('UTC', decided_at) as date) as day, variation_id, count(*), "
            f"count(*) filter (where {units.counted}), count(*) filter (where is_multiple_exposure) "
            f"from {units.table} group by all order by all").fetchall()


def health(warehouse: Path, experiment: Experiment, variations: list[str]) -> dict:
    """The visitors decided into more than one variation, and per enrollment day the units per variation
    with the sample ratio test of that day's units against the planned split. JSON-ready."""
    rows = enrollment(warehouse, experiment)
    planned = dict(experiment.split)
    days: dict[dt.date, dict] = {}
    by_variation: dict[str, int] = {}
    for day, variation, _, counted, multiple in rows:
        entry = days.setdefault(day, {"day": day.isoformat(), "units": dict.fromkeys(variations, 0),
                                      "multiple_exposures": 0})
        entry["units"][variation] = entry["units"].get(variation, 0) + counted
        entry["multiple_exposures"] += multiple
        by_variation[variation] = by_variation.get(variation, 0) + multiple
    for entry in days.values():
        counts = [entry["units"][v] for v in variations]
        entry["sample_ratio_p"] = sample_ratio_p_value(counts, [planned[v] for v in variations] if planned else None)
    visitors, multiple = sum(row[2] for row in rows), sum(row[4] for row in rows)
    share = multiple / visitors if visitors else 0.0
    return {"multiple_exposures": {"handling": experiment.multiple_exposures, "visitors": multiple,
                                   "of_visitors": visitors, "share": share, "by_first_variation": by_variation,
                                   "warning": share > MULTIPLE_EXPOSURES_WARNING},
            "daily": [days[day] for day in sorted(days)]}
