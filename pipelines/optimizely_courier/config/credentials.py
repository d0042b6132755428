"""Credentials for a courier: boto3 sessions for each credential type, refreshed before expiry.

- `iam-credential`: static keys.
- `iam-role-to-role`: STS AssumeRole with an external id, on top of keys or the default chain.
- `optimizely-token`: a personal access token exchanged at Optimizely's export credentials API.
- `default`: boto3's default chain or a named profile.

Temporary credentials are wrapped in botocore's RefreshableCredentials, which refreshes them
ahead of their expiry, so a run that outlives one session keeps working.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

import boto3
import botocore.session
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from optimizely_courier.config.couriers import Courier, Credential
from optimizely_courier.errors import CredentialError

ROLE_SESSION_NAME = "optimizely-courier"
ROLE_SESSION_SECONDS = 3600
TOKEN_DURATION = "1h"
TOKEN_API_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Connection:
    """An authenticated boto3 session plus where to read, once the credential has been resolved."""

    session: boto3.Session
    bucket: str
    prefix: str
    identity: str  # who we are, for error messages: never a secret


def connect(courier: Courier) -> Connection:
    """Resolve a courier's credential into a session, bucket and prefix.

    Raises:
        CredentialError: when the token API, STS or the profile refuses.
    """
    cred = courier.credential
    if cred.unresolved:
        raise CredentialError(cred.unresolved)
    if cred.type == "iam-credential":
        session = boto3.Session(aws_access_key_id=cred.access_key_id, aws_secret_access_key=cred.secret_access_key,
                                aws_session_token=cred.session_token, region_name=courier.region)
        return Connection(session, courier.bucket or "", courier.prefix, f"access key {cred.access_key_id}")
    if cred.type == "iam-role-to-role":
        return _assume_role(courier, cred)
    if cred.type == "optimizely-token":
        return _token_flow(courier, cred)
    try:
        session = boto3.Session(profile_name=cred.profile, region_name=courier.region)
    except BotoCoreError as exc:
        raise CredentialError(f"courier {courier.name}: AWS profile {cred.profile!r}: {exc}") from None
    who = f"profile {cred.profile}" if cred.profile else "the default AWS credential chain"
    return Connection(session, courier.bucket or "", courier.prefix, who)


def _refreshable_session(fetch: Callable[[], dict], method: str, region: str) -> boto3.Session:
    credentials = RefreshableCredentials.create_from_metadata(metadata=fetch(), refresh_using=fetch, method=method)
    core = botocore.session.get_session()
    core._credentials = credentials  # botocore has no public setter for refreshable credentials
    core.set_config_variable("region", region)
    return boto3.Session(botocore_session=core)


def _assume_role(courier: Courier, cred: Credential) -> Connection:
    base = boto3.Session(aws_access_key_id=cred.access_key_id, aws_secret_access_key=cred.secret_access_key,
                         aws_session_token=cred.session_token, region_name=courier.region)
    sts = base.client("sts", endpoint_url=courier.endpoint_url, region_name=courier.region)

    def fetch() -> dict:
        try:
            response = sts.assume_role(RoleArn=cred.role_arn, RoleSessionName=ROLE_SESSION_NAME,
                                       ExternalId=cred.external_id, DurationSeconds=ROLE_SESSION_SECONDS)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise CredentialError(f"courier {courier.name}: cannot assume role {cred.role_arn} with the configured "
                                  f"external id: {error.get('Code')}: {error.get('Message')}") from None
        except BotoCoreError as exc:
            raise CredentialError(f"courier {courier.name}: cannot assume role {cred.role_arn}: {exc}") from None
        keys = response["Credentials"]
        return {"access_key": keys["AccessKeyId"], "secret_key": keys["SecretAccessKey"],
                "token": keys["SessionToken"], "expiry_time": keys["Expiration"].isoformat()}

    session = _refreshable_session(fetch, "sts-assume-role", courier.region)
    return Connection(session, courier.bucket or "", courier.prefix, f"role {cred.role_arn}")


def _token_flow(courier: Courier, cred: Credential) -> Connection:
    url = f"{cred.api_url.rstrip('/')}/v2/export/credentials?duration={TOKEN_DURATION}"
    s3_path: dict[str, str] = {}

    def fetch() -> dict:
        body = _get_export_credentials(courier.name, url, cred.token or "")
        try:
            keys = body["credentials"]
            expiry = dt.datetime.fromtimestamp(int(keys["expiration"]) / 1000, tz=dt.UTC)
            s3_path["value"] = body.get("s3Path", "")
            return {"access_key": keys["accessKeyId"], "secret_key": keys["secretAccessKey"],
                    "token": keys["sessionToken"], "expiry_time": expiry.isoformat()}
        except (KeyError, TypeError, ValueError):
            raise CredentialError(f"courier {courier.name}: unexpected response from {url}: expected "
                                  "credentials.accessKeyId/secretAccessKey/sessionToken/expiration") from None

    session = _refreshable_session(fetch, "optimizely-token", courier.region)
    bucket, prefix = courier.bucket, courier.prefix
    if not bucket:
        parsed = urlparse(s3_path.get("value", ""))
        if parsed.scheme != "s3" or not parsed.netloc:
            raise CredentialError(f"courier {courier.name}: set `bucket`: the credentials API at {url} returned "
                                  f"no usable s3Path")
        bucket, prefix = parsed.netloc, prefix or parsed.path.strip("/")
    return Connection(session, bucket, prefix, f"Optimizely token credentials from {cred.api_url}")


def _get_export_credentials(courier: str, url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TOKEN_API_TIMEOUT_SECONDS) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        hint = " (check the personal access token)" if exc.code in (401, 403) else ""
        raise CredentialError(f"courier {courier}: credentials API {url} answered HTTP {exc.code}{hint}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise CredentialError(f"courier {courier}: cannot reach credentials API {url}: {exc}") from None
    except json.JSONDecodeError:
        raise CredentialError(f"courier {courier}: credentials API {url} did not answer JSON") from None
