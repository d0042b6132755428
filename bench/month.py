"""A month of decisions (issue #35): 30 days of the export's decision files to the domain table,
beside hand-written DuckDB; one more day onto it; a plain `dbt build` with nothing new.

    python bench/month.py --work /work/bench-month --keep          # 30 days x 1 M rows (120 part files)
    python bench/month.py --rows-per-day 3300000 --work /work/bench-100m   # 100 M rows
    python bench/month.py --root ../other-worktree                  # another worktree's engine and models
    python bench/month.py --days 1 --increment-rows 10000           # a mid-size day, a small increment
    python bench/month.py --days 3 --rows-per-day 100000            # a quick check
    python bench/month.py ... --write                               # + its section in bench/results.md

The project loads the decisions feed alone (bench/e2e.py's project, decisions-only: the conversions
feed's models and the experiment models left out, the models compiled again). Cases, each a fresh
process, timed end to end with the peak RSS of its whole process tree (bench/e2e.py's `timed`):
- `courier run optimizely --all` of the month into an empty warehouse;
- the decisions part of bench/baseline.sql by DuckDB over the same files, in a process of its own;
- day N+1 onto the month, `courier run optimizely --date D` (`--increment-rows` rows, the day's size unless
  given);
- the same day alone onto an empty warehouse (a project whose data holds only that day), the same command,
  after a `dbt parse` there (untimed), as the month's project has dbt's parse from its runs: without it
  the day alone also pays dbt's full parse, about 1 s here, and the history would look cheaper than it is;
- a plain `dbt build` with nothing new on the month's warehouse (then once more), and dbt's own floor
  (bench/e2e.py's one-model project) in the same round.

Generated days are kept under the work directory (`data-<rows>x<files>/`, one seed per day, a day
whole once its `_SUCCESS` is written), so a later run with the same `--work` skips generating them.
Without `--keep` the projects and warehouses are removed (and a temporary work directory entirely);
a `--work` directory's generated days always stay.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import e2e  # bench/e2e.py, beside this script
from e2e import ROOT, START, baseline, dbt_floor, decisions_sources, project, timed

SEED = 42
MONTH_TARGETS = {"ratio": 1.0, "peak_mb": 1024}       # 30 days x 1 M rows
HUNDRED_M_TARGETS = {"ratio": 0.9, "peak_mb": 1536}   # 100 M rows (30 days x 3.3 M)
DAY_TARGETS = {"ratio": 2.0, "peak_mb": 1024}         # a mid-size day: 1 M rows
INCREMENT_TARGET = 1.15                                # a day onto the month / that day alone
SMALL_INCREMENT_OVER_FLOOR = 1.0                       # a 10 k-row increment, s over dbt's floor
DBT_OVER_FLOOR = 1.5                                   # a plain `dbt build` with nothing new, s over dbt's floor


def decisions_sql() -> str:
    """bench/baseline.sql up to the conversions' statement: the schema and domain.decisions."""
    sql = (ROOT / "bench" / "baseline.sql").read_text()
    return sql[:sql.index("create or replace table domain.conversions")].rstrip() + "\n"


def day_dir(data: Path, day: dt.date) -> Path:
    return data / "type=decisions" / f"date={day}"


def _generate_day(cache: Path, day: dt.date, rows: int, files: int) -> None:
    e2e.generate(cache, rows, days=1, start=day, files_per_day=files, events=False,
                 seed=SEED + (day - START).days)


def generate_days(cache: Path, days: list[dt.date], rows: int, files: int) -> None:
    """Each missing day into `cache` (a day whose `_SUCCESS` is missing is written again)."""
    missing = [day for day in days if not (day_dir(cache, day) / "_SUCCESS").exists()]
    for day in missing:
        shutil.rmtree(day_dir(cache, day), ignore_errors=True)
    if missing:
        print(f"generating {len(missing)} day(s) of {rows:,} decision rows into {cache}", flush=True)
        with ProcessPoolExecutor(min(len(missing), os.cpu_count() or 1)) as pool:
            list(pool.map(_generate_day, [cache] * len(missing), missing, [rows] * len(missing),
                          [files] * len(missing)))


def link_days(cache: Path, data: Path, days: list[dt.date]) -> None:
    """The days' files into `data` as hard links (no copying; the courier only reads them)."""
    for day in days:
        shutil.copytree(day_dir(cache, day), day_dir(data, day), copy_function=os.link)


def decisions_project(work: Path, data: Path, root: Path, env: dict) -> Path:
    """bench/e2e.py's project from `root`, with the decisions feed alone."""
    project(work, data, root=root, sources=decisions_sources(data))
    shutil.rmtree(work / "models" / "experiments", ignore_errors=True)
    for path in [*(work / "feeds").rglob("*conversions*"), *(work / "models").rglob("*conversions*")]:
        path.unlink()
    timed([sys.executable, "-m", "optimizely_courier", "feeds", "compile"], work, env)
    return work


def courier(work: Path, env: dict, *args: str) -> dict:
    return timed([sys.executable, "-m", "optimizely_courier", "run", "optimizely", *args], work, env)


def count(path: Path, table: str) -> int:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as db:
        return db.execute(f"select count(*) from {table}").fetchall()[0][0]


def breakdown(output: str) -> dict:
    """From a courier run's output (its clock, to the second): the landing, from its start to the domain
    build's, and the domain build to the end; and each model's build, in seconds."""
    def clock(text: str) -> int | None:
        found = re.search(r"^(\d\d):(\d\d):(\d\d) " + text, output, re.MULTILINE)
        return int(found[1]) * 3600 + int(found[2]) * 60 + int(found[3]) if found else None

    start, build, end = clock("Loading data"), clock("Committing domain"), clock("Courier job completed")
    models = {name: float(s) for name, s in re.findall(r"built (\S+) in ([\d.]+)s", output)}
    return {"landing": build - start if start is not None and build is not None else None,
            "building": end - build if build is not None and end is not None else None, "models": models}


CASES = ("courier --all", "baseline", "day onto the month", "day alone", "dbt build, nothing new",
         "dbt build again", "dbt build, one-model project")


def round_(work: Path, cache: Path, days: list[dt.date], extra_cache: Path, extra: dt.date, root: Path,
           env: dict, logs: Path, index: int) -> dict:
    results: dict[str, dict] = {}
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    month_data, day_data = work / "month-data", work / "day-data"
    link_days(cache, month_data, days)
    link_days(extra_cache, day_data, [extra])
    month = decisions_project(work / "month", month_data, root, env)
    alone = decisions_project(work / "day", day_data, root, env)
    dbt = [str(e2e.BIN / "dbt")]
    timed([*dbt, "parse", "--quiet"], alone, env)  # as the month's project has parsed (see the docstring)

    os.sync()
    results["baseline"] = baseline(work, month_data, decisions_sql())
    baseline_rows = count(work / "baseline.duckdb", "domain.decisions")
    (work / "baseline.duckdb").unlink()
    os.sync()
    results["courier --all"] = courier(month, env, "--all")
    courier_rows = count(month / "warehouse.duckdb", 'domain."Optimizely:Decisions"')
    if courier_rows != baseline_rows:
        raise SystemExit(f"the courier built {courier_rows:,} rows, the baseline {baseline_rows:,}")
    link_days(extra_cache, month_data, [extra])
    os.sync()
    results["day onto the month"] = courier(month, env, "--date", str(extra))
    results["dbt build, nothing new"] = timed([*dbt, "build", "--quiet"], month, env)
    results["dbt build again"] = timed([*dbt, "build", "--quiet"], month, env)
    results["dbt build, one-model project"] = dbt_floor(work / "floor", env)
    os.sync()
    results["day alone"] = courier(alone, env, "--date", str(extra))
    for case, result in results.items():
        name = case.replace(" ", "-").replace(",", "")
        (logs / f"{index}-{name}.log").write_text(result.pop("output"))
    results["courier --all"]["breakdown"] = breakdown((logs / f"{index}-courier---all.log").read_text())
    print(f"round {index + 1}: " + ", ".join(f"{case} {r['seconds']:.2f} s {r['peak_mb']:.0f} MB"
                                           for case, r in results.items()), flush=True)
    return results


def summary(rounds: list[dict]) -> dict:
    return {case: {"seconds": statistics.median(r[case]["seconds"] for r in rounds),
                   "peak_mb": max(r[case]["peak_mb"] for r in rounds)} for case in CASES}


def verdict(value: float, target: float) -> str:
    return "met" if value <= target else "**not met**"


def targets_for(days: int, rows: int) -> tuple[str, dict]:
    """The issue's targets for this size: 100 M rows, a month, or a mid-size day."""
    if days * rows >= 90_000_000:
        return "100 M rows", HUNDRED_M_TARGETS
    return ("a month", MONTH_TARGETS) if days > 1 else ("a mid-size day", DAY_TARGETS)


def report(r: dict, days: int, rows: int, increment_rows: int, files: int, repeat: int, root: Path,
           breakdowns: list[dict]) -> list[str]:
    total = days * rows
    size, targets = targets_for(days, rows)
    small = increment_rows < rows
    lines = [f"### A {'month' if days > 1 else 'day'} of decisions: {days} day{'s' if days > 1 else ''} x {rows:,} "
             f"rows ({days * files} part files, "
             f"{total:,} rows{f'; a {increment_rows:,}-row increment' if small else ''}; median of {repeat})", "",
             "| case | seconds | peak RSS MB |", "|---|---|---|"]
    history = f"the {'month' if days > 1 else 'day'}"
    labels = {"courier --all": f"`courier run optimizely --all`, {days} day{'s' if days > 1 else ''} into an empty "
                               "warehouse",
              "baseline": "hand-written DuckDB over the same files (bench/baseline.sql's decisions part)",
              "day onto the month": f"one more day ({increment_rows:,} rows) onto {history}, `courier run --date D`",
              "day alone": "the same day onto an empty warehouse, the same command (dbt's parse done before)",
              "dbt build, nothing new": f"a plain `dbt build` with nothing new (on {history} and the day onto it)",
              "dbt build again": "the same `dbt build` again",
              "dbt build, one-model project": "dbt's own floor: `dbt build` of a one-model project (bench/e2e.py)"}
    for case in CASES:
        lines.append(f"| {labels[case]} | {r[case]['seconds']:.2f} | {r[case]['peak_mb']:.0f} |")
    ratio = r["courier --all"]["seconds"] / r["baseline"]["seconds"]
    peak = r["courier --all"]["peak_mb"]
    increment = r["day onto the month"]["seconds"] / r["day alone"]["seconds"]
    floor = r["dbt build, one-model project"]["seconds"]
    over = r["dbt build, nothing new"]["seconds"] - floor
    again = r["dbt build again"]["seconds"] - floor
    lines += ["",
              f"- {size}: courier / hand-written DuckDB {ratio:.2f}x (target <= {targets['ratio']}x): "
              f"{verdict(ratio, targets['ratio'])}; the statement's own peak RSS "
              f"{r['baseline']['peak_mb']:.0f} MB",
              f"- peak RSS of the courier run {peak:.0f} MB (target <= {targets['peak_mb']} MB): "
              f"{verdict(peak, targets['peak_mb'])}",
              (f"- a {increment_rows:,}-row day onto the history: {r['day onto the month']['seconds']:.2f} s, dbt's "
               f"floor + {r['day onto the month']['seconds'] - floor:.2f} s (target <= + {SMALL_INCREMENT_OVER_FLOOR} "
               f"s): {verdict(r['day onto the month']['seconds'] - floor, SMALL_INCREMENT_OVER_FLOOR)}; that day "
               f"alone onto an empty warehouse: {r['day alone']['seconds']:.2f} s" if small else
               f"- a day onto the month / that day alone: {increment:.2f}x (target <= {INCREMENT_TARGET}x): "
               f"{verdict(increment, INCREMENT_TARGET)}"),
              f"- a plain `dbt build` with nothing new: {r['dbt build, nothing new']['seconds']:.2f} s, dbt's floor "
              f"+ {over:.2f} s (target <= + {DBT_OVER_FLOOR} s): {verdict(over, DBT_OVER_FLOOR)}; the same "
              f"again: + {again:.2f} s"]
    landings = [b["landing"] for b in breakdowns if b["landing"] is not None]
    builds = [b["building"] for b in breakdowns if b["building"] is not None]
    models = [b["models"]["optimizely__decisions"] for b in breakdowns if "optimizely__decisions" in b["models"]]
    if landings and builds and models:
        lines.append(f"- in the courier run (its own clock): landing {statistics.median(landings):.0f} s, then the "
                     f"domain build {statistics.median(builds):.0f} s, of which the domain model "
                     f"{statistics.median(models):.1f} s")
    if root != ROOT:
        lines.append(f"- engine, models and feeds from {root}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rows-per-day", type=int, default=1_000_000)
    parser.add_argument("--files-per-day", type=int, default=4)
    parser.add_argument("--increment-rows", type=int, help="rows of the day onto the history (default: a day's)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--work", type=Path, help="work directory; generated days are kept there between runs")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (projects and warehouses)")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the repository whose dbt files, macros, models, feeds and pipelines/ are measured")
    parser.add_argument("--write", action="store_true", help="replace this size's section of bench/results.md")
    args = parser.parse_args()
    root = args.root.resolve()
    env = {**e2e.ENV, "PYTHONPATH": os.pathsep.join(
        [str(root / "pipelines"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    engine = timed([sys.executable, "-c", "import optimizely_courier; print(optimizely_courier.__file__)"], root, env)
    print(f"engine: {engine['output'].strip()}", flush=True)
    work = (args.work or Path(tempfile.mkdtemp(prefix="bench-month-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cache = work / f"data-{args.rows_per_day}x{args.files_per_day}"
    days = [START + dt.timedelta(days=i) for i in range(args.days)]
    extra = START + dt.timedelta(days=args.days)
    increment_rows = args.increment_rows or args.rows_per_day
    extra_cache = work / f"data-{increment_rows}x{args.files_per_day}"
    generate_days(cache, days, args.rows_per_day, args.files_per_day)
    generate_days(extra_cache, [extra], increment_rows, args.files_per_day)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    rounds = []
    try:
        for index in range(args.repeat):
            rounds.append(round_(work / "round", cache, days, extra_cache, extra, root, env, logs, index))
    finally:
        if not args.keep:
            shutil.rmtree(work / "round", ignore_errors=True)
            if args.work is None:
                shutil.rmtree(work)
    lines = report(summary(rounds), args.days, args.rows_per_day, increment_rows, args.files_per_day, args.repeat, root,
                   [r["courier --all"]["breakdown"] for r in rounds])
    print("\n".join(lines))
    if args.keep or args.work:
        print(f"work directory: {work}")
    if args.write:
        from history import write_section  # bench/history.py, beside this script

        heading = re.escape(lines[0].split(" (")[0])
        write_section(ROOT / "bench" / "results.md", lines, heading)


if __name__ == "__main__":
    main()
