"""A year of files in the record: does a daily run cost what it costs onto an empty record, and does
`courier status` still answer at once?

    python bench/year.py --days 365 --files 600       # prints a table; --write adds it to results.md

One real day of data (600 part files: decisions and events, a few rows each) is landed and built by
`courier run optimizely --date D` in its own process, as a scheduled run would be, onto three records:

- empty: a new project, nothing landed (the day-1 run: dbt's first parse, the domain tables created);
- one day: the day before D really landed and built by its own run;
- a year: that same project, with the record of the 363 days before it added: for every file version
  the real day landed, one per earlier day, in `raw_<courier>._courier_files` (a complete load a day in
  `_dlt_loads`) and in `courier.built_files` for each feed (the same definition fingerprint, the load and
  ETag of that day), beside a row a day in `courier.builds`, `courier.key_checks` and the run history.
  Only the record is generated, not the data: those loads have no rows in the raw and domain tables.

Each case is restored from a snapshot before each round, and the rounds are interleaved. Then
`courier status` is timed on the year's record, as a command (a new process, as a user runs it) and
in-process (`courier_status`, without the interpreter's start and imports).
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
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

from history import project, write_section  # noqa: E402 - bench/history.py, beside this script

DAY = dt.date(2026, 10, 2)  # the measured day; the real history is the day before it
CASES = ("empty", "one day", "a year")


def courier(work: Path, *args: str) -> float:
    """Seconds `courier -C work ARGS` takes, in its own process."""
    os.sync()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "optimizely_courier", "-C", str(work), *args], check=True,
                   capture_output=True)
    return time.perf_counter() - start


def synthesize_year(work: Path, days: int) -> dict:
    """Add the record of the `days - 1` days before the one real day landed in `work`: each real record
    row copied once per earlier day (its date in the key, its own ETag, that day's load), every table in
    the order the loads came in. Returns the counts the record then holds."""
    import duckdb

    from optimizely_courier.runs import store

    earlier = days - 1
    with duckdb.connect(str(work / "warehouse.duckdb")) as db:
        (load_id, day), = db.execute(
            "select load_id, (select any_value(file_date) from raw_optimizely._courier_files) "
            "from raw_optimizely._dlt_loads").fetchall()
        db.execute("create temporary table back as select range as k from range(1, ?)", [earlier + 1])
        # dlt's load ids are Unix times as text (10 digits before the point until 2286): one a day earlier
        new_load = "cast(round(cast(? as double) - k * 86400, 6) as varchar)"
        earlier_day = "strftime(file_date - cast(k as integer), '%Y-%m-%d')"
        shifted = f"replace(file, 'date=' || strftime(file_date, '%Y-%m-%d'), 'date=' || {earlier_day})"
        db.execute("begin")
        db.execute(f"""insert into raw_optimizely._dlt_loads
                       select {new_load}, schema_name, status, inserted_at - to_days(cast(k as integer)),
                              schema_version_hash
                       from raw_optimizely._dlt_loads, back""", [load_id])
        db.execute(f"""insert into raw_optimizely._courier_files
                       select {shifted}, etag || '-' || k, size_bytes, tag, file_date - cast(k as integer), row_count,
                              {new_load}
                       from raw_optimizely._courier_files, back""", [load_id])
        db.execute(f"""insert into courier.built_files
                       select feed_id,
                              replace(file, 'date={day}',
                                      'date=' || strftime(cast(? as date) - cast(k as integer), '%Y-%m-%d')),
                              cast(round(cast(load_id as double) - k * 86400, 6) as varchar), definition, excluded,
                              built_at - to_days(cast(k as integer)), etag || '-' || k
                       from courier.built_files, back""", [day])
        db.execute("""insert into courier.builds
                      select gen_random_uuid()::varchar, feed_id, mode, started_at - to_days(cast(k as integer)),
                             ended_at - to_days(cast(k as integer)), files, rows_before, rows_after, built_rows,
                             rejected_rows
                      from courier.builds, back""")
        db.execute("""insert into courier.key_checks
                      select feed_id, checked_through - to_days(cast(k as integer)) from courier.key_checks, back""")
        # as a year of appends leaves them: in load order
        for table, order in (("raw_optimizely._dlt_loads", "load_id"),
                             ("raw_optimizely._courier_files", "_dlt_load_id"),
                             ("courier.built_files", "load_id, feed_id"), ("courier.builds", "started_at"),
                             ("courier.key_checks", "checked_through")):
            db.execute(f"create temporary table ordered as select * from {table} order by {order}")
            db.execute(f"delete from {table}")
            db.execute(f"insert into {table} select * from ordered")
            db.execute("drop table ordered")
        db.execute("commit")
        db.execute("checkpoint")
        counts = {name: db.execute(f"select count(*) from {table}").fetchall()[0][0] for name, table in (
            ("record rows", "raw_optimizely._courier_files"), ("loads", "raw_optimizely._dlt_loads"),
            ("built rows", "courier.built_files"))}
    # the run history: a run a day
    run = store.select(work / "warehouse.duckdb", "runs", {"courier": "optimizely"}, 1)[0]
    for k in range(1, earlier + 1):
        def back(text: str, k: int = k) -> str:
            return (dt.datetime.fromisoformat(text) - dt.timedelta(days=k)).isoformat()

        store.save(work / "warehouse.duckdb", "runs", {
            **run, "run_id": uuid.uuid4().hex, "dates": str(day - dt.timedelta(days=k)),
            "started_at": back(run["started_at"]), "ended_at": back(run["ended_at"]),
            "load_id": f"{float(run['load_id']) - k * 86400:.6f}" if run.get("load_id") else None})
    return counts


def record_checksum(work: Path, before: str) -> tuple:
    """Counts and a checksum of the record's rows of loads older than `before` (the synthetic year)."""
    import duckdb

    with duckdb.connect(str(work / "warehouse.duckdb"), read_only=True) as db:
        return db.execute(
            "select (select count(*) from raw_optimizely._dlt_loads where load_id < ? and status = 0), "
            "(select count(*) || ':' || coalesce(sum(hash(file, etag, _dlt_load_id)), 0) "
            " from raw_optimizely._courier_files where _dlt_load_id < ?), "
            "(select count(*) || ':' || coalesce(sum(hash(feed_id, file, load_id, etag, definition, excluded)), 0) "
            " from courier.built_files where load_id < ?)", [before, before, before]).fetchall()[0]


def last_builds(work: Path) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(work / "warehouse.duckdb"), read_only=True) as db:
        return db.execute("select feed_id, mode, files from courier.builds where invocation_id = (select invocation_id "
                          "from courier.builds order by started_at desc limit 1) order by feed_id").fetchall()


def status_in_process(work: Path, rounds: int) -> list[float]:
    from optimizely_courier.config.sources import load_project
    from optimizely_courier.runs.status import courier_status

    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        courier_status(load_project(work), "optimizely")
        seconds.append(time.perf_counter() - start)
    return seconds


def run(days: int, files: int, rows_per_file: int, rounds: int) -> dict:
    results: dict = {case: [] for case in CASES}
    with tempfile.TemporaryDirectory(prefix="bench-year-") as tmp:
        tmp = Path(tmp)
        (tmp / "base").mkdir()
        base = project(tmp / "base", 2, files, rows_per_file)  # the real day before D, and D
        history_start = dt.date(2026, 10, 1)
        assert history_start + dt.timedelta(days=1) == DAY
        snapshots = tmp / "snapshots"
        shutil.copytree(base, snapshots / "empty", symlinks=True)
        print("landing the day before", flush=True)
        courier(base, "run", "optimizely", "--date", str(history_start))
        shutil.copytree(base, snapshots / "one day", symlinks=True)
        print(f"adding {days - 1} days to the record", flush=True)
        start = time.perf_counter()
        counts = synthesize_year(base, days)
        print(f"  {counts} in {time.perf_counter() - start:.1f}s", flush=True)
        shutil.copytree(base, snapshots / "a year", symlinks=True)
        import duckdb

        with duckdb.connect(str(base / "warehouse.duckdb"), read_only=True) as db:
            real_load = db.execute("select max(load_id) from raw_optimizely._dlt_loads").fetchall()[0][0]
        before = record_checksum(base, real_load)
        work = tmp / "work"
        for index in range(rounds):
            for case in CASES:
                shutil.rmtree(work, ignore_errors=True)
                shutil.copytree(snapshots / case, work, symlinks=True)
                results[case].append(courier(work, "run", "optimizely", "--date", str(DAY)))
                print(f"round {index + 1}, {case}: {results[case][-1]:.2f}s", flush=True)
                if case == "one day" and index == rounds - 1:
                    results["status command, one day"] = [courier(work, "status") for _ in range(rounds)]
        # `work` now holds the last round's year: the run built the new day only, and left the year alone
        after = record_checksum(work, real_load)
        assert after == before, f"the run changed the synthetic record: {before} -> {after}"
        builds = last_builds(work)
        assert builds == [("df-3p8x1w", "incremental", files // 2), ("df-7k2m9q", "incremental", files // 2)], builds
        results["checks"] = {"synthetic record unchanged": before, "builds": builds, **counts}
        with duckdb.connect(str(work / "warehouse.duckdb"), read_only=True) as db:
            results["checks"]["record rows after"] = db.execute(
                "select count(*) from raw_optimizely._courier_files").fetchall()[0][0]
        results["status command"] = [courier(work, "status") for _ in range(rounds)]
        results["status in-process"] = status_in_process(work, rounds)
        results["help"] = [courier(work, "--help") for _ in range(rounds)]
        out = subprocess.run([sys.executable, "-m", "optimizely_courier", "-C", str(work), "status"], check=True,
                             capture_output=True, text=True).stdout
        results["status text"] = out
        assert " 0 landed file(s) to build" in out and "landed          " in out, out
    return results


def report(results: dict, days: int, files: int, rounds: int) -> list[str]:
    median = {case: statistics.median(results[case]) for case in (*CASES, "status command", "status in-process",
                                                                     "help", "status command, one day")}
    checks = results["checks"]
    ratio = median["a year"] / median["empty"]
    strict = median["a year"] / median["one day"]
    lines = [f"### A year of files in the record: {days} days of {files} part files "
             f"({checks['record rows after']:,} file versions after the run), `courier run --date D` "
             f"(median of {rounds})",
             "", "| record before the run | record rows | seconds (rounds) | against empty |", "|---|---|---|---|"]
    rows = {"empty": 0, "one day": files, "a year": checks["record rows"]}
    for case in CASES:
        lines.append(f"| {case} | {rows[case]:,} | {median[case]:.2f} ({', '.join(f'{s:.2f}' for s in results[case])}) "
                     f"| {median[case] / median['empty']:.2f}x |")
    lines += ["",
              f"- onto a year against onto an empty record: {median['a year']:.2f}s / {median['empty']:.2f}s = "
              f"{ratio:.2f}x (target <= 1.2x): {'met' if ratio <= 1.2 else 'NOT met'}",
              f"- onto a year against onto one day (the same run, the record's size alone): {strict:.2f}x",
              f"- `courier status` on the year's record: {median['status command']:.2f}s as a command "
              f"(target < 1 s): {'met' if median['status command'] < 1 else 'NOT met'} (on one day's: "
              f"{median['status command, one day']:.2f}s); "
              f"{median['status in-process']:.3f}s in-process (`courier_status`); `courier --help`, the floor of "
              f"any command (a new interpreter and the CLI's imports): {median['help']:.2f}s",
              f"- the run built {files // 2} files per feed (incremental) and left the {days - 1} synthetic days' "
              "record rows, loads and built rows as they were (checked); only the record is generated, so the "
              "raw and domain tables hold the two real days' rows"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=365, help="days in the record, the real one included")
    parser.add_argument("--files", type=int, default=600, help="part files a day (half decisions, half events)")
    parser.add_argument("--rows-per-file", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="replace this section of bench/results.md")
    args = parser.parse_args()
    results = run(args.days, args.files, args.rows_per_file, args.rounds)
    print(results["status text"])
    lines = report(results, args.days, args.files, args.rounds)
    print("\n".join(lines))
    if args.write:
        write_section(ROOT / "bench" / "results.md", lines, r"### A year of files in the record")


if __name__ == "__main__":
    main()
