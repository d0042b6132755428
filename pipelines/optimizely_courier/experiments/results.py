"""`courier results`: an experiment's results table from its results model (see `compile.py`), its
looks (`looks.py`) and the statistics of `stats.py`. Significance is the fixed-horizon q-value's, for a
team that reads the results once at the planned end; the always-valid columns are for a team that
looks every day, the Bayesian ones (chance to beat the baseline, expected loss) for a team that decides
on them; guardrails add a harm test. The experiment's health (multiple exposures, the sample ratio per
enrollment day) comes from `observed.py`. A comparison whose statistics are undefined says why instead
(`reason`)."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb

from optimizely_courier.errors import ConfigError, CourierError
from optimizely_courier.experiments.definition import EXPERIMENTS_DIR, Experiment, Metric, load_experiments
from optimizely_courier.experiments.looks import cumulative, look_arms, looks
from optimizely_courier.experiments.observed import SCHEMA, counted_units, health, quote
from optimizely_courier.experiments.stats import (
    SRM_ALPHA,
    Arm,
    Moments,
    bayesian,
    compare,
    cuped,
    guardrail,
    log_ratio,
    mixing_sd,
    q_values,
    sample_ratio_p_value,
    sequential,
    undefined,
    units_needed,
)

SIGNIFICANCE = 0.05  # on the false discovery rate (q-value)


def experiment_results(root: Path, warehouse: Path, name: str, segment: str | None = None) -> dict:
    """Per metric and variation: units, total, mean, and against the baseline the lift, its interval,
    p and q, the always-valid and Bayesian readings (and a guardrail's); the sample ratio check, the
    multiple exposures and the health per enrollment day. With `segment` (one of the experiment's
    `segments`), the same per value of that column, q-values across all of them. JSON-ready."""
    experiment = find_experiment(root, name)
    if segment is not None and segment not in experiment.segments:
        known = ", ".join(experiment.segments) or "none (list them under `segments` in its definition)"
        raise CourierError(f"experiment `{experiment.id}` has no segment `{segment}`; segments: {known}")
    rows = results_rows(warehouse, experiment)
    overall = [row for row in rows if row["segment"] == "all"]
    variations = sorted({row["variation_id"] for row in overall})
    baseline = experiment.baseline or variations[0]
    if baseline not in variations:
        raise ConfigError(experiment.path, "baseline", f"variation `{baseline}` has no units; variations with "
                                                       f"units: {', '.join(variations)}")
    units = {row["variation_id"]: row["units"] for row in overall}
    planned = dict(experiment.split)
    if planned and set(planned) != set(variations):
        raise ConfigError(experiment.path, "split", f"the split names {', '.join(sorted(planned))}; the variations "
                                                    f"with units are {', '.join(variations)}")
    srm = sample_ratio_p_value([units[v] for v in variations], [planned[v] for v in variations] if planned else None)
    prior = experiment.prior
    found = {"experiment": experiment.id, "experiment_id": experiment.experiment_id, "baseline": baseline,
             "window_hours": experiment.window.total_seconds() / 3600,
             "cuped_days": experiment.cuped.total_seconds() / 86400 if experiment.cuped else None,
             "prior": {"mean": prior.mean, "sd": prior.sd} if prior else "flat",
             "sample_ratio": {"units": {v: units[v] for v in variations}, "planned": planned or "equal",
                              "p_value": srm, "mismatch": srm < SRM_ALPHA},
             **health(warehouse, experiment, variations)}
    history = looks(warehouse, experiment, segment)
    skew = _skewness(warehouse, experiment, segment)
    comparisons = Comparisons(experiment, baseline, variations, history, skew)
    if segment is None:
        found["metrics"] = comparisons.metrics(overall, None)
        _add_q_values(found["metrics"])
        return found
    values = sorted({row["segment_value"] for row in rows if row["segment"] == segment}, key=lambda v: (v is None, v))
    found["segment"] = segment
    found["segments"] = [{"value": value, "metrics": comparisons.metrics(
        [row for row in rows if row["segment"] == segment and row["segment_value"] == value], value)}
        for value in values]
    _add_q_values([metric for part in found["segments"] for metric in part["metrics"]])
    return found


class Comparisons:
    """Each metric's variations against the baseline, from the results rows, the looks and the skewness."""

    def __init__(self, experiment: Experiment, baseline: str, variations: list[str], history: dict,
                 skew: dict) -> None:
        self.experiment, self.baseline, self.variations = experiment, baseline, variations
        self.history, self.skew = history, skew

    def metrics(self, rows: list[dict], value: str | None) -> list[dict]:
        """Each metric's variations compared with the baseline; a variation without units in these rows (a
        segment value only some variations have) is left out."""
        found = []
        for metric in self.experiment.metrics:
            arms = {row["variation_id"]: row for row in rows if row["metric"] == metric.name}
            if self.baseline in arms:
                found.append(self._metric(metric, arms, value))
        return found

    def _metric(self, metric: Metric, arms: dict[str, dict], value: str | None) -> dict:
        adjusting = self.experiment.cuped is not None and metric.observed
        adjusted, theta = adjusted_arms(arms) if adjusting else (None, None)
        looks_seen = [look_arms(look, adjusting) for _, look in cumulative(self.history, value, metric, list(arms))]
        tau = mixing_sd([look[self.baseline] for look in looks_seen if self.baseline in look])
        entries = []
        for variation in [self.baseline, *(v for v in self.variations if v != self.baseline and v in arms)]:
            row = arms[variation]
            entry = {"variation": variation, "units": row["units"], "total": row["total"], "mean": row["mean"],
                     "nonfinite_rows": row["nonfinite_rows"], "baseline": variation == self.baseline}
            if adjusted:
                entry["adjusted_mean"] = adjusted[variation].mean
            if variation != self.baseline:
                compared = adjusted or {v: row_arm(arms[v]) for v in arms}
                entry.update(self._comparison(metric, variation, (compared[variation], compared[self.baseline]),
                                              value))
                if "reason" not in entry:
                    entry.update(_always_valid([(look[variation], look[self.baseline]) for look in looks_seen
                                                if variation in look and self.baseline in look], tau))
            entries.append(entry)
        return {"metric": metric.name, "kind": metric.kind, "better": metric.better, "cap": _cap(metric, arms),
                "guardrail": {"max_harm": metric.max_harm} if metric.guardrail else None,
                "variations": entries, "mixing_sd": tau,
                **({"cuped": _reduction(arms, adjusted, theta)} if adjusted else {})}

    def _comparison(self, metric: Metric, variation: str, pair: tuple[Arm | None, Arm | None],
                    value: str | None) -> dict:
        """The treatment against the baseline; a reason instead when the statistics are undefined."""
        treatment, base = pair
        undefined_entry = {"lift": None, "p_value": None, "always_valid_p": None, "chance_to_beat_baseline": None,
                           "expected_loss": None, **({"guardrail": None} if metric.guardrail else {})}
        if treatment is None or base is None:
            side = variation if treatment is None else self.baseline
            return {**undefined_entry, "reason": f"no value in {side} (its denominator is 0)"}
        reason = undefined(treatment, base, (variation, self.baseline))
        if reason is not None:
            return {**undefined_entry, "reason": reason}
        result = compare(treatment, base)
        return {"lift": result.lift, "lift_low": result.lift_low, "lift_high": result.lift_high,
                "p_value": result.p_value, **self._readings(metric, treatment, base),
                "normal_approximation": self._approximation(metric, value, {variation: treatment,
                                                                            self.baseline: base})}

    def _readings(self, metric: Metric, treatment: Arm, base: Arm) -> dict:
        """The Bayesian reading and, for a guardrail, the harm test: both on the log of the ratio of the
        means, so neither is defined unless both are positive (None, with the reason)."""
        found = log_ratio(treatment, base)
        if found is None:
            return {"chance_to_beat_baseline": None, "expected_loss": None,
                    "bayesian_reason": "a mean is not positive: no ratio of means to read",
                    **({"guardrail": None} if metric.guardrail else {})}
        log_lift, se = found
        prior = (self.experiment.prior.mean, self.experiment.prior.sd) if self.experiment.prior else None
        reading = bayesian(log_lift, se, metric.better, prior)
        readings = {"chance_to_beat_baseline": reading.chance_to_beat_baseline, "expected_loss": reading.expected_loss}
        if metric.guardrail:
            harm = guardrail(log_lift, se, metric.max_harm, metric.better)
            readings["guardrail"] = {"harm": harm.harm, "harm_low": harm.harm_low, "harm_high": harm.harm_high,
                                     "p_value": harm.p_value, "verdict": harm.verdict}
        return readings

    def _approximation(self, metric: Metric, value: str | None, arms: dict[str, Arm]) -> dict:
        """Whether the arms have the units the normal approximation needs for a metric this skewed (a
        ratio's skewness is not measured: its parts' are)."""
        if not metric.observed:
            return {"units_needed": None, "enough_units": True}
        needed = 0
        for variation, arm in arms.items():
            skewness = self.skew.get((value, metric.name, variation))
            if skewness is None and arm.variance:  # a spread whose shape 2 units cannot tell
                return {"units_needed": None, "enough_units": False}
            needed = max(needed, units_needed(skewness) or 0)
        return {"units_needed": needed or None, "enough_units": min(a.units for a in arms.values()) >= needed}


def _always_valid(looks_seen: list[tuple[Arm, Arm]], tau: float) -> dict:
    reading = sequential(looks_seen, tau)
    if reading is None:
        return {"always_valid_p": None}
    return {"always_valid_p": reading.p_value, "always_valid_low": reading.lift_low,
            "always_valid_high": reading.lift_high, "looks": reading.looks}


def find_experiment(root: Path, name: str) -> Experiment:
    experiments = {e.id: e for e in load_experiments(root)}
    if name not in experiments:
        known = ", ".join(sorted(experiments)) or f"none (define them in {EXPERIMENTS_DIR}/*.yml)"
        raise CourierError(f"no experiment `{name}`; experiments: {known}")
    return experiments[name]


def results_rows(warehouse: Path, experiment: Experiment) -> list[dict]:
    """The rows of the experiment's results model, checked to be built from its current definition's
    metrics and caps (a clear error saying what to run when they are missing or older)."""
    table = f"{SCHEMA}.{quote(f'exp_{experiment.id}__results')}"
    missing = CourierError(f"no results for experiment `{experiment.id}` yet: run `courier feeds compile`, then "
                           f"`dbt build --select tag:{experiment.id}`")
    if not warehouse.exists():
        raise missing
    with duckdb.connect(str(warehouse), read_only=True) as db:
        try:
            cursor = db.execute(f"select variation_id, segment, segment_value, metric, units, total, mean, variance, "
                                f"covariate_total, covariate_variance, covariate_covariance, nonfinite_rows, cap, "
                                f"covariate_cap from {table}")
        except duckdb.CatalogException:
            raise missing from None
        except duckdb.BinderException:  # a results table of an older version of this model
            raise CourierError(f"the results of experiment `{experiment.id}` were built by an older courier: "
                               f"run `dbt build --select tag:{experiment.id}`") from None
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row)) for row in cursor.fetchall()]
    if not rows:
        raise CourierError(f"experiment `{experiment.id}` has no units yet (no decisions of experiment "
                           f"{experiment.experiment_id} in {experiment.decisions})")
    built = {row["metric"] for row in rows}
    capped = {row["metric"] for row in rows if row["cap"] is not None}
    for metric in experiment.metrics:
        if metric.name not in built:
            stale = f"before its metric `{metric.name}` was defined"
        elif metric.observed and metric.capped != (metric.name in capped):
            stale = f"with another cap of its metric `{metric.name}`"
        else:
            continue
        raise CourierError(f"the results of experiment `{experiment.id}` were built {stale}: run `courier feeds "
                           f"compile`, then `dbt build --select tag:{experiment.id}`")
    return rows


def _skewness(warehouse: Path, experiment: Experiment, segment: str | None) -> dict:
    """Per segment value, metric and variation, the sample skewness of the units' observations."""
    observed = [m.name for m in experiment.metrics if m.observed]
    value = f"cast({quote(segment)} as varchar)" if segment else "null"
    with duckdb.connect(str(warehouse), read_only=True) as db:
        units = counted_units(db, experiment)
        columns = ", ".join(f"skewness({units.value(name)})" for name in observed)
        rows = db.execute(f"select {value}, variation_id, {columns} from {units.table} where {units.counted} "
                          "group by all").fetchall()
    return {(row[0], name, row[1]): row[2 + i] for row in rows for i, name in enumerate(observed)}


def _cap(metric: Metric, arms: dict[str, dict]) -> dict | None:
    """Where the results model capped a metric's values (the same for every variation), if it did."""
    if not metric.capped:
        return None
    row = next(iter(arms.values()))
    return {"quantile": metric.cap, "value": row["cap"], "covariate_value": row["covariate_cap"]}


def row_arm(row: dict) -> Arm | None:
    if row["mean"] is None:
        return None
    variance = None if row["variance"] is None else float(row["variance"])
    return Arm(units=row["units"], mean=float(row["mean"]), variance=variance)


def adjusted_arms(arms: dict[str, dict]) -> tuple[dict[str, Arm], float]:
    if any(row["units"] < 2 for row in arms.values()):  # no variances: nothing to adjust with
        return {variation: row_arm(row) for variation, row in arms.items()}, 0.0
    return cuped({variation: Moments(units=row["units"], mean=float(row["mean"]), variance=float(row["variance"]),
                                     covariate_mean=float(row["covariate_total"]) / row["units"],
                                     covariate_variance=float(row["covariate_variance"]),
                                     covariance=float(row["covariate_covariance"]))
                  for variation, row in arms.items()})


def _reduction(arms: dict[str, dict], adjusted: dict[str, Arm], theta: float) -> dict:
    """How much CUPED narrowed the metric's variance (pooled over the variations)."""
    before = sum(float(row["variance"] or 0) * row["units"] for row in arms.values())
    after = sum((arm.variance or 0) * arm.units for arm in adjusted.values())
    return {"theta": theta, "variance_reduction": 1 - after / before if before else 0.0}


def _add_q_values(metrics: list[dict]) -> None:
    """Benjamini-Hochberg across every metric and variation of the experiment whose p is defined."""
    compared = [entry for metric in metrics for entry in metric["variations"]
                if not entry["baseline"] and entry["p_value"] is not None and math.isfinite(entry["p_value"])]
    for entry, q in zip(compared, q_values([entry["p_value"] for entry in compared]), strict=True):
        entry["q_value"] = q
        entry["significant"] = q < SIGNIFICANCE
