"""`courier results <id> --plot FILE`: each metric's lift over the baseline as units enrolled, day by
day, with its 95% interval (fixed-horizon, shaded) and its always-valid interval (dashed: the running
intersection, which never widens).

A point for day D is the look of that day (`looks.py`): the units whose first decision was on or before
D, each with its whole attribution window. Under CUPED the lifts are adjusted, as the table's are.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from optimizely_courier.errors import CourierError
from optimizely_courier.experiments.definition import Experiment
from optimizely_courier.experiments.looks import cumulative, look_arms, looks
from optimizely_courier.experiments.stats import compare, mixing_sd, sequential, undefined
from optimizely_courier.extras import require_extra

# Days matplotlib can draw with the margins and ticks of an axis around them (its limit is years 1 to
# 9999 for the axis, not the data: 9999-12-30 alone already fails).
FIRST_DAY, LAST_DAY = dt.date(1000, 1, 1), dt.date(9000, 12, 31)


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
    history = looks(warehouse, experiment)
    variations = sorted({variation for (_, _, variation) in history})
    series: dict[str, dict[str, list[Point]]] = {}
    for metric in experiment.metrics:
        adjusting = experiment.cuped is not None and metric.observed
        days = [(day, look_arms(look, adjusting)) for day, look in cumulative(history, None, metric, variations)]
        tau = mixing_sd([arms[baseline] for _, arms in days if baseline in arms])
        series[metric.name] = {variation: _points(days, variation, baseline, tau)
                               for variation in variations if variation != baseline}
    return series


def _points(days: list, variation: str, baseline: str, tau: float) -> list[Point]:
    points, seen = [], []
    for day, arms in days:
        pair = (arms.get(variation), arms.get(baseline))
        if None in pair or undefined(*pair) is not None:
            points.append(Point(day, None, None, None, None, None))
            continue
        seen.append(pair)
        result, reading = compare(*pair), sequential(seen, tau)
        points.append(Point(day, result.lift, result.lift_low, result.lift_high, reading.lift_low,
                            reading.lift_high))
    return points


def check_plot_path(path: Path) -> None:
    """Refuse, before any work, a file `--plot` cannot write: one line naming it."""
    formats = _formats()
    if not path.name or path.name.startswith("."):
        raise CourierError(f"--plot {str(path)!r}: name a file such as lift.png")
    if path.suffix.lstrip(".").lower() not in formats:
        raise CourierError(f"--plot {path}: unknown image format {path.suffix!r}; use one of "
                           f"{', '.join('.' + f for f in sorted(formats))}")
    parent = path.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() or any(p.is_file() for p in parent.parents) else "does not exist"
        raise CourierError(f"--plot {path}: the folder {parent} {what}")


def _formats() -> set[str]:
    require_extra("plot")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return set(FigureCanvasAgg(Figure()).get_supported_filetypes())


def plot_results(experiment: Experiment, warehouse: Path, baseline: str, path: Path) -> Path:
    """Draw the experiment's cumulative lifts against `baseline` (the results table's) into `path` (PNG,
    SVG, PDF ...: by its suffix, checked by `check_plot_path`)."""
    check_plot_path(path)
    import matplotlib.pyplot as plt

    series = cumulative_lifts(experiment, warehouse, baseline)
    days = [point.day for by_variation in series.values() for points in by_variation.values() for point in points]
    outside = [day for day in days if not FIRST_DAY <= day <= LAST_DAY]
    if outside:
        raise CourierError(f"--plot: decisions on {min(outside)} cannot be drawn (a plot's days run from {FIRST_DAY} "
                           f"to {LAST_DAY}); the table (without --plot) shows them")
    figure, axes = plt.subplots(len(series), 1, figsize=(8, 2.6 * len(series)), squeeze=False, sharex=True)
    for axis, (metric, by_variation) in zip(axes[:, 0], series.items(), strict=True):
        for variation, points in by_variation.items():
            shown = [p for p in points if p.lift is not None and p.low is not None]
            days = [p.day for p in shown]
            label = f"{variation} vs {baseline}"
            line, = axis.plot(days, [100 * p.lift for p in shown], marker="o", label=label)
            axis.fill_between(days, [100 * p.low for p in shown], [100 * p.high for p in shown],
                              color=line.get_color(), alpha=0.2)
            bounded = [p for p in shown if p.always_valid_low is not None]
            for edge in ("always_valid_low", "always_valid_high"):
                axis.plot([p.day for p in bounded], [100 * getattr(p, edge) for p in bounded], "--",
                          color=line.get_color(), linewidth=0.8)
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
