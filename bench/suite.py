"""The performance suite: each case of issue 7 beside its baseline, in one run, medians and ratios.

    python bench/suite.py --rows 1000000              # the cases at one size
    python bench/suite.py --sizes 1000000,3000000,10000000 --write   # + bench/results.md and .png

dlt's stock filesystem source is measured at its own, smaller size (`--stock-rows`): its default
reader holds every row as a Python dict and needs about 6.5 GB for 200k rows.

Every measured case runs in a fresh child process, so its peak RSS is its own. Data comes from the
project's E3 generator with a fixed seed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")

from ingest import peak_rss_mb  # noqa: E402 - bench/ingest.py, beside this script

BUCKET, PREFIX = "optimizely-events-data", "v1/account_id=12345"
DECISIONS_ONLY = """couriers:
  bench:
    {where}
    entities:
      - object/file-pattern: "'type=decisions/date='yyyy-MM-dd'/experiment=*/'"
        object/land-as: {{file/tag: decisions}}
    load_operations: {operations}
"""
TARGETS = {  # case: (baseline, the most the case may take as a multiple of the baseline)
    "courier (local)": ("duckdb (local)", 1.2),
    "courier (S3)": ("boto3 + duckdb (S3)", 1.5),
}


# -- data and servers ------------------------------------------------------------------------------

def generate(rows: int, out: Path, days: int = 1, files_per_day: int = 4) -> None:
    from optimizely_courier.dev.generate import E3Spec
    from optimizely_courier.dev.generate import generate as write

    write(E3Spec(days=days, experiments=files_per_day, events=(), rows=rows // days,
                 rows_per_file=max(1, rows // days // files_per_day), seed=42), out)


class MotoProcess:
    """moto's S3 API server as its own process on loopback, so it does not share the measured GIL."""

    def __enter__(self) -> MotoProcess:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("moto server did not start")

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.process.terminate()
        self.process.wait()

    def client(self):  # noqa: ANN201
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="bench",
                            aws_secret_access_key="bench")


def seed(server: MotoProcess, tree: Path) -> None:
    from optimizely_courier.dev.generate import upload

    client = server.client()
    client.create_bucket(Bucket=BUCKET)
    upload(tree, client, BUCKET, PREFIX)


# -- cases (each runs in a child process) -----------------------------------------------------------

def _project(work: Path, where: str, operations: str = "{}") -> Path:
    (work / "sources.yml").write_text(DECISIONS_ONLY.format(where=where, operations=operations))
    return work


def case_duckdb_local(data: Path, work: Path, _: dict) -> int:
    import duckdb

    with duckdb.connect(str(work / "w.duckdb")) as db:
        db.execute(f"create table t as select * from read_parquet('{data}/type=decisions/*/*/*.parquet')")
        return db.execute("select count(*) from t").fetchall()[0][0]


def case_courier_local(data: Path, work: Path, _: dict) -> int:
    from optimizely_courier.config.sources import load_project
    from optimizely_courier.landing.discovery import RunDates
    from optimizely_courier.landing.ingest import land

    return land(load_project(_project(work, f"local_path: {data}"), {}), "bench", RunDates.everything()).rows


def case_boto3_duckdb(data: Path, work: Path, extra: dict) -> int:
    import boto3
    import duckdb

    client = boto3.client("s3", endpoint_url=extra["url"], region_name="us-east-1", aws_access_key_id="bench",
                          aws_secret_access_key="bench")
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX)
            for o in page.get("Contents", []) if o["Key"].endswith(".parquet")]
    (work / "files").mkdir()

    def get(key: str) -> None:
        client.download_file(BUCKET, key, str(work / "files" / key.replace("/", "_")))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(get, keys))
    with duckdb.connect(str(work / "w.duckdb")) as db:
        db.execute(f"create table t as select * from read_parquet('{work}/files/*.parquet')")
        return db.execute("select count(*) from t").fetchall()[0][0]


def case_courier_s3(data: Path, work: Path, extra: dict) -> int:
    from optimizely_courier.config.sources import load_project
    from optimizely_courier.landing.discovery import RunDates
    from optimizely_courier.landing.ingest import land

    where = (f"bucket: {BUCKET}\n    prefix: {PREFIX}\n    endpoint_url: {extra['url']}\n    credential: "
             "{type: iam-credential, access_key_id: bench, secret_access_key: '${BENCH_SECRET}'}")
    project = load_project(_project(work, where), {"BENCH_SECRET": "bench"})
    return land(project, "bench", RunDates.everything()).rows


def _dlt_stock(data: Path, work: Path, use_pyarrow: bool) -> int:
    import dlt
    from dlt.sources.filesystem import filesystem, read_parquet

    files = filesystem(bucket_url=f"file://{data}", file_glob="type=decisions/**/*.parquet")
    reader = (files | read_parquet(use_pyarrow=use_pyarrow)).with_name("decisions")
    pipeline = dlt.pipeline("stock", destination=dlt.destinations.duckdb(str(work / "w.duckdb")),
                            dataset_name="raw", pipelines_dir=str(work / "pipelines"))
    pipeline.run(reader)
    import duckdb

    with duckdb.connect(str(work / "w.duckdb"), read_only=True) as db:
        return db.execute("select count(*) from raw.decisions").fetchall()[0][0]


def case_dlt_default(data: Path, work: Path, _: dict) -> int:
    return _dlt_stock(data, work, use_pyarrow=False)


def case_dlt_arrow(data: Path, work: Path, _: dict) -> int:
    return _dlt_stock(data, work, use_pyarrow=True)


CASES = {"duckdb (local)": case_duckdb_local, "courier (local)": case_courier_local,
         "boto3 + duckdb (S3)": case_boto3_duckdb, "courier (S3)": case_courier_s3,
         "dlt filesystem, default": case_dlt_default, "dlt filesystem, arrow": case_dlt_arrow}
LANDING_CASES = ["duckdb (local)", "courier (local)", "boto3 + duckdb (S3)", "courier (S3)"]
STOCK_CASES = ["duckdb (local)", "courier (local)", "dlt filesystem, default", "dlt filesystem, arrow"]
STOCK_TARGETS = {"dlt filesystem, default": 10.0, "dlt filesystem, arrow": 1.3}  # courier must be this much faster


# Imported before the clock starts: the cases compare work, not interpreter start-up.
PRELOAD = {"courier (local)": "optimizely_courier.landing.ingest", "courier (S3)": "optimizely_courier.landing.ingest",
           "dlt filesystem, default": "dlt.sources.filesystem", "dlt filesystem, arrow": "dlt.sources.filesystem",
           "boto3 + duckdb (S3)": "boto3", "duckdb (local)": "duckdb"}


def child(case: str, data: Path, extra: dict) -> None:
    import importlib

    importlib.import_module(PRELOAD[case])
    importlib.import_module("duckdb")
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        start = time.perf_counter()
        rows = CASES[case](data, work, extra)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"rows": rows, "seconds": seconds,
                      "peak_mb": peak_rss_mb()}))


def measure(case: str, data: Path, extra: dict, timeout: float) -> dict:
    process = subprocess.run([sys.executable, __file__, "--child", case, "--data", str(data), "--extra",
                              json.dumps(extra)], capture_output=True, text=True, timeout=timeout)
    if process.returncode != 0:
        raise RuntimeError(f"{case} failed:\n{process.stderr[-3000:]}")
    return json.loads(process.stdout.strip().splitlines()[-1])


# -- the domain build and the no-op run ------------------------------------------------------------

def incremental_build(rows_per_day: int, days: int = 30) -> dict:
    """Time of building one more day onto `days` loaded days, against building that day alone."""
    from optimizely_courier.config.sources import load_project
    from optimizely_courier.landing.discovery import RunDates
    from optimizely_courier.landing.ingest import land
    from optimizely_courier.runs.build import run_dbt

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as tmp:
        data = Path(tmp) / "data"
        generate(rows_per_day * (days + 1), data, days=days + 1, files_per_day=2)
        for label, history in (("onto history", days), ("alone", 0)):
            work = Path(tmp) / label.replace(" ", "_")
            work.mkdir()
            for name in ("dbt_project.yml", "profiles.yml", "macros", "feeds", "models"):
                (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, work / name)
            shutil.rmtree(work / "feeds" / "optimizely")
            (work / "feeds" / "optimizely").mkdir()
            shutil.copy(ROOT / "feeds/optimizely/decisions.yml", work / "feeds/optimizely/decisions.yml")
            text = DECISIONS_ONLY.format(where=f"local_path: {data}", operations="{}").replace("bench:", "optimizely:")
            (work / "sources.yml").write_text(text)
            subprocess.run([sys.executable, "-m", "optimizely_courier", "-C", str(work), "feeds", "compile"],
                           check=True, capture_output=True)
            project = load_project(work, {})
            first = dt.date(2026, 11, 25)
            if history:
                land(project, "optimizely", RunDates.between(first, first + dt.timedelta(days)))
                run_dbt(project, "build")
            last = first + dt.timedelta(days)
            land(project, "optimizely", RunDates.one(last))
            start = time.perf_counter()
            run_dbt(project, "build")
            results[label] = time.perf_counter() - start
    return results


def noop_run(files: int = 1000, days: int = 30) -> dict:
    """A run of one day that has nothing new, after `files` files over `days` days were landed from S3."""
    from tests.s3proxy import RecordingProxy

    with tempfile.TemporaryDirectory(prefix="bench-noop-") as tmp, MotoProcess() as server:
        data = Path(tmp) / "data"
        generate(files * 20, data, days=days, files_per_day=files // days)
        seed(server, data)
        with RecordingProxy(server.url) as proxy:
            work = Path(tmp) / "work"
            work.mkdir()
            where = (f"bucket: {BUCKET}\n    prefix: {PREFIX}\n    endpoint_url: {proxy.url}\n    credential: "
                     "{type: iam-credential, access_key_id: bench, secret_access_key: '${BENCH_SECRET}'}")
            (work / "sources.yml").write_text(DECISIONS_ONLY.format(where=where, operations="{}"))
            env = {**os.environ, "BENCH_SECRET": "bench"}
            command = [sys.executable, "-m", "optimizely_courier", "-C", str(work), "run", "bench"]
            subprocess.run(command + ["--all"], env=env, check=True, capture_output=True)
            timings, requests = {}, {}
            last = dt.date(2026, 11, 25) + dt.timedelta(days - 1)
            for label, args in (("1 day", ["--date", str(last)]),
                                ("3 days", ["--from", str(last - dt.timedelta(2)),
                                            "--to", str(last + dt.timedelta(1))])):
                before = len(proxy.requests)
                start = time.perf_counter()
                subprocess.run(command + args, env=env, check=True, capture_output=True)
                timings[label] = time.perf_counter() - start
                requests[label] = len(proxy.requests) - before
    return {"seconds": timings, "requests": requests}


# -- reporting -------------------------------------------------------------------------------------

def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import dlt
    import duckdb

    return (f"{os.cpu_count()} cores, {memory:.0f} GiB RAM, {platform.machine()}, Python {platform.python_version()}, "
            f"DuckDB {duckdb.__version__}, dlt {dlt.__version__}")


def run_size(rows: int, repeat: int, cases: list[str]) -> dict:
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp, MotoProcess() as server:
        data = Path(tmp)
        generate(rows, data)
        if any("S3" in case for case in cases):
            seed(server, data)
        extra = {"url": server.url}
        runs: dict[str, list[dict]] = {case: [] for case in cases}
        for _ in range(repeat):  # rounds of every case, so a slow spell of the machine hits them all
            for case in cases:
                os.sync()  # the previous case's dirty pages are written back before this one starts
                runs[case].append(measure(case, data, extra, timeout=3600))
        for case, measured in runs.items():
            assert all(r["rows"] == rows for r in measured), f"{case} landed the wrong number of rows"
            results[case] = {"seconds": statistics.median(r["seconds"] for r in measured),
                             "peak_mb": max(r["peak_mb"] for r in measured)}
    return results


def table(rows: int, results: dict) -> list[str]:
    base = results["duckdb (local)"]["seconds"]
    lines = ["| case | seconds | rows/s | peak RSS MB | vs DuckDB local |", "|---|---|---|---|---|"]
    for case, r in results.items():
        lines.append(f"| {case} | {r['seconds']:.2f} | {rows / r['seconds']:,.0f} | {r['peak_mb']:.0f} | "
                     f"{r['seconds'] / base:.2f}x |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sizes", help="comma-separated row counts (overrides --rows)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stock-rows", type=int, default=200_000,
                        help="the size at which dlt's stock filesystem source is measured (0: skip it)")
    parser.add_argument("--write", action="store_true", help="write bench/results.md and bench/results.png")
    parser.add_argument("--skip-extras", action="store_true", help="skip the domain-build and no-op cases")
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny run of every case (make test runs it so the suite cannot rot)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--extra", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.data, json.loads(args.extra))

    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.rows]
    history_days, noop_files, noop_days = (30, 1000, 30) if not args.smoke else (2, 12, 3)
    if args.smoke:
        sizes, args.stock_rows, args.repeat = [2_000], 2_000, 1
    by_size = {rows: run_size(rows, args.repeat, LANDING_CASES) for rows in sizes}
    report = [f"Machine: {machine()}", ""]
    for rows, results in by_size.items():
        report += [f"### Landing {rows:,} E3 decision rows (median of {args.repeat})", ""] + table(rows, results) + [""]
        for case, (baseline, limit) in TARGETS.items():
            ratio = results[case]["seconds"] / results[baseline]["seconds"]
            report.append(f"- {case} / {baseline}: {ratio:.2f}x (target <= {limit}x): "
                          f"{'met' if ratio <= limit else 'NOT met'}")
        report.append("")
    if args.stock_rows:
        stock = run_size(args.stock_rows, args.repeat, STOCK_CASES)
        report += [f"### Versus dlt's stock filesystem source, {args.stock_rows:,} rows (median of {args.repeat})", "",
                   "Its default reader keeps every row as a Python dict, so it is measured at a size it finishes "
                   "in memory.", ""] + table(args.stock_rows, stock) + [""]
        for case, limit in STOCK_TARGETS.items():
            speedup = stock[case]["seconds"] / stock["courier (local)"]["seconds"]
            report.append(f"- courier (local) is {speedup:.1f}x faster than {case} (target >= {limit}x): "
                          f"{'met' if speedup >= limit else 'NOT met'}")
        report.append("")
    if not args.skip_extras:
        build = incremental_build(max(1_000, min(sizes) // 10), history_days)
        ratio = build["onto history"] / build["alone"]
        report += ["### Incremental domain build", "",
                   f"- one day onto {history_days} loaded days: {build['onto history']:.2f}s; "
                   f"that day alone: {build['alone']:.2f}s;"
                   f" {ratio:.2f}x (target <= 2x): {'met' if ratio <= 2 else 'NOT met'}", ""]
        noop = noop_run(noop_files, noop_days)
        report += [f"### A run with nothing new ({noop_files:,} files over {noop_days} days, from S3)", "",
                   f"- one day: {noop['seconds']['1 day']:.2f}s end to end, {noop['requests']['1 day']} S3 requests; "
                   f"three days: {noop['seconds']['3 days']:.2f}s, {noop['requests']['3 days']} requests "
                   f"(target <= 2s, requests proportional to days): "
                   f"{'met' if noop['seconds']['1 day'] <= 2 else 'NOT met'}", ""]
    print("\n".join(report))
    if args.write:
        _write(report, by_size)


def _write(report: list[str], by_size: dict) -> None:
    (ROOT / "bench" / "results.md").write_text("# Benchmark results\n\nWritten by `python bench/suite.py "
                                               "--write`; every figure is from the same run.\n\n"
                                               + "\n".join(report) + "\n![time and peak RSS against rows]"
                                                                     "(results.png)\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(by_size)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for case in by_size[sizes[0]]:
        points = [(rows, by_size[rows][case]) for rows in sizes if case in by_size[rows]]
        left.plot([p[0] for p in points], [p[1]["seconds"] for p in points], marker="o", label=case)
        right.plot([p[0] for p in points], [p[1]["peak_mb"] for p in points], marker="o", label=case)
    left.set(xlabel="rows", ylabel="seconds", title="Landing time", xscale="log", yscale="log")
    right.set(xlabel="rows", ylabel="peak RSS (MB)", title="Peak memory", xscale="log")
    right.axhline(600, color="grey", linestyle="--", linewidth=1)
    left.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(ROOT / "bench" / "results.png", dpi=110)


if __name__ == "__main__":
    main()
