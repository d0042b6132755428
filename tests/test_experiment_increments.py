"""Experiment observations built incrementally (DuckDB): a build computes again only the units whose
visitors have rows built since the last one, and always equals a build from scratch; when the domain
tables lost or replaced rows, or the definition changed, it is a build from scratch."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from optimizely_courier.config.sources import load_project
from optimizely_courier.landing.e3 import DECISIONS_SCHEMA, EVENTS_SCHEMA
from optimizely_courier.runs.build import run_dbt
from tests.conftest import query, run_cli
from tests.test_experiments import EXPERIMENT, T0, decision, event, experiment_project, write

OBSERVATIONS = "experiments.exp_checkout__observations"
HOUR = dt.timedelta(hours=1)


@pytest.fixture(scope="module")
def day_one(tmp_path_factory):
    """Day one landed, and the experiment built from it: units v1 (100), v2 (200), v3 (100)."""
    root = experiment_project(tmp_path_factory.mktemp("increments") / "project")
    write(root, "decisions", "2026-11-25", "experiment=1001", [
        decision("d1", "v1", "100", T0, country="DE"), decision("d2", "v2", "200", T0), decision("d3", "v3", "100", T0)],
        DECISIONS_SCHEMA)
    write(root, "events", "2026-11-25", "event=purchase", [
        event("e1", "v1", "purchase", T0 + HOUR, revenue=100), event("e2", "v2", "purchase", T0 + HOUR, revenue=200)],
        EVENTS_SCHEMA)
    assert run_cli(root, "feeds", "compile").exit_code == 0
    build(root)
    assert last_mode(root) == "full"
    return root


@pytest.fixture
def project(day_one, tmp_path):
    """A copy of day one's project (warehouse and all) for a test to add to."""
    return shutil.copytree(day_one, tmp_path / "project")


def build(root) -> None:
    """What a day's schedule does: land and build the domain tables, then the experiment."""
    landed = run_cli(root, "run", "optimizely", "--all")
    assert landed.exit_code == 0, landed.output
    run_dbt(load_project(root), "build", select=["tag:checkout", "tag:cuped"])


def observations(root) -> list[tuple]:
    return query(root, f"select visitor_id, variation_id, decided_at, purchase_rate, purchases, revenue, views "
                       f"from {OBSERVATIONS} order by visitor_id")


def last_mode(root, model: str = "exp_checkout__observations") -> str:
    return query(root, f"select mode from courier.experiment_builds where model = '{model}' "
                       "order by built_at desc limit 1")[0][0]


def cuped_observations(root) -> list[tuple]:
    return query(root, "select * exclude (is_multiple_exposure, revenue__nonfinite) "
                       "from experiments.exp_cuped__observations order by visitor_id")


def multiple_exposures(root) -> list[tuple]:
    return query(root, f"select visitor_id, is_multiple_exposure from {OBSERVATIONS} order by visitor_id")


def mark_untouched(root, visitor: str) -> None:
    """A value no build computes, in a unit's row: it stays only while no build rewrites that row."""
    import duckdb

    with duckdb.connect(str(root / "warehouse.duckdb")) as db:
        db.execute(f"update {OBSERVATIONS} set views = 99 where visitor_id = '{visitor}'")


def rebuild_from_scratch(root) -> None:
    run_dbt(load_project(root), "build", select=["exp_checkout__observations", "exp_cuped__observations"],
            extra=["--full-refresh"])


def test_a_new_day_rewrites_only_the_units_it_touches_and_equals_a_build_from_scratch(project):
    mark_untouched(project, "v3")
    write(project, "decisions", "2026-11-26", "experiment=1001", [
        decision("d4", "v4", "200", T0 + 24 * HOUR),  # a new unit
        decision("d5", "v1", "200", T0 - HOUR, country="FR"),  # late, earlier than v1's first: v1's unit changes
        decision("d6", "v2", "100", T0 - 2 * HOUR, holdback=True),  # holdback: v2's unit stays
    ], DECISIONS_SCHEMA)
    write(project, "events", "2026-11-26", "event=purchase", [
        event("e3", "v2", "purchase", T0 + 30 * HOUR, revenue=300),  # a unit's second purchase
        event("e4", "v4", "purchase", T0 + 25 * HOUR, revenue=400),
        event("e5", "v9", "purchase", T0 + 25 * HOUR, revenue=900),  # not a unit
        event("e6", "v4", "purchase", T0 + 2 * HOUR, revenue=50),  # before v4's decision: CUPED's covariate
    ], EVENTS_SCHEMA)

    build(project)

    assert last_mode(project) == last_mode(project, "exp_cuped__observations") == "incremental"
    incremental, cuped = observations(project), cuped_observations(project)
    assert [row[:2] + row[3:] for row in incremental] == [
        ("v1", "200", 1, 1, 100, 0), ("v2", "200", 1, 2, 500, 0), ("v3", "100", 0, 0, 0, 99), ("v4", "200", 1, 1, 400, 0)]
    # v1's segment is its new first decision's; v4's purchase before its decision is its covariate
    assert [(row[0], row[3]) + row[4:] for row in cuped] == [
        ("v1", "FR", 1, 0, 100, 0), ("v2", None, 2, 0, 500, 0), ("v3", None, 0, 0, 0, 0), ("v4", None, 1, 1, 400, 50)]
    # v1's late decision is into the other variation: a multiple exposure; v2's is holdback: none
    multiple = multiple_exposures(project)
    assert multiple == [("v1", True), ("v2", False), ("v3", False), ("v4", False)]
    rebuild_from_scratch(project)
    assert [row for row in observations(project) if row[0] != "v3"] == [row for row in incremental if row[0] != "v3"]
    assert cuped_observations(project) == cuped
    assert multiple_exposures(project) == multiple


@pytest.mark.long  # slow end to end: make scaleout (CI), for make test's 10 minutes
def test_a_build_with_nothing_new_rewrites_no_unit(project):
    mark_untouched(project, "v1")
    builds = query(project, "select count(*) from courier.experiment_builds")

    build(project)  # runs nothing: no unit could change, so no build is made or recorded

    assert query(project, "select count(*) from courier.experiment_builds") == builds
    assert [row[-1] for row in observations(project)] == [99, 0, 0]
    write(project, "events", "2026-11-26", "event=purchase", [event("e3", "v2", "purchase", T0 + 30 * HOUR)],
          EVENTS_SCHEMA)

    build(project)  # a new file, a unit to compute again: an incremental build

    assert last_mode(project) == "incremental"
    assert [row[-1] for row in observations(project)] == [99, 0, 0]
    assert [row[4] for row in observations(project)] == [1, 2, 0]


def test_a_conversion_replaced_by_a_later_version_rebuilds_the_observations_from_scratch(project):
    # e1 sent again on the next day, now for v2: v1 loses its purchase, which no new row of v1 tells
    write(project, "events", "2026-11-26", "event=purchase", [event("e1", "v2", "purchase", T0 + HOUR, revenue=100)],
          EVENTS_SCHEMA)
    mark_untouched(project, "v3")

    build(project)

    assert last_mode(project) == "full"
    assert [row[:2] + row[3:] for row in observations(project)] == [
        ("v1", "100", 0, 0, 0, 0), ("v2", "200", 1, 2, 300, 0), ("v3", "100", 0, 0, 0, 0)]


def test_a_changed_definition_rebuilds_the_observations_from_scratch(project):
    mark_untouched(project, "v3")
    (project / "experiments" / "checkout.yml").write_text(EXPERIMENT.replace("window: 48h", "window: 30m"))
    assert run_cli(project, "feeds", "compile").exit_code == 0

    build(project)

    assert last_mode(project) == "full"
    assert [row[:2] + row[3:] for row in observations(project)] == [
        ("v1", "100", 0, 0, 0, 0), ("v2", "200", 0, 0, 0, 0), ("v3", "100", 0, 0, 0, 0)]
