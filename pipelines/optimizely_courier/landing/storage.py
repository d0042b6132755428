"""Object stores a courier reads from: S3 (any S3 API) or a local mirror of a bucket.

Keys are always relative to the courier's prefix. Errors name the bucket/object and the identity
used, never a secret.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential, wait_fixed

from optimizely_courier.config.sources import Courier, Project
from optimizely_courier.errors import StorageError
from optimizely_courier.settings import DOWNLOAD_DIR, FETCH_WORKERS

if TYPE_CHECKING:  # botocore is imported by S3Store only: a fifth of a second a local mirror does not need
    from botocore.exceptions import ClientError

# Standard retry mode backs off on throttling (503 SlowDown), 500s and connection resets.
S3_CLIENT_CONFIG = dict(retries={"max_attempts": 10, "mode": "standard"}, connect_timeout=10, read_timeout=60,
                        max_pool_connections=16)


DOWNLOAD_CHUNK_BYTES = 1 << 20
BODY_ATTEMPTS = 4
BODY_RETRY_SECONDS = 0.5


def _body_errors() -> tuple[type[Exception], ...]:
    """The errors of a response body cut off mid-stream."""
    from botocore.exceptions import (
        ConnectionClosedError,
        IncompleteReadError,
        ReadTimeoutError,
        ResponseStreamingError,
    )

    return ResponseStreamingError, ReadTimeoutError, ConnectionClosedError, IncompleteReadError


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object; `etag` changes whenever the object is rewritten."""

    key: str
    size: int
    etag: str


class ObjectStore(Protocol):
    location: str

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, recursively."""

    def list_dirs(self, prefix: str) -> list[str]:
        """The next-level 'directories' (ending in '/') and objects whose keys start with `prefix`."""

    def exists(self, key: str) -> bool: ...

    def fetch(self, key: str) -> Path:
        """A local file with the object's bytes; hand it back with `release` when done."""

    def release(self, path: Path) -> None:
        """Forget a path from `fetch` (deletes a downloaded copy)."""

    def url(self, key: str) -> str: ...


class S3Store:
    """An S3 bucket (or any S3 API endpoint) under a prefix."""

    def __init__(self, courier: Courier, temp_dir: Path | None = None):
        from botocore.config import Config

        from optimizely_courier.config.credentials import connect

        if courier.endpoint_url:
            _check_endpoint(courier.endpoint_url)
        connection = connect(courier)
        self.bucket, self.identity = connection.bucket, connection.identity
        self.prefix = f"{connection.prefix.strip('/')}/" if connection.prefix.strip("/") else ""
        self.client = connection.session.client("s3", endpoint_url=courier.endpoint_url, region_name=courier.region,
                                                config=Config(**S3_CLIENT_CONFIG))
        self.region = courier.region
        self.temp_dir = temp_dir
        self._bucket_checked = False
        self.location = f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        with self._errors(prefix, listing=True):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(item["Key"][len(self.prefix):], item["Size"], item["ETag"].strip('"'))

    def list_dirs(self, prefix: str) -> list[str]:
        names: list[str] = []
        with self._errors(prefix, listing=True):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix, Delimiter="/"):
                names += [p["Prefix"][len(self.prefix):] for p in page.get("CommonPrefixes", [])]
                names += [o["Key"][len(self.prefix):] for o in page.get("Contents", [])]
        return names

    def exists(self, key: str) -> bool:
        try:
            with self._errors(key):
                self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
                return True
        except _NotFound:
            self._check_bucket()  # a HEAD answers a bare 404 for a missing bucket too
            return False

    def _check_bucket(self) -> None:
        if self._bucket_checked:
            return
        try:
            with self._errors(""):
                self.client.head_bucket(Bucket=self.bucket)
        except _NotFound:
            from botocore.exceptions import ClientError

            raise self._translate(ClientError({"Error": {"Code": "NoSuchBucket"}}, "HeadBucket"), "", True) from None
        self._bucket_checked = True

    def fetch(self, key: str) -> Path:
        handle, name = tempfile.mkstemp(prefix="courier-", suffix=".parquet", dir=self.temp_dir)
        os.close(handle)
        # botocore retries failed requests, not a body cut off mid-stream: start the GET again
        body_errors = _body_errors()
        retrying = Retrying(retry=retry_if_exception_type(body_errors), stop=stop_after_attempt(BODY_ATTEMPTS),
                            wait=wait_exponential(multiplier=BODY_RETRY_SECONDS), reraise=True)
        try:
            retrying(self._download, key, name)
        except body_errors:
            Path(name).unlink(missing_ok=True)
            raise StorageError(f"reading {self.url(key)} failed {BODY_ATTEMPTS} times: the connection "
                               "dropped mid-download") from None
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)

    def _download(self, key: str, name: str) -> None:
        """One GET streamed to disk (download_file would HEAD first: twice the requests)."""
        with self._errors(key):
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
        with open(name, "wb") as out:
            for chunk in body.iter_chunks(DOWNLOAD_CHUNK_BYTES):
                out.write(chunk)

    def release(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    @contextmanager
    def _errors(self, key: str, listing: bool = False) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            raise self._translate(exc, key, listing) from None
        except BotoCoreError as exc:
            raise StorageError(f"cannot read {self.url(key)} as {self.identity}: {exc}") from None

    def _translate(self, exc: ClientError, key: str, listing: bool) -> Exception:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = str(error.get("Message", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        target = f"bucket {self.bucket} (listing {self.url(key)})" if listing else f"object {self.url(key)}"
        if code in ("404", "NoSuchKey", "NotFound") and not listing:
            return _NotFound()
        if code == "NoSuchBucket":
            return StorageError(f"bucket {self.bucket} does not exist (region {self.region}, as {self.identity})")
        if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "301") or status == 301:
            region = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region")
            hint = f"; the bucket is in {region}" if region else ""
            return StorageError(f"bucket {self.bucket} is not in region {self.region}{hint}: set `region`")
        if "KMS" in code or "kms" in message.lower():
            return StorageError(f"cannot decrypt {target} with its KMS key as {self.identity}: {code}: {message}")
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
            return StorageError(f"access denied to {target} for {self.identity}: {code}: {message}")
        return StorageError(f"S3 refused {target} as {self.identity}: {code}: {message}")


ENDPOINT_ATTEMPTS = 3
ENDPOINT_TIMEOUT_SECONDS = 3


def _check_endpoint(url: str) -> None:
    """Fail in seconds, not minutes, when nothing listens at an S3-compatible endpoint (botocore would
    retry a refused connection ten times with back-off, silently, for about 90 seconds)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    retrying = Retrying(retry=retry_if_exception_type(OSError), stop=stop_after_attempt(ENDPOINT_ATTEMPTS),
                        wait=wait_fixed(1), reraise=True)
    try:
        retrying(lambda: socket.create_connection((parts.hostname, port), timeout=ENDPOINT_TIMEOUT_SECONDS).close())
    except OSError as exc:
        raise StorageError(f"cannot connect to the S3 endpoint {url} ({exc.strerror or type(exc).__name__}, "
                           f"{ENDPOINT_ATTEMPTS} tries): check `endpoint_url` and that the server is running") from None


class _NotFound(Exception):
    """Internal: a HEAD answered 404."""


class LocalStore:
    """A local directory laid out like the bucket (what `aws s3 sync` leaves behind)."""

    def __init__(self, courier: Courier):
        assert courier.local_path is not None
        self.root = courier.local_path
        if not self.root.is_dir():
            raise StorageError(f"courier {courier.name}: local_path {self.root} is not a directory")
        self.prefix = f"{courier.prefix}/" if courier.prefix else ""
        self.base = self.root / courier.prefix if courier.prefix else self.root
        self.real_base = self.base.resolve()  # resolved once: thousands of keys are checked against it
        self.location = str(self.base)
        self._listed: dict[str, Path] = {}  # listed files that are no links, by key

    def url(self, key: str) -> str:
        return str(self.base / key)

    def _split(self, prefix: str) -> tuple[Path, str]:
        directory, _, head = prefix.rpartition("/")
        return (self._inside(directory) if directory else self.base), head

    def _inside(self, key: str) -> Path:
        """The path of `key`, which must lie inside the mirror (a key cannot climb out with '..')."""
        path = (self.base / key).resolve()
        if path != self.real_base and self.real_base not in path.parents:
            raise StorageError(f"{self.base / key} is outside the local mirror {self.base}")
        return path

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        directory, head = self._split(prefix)
        if directory.is_dir():
            yield from self._walk(directory, self._key_of(directory), head)

    def _walk(self, directory: Path | str, folder: str, head: str = "") -> Iterator[ObjectInfo]:
        """The objects under `directory`, a folder inside the mirror whose keys start with `folder`."""
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            if not entry.name.startswith(head):
                continue
            relative = folder + entry.name
            if entry.is_symlink():  # it may lead out of the mirror: `_inside` checks where it leads
                if entry.is_dir():
                    yield from self.list_objects(relative + "/")
                else:
                    yield _local_info(relative, entry)
            elif entry.is_dir():
                yield from self._walk(entry.path, relative + "/")
            else:
                self._listed[relative] = Path(entry.path)  # inside, as its folder is: `fetch` need not check
                yield _local_info(relative, entry)

    def list_dirs(self, prefix: str) -> list[str]:
        directory, head = self._split(prefix)
        if not directory.is_dir():
            return []
        folder = self._key_of(directory)
        names = []
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            if entry.name.startswith(head):
                relative = folder + entry.name
                names.append(relative + "/" if entry.is_dir() else relative)
        return names

    def _key_of(self, directory: Path) -> str:
        """The key prefix of the objects in `directory` ('' for the mirror's base, else ending in '/')."""
        relative = os.path.relpath(directory, self.base).replace(os.sep, "/")
        return "" if relative == "." else relative + "/"

    def exists(self, key: str) -> bool:
        return self._inside(key).is_file()

    def fetch(self, key: str) -> Path:
        path = self._listed.get(key) or self._inside(key)
        if not path.is_file():
            raise StorageError(f"file {path} disappeared during the run")
        return path

    def release(self, path: Path) -> None:
        """Local files are read in place: nothing to clean up."""


def _local_info(relative: str, entry: os.DirEntry) -> ObjectInfo:
    stat = entry.stat()
    # No content hash on a local mirror: size and modification time change when a file is rewritten.
    return ObjectInfo(relative, stat.st_size, f"{stat.st_size:x}-{stat.st_mtime_ns:x}")


class Downloads:
    """Local copies of objects, fetched on a bounded pool ahead of use and kept until released.

    Nothing is deleted on the way out of a failed run: a load that dlt left pending still needs its
    files, and `ingest.land` clears them once nothing is pending.
    """

    def __init__(self, store: ObjectStore, workers: int = FETCH_WORKERS):
        self.store = store
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="fetch")
        self.futures: dict[str, Future] = {}

    def __enter__(self) -> Downloads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def start(self, files: Iterable) -> None:  # Iterable[discovery.DataFile]
        """Begin fetching every file of `files` not already fetched."""
        if isinstance(self.store, LocalStore):
            return  # read in place: a thread per file would cost more than the file does
        for datafile in files:
            if datafile.key not in self.futures:
                self.futures[datafile.key] = self.pool.submit(self.store.fetch, datafile.key)

    def path(self, datafile) -> Path:  # noqa: ANN001 - a discovery.DataFile
        """The local copy of `datafile`, waiting for its download (a failed download raises here)."""
        if isinstance(self.store, LocalStore):
            return self.store.fetch(datafile.key)
        self.start([datafile])
        return self.futures[datafile.key].result()

    def release(self, files: Iterable) -> None:
        """Delete the local copies of `files` (used, or no longer needed); cancel their pending downloads."""
        for datafile in files:
            future = self.futures.pop(datafile.key, None)
            if future is not None and not future.cancel() and future.exception() is None:
                self.store.release(future.result())


def open_store(courier: Courier, temp_dir: Path | None = None) -> ObjectStore:
    """The store a courier reads from."""
    return LocalStore(courier) if courier.local_path is not None else S3Store(courier, temp_dir)


def download_dir(project: Project, courier: Courier) -> Path:
    """Where a run's objects download to."""
    path = project.root / DOWNLOAD_DIR / courier.name
    path.mkdir(parents=True, exist_ok=True)
    return path


def clear_dir(directory: Path, prefix: str = "") -> None:
    """Delete what `directory` holds (only the entries whose names start with `prefix`)."""
    import shutil

    for path in directory.glob(f"{prefix}*"):
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
