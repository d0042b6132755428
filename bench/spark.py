"""Spark, incremental: does a new day cost the same onto 30 days of history as onto 1, and what does
it save against rebuilding the tables whole (what every Spark build did before)?

    python bench/spark.py --history 1,30 --rows 20000    # prints a table; --write adds it to results.md

For each history length H: H days (decision and event rows a day: --rows each) are landed and built
by one `courier run optimizely --all` on the Spark target (local pyspark, not timed). Then a new day
arrives and is timed, as a user waits for it: `courier run optimizely --all` (land the day, build both
feeds incrementally, in a dbt process of its own that starts Spark). Then the same tables rebuilt from
all their history (`dbt build --full-refresh` of the domain and rejected models, in a dbt process too).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from e2e import BIN, timed  # noqa: E402 - bench/e2e.py and bench/history.py, beside this script
from history import SOURCES, START, write_section  # noqa: E402

EVENTS = ("purchase", "add:cart", "signup", "NULL")


def project(work: Path, days: int, rows: int) -> Path:
    """A Spark project over `days` + 1 generated days, the last one held back in `work/later`."""
    from optimizely_courier.dev.generate import E3Spec, generate

    generate(E3Spec(start=START, days=days + 1, experiments=4, events=EVENTS, rows=rows, seed=11), work / "data")
    new_day = START + dt.timedelta(days=days)
    for kind in ("decisions", "events"):
        partition = Path(f"type={kind}") / f"date={new_day}"
        shutil.move(work / "data" / partition, work / "later" / partition)
    (work / "sources.yml").write_text("warehouse: {type: spark, lake: lake}\n" + SOURCES)
    for name in ("dbt_project.yml", "profiles.yml", "macros", "models", "feeds"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, work / name)
    return work


def measure(days: int, rows: int) -> dict:
    from optimizely_courier.config.sources import load_project
    from optimizely_courier.runs.build import run_dbt

    run = [str(BIN / "courier"), "run", "optimizely", "--all"]
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        work = project(Path(tmp), days, rows)
        setup = timed(run, work)["seconds"]
        shutil.copytree(work / "later", work / "data", dirs_exist_ok=True)
        increment = timed(run, work)["seconds"]
        start = time.perf_counter()
        feeds = ["optimizely__decisions", "optimizely__conversions"]
        models = feeds + [f"{feed}__rejected" for feed in feeds]
        run_dbt(load_project(work), "build", select=models, extra=["--full-refresh"])
        rebuild = time.perf_counter() - start
    result = {"days": days, "rows": days * rows, "setup": setup, "increment": increment, "rebuild": rebuild}
    print(result, flush=True)
    return result


def report(results: list[dict], rows: int) -> list[str]:
    lines = [f"### Spark, incremental: a new day of {rows:,} decision and {rows:,} event rows (local pyspark)", "",
             "| history | decision rows before | new day, `courier run` (land + incremental build) | "
             "whole rebuild (`--full-refresh`) |", "|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['days']} day(s) | {r['rows']:,} | {r['increment']:.1f}s | {r['rebuild']:.1f}s |")
    first, last = results[0], results[-1]
    ratio = last["increment"] / first["increment"]
    lines += ["", f"- the new day onto {last['days']} days against onto {first['days']}: {last['increment']:.1f}s / "
                  f"{first['increment']:.1f}s = {ratio:.2f}x (target <= 1.2x): {'met' if ratio <= 1.2 else 'NOT met'}",
              f"- a whole rebuild at {last['days']} days (what each Spark build did before): {last['rebuild']:.1f}s",
              "- every figure includes starting Spark (a JVM) in the dbt process"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", default="1,30", help="history lengths in days, comma-separated")
    parser.add_argument("--rows", type=int, default=20_000, help="decision rows a day (and as many event rows)")
    parser.add_argument("--write", action="store_true", help="replace this section of bench/results.md")
    args = parser.parse_args()
    lines = report([measure(int(days), args.rows) for days in args.history.split(",")], args.rows)
    print("\n".join(lines))
    if args.write:
        write_section(ROOT / "bench" / "results.md", lines, r"### Spark, incremental")


if __name__ == "__main__":
    main()
