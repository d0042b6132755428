"""`courier results <id> --plot FILE`: each metric's lift over the baseline as units enrolled, day by
day, with its 95% interval (fixed-horizon, shaded) and its always-valid interval (dashed).

A point for day D compares the units whose first decision was on or before D, each with its whole
attribution window (the observations model's values): the cumulative view of the results page. The
lifts are unadjusted (CUPED adjusts the table's).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

from optimizely_courier.errors import CourierError
from optimizely_courier.experiments.definition import Experiment, Metric
from optimizely_courier.experiments.results import SCHEMA
from optimizely_courier.experiments.stats import Arm, compare


@dataclass(frozen=True)
class Point:
    day: dt.date
    lift: float | None
    low: float | None
    high: float | None
    always_valid_low: float | None
    always_valid_high: float | None


def cumulative_lifts(experiment: Experiment, warehouse: Path, baseline: str) -> dict[str, dict[str, list[Point]]]:
    """Per metric and treatment variation, a point per enrollment day."""
    observed = [m.name for m in experiment.metrics if m.observed]
    with duckdb.connect(str(warehouse), read_only=True) as db:
        rows = db.execute(f"select variation_id, cast(decided_at as date) as day, {', '.join(observed)} "
                          f'from {SCHEMA}."exp_{experiment.id}__observations" order by day').fetchall()
    variations = np.array([row[0] for row in rows])
    days = np.array([row[1] for row in rows])
    values = {name: np.array([row[2 + i] for row in rows], dtype=float) for i, name in enumerate(observed)}
    treatments = sorted(set(variations.tolist()) - {baseline})
    series: dict[str, dict[str, list[Point]]] = {}
    for metric in experiment.metrics:
        series[metric.name] = {variation: [] for variation in treatments}
        for day in sorted(set(days.tolist())):
            enrolled = days <= day
            base = _arm(metric, values, enrolled & (variations == baseline))
            for variation in treatments:
                arm = _arm(metric, values, enrolled & (variations == variation))
                series[metric.name][variation].append(_point(day, arm, base))
    return series


def _arm(metric: Metric, values: dict[str, np.ndarray], selected: np.ndarray) -> Arm | None:
    """The sufficient statistics the results model computes, for the selected units."""
    units = int(selected.sum())
    if units < 2:
        return None
    if metric.observed:
        observation = values[metric.name][selected]
        return Arm(units, float(observation.mean()), float(observation.var(ddof=1)))
    numerator, denominator = values[metric.numerator][selected], values[metric.denominator][selected]
    if denominator.sum() == 0:
        return None
    ratio = numerator.sum() / denominator.sum()
    covariance = float(np.cov(numerator, denominator)[0, 1])
    variance = (numerator.var(ddof=1) - 2 * ratio * covariance + ratio ** 2 * denominator.var(ddof=1)) \
        / denominator.mean() ** 2
    return Arm(units, float(ratio), float(variance))


def _point(day: dt.date, arm: Arm | None, base: Arm | None) -> Point:
    if arm is None or base is None:
        return Point(day, None, None, None, None, None)
    result = compare(arm, base)
    return Point(day, result.lift, result.lift_low, result.lift_high, result.always_valid_low,
                 result.always_valid_high)


def plot_results(experiment: Experiment, warehouse: Path, baseline: str, path: Path) -> Path:
    """Draw the experiment's cumulative lifts against `baseline` (the results table's) into `path` (PNG,
    SVG or PDF, by its suffix)."""
    try:
        import matplotlib
    except ImportError:
        raise CourierError("--plot draws with matplotlib: pip install 'optimizely-courier[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = cumulative_lifts(experiment, warehouse, baseline)
    figure, axes = plt.subplots(len(series), 1, figsize=(8, 2.6 * len(series)), squeeze=False, sharex=True)
    for axis, (metric, by_variation) in zip(axes[:, 0], series.items(), strict=True):
        for variation, points in by_variation.items():
            shown = [p for p in points if p.lift is not None]
            days = [p.day for p in shown]
            label = f"{variation} vs {baseline}"
            line, = axis.plot(days, [100 * p.lift for p in shown], marker="o", label=label)
            axis.fill_between(days, [100 * p.low for p in shown], [100 * p.high for p in shown],
                              color=line.get_color(), alpha=0.2)
            axis.plot(days, [100 * p.always_valid_low for p in shown], "--", color=line.get_color(), linewidth=0.8)
            axis.plot(days, [100 * p.always_valid_high for p in shown], "--", color=line.get_color(), linewidth=0.8)
        axis.axhline(0, color="grey", linewidth=0.8)
        axis.set_title(metric, loc="left")
        axis.set_ylabel("lift, %")
        axis.legend(loc="upper right", fontsize="small")
    axes[-1, 0].set_xlabel("units enrolled up to (decision date); shaded: 95% interval, dashed: always-valid")
    figure.suptitle(f"Experiment {experiment.id} ({experiment.experiment_id})")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
