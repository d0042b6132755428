"""`make demo`: local S3 + generated E3 data -> the shipped courier -> raw and domain tables.

Starts an S3 API server on loopback, stores three days of generated Enriched Events Export in it
(KMS-encrypted, the last day still without `_SUCCESS`), points the shipped `sources.yml` at it
through `S3_ENDPOINT_URL`, runs the courier (which lands the files and, through its load
operations, builds the shipped feeds' domain tables) and prints what landed. Run it in the project
directory: `make demo` does, in the repository.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from optimizely_courier.settings import configure_runtime

configure_runtime()

import duckdb  # noqa: E402

from optimizely_courier.cli.main import cli  # noqa: E402
from optimizely_courier.config.sources import load_project  # noqa: E402
from optimizely_courier.dev.generate import (  # noqa: E402
    E3Spec,
    ExperimentSpec,
    generate,
    generate_experiment,
    upload,
)
from optimizely_courier.dev.s3server import TEST_KEYS, LocalS3  # noqa: E402
from optimizely_courier.errors import CourierError  # noqa: E402
from optimizely_courier.extras import require_extra  # noqa: E402

PROJECT = Path.cwd()  # `make demo` runs in the repository, whose sources.yml, feeds and models it uses
SPEC = E3Spec(days=3, rows=5000, unready_days=1)
# experiments/demo_checkout.yml: its known effect shows in the results, and its 0.5% of visitors decided
# again into the other variation are left out
EXPERIMENT = ExperimentSpec(reassigned=0.005)


def main() -> None:
    require_extra("demo")
    with LocalS3() as s3:
        project = _project_env(s3)
        courier = project.courier("optimizely")
        kms_key = s3.create_bucket(courier.bucket)
        with tempfile.TemporaryDirectory() as tmp:
            generate(SPEC, Path(tmp))
            generate_experiment(EXPERIMENT, Path(tmp))
            count = upload(Path(tmp), s3.client("s3"), courier.bucket, courier.prefix, kms_key)
        print(f"Local S3 API at {s3.url}: {count} objects in s3://{courier.bucket}/{courier.prefix} (SSE-KMS)")
        print("$ courier run optimizely --all --skip-missing")
        cli.main(args=["-C", str(PROJECT), "run", "optimizely", "--all", "--skip-missing"],
                 standalone_mode=False)
        _print_raw_counts(project.warehouse, courier.dataset)
        _print_domain_counts(project.warehouse)
        _print_results(project)


def _project_env(s3: LocalS3):  # noqa: ANN202
    os.environ["S3_ENDPOINT_URL"] = s3.url
    os.environ.setdefault("OPTIMIZELY_EXTERNAL_ID", "demo-external-id")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", TEST_KEYS["aws_access_key_id"])
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", TEST_KEYS["aws_secret_access_key"])
    return load_project(PROJECT)


def _print_raw_counts(warehouse: Path, dataset: str) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as db:
        rows = db.execute(f"""
            select table_name from information_schema.tables
            where table_schema = '{dataset}' and table_name not like '\\_%' escape '\\'
            order by table_name""").fetchall()
        print(f"\nRaw tables in {warehouse.name}:")
        for (table,) in rows:
            count, files, days = db.execute(
                f'select count(*), count(distinct _file), count(distinct _file_date) from {dataset}."{table}"'
            ).fetchone()
            print(f"  {dataset}.{table:<12} {count:>8,} rows from {files} files over {days} days")


def _print_domain_counts(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as db:
        tables = db.execute("""
            select table_name from information_schema.tables
            where table_schema = 'domain' and table_name not like '%\\_\\_rejected' escape '\\'
            order by table_name""").fetchall()
        print(f"\nDomain tables in {warehouse.name}:")
        for (table,) in tables:
            count, keys = db.execute(f'select count(*), count(distinct _pk) from domain."{table}"').fetchall()[0]
            rejected = db.execute(f'select count(*) from domain."{table}__rejected"').fetchall()[0][0]
            name = f'domain."{table}"'
            print(f"  {name:<32} {count:>8,} rows, {keys:,} distinct keys, {rejected} rejected")


def _print_results(project) -> None:  # noqa: ANN001 - a config.Project
    from optimizely_courier.runs.build import run_dbt

    print("\n$ dbt build --select tag:demo_checkout && courier results demo_checkout")
    run_dbt(project, "build", select=["tag:demo_checkout"])
    cli.main(args=["-C", str(PROJECT), "results", "demo_checkout"], standalone_mode=False)
    print("\n$ courier plan demo_checkout --mde 5%")
    cli.main(args=["-C", str(PROJECT), "plan", "demo_checkout", "--mde", "5%"], standalone_mode=False)


if __name__ == "__main__":
    try:
        main()
    except CourierError as exc:  # a missing extra: one line, as the courier's commands print it
        sys.exit(f"Error: {exc}")

