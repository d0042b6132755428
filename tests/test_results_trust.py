"""Results that never claim more than the data can show, built by dbt from hand-made E3 files: NaN and
infinite values left out of a sum and counted, n/a with its reason where a statistic is undefined,
strict JSON, and `--plot` paths refused in one line."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from optimizely_courier.config.sources import load_project
from optimizely_courier.experiments.stats import q_values
from optimizely_courier.landing.e3 import DECISIONS_SCHEMA, EVENTS_SCHEMA
from optimizely_courier.runs.build import run_dbt
from optimizely_courier.text import to_json
from tests.cases import OPTIMIZELY_SOURCES
from tests.conftest import copy_dbt_files, query, run_cli
from tests.test_experiments import T0, decision, event, write

TRUST = """id: trust
experiment_id: "1001"
baseline: "100"
metrics:
  - {name: refund_value, kind: sum, event: refund, value: value}
  - {name: signups, kind: count, event: signup}
  - {name: purchases, kind: count, event: purchase}
"""
TINY = """id: tiny
experiment_id: "1004"
metrics:
  - {name: purchases, kind: count, event: purchase}
"""
FAR = """id: far
experiment_id: "1005"
metrics:
  - {name: purchases, kind: count, event: purchase}
"""
FAR_DAY = dt.datetime(9999, 12, 31, 10, tzinfo=dt.UTC)


def refund(uuid: str, visitor: str, value: float) -> dict:
    return {**event(uuid, visitor, "refund", T0 + dt.timedelta(hours=1)), "value": value}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("trust") / "project"
    root.mkdir()
    copy_dbt_files(root, "feeds")
    (root / "sources.yml").write_text(OPTIMIZELY_SOURCES)
    (root / "experiments").mkdir()
    for name, text in (("trust", TRUST), ("tiny", TINY), ("far", FAR)):
        (root / "experiments" / f"{name}.yml").write_text(text)
    write(root, "decisions", "2026-11-25", "experiment=1001", [
        decision("d1", "v1", "100", T0), decision("d2", "v2", "200", T0), decision("d3", "v3", "200", T0),
        decision("d4", "v4", "100", T0)], DECISIONS_SCHEMA)
    write(root, "decisions", "2026-11-25", "experiment=1004", [
        decision("d5", "v8", "100", T0, experiment="1004"), decision("d6", "v9", "200", T0, experiment="1004")],
        DECISIONS_SCHEMA)
    write(root, "decisions", "9999-12-31", "experiment=1005", [
        decision(f"f{i}", f"w{i}", variation, FAR_DAY, experiment="1005")
        for i, variation in enumerate(["100", "100", "200", "200"])], DECISIONS_SCHEMA)
    write(root, "events", "2026-11-25", "event=refund", [
        refund("r1", "v1", math.nan), refund("r2", "v2", 5.0), refund("r3", "v3", 2.0), refund("r4", "v4", math.inf),
        refund("r5", "v4", 1.5)], EVENTS_SCHEMA)
    write(root, "events", "2026-11-25", "event=purchase", [
        event("p1", "v2", "purchase", T0 + dt.timedelta(hours=2)),
        event("p2", "v8", "purchase", T0 + dt.timedelta(hours=2))], EVENTS_SCHEMA)
    compiled = run_cli(root, "feeds", "compile")
    landed = run_cli(root, "run", "optimizely", "--all")
    assert compiled.exit_code == 0, compiled.output
    assert landed.exit_code == 0, landed.output
    run_dbt(load_project(root), "build", select=["tag:trust", "tag:tiny", "tag:far"])
    return root


def results(project, name: str) -> tuple[dict, str]:
    """`courier results NAME --json` (parsed strictly: NaN or Infinity fail) and the table."""
    output = run_cli(project, "results", name, "--json").output
    found = json.loads(output, parse_constant=lambda word: pytest.fail(f"not JSON: {word} in {output}"))
    shown = run_cli(project, "results", name)
    assert shown.exit_code == 0, shown.output
    return found, shown.output


def metric(found: dict, name: str) -> dict:
    return next(m for m in found["metrics"] if m["metric"] == name)


def test_nan_and_infinite_values_are_left_out_of_a_sum_and_counted(project):
    observations = query(project, "select visitor_id, refund_value, refund_value__nonfinite "
                                  "from experiments.exp_trust__observations order by 1")
    found, shown = results(project, "trust")

    assert observations == [("v1", 0.0, 1), ("v2", 5.0, 0), ("v3", 2.0, 0), ("v4", 1.5, 1)]
    baseline, treatment = metric(found, "refund_value")["variations"]
    assert (baseline["total"], baseline["nonfinite_rows"], treatment["total"], treatment["nonfinite_rows"]) == (
        1.5, 2, 7.0, 0)
    assert math.isfinite(treatment["p_value"]) and math.isfinite(treatment["q_value"])
    assert "refund_value: 2 row(s) with a NaN or infinite value left out" in shown


def test_no_variation_within_either_arm_is_na_with_its_reason_and_never_significant(project):
    found, shown = results(project, "trust")

    _, treatment = metric(found, "signups")["variations"]
    assert treatment["p_value"] is None and treatment["reason"] == "no variation within either arm"
    assert "q_value" not in treatment and not treatment.get("significant")
    assert "200 2 0 0 n/a no variation within either arm" in [" ".join(line.split()) for line in shown.splitlines()]


def test_q_values_are_taken_over_the_defined_comparisons_only(project):
    found, _ = results(project, "trust")

    defined = [metric(found, name)["variations"][1] for name in ("refund_value", "purchases")]
    assert [entry["q_value"] for entry in defined] == pytest.approx(q_values([e["p_value"] for e in defined]))


def test_one_unit_per_arm_is_na_with_its_reason(project):
    found, shown = results(project, "tiny")

    _, treatment = metric(found, "purchases")["variations"]
    assert (treatment["p_value"], treatment["lift"], treatment["always_valid_p"]) == (None, None, None)
    assert treatment["reason"] == "fewer than 2 units in 200" and "significant" not in treatment
    assert "200 1 0 0 n/a fewer than 2 units in 200" in [" ".join(line.split()) for line in shown.splitlines()]
    assert "significant" not in shown


def test_json_never_holds_nan_or_infinity():
    assert json.loads(to_json({"p": math.nan, "low": -math.inf, "rows": [math.inf, 1.5]})) == {
        "p": None, "low": None, "rows": [None, 1.5]}


@pytest.mark.parametrize("target, message", [
    ("missing/lift.png", "the folder {tmp}/missing does not exist"),
    ("file.txt/lift.png", "the folder {tmp}/file.txt is not a directory"),
    ("lift.xyz", "unknown image format '.xyz'; use one of"),
    ("", "name a file such as lift.png"),
])
def test_a_plot_that_cannot_be_written_is_one_line_before_any_work(project, tmp_path, target, message):
    (tmp_path / "file.txt").write_text("x")
    path = str(tmp_path / target) if target else ""

    result = run_cli(project, "results", "trust", "--plot", path)

    assert result.exit_code == 1 and "Traceback" not in result.output
    line, = result.output.strip().splitlines()
    assert line.startswith("Error: --plot") and message.format(tmp=tmp_path) in line, line
    assert not any(tmp_path.glob("*.png")) and not (project / ".png").exists()


def test_decisions_on_days_a_plot_cannot_draw_are_one_line_and_the_table_still_shows(project, tmp_path):
    drawn = run_cli(project, "results", "far", "--plot", str(tmp_path / "lift.png"))
    table = run_cli(project, "results", "far")

    assert drawn.exit_code == 1 and "Traceback" not in drawn.output
    assert drawn.output.strip().splitlines()[-1] == (
        "Error: --plot: decisions on 9999-12-31 cannot be drawn (a plot's days run from 1000-01-01 to 9000-12-31); "
        "the table (without --plot) shows them")
    assert table.exit_code == 0 and "Sample ratio: 2 / 2 units" in table.output
