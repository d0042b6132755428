"""`sources.yml`: the project's couriers, courier groups and warehouse, validated into a `Project`.

Config flows one way: the file and the environment variables it references are read here, once, into
frozen dataclasses. Elsewhere the environment is only passed on (to dbt, to dlt's run context, to
notify commands without the courier's credentials) or read for what it names itself (`feeds diff`
resolving references, fault injection in tests, a `notify` target's `${VAR}`, resolved when a
notification is sent so that an unset one breaks no command that reads this file).

Each part has its module: `couriers` (connection, credential, entities, load operations), `groups`,
`notify`, `freshness`, and `env` for `${VAR}` references.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from optimizely_courier.config.couriers import NAME, Courier, Credential, Entity, parse_courier
from optimizely_courier.config.env import env_references, expand, substitute
from optimizely_courier.config.freshness import Freshness
from optimizely_courier.config.groups import CourierGroup, GroupCourier, parse_group
from optimizely_courier.config.notify import NotifyTarget
from optimizely_courier.config.secrets import check_secrets_file
from optimizely_courier.config.yamlfile import LineDict, Section, load_yaml, parse_yaml
from optimizely_courier.errors import ConfigError
from optimizely_courier.settings import WAREHOUSE_ENV, WAREHOUSE_FILE

# Besides its own names, this module gives the config types other packages import from it (landing, runs).
__all__ = ["SOURCES_FILE", "ENGINES", "Engine", "Project", "load_project", "parse_sources", "parse_sources_text",
           "warehouse_path", "Courier", "Credential", "CourierGroup", "Entity", "Freshness", "GroupCourier",
           "NotifyTarget", "env_references", "substitute"]

SOURCES_FILE = "sources.yml"
Engine = Literal["duckdb", "spark", "snowflake", "bigquery", "databricks", "athena"]
ENGINES: tuple[Engine, ...] = get_args(Engine)
SOURCES_KEYS = ("couriers", "courier_groups", "warehouse")
WAREHOUSE_KEYS = ("type", "lake")


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
    top.check_keys(SOURCES_KEYS)
    couriers_section = top.section("couriers")
    if not couriers_section.data:
        raise top.error("couriers", "expected at least one courier")
    couriers = {}
    for name in couriers_section.data:
        if not isinstance(name, str) or not NAME.match(name):
            raise couriers_section.error(str(name), "courier names use letters, digits and _ and start "
                                                    "with a letter (the name becomes a pipeline and schema)")
        section = couriers_section.section(name)
        couriers[name] = parse_courier(name, section, root, env)
    groups_section = top.section("courier_groups", required=False)
    groups = {}
    for name in (groups_section.data if groups_section else {}):
        if not isinstance(name, str) or not NAME.match(name):
            raise groups_section.error(str(name), "group names use letters, digits and _ and start with a letter")
        groups[name] = parse_group(name, groups_section.section(name), couriers)
    engine, lake = _parse_warehouse(top.section("warehouse", required=False), root, env)
    return Project(root=root, couriers=couriers, warehouse=warehouse_path(root, env), groups=groups, engine=engine,
                   lake=lake, raw=doc)


def _parse_warehouse(s: Section | None, root: Path, env: Mapping[str, str]) -> tuple[Engine, str | None]:
    """The engine the tables live on; Spark reads raw Parquet from a lake location."""
    if s is None:
        return "duckdb", None
    s.check_keys(WAREHOUSE_KEYS)
    engine = s.choice("type", ENGINES, default="duckdb")
    lake = expand(s, "lake", env)
    if engine == "spark" and not lake:
        raise s.error("lake", "a spark warehouse needs `lake`: where raw Parquet lands (a path or s3://bucket/prefix)")
    if lake and "://" not in lake:
        lake = str((root / lake).resolve())
    return engine, lake


def warehouse_path(root: Path, env: Mapping[str, str]) -> Path:
    """`COURIER_DUCKDB` (relative to the project) or `<project>/warehouse.duckdb`; profiles.yml agrees."""
    return (root / env.get(WAREHOUSE_ENV, WAREHOUSE_FILE)).resolve()


def parse_sources_text(text: str, root: Path, env: Mapping[str, str] | None = None) -> Project:
    """Validate sources.yml text (used by tests and `courier validate` on unsaved text)."""
    path = root / SOURCES_FILE
    return parse_sources(parse_yaml(text, path), path, root, os.environ if env is None else env)
