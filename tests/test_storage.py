"""Object stores: a local mirror and S3 list, fetch and release the same way; keys cannot escape."""

from __future__ import annotations

import os

import pytest

from optimizely_courier.config.sources import load_project
from optimizely_courier.errors import StorageError
from optimizely_courier.landing import storage
from optimizely_courier.landing.discovery import DataFile
from optimizely_courier.landing.storage import BODY_ATTEMPTS, Downloads, LocalStore, S3Store
from tests.conftest import SHOP_SOURCES, sources_yaml
from tests.s3proxy import Fault, RecordingProxy


def mirror(tmp_path):
    root = tmp_path / "project"
    for key in ("orders/date=2026-11-26/part-0.parquet", "orders/date=2026-11-25/b/part-1.parquet",
                "orders/date=2026-11-25/a/part-0.parquet"):
        (root / "mirror" / key).parent.mkdir(parents=True, exist_ok=True)
        (root / "mirror" / key).write_bytes(key.encode())
    (root / "sources.yml").write_text(SHOP_SOURCES)
    return LocalStore(load_project(root).courier("shop"))


def test_a_local_mirror_lists_objects_in_key_order_and_dirs_one_level_deep(tmp_path):
    store = mirror(tmp_path)

    assert [o.key for o in store.list_objects("orders/")] == [
        "orders/date=2026-11-25/a/part-0.parquet", "orders/date=2026-11-25/b/part-1.parquet",
        "orders/date=2026-11-26/part-0.parquet"]
    assert store.list_dirs("orders/date=") == ["orders/date=2026-11-25/", "orders/date=2026-11-26/"]
    assert store.exists("orders/date=2026-11-26/part-0.parquet") and not store.exists("orders/none.parquet")


def test_a_rewritten_local_file_gets_a_new_etag(tmp_path):
    store = mirror(tmp_path)
    key = "orders/date=2026-11-26/part-0.parquet"
    [before] = [o for o in store.list_objects(key)]
    path = store.fetch(key)
    path.write_bytes(b"rewritten, longer than before")
    os.utime(path, ns=(before.size, 10**18))

    [after] = [o for o in store.list_objects(key)]

    assert after.etag != before.etag and after.size != before.size


@pytest.mark.parametrize("key", ["../sources.yml", "orders/../../sources.yml"])
def test_a_key_cannot_climb_out_of_the_local_mirror(tmp_path, key):
    store = mirror(tmp_path)

    with pytest.raises(StorageError, match="is outside the local mirror"):
        store.fetch(key)


def test_s3_downloads_are_fetched_ahead_and_deleted_once_released(bucket, make_project, tmp_path):
    bucket.client.put_object(Bucket=bucket.name, Key="v1/account_id=12345/type=decisions/date=2026-11-25/"
                             "experiment=1/part-0.parquet", Body=b"part zero")
    project = load_project(make_project(sources_yaml(bucket=bucket.name, endpoint=bucket.s3.url)))
    (tmp_path / "downloads").mkdir()
    store = S3Store(project.courier("optimizely"), tmp_path / "downloads")
    [info] = list(store.list_objects("type=decisions/"))
    datafile = DataFile(key=info.key, size=info.size, etag=info.etag, tag="decisions", date=None)

    with Downloads(store) as downloads:
        downloads.start([datafile])
        path = downloads.path(datafile)
        content = path.read_bytes()
        downloads.release([datafile])

    assert info.key == "type=decisions/date=2026-11-25/experiment=1/part-0.parquet"
    assert content == b"part zero"
    assert not path.exists()


BODY = bytes(range(256)) * 4096  # 1 MiB: long enough to be cut mid-stream


@pytest.mark.parametrize(("cuts", "whole"), [(2, True), (4, False)])
def test_a_download_cut_mid_stream_is_fetched_again_until_the_attempts_run_out(bucket, make_project, tmp_path,
                                                                               monkeypatch, cuts, whole):
    monkeypatch.setattr(storage, "BODY_RETRY_SECONDS", 0.01)
    key = "type=decisions/date=2026-11-25/experiment=1/part-0.parquet"
    bucket.client.put_object(Bucket=bucket.name, Key=f"v1/account_id=12345/{key}", Body=BODY)
    gets = []

    def cut_the_first_gets(request):
        if request.method == "GET" and "list-type" not in request.query:
            gets.append(request)
            return Fault("cut_body") if len(gets) <= cuts else None
        return None

    with RecordingProxy(bucket.s3.url, cut_the_first_gets) as proxy:
        project = load_project(make_project(sources_yaml(bucket=bucket.name, endpoint=proxy.url)))
        (tmp_path / "downloads").mkdir()
        store = S3Store(project.courier("optimizely"), tmp_path / "downloads")
        if whole:
            assert store.fetch(key).read_bytes() == BODY
        else:
            with pytest.raises(StorageError, match=f"part-0.parquet failed {BODY_ATTEMPTS} times: the connection"):
                store.fetch(key)
            assert list((tmp_path / "downloads").iterdir()) == []  # nothing half-written left behind

    assert len(gets) == min(cuts + 1, BODY_ATTEMPTS)
