"""An S3 API server on loopback (moto's), with KMS and STS, for `make demo`, tests and benchmarks."""

from __future__ import annotations

import logging
from typing import Any

import boto3

REGION = "us-east-1"
# moto accepts any keys; these stand in for a user's base credentials.
TEST_KEYS = {"aws_access_key_id": "AKIDEXAMPLELOCAL", "aws_secret_access_key": "local-secret-not-real"}


class LocalS3:
    """moto's threaded server on 127.0.0.1 and a free port.

    Example:
        with LocalS3() as s3:
            s3.client("s3").create_bucket(Bucket="b")
    """

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""

    def start(self) -> LocalS3:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=REGION, **TEST_KEYS)

    def create_bucket(self, bucket: str) -> str:
        """Create a bucket and a KMS key for its objects; return the key id."""
        self.client("s3").create_bucket(Bucket=bucket)
        return self.client("kms").create_key(Description=f"export key for {bucket}")["KeyMetadata"]["KeyId"]
