"""`sources.yml`: couriers (connection, credential, entities list, load operations), validated.

Config flows one way: the file and the environment variables it references are read here, once, into
frozen dataclasses. Elsewhere the environment is only passed on (to dbt, to dlt's run context, to
notify commands without the courier's credentials) or read for what it names itself (`feeds diff`
resolving references, fault injection in tests, a `notify` target's `${VAR}`, resolved when a
notification is sent so that an unset one breaks no command that reads this file).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from optimizely_courier.config.patterns import FilePattern, PatternError
from optimizely_courier.config.schedule import (
    Cron,
    ScheduleError,
    longest_gap,
    longest_staleness,
    parse_duration,
    parse_zone,
)
from optimizely_courier.config.secrets import SECRET_KEYS, check_secrets_file, resolve_secrets
from optimizely_courier.config.yamlfile import LineDict, Section, line_of, load_yaml, parse_yaml
from optimizely_courier.errors import ConfigError
from optimizely_courier.settings import WAREHOUSE_ENV, WAREHOUSE_FILE

SOURCES_FILE = "sources.yml"
DEFAULT_REGION = "us-east-1"
DEFAULT_API_URL = "https://api.optimizely.com"

# The closed vocabularies of sources.yml: each a Literal type, and its values for validation.
CredentialType = Literal["iam-credential", "iam-role-to-role", "optimizely-token", "default"]
CREDENTIAL_TYPES: tuple[CredentialType, ...] = get_args(CredentialType)
Engine = Literal["duckdb", "spark", "snowflake", "bigquery", "databricks", "athena"]
ENGINES: tuple[Engine, ...] = get_args(Engine)
OnMissing = Literal["stop", "notify"]  # a group courier whose data is not ready past its wait
GroupStatus = Literal["active", "inactive"]
NotifyEvent = Literal["run_failed", "data_missing", "files_rejected", "rows_rejected", "new_columns", "freshness"]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = get_args(NotifyEvent)
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
# `notify: [{webhook: ..., events: [<NotifyEvent>, ...]}, {command: ..., env: [VAR, ...]}]` on a courier or group.
NOTIFY_KEYS = ("webhook", "command", "events", "env")
ENTITY_KEYS = ("object/type", "object/file-pattern", "object/ready-marker", "object/land-as",
               "object/optional", "object/schema")
# Schemas the project knows (`landing/e3.py`): a file that deviates from them is rejected, whichever
# file comes first. The E3 entities get theirs from their pattern (`type=decisions/`, `type=events/`).
KNOWN_SCHEMAS: tuple[KnownSchema, ...] = get_args(KnownSchema)
LAND_AS_KEYS = ("file/tag", "file/content-type")
GROUP_KEYS = ("schedule", "timezone", "status", "only_past_day", "use_timezone_for_dates", "couriers", "downstream",
              "poll", "notify")
GROUP_COURIER_KEYS = ("name", "wait", "offset", "on_missing")
DEFAULT_POLL = dt.timedelta(seconds=60)
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_REF = re.compile(r"\$\{(" + _ENV_NAME.pattern + r")\}")


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
class NotifyTarget:
    """Where an event goes: a Slack-compatible webhook (JSON POST) or a shell command."""

    webhook: str | None = field(default=None, repr=False)  # as written, `${VAR}` and all; may hold a token
    command: str | None = None
    events: tuple[NotifyEvent, ...] = NOTIFY_EVENTS
    label: str = ""  # where it is configured, for messages: `couriers.optimizely.notify[0]`
    env: tuple[str, ...] = ()  # a command's variables to pass although they look like credentials


LOAD_MARGIN = dt.timedelta(hours=1)  # a scheduled run's landing, after its wait, before a partition is late


@dataclass(frozen=True)
class Freshness:
    """How old a courier's newest landed partition may get before `dbt source freshness`,
    `courier status` and the `freshness` notification warn, and then call it an error."""

    warn_after: dt.timedelta = dt.timedelta(hours=48)
    error_after: dt.timedelta = dt.timedelta(hours=72)

    @classmethod
    def implied_by(cls, group: CourierGroup, member: GroupCourier) -> Freshness:
        """What a group's schedule implies: warn once the newest landed partition is older than it
        ever gets while every scheduled run lands its dates by the end of its `wait` (plus an hour to
        load them); an error one schedule interval (the longest gap between runs) later."""
        dates_zone = group.timezone if group.use_timezone_for_dates else None
        stale = longest_staleness(group.schedule, group.timezone, member.offset, dates_zone)
        warn = _whole_hours(stale + member.wait + LOAD_MARGIN)
        return cls(warn, _whole_hours(warn + longest_gap(group.schedule, group.timezone)))


def _whole_hours(delta: dt.timedelta) -> dt.timedelta:
    return dt.timedelta(hours=-(-delta // dt.timedelta(hours=1)))  # rounded up: dbt counts hours


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


@dataclass(frozen=True)
class GroupCourier:
    """One courier of a courier group, with how long to wait for its data and which dates to accept."""

    name: str
    wait: dt.timedelta = dt.timedelta(0)
    offset: dt.timedelta = dt.timedelta(hours=24)
    on_missing: OnMissing = "stop"


@dataclass(frozen=True)
class CourierGroup:
    """Couriers run as a unit on a cron schedule in a time zone, gating downstream commands."""

    name: str
    couriers: tuple[GroupCourier, ...]
    schedule: Cron | None = None  # None: run by hand only
    timezone: ZoneInfo = ZoneInfo("UTC")
    status: GroupStatus = "active"
    only_past_day: bool = False
    use_timezone_for_dates: bool = False
    downstream: tuple[str, ...] = ()
    poll: dt.timedelta = DEFAULT_POLL
    notify: tuple[NotifyTarget, ...] = ()

    @property
    def active(self) -> bool:
        return self.status == "active" and self.schedule is not None


@dataclass(frozen=True)
class Project:
    """A project directory: sources.yml, feeds/, models/ and the warehouse."""

    root: Path
    couriers: dict[str, Courier]
    warehouse: Path  # the DuckDB file: the embedded warehouse, and the run history on every engine
    groups: dict[str, CourierGroup] = field(default_factory=dict)
    engine: Engine = "duckdb"  # where raw and domain tables live
    lake: str | None = None  # spark: where raw Parquet lands (a local path or s3://...)
    raw: Any = None

    def courier(self, name: str) -> Courier:
        if name not in self.couriers:
            known = ", ".join(sorted(self.couriers)) or "none"
            raise ConfigError(self.root / SOURCES_FILE, f"couriers.{name}",
                              f"no such courier; configured couriers: {known}")
        return self.couriers[name]

    def secrets(self) -> list[str]:
        return [s for c in self.couriers.values() for s in c.credential.secrets()]

    def referenced_variables(self) -> set[str]:
        """Every variable sources.yml references as `${VAR}`: where its secrets come from."""
        def strings(value: Any) -> Iterator[str]:
            if isinstance(value, str):
                yield value
            elif isinstance(value, dict | list):
                for item in value.values() if isinstance(value, dict) else value:
                    yield from strings(item)

        return {name for text in strings(self.raw) for name in env_references(text)}

    def freshness(self, courier: str) -> Freshness:
        """The courier's own `freshness`, else the tightest its scheduled groups imply, else 48 h / 72 h."""
        explicit = self.courier(courier).freshness
        implied = [Freshness.implied_by(group, member) for group in self.groups.values() if group.schedule
                   for member in group.couriers if member.name == courier]
        return explicit or min(implied, key=lambda f: f.warn_after, default=Freshness())

    def group(self, name: str) -> CourierGroup:
        if name not in self.groups:
            known = ", ".join(sorted(self.groups)) or "none"
            raise ConfigError(self.root / SOURCES_FILE, f"courier_groups.{name}",
                              f"no such courier group; configured groups: {known}")
        return self.groups[name]


def load_project(root: Path, env: Mapping[str, str] | None = None) -> Project:
    """Read and validate `root/sources.yml` (and `root/.dlt/secrets.toml` when present).

    Args:
        root: the project directory.
        env: environment for `${VAR}` references; defaults to `os.environ`.

    Raises:
        ConfigError: naming the file, line and key path of the first problem.
    """
    env = os.environ if env is None else env
    path = root / SOURCES_FILE
    doc = load_yaml(path)
    check_secrets_file(root)
    return parse_sources(doc, path, root, env)


def parse_sources(doc: Any, path: Path, root: Path, env: Mapping[str, str]) -> Project:
    """Validate a parsed sources.yml document."""
    top = Section(doc if doc is not None else LineDict(), path)
    top.check_keys(("couriers", "courier_groups", "warehouse"))
    couriers_section = top.section("couriers")
    if not couriers_section.data:
        raise top.error("couriers", "expected at least one courier")
    couriers = {}
    for name in couriers_section.data:
        if not isinstance(name, str) or not NAME.match(name):
            raise couriers_section.error(str(name), "courier names use letters, digits and _ and start "
                                                    "with a letter (the name becomes a pipeline and schema)")
        section = couriers_section.section(name)
        couriers[name] = _parse_courier(name, section, root, env)
    groups_section = top.section("courier_groups", required=False)
    groups = {}
    for name in (groups_section.data if groups_section else {}):
        if not isinstance(name, str) or not NAME.match(name):
            raise groups_section.error(str(name), "group names use letters, digits and _ and start with a letter")
        groups[name] = _parse_group(name, groups_section.section(name), couriers)
    engine, lake = _parse_warehouse(top.section("warehouse", required=False), root, env)
    return Project(root=root, couriers=couriers, warehouse=warehouse_path(root, env), groups=groups, engine=engine,
                   lake=lake, raw=doc)


def _parse_warehouse(s: Section | None, root: Path, env: Mapping[str, str]) -> tuple[Engine, str | None]:
    """The engine the tables live on; Spark reads raw Parquet from a lake location."""
    if s is None:
        return "duckdb", None
    s.check_keys(("type", "lake"))
    engine = s.choice("type", ENGINES, default="duckdb")
    lake = _expand(s, "lake", env)
    if engine == "spark" and not lake:
        raise s.error("lake", "a spark warehouse needs `lake`: where raw Parquet lands (a path or s3://bucket/prefix)")
    if lake and "://" not in lake:
        lake = str((root / lake).resolve())
    return engine, lake


def _parse_notify(s: Section) -> tuple[NotifyTarget, ...]:
    targets = []
    for index, item in enumerate(s.items("notify", required=False)):
        n = Section(item, s.file, f"{s.key('notify')}[{index}]", line_of(s.raw("notify"), index))
        n.check_keys(NOTIFY_KEYS)
        if n.has("webhook") == n.has("command"):
            raise n.error("webhook", "give exactly one of `webhook: <url>` (write a secret URL as ${VAR}) or "
                                     "`command: <shell command>`")
        # `${VAR}` resolves when a notification is sent (`runs.notify`): an unset one breaks no command
        webhook = n.string("webhook") if n.has("webhook") else None
        if webhook is not None and not webhook.strip().startswith(("http://", "https://", "${")):
            raise n.error("webhook", "expected an http:// or https:// URL (or ${VAR} holding one)")
        events = n.raw("events", list(NOTIFY_EVENTS))
        if not isinstance(events, list) or not events or any(e not in NOTIFY_EVENTS for e in events):
            raise n.error("events", f"expected a list of events from: {', '.join(NOTIFY_EVENTS)}")
        passed = n.raw("env", [])
        if n.has("env") and webhook is not None:
            raise n.error("env", "only a `command` target takes `env` (the variables it needs)")
        if not isinstance(passed, list) or n.has("env") and not passed or not all(
                isinstance(name, str) and _ENV_NAME.fullmatch(name) for name in passed):
            raise n.error("env", "expected a list of environment variable names, such as [AWS_PROFILE]")
        targets.append(NotifyTarget(webhook=webhook, command=n.string("command") if n.has("command") else None,
                                    events=tuple(events), label=n.path, env=tuple(passed)))
    return tuple(targets)


def _parse_group(name: str, s: Section, couriers: dict[str, Courier]) -> CourierGroup:
    s.check_keys(GROUP_KEYS)
    members = []
    for index, item in enumerate(s.items("couriers")):
        c = Section(item, s.file, f"{s.key('couriers')}[{index}]", line_of(s.raw("couriers"), index))
        c.check_keys(GROUP_COURIER_KEYS)
        courier = c.string("name")
        if courier not in couriers:
            raise c.error("name", f"no courier `{courier}` in couriers (configured: {', '.join(sorted(couriers))})")
        members.append(GroupCourier(courier, _timed(c, "wait", "0", parse_duration),
                                    _timed(c, "offset", "24h", parse_duration),
                                    c.choice("on_missing", get_args(OnMissing), default="stop")))
    if not members:
        raise s.error("couriers", "expected at least one courier")
    downstream = s.items("downstream", required=False)
    if not all(isinstance(command, str) and command.strip() for command in downstream):
        raise s.error("downstream", "expected a list of shell commands, such as [dbt build]")
    return CourierGroup(
        name=name, couriers=tuple(members),
        schedule=_timed(s, "schedule", None, Cron.parse),
        timezone=_timed(s, "timezone", "UTC", parse_zone),
        status=s.choice("status", get_args(GroupStatus), default="active"),
        only_past_day=s.boolean("only_past_day", False),
        use_timezone_for_dates=s.boolean("use_timezone_for_dates", False),
        downstream=tuple(downstream),
        poll=_timed(s, "poll", "60s", parse_duration),
        notify=_parse_notify(s),
    )


def _timed(s: Section, key: str, default: Any, parse: Any) -> Any:
    """A schedule, zone or duration value, parsed; errors name the key."""
    value = s.raw(key, default)
    if value is None:
        return None
    try:
        return parse(value)
    except ScheduleError as exc:
        raise s.error(key, str(exc)) from None


def _parse_courier(name: str, s: Section, root: Path, env: Mapping[str, str]) -> Courier:
    s.check_keys(COURIER_KEYS)
    bucket = _expand(s, "bucket", env)
    local_path = _expand(s, "local_path", env)
    credential_section = s.section("credential", required=False)
    # The token flow's response names the bucket, so such a courier may leave it out.
    token_flow = credential_section is not None and credential_section.raw("type") == "optimizely-token"
    if bucket and local_path or not (bucket or local_path or token_flow):
        raise s.error("", "set exactly one of `bucket` (S3) or `local_path` (a local mirror of the bucket)")
    endpoint_url = _expand(s, "endpoint_url", env)
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
        prefix=(_expand(s, "prefix", env) or "").strip("/"),
        region=_expand(s, "region", env) or DEFAULT_REGION,
        endpoint_url=endpoint_url,
        credential=credential,
        entities=_parse_entities(s),
        load_operations=_parse_load_operations(s),
        notify=_parse_notify(s),
        freshness=_parse_freshness(s.section("freshness", required=False)),
    )


def _parse_freshness(s: Section | None) -> Freshness | None:
    if s is None:
        return None
    s.check_keys(("warn_after", "error_after"))
    warn = _timed(s, "warn_after", None, parse_duration)
    error = _timed(s, "error_after", None, parse_duration)
    if warn is None or error is None:
        raise s.error("", "set both `warn_after` and `error_after`, such as {warn_after: 36h, error_after: 72h}")
    if error <= warn:
        raise s.error("error_after", "must be longer than `warn_after`")
    return Freshness(_whole_hours(warn), _whole_hours(error))


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
        if key in SECRET_KEYS and s.has(key) and not _is_env_ref(s.raw(key)):
            raise s.error(key, "a literal secret is refused in sources.yml; write `${VAR}` and set VAR in "
                               "the environment, or put it in .dlt/secrets.toml under "
                               f"[{parent.path}.credential]")
        value = _expand(s, key, env)
        if value is None and key in secrets:
            value = secrets[key]
        if value is not None:
            values[key] = value
    unresolved = None
    for key in REQUIRED_CREDENTIAL_KEYS[kind]:
        if key not in values:
            where = " (or .dlt/secrets.toml)" if key in SECRET_KEYS else ""
            reference = _env_name(s.raw(key))
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


def _is_env_ref(value: Any) -> bool:
    return isinstance(value, str) and _ENV_REF.fullmatch(value.strip()) is not None


def _env_name(value: Any) -> str | None:
    match = _ENV_REF.fullmatch(value.strip()) if isinstance(value, str) else None
    return match.group(1) if match else None


def _expand(s: Section, key: str, env: Mapping[str, str]) -> str | None:
    """A string value with `${VAR}` replaced; an unset variable makes the whole value absent."""
    if s.raw(key) is None:
        return None
    value = s.string(key)
    missing = [name for name in env_references(value) if not env.get(name)]
    if missing:
        if _is_env_ref(value):
            return None
        raise s.error(key, f"environment variable {missing[0]} is not set")
    return substitute(value, env)


def env_references(text: str) -> list[str]:
    """The names `text` references as `${VAR}`, in order."""
    return [match.group(1) for match in _ENV_REF.finditer(text)]


def substitute(text: str, env: Mapping[str, str]) -> str:
    """`text` with each `${VAR}` replaced by its value (every one must be set), stripped."""
    return _ENV_REF.sub(lambda m: env[m.group(1)], text).strip()


def warehouse_path(root: Path, env: Mapping[str, str]) -> Path:
    """`COURIER_DUCKDB` (relative to the project) or `<project>/warehouse.duckdb`; profiles.yml agrees."""
    return (root / env.get(WAREHOUSE_ENV, WAREHOUSE_FILE)).resolve()


def parse_sources_text(text: str, root: Path, env: Mapping[str, str] | None = None) -> Project:
    """Validate sources.yml text (used by tests and `courier validate` on unsaved text)."""
    path = root / SOURCES_FILE
    return parse_sources(parse_yaml(text, path), path, root, os.environ if env is None else env)
