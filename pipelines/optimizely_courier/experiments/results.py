"""`courier results`: an experiment's results table from its results model (see `compile.py`) and
the statistics of `stats.py`. Significance is the fixed-horizon q-value's, for a team that reads the
results once at the planned end; the always-valid columns are for a team that looks every day."""

from __future__ import annotations

from pathlib import Path

import duckdb

from optimizely_courier.errors import ConfigError, CourierError
from optimizely_courier.experiments.definition import EXPERIMENTS_DIR, Experiment, load_experiments
from optimizely_courier.experiments.stats import (
    SRM_ALPHA,
    Arm,
    Moments,
    compare,
    cuped,
    q_values,
    sample_ratio_p_value,
)

SCHEMA = "experiments"
SIGNIFICANCE = 0.05  # on the false discovery rate (q-value)


def experiment_results(root: Path, warehouse: Path, name: str, segment: str | None = None) -> dict:
    """Per metric and variation: units, total, mean, and against the baseline the lift, its interval,
    p and q; and the sample ratio check. With `segment` (one of the experiment's `segments`), the same
    per value of that column, q-values across all of them. JSON-ready."""
    experiment = find_experiment(root, name)
    if segment is not None and segment not in experiment.segments:
        known = ", ".join(experiment.segments) or "none (list them under `segments` in its definition)"
        raise CourierError(f"experiment `{experiment.id}` has no segment `{segment}`; segments: {known}")
    rows = _results_rows(warehouse, experiment)
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
    found = {"experiment": experiment.id, "experiment_id": experiment.experiment_id, "baseline": baseline,
             "window_hours": experiment.window.total_seconds() / 3600,
             "cuped_days": experiment.cuped.total_seconds() / 86400 if experiment.cuped else None,
             "sample_ratio": {"units": {v: units[v] for v in variations}, "planned": planned or "equal",
                              "p_value": srm, "mismatch": srm < SRM_ALPHA}}
    if segment is None:
        found["metrics"] = _metrics(experiment, overall, baseline, variations)
        _add_q_values(found["metrics"])
        return found
    values = sorted({row["segment_value"] for row in rows if row["segment"] == segment}, key=lambda v: (v is None, v))
    found["segment"] = segment
    found["segments"] = [{"value": value, "metrics": _metrics(
        experiment, [row for row in rows if row["segment"] == segment and row["segment_value"] == value],
        baseline, variations)} for value in values]
    _add_q_values([metric for part in found["segments"] for metric in part["metrics"]])
    return found


def _metrics(experiment: Experiment, rows: list[dict], baseline: str, variations: list[str]) -> list[dict]:
    """Each metric's variations compared with the baseline; a variation without units in these rows (a
    segment value only some variations have) is left out."""
    metrics = []
    for metric in experiment.metrics:
        arms = {row["variation_id"]: row for row in rows if row["metric"] == metric.name}
        if not arms:
            raise CourierError(f"the results of experiment `{experiment.id}` were built before its metric "
                               f"`{metric.name}` was defined: run `courier feeds compile`, then "
                               f"`dbt build --select tag:{experiment.id}`")
        if baseline not in arms:
            continue
        adjusted, theta = _adjusted(arms) if experiment.cuped and metric.observed else (None, None)
        entries = []
        for variation in [baseline, *(v for v in variations if v != baseline and v in arms)]:
            row = arms[variation]
            entry = {"variation": variation, "units": row["units"], "total": row["total"], "mean": row["mean"],
                     "baseline": variation == baseline}
            if adjusted:
                entry["adjusted_mean"] = adjusted[variation].mean
            if variation != baseline:
                entry.update(_comparison(row, arms[baseline], adjusted and (adjusted[variation], adjusted[baseline])))
            entries.append(entry)
        metrics.append({"metric": metric.name, "kind": metric.kind, "variations": entries,
                        **({"cuped": _reduction(arms, adjusted, theta)} if adjusted else {})})
    return metrics


def find_experiment(root: Path, name: str) -> Experiment:
    experiments = {e.id: e for e in load_experiments(root)}
    if name not in experiments:
        known = ", ".join(sorted(experiments)) or f"none (define them in {EXPERIMENTS_DIR}/*.yml)"
        raise CourierError(f"no experiment `{name}`; experiments: {known}")
    return experiments[name]


def _results_rows(warehouse: Path, experiment: Experiment) -> list[dict]:
    table = f'{SCHEMA}."exp_{experiment.id}__results"'
    missing = CourierError(f"no results for experiment `{experiment.id}` yet: run `courier feeds compile`, then "
                           f"`dbt build --select tag:{experiment.id}`")
    if not warehouse.exists():
        raise missing
    with duckdb.connect(str(warehouse), read_only=True) as db:
        try:
            cursor = db.execute(f"select variation_id, segment, segment_value, metric, units, total, mean, variance, "
                                f"covariate_total, covariate_variance, covariate_covariance from {table}")
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
    return rows


def _comparison(row: dict, baseline: dict, adjusted: tuple[Arm, Arm] | None) -> dict:
    """The treatment against the baseline (CUPED-adjusted when given); nothing to compare when either has
    no value (a ratio whose denominator is 0 in the variation)."""
    if row["mean"] is None or baseline["mean"] is None:
        return {"lift": None, "p_value": None, "always_valid_p": None}
    result = compare(*(adjusted or (_arm(row), _arm(baseline))))
    return {"lift": result.lift, "lift_low": result.lift_low, "lift_high": result.lift_high,
            "p_value": result.p_value, "always_valid_p": result.always_valid_p,
            "always_valid_low": result.always_valid_low, "always_valid_high": result.always_valid_high}


def _adjusted(arms: dict[str, dict]) -> tuple[dict[str, Arm], float]:
    return cuped({variation: Moments(units=row["units"], mean=float(row["mean"]), variance=float(row["variance"]),
                                     covariate_mean=float(row["covariate_total"]) / row["units"],
                                     covariate_variance=float(row["covariate_variance"]),
                                     covariance=float(row["covariate_covariance"]))
                  for variation, row in arms.items()})


def _reduction(arms: dict[str, dict], adjusted: dict[str, Arm], theta: float) -> dict:
    """How much CUPED narrowed the metric's variance (pooled over the variations)."""
    before = sum(float(row["variance"]) * row["units"] for row in arms.values())
    after = sum(arm.variance * arm.units for arm in adjusted.values())
    return {"theta": theta, "variance_reduction": 1 - after / before if before else 0.0}


def _arm(row: dict) -> Arm:
    return Arm(units=row["units"], mean=float(row["mean"]), variance=float(row["variance"]))


def _add_q_values(metrics: list[dict]) -> None:
    """Benjamini-Hochberg across every metric and variation of the experiment."""
    compared = [entry for metric in metrics for entry in metric["variations"]
                if not entry["baseline"] and entry["p_value"] is not None]
    for entry, q in zip(compared, q_values([entry["p_value"] for entry in compared]), strict=True):
        entry["q_value"] = q
        entry["significant"] = q < SIGNIFICANCE


def render(results: dict) -> str:
    """The results as a table, like the results page (with a segment: a table per value)."""
    srm = results["sample_ratio"]
    units = " / ".join(f"{count:,}" for count in srm["units"].values())
    verdict = "MISMATCH: check the assignment before reading results" if srm["mismatch"] else "as planned"
    cuped = (f", CUPED on the {results['cuped_days']:g} days before each decision (lift, interval and p adjusted)"
             if results["cuped_days"] else "")
    header = (f"Experiment {results['experiment']} ({results['experiment_id']}), baseline {results['baseline']}, "
              f"attribution window {results['window_hours']:g} h{cuped}\n"
              f"Sample ratio: {units} units, p = {srm['p_value']:.3g} ({verdict})")
    if "segments" not in results:
        return header + "\n\n" + _table(results["metrics"])
    nothing = f"no units of the baseline ({results['baseline']}) with this value: nothing to compare"
    parts = [f"{results['segment']} = {part['value'] if part['value'] is not None else '(none)'}\n\n"
             + (_table(part["metrics"]) if part["metrics"] else nothing) for part in results["segments"]]
    return "\n\n".join([header + f"\nq-values across every {results['segment']}", *parts])


def _table(metrics: list[dict]) -> str:
    from rich import box
    from rich.table import Table

    from optimizely_courier.text import as_text

    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for header in ("metric", "variation", "units", "total", "value", "lift", "95% interval", "p", "q",
                   "always-valid interval", "always-valid p", ""):
        table.add_column(header, justify="left" if header in ("metric", "variation", "") else "right")
    for metric in metrics:
        for index, entry in enumerate(metric["variations"]):
            first = metric["metric"] if index == 0 else ""
            value = "n/a" if entry["mean"] is None else f"{entry['mean']:.4g}"
            row = [first, entry["variation"], f"{entry['units']:,}", f"{entry['total']:,.0f}", value]
            if entry["baseline"]:
                row += ["baseline", "", "", "", "", "", ""]
            elif entry["p_value"] is None:
                row += ["n/a", "", "", "", "", "", ""]
            else:
                row += [_percent(entry["lift"]), _interval(entry, "lift"), f"{entry['p_value']:.3g}",
                        f"{entry['q_value']:.3g}", _interval(entry, "always_valid"), f"{entry['always_valid_p']:.3g}",
                        "significant" if entry["significant"] else ""]
            table.add_row(*row)
    return as_text(table)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"


def _interval(entry: dict, name: str) -> str:
    if entry["lift"] is None:
        return ""
    return f"[{entry[name + '_low']:+.1%}, {entry[name + '_high']:+.1%}]"
