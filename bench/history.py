"""A year in fast-forward: does a day cost the same on day 30 as on day 1, and does the record grow
linearly?

    python bench/history.py --days 30 --files 400       # prints a table; --write adds it to results.md

Each day (400 part files: decisions and events) is landed and built by its own
`courier run optimizely --date D` process, as a scheduled run would be. After each day it reads
the size of the record (`_courier_files`, `courier.built_files`) and of dlt's pipeline state.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

SOURCES = """couriers:
  optimizely:
    local_path: data
    entities:
      - object/file-pattern: "'type=decisions/date='yyyy-MM-dd'/experiment=*/'"
        object/ready-marker: "'type=decisions/date='yyyy-MM-dd'/_SUCCESS'"
        object/land-as: {file/tag: decisions}
      - object/file-pattern: "'type=events/date='yyyy-MM-dd'/event=*/'"
        object/ready-marker: "'type=events/date='yyyy-MM-dd'/_SUCCESS'"
        object/land-as: {file/tag: conversions}
    load_operations:
      df-7k2m9q: [{type: load, file: decisions}]
      df-3p8x1w: [{type: load, file: conversions}]
"""
START = dt.date(2026, 10, 1)


def project(work: Path, days: int, files: int, rows_per_file: int) -> Path:
    from optimizely_courier.dev.generate import E3Spec, generate

    half = files // 2
    spec = E3Spec(start=START, days=days, experiments=half, events=tuple(f"event_{i}" for i in range(half)),
                  rows=half * rows_per_file, rows_per_file=rows_per_file, seed=5)
    generate(spec, work / "data")
    (work / "sources.yml").write_text(SOURCES)
    for name in ("dbt_project.yml", "profiles.yml", "macros", "models", "feeds"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, work / name)
    return work


def sizes(work: Path) -> dict:
    import duckdb

    with duckdb.connect(str(work / "warehouse.duckdb"), read_only=True) as db:
        def one(sql: str) -> int:
            return db.execute(sql).fetchall()[0][0] or 0

        return {"record rows": one("select count(*) from raw_optimizely._courier_files"),
                "built rows": one("select count(*) from courier.built_files"),
                "state bytes": one("select max(length(state)) from raw_optimizely._dlt_pipeline_state"),
                "state rows": one("select count(*) from raw_optimizely._dlt_pipeline_state")}


def run(days: int, files: int, rows_per_file: int) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        work = project(Path(tmp), days, files, rows_per_file)
        for index in range(days):
            day = START + dt.timedelta(days=index)
            os.sync()
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "optimizely_courier", "-C", str(work), "run", "optimizely", "--date",
                            str(day)], check=True, capture_output=True)
            results.append({"day": index + 1, "seconds": time.perf_counter() - start, **sizes(work)})
            print(f"day {index + 1:>3}: {results[-1]['seconds']:.2f}s  {results[-1]}", flush=True)
    return results


def report(results: list[dict], files: int) -> list[str]:
    first = statistics.median(r["seconds"] for r in results[:3])
    last = statistics.median(r["seconds"] for r in results[-3:])
    lines = [f"### {len(results)} days of {files} part files, one `courier run --date` a day (land + build)", "",
             "| day | seconds | record rows | built rows | dlt state bytes | dlt state rows |",
             "|---|---|---|---|---|---|"]
    for r in results:
        if r["day"] in (1, 2, 3, 10, 20) or r["day"] > len(results) - 3:
            lines.append(f"| {r['day']} | {r['seconds']:.2f} | {r['record rows']:,} | {r['built rows']:,} | "
                         f"{r['state bytes']:,} | {r['state rows']:,} |")
    ratio = last / first
    lines += ["", f"- the last 3 days against the first 3 (medians): {last:.2f}s / {first:.2f}s = {ratio:.2f}x "
                  f"(target <= 1.2x): {'met' if ratio <= 1.2 else 'NOT met'}",
              f"- day {len(results)} against day 1: {results[-1]['seconds']:.2f}s / {results[0]['seconds']:.2f}s = "
              f"{results[-1]['seconds'] / results[0]['seconds']:.2f}x",
              f"- the record grows by {files:,} rows a day (linear); dlt's state stays "
              f"{results[-1]['state bytes']:,} bytes (it holds no file list)"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--files", type=int, default=400, help="part files a day (half decisions, half events)")
    parser.add_argument("--rows-per-file", type=int, default=20)
    parser.add_argument("--write", action="store_true", help="replace this section of bench/results.md")
    args = parser.parse_args()
    lines = report(run(args.days, args.files, args.rows_per_file), args.files)
    print("\n".join(lines))
    if args.write:
        write_section(ROOT / "bench" / "results.md", lines, r"### \d+ days of ")


def write_section(path: Path, lines: list[str], heading: str) -> None:
    """Put `lines` (a `### ` section) at the end of `path`, replacing any section whose heading matches
    the regular expression `heading` (a rerun at another size replaces it too)."""
    import re

    kept, skipping = [], False
    for line in path.read_text().splitlines():
        if line.startswith("### "):
            skipping = re.match(heading, line) is not None
        if not skipping:
            kept.append(line)
    path.write_text("\n".join(kept).rstrip() + "\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
