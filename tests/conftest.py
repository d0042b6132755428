"""Shared fixtures: a real S3 API server on loopback, buckets seeded with generated E3 data, projects."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from optimizely_courier.settings import configure_runtime

configure_runtime()

from click.testing import CliRunner, Result  # noqa: E402

from optimizely_courier.cli.main import cli  # noqa: E402
from optimizely_courier.dev.generate import E3Spec, generate, upload  # noqa: E402
from optimizely_courier.dev.s3server import TEST_KEYS, LocalS3  # noqa: E402
from tests.cases import SHOP_SOURCES  # noqa: E402

PREFIX = "v1/account_id=12345"
DECISIONS_PATTERN = "'type=decisions/date='yyyy-MM-dd'/experiment=*/'"
DECISIONS_MARKER = "'type=decisions/date='yyyy-MM-dd'/_SUCCESS'"
EVENTS_PATTERN = "'type=events/date='yyyy-MM-dd'/event=*/'"
EVENTS_MARKER = "'type=events/date='yyyy-MM-dd'/_SUCCESS'"


@pytest.fixture(autouse=True)
def isolated_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the machine's AWS config; base credentials are moto's throwaway keys."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "COURIERS__")) or name in ("COURIER_DUCKDB", "S3_ENDPOINT_URL"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", TEST_KEYS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", TEST_KEYS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def s3() -> LocalS3:
    with LocalS3() as server:
        yield server


@dataclass
class Bucket:
    name: str
    kms_key: str
    s3: LocalS3

    @property
    def client(self) -> Any:
        return self.s3.client("s3")

    def seed(self, spec: E3Spec, tmp: Path, prefix: str = PREFIX) -> Path:
        """Generate `spec` under `tmp` and upload it (SSE-KMS); return the local tree."""
        tree = tmp / f"e3-{uuid.uuid4().hex[:8]}"
        generate(spec, tree)
        upload(tree, self.client, self.name, prefix, self.kms_key)
        return tree

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture
def bucket(s3: LocalS3) -> Bucket:
    name = f"e3-{uuid.uuid4().hex[:12]}"
    return Bucket(name, s3.create_bucket(name), s3)


def sources_yaml(bucket: str = "", endpoint: str = "", credential: str = "", prefix: str = PREFIX,
                 decisions_extra: str = "", events_extra: str = "", local_path: str = "",
                 load_operations: str = "{}", name: str = "optimizely") -> str:
    """A sources.yml with the standard two E3 entities."""
    where = f"local_path: {local_path}" if local_path else f"bucket: {bucket}\n    endpoint_url: {endpoint}"
    credential = credential or "credential: {type: iam-credential, access_key_id: AKIDEXAMPLELOCAL, " \
                               "secret_access_key: '${TEST_SECRET_KEY}'}"
    credential_line = "" if local_path else f"    {credential}\n"
    return f"""couriers:
  {name}:
    {where}
    prefix: {prefix}
    region: us-east-1
{credential_line}    entities:
      - object/type: file
        object/file-pattern: "{DECISIONS_PATTERN}"
        object/ready-marker: "{DECISIONS_MARKER}"
        object/land-as: {{file/tag: decisions, file/content-type: application/x-parquet}}{decisions_extra}
      - object/type: file
        object/file-pattern: "{EVENTS_PATTERN}"
        object/ready-marker: "{EVENTS_MARKER}"
        object/land-as: {{file/tag: conversions, file/content-type: application/x-parquet}}{events_extra}
    load_operations: {load_operations}
"""


@pytest.fixture
def make_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    monkeypatch.setenv("TEST_SECRET_KEY", TEST_KEYS["aws_secret_access_key"])

    def make(sources: str) -> Path:
        root = tmp_path / "project"
        root.mkdir(exist_ok=True)
        (root / "sources.yml").write_text(sources)
        return root

    return make


def run_cli(project: Path, *args: str) -> Result:
    """Invoke `courier -C <project> ...` in-process, as a user would from the shell."""
    return CliRunner().invoke(cli, ["-C", str(project), *args], catch_exceptions=True)


def query(project: Path, sql: str) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as db:
        return db.execute(sql).fetchall()


def landed(output: str, tag: str) -> tuple[int, int, int]:
    """(files, rows, already landed) from the per-tag table `courier run` prints."""
    for line in output.splitlines():
        parts = line.split()
        if parts[:1] == [tag] and len(parts) == 4:
            return tuple(int(p.replace(",", "")) for p in parts[1:])  # type: ignore[return-value]
    raise AssertionError(f"no line for tag {tag!r} in:\n{output}")


DBT_FILES = ("dbt_project.yml", "profiles.yml", "macros")
ROOT = Path(__file__).resolve().parent.parent


def copy_dbt_files(root: Path, *extra: str) -> None:
    """Copy the repository's dbt files, and the folders `extra` names (feeds, models), into `root`."""
    import shutil

    for name in (*DBT_FILES, *extra):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, root / name)




@pytest.fixture
def dbt_project(tmp_path: Path) -> Path:
    """A project with the repository's dbt files, a local-mirror courier `shop` (tag `orders`), no feeds."""
    root = tmp_path / "dbt_project"
    root.mkdir()
    copy_dbt_files(root)
    (root / "mirror").mkdir()
    (root / "sources.yml").write_text(SHOP_SOURCES)
    return root


def write_part(root: Path, day: str, name: str, rows: list[dict], schema: Any = None) -> Path:
    """Write one Parquet part file of the `shop` courier's `orders` tag for `day`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = root / "mirror" / "orders" / f"date={day}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


YEAR_300000_MS = 300_000 * 31_556_952_000  # milliseconds from 1970 to about year 301970: valid Parquet


def write_far_timestamp_day(root: Path, day: str, statistics: bool = True) -> None:
    """Three `orders` part files for `day`; part-1's timestamp is beyond DuckDB's year 294247."""
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("order_id", pa.string()), ("amount", pa.int64()), ("timestamp", pa.timestamp("ms", "UTC"))])
    normal = dt.datetime(2026, 11, 25, 8, tzinfo=dt.UTC)
    folder = root / "mirror" / "orders" / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, order_id, when in (("part-0", "a", normal), ("part-1", "far", YEAR_300000_MS), ("part-2", "c", normal)):
        times = pa.array([when], pa.int64()).cast(schema.field("timestamp").type) if name == "part-1" else [when]
        table = pa.table({"order_id": [order_id], "amount": [1], "timestamp": times}, schema=schema)
        pq.write_table(table, folder / f"{name}.parquet", write_statistics=statistics)


def write_feed(root: Path, text: str, name: str = "orders.yml") -> None:
    path = root / "feeds" / "shop" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@dataclass
class Webhook:
    url: str  # also in $HOOK_URL, as a sources.yml would reference it
    received: list  # the JSON documents posted, in order


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch):
    """An HTTP server on loopback that records what notifications post to it."""
    import http.server
    import json
    import threading

    received: list[dict] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):  # noqa: ANN002
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hooks/secret-token"
    monkeypatch.setenv("HOOK_URL", url)
    yield Webhook(url, received)
    server.shutdown()


class WarehouseHolder:
    """Another process with the warehouse open read-write, as a `dbt build` started by hand has it (DuckDB's
    own file lock, not the courier's run lock). It holds it until `release()` closes its stdin."""

    def __init__(self, warehouse: Path):
        import subprocess
        import sys

        code = ("import sys, duckdb\n"
                "db = duckdb.connect(sys.argv[1])\n"
                "print('held', flush=True)\n"
                "sys.stdin.read()\n"
                "db.close()\n")
        self.process = subprocess.Popen([sys.executable, "-c", code, str(warehouse)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "held"
        self.pid = self.process.pid

    def release(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=60)
        self.process.stdout.close()


@pytest.fixture
def hold_warehouse():
    """Start a `WarehouseHolder` on a warehouse; each is released at the end of the test at the latest."""
    holders: list[WarehouseHolder] = []

    def hold(warehouse: Path) -> WarehouseHolder:
        holders.append(WarehouseHolder(warehouse))
        return holders[-1]

    yield hold
    for holder in holders:
        holder.release()
