"""An experiment's looks: its statistics as they stood after each enrollment day.

The look of day D holds the units whose first decision was on or before D (UTC), each with its whole
attribution window (the observations model's values, read as the results model reads them: the same
units, capped alike; `observed.py`): the cumulative view of the results page. The
always-valid p-value and interval are read over the looks (`stats.sequential`), and `--plot` draws them.

The warehouse is asked once for each day's sufficient statistics per variation and metric (units,
means and co-moments of the observation, its denominator and its CUPED covariate); the days are then
merged in order (Chan, Golub, LeVeque's pairwise update), so a look costs no pass over the units.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

from optimizely_courier.experiments.definition import Experiment, Metric
from optimizely_courier.experiments.observed import Units, counted_units, quote
from optimizely_courier.experiments.stats import Arm, Moments, cuped

# The three series of a metric: its observation, its denominator (1 unless a ratio) and its covariate.
SERIES = 3


@dataclass(frozen=True)
class Sums:
    """Sufficient statistics of a set of units: their count, the means of the three series and their
    co-moment matrix (sums of products of deviations from the means)."""

    units: int
    means: np.ndarray
    comoments: np.ndarray

    def merge(self, other: Sums) -> Sums:
        units = self.units + other.units
        delta = other.means - self.means
        means = self.means + delta * other.units / units
        comoments = self.comoments + other.comoments + np.outer(delta, delta) * self.units * other.units / units
        return Sums(units, means, comoments)

    def arm(self) -> Arm | None:
        """The metric's value (observation over denominator) and its variance per unit (delta method)."""
        numerator, denominator = self.means[0], self.means[1]
        if denominator == 0:
            return None
        ratio = numerator / denominator
        if self.units < 2:
            return Arm(self.units, float(ratio), None)
        v = self.comoments / (self.units - 1)
        variance = (v[0, 0] - 2 * ratio * v[0, 1] + ratio ** 2 * v[1, 1]) / denominator ** 2
        return Arm(self.units, float(ratio), float(variance))

    def moments(self) -> Moments:
        """The observation and its covariate, for CUPED (an observed metric: denominator 1)."""
        v = self.comoments / max(self.units - 1, 1)
        return Moments(self.units, float(self.means[0]), float(v[0, 0]), float(self.means[2]), float(v[2, 2]),
                       float(v[0, 2]))


Looks = dict[tuple[str | None, str, str], list[tuple[dt.date, Sums]]]  # (segment value, metric, variation)
Look = dict[str, Sums]  # per variation, the cumulative sums at one look


def looks(warehouse: Path, experiment: Experiment, segment: str | None = None) -> Looks:
    """Per segment value (None without a segment), metric and variation, the cumulative sums after each
    enrollment day, oldest first."""
    metrics = list(experiment.metrics)
    segment_value = f"cast({quote(segment)} as varchar)" if segment else "null"
    with duckdb.connect(str(warehouse), read_only=True) as db:
        units = counted_units(db, experiment)
        series = [expression for metric in metrics for expression in _series(metric, units)]
        aggregates = ["count(*)"]
        for index in range(0, len(series), SERIES):
            columns = series[index:index + SERIES]
            aggregates += [f"avg({c})" for c in columns]
            aggregates += [f"coalesce(covar_pop({a}, {b}), 0)" for i, a in enumerate(columns) for b in columns[i:]]
        rows = db.execute(f"select variation_id, cast(timezone('UTC', decided_at) as date) as day, {segment_value} "
                          f"as segment_value, {', '.join(aggregates)} from {units.table} where {units.counted} "
                          "group by all order by day").fetchall()
    found: Looks = {}
    for variation, day, value, count, *stats in rows:
        for position, metric in enumerate(metrics):
            width = SERIES + SERIES * (SERIES + 1) // 2
            today = _sums(count, stats[position * width:(position + 1) * width])
            history = found.setdefault((value, metric.name, variation), [])
            history.append((day, history[-1][1].merge(today) if history else today))
    return found


def _series(metric: Metric, units: Units) -> tuple[str, str, str]:
    """SQL for a metric's observation, denominator and covariate over the observations' columns, capped
    where the results model capped them."""
    if not metric.observed:
        return units.value(metric.numerator), units.value(metric.denominator), "0"
    covariate = units.value(f"{metric.name}__before") if units.experiment.cuped else "0"
    return units.value(metric.name), "1", covariate


def _sums(units: int, stats: list[float]) -> Sums:
    means = np.array(stats[:SERIES], dtype=float)
    comoments = np.zeros((SERIES, SERIES))
    position = SERIES
    for i in range(SERIES):
        for j in range(i, SERIES):
            comoments[i, j] = comoments[j, i] = stats[position] * units
            position += 1
    return Sums(int(units), means, comoments)


def cumulative(history: Looks, value: str | None, metric: Metric, variations: list[str]) -> list[tuple[dt.date, Look]]:
    """A metric's looks, oldest first: each day's cumulative sums per variation (a variation joins the
    looks on its first day)."""
    series = {v: dict(history.get((value, metric.name, v), [])) for v in variations}
    current: Look = {}
    found = []
    for day in sorted({day for by_day in series.values() for day in by_day}):
        current = {**current, **{v: by_day[day] for v, by_day in series.items() if day in by_day}}
        found.append((day, current))
    return found


def look_arms(look: Look, adjusting: bool) -> dict[str, Arm]:
    """A look's arms, CUPED-adjusted with that look's theta when `adjusting`; an arm without a value (a
    ratio whose denominator is 0 so far) is left out."""
    if adjusting:
        return cuped({v: sums.moments() for v, sums in look.items()})[0]
    return {v: arm for v, arm in ((v, sums.arm()) for v, sums in look.items()) if arm is not None}
