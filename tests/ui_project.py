"""A project for the UI's tests and screenshots: generated E3 data in a local mirror, landed by a group run
and a courier run (and one failed run, for an alert), the shipped feeds built (the decisions' `country`
tagged as PII), and two experiments built (one with segments, one with CUPED) over five enrollment days. It
is a git repository whose `main` has the shipped decisions feed: the working tree's PII tag is a change to
review.

    python -m tests.ui_project DIR      # build one at DIR/project (then: courier -C DIR/project ui)
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from optimizely_courier.settings import configure_runtime

configure_runtime()

from optimizely_courier.config.sources import load_project  # noqa: E402
from optimizely_courier.dev.generate import E3Spec, ExperimentSpec, generate, generate_experiment  # noqa: E402
from optimizely_courier.runs.build import run_dbt  # noqa: E402
from tests.conftest import copy_dbt_files, run_cli  # noqa: E402

START = dt.date(2026, 11, 25)
SOURCES = """couriers:
  optimizely:
    local_path: mirror
    entities:
      - object/file-pattern: "'type=decisions/date='yyyy-MM-dd'/experiment=*/'"
        object/land-as: {file/tag: decisions}
      - object/file-pattern: "'type=events/date='yyyy-MM-dd'/event=*/'"
        object/land-as: {file/tag: conversions}
    load_operations:
      df-7k2m9q: [{type: load, file: decisions}]
      df-3p8x1w: [{type: load, file: conversions}]
courier_groups:
  nightly:
    schedule: "30 8 * * *"
    timezone: America/Los_Angeles
    couriers: [{name: optimizely, wait: 0s, offset: 24h}]
"""
CHECKOUT = """id: checkout
experiment_id: "9300000001"
baseline: "930000000101"
window: 48h
segments: [country]
metrics:
  - {name: purchase_rate, kind: unique, event: purchase}
  - {name: purchases, kind: count, event: purchase}
  - {name: revenue, kind: sum, event: purchase, value: revenue_cents, guardrail: true, max_harm: 5%}
  - {name: revenue_per_purchase, kind: ratio, numerator: revenue, denominator: purchases}
"""
CUPED = """id: checkout_cuped
experiment_id: "9300000001"
baseline: "930000000101"
cuped: 7d
metrics:
  - {name: purchases, kind: count, event: purchase}
  - {name: revenue, kind: sum, event: purchase, value: revenue_cents}
"""
EXPERIMENTS = ("checkout", "checkout_cuped")
DECISIONS_FEED = "feeds/optimizely/decisions.yml"
COUNTRY = '{name: country, type: String, from: "attributes[country]"}'
IGNORED = "warehouse.duckdb*\n.courier/\ntarget/\nlogs/\nmirror/\n"


def build(root: Path) -> Path:
    """Build the project at `root` (a new directory) and return it."""
    root.mkdir(parents=True)
    copy_dbt_files(root, "feeds")
    shipped = (root / DECISIONS_FEED).read_text()
    _git_main(root, shipped)
    (root / DECISIONS_FEED).write_text(shipped.replace(COUNTRY, COUNTRY[:-1] + ", semantic: country}"))
    (root / "sources.yml").write_text(SOURCES)
    (root / "experiments").mkdir()
    (root / "experiments" / "checkout.yml").write_text(CHECKOUT)
    (root / "experiments" / "checkout_cuped.yml").write_text(CUPED)
    generate(E3Spec(start=START, days=2, rows=600, experiments=2), root / "mirror")
    generate_experiment(ExperimentSpec(visitors=3000, day=START, days=5), root / "mirror")
    for args in (("feeds", "compile"), ("group", "run", "nightly", "--date", str(START)),
                 ("run", "optimizely", "--all")):
        result = run_cli(root, *args)
        assert result.exit_code == 0, result.output
    failed = run_cli(root, "run", "optimizely", "--date", "2026-12-30")  # no such day: a failed run, an alert
    assert failed.exit_code == 1, failed.output
    run_dbt(load_project(root), "build", select=[f"tag:{name}" for name in EXPERIMENTS])
    return root


def _git_main(root: Path, shipped: str) -> None:
    """Make `root` a git repository whose `main` holds the shipped feeds."""
    import subprocess

    (root / ".gitignore").write_text(IGNORED)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=courier", "-c", "user.email=courier@example.com", "commit", "-q", "-m", "base"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def add_day(root: Path, day: dt.date, rows: int = 400) -> None:
    """Another day of generated export in the project's mirror (for a run to land)."""
    generate(E3Spec(start=day, days=1, rows=rows, experiments=1, seed=day.toordinal()), root / "mirror")


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) / "project"))
