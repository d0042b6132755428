"""What a user waits for: from the export's files to both domain tables, beside hand-written DuckDB.

    python bench/e2e.py --rows 1000000                  # the end-to-end cases at one size
    python bench/e2e.py --sizes 1000000,10000000 --write   # + the section in bench/results.md

Cases, each a fresh process (wall time and the peak RSS of its whole process tree, dbt included):
- end to end: `courier run optimizely --all` into an empty warehouse (land + build both shipped
  feeds), N decision rows and as many conversions, against `bench/baseline.sql` run by DuckDB on the
  same files;
- a daily increment: 10,000 rows in 10 files onto that, `courier run optimizely --date D`;
- nothing new: the same run again; then a plain `dbt build` with nothing new to build (its key tests
  check what the courier runs built), twice;
- dbt's own floor: `dbt build` of a one-model DuckDB project (parsed before), on the same machine in
  the same round, beside the plain `dbt build` of the courier's project;
- small files: 3,600 part files (3 days x 600 experiments x 2 parts) landed with `--ingest-only`,
  against DuckDB's `read_parquet` of the same files into a table.
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
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
ENV = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false", "DO_NOT_TRACK": "1"}
START = dt.date(2026, 11, 1)
EVENTS = ("purchase", "add:cart", "signup", "NULL", "view")
SOURCES = """couriers:
  optimizely:
    local_path: {data}
    entities:
      - object/file-pattern: "'type=decisions/date='yyyy-MM-dd'/experiment=*/'"
        object/ready-marker: "'type=decisions/date='yyyy-MM-dd'/_SUCCESS'"
        object/land-as: {{file/tag: decisions}}
      - object/file-pattern: "'type=events/date='yyyy-MM-dd'/event=*/'"
        object/ready-marker: "'type=events/date='yyyy-MM-dd'/_SUCCESS'"
        object/land-as: {{file/tag: conversions}}
    load_operations:
      df-7k2m9q: [{{type: load, file: decisions}}]
      df-3p8x1w: [{{type: load, file: conversions}}]
"""


def decisions_sources(data: Path) -> str:
    """SOURCES with the decisions feed alone (what small_files lands, and bench/month.py runs)."""
    decisions_only = SOURCES.format(data=data).split("      - object/file-pattern: \"'type=events")[0]
    return decisions_only + "    load_operations: {df-7k2m9q: [{type: load, file: decisions}]}\n"


def timed(command: list[str], cwd: Path, env: dict | None = None) -> dict:
    """Run `command`; its wall time and the peak of the summed RSS of it and its descendants (and its
    output, stdout and stderr together)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    peak, done = [0], threading.Event()

    def sample() -> None:
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{output[-3000:]}")
    return {"seconds": seconds, "peak_mb": peak[0] / 2**20, "output": output}


def generate(out: Path, rows: int, days: int = 2, start: dt.date = START, files_per_day: int = 5,
             events: bool = True, seed: int = 42) -> None:
    from optimizely_courier.dev.generate import E3Spec
    from optimizely_courier.dev.generate import generate as write

    per_day = rows // days
    write(E3Spec(start=start, days=days, experiments=files_per_day,
                 events=EVENTS[:files_per_day] if events else (), rows=per_day,
                 rows_per_file=max(1, per_day // files_per_day), seed=seed), out)


def project(work: Path, data: Path, root: Path = ROOT, sources: str | None = None) -> Path:
    """A courier project in `work` reading `data`: `root`'s dbt files, macros, models and feeds, and
    `sources` (both shipped feeds unless given)."""
    work.mkdir(parents=True)
    (work / "sources.yml").write_text(SOURCES.format(data=data) if sources is None else sources)
    for name in ("dbt_project.yml", "profiles.yml", "macros", "models", "feeds"):
        (shutil.copytree if (root / name).is_dir() else shutil.copy)(root / name, work / name)
    return work


# The least a plain `dbt build` costs here: one view model, no tests, no hooks, the same adapter.
FLOOR_PROJECT = {
    "dbt_project.yml": "name: floor\nversion: '1.0'\nconfig-version: 2\nprofile: floor\n"
                       "flags: {send_anonymous_usage_stats: false}\n",
    "profiles.yml": "floor:\n  target: duckdb\n  outputs:\n"
                    "    duckdb: {type: duckdb, path: floor.duckdb, threads: 1}\n",
    "models/one.sql": "select 1 as one\n",
}


def dbt_floor(work: Path, env: dict | None = None) -> dict:
    """`dbt build` of a one-model project, after a first build that parsed it (as the courier's is)."""
    for name, text in FLOOR_PROJECT.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    build = [str(BIN / "dbt"), "build", "--quiet", "--profiles-dir", str(work)]
    timed(build, work, env)
    return timed(build, work, env)


def courier(work: Path, *args: str) -> dict:
    return timed([str(BIN / "courier"), "run", "optimizely", *args], work)


def baseline(work: Path, data: Path, sql: str | None = None) -> dict:
    """`sql` (bench/baseline.sql unless given) over `data`, by DuckDB in a process of its own."""
    sql = (ROOT / "bench" / "baseline.sql").read_text() if sql is None else sql
    (work / "baseline.sql").write_text(sql.replace("{data}", str(data)))
    code = "import duckdb, sys; duckdb.connect(sys.argv[1]).execute(open(sys.argv[2]).read())"
    return timed([sys.executable, "-c", code, str(work / "baseline.duckdb"), str(work / "baseline.sql")], work)


def end_to_end(rows: int, repeat: int) -> dict:
    """Courier and baseline in interleaved rounds; then the increment and nothing-new cases."""
    results: dict[str, list[dict]] = {"courier": [], "baseline": [], "increment": [], "nothing new": [],
                                      "dbt build, nothing new": [], "dbt build again": [],
                                      "dbt build, one-model project": []}
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        data = Path(tmp) / "data"
        generate(data, rows)
        increment = Path(tmp) / "increment"
        generate(increment, 10_000, days=1, start=START + dt.timedelta(days=2))
        for index in range(repeat):
            os.sync()
            results["baseline"].append(baseline(Path(tmp), data))
            (Path(tmp) / "baseline.duckdb").unlink()
            os.sync()
            work = project(Path(tmp) / f"courier{index}", Path(tmp) / f"data{index}")
            shutil.copytree(data, work.parent / f"data{index}")
            results["courier"].append(courier(work, "--all"))
            shutil.copytree(increment, work.parent / f"data{index}", dirs_exist_ok=True)
            os.sync()
            results["increment"].append(courier(work, "--date", str(START + dt.timedelta(days=2))))
            results["nothing new"].append(courier(work, "--date", str(START + dt.timedelta(days=2))))
            results["dbt build, nothing new"].append(timed([str(BIN / "dbt"), "build", "--quiet"], work))
            results["dbt build again"].append(timed([str(BIN / "dbt"), "build", "--quiet"], work))
            results["dbt build, one-model project"].append(dbt_floor(Path(tmp) / f"floor{index}"))
            shutil.rmtree(work)
            shutil.rmtree(work.parent / f"data{index}")
    return {case: {"seconds": statistics.median(r["seconds"] for r in runs), "peak_mb": max(r["peak_mb"] for r in runs)}
            for case, runs in results.items()}


def small_files(repeat: int) -> dict:
    """3,600 small part files landed, against DuckDB reading the same files into a table."""
    from optimizely_courier.dev.generate import E3Spec
    from optimizely_courier.dev.generate import generate as write

    results: dict[str, list[dict]] = {"courier --ingest-only": [], "duckdb read_parquet": []}
    with tempfile.TemporaryDirectory(prefix="bench-small-") as tmp:
        data = Path(tmp) / "data"
        write(E3Spec(start=START, days=3, experiments=600, events=(), rows=6000, rows_per_file=5, seed=3), data)
        code = ("import duckdb, sys; duckdb.connect(sys.argv[1]).execute(\"create table t as select * from "
                "read_parquet('\" + sys.argv[2] + \"/type=decisions/*/*/*.parquet', union_by_name = true)\")")
        for index in range(repeat):
            os.sync()
            results["duckdb read_parquet"].append(timed([sys.executable, "-c", code, str(Path(tmp) / "t.duckdb"),
                                                         str(data)], Path(tmp)))
            (Path(tmp) / "t.duckdb").unlink()
            work = project(Path(tmp) / f"courier{index}", data, sources=decisions_sources(data))
            os.sync()
            results["courier --ingest-only"].append(courier(work, "--all", "--ingest-only"))
            shutil.rmtree(work)
    return {case: {"seconds": statistics.median(r["seconds"] for r in runs), "peak_mb": max(r["peak_mb"] for r in runs)}
            for case, runs in results.items()}


AFTER_LABELS = {
    "increment": "a daily increment: 10,000 rows in 10 files, `courier run --date D`",
    "nothing new": "the same run again (nothing new)",
    "dbt build, nothing new": "a plain `dbt build` (nothing new to build; its key tests check every key the "
                              "courier runs built)",
    "dbt build again": "the same `dbt build` again",
    "dbt build, one-model project": "dbt's own floor: `dbt build` of a one-model project (one view, no tests; "
                                    "`FLOOR_PROJECT` in bench/e2e.py)",
}


def report(sizes: dict[int, dict], small: dict) -> list[str]:
    lines = ["### End to end: the export's files to both domain tables (median of rounds)", "",
             "| decision rows (and as many conversions) | courier run --all | hand-written DuckDB (bench/baseline.sql) "
             "| ratio | courier peak RSS | DuckDB peak RSS |", "|---|---|---|---|---|---|"]
    for rows, r in sizes.items():
        ratio = r["courier"]["seconds"] / r["baseline"]["seconds"]
        lines.append(f"| {rows:,} | {r['courier']['seconds']:.2f} s | {r['baseline']['seconds']:.2f} s "
                     f"| {ratio:.2f}x | "
                     f"{r['courier']['peak_mb']:.0f} MB | {r['baseline']['peak_mb']:.0f} MB |")
    lines += ["", "| after the end-to-end run | " + " | ".join(f"{rows:,} rows" for rows in sizes) + " |",
              "|---|" + "---|" * len(sizes)]
    for case, label in AFTER_LABELS.items():
        lines.append(f"| {label} | " + " | ".join(f"{r[case]['seconds']:.2f} s" for r in sizes.values()) + " |")
    ratio = small["courier --ingest-only"]["seconds"] / small["duckdb read_parquet"]["seconds"]
    lines += ["", f"- 3,600 small part files landed: courier {small['courier --ingest-only']['seconds']:.2f} s, DuckDB "
                  f"`read_parquet` of the same files {small['duckdb read_parquet']['seconds']:.2f} s: {ratio:.2f}x"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sizes", help="comma-separated decision row counts (overrides --rows)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="replace this section of bench/results.md")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.rows]
    results = {}
    for rows in sizes:
        results[rows] = end_to_end(rows, args.repeat)
        print(rows, results[rows], flush=True)
    small = small_files(args.repeat)
    lines = report(results, small)
    print("\n".join(lines))
    if args.write:
        from history import write_section  # bench/history.py, beside this script

        write_section(ROOT / "bench" / "results.md", lines, r"### End to end")


if __name__ == "__main__":
    main()
