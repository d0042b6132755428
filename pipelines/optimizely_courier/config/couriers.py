"""Couriers (`couriers:` in sources.yml): one configured S3 source each, with its connection,
credential, entities list, load operations, notification targets and freshness."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from optimizely_courier.config.env import env_name, expand, is_env_ref
from optimizely_courier.config.freshness import Freshness, parse_freshness
from optimizely_courier.config.notify import NotifyTarget, parse_notify
from optimizely_courier.config.patterns import FilePattern, PatternError
from optimizely_courier.config.secrets import SECRET_KEYS, resolve_secrets
from optimizely_courier.config.yamlfile import Section

DEFAULT_REGION = "us-east-1"
DEFAULT_API_URL = "https://api.optimizely.com"
# Courier, group and tag names: each becomes a pipeline, a schema or a table name.
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*\Z")

# The closed vocabularies of a courier: each a Literal type, and its values for validation.
CredentialType = Literal["iam-credential", "iam-role-to-role", "optimizely-token", "default"]
CREDENTIAL_TYPES: tuple[CredentialType, ...] = get_args(CredentialType)
KnownSchema = Literal["optimizely-decisions", "optimizely-events", "none"]
_BASE_KEYS = ("access_key_id", "secret_access_key", "session_token")
CREDENTIAL_KEYS = {
    "iam-credential": _BASE_KEYS,
    "iam-role-to-role": ("role_arn", "external_id", *_BASE_KEYS),
    "optimizely-token": ("token", "api_url"),
    "default": ("profile",),
}
REQUIRED_CREDENTIAL_KEYS = {
    "iam-credential": ("access_key_id", "secret_access_key"),
    "iam-role-to-role": ("role_arn", "external_id"),
    "optimizely-token": ("token",),
    "default": (),
}
CONTENT_TYPES = ("application/x-parquet",)
COURIER_KEYS = ("bucket", "local_path", "prefix", "region", "endpoint_url", "credential", "entities",
                "load_operations", "notify", "freshness")
ENTITY_KEYS = ("object/type", "object/file-pattern", "object/ready-marker", "object/land-as",
               "object/optional", "object/schema")
# Schemas the project knows (`landing/e3.py`): a file that deviates from them is rejected, whichever
# file comes first. The E3 entities get theirs from their pattern (`type=decisions/`, `type=events/`).
KNOWN_SCHEMAS: tuple[KnownSchema, ...] = get_args(KnownSchema)
LAND_AS_KEYS = ("file/tag", "file/content-type")


@dataclass(frozen=True)
class Credential:
    """How a courier authenticates to S3. Secret fields never appear in repr."""

    type: CredentialType = "default"
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    role_arn: str | None = None
    external_id: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL
    profile: str | None = None
    # Set when a required value comes from an unset environment variable: commands that do not
    # connect (validate, history, group next, ...) still work; connecting fails with this message.
    unresolved: str | None = None

    def secrets(self) -> list[str]:
        """Every secret value this credential holds, for scrubbing output."""
        return [v for v in (self.secret_access_key, self.session_token, self.token, self.external_id) if v]


@dataclass(frozen=True)
class Entity:
    """One entry of a courier's entities list: which files to pull and how to land them."""

    tag: str
    pattern: FilePattern
    ready_marker: FilePattern | None = None
    content_type: str = "application/x-parquet"
    optional: bool = False
    schema: KnownSchema | None = None


@dataclass(frozen=True)
class Courier:
    """One configured S3 source (or local mirror of one)."""

    name: str
    entities: tuple[Entity, ...]
    bucket: str | None = None
    local_path: Path | None = None
    prefix: str = ""
    region: str = DEFAULT_REGION
    endpoint_url: str | None = None
    credential: Credential = Credential()
    load_operations: Any = field(default_factory=dict)
    notify: tuple[NotifyTarget, ...] = ()
    freshness: Freshness | None = None  # set in sources.yml; else implied by its groups' schedules

    @property
    def dataset(self) -> str:
        """The raw dataset (DuckDB schema) this courier lands into."""
        return f"raw_{self.name}"

    def entity(self, tag: str) -> Entity:
        return next(e for e in self.entities if e.tag == tag)

    @property
    def location(self) -> str:
        """Where the courier reads from, for messages."""
        if self.local_path is not None:
            return str(self.local_path)
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def parse_courier(name: str, s: Section, root: Path, env: Mapping[str, str]) -> Courier:
    """One courier of `couriers`, its `${VAR}` references resolved from `env`."""
    s.check_keys(COURIER_KEYS)
    bucket = expand(s, "bucket", env)
    local_path = expand(s, "local_path", env)
    credential_section = s.section("credential", required=False)
    # The token flow's response names the bucket, so such a courier may leave it out.
    token_flow = credential_section is not None and credential_section.raw("type") == "optimizely-token"
    if bucket and local_path or not (bucket or local_path or token_flow):
        raise s.error("", "set exactly one of `bucket` (S3) or `local_path` (a local mirror of the bucket)")
    endpoint_url = expand(s, "endpoint_url", env)
    if endpoint_url and not re.match(r"^https?://", endpoint_url):
        raise s.error("endpoint_url", f"expected an http:// or https:// URL, got {endpoint_url!r}")
    credential = _parse_credential(credential_section, s, env, root, name)
    if local_path and credential_section is not None:
        raise s.error("credential", "a `local_path` courier reads local files and takes no credential")
    if local_path and "\x00" in local_path:  # no file system takes one: the OS call would raise
        raise s.error("local_path", "a path cannot hold a NUL character")
    return Courier(
        name=name,
        bucket=bucket,
        local_path=(root / local_path).resolve() if local_path else None,
        prefix=(expand(s, "prefix", env) or "").strip("/"),
        region=expand(s, "region", env) or DEFAULT_REGION,
        endpoint_url=endpoint_url,
        credential=credential,
        entities=_parse_entities(s),
        load_operations=_parse_load_operations(s),
        notify=parse_notify(s),
        freshness=parse_freshness(s.section("freshness", required=False)),
    )


def _parse_credential(s: Section | None, parent: Section, env: Mapping[str, str], root: Path,
                      courier: str) -> Credential:
    if s is None:
        return Credential()
    kind = s.choice("type", CREDENTIAL_TYPES)
    allowed = CREDENTIAL_KEYS[kind]
    s.check_keys(("type", *allowed))
    # secrets left out of sources.yml come from dlt's config (COURIERS__<NAME>__CREDENTIAL__*, .dlt/secrets.toml)
    left_out = any(key in SECRET_KEYS and not s.has(key) for key in allowed)
    secrets = resolve_secrets(root, courier) if left_out else {}
    values: dict[str, Any] = {}
    for key in allowed:
        if key in SECRET_KEYS and s.has(key) and not is_env_ref(s.raw(key)):
            raise s.error(key, "a literal secret is refused in sources.yml; write `${VAR}` and set VAR in "
                               "the environment, or put it in .dlt/secrets.toml under "
                               f"[{parent.path}.credential]")
        value = expand(s, key, env)
        if value is None and key in secrets:
            value = secrets[key]
        if value is not None:
            values[key] = value
    unresolved = None
    for key in REQUIRED_CREDENTIAL_KEYS[kind]:
        if key not in values:
            where = " (or .dlt/secrets.toml)" if key in SECRET_KEYS else ""
            reference = env_name(s.raw(key))
            if not reference:
                raise s.error(key, f"is required for type {kind}{where}")
            unresolved = unresolved or str(s.error(key, f"environment variable {reference} is not set{where}"))
    return Credential(type=kind, unresolved=unresolved, **values)


def _parse_entities(s: Section) -> tuple[Entity, ...]:
    items = s.items("entities")
    if not items:
        raise s.error("entities", "expected at least one entity")
    entities: list[Entity] = []
    for index, item in enumerate(items):
        e = Section(item, s.file, f"{s.key('entities')}[{index}]", getattr(items, "lines", [0])[index])
        e.check_keys(ENTITY_KEYS)
        e.choice("object/type", ("file",), default="file")
        land = e.section("object/land-as")
        land.check_keys(LAND_AS_KEYS)
        tag = land.string("file/tag")
        if not NAME.match(tag):
            raise land.error("file/tag", f"file tags use letters, digits and _ and start with a letter; got {tag!r}")
        if any(other.tag == tag for other in entities):
            raise land.error("file/tag", f"tag {tag!r} is landed by another entity of this courier")
        content_type = land.choice("file/content-type", CONTENT_TYPES, default=CONTENT_TYPES[0])
        pattern = _pattern(e, "object/file-pattern")
        if pattern.date_tokens != {"yyyy", "MM", "dd"}:
            raise e.error("object/file-pattern", "a pattern needs the date tokens yyyy, MM and dd (outside "
                                                 "quotes) so runs can select days")
        marker = _pattern(e, "object/ready-marker") if e.has("object/ready-marker") else None
        if marker is not None and marker.has_wildcards:
            raise e.error("object/ready-marker", "a ready marker names one object: no `*` wildcards")
        schema = e.choice("object/schema", KNOWN_SCHEMAS, default=_e3_schema(pattern))
        entities.append(Entity(tag=tag, pattern=pattern, ready_marker=marker, content_type=content_type,
                               optional=e.boolean("object/optional", False),
                               schema=None if schema == "none" else schema))
    return tuple(entities)


def _e3_schema(pattern: FilePattern) -> str:
    """The known schema an E3 pattern implies: `type=decisions/...` or `type=events/...`."""
    text = pattern.text.lstrip("'/")
    for kind, schema in (("type=decisions/", "optimizely-decisions"), ("type=events/", "optimizely-events")):
        if text.startswith(kind):
            return schema
    return "none"


def _parse_load_operations(s: Section) -> Any:
    """Load operations as given (YAML or a JSON string); their validation lives with the run logic."""
    value = s.raw("load_operations", {})
    if isinstance(value, str):
        try:
            return json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise s.error("load_operations", f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    return {} if value is None else value


def _pattern(s: Section, key: str) -> FilePattern:
    text = s.string(key)
    try:
        return FilePattern.parse(text)
    except PatternError as exc:
        raise s.error(key, f"{exc} in {text!r}") from None
