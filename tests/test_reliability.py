"""Reliability: bad files by policy, concurrent runs, S3 faults, crashes, hostile input, secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import SHOP_SOURCES, landed, query, run_cli, write_far_timestamp_day, write_part
from tests.reliability_report import record

pytestmark = pytest.mark.reliability

ORDERS = pa.schema([("order_id", pa.string()), ("amount", pa.int64())])
DAY = "2026-11-25"


def _rows(prefix: str, n: int) -> list[dict]:
    return [{"order_id": f"{prefix}{i}", "amount": i} for i in range(n)]


def test_bad_files_are_handled_by_policy_and_a_fixed_file_lands_on_the_next_run(dbt_project):
    root = dbt_project
    folder = root / "mirror" / "orders" / f"date={DAY}"
    write_part(root, DAY, "part-0.parquet", _rows("a", 5), ORDERS)
    truncated = write_part(root, DAY, "part-1.parquet", _rows("b", 100), ORDERS)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    (folder / "part-2.parquet").write_bytes(b"")
    (folder / "part-3.parquet").write_text("order_id,amount\nc0,1\n")
    write_part(root, DAY, "part-4.parquet", [], ORDERS)
    write_part(root, DAY, "part-5.parquet", [{"order_id": "d0", "amount": 1, "coupon": "XMAS"}])
    write_part(root, DAY, "part-6.parquet", [{"order_id": "e0", "amount": "twelve"}],
               pa.schema([("order_id", pa.string()), ("amount", pa.string())]))

    result = run_cli(root, "run", "shop", "--date", DAY)
    record("bad_inputs_tried", 5)

    assert result.exit_code == 3, result.output  # partial: some files rejected
    assert landed(result.output, "orders") == (3, 6, 0)  # part-0, the empty part-4, part-5
    assert query(root, "select order_id, coupon from raw_shop.orders order by 1") == [
        ("a0", None), ("a1", None), ("a2", None), ("a3", None), ("a4", None), ("d0", "XMAS")]
    assert "raw table orders gained column(s): coupon" in result.output
    [run] = json.loads(run_cli(root, "history", "--json").output)
    assert run["status"] == "partial"
    rejected = {item["file"].rsplit("/", 1)[-1]: item["reason"] for item in run["rejected"]}
    assert sorted(rejected) == ["part-1.parquet", "part-3.parquet", "part-6.parquet"]
    assert "is not a readable Parquet file" in rejected["part-1.parquet"]
    assert "is not a readable Parquet file" in rejected["part-3.parquet"]
    assert "column `amount` is text here but bigint in the raw table" in rejected["part-6.parquet"]
    assert any("empty object" in s and "part-2.parquet" in s for s in run["skipped"])
    assert run["new_columns"] == {"orders": ["coupon"]}

    write_part(root, DAY, "part-6.parquet", [{"order_id": "e0", "amount": 12}], ORDERS)
    again = run_cli(root, "run", "shop", "--date", DAY)

    assert again.exit_code == 3, again.output  # part-1 and part-3 are still bad
    assert landed(again.output, "orders") == (1, 1, 3)
    assert query(root, "select amount from raw_shop.orders where order_id = 'e0'") == [(12,)]
    [latest, _] = json.loads(run_cli(root, "history", "--json").output)
    assert sorted(item["file"].rsplit("/", 1)[-1] for item in latest["rejected"]) == ["part-1.parquet",
                                                                                      "part-3.parquet"]


def test_which_file_comes_first_never_decides_the_raw_types(dbt_project):
    root = dbt_project
    # the first file in key order says `amount` is text; the two after it say integer: the majority wins
    write_part(root, DAY, "part-0.parquet", [{"order_id": "x0", "amount": "12"}],
               pa.schema([("order_id", pa.string()), ("amount", pa.string())]))
    write_part(root, DAY, "part-1.parquet", _rows("a", 3), ORDERS)
    write_part(root, DAY, "part-2.parquet", _rows("b", 2), ORDERS)

    result = run_cli(root, "run", "shop", "--date", DAY)

    assert result.exit_code == 3, result.output
    assert query(root, "select data_type from information_schema.columns where table_name = 'orders' "
                       "and column_name = 'amount'") == [("BIGINT",)]
    assert query(root, "select count(*) from raw_shop.orders") == [(5,)]
    [run] = json.loads(run_cli(root, "history", "--json").output)
    assert [item["file"] for item in run["rejected"]] == [f"orders/date={DAY}/part-0.parquet"]


def test_an_e3_file_that_deviates_from_the_export_schema_is_rejected_even_when_it_comes_first(tmp_path):
    import shutil

    import pyarrow.compute as pc

    from optimizely_courier.dev.generate import E3Spec, generate
    from tests.conftest import ROOT

    root = tmp_path / "project"
    generate(E3Spec(days=2, experiments=4, events=(), rows=400, rows_per_file=100), root / "mirror")
    (root / "sources.yml").write_text("""couriers:
  optimizely:
    local_path: mirror
    entities:
      - object/file-pattern: "'type=decisions/date='yyyy-MM-dd'/experiment=*/'"
        object/land-as: {file/tag: decisions}
""")
    for name in ("dbt_project.yml", "profiles.yml", "macros"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, root / name)
    first = sorted((root / "mirror").glob("type=decisions/*/*/*.parquet"))[0]
    table = pq.read_table(first)
    numbers = pc.cast(pc.utf8_slice_codeunits(table["visitor_id"], 8), pa.int64())  # visitor_123 -> 123
    pq.write_table(table.set_column(table.schema.get_field_index("visitor_id"), "visitor_id", numbers), first)

    result = run_cli(root, "run", "optimizely", "--all")

    assert result.exit_code == 3, result.output
    assert query(root, "select count(*) from raw_optimizely.decisions") == [(800 - 100,)]
    assert query(root, "select data_type from information_schema.columns where table_name = 'decisions' "
                       "and column_name = 'visitor_id'") == [("VARCHAR",)]
    [run] = json.loads(run_cli(root, "history", "--json").output)
    [rejected] = run["rejected"]
    assert rejected["file"] == first.relative_to(root / "mirror").as_posix()
    assert "column `visitor_id` is bigint here but text in the raw table" in rejected["reason"]


def _corrupt_first_page(path: Path) -> None:
    """Overwrite bytes inside the first data page: the footer still reads, the data does not."""
    start = pq.read_metadata(path).row_group(0).column(0).data_page_offset + 40
    data = bytearray(path.read_bytes())
    data[start:start + 200] = b"\x55" * 200
    path.write_bytes(bytes(data))


def test_a_file_with_corrupt_data_is_rejected_and_the_rest_of_its_load_lands_exactly_once(dbt_project):
    root = dbt_project
    (root / "sources.yml").write_text(SHOP_SOURCES + """      - object/file-pattern: "'returns/date='yyyy-MM-dd'/'"
        object/land-as: {file/tag: returns}
""")
    write_part(root, DAY, "part-0.parquet", _rows("a", 5), ORDERS)
    returns = root / "mirror" / "returns" / f"date={DAY}"
    returns.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(_rows("r", 3), ORDERS), returns / "part-0.parquet")
    pq.write_table(pa.Table.from_pylist(_rows("x", 2000), ORDERS), returns / "part-1.parquet")
    _corrupt_first_page(returns / "part-1.parquet")

    result = run_cli(root, "run", "shop", "--date", DAY)

    assert result.exit_code == 3, result.output
    assert query(root, "select count(*), count(distinct _dlt_load_id) from raw_shop.orders") == [(5, 1)]
    assert query(root, "select count(*) from raw_shop.returns") == [(3,)]
    [run] = json.loads(run_cli(root, "history", "--json").output)
    [rejected] = run["rejected"]
    assert rejected["file"] == f"returns/date={DAY}/part-1.parquet"
    assert rejected["reason"].startswith(f"{root / 'mirror'}/returns/date={DAY}/part-1.parquet is corrupt: ")

    pq.write_table(pa.Table.from_pylist(_rows("x", 2000), ORDERS), returns / "part-1.parquet")
    again = run_cli(root, "run", "shop", "--date", DAY)

    assert again.exit_code == 0, again.output
    assert landed(again.output, "returns") == (1, 2000, 1)
    assert query(root, "select count(*) from raw_shop.orders") == [(5,)]
    assert query(root, "select count(*), count(distinct (_file, _file_row)) from raw_shop.returns") == [(2003, 2003)]


@pytest.mark.parametrize("statistics", [True, False], ids=["footer statistics", "no statistics"])
def test_a_file_with_a_timestamp_duckdb_cannot_hold_is_rejected_without_a_traceback_and_the_rest_lands(
        dbt_project, statistics):
    import subprocess
    import sys

    write_far_timestamp_day(dbt_project, DAY, statistics)
    command = [sys.executable, "-m", "optimizely_courier", "-C", str(dbt_project), "run", "shop", "--date", DAY]

    runs = [subprocess.run(command, capture_output=True, text=True, timeout=300) for _ in range(2)]
    record("bad_inputs_tried")
    record("tracebacks_seen", sum("Traceback" in run.stdout + run.stderr for run in runs))

    for run in runs:  # run after run, the good files stay landed and the bad one stays out
        assert run.returncode == 3, run.stdout + run.stderr
        assert "Traceback" not in run.stdout + run.stderr, run.stderr
        assert f"rejected {dbt_project / 'mirror'}/orders/date={DAY}/part-1.parquet" in run.stdout
    assert landed(runs[0].stdout, "orders") == (2, 2, 0) and landed(runs[1].stdout, "orders") == (0, 0, 2)
    assert query(dbt_project, "select order_id, count(*) from raw_shop.orders group by 1 order by 1") == [
        ("a", 1), ("c", 1)]


def _hold_lock(root, seconds: float):
    """Another process holding the warehouse's run lock for `seconds`, as a running courier would."""
    import subprocess
    import sys

    code = ("import sys, time; from pathlib import Path; from optimizely_courier.runs.lock import warehouse_lock\n"
            "with warehouse_lock(Path(sys.argv[1]), {'run_id': 'run-holding-1', 'courier': 'shop', "
            "'started_at': '2026-11-28T08:30:00+00:00'}, 5):\n"
            "    print('held', flush=True); time.sleep(float(sys.argv[2]))\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(root / "warehouse.duckdb"), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_run_waits_for_the_first_then_fails_naming_it(dbt_project):
    write_part(dbt_project, DAY, "part-0.parquet", _rows("a", 3), ORDERS)
    holder = _hold_lock(dbt_project, 30)
    try:
        result = run_cli(dbt_project, "run", "shop", "--date", DAY, "--lock-timeout", "1")
    finally:
        holder.kill()
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: warehouse {dbt_project / 'warehouse.duckdb'} is busy: run run-holding-1 (courier shop, pid "
        f"{holder.pid}, started 2026-11-28T08:30:00+00:00) holds it; waited 1s. Try again when it has finished")


def test_a_second_run_proceeds_once_the_first_releases_the_warehouse(dbt_project):
    write_part(dbt_project, DAY, "part-0.parquet", _rows("a", 3), ORDERS)
    holder = _hold_lock(dbt_project, 1)
    result = run_cli(dbt_project, "run", "shop", "--date", DAY, "--lock-timeout", "30")
    holder.wait()
    assert result.exit_code == 0, result.output
    assert query(dbt_project, "select count(*) from raw_shop.orders") == [(3,)]


# -- S3 faults, through the fault-injecting proxy -------------------------------------------------

from collections import Counter  # noqa: E402

from optimizely_courier.dev.generate import E3Spec  # noqa: E402
from tests.conftest import PREFIX, sources_yaml  # noqa: E402
from tests.s3proxy import Fault, RecordingProxy  # noqa: E402

E3_DAY = E3Spec(days=1, experiments=2, events=("purchase", "add:cart"), rows=200)


def _run_through(bucket, make_project, fault, *args):
    with RecordingProxy(bucket.s3.url, fault) as proxy:
        project = make_project(sources_yaml(bucket=bucket.name, endpoint=proxy.url))
        result = run_cli(project, "run", "optimizely", "--date", "2026-11-25", *args)
    record("faults_injected", len(proxy.injected))
    record("tracebacks_seen", int("Traceback" in result.output))
    return project, result, proxy


def _is_object_get(request) -> bool:
    return request.method == "GET" and request.path.endswith(".parquet")


def test_throttling_server_errors_resets_and_slow_responses_are_retried(bucket, make_project, tmp_path):
    bucket.seed(E3_DAY, tmp_path)
    seen: Counter = Counter()

    def fault(request):
        seen[(request.method, request.path, str(request.query))] += 1
        count = seen[(request.method, request.path, str(request.query))]
        if _is_object_get(request) and count == 1:
            return Fault("status", 503, "SlowDown")
        if _is_object_get(request) and count == 2:
            return [Fault("reset"), Fault("cut_body"), Fault("status", 500, "InternalError", "We encountered an "
                                                                                        "internal error")][
                hash(request.path) % 3]
        if "list-type" in request.query and count == 1:
            return Fault("status", 500, "InternalError", "We encountered an internal error")
        if request.method == "HEAD" and count == 1:
            return Fault("delay", seconds=1.0)
        return None

    project, result, proxy = _run_through(bucket, make_project, fault)

    assert result.exit_code == 0, result.output
    assert len(proxy.injected) >= 10
    assert {f.kind for _, f in proxy.injected} >= {"status", "delay"}
    for tag in ("decisions", "conversions"):
        [(rows, distinct)] = query(project, f"select count(*), count(distinct uuid) from raw_optimizely.{tag}")
        record("rows_lost", 200 - distinct)
        record("rows_duplicated", rows - distinct)
        assert (rows, distinct) == (200, 200)
    record("runs_recovered")


def test_a_download_cut_off_on_every_try_ends_in_a_clear_error(bucket, make_project, tmp_path):
    # (a reset on every try ends the same way, after botocore's ten attempts with back-off: too slow to test)
    bucket.seed(E3_DAY, tmp_path)
    project, result, _ = _run_through(bucket, make_project, lambda r: Fault("cut_body") if _is_object_get(r) else None)
    assert result.exit_code == 1
    last = result.output.splitlines()[-1]
    assert last.startswith("Error: ") and f"s3://{bucket.name}/{PREFIX}/type=" in last
    assert "Traceback" not in result.output


def test_access_denied_on_the_bucket_names_bucket_and_identity(bucket, make_project, tmp_path):
    bucket.seed(E3_DAY, tmp_path)
    denied = Fault("status", 403, "AccessDenied", "Access Denied")
    _, result, _ = _run_through(bucket, make_project, lambda r: denied if r.method in ("GET", "HEAD") else None)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: access denied to object s3://{bucket.name}/{PREFIX}/type=decisions/date=2026-11-25/_SUCCESS for "
        "access key AKIDEXAMPLELOCAL: 403: Forbidden")


def test_access_denied_on_listing_names_the_bucket(bucket, make_project, tmp_path):
    bucket.seed(E3_DAY, tmp_path)
    denied = Fault("status", 403, "AccessDenied", "Access Denied")
    _, result, _ = _run_through(bucket, make_project, lambda r: denied if "list-type" in r.query else None)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (
        f"Error: access denied to bucket {bucket.name} (listing s3://{bucket.name}/{PREFIX}/type=decisions/"
        "date=2026-11-25/experiment=) for access key AKIDEXAMPLELOCAL: AccessDenied: Access Denied")


def test_access_denied_on_one_object_names_the_object(bucket, make_project, tmp_path):
    bucket.seed(E3_DAY, tmp_path)
    target = sorted(k for k in bucket.keys() if "type=events" in k and k.endswith(".parquet"))[0]
    denied = Fault("status", 403, "AccessDenied", "Access Denied")
    _, result, _ = _run_through(bucket, make_project,
                                lambda r: denied if _is_object_get(r) and r.path.endswith(target) else None)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (f"Error: access denied to object s3://{bucket.name}/{target} for "
                                              "access key AKIDEXAMPLELOCAL: AccessDenied: Access Denied")


def test_kms_denied_names_the_object_the_key_and_the_identity(bucket, make_project, tmp_path):
    bucket.seed(E3_DAY, tmp_path)
    key_arn = f"arn:aws:kms:us-east-1:123456789012:key/{bucket.kms_key}"
    denied = Fault("status", 403, "AccessDenied", f"User: arn:aws:iam::123456789012:user/x is not authorized to "
                                                  f"perform: kms:Decrypt on resource: {key_arn}")
    _, result, _ = _run_through(bucket, make_project, lambda r: denied if _is_object_get(r) else None)
    assert result.exit_code == 1
    last = result.output.splitlines()[-1]
    assert last.startswith(f"Error: cannot decrypt object s3://{bucket.name}/{PREFIX}/type=decisions/")
    assert "with its KMS key as access key AKIDEXAMPLELOCAL" in last and key_arn in last


def test_wrong_region_says_which_region_the_bucket_is_in(bucket, make_project, tmp_path):
    bucket.seed(E3_DAY, tmp_path)
    moved = Fault("status", 301, "PermanentRedirect", "The bucket you are attempting to access must be addressed "
                  "using the specified endpoint.", headers={"x-amz-bucket-region": "eu-west-1"})
    _, result, _ = _run_through(bucket, make_project, lambda r: moved)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == (f"Error: bucket {bucket.name} is not in region us-east-1; the bucket "
                                              "is in eu-west-1: set `region`")


# -- secrets ---------------------------------------------------------------------------------------

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRET42"
SESSION = "FQoGZXIvYXdzEXAMPLESESSIONTOKEN1234567890"


def test_secrets_never_appear_in_output_history_logs_or_files(bucket, make_project, tmp_path, monkeypatch):
    import shutil

    from tests.conftest import DBT_FILES, ROOT

    bucket.seed(E3_DAY, tmp_path)
    monkeypatch.setenv("MY_SECRET_KEY", SECRET)
    monkeypatch.setenv("MY_SESSION_TOKEN", SESSION)
    credential = ("credential: {type: iam-credential, access_key_id: AKIDEXAMPLELOCAL, secret_access_key: "
                  "'${MY_SECRET_KEY}', session_token: '${MY_SESSION_TOKEN}'}")
    project = make_project(sources_yaml(bucket=bucket.name, endpoint=bucket.s3.url, credential=credential,
                                        load_operations="{df-7k2m9q: [{type: load, file: decisions}]}"))
    for name in (*DBT_FILES, "feeds", "models"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, project / name)
    outputs = [run_cli(project, *args).output for args in (
        ["run", "optimizely", "--date", "2026-11-25", "--json"], ["run", "optimizely", "--date", "2026-11-29"],
        ["history", "--json"], ["validate"], ["explore", "Optimizely:Decisions", "--limit", "2"],
        ["feeds", "list"], ["--debug", "run", "optimizely", "--date", "2026-11-30"])]
    bad = project / "sources.yml"
    bad.write_text(bad.read_text().replace("'${MY_SECRET_KEY}'", SECRET))
    outputs.append(run_cli(project, "validate").output)

    assert "literal secret is refused" in outputs[-1] and SECRET not in outputs[-1]
    for output in outputs:
        assert SECRET not in output and SESSION not in output
    written = [p for p in project.rglob("*") if p.is_file() and p.name != "sources.yml"]
    assert any(p.name == "warehouse.duckdb" for p in written) and any(".courier" in p.parts for p in written)
    for path in written:
        data = path.read_bytes()
        assert SECRET.encode() not in data and SESSION.encode() not in data, path


def test_git_ignores_secrets_and_local_state():
    from tests.conftest import ROOT

    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert ".dlt/secrets.toml" in ignored and ".courier/" in ignored


def test_role_credentials_expiring_mid_run_are_refreshed(bucket, make_project, tmp_path, monkeypatch):
    from moto.sts.models import sts_backends

    import optimizely_courier.config.credentials

    bucket.seed(E3Spec(days=2, experiments=2, events=("purchase",), rows=200), tmp_path)
    # STS's shortest session (15 min) is inside botocore's refresh window from the start: each use of the
    # credentials finds them about to expire, so the run must refresh them as it goes
    monkeypatch.setattr(optimizely_courier.config.credentials, "ROLE_SESSION_SECONDS", 900)
    monkeypatch.setenv("OPTIMIZELY_EXTERNAL_ID", "ext-refresh")
    role = "arn:aws:iam::123456789012:role/short-lived"
    credential = f"credential: {{type: iam-role-to-role, role_arn: '{role}', external_id: '${{OPTIMIZELY_EXTERNAL_ID}}'}}"
    with RecordingProxy(bucket.s3.url) as proxy:
        project = make_project(sources_yaml(bucket=bucket.name, endpoint=proxy.url, credential=credential))
        result = run_cli(project, "run", "optimizely", "--all")

    assert result.exit_code == 0, result.output
    assumed = {a.access_key_id for a in sts_backends["123456789012"]["aws"].assumed_roles if a.role_arn == role}
    used = {r.access_key_id for r in proxy.requests if r.path.startswith(f"/{bucket.name}")}
    assert used <= assumed and len(used) > 1  # several sessions: refreshed as each expired
    assert query(project, "select count(*) from raw_optimizely.decisions") == [(400,)]
