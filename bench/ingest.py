"""Landing benchmark: the courier versus DuckDB's own read_parquet, on the same generated files.

Each case runs in a fresh child process (so peak RSS is its own); the parent prints rows/s, wall
time, peak RSS and the ratio to DuckDB, as medians over --repeat runs.

    python bench/ingest.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SOURCES = """couriers:
  bench:
    local_path: {mirror}
    entities:
      - object/file-pattern: "'type=decisions/date='yyyy-MM-dd'/experiment=*/'"
        object/ready-marker: "'type=decisions/date='yyyy-MM-dd'/_SUCCESS'"
        object/land-as: {{file/tag: decisions}}
"""


def generate(rows: int, out: Path) -> None:
    from optimizely_courier.dev.generate import E3Spec
    from optimizely_courier.dev.generate import generate as write

    write(E3Spec(days=1, experiments=4, events=(), rows=rows, rows_per_file=250_000, seed=42), out)


def case_courier(data: Path, work: Path) -> int:
    from optimizely_courier.config.sources import load_project
    from optimizely_courier.landing.discovery import RunDates
    from optimizely_courier.landing.ingest import land

    (work / "sources.yml").write_text(SOURCES.format(mirror=data))
    result = land(load_project(work, {}), "bench", RunDates.everything())
    return result.rows


def case_duckdb(data: Path, work: Path) -> int:
    import duckdb

    with duckdb.connect(str(work / "duckdb.duckdb")) as db:
        db.execute(f"create table decisions as select * from read_parquet('{data}/type=decisions/*/*/*.parquet')")
        return db.execute("select count(*) from decisions").fetchall()[0][0]


CASES = {"courier": case_courier, "duckdb": case_duckdb}


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries that over exec from the parent,
    which here holds the generated data."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(case: str, data: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix=f"bench-{case}-"))
    try:
        start = time.perf_counter()
        rows = CASES[case](data, work)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    peak_mb = peak_rss_mb()
    print(json.dumps({"case": case, "rows": rows, "seconds": seconds, "peak_mb": peak_mb}))


def measure(case: str, data: Path) -> dict:
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"}
    out = subprocess.run([sys.executable, __file__, "--child", case, "--data", str(data)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="decision rows to land")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; medians are reported")
    parser.add_argument("--child", choices=sorted(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.data)

    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        data = Path(tmp)
        generate(args.rows, data)
        runs = {case: [measure(case, data) for _ in range(args.repeat)] for case in ("duckdb", "courier")}
    base = statistics.median(r["seconds"] for r in runs["duckdb"])
    print(f"Landing {args.rows:,} E3 decision rows from local Parquet (median of {args.repeat}):")
    print(f"  {'case':<10} {'seconds':>8} {'rows/s':>12} {'peak RSS MB':>12} {'vs duckdb':>10}")
    for case, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        peak = statistics.median(r["peak_mb"] for r in results)
        assert all(r["rows"] == args.rows for r in results), f"{case} landed the wrong number of rows"
        print(f"  {case:<10} {seconds:>8.2f} {args.rows / seconds:>12,.0f} {peak:>12.0f} {seconds / base:>9.2f}x")


if __name__ == "__main__":
    main()
