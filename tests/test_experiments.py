"""Experiment results: units, attribution and observations built by dbt from the domain tables of
hand-made E3 files, and the statistics against hand-computed values and simulated experiments."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from optimizely_courier.config.sources import load_project
from optimizely_courier.experiments.stats import (
    Arm,
    Moments,
    always_valid,
    chi_square_survival,
    compare,
    cuped,
    mixing_sd,
    q_values,
    sample_ratio_p_value,
    sequential,
)
from optimizely_courier.landing.e3 import DECISIONS_SCHEMA, EVENTS_SCHEMA
from optimizely_courier.runs.build import run_dbt
from tests.cases import OPTIMIZELY_SOURCES
from tests.conftest import ROOT, copy_dbt_files, query, run_cli

# v1 is decided into both variations (below): these two count it in its first, as they did before
# multiple exposures were left out by default
EXPERIMENT = """id: checkout
experiment_id: "1001"
baseline: "100"
window: 48h
multiple_exposures: first
metrics:
  - {name: purchase_rate, kind: unique, event: purchase}
  - {name: purchases, kind: count, event: purchase}
  - {name: revenue, kind: sum, event: purchase, value: revenue_cents}
  - {name: electronics_revenue, kind: sum, event: purchase, value: revenue_cents, where: {category: electronics}}
  - {name: views, kind: count, event: detail_page_view}
  - {name: views_per_purchase, kind: ratio, numerator: views, denominator: purchases}
  - {name: purchases_per_view, kind: ratio, numerator: purchases, denominator: views}
"""
# CUPED: each metric's value over the 14 days before the decision is its covariate
CUPED = """id: cuped
experiment_id: "1001"
baseline: "100"
multiple_exposures: first
cuped: 14d
segments: [country]
metrics:
  - {name: purchases, kind: count, event: purchase}
  - {name: revenue, kind: sum, event: purchase, value: revenue_cents}
"""
# The shipped example of the lab's five metrics, two of them from a call center's CSV (a dbt seed)
LAB_EXAMPLE = ROOT / "examples" / "lab-metrics"
T0 = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)


def decision(uuid: str, visitor: str, variation: str, at: dt.datetime, experiment: str = "1001",
             holdback: bool = False, country: str | None = None) -> dict:
    attributes = [{"id": "a1", "name": "country", "type": "custom", "value": country}] if country else None
    return {"uuid": uuid, "timestamp": at, "process_timestamp": at, "visitor_id": visitor,
            "experiment_id": experiment, "campaign_id": "c1", "variation_id": variation, "is_holdback": holdback,
            "attributes": attributes}


def event(uuid: str, visitor: str, name: str, at: dt.datetime, revenue: int | None = None,
          category: str | None = None) -> dict:
    return {"uuid": uuid, "timestamp": at, "process_timestamp": at, "visitor_id": visitor, "event_name": name,
            "event_type": "other", "revenue": revenue, "tags": [("category", category)] if category else None}


def write(root, kind: str, day: str, partition: str, rows: list[dict], schema: pa.Schema) -> None:
    folder = root / "mirror" / f"type={kind}" / f"date={day}" / partition
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / "part-00000.parquet")


def experiment_project(root: Path) -> Path:
    """A new project at `root`: the repository's dbt files and feeds, the optimizely courier, and the
    checkout and cuped experiments (cuped with segments and covariates); nothing landed yet."""
    root.mkdir()
    copy_dbt_files(root, "feeds")
    (root / "sources.yml").write_text(OPTIMIZELY_SOURCES)
    (root / "experiments").mkdir()
    (root / "experiments" / "checkout.yml").write_text(EXPERIMENT)
    (root / "experiments" / "cuped.yml").write_text(CUPED)
    return root


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Landed, built and compiled once for the module (the tests only read it, or undo what they add)."""
    root = experiment_project(tmp_path_factory.mktemp("experiments") / "project")
    hours = dt.timedelta(hours=1)
    write(root, "decisions", "2026-11-25", "experiment=1001", [
        decision("d1", "v1", "100", T0, country="DE"),
        decision("d2", "v1", "200", T0 + hours, country="FR"),  # a later decision: the first one makes the unit
        decision("d3", "v2", "200", T0, country="DE"),
        decision("d4", "v3", "100", T0 - hours, holdback=True),  # holdback: left out
        decision("d5", "v3", "200", T0 + 2 * hours, country="FR"),
        decision("d6", "v4", "100", T0),
    ], DECISIONS_SCHEMA)
    write(root, "decisions", "2026-11-25", "experiment=1002", [decision("d7", "v5", "100", T0, experiment="1002")],
          DECISIONS_SCHEMA)
    window_end = T0 + dt.timedelta(hours=48)
    write(root, "events", "2026-11-25", "event=purchase", [
        event("e1", "v1", "purchase", T0 - dt.timedelta(minutes=1), revenue=900),  # before the decision
        event("e3", "v2", "purchase", T0 + dt.timedelta(minutes=30), revenue=300, category="electronics"),
    ], EVENTS_SCHEMA)
    write(root, "events", "2026-11-25", "event=detail_page_view", [
        event("e5", "v4", "detail_page_view", T0 + hours), event("e6", "v4", "detail_page_view", T0 + 2 * hours),
        event("e7", "v5", "detail_page_view", T0 + hours),  # not a unit of this experiment
    ], EVENTS_SCHEMA)
    write(root, "events", "2026-11-26", "event=purchase", [
        event("e3", "v2", "purchase", T0 + dt.timedelta(minutes=30), revenue=300, category="electronics"),  # again
    ], EVENTS_SCHEMA)
    write(root, "events", "2026-11-27", "event=purchase", [
        event("e2", "v1", "purchase", window_end, revenue=500),  # exactly at the window's end: attributed
        event("e4", "v2", "purchase", window_end + dt.timedelta(seconds=1), revenue=700),  # just after
    ], EVENTS_SCHEMA)
    lab = (LAB_EXAMPLE / "experiments" / "lab_metrics.yml").read_text()
    (root / "experiments" / "lab_metrics.yml").write_text(lab.replace('"18786493712"', '"1001"'))
    shutil.copytree(LAB_EXAMPLE / "seeds", root / "seeds")
    compiled = run_cli(root, "feeds", "compile")
    landed = run_cli(root, "run", "optimizely", "--all")
    assert landed.exit_code == 0, landed.output
    assert compiled.exit_code == 0, compiled.output
    run_dbt(load_project(root), "seed")
    run_dbt(load_project(root), "build", select=["tag:checkout", "tag:lab_metrics", "tag:cuped"])
    return root


def test_units_are_first_non_holdback_decisions_and_events_count_within_the_window_ends_included(project):
    observations = query(project, "select visitor_id, variation_id, purchase_rate, purchases, revenue, "
                                  "electronics_revenue, views from experiments.exp_checkout__observations order by 1")

    assert observations == [
        ("v1", "100", 1, 1, 500, 0, 0),  # the purchase before the decision is not attributed
        ("v2", "200", 1, 1, 300, 300, 0),  # landed twice, counted once; one second past the window is out
        ("v3", "200", 0, 0, 0, 0, 0),  # its unit starts at the non-holdback decision
        ("v4", "100", 0, 0, 0, 0, 2),
    ]


def test_the_lab_example_gives_its_five_metrics_two_of_them_from_a_seed_by_its_own_columns(project):
    observations = query(project, "select * exclude (decided_at, is_multiple_exposure, electronics_revenue__nonfinite, "
                                  "support_call_minutes__nonfinite) "
                                  "from experiments.exp_lab_metrics__observations "
                                  "order by 1")

    # (visitor, variation, purchase rate, detail page views, electronics revenue, calls, call minutes)
    assert observations == [
        ("v1", "100", 1, 0, 0, 2, 17),  # calls half an hour after the decision and exactly at the window's end
        ("v2", "200", 1, 0, 300, 0, 0),  # a call a second before the decision
        ("v3", "200", 0, 0, 0, 0, 0),
        ("v4", "100", 0, 2, 0, 0, 0),  # a call a second after the window's end
    ]


def test_results_hold_units_totals_means_and_variances_per_variation_and_metric(project):
    rows = query(project, "select variation_id, metric, units, total, mean, variance "
                          "from experiments.exp_checkout__results where metric in ('revenue', 'views') order by 2, 1")

    assert rows == [("100", "revenue", 2, 500, 250.0, 125000.0), ("200", "revenue", 2, 300, 150.0, 45000.0),
                    ("100", "views", 2, 2, 1.0, 2.0), ("200", "views", 2, 0, 0.0, 0.0)]


def test_a_ratio_is_the_sum_over_the_sum_with_the_delta_method_variance(project):
    rows = query(project, "select variation_id, units, total, denominator, mean, variance "
                          "from experiments.exp_checkout__results where metric = 'views_per_purchase' order by 1")

    # a: views (0, 2) over purchases (1, 0): R = 2 / 1; per unit (var x - 2 R cov + R^2 var y) / mean(y)^2
    # = (2 - 2 * 2 * -1 + 4 * 0.5) / 0.25 = 32. b: no views, purchases (1, 0): R = 0, variance 0
    assert rows == [("100", 2, 2, 1, 2.0, 32.0), ("200", 2, 0, 1, 0.0, 0.0)]


def test_a_ratio_whose_denominator_is_zero_in_a_variation_has_no_value_there_and_is_not_compared(project):
    found = json.loads(run_cli(project, "results", "checkout", "--json").output)
    shown = run_cli(project, "results", "checkout").output

    per_view = next(m for m in found["metrics"] if m["metric"] == "purchases_per_view")
    baseline, treatment = per_view["variations"]
    assert (baseline["mean"], treatment["mean"], treatment["lift"], treatment["p_value"]) == (0.5, None, None, None)
    assert "q_value" not in treatment
    assert [line.split()[:4] for line in shown.splitlines() if line.split()[:1] == ["200"]][-1] == ["200", "2", "1", "n/a"]


def test_cuped_covariates_are_the_metrics_before_the_decision_and_adjust_the_means(project):
    before = query(project, "select visitor_id, purchases, purchases__before, revenue, revenue__before "
                            "from experiments.exp_cuped__observations order by 1")
    found = json.loads(run_cli(project, "results", "cuped", "--json").output)
    shown = run_cli(project, "results", "cuped").output

    assert before == [("v1", 1, 1, 500, 900),  # its purchase a minute before the decision is its covariate
                      ("v2", 1, 0, 300, 0), ("v3", 0, 0, 0, 0), ("v4", 0, 0, 0, 0)]
    # purchases: a has y (1, 0), x (1, 0); b has y (1, 0), x (0, 0): theta = 0.5 / 0.5 = 1, overall x 0.25
    purchases = next(m for m in found["metrics"] if m["metric"] == "purchases")
    baseline, treatment = purchases["variations"]
    assert (baseline["adjusted_mean"], treatment["adjusted_mean"]) == (pytest.approx(0.25), pytest.approx(0.75))
    assert purchases["cuped"]["theta"] == pytest.approx(1.0)
    assert treatment["lift"] == pytest.approx(2.0)  # 0.75 against 0.25
    assert "CUPED on the 14 days before each decision" in shown.splitlines()[0]


def test_results_per_segment_value_use_the_units_first_decision_and_compare_within_each(project):
    segments = query(project, "select visitor_id, country from experiments.exp_cuped__observations order by 1")
    found = json.loads(run_cli(project, "results", "cuped", "--segment", "country", "--json").output)
    shown = run_cli(project, "results", "cuped", "--segment", "country")
    unknown = run_cli(project, "results", "cuped", "--segment", "device")

    assert segments == [("v1", "DE"), ("v2", "DE"), ("v3", "FR"), ("v4", None)]  # v1's first decision's
    by_value = {part["value"]: part["metrics"] for part in found["segments"]}
    assert list(by_value) == ["DE", "FR", None]
    assert by_value["FR"] == []  # no baseline units there: nothing to compare
    purchases = next(m for m in by_value["DE"] if m["metric"] == "purchases")
    assert [(e["variation"], e["units"], e["total"]) for e in purchases["variations"]] == [("100", 1, 1), ("200", 1, 1)]
    assert [(e["variation"], e["units"]) for m in by_value[None] for e in m["variations"]][:1] == [("100", 1)]
    assert shown.exit_code == 0 and "\ncountry = DE\n" in shown.output and "\ncountry = (none)\n" in shown.output
    assert "\ncountry = FR\n\nno units of the baseline (100) with this value: nothing to compare" in shown.output
    assert unknown.exit_code == 1
    assert unknown.output.strip() == "Error: experiment `cuped` has no segment `device`; segments: country"


def test_the_plot_draws_each_metrics_lift_by_enrollment_day_ending_at_the_tables(project, tmp_path):
    from optimizely_courier.experiments.plot import cumulative_lifts
    from optimizely_courier.experiments.results import find_experiment

    picture = tmp_path / "lift.png"
    shown = run_cli(project, "results", "checkout", "--plot", str(picture))
    found = json.loads(run_cli(project, "results", "checkout", "--json").output)
    series = cumulative_lifts(find_experiment(project, "checkout"), project / "warehouse.duckdb", "100")

    assert shown.exit_code == 0, shown.output
    assert shown.output.rstrip().endswith(f"wrote {picture}")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for metric in found["metrics"]:
        points = series[metric["metric"]]["200"]
        assert [point.day for point in points] == [dt.date(2026, 11, 25)]  # every decision that day
        table = metric["variations"][1]["lift"]
        assert points[-1].lift == (None if table is None else pytest.approx(table)), metric["metric"]


def test_courier_results_compares_each_variation_with_the_baseline(project):
    shown = run_cli(project, "results", "checkout")
    found = json.loads(run_cli(project, "results", "checkout", "--json").output)

    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("Experiment checkout (1001), baseline 100, attribution window 48 h\n"
                                   "Sample ratio: 2 / 2 units, p = 1 (as planned)")
    revenue = next(m for m in found["metrics"] if m["metric"] == "revenue")
    baseline, treatment = revenue["variations"]
    assert (baseline["variation"], baseline["baseline"], baseline["mean"]) == ("100", True, 250.0)
    assert treatment["lift"] == pytest.approx(-0.4)  # 150 against 250
    expected = compare(Arm(2, 150.0, 45000.0), Arm(2, 250.0, 125000.0))
    assert treatment["p_value"] == pytest.approx(expected.p_value)
    assert found["sample_ratio"] == {"units": {"100": 2, "200": 2}, "planned": "equal", "p_value": 1.0,
                                     "mismatch": False}


def test_the_sample_ratio_is_tested_against_the_planned_split(project):
    definition = project / "experiments" / "checkout.yml"
    original = definition.read_text()
    definition.write_text(original.replace("window: 48h\n", "window: 48h\nsplit: {\"100\": 1, \"200\": 3}\n"))
    try:
        found = json.loads(run_cli(project, "results", "checkout", "--json").output)
    finally:
        definition.write_text(original)

    # 2 and 2 units against an expected 1 and 3: chi-square (1 + 1/3) with one degree of freedom
    assert found["sample_ratio"]["planned"] == {"100": 1.0, "200": 3.0}
    assert found["sample_ratio"]["p_value"] == pytest.approx(math.erfc(math.sqrt((1 + 1 / 3) / 2)))


@pytest.mark.parametrize("experiment", ["checkout", "cuped", "lab_metrics"])
def test_dbt_docs_describe_every_column_of_both_models_in_order(project, experiment):
    import yaml

    docs = yaml.safe_load((project / f"models/experiments/exp_{experiment}.yml").read_text())
    described = {model["name"]: [column["name"] for column in model["columns"]] for model in docs["models"]}

    for model in (f"exp_{experiment}__observations", f"exp_{experiment}__results"):
        built = [name for (name,) in query(project, "select column_name from information_schema.columns where "
                                                    f"table_name = '{model}' order by ordinal_position")]
        assert described[model] == built, model


def _compile_with_definition(project, text: str):  # noqa: ANN001, ANN202 - the project; a click Result
    """`courier feeds compile` with experiments/bad.yml holding `text` (removed afterwards)."""
    bad_definition = project / "experiments" / "bad.yml"
    bad_definition.write_text(text)
    try:
        return run_cli(project, "feeds", "compile")
    finally:
        bad_definition.unlink()


def test_an_unknown_experiment_or_a_definition_naming_a_missing_column_is_one_clear_error(project):
    unknown = run_cli(project, "results", "nope")
    bad = _compile_with_definition(
        project, "id: bad\nexperiment_id: \"1\"\nmetrics: [{name: m, kind: sum, event: purchase, value: margin}]\n")

    assert unknown.exit_code == 1 and unknown.output.strip() == "Error: no experiment `nope`; experiments: checkout, cuped, lab_metrics"
    assert bad.exit_code == 1
    assert bad.output.strip() == ("Error: experiments/bad.yml: `conversions`: `Optimizely:Conversions` "
                                  "(feeds/optimizely/conversions.yml) has no column margin")


def test_a_metric_from_a_model_that_also_names_an_event_is_one_clear_error(project):
    bad = _compile_with_definition(project, "id: bad\nexperiment_id: \"1\"\nmetrics: [{name: m, kind: count, "
                                            "event: purchase, from: {model: support_calls}}]\n")

    assert bad.exit_code == 1
    assert bad.output.strip() == ("Error: experiments/bad.yml:3: `metrics[0].event`: a metric `from` a model "
                                  "counts that model's rows: it takes no `event`")


def test_a_metric_from_a_model_the_project_does_not_have_is_one_clear_error(project):
    bad = _compile_with_definition(project, "id: bad\nexperiment_id: \"1\"\nmetrics: [{name: m, kind: count, "
                                            "from: {model: support_cals}}]\n")

    assert bad.exit_code == 1
    assert bad.output.strip() == ("Error: experiments/bad.yml: `metrics[0].from.model`: no dbt model or seed "
                                  "`support_cals` in this project (models/**/support_cals.sql, "
                                  "seeds/support_cals.csv)")


def test_results_built_before_a_metric_was_added_say_to_rebuild(project):
    definition = project / "experiments" / "checkout.yml"
    original = definition.read_text()
    definition.write_text(original + "  - {name: signups, kind: count, event: signup}\n")
    try:
        shown = run_cli(project, "results", "checkout")
    finally:
        definition.write_text(original)

    assert shown.exit_code == 1
    assert shown.output.strip() == ("Error: the results of experiment `checkout` were built before its metric "
                                    "`signups` was defined: run `courier feeds compile`, then "
                                    "`dbt build --select tag:checkout`")


def test_cuped_matches_a_hand_computation_and_leaves_uncorrelated_metrics_alone():
    arms = {"a": Moments(units=3, mean=2.0, variance=1.0, covariate_mean=1.0, covariate_variance=2.0, covariance=1.0),
            "b": Moments(units=5, mean=3.0, variance=4.0, covariate_mean=2.0, covariate_variance=1.0, covariance=0.5)}
    adjusted, theta = cuped(arms)

    # theta = (2 * 1 + 4 * 0.5) / (2 * 2 + 4 * 1) = 0.5; overall covariate mean (3 + 10) / 8 = 1.625
    assert theta == pytest.approx(0.5)
    assert adjusted["a"].mean == pytest.approx(2.0 - 0.5 * (1.0 - 1.625))
    assert adjusted["b"].variance == pytest.approx(4.0 - 2 * 0.5 * 0.5 + 0.25 * 1.0)
    unrelated = {name: Moments(arm.units, arm.mean, arm.variance, 0.0, 0.0, 0.0) for name, arm in arms.items()}
    assert cuped(unrelated) == ({name: Arm(arm.units, arm.mean, arm.variance) for name, arm in arms.items()}, 0.0)


def test_welch_lift_interval_and_p_value_match_a_hand_computation():
    result = compare(Arm(units=100, mean=0.12, variance=0.1056), Arm(units=200, mean=0.10, variance=0.09))

    se = math.sqrt(0.1056 / 100 + 0.09 / 200)
    assert result.difference == pytest.approx(0.02)
    assert result.p_value == pytest.approx(math.erfc(0.02 / se / math.sqrt(2)))
    lift_se = math.sqrt(0.1056 / 100 / 0.01 + 1.2 ** 2 * 0.09 / 200 / 0.01)
    assert (result.lift, result.lift_low, result.lift_high) == pytest.approx(
        (0.2, 0.2 - 1.959964 * lift_se, 0.2 + 1.959964 * lift_se))


def test_q_values_and_chi_square_tails_match_closed_forms():
    assert q_values([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    for statistic in (0.5, 3.84, 12.0):
        assert chi_square_survival(statistic, 1) == pytest.approx(math.erfc(math.sqrt(statistic / 2)))
        assert chi_square_survival(statistic, 2) == pytest.approx(math.exp(-statistic / 2))
    assert sample_ratio_p_value([1000, 1200]) < 0.001  # planned 50/50
    assert sample_ratio_p_value([1000, 1200], split=[5, 6]) > 0.5


def simulated_p_values(rate_a: float, rate_b: float, units: int, runs: int, seed: int) -> np.ndarray:
    """p-values of `runs` simulated experiments of a 0/1 metric, `units` per arm."""
    rng = np.random.default_rng(seed)
    p_values = []
    for a, b in zip(rng.binomial(units, rate_a, runs), rng.binomial(units, rate_b, runs)):
        arms = [Arm(units, k / units, k * (units - k) / (units * (units - 1))) for k in (b, a)]
        p_values.append(compare(*arms).p_value)
    return np.array(p_values)


def test_a_thousand_aa_experiments_are_significant_at_the_nominal_five_percent():
    false_positives = (simulated_p_values(0.1, 0.1, 2000, 1000, seed=7) < 0.05).mean()

    assert 0.035 <= false_positives <= 0.065


def test_a_known_effect_is_detected_at_the_expected_power():
    se = math.sqrt(0.10 * 0.90 / 2000 + 0.13 * 0.87 / 2000)
    expected = 0.5 * math.erfc(-(0.03 / se - 1.959964) / math.sqrt(2))  # about 0.85

    detected = (simulated_p_values(0.10, 0.13, 2000, 1000, seed=11) < 0.05).mean()

    assert abs(detected - expected) <= 0.04


def _moments(y: np.ndarray, x: np.ndarray) -> Moments:
    return Moments(units=len(y), mean=float(y.mean()), variance=float(y.var(ddof=1)), covariate_mean=float(x.mean()),
                   covariate_variance=float(x.var(ddof=1)), covariance=float(np.cov(y, x)[0, 1]))


def simulated_cuped(effect: float, runs: int, seed: int, units: int = 1000, rho: float = 0.7) -> tuple:
    """(p-values with CUPED, p-values without) of `runs` experiments of a metric whose value before the
    decision correlates `rho` with it; the treatment adds `effect` (in standard deviations)."""
    rng = np.random.default_rng(seed)
    with_cuped, without = [], []
    for _ in range(runs):
        arms = {}
        for name, shift in (("b", effect), ("a", 0.0)):
            x = rng.normal(size=units)
            y = rho * x + math.sqrt(1 - rho ** 2) * rng.normal(size=units) + shift
            arms[name] = _moments(y, x)
        adjusted, _ = cuped(arms)
        with_cuped.append(compare(adjusted["b"], adjusted["a"]).p_value)
        without.append(compare(*(Arm(arms[n].units, arms[n].mean, arms[n].variance) for n in "ba")).p_value)
    return np.array(with_cuped), np.array(without)


def test_cuped_keeps_a_thousand_aa_experiments_at_five_percent_and_detects_an_effect_with_more_power():
    aa, _ = simulated_cuped(effect=0.0, runs=1000, seed=5)
    with_cuped, without = simulated_cuped(effect=0.1, runs=1000, seed=6)

    assert 0.035 <= (aa < 0.05).mean() <= 0.065
    # variance (1 - rho^2) = 0.51 of the unadjusted: power about 0.88 against 0.61 at 1,000 units per arm
    assert (with_cuped < 0.05).mean() >= (without < 0.05).mean() + 0.15


def test_the_always_valid_p_value_and_interval_match_the_mixture_likelihood_ratio():
    difference, variance, tau = 0.02, 0.0001, 0.01

    p_value, half_width = always_valid(difference, variance, tau, alpha=0.05)

    ratio = math.sqrt(variance / (variance + tau ** 2)) * math.exp(
        difference ** 2 * tau ** 2 / (2 * variance * (variance + tau ** 2)))
    assert p_value == pytest.approx(1 / ratio)
    # the interval's edge is where the ratio for "the difference is the edge" reaches 1 / alpha
    edge = difference + half_width
    at_edge = math.sqrt(variance / (variance + tau ** 2)) * math.exp(
        (difference - edge) ** 2 * tau ** 2 / (2 * variance * (variance + tau ** 2)))
    assert at_edge == pytest.approx(1 / 0.05)


def daily_looks(units_per_day: int, days: int, runs: int, seed: int) -> tuple[float, float]:
    """A/A experiments of a 0/1 metric looked at every day: the share ever significant by the
    fixed-horizon test, and by the always-valid one."""
    rng = np.random.default_rng(seed)
    counts = rng.binomial(units_per_day, 0.1, (runs, 2, days)).cumsum(axis=2)
    fixed = valid = 0
    for run in counts:
        looks = []
        for day in range(days):
            units = units_per_day * (day + 1)
            looks.append(tuple(Arm(units, k / units, k * (units - k) / (units * (units - 1))) for k in run[:, day]))
        fixed += any(compare(b, a).p_value < 0.05 for b, a in looks)
        # the always-valid p is the running minimum over the looks: below 0.05 once means ever significant
        valid += sequential(looks, mixing_sd([a for _, a in looks])).p_value < 0.05
    return fixed / runs, valid / runs


def test_looking_every_day_keeps_the_always_valid_false_positive_rate_within_five_percent():
    fixed, valid = daily_looks(units_per_day=300, days=14, runs=1000, seed=5)

    assert valid <= 0.05 + 0.015
    assert fixed > 0.10  # the fixed-horizon test, peeked at daily, is why the always-valid one exists


def _with_definition(project, name: str, text: str):  # noqa: ANN001, ANN202 - the project; a context manager
    """experiments/<name>.yml holding `text`, compiled, for the `with` block; removed (and its models) after."""
    import contextlib

    @contextlib.contextmanager
    def written():  # noqa: ANN202
        definition = project / "experiments" / f"{name}.yml"
        definition.write_text(text)
        try:
            compiled = run_cli(project, "feeds", "compile")
            assert compiled.exit_code == 0, compiled.output
            yield
        finally:
            definition.unlink()
            run_cli(project, "feeds", "compile")  # removes its models

    return written()


CALLS = "id: {id}\nexperiment_id: \"1001\"\nmetrics: [{{name: calls, kind: count, from: {{model: support_calls, " \
        "timestamp: call_start{extra}}}}}]\n"


def test_a_text_timestamp_without_a_format_stops_the_build_naming_experiment_metric_model_and_column(project):
    from optimizely_courier.errors import BuildError

    with _with_definition(project, "calls", CALLS.format(id="calls", extra="")):
        with pytest.raises(BuildError) as raised:
            run_dbt(load_project(project), "build", select=["tag:calls"])

    message = str(raised.value)
    assert ("experiments/calls.yml: experiment `calls`, metric `calls`: column `call_start` of model "
            "`support_calls` is text; declare how to read it in the metric's `from`, e.g. timestamp_format: "
            "\"%m/%d/%Y %H:%M:%S\" (and timezone, default UTC)") in message
    assert "Binder Error" not in message


def test_a_declared_time_zone_reads_the_text_times_of_a_model_in_that_zone(project):
    # the seed's times in New York are five hours later in UTC: v2's call a second before its decision (UTC)
    # falls after it, v1's and v4's calls at the window's end fall after it
    extra = ', timestamp_format: "%m/%d/%Y %H:%M:%S", timezone: America/New_York'
    with _with_definition(project, "calls_ny", CALLS.format(id="calls_ny", extra=extra)):
        run_dbt(load_project(project), "build", select=["tag:calls_ny"])
        calls = query(project, "select visitor_id, calls from experiments.exp_calls_ny__observations order by 1")

    assert calls == [("v1", 1), ("v2", 1), ("v3", 0), ("v4", 0)]


@pytest.mark.parametrize(("extra", "key", "problem"), [
    (', timestamp_format: "%Y-%m-%d %Q"', "timestamp_format", "`%Y-%m-%d %Q` is not a format every engine reads"),
    (', timestamp_format: "%Y\'); drop table x; --"', "timestamp_format", "is not a format every engine reads"),
    (', timestamp_format: "%Y\\n%m"', "timestamp_format", "`%Y\\n%m` is not a format every engine reads"),
    (", timezone: Mars/Olympus_Mons", "timezone", "`Mars/Olympus_Mons` is not an IANA time zone"),
    (", timezone: ../../etc/passwd", "timezone", "is not an IANA time zone"),
])
def test_a_timestamp_format_or_time_zone_that_is_not_a_plain_literal_is_one_clear_error(project, extra, key, problem):
    bad = _compile_with_definition(project, CALLS.format(id="bad", extra=extra))

    assert bad.exit_code == 1
    [line] = bad.output.strip().splitlines()
    assert line.startswith("Error: experiments/bad.yml") and f"`metrics[0].from.{key}`: " in line
    assert problem in line
