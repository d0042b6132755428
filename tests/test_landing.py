"""End to end: generated E3 data in a real S3 API server on loopback -> dlt -> DuckDB raw tables."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from moto.sts.models import sts_backends

from optimizely_courier.config.sources import load_project
from optimizely_courier.dev.generate import E3Spec
from optimizely_courier.errors import StorageError
from optimizely_courier.landing.storage import LocalStore
from tests.conftest import (
    PREFIX,
    SHOP_SOURCES,
    landed,
    query,
    run_cli,
    sources_yaml,
    write_far_timestamp_day,
    write_part,
)
from tests.s3proxy import RecordingProxy

START = dt.date(2026, 11, 25)
SPEC = E3Spec(start=START, days=3, experiments=2, events=("purchase", "add:cart"), rows=300)


def _counts(project: Path) -> dict[str, int]:
    return {tag: query(project, f"select count(*) from raw_optimizely.{tag}")[0][0]
            for tag in ("decisions", "conversions")}


def test_lands_kms_encrypted_export_into_raw_tables_with_landing_columns(bucket, make_project, tmp_path):
    tree = bucket.seed(SPEC, tmp_path)
    some_part = next(k for k in bucket.keys() if k.endswith(".parquet"))
    assert bucket.client.head_object(Bucket=bucket.name, Key=some_part)["ServerSideEncryption"] == "aws:kms"
    project = make_project(sources_yaml(bucket=bucket.name, endpoint=bucket.s3.url))

    result = run_cli(project, "run", "optimizely", "--date", "2026-11-26")

    assert result.exit_code == 0, result.output
    assert _counts(project) == {"decisions": 300, "conversions": 300}
    assert landed(result.output, "decisions") == (2, 300, 0)
    local = sorted((tree / "type=events/date=2026-11-26").rglob("*.parquet"))
    expected = {p.relative_to(tree).as_posix(): pq.read_metadata(p).num_rows for p in local}
    per_file = dict(query(project, "select _file, count(*) from raw_optimizely.conversions group by 1"))
    assert per_file == expected
    rows = query(project, """select min(_file_row), max(_file_row), min(_file_date), max(_file_date),
                                    count(distinct _dlt_load_id), count(distinct event)
                             from raw_optimizely.conversions""")
    assert rows == [(0, 149, dt.date(2026, 11, 26), dt.date(2026, 11, 26), 1, 2)]
    assert query(project, "select distinct event from raw_optimizely.conversions order by 1") == [
        ("add:cart",), ("purchase",)]
    columns = [r[0] for r in query(project, "describe raw_optimizely.decisions")]
    assert columns[:17] == [f.name for f in pq.read_schema(next((tree / "type=decisions").rglob("*.parquet")))]
    assert set(columns[17:]) == {"experiment", "_file", "_file_date", "_file_row", "_dlt_load_id"}


def test_rerun_of_the_same_dates_lands_nothing_new(bucket, make_project, tmp_path):
    bucket.seed(SPEC, tmp_path)
    project = make_project(sources_yaml(bucket=bucket.name, endpoint=bucket.s3.url))
    assert run_cli(project, "run", "optimizely", "--from", "2026-11-25", "--to", "2026-11-27").exit_code == 0

    again = run_cli(project, "run", "optimizely", "--from", "2026-11-25", "--to", "2026-11-27")

    assert again.exit_code == 0, again.output
    assert landed(again.output, "decisions") == (0, 0, 4)
    assert _counts(project) == {"decisions": 600, "conversions": 600}


def test_landed_state_survives_losing_the_local_pipeline_directory(bucket, make_project, tmp_path):
    bucket.seed(SPEC, tmp_path)
    project = make_project(sources_yaml(bucket=bucket.name, endpoint=bucket.s3.url))
    assert run_cli(project, "run", "optimizely", "--date", "2026-11-25").exit_code == 0
    shutil.rmtree(project / ".courier" / "pipelines")

    again = run_cli(project, "run", "optimizely", "--date", "2026-11-25")

    assert again.exit_code == 0, again.output
    assert _counts(project) == {"decisions": 300, "conversions": 300}


def test_rewritten_file_with_a_new_etag_is_landed_again(bucket, make_project, tmp_path):
    tree = bucket.seed(SPEC, tmp_path)
    project = make_project(sources_yaml(bucket=bucket.name, endpoint=bucket.s3.url))
    assert run_cli(project, "run", "optimizely", "--date", "2026-11-25").exit_code == 0
    part = sorted((tree / "type=decisions/date=2026-11-25").rglob("*.parquet"))[0]
    rewritten = pq.read_table(part).slice(0, 10)
    pq.write_table(rewritten, part)
    key = f"{PREFIX}/{part.relative_to(tree).as_posix()}"
    bucket.client.put_object(Bucket=bucket.name, Key=key, Body=part.read_bytes(),
                             ServerSideEncryption="aws:kms", SSEKMSKeyId=bucket.kms_key)

    again = run_cli(project, "run", "optimizely", "--date", "2026-11-25")

    assert again.exit_code == 0, again.output
    assert landed(again.output, "decisions") == (1, 10, 1)
    relative = part.relative_to(tree).as_posix()
    assert query(project, f"select count(distinct _dlt_load_id), count(*) from raw_optimizely.decisions "
                          f"where _file = '{relative}'") == [(2, 150 + 10)]


def test_day_without_ready_marker_fails_naming_the_marker_and_lands_nothing(bucket, make_project, tmp_path):
    bucket.seed(E3Spec(start=START, days=2, experiments=1, events=("purchase",), rows=20, unready_days=1), tmp_path)
    project = make_project(sources_yaml(bucket=bucket.name, endpoint=bucket.s3.url))

    result = run_cli(project, "run", "optimizely", "--from", "2026-11-25", "--to", "2026-11-27")

    assert result.exit_code == 1
    marker = f"s3://{bucket.name}/{PREFIX}/type=decisions/date=2026-11-26/_SUCCESS"
    assert f"ready marker {marker} not found" in result.output
    assert "Traceback" not in result.output
    assert not (project / "warehouse.duckdb").exists() or query(  # (the run history is kept beside it)
        project, "select count(*) from information_schema.tables where table_schema = 'raw_optimizely'") == [(0,)]
    [(status, error)] = [(r["status"], r["error"]) for r in json.loads(run_cli(project, "history", "--json").output)]
    assert status == "failed" and f"ready marker {marker} not found" in error


def test_not_ready_advice_says_what_is_missing_what_skip_missing_would_skip_and_when_to_run_again(
        bucket, make_project, tmp_path):
    bucket.seed(E3Spec(start=START, days=3, experiments=1, events=("purchase",), rows=20, unready_days=2), tmp_path)
    project = make_project(sources_yaml(bucket=bucket.name, endpoint=bucket.s3.url))

    result = run_cli(project, "run", "optimizely", "--from", "2026-11-25", "--to", "2026-11-28")

    assert result.exit_code == 1
    [line] = [line for line in result.output.splitlines() if line.startswith("Error:")]
    marker = f"s3://{bucket.name}/{PREFIX}/type=decisions/date=2026-11-26/_SUCCESS"
    missing_at, again_at, flag_at = (line.index(f"ready marker {marker} not found"),
                                     line.index("Run again after the export's ready marker appears"),
                                     line.index("--skip-missing"))
    assert missing_at < again_at < flag_at  # what is missing, when to run again, then the flag
    assert ("--skip-missing would skip decisions on 2026-11-26 and 2026-11-27, "
            "conversions on 2026-11-26 and 2026-11-27 now") in line


def test_skip_missing_lands_ready_days_and_warns_about_the_rest(bucket, make_project, tmp_path):
    bucket.seed(E3Spec(start=START, days=2, experiments=1, events=("purchase",), rows=20, unready_days=1), tmp_path)
    project = make_project(sources_yaml(bucket=bucket.name, endpoint=bucket.s3.url))

    result = run_cli(project, "run", "optimizely", "--all", "--skip-missing")

    assert result.exit_code == 0, result.output
    assert "warning: decisions 2026-11-26: ready marker" in result.output
    assert query(project, "select distinct _file_date from raw_optimizely.decisions") == [(dt.date(2026, 11, 25),)]


def test_optional_entity_with_a_missing_day_is_skipped_with_a_warning(bucket, make_project, tmp_path):
    bucket.seed(E3Spec(start=START, days=1, experiments=1, events=("purchase",), rows=20), tmp_path)
    bucket.client.delete_object(Bucket=bucket.name, Key=f"{PREFIX}/type=events/date=2026-11-25/_SUCCESS")
    project = make_project(sources_yaml(bucket=bucket.name, endpoint=bucket.s3.url,
                                        events_extra="\n        object/optional: true"))

    result = run_cli(project, "run", "optimizely", "--date", "2026-11-25")

    assert result.exit_code == 0, result.output
    assert "warning: conversions 2026-11-25: ready marker" in result.output
    assert "(skipped: optional entity)" in result.output
    assert query(project, "select count(*) from raw_optimizely.decisions") == [(20,)]


def test_one_day_run_lists_only_inside_that_days_prefixes(bucket, make_project, tmp_path):
    bucket.seed(SPEC, tmp_path)
    with RecordingProxy(bucket.s3.url) as proxy:
        project = make_project(sources_yaml(bucket=bucket.name, endpoint=proxy.url))
        assert run_cli(project, "run", "optimizely", "--date", "2026-11-26").exit_code == 0

    listed = sorted(r.prefix for r in proxy.listings())
    assert listed == [f"{PREFIX}/type=decisions/date=2026-11-26/experiment=",
                      f"{PREFIX}/type=events/date=2026-11-26/event="]
    fetched = {r.path for r in proxy.requests if r.method in ("GET", "HEAD") and "list-type" not in r.query}
    assert fetched and all("/date=2026-11-26/" in path for path in fetched)


def test_all_finds_dates_by_listing_the_date_level_only(bucket, make_project, tmp_path):
    bucket.seed(SPEC, tmp_path)
    with RecordingProxy(bucket.s3.url) as proxy:
        project = make_project(sources_yaml(bucket=bucket.name, endpoint=proxy.url))
        result = run_cli(project, "run", "optimizely", "--all")

    assert result.exit_code == 0, result.output
    date_level = [r for r in proxy.listings() if "delimiter" in r.query]
    assert sorted(r.prefix for r in date_level) == [f"{PREFIX}/type=decisions/date=", f"{PREFIX}/type=events/date="]
    assert query(project, "select count(distinct _file_date) from raw_optimizely.decisions") == [(3,)]


def test_local_mirror_lands_the_same_rows_as_the_bucket(bucket, make_project, tmp_path):
    tree = bucket.seed(SPEC, tmp_path)
    mirror = tmp_path / "mirror" / PREFIX
    shutil.copytree(tree, mirror)
    project = make_project(sources_yaml(local_path=str(tmp_path / "mirror")))

    result = run_cli(project, "run", "optimizely", "--all")
    again = run_cli(project, "run", "optimizely", "--all")

    assert result.exit_code == 0, result.output
    assert _counts(project) == {"decisions": 900, "conversions": 900}
    assert landed(again.output, "decisions") == (0, 0, 6)


def test_role_to_role_signs_requests_with_the_assumed_role_and_external_id(bucket, make_project, tmp_path,
                                                                           monkeypatch):
    bucket.seed(E3Spec(start=START, days=1, experiments=1, events=("purchase",), rows=10), tmp_path)
    monkeypatch.setenv("OPTIMIZELY_EXTERNAL_ID", "ext-7731")
    role = "arn:aws:iam::123456789012:role/optimizely-export"
    credential = f"credential: {{type: iam-role-to-role, role_arn: '{role}', external_id: '${{OPTIMIZELY_EXTERNAL_ID}}'}}"
    with RecordingProxy(bucket.s3.url) as proxy:
        project = make_project(sources_yaml(bucket=bucket.name, endpoint=proxy.url, credential=credential))
        result = run_cli(project, "run", "optimizely", "--date", "2026-11-25")

    assert result.exit_code == 0, result.output
    s3_keys = {r.access_key_id for r in proxy.requests if r.path.startswith(f"/{bucket.name}")}
    assumed = {a.access_key_id: a for a in sts_backends["123456789012"]["aws"].assumed_roles}
    assert s3_keys and s3_keys <= set(assumed)
    assert {(assumed[k].role_arn, assumed[k].external_id) for k in s3_keys} == {(role, "ext-7731")}


class TokenApi:
    """Optimizely's export credentials API on loopback, handing out credentials that expire at once."""

    def __init__(self, s3_path: str, lifetime_seconds: float = 1.0):
        self.calls: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

            def do_GET(self) -> None:  # noqa: N802
                api.calls.append(f"{self.path} {self.headers.get('Authorization')}")
                body = json.dumps({"credentials": {
                    "accessKeyId": f"ASIATOKEN{len(api.calls):04d}", "secretAccessKey": "token-secret",
                    "sessionToken": "token-session", "expiration": int((time.time() + lifetime_seconds) * 1000)},
                    "s3Path": s3_path}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()


def test_token_flow_takes_bucket_from_s3_path_and_refreshes_expiring_credentials(bucket, make_project, tmp_path,
                                                                                 monkeypatch):
    bucket.seed(SPEC, tmp_path)
    api = TokenApi(f"s3://{bucket.name}/{PREFIX}")
    monkeypatch.setenv("OPTIMIZELY_TOKEN", "pat-123")
    sources = sources_yaml(bucket="unused", endpoint="", credential="").replace(
        "    bucket: unused\n    endpoint_url: \n", "").replace("    prefix: v1/account_id=12345\n", "")
    with RecordingProxy(bucket.s3.url) as proxy:
        sources = sources.replace(
            "    credential: {type: iam-credential, access_key_id: AKIDEXAMPLELOCAL, secret_access_key: '${TEST_SECRET_KEY}'}",
            f"    endpoint_url: {proxy.url}\n    credential: {{type: optimizely-token, token: '${{OPTIMIZELY_TOKEN}}', "
            f"api_url: '{api.url}'}}")
        project = make_project(sources)
        result = run_cli(project, "run", "optimizely", "--all")
    api.close()

    assert result.exit_code == 0, result.output
    assert _counts(project) == {"decisions": 900, "conversions": 900}
    assert all(call == "/v2/export/credentials?duration=1h Bearer pat-123" for call in api.calls)
    used = [r.access_key_id for r in proxy.requests]
    assert len(api.calls) > 1 and len(set(used)) > 1  # credentials were refreshed during the run
    assert all(key.startswith("ASIATOKEN") for key in used)


def test_missing_bucket_is_one_clear_error(s3, make_project):
    project = make_project(sources_yaml(bucket="no-such-bucket-here", endpoint=s3.url))
    result = run_cli(project, "run", "optimizely", "--date", "2026-11-25")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == ("Error: bucket no-such-bucket-here does not exist (region us-east-1, "
                                              "as access key AKIDEXAMPLELOCAL)")


def test_dlt_pipeline_run_is_the_same_command(bucket, make_project, tmp_path):
    bucket.seed(SPEC, tmp_path)
    project = make_project(sources_yaml(bucket=bucket.name, endpoint=bucket.s3.url))
    dlt = Path(sys.executable).parent / "dlt"
    env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false"}

    result = subprocess.run([str(dlt), "pipeline", "optimizely", "run", "--date", "2026-11-27"], cwd=project,
                            env=env, capture_output=True, text=True, timeout=300)
    missing = subprocess.run([str(dlt), "pipeline", "optimizely", "run", "--date", "2026-11-29"], cwd=project,
                             env=env, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr
    assert landed(result.stdout, "decisions") == (2, 300, 0)
    assert _counts(project) == {"decisions": 300, "conversions": 300}
    assert missing.returncode == 1
    assert "Error: source data not ready" in missing.stderr


def test_a_files_own_column_wins_over_its_path_value_and_odd_keys_land(dbt_project):
    import pyarrow as pa

    root = dbt_project
    (root / "sources.yml").write_text(SHOP_SOURCES.replace("'orders/date='yyyy-MM-dd'/'",
                                                           "'orders/date='yyyy-MM-dd'/region=*/'"))
    day = root / "mirror" / "orders" / "date=2026-11-25"
    for folder, name, rows in (("region=eu", "part-0.parquet", [{"order_id": "e1"}]),
                               ("region=us", "part-0.parquet", [{"order_id": "u1", "region": "from-file"}]),
                               ("region=a%3Ab", "it's [1].parquet", [{"order_id": "q1"}])):
        (day / folder).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), day / folder / name)

    result = run_cli(root, "run", "shop", "--date", "2026-11-25")

    assert result.exit_code == 0, result.output
    assert query(root, "select order_id, region, _file from raw_shop.orders order by 1") == [
        ("e1", "eu", "orders/date=2026-11-25/region=eu/part-0.parquet"),
        ("q1", "a:b", "orders/date=2026-11-25/region=a%3Ab/it's [1].parquet"),
        ("u1", "from-file", "orders/date=2026-11-25/region=us/part-0.parquet")]


def test_a_run_larger_than_one_load_lands_in_several_loads_each_file_once(bucket, make_project, tmp_path,
                                                                          monkeypatch):
    import optimizely_courier.landing.ingest

    bucket.seed(SPEC, tmp_path)
    project = make_project(sources_yaml(bucket=bucket.name, endpoint=bucket.s3.url))
    monkeypatch.setattr(optimizely_courier.landing.ingest, "LANDING_CHUNK_BYTES", 1)  # every file is a load of its own

    result = run_cli(project, "run", "optimizely", "--date", "2026-11-26")
    again = run_cli(project, "run", "optimizely", "--date", "2026-11-26")

    assert result.exit_code == 0, result.output
    assert landed(result.output, "decisions") == (2, 300, 0)
    assert query(project, "select count(distinct _dlt_load_id), count(*), count(distinct (_file, _file_row)) "
                          "from raw_optimizely.decisions") == [(2, 300, 300)]
    assert landed(again.output, "decisions") == (0, 0, 2)
    assert not list((project / ".courier" / "tmp" / "optimizely").iterdir())  # downloads are cleaned up


def test_the_record_holds_each_landed_files_version_and_footer_rows_whether_its_columns_match_or_not(dbt_project):
    day = "2026-11-25"
    same = [write_part(dbt_project, day, f"part-{i}.parquet", [{"order_id": f"{i}-{n}", "amount": n}
                                                               for n in range(i + 1)]) for i in range(3)]
    wider = write_part(dbt_project, day, "part-3.parquet", [{"order_id": "w", "amount": 9, "coupon": "XMAS"}])

    result = run_cli(dbt_project, "run", "shop", "--date", day)

    assert result.exit_code == 0, result.output
    stats = [path.stat() for path in (*same, wider)]
    assert query(dbt_project, "select file, etag, size_bytes, tag, file_date, row_count "
                              "from raw_shop._courier_files order by file") == [
        (f"orders/date={day}/part-{i}.parquet", f"{s.st_size:x}-{s.st_mtime_ns:x}", s.st_size, "orders",
         dt.date.fromisoformat(day), rows) for i, (s, rows) in enumerate(zip(stats, (1, 2, 3, 1)))]
    assert query(dbt_project, "select order_id, amount, coupon, _file_row from raw_shop.orders "
                              "where _file like '%part-2%' or coupon is not null order by 1") == [
        ("2-0", 0, None, 0), ("2-1", 1, None, 1), ("2-2", 2, None, 2), ("w", 9, "XMAS", 0)]


def test_a_listed_file_or_folder_that_links_out_of_the_local_mirror_is_refused(dbt_project, tmp_path):
    outside = tmp_path / "outside" / "part-0.parquet"
    outside.parent.mkdir()
    outside.write_bytes(b"not in the mirror")
    folder = dbt_project / "mirror" / "orders" / "date=2026-11-25"
    folder.mkdir(parents=True)
    (folder / "part-0.parquet").symlink_to(outside)
    store = LocalStore(load_project(dbt_project).courier("shop"))

    [listed] = store.list_objects("orders/")

    with pytest.raises(StorageError, match="is outside the local mirror"):
        store.fetch(listed.key)
    (folder / "experiment=1").symlink_to(outside.parent)
    with pytest.raises(StorageError, match="is outside the local mirror"):
        list(store.list_objects("orders/"))


@pytest.mark.parametrize("statistics", [True, False], ids=["footer statistics", "no statistics"])
def test_a_file_with_a_timestamp_duckdb_cannot_hold_is_rejected_and_the_days_other_files_land(dbt_project,
                                                                                               statistics):
    write_far_timestamp_day(dbt_project, "2026-11-25", statistics)

    result = run_cli(dbt_project, "run", "shop", "--date", "2026-11-25")

    assert result.exit_code == 3, result.output  # partial: a file was rejected
    assert landed(result.output, "orders") == (2, 2, 0)
    assert query(dbt_project, "select order_id from raw_shop.orders order by 1") == [("a",), ("c",)]
    [run] = json.loads(run_cli(dbt_project, "history", "--json").output)
    assert run["status"] == "partial"
    [rejected] = run["rejected"]
    assert rejected["file"] == "orders/date=2026-11-25/part-1.parquet"
    expected = ("column `timestamp` holds a timestamp around year 301970, which DuckDB cannot store" if statistics
                else "holds a value DuckDB cannot read (Conversion Error")
    assert expected in rejected["reason"]


def test_the_dlt_source_rejects_a_file_with_a_timestamp_duckdb_cannot_hold_and_lands_the_rest(dbt_project):
    import dlt

    from optimizely_courier.landing.source import courier_source

    write_far_timestamp_day(dbt_project, "2026-11-25")
    pipeline = dlt.pipeline(pipeline_name="shop", destination=dlt.destinations.duckdb(
        str(dbt_project / "warehouse.duckdb")), dataset_name="raw_shop",
        pipelines_dir=str(dbt_project / ".courier" / "pipelines"))

    pipeline.run(courier_source("shop", START.isoformat(), dbt_project), loader_file_format="parquet")
    again = run_cli(dbt_project, "run", "shop", "--date", "2026-11-25")

    assert query(dbt_project, "select order_id from raw_shop.orders order by 1") == [("a",), ("c",)]
    assert again.exit_code == 3, again.output  # the rejected file is tried again, and rejected again
    assert landed(again.output, "orders") == (0, 0, 2)
