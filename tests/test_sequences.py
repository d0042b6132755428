"""Random sequences of runs end in the tables a full rebuild, and a fresh warehouse, would make.

Each sequence mixes `courier run` over random dates (with and without --ingest-only and truncate),
runs killed at a fault point, and deleted and rewritten source files; then a plain `dbt build`.
The domain table must equal `dbt build --full-refresh` of the same raw tables row for row, and,
when no file was deleted and nothing made the order of landing matter (a truncate, a key shared
by two files, a rewrite that drops keys), a fresh `courier run --all` into an empty warehouse.
`COURIER_SEQUENCES=N` runs N seeds (make reliability runs more).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from tests.cases import ORDERS_FEED
from tests.conftest import query, run_cli, write_feed, write_part
from tests.faults import POINTS, fault_env
from tests.reliability_report import record

pytestmark = [pytest.mark.reliability, pytest.mark.faults]

SCHEMA = pa.schema([("order_id", pa.string()), ("amount", pa.int64())])
DAYS = ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23"]
LOAD = "{df-aaaaaa: [{type: load, file: orders}]}"
TRUNCATE = "{df-aaaaaa: [{type: truncate}, {type: load, file: orders}]}"
SEQUENCES = int(os.environ.get("COURIER_SEQUENCES", "2"))
STEPS = 7


class Sequence:
    """One random history of a project, and what it did that a fresh warehouse cannot repeat."""

    def __init__(self, root: Path, seed: int):
        self.root, self.rng = root, random.Random(seed)
        self.shared_keys = self.rng.random() < 0.5  # some keys in several files: the landing order decides
        self.files: dict[str, list[str]] = {}  # path -> keys
        self.comparable_with_fresh = not self.shared_keys
        self.log: list[str] = []

    def write(self, day: str, name: str, keep_keys: bool) -> None:
        path = f"{day}/{name}"
        keys = self.files.get(path) if keep_keys and path in self.files else None
        if keys is None:
            own = [f"{day}-{name}-{i}" for i in range(self.rng.randint(1, 6))]
            shared = [f"shared-{self.rng.randint(0, 4)}" for _ in range(2)] if self.shared_keys else []
            keys = sorted(set(own + shared))
            if path in self.files and not set(self.files[path]) <= set(keys):
                self.comparable_with_fresh = False  # a rewrite dropped keys: the old version's rows stay
        self.files[path] = keys
        write_part(self.root, day, name, [{"order_id": k, "amount": self.rng.randint(0, 999)} for k in keys], SCHEMA)
        self.log.append(f"write {path} ({len(keys)} rows)")

    def new_file(self) -> str:
        day = self.rng.choice(DAYS)
        self.write(day, f"part-{self.rng.randint(0, 3)}.parquet", keep_keys=self.rng.random() < 0.5)
        return day

    def delete(self) -> None:
        if not self.files:
            return
        path = self.rng.choice(sorted(self.files))
        (self.root / "mirror" / "orders" / f"date={path.split('/')[0]}" / path.split("/")[1]).unlink()
        del self.files[path]
        self.comparable_with_fresh = False
        self.log.append(f"delete {path}")

    def dates(self) -> list[str]:
        kind = self.rng.choice(["date", "range", "all"])
        if kind == "all":
            return ["--all"]
        start = self.rng.randrange(len(DAYS))
        if kind == "date":
            return ["--date", DAYS[start]]
        end = self.rng.randint(start + 1, len(DAYS))
        return ["--from", DAYS[start], "--to", f"2026-11-{20 + end}"]

    def run(self) -> None:
        truncate = self.rng.random() < 0.2
        (self.root / "sources.yml").write_text(_sources(TRUNCATE if truncate else LOAD))
        args = [*self.dates(), *(["--ingest-only"] if self.rng.random() < 0.3 else []), "--skip-missing"]
        result = run_cli(self.root, "run", "shop", *args)
        self.log.append(f"run {' '.join(args)}{' (truncate)' if truncate else ''}")
        assert result.exit_code == 0, "\n".join(self.log) + "\n" + result.output
        if truncate and "--ingest-only" not in args:
            self.comparable_with_fresh = False

    def kill(self) -> None:
        day = self.new_file()
        point = self.rng.choice(POINTS)
        (self.root / "sources.yml").write_text(_sources(LOAD))
        env = {**fault_env(point), "RUNTIME__DLTHUB_TELEMETRY": "false"}
        process = subprocess.run([sys.executable, "-m", "optimizely_courier", "-C", str(self.root), "run", "shop",
                                  "--date", day], capture_output=True, text=True, env=env, timeout=300)
        self.log.append(f"run --date {day} killed at {point}")
        assert process.returncode == -signal.SIGKILL, "\n".join(self.log) + "\n" + process.stdout + process.stderr
        record("faults_injected")

    def step(self) -> None:
        action = self.rng.choices(["new", "delete", "run", "kill"], weights=[3, 1, 4, 2])[0]
        {"new": self.new_file, "delete": self.delete, "run": self.run, "kill": self.kill}[action]()


def _sources(operations: str) -> str:
    return f"""couriers:
  shop:
    local_path: mirror
    entities:
      - object/file-pattern: "'orders/date='yyyy-MM-dd'/'"
        object/land-as: {{file/tag: orders}}
    load_operations: {operations}
"""


def dbt(root: Path, *args: str) -> None:
    result = subprocess.run([str(Path(sys.executable).parent / "dbt"), *args, "--quiet"], cwd=root,
                            capture_output=True, text=True, env={**os.environ, "DO_NOT_TRACK": "1"}, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def domain(root: Path, columns: str = "*") -> list[tuple]:
    return query(root, f'select {columns} from domain."Shop:Orders" order by all')


@pytest.mark.parametrize("seed", range(SEQUENCES))
def test_any_sequence_of_runs_ends_in_the_tables_a_full_rebuild_and_a_fresh_run_make(dbt_project, tmp_path, seed):
    root = dbt_project
    write_feed(root, ORDERS_FEED)
    assert run_cli(root, "feeds", "compile").exit_code == 0
    sequence = Sequence(root, seed)
    sequence.new_file()
    for _ in range(STEPS):
        sequence.step()
    sequence.run()

    dbt(root, "build")
    built = domain(root)  # may be empty: a truncate over days with nothing landed empties the table
    dbt(root, "build", "--full-refresh")

    assert domain(root) == built, "\n".join(sequence.log)
    record("runs_recovered")
    if sequence.comparable_with_fresh:
        fresh = tmp_path / "fresh"
        fresh.mkdir()
        for name in ("dbt_project.yml", "profiles.yml", "macros", "models", "feeds", "mirror"):
            (shutil.copytree if (root / name).is_dir() else shutil.copy)(root / name, fresh / name)
        (fresh / "sources.yml").write_text(_sources(LOAD))
        assert run_cli(fresh, "run", "shop", "--all").exit_code == 0
        business = "order_id, amount, _pk, _uuid_pk, _file, _file_date, _file_row"
        assert domain(fresh, business) == domain(root, business), "\n".join(sequence.log)
