"""`courier plan`: how many units per variation, and how many days, an experiment needs to detect a
given relative effect on each metric.

The units come from `stats.sample_size`: the fixed-horizon test `courier results` runs (two-sided
Welch z at `alpha`), the baseline's mean and variance per unit as its results model holds them (the
same units and caps; CUPED-adjusted, as its test will be; a ratio's delta-method variance), or given
ones, and the planned split. The days come from the enrollment observed so far: the units counted per
enrollment day (UTC), from the first day to the last, or a given number a day.
"""

from __future__ import annotations

import math
from pathlib import Path

from optimizely_courier.errors import ConfigError, CourierError
from optimizely_courier.experiments.definition import Experiment, Metric
from optimizely_courier.experiments.observed import enrollment
from optimizely_courier.experiments.results import adjusted_arms, find_experiment, results_rows, row_arm
from optimizely_courier.experiments.stats import Arm, sample_size


def plan(root: Path, warehouse: Path, name: str, mde: float, power: float = 0.8, alpha: float = 0.05,
         metric: str | None = None, mean: float | None = None, sd: float | None = None,
         daily_units: float | None = None) -> dict:
    """Per metric of experiment `name` (or only `metric`), the units per variation and the days needed
    to detect a relative effect `mde` with `power` at two-sided `alpha`. `mean` and `sd` (of `metric`'s
    baseline, per unit) and `daily_units` (all variations together) replace the observed ones; with
    all three the experiment need not have run. JSON-ready."""
    experiment = find_experiment(root, name)
    chosen = _chosen(experiment, metric, mean, sd)
    rows = results_rows(warehouse, experiment) if mean is None else _built_rows(warehouse, experiment)
    overall = [row for row in rows if row["segment"] == "all"]
    variations = sorted({row["variation_id"] for row in overall}) or sorted(v for v, _ in experiment.split)
    baseline = experiment.baseline or (variations[0] if variations else "baseline")
    weights = _weights(experiment, variations, baseline)
    enrolled, days_seen = _enrollment(warehouse, experiment) if daily_units is None and rows else (None, None)
    rate = daily_units if daily_units is not None else enrolled / days_seen if days_seen else None
    found = {"experiment": experiment.id, "mde": mde, "power": power, "alpha": alpha, "baseline": baseline,
             "split": weights, "daily_units": rate,
             "daily_units_from": "given" if daily_units is not None else f"observed over {days_seen} day(s)"
             if days_seen else None, "enrolled": enrolled, "metrics": []}
    for entry in chosen:
        given = (mean, sd if sd is not None else math.sqrt(mean * (1 - mean))) if mean is not None else None
        arm = Arm(0, given[0], given[1] ** 2) if given else _baseline_arm(experiment, entry, overall, baseline)
        # a rate's treatment variance follows from the rate it would have, unless CUPED adjusted it
        rate = entry.kind == "unique" and (given is not None or experiment.cuped is None)
        found["metrics"].append(_metric_plan(entry, arm, "given" if given else "observed", rate, found))
    return found


def _built_rows(warehouse: Path, experiment: Experiment) -> list[dict]:
    """The results rows when the experiment has them (its enrollment can then be observed), else none."""
    try:
        return results_rows(warehouse, experiment)
    except CourierError:
        return []


def _chosen(experiment: Experiment, metric: str | None, mean: float | None, sd: float | None) -> list[Metric]:
    names = {m.name: m for m in experiment.metrics}
    if metric is not None and metric not in names:
        raise CourierError(f"experiment `{experiment.id}` has no metric `{metric}`; metrics: {', '.join(names)}")
    if (mean is not None or sd is not None) and metric is None:
        raise CourierError("--mean and --sd describe one metric's baseline: name it with --metric")
    if metric is not None and (mean is None) != (sd is None) and not (sd is None and names[metric].kind == "unique"):
        raise CourierError("give both --mean and --sd (a `unique` metric's --sd follows from its --mean)")
    if mean is not None and names[metric].kind == "unique" and not 0 < mean < 1:
        raise CourierError(f"--mean: `{metric}` is a rate (a `unique` metric): expected a number between 0 and 1")
    return [names[metric]] if metric is not None else list(experiment.metrics)


def _weights(experiment: Experiment, variations: list[str], baseline: str | None) -> dict[str, float]:
    """Each variation's share of the units: the planned split, or equal (two variations when none has
    units yet and no split names them)."""
    planned = dict(experiment.split)
    if planned:
        if baseline not in planned:
            raise ConfigError(experiment.path, "split", f"the split names {', '.join(sorted(planned))}, not the "
                                                        f"baseline {baseline}")
        total = sum(planned.values())
        return {v: w / total for v, w in sorted(planned.items())}
    names = variations if len(variations) >= 2 else [baseline, "treatment"]
    return {v: 1 / len(names) for v in names}


def _enrollment(warehouse: Path, experiment: Experiment) -> tuple[int, int]:
    """The units counted so far, and the days from the first enrollment day to the last, both included."""
    rows = enrollment(warehouse, experiment)
    if not rows:
        return 0, 0
    days = [row[0] for row in rows]
    return sum(row[3] for row in rows), (max(days) - min(days)).days + 1


def _baseline_arm(experiment: Experiment, metric: Metric, overall: list[dict], baseline: str) -> Arm | None:
    arms = {row["variation_id"]: row for row in overall if row["metric"] == metric.name}
    if baseline not in arms:
        raise CourierError(f"experiment `{experiment.id}`: its baseline {baseline} has no units yet; give the "
                           "baseline's --mean and --sd of a --metric")
    if experiment.cuped is not None and metric.observed:
        return adjusted_arms(arms)[0][baseline]
    return row_arm(arms[baseline])


def _metric_plan(metric: Metric, arm: Arm | None, source: str, rate: bool, found: dict) -> dict:
    entry = {"metric": metric.name, "kind": metric.kind, "from": source,
             "baseline_mean": None if arm is None else arm.mean,
             "baseline_sd": None if arm is None or arm.variance is None else math.sqrt(arm.variance)}
    reason = _why_not(metric, arm, found["mde"])
    if reason is not None:
        return {**entry, "units": None, "total_units": None, "days": None, "days_to_go": None, "reason": reason}
    weights, baseline = found["split"], found["baseline"]
    mde = found["mde"] if metric.better == "higher" else -found["mde"]
    total = max(sample_size(arm.mean, arm.variance, mde, (weights[baseline], weights[v]), found["alpha"],
                            found["power"], rate) for v in weights if v != baseline)
    units = {v: math.ceil(total * w) for v, w in weights.items()}
    total_units = sum(units.values())
    daily, enrolled = found["daily_units"], found["enrolled"] or 0
    days = math.ceil(total_units / daily) if daily else None
    to_go = math.ceil(max(total_units - enrolled, 0) / daily) if daily else None
    return {**entry, "units": units, "total_units": total_units, "days": days, "days_to_go": to_go,
            **({} if daily else {"reason": "no enrollment observed yet: give --daily-units"})}


def _why_not(metric: Metric, arm: Arm | None, mde: float) -> str | None:
    """Why no sample size can be given for this metric, or None when it can."""
    if arm is None:
        return "the baseline has no value (a ratio whose denominator is 0)"
    if arm.variance is None:
        return "fewer than 2 units in the baseline: no variance to plan with"
    if arm.mean == 0:
        return "the baseline's mean is 0: a relative effect on it is 0"
    if arm.variance == 0:
        return "no variation within the baseline: no variance to plan with"
    changed = arm.mean * (1 + (mde if metric.better == "higher" else -mde))
    if metric.kind == "unique" and not 0 < changed < 1:
        return f"a rate of {arm.mean:.4g} cannot move by {mde:.1%}: it would leave (0, 1)"
    return None


def render_plan(found: dict) -> str:
    """The plan as text: what it assumes, then a row per metric."""
    from rich import box
    from rich.table import Table

    from optimizely_courier.text import as_text

    split = " / ".join(f"{w:.0%}" for w in found["split"].values())
    daily = found["daily_units"]
    enrollment = ("Enrollment: none observed yet (give --daily-units)" if daily is None else
                  f"Enrollment: {daily:,.0f} units a day ({found['daily_units_from']}"
                  + (f"; {found['enrolled']:,} so far)" if found["enrolled"] is not None else ")"))
    header = (f"Plan for experiment {found['experiment']}: a {found['mde']:.1%} relative effect (in each metric's "
              f"better direction), power {found['power']:.0%}, two-sided alpha {found['alpha']:g}, "
              f"split {split} ({', '.join(found['split'])}; baseline {found['baseline']})\n{enrollment}")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column in ("metric", "baseline mean", "sd", "from", "units per variation", "total units", "days",
                   "days to go", ""):
        table.add_column(column, justify="left" if column in ("metric", "from", "") else "right")
    for entry in found["metrics"]:
        units = " / ".join(f"{n:,}" for n in entry["units"].values()) if entry["units"] else "n/a"
        table.add_row(entry["metric"], _number(entry["baseline_mean"]), _number(entry["baseline_sd"]), entry["from"],
                      units, "n/a" if entry["total_units"] is None else f"{entry['total_units']:,}",
                      "n/a" if entry["days"] is None else f"{entry['days']:,}",
                      "n/a" if entry["days_to_go"] is None else f"{entry['days_to_go']:,}", entry.get("reason", ""))
    return header + "\n\n" + as_text(table)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
