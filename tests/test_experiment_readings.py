"""Multiple exposures, caps, the Bayesian and guardrail readings, the health per day and `courier plan`,
built by dbt from hand-made E3 files with planted multiple exposures, and checked against values
computed here from the same planted data."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pytest
from scipy import stats

from optimizely_courier.config.sources import load_project
from optimizely_courier.experiments.stats import (
    Arm,
    bayesian,
    guardrail,
    log_ratio,
    sample_ratio_p_value,
    units_needed,
)
from optimizely_courier.landing.e3 import DECISIONS_SCHEMA, EVENTS_SCHEMA
from optimizely_courier.runs.build import run_dbt
from tests.cases import OPTIMIZELY_SOURCES
from tests.conftest import copy_dbt_files, query, run_cli
from tests.test_experiments import T0, decision, event, write

EXPOSURES = """id: exposures
experiment_id: "1001"
baseline: "100"
metrics:
  - {name: purchases, kind: count, event: purchase}
  - {name: revenue, kind: sum, event: purchase, value: revenue_cents, cap: 90%}
  - {name: revenue_fixed, kind: sum, event: purchase, value: revenue_cents, cap_value: 1000}
  - {name: purchase_rate, kind: unique, event: purchase, guardrail: true, max_harm: 5%}
  - {name: revenue_per_purchase, kind: ratio, numerator: revenue, denominator: purchases}
"""
FIRST = """id: exposures_first
experiment_id: "1001"
baseline: "100"
multiple_exposures: first
prior: {mean: 0%, sd: 10%}
metrics:
  - {name: purchases, kind: count, event: purchase, better: lower}
  - {name: revenue, kind: sum, event: purchase, value: revenue_cents, cap_value: 1000}
"""
UNBUILT = """id: unbuilt
experiment_id: "1009"
metrics:
  - {name: purchase_rate, kind: unique, event: purchase}
"""
VISITORS, MULTIPLE, SAME_AGAIN, HOLDBACK = 400, 23, 10, 5
DAYS = ("2026-11-25", "2026-11-26")


def planted() -> dict:
    """The visitors: each one's first variation and day, which are decided again into the other variation
    (multiple exposures), again into the same one or into the other as holdback (neither is one), and
    each one's purchases' revenue (all within its window)."""
    rng = np.random.default_rng(36)
    first = rng.choice(["100", "200"], VISITORS)
    day = (np.arange(VISITORS) >= 250).astype(int)
    chosen = rng.permutation(VISITORS)
    multiple, same, holdback = (set(chosen[:MULTIPLE]), set(chosen[MULTIPLE:MULTIPLE + SAME_AGAIN]),
                                set(chosen[MULTIPLE + SAME_AGAIN:MULTIPLE + SAME_AGAIN + HOLDBACK]))
    revenue = {i: [int(r) for r in rng.lognormal(6, 1.5, rng.poisson(0.6))] for i in range(VISITORS)}
    return {"first": first, "day": day, "multiple": multiple, "same": same, "holdback": holdback, "revenue": revenue}


def other(variation: str) -> str:
    return "200" if variation == "100" else "100"


@pytest.fixture(scope="module")
def data() -> dict:
    return planted()


@pytest.fixture(scope="module")
def project(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("readings") / "project"
    root.mkdir()
    copy_dbt_files(root, "feeds")
    (root / "sources.yml").write_text(OPTIMIZELY_SOURCES)
    (root / "experiments").mkdir()
    for name, text in (("exposures", EXPOSURES), ("exposures_first", FIRST), ("unbuilt", UNBUILT)):
        (root / "experiments" / f"{name}.yml").write_text(text)
    decisions = {day: [] for day in DAYS}
    purchases = {day: [] for day in DAYS}
    for i in range(VISITORS):
        day, at = DAYS[data["day"][i]], T0 + dt.timedelta(days=int(data["day"][i]), minutes=i)
        variation, visitor = data["first"][i], f"u{i:03d}"
        decisions[day].append(decision(f"d{i}", visitor, variation, at))
        later = at + dt.timedelta(hours=3)
        if i in data["multiple"]:
            decisions[day].append(decision(f"m{i}", visitor, other(variation), later))
        if i in data["same"]:
            decisions[day].append(decision(f"s{i}", visitor, variation, later))
        if i in data["holdback"]:
            decisions[day].append(decision(f"h{i}", visitor, other(variation), later, holdback=True))
        purchases[day] += [event(f"p{i}_{k}", visitor, "purchase", at + dt.timedelta(hours=1, minutes=k), revenue=r)
                           for k, r in enumerate(data["revenue"][i])]
    for day in DAYS:
        write(root, "decisions", day, "experiment=1001", decisions[day], DECISIONS_SCHEMA)
        write(root, "events", day, "event=purchase", purchases[day], EVENTS_SCHEMA)
    compiled = run_cli(root, "feeds", "compile")
    landed = run_cli(root, "run", "optimizely", "--all")
    assert compiled.exit_code == 0, compiled.output
    assert landed.exit_code == 0, landed.output
    run_dbt(load_project(root), "build", select=["tag:exposures", "tag:exposures_first"])
    return root


def results(project, name: str, *extra: str) -> tuple[dict, str]:
    found = run_cli(project, "results", name, "--json", *extra)
    shown = run_cli(project, "results", name, *extra)
    assert found.exit_code == 0 and shown.exit_code == 0, found.output + shown.output
    return json.loads(found.output), shown.output


def metric(found: dict, name: str) -> dict:
    return next(m for m in found["metrics"] if m["metric"] == name)


def counted(data: dict, exclude: bool = True) -> list[int]:
    return [i for i in range(VISITORS) if not (exclude and i in data["multiple"])]


def revenue(data: dict, i: int) -> float:
    return float(sum(data["revenue"][i]))


def test_visitors_decided_into_more_than_one_variation_are_counted_exactly_and_left_out(project, data):
    flagged = query(project, "select visitor_id from experiments.exp_exposures__observations "
                             "where is_multiple_exposure order by 1")
    found, shown = results(project, "exposures")

    assert flagged == [(f"u{i:03d}",) for i in sorted(data["multiple"])]  # not those decided again alike
    by_first = {v: sum(1 for i in data["multiple"] if data["first"][i] == v) for v in ("100", "200")}
    assert found["multiple_exposures"] == {"handling": "exclude", "visitors": MULTIPLE, "of_visitors": VISITORS,
                                           "share": MULTIPLE / VISITORS, "by_first_variation": by_first,
                                           "warning": True}
    units = {v: sum(1 for i in counted(data) if data["first"][i] == v) for v in ("100", "200")}
    assert found["sample_ratio"]["units"] == units
    assert found["sample_ratio"]["p_value"] == pytest.approx(sample_ratio_p_value(list(units.values())))
    purchases = metric(found, "purchases")["variations"]
    assert [(e["units"], e["total"]) for e in purchases] == [
        (units[v], sum(len(data["revenue"][i]) for i in counted(data) if data["first"][i] == v)) for v in ("100", "200")]
    assert (f"Multiple exposures: {MULTIPLE} of {VISITORS} visitors (5.8%) decided into more than one variation, "
            "left out\nWARNING: more than 1% of the visitors") in shown


def test_with_first_a_multiple_exposure_counts_in_the_variation_of_its_first_decision(project, data):
    found, shown = results(project, "exposures_first")

    units = {v: sum(1 for i in range(VISITORS) if data["first"][i] == v) for v in ("100", "200")}
    assert found["sample_ratio"]["units"] == units
    assert (found["multiple_exposures"]["handling"], found["multiple_exposures"]["visitors"]) == ("first", MULTIPLE)
    assert "decided into more than one variation, counted in the variation of their first decision" in shown


def test_each_enrollment_day_has_its_units_per_variation_and_its_own_sample_ratio_test(project, data):
    found, shown = results(project, "exposures")

    expected = []
    for index, day in enumerate(DAYS):
        units = {v: sum(1 for i in counted(data) if data["first"][i] == v and data["day"][i] == index)
                 for v in ("100", "200")}
        expected.append({"day": day, "units": units,
                         "multiple_exposures": sum(1 for i in data["multiple"] if data["day"][i] == index),
                         "sample_ratio_p": pytest.approx(sample_ratio_p_value(list(units.values())))})
    assert found["daily"] == expected
    assert "Daily sample ratio: as planned on each of 2 enrollment day(s)" in shown


def test_a_quantile_cap_is_that_quantile_of_the_counted_units_values_and_a_fixed_cap_its_value(project, data):
    found, shown = results(project, "exposures")

    values = np.array([revenue(data, i) for i in counted(data)])
    cap = np.percentile(values, 90)  # linear interpolation: SQL's percentile_cont
    for name, at, quantile in (("revenue", cap, 0.9), ("revenue_fixed", 1000.0, None)):
        reported = metric(found, name)
        assert reported["cap"] == {"quantile": quantile, "value": pytest.approx(at), "covariate_value": None}
        for entry in reported["variations"]:
            capped = np.minimum([revenue(data, i) for i in counted(data) if data["first"][i] == entry["variation"]],
                                at)
            assert (entry["total"], entry["mean"]) == (pytest.approx(capped.sum()), pytest.approx(capped.mean()))
    assert f"revenue: each unit's value capped at {cap:,.0f} (the 0.9 quantile of all units' values)" in shown
    assert "revenue_fixed: each unit's value capped at 1,000 (cap_value)" in shown


def test_a_ratio_of_a_capped_metric_divides_the_capped_sums(project, data):
    found, _ = results(project, "exposures")

    cap = metric(found, "revenue")["cap"]["value"]
    for entry in metric(found, "revenue_per_purchase")["variations"]:
        mine = [i for i in counted(data) if data["first"][i] == entry["variation"]]
        assert entry["mean"] == pytest.approx(sum(min(revenue(data, i), cap) for i in mine)
                                              / sum(len(data["revenue"][i]) for i in mine))


def test_the_looks_and_the_skewness_read_the_values_capped_as_the_table_does(project, data):
    from optimizely_courier.experiments.plot import cumulative_lifts
    from optimizely_courier.experiments.results import find_experiment

    found, _ = results(project, "exposures")
    series = cumulative_lifts(find_experiment(project, "exposures"), project / "warehouse.duckdb", "100")

    treatment = metric(found, "revenue")["variations"][1]
    assert series["revenue"]["200"][-1].lift == pytest.approx(treatment["lift"])
    cap = metric(found, "revenue")["cap"]["value"]
    skews = [stats.skew(np.minimum([revenue(data, i) for i in counted(data) if data["first"][i] == v], cap),
                        bias=False) for v in ("100", "200")]
    assert treatment["normal_approximation"]["units_needed"] == max(units_needed(s) for s in skews)


def test_chance_to_beat_the_baseline_expected_loss_and_the_guardrail_follow_the_comparison(project):
    found, shown = results(project, "exposures")

    rate = metric(found, "purchase_rate")
    (n_b, p_b), (n_t, p_t) = ((e["units"], e["mean"]) for e in rate["variations"])
    # the log of the ratio of the rates, its error by the delta method (sample variances, n - 1)
    log_lift = math.log(p_t / p_b)
    se = math.sqrt(p_t * (1 - p_t) / (n_t - 1) / p_t ** 2 + p_b * (1 - p_b) / (n_b - 1) / p_b ** 2)
    reading, harm = bayesian(log_lift, se), guardrail(log_lift, se, 0.05)
    treatment = rate["variations"][1]
    assert (treatment["chance_to_beat_baseline"], treatment["expected_loss"]) == (
        pytest.approx(reading.chance_to_beat_baseline), pytest.approx(reading.expected_loss))
    # flat prior: the chance to beat the baseline is one minus the one-sided p of the same z
    assert treatment["chance_to_beat_baseline"] == pytest.approx(stats.norm.cdf(log_lift / se))
    assert rate["guardrail"] == {"max_harm": 0.05}
    assert treatment["guardrail"] == {"harm": pytest.approx(1 - p_t / p_b), "harm_low": pytest.approx(harm.harm_low),
                                      "harm_high": pytest.approx(harm.harm_high),
                                      "p_value": pytest.approx(harm.p_value), "verdict": harm.verdict}
    guardrails = shown[shown.index("\nGuardrails: "):]
    row = next(line.split() for line in guardrails.splitlines() if line.split()[:1] == ["purchase_rate"])
    assert row[:3] == ["purchase_rate", "200", "higher"] and " ".join(row[-3:]).endswith(harm.verdict)
    assert "chance to beat" in shown and "expected loss" in shown


def test_a_prior_and_lower_is_better_turn_the_chance_around_as_documented(project):
    found, shown = results(project, "exposures_first")

    baseline, treatment = metric(found, "purchases")["variations"]
    assert found["prior"] == {"mean": 0.0, "sd": 0.1}
    # the log ratio's posterior: its normal likelihood times the N(log 1, 0.1^2) prior; lower is better
    arms = [Arm(e["units"], e["mean"], variance) for e, variance in zip((treatment, baseline), variations(project))]
    log_lift, se = log_ratio(*arms)
    precision = 1 / se ** 2 + 1 / 0.1 ** 2
    posterior_mean, posterior_sd = log_lift / se ** 2 / precision, math.sqrt(1 / precision)
    assert treatment["chance_to_beat_baseline"] == pytest.approx(stats.norm.cdf(-posterior_mean / posterior_sd))
    flat = bayesian(log_lift, se, "lower")
    assert 0.5 < treatment["chance_to_beat_baseline"] < flat.chance_to_beat_baseline  # pulled toward no effect
    assert "Bayesian prior on the relative lift: normal, mean +0.0%, sd 10.0%" in shown


def variations(project) -> list[float]:
    """The purchases' sample variance in exposures_first's treatment and baseline, from its results model."""
    return [v for (v,) in query(project, "select variance from experiments.exp_exposures_first__results "
                                         "where segment = 'all' and metric = 'purchases' order by variation_id desc")]


def test_results_built_with_another_cap_say_to_rebuild(project):
    definition = project / "experiments" / "exposures_first.yml"
    definition.write_text(FIRST.replace("better: lower}", "better: lower, cap: 99%}"))
    try:
        shown = run_cli(project, "results", "exposures_first")
    finally:
        definition.write_text(FIRST)

    assert shown.exit_code == 1
    assert shown.output.strip() == ("Error: the results of experiment `exposures_first` were built with another cap "
                                    "of its metric `purchases`: run `courier feeds compile`, then "
                                    "`dbt build --select tag:exposures_first`")


# -- courier plan ------------------------------------------------------------------------------------

Z = 1.959964 + 0.841621  # two-sided 5%, power 80%


def test_plan_gives_units_per_variation_from_the_baselines_mean_and_variance_and_days_at_the_enrollment(
        project, data):
    found = json.loads(run_cli(project, "plan", "exposures", "--mde", "10%", "--json").output)
    shown = run_cli(project, "plan", "exposures", "--mde", "10%")

    counts = np.array([len(data["revenue"][i]) for i in counted(data) if data["first"][i] == "100"], dtype=float)
    n = Z ** 2 * 2 * counts.var(ddof=1) / (0.1 * counts.mean()) ** 2  # a count: equal variances, equal split
    purchases = metric(found, "purchases")
    assert (purchases["baseline_mean"], purchases["baseline_sd"]) == (
        pytest.approx(counts.mean()), pytest.approx(counts.std(ddof=1)))
    assert purchases["units"] == {"100": pytest.approx(n, abs=1), "200": pytest.approx(n, abs=1)}
    enrolled = len(counted(data))
    assert (found["enrolled"], found["daily_units"]) == (enrolled, enrolled / 2)  # over two enrollment days
    total = purchases["total_units"]
    assert purchases["days"] == math.ceil(total / (enrolled / 2))
    assert purchases["days_to_go"] == math.ceil((total - enrolled) / (enrolled / 2))
    rate = metric(found, "purchase_rate")  # a rate: the treatment's variance is that of the rate it would have
    p = rate["baseline_mean"]
    assert sum(rate["units"].values()) == pytest.approx(
        Z ** 2 * (rate["baseline_sd"] ** 2 / 0.5 + p * 1.1 * (1 - p * 1.1) / 0.5) / (0.1 * p) ** 2, abs=2)
    assert shown.exit_code == 0 and shown.output.startswith(
        "Plan for experiment exposures: a 10.0% relative effect (in each metric's better direction), power 80%, "
        "two-sided alpha 0.05, split 50% / 50% (100, 200; baseline 100)\n"
        f"Enrollment: {enrolled / 2:,.0f} units a day (observed over 2 day(s); {enrolled} so far)")


def test_plan_before_an_experiment_runs_takes_the_given_baseline_and_enrollment(project):
    given = run_cli(project, "plan", "unbuilt", "--mde", "5%", "--metric", "purchase_rate", "--mean", "0.1",
                    "--daily-units", "1000", "--json")
    nothing = run_cli(project, "plan", "unbuilt", "--mde", "5%")

    assert given.exit_code == 0, given.output
    entry = json.loads(given.output)["metrics"][0]
    n = Z ** 2 * (0.1 * 0.9 + 0.105 * 0.895) / (0.005 ** 2)  # per variation, the textbook two-proportion formula
    assert entry["units"] == {"baseline": math.ceil(n), "treatment": math.ceil(n)}
    assert entry["days"] == math.ceil(2 * math.ceil(n) / 1000) and entry["from"] == "given"
    assert nothing.exit_code == 1
    assert nothing.output.strip() == ("Error: no results for experiment `unbuilt` yet: run `courier feeds compile`, "
                                      "then `dbt build --select tag:unbuilt`")


@pytest.mark.parametrize("args, message", [
    (["--mde", "five"], "Invalid value for '--mde': expected a percentage such as 5% (or a fraction such as 0.05)"),
    (["--mde", "0%"], "Invalid value for '--mde': expected an effect above 0% and below 1000%"),
    (["--mde", "5"], "Invalid value for '--mde': a number without % is a fraction: write 5% (or 0.05)"),
    (["--mde", "nan%"], "Invalid value for '--mde': expected an effect above 0% and below 1000%"),
    (["--mde", "5%", "--power", "1.5"], "Invalid value for '--power'"),
    (["--mde", "5%", "--mean", "3"], "Error: --mean and --sd describe one metric's baseline: name it with --metric"),
    (["--mde", "5%", "--metric", "nope"], "Error: experiment `exposures` has no metric `nope`; metrics: purchases,"),
    (["--mde", "5%", "--metric", "revenue", "--mean", "3"], "Error: give both --mean and --sd"),
    (["--mde", "5%", "--metric", "purchase_rate", "--mean", "3"], "Error: --mean: `purchase_rate` is a rate"),
])
def test_plan_refuses_bad_options_in_one_line(project, args, message):
    result = run_cli(project, "plan", "exposures", *args)

    assert result.exit_code in (1, 2) and "Traceback" not in result.output
    assert message in result.output, result.output
