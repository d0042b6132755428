"""The feed compiler: feeds/*.yml -> dbt models (SQL + YAML) that build the domain tables.

Per feed it writes
    models/staging/<source>/stg_<model>.sql      a view: raw rows extracted, cast, keyed, checked
    models/domain/<source>/<model>.sql           the domain table "<Source>:<Feed>", upserted by _pk
    models/rejected/<source>/<model>__rejected.sql rows that failed a cast or a required value
    a YAML file beside each: descriptions, contract types, semantic tags, tests
and, for all feeds, models/staging/__sources.yml and (when a feed has stitch: true)
models/stitch/stitch_input.sql. Every file starts with a header naming its feed; files with that
header that no feed produces any more are deleted, so `--check` catches them too.

The SQL comes from `feeds.sql` (templates in `templates/`), the YAML from `feeds.docs`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from optimizely_courier.config.freshness import Freshness
from optimizely_courier.config.sources import Project, load_project
from optimizely_courier.errors import ConfigError
from optimizely_courier.feeds.docs import (
    generated_yaml,
    model_yaml,
    rejected_yaml,
    sources_yaml,
    staging_yaml,
    stitch_yaml,
    threshold_test_name,
)
from optimizely_courier.feeds.feed import Feed
from optimizely_courier.feeds.sql import (
    definition,
    domain_sql,
    rejected_sql,
    staging_sql,
    stitch_sql,
    template_environment,
)

# Besides its own names, this module gives what runs/ and experiments/ import from it.
__all__ = ["MODELS_DIR", "SOURCES_YAML", "Output", "CompileReport", "compile_feeds", "write_models", "is_generated",
           "definition", "generated_yaml", "template_environment", "threshold_test_name"]

MODELS_DIR = "models"
SOURCES_YAML = f"{MODELS_DIR}/staging/__sources.yml"
GENERATED_MARKS = ("-- generated from feeds", "# generated from feeds", "-- generated from experiments",
                   "# generated from experiments")


@dataclass(frozen=True)
class Output:
    path: str  # relative to the project
    text: str


def compile_feeds(feeds: list[Feed], freshness: Mapping[str, Freshness] | None = None) -> list[Output]:
    """Every generated file for `feeds`, in a stable order (`freshness`: per courier, else the default)."""
    outputs: list[Output] = []
    for feed in sorted(feeds, key=lambda f: f.path):
        folder = feed.source.lower()
        outputs += [
            Output(f"{MODELS_DIR}/staging/{folder}/stg_{feed.model_name}.sql", staging_sql(feed)),
            Output(f"{MODELS_DIR}/domain/{folder}/{feed.model_name}.sql", domain_sql(feed)),
            Output(f"{MODELS_DIR}/rejected/{folder}/{feed.model_name}__rejected.sql", rejected_sql(feed)),
            Output(f"{MODELS_DIR}/staging/{folder}/stg_{feed.model_name}.yml", staging_yaml(feed)),
            Output(f"{MODELS_DIR}/domain/{folder}/{feed.model_name}.yml", model_yaml(feed)),
            Output(f"{MODELS_DIR}/rejected/{folder}/{feed.model_name}__rejected.yml", rejected_yaml(feed)),
        ]
    if feeds:
        outputs.append(Output(SOURCES_YAML, sources_yaml(feeds, freshness or {})))
    stitched = [f for f in feeds if f.stitch]
    if stitched:
        outputs.append(Output(f"{MODELS_DIR}/stitch/stitch_input.sql", stitch_sql(stitched)))
        outputs.append(Output(f"{MODELS_DIR}/stitch/stitch_input.yml", stitch_yaml(stitched)))
    return outputs


def is_generated(path: Path) -> bool:
    try:
        with path.open(encoding="utf-8") as handle:
            return handle.readline().startswith(GENERATED_MARKS)
    except (OSError, UnicodeDecodeError):
        return False


@dataclass
class CompileReport:
    written: list[str]
    removed: list[str]
    stale: list[str]  # --check: files that differ, are missing, or should be removed


def write_models(root: Path, feeds: list[Feed], check: bool = False, extra: Sequence[Output] = (),
                 project: Project | None = None) -> CompileReport:
    """Write (or with `check`, only compare) the generated models of `feeds`, and `extra` ones (the
    experiments'), under `root`; delete generated files neither produces. `project` is the loaded
    sources.yml when the caller has it (else it is read here, for the couriers' freshness)."""
    outputs = [*compile_feeds(feeds, _project_freshness(root, project)), *extra]
    wanted = {o.path for o in outputs}
    report = CompileReport([], [], [])
    for output in outputs:
        path = root / output.path
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == output.text:
            continue
        if check:
            report.stale.append(output.path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(output.text, encoding="utf-8")
        report.written.append(output.path)
    for path in _generated_files(root):
        relative = path.relative_to(root).as_posix()
        if relative in wanted:
            continue
        if check:
            report.stale.append(relative)
        else:
            path.unlink()
            report.removed.append(relative)
    return report


def _generated_files(root: Path) -> Iterable[Path]:
    models = root / MODELS_DIR
    if not models.is_dir():
        return []
    return sorted(p for p in models.rglob("*") if p.suffix in (".sql", ".yml") and is_generated(p))


def _project_freshness(root: Path, project: Project | None) -> dict[str, Freshness]:
    """Each courier's freshness thresholds: from `project`, or else read from sources.yml. They depend
    on no environment variable (one sources.yml references may be unset: compiling connects to
    nothing). Without a valid sources.yml (which `courier validate` reports), every courier gets the
    default."""
    if project is None:
        try:
            project = load_project(root, dict(os.environ))
        except ConfigError:
            return {}
    return {name: project.freshness(name) for name in project.couriers}
