"""Experiment results at size: from the export's files to `courier results`, beside hand-written DuckDB.

    python bench/experiment.py --visitors 10000000 --days 14           # prints a table
    python bench/experiment.py --visitors 10000000 --days 14 --write   # + its section in bench/results.md
    python bench/experiment.py --visitors 400000 --days 14 --plot bench/experiment.png   # the docs' picture

`make demo`'s experiment (experiments/demo_checkout.yml: purchase rate, purchases and revenue per
visitor within 48 hours of the decision; 10% of the baseline's visitors buy, 13% of the treatment's),
with its decisions spread over --days days, then one more day. Cases, each a fresh process (wall time,
peak RSS of its process tree):
- the courier over the --days days: `courier run optimizely --all` (land and build both domain
  tables), then `dbt build --select tag:demo_checkout` (units, observations, results tables), then
  `courier results demo_checkout --json` (the statistics);
- the next day, the same three steps: what a daily schedule waits for (the observations are built
  incrementally);
- the baseline: `bench/experiment_baseline.sql` run by DuckDB on all the files (first decision per
  visitor, attributed purchases, per-variation totals, means and variances).
The courier's results after the new day and the baseline's have the same units, totals and means (checked).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from e2e import BIN, ENV, SOURCES, timed  # noqa: E402 - bench/e2e.py, beside this script
from history import write_section  # noqa: E402

EXPERIMENT = "demo_checkout"


def generate(data: Path, visitors: int, days: int) -> tuple[str, list[Path]]:
    """The experiment's files under `data` (with each day's ready markers): its experiment id, and the
    last day's partition folders."""
    from optimizely_courier.dev.generate import ExperimentSpec, generate_experiment

    spec = ExperimentSpec(visitors=visitors, days=days)
    for path in generate_experiment(spec, data):
        (path.parent.parent / "_SUCCESS").touch()
    last = (spec.day + dt.timedelta(days=days - 1)).isoformat()
    return spec.experiment_id, sorted(data.glob(f"type=*/date={last}"))


def project(work: Path, data: Path) -> Path:
    work.mkdir()
    (work / "sources.yml").write_text(SOURCES.format(data=data))
    for name in ("dbt_project.yml", "profiles.yml", "macros", "models", "feeds", "experiments"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, work / name)
    return work


def baseline(tmp: Path, data: Path, experiment_id: str) -> tuple[dict, list[tuple]]:
    sql = (ROOT / "bench" / "experiment_baseline.sql").read_text()
    (tmp / "baseline.sql").write_text(sql.replace("{data}", str(data)).replace("{experiment}", experiment_id))
    code = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute(open(sys.argv[2]).read())"
    figures = timed([sys.executable, "-c", code, str(tmp / "baseline.duckdb"), str(tmp / "baseline.sql")], tmp)
    import duckdb

    with duckdb.connect(str(tmp / "baseline.duckdb"), read_only=True) as db:
        rows = db.execute("select variation_id, metric, units, total, mean from results").fetchall()
    return figures, rows


def courier(work: Path, new_day: list[Path], plot: Path | None) -> tuple[dict, list[tuple]]:
    """The courier's figures over the days before `new_day`'s folders (held aside meanwhile), then
    after them; its results at the end."""
    aside = work.parent / "new-day"
    for folder in new_day:
        (aside / folder.parent.name).mkdir(parents=True)
        folder.rename(aside / folder.parent.name / folder.name)
    figures = steps(work, "")
    for folder in new_day:
        (aside / folder.parent.name / folder.name).rename(folder)
    figures.update(steps(work, "new day: "))
    output = subprocess.run([str(BIN / "courier"), "results", EXPERIMENT, "--json"], cwd=work, env=ENV,
                            capture_output=True, text=True, check=True).stdout
    rows = [(variation["variation"], metric["metric"], variation["units"], variation["total"], variation["mean"])
            for metric in json.loads(output)["metrics"] for variation in metric["variations"]]
    if plot:
        subprocess.run([str(BIN / "courier"), "results", EXPERIMENT, "--plot", str(plot)], cwd=work, env=ENV,
                       check=True, capture_output=True)
    return figures, rows


def steps(work: Path, prefix: str) -> dict:
    """A day's work: land and build the domain tables, the experiment's tables, its statistics."""
    return {f"{prefix}land and build domain tables": timed([str(BIN / "courier"), "run", "optimizely", "--all"], work),
            f"{prefix}build the experiment's tables": timed([str(BIN / "dbt"), "build", "--quiet", "--select",
                                                            f"tag:{EXPERIMENT}"], work),
            f"{prefix}courier results": timed([str(BIN / "courier"), "results", EXPERIMENT, "--json"], work)}


def same(courier_rows: list[tuple], baseline_rows: list[tuple]) -> bool:
    def key(row: tuple) -> tuple:
        return (str(row[0]), row[1], int(row[2]), round(float(row[3]), 6), round(float(row[4]), 9))

    return sorted(map(key, courier_rows)) == sorted(map(key, baseline_rows))


def report(visitors: int, days: int, figures: dict) -> list[str]:
    lines = [f"### Experiment results: {visitors:,} decisions over {days} days and one more (`make demo`'s "
             "experiment)", "", "| case | seconds | peak RSS MB |", "|---|---|---|"]
    for case, figure in figures.items():
        lines.append(f"| {case} | {figure['seconds']:.1f} | {figure['peak_mb']:.0f} |")

    def total(prefix: str) -> float:
        return sum(figures[prefix + step]["seconds"] for step in (
            "land and build domain tables", "build the experiment's tables", "courier results"))

    first, new, base = total(""), total("new day: "), figures["baseline"]["seconds"]
    built, increment = (figures[prefix + "build the experiment's tables"]["seconds"] for prefix in ("", "new day: "))
    lines += ["", f"- the first {days} days, files to results with the courier: {first:.1f}s",
              f"- the new day, files to results: {new:.1f}s, {new / base:.2f}x the hand-written query over all "
              f"{days + 1} days' files ({base:.1f}s), which builds no table to keep; the units, totals and means "
              "are equal",
              f"- the new day's experiment tables (observations incremental): {increment:.1f}s, against "
              f"{built:.1f}s for their first build over {days} days"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=10_000_000, help="decisions (one per visitor), all days")
    parser.add_argument("--days", type=int, default=14, help="days before the new day")
    parser.add_argument("--plot", type=Path, help="also write the results picture (needs the plot extra)")
    parser.add_argument("--write", action="store_true", help="replace this section of bench/results.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-experiment-") as tmp:
        data = Path(tmp) / "data"
        experiment_id, new_day = generate(data, args.visitors, args.days + 1)
        base, expected = baseline(Path(tmp), data, experiment_id)
        figures, actual = courier(project(Path(tmp) / "courier", data), new_day, args.plot and args.plot.resolve())
    if not same(actual, expected):
        raise SystemExit(f"the courier's results differ from the baseline's:\n{actual}\n{expected}")
    lines = report(args.visitors, args.days, {**figures, "baseline": base})
    print("\n".join(lines))
    if args.write:
        write_section(ROOT / "bench" / "results.md", lines, r"### Experiment results")


if __name__ == "__main__":
    main()
