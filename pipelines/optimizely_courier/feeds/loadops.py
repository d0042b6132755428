"""Load operations: per feed id, what a courier run does to that feed's domain table.

    load_operations:
      df-7k2m9q: [{type: truncate}, {type: load, file: decisions}]
      df-3p8x1w: [{type: load, file: conversions}]

`{}` pulls and lands files only (sample mode). `truncate` always runs first for its feed, wherever
it appears. A feed id with no feed in `feeds/` still lets the files land, then fails the run with
the exact message users know:

    Error running load-operations task
    Cannot find required feeds: "df-xxxxxx"
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimizely_courier.config.couriers import Courier
from optimizely_courier.config.sources import SOURCES_FILE, Project
from optimizely_courier.config.yamlfile import line_of
from optimizely_courier.errors import ConfigError, MissingFeedsError
from optimizely_courier.feeds.feed import Feed, declared_ids

OPERATION_TYPES = ("truncate", "load")
OPERATION_KEYS = {"truncate": ("type",), "load": ("type", "file")}  # the keys each operation takes


@dataclass(frozen=True)
class FeedOperations:
    """What one run does to one feed: truncate first or not, then load these file tags."""

    feed_id: str
    truncate: bool
    tags: tuple[str, ...]


def parse_operations(courier: Courier, sources: Path) -> list[FeedOperations]:
    """Validate a courier's load operations (YAML or JSON string) into per-feed operations.

    Raises:
        ConfigError: naming sources.yml, the key path and what is wrong.
    """
    raw = courier.load_operations
    key = f"couriers.{courier.name}.load_operations"
    if not isinstance(raw, dict):
        raise ConfigError(sources, key, "expected a mapping of feed id to a list of operations, or {}",
                          line_of(raw))
    operations = []
    for feed_id, items in raw.items():
        where = f"{key}.{feed_id}"
        line = line_of(raw, feed_id)
        if not isinstance(items, list) or not items:
            raise ConfigError(sources, where, 'expected a list of operations such as [{type: load, file: <tag>}]',
                              line)
        truncate, tags = False, []
        for index, item in enumerate(items):
            kind, tag = _operation(item, sources, f"{where}[{index}]", line_of(items, index) or line)
            truncate = truncate or kind == "truncate"
            if tag is not None and tag not in tags:
                tags.append(tag)
        operations.append(FeedOperations(str(feed_id), truncate, tuple(tags)))
    return operations


def _operation(item: Any, sources: Path, where: str, line: int) -> tuple[str, str | None]:
    if not isinstance(item, dict) or "type" not in item:
        raise ConfigError(sources, where, 'expected {type: truncate} or {type: load, file: <tag>}', line)
    kind = item["type"]
    if kind not in OPERATION_TYPES:
        raise ConfigError(sources, f"{where}.type", f"expected one of {', '.join(OPERATION_TYPES)}; got {kind!r}",
                          line)
    allowed = set(OPERATION_KEYS[kind])
    extra = sorted(set(item) - allowed)
    if extra:
        raise ConfigError(sources, f"{where}.{extra[0]}", f"a {kind} operation takes no `{extra[0]}`", line)
    if kind == "truncate":
        return kind, None
    tag = item.get("file")
    if not isinstance(tag, str) or not tag:
        raise ConfigError(sources, f"{where}.file", "a load operation names the file tag to load", line)
    return kind, tag


def resolve(operations: list[FeedOperations], feeds: list[Feed]) -> list[tuple[Feed, FeedOperations]]:
    """Pair each operation with its feed.

    Raises:
        MissingFeedsError: listing every feed id that has no feed.
    """
    by_id = {feed.id: feed for feed in feeds}
    missing = [op.feed_id for op in operations if op.feed_id not in by_id]
    if missing:
        raise MissingFeedsError(missing)
    return [(by_id[op.feed_id], op) for op in operations]


def check_project(project: Project, feeds: list[Feed]) -> list[ConfigError]:
    """Every inconsistency between sources.yml and feeds/, without touching S3.

    Checks: malformed load operations, operations naming a tag no entity lands or a tag their feed
    does not read, operations naming missing feeds, and feeds whose courier or file tag no courier lands.
    """
    sources = project.root / SOURCES_FILE
    problems: list[ConfigError] = []
    by_id = {feed.id: feed for feed in feeds}
    declared = declared_ids(project.root)  # feeds with problems of their own still have their ids
    for courier in project.couriers.values():
        key = f"couriers.{courier.name}.load_operations"
        tags = {entity.tag for entity in courier.entities}
        try:
            operations = parse_operations(courier, sources)
        except ConfigError as exc:
            problems.append(exc)
            continue
        raw = courier.load_operations
        for op in operations:
            line = line_of(raw, op.feed_id)
            feed = by_id.get(op.feed_id)
            if feed is None and op.feed_id not in declared:
                problems.append(ConfigError(sources, f"{key}.{op.feed_id}", "no feed in feeds/ has this id", line))
            for tag in op.tags:
                if tag not in tags:
                    problems.append(ConfigError(sources, f"{key}.{op.feed_id}", f"loads file tag `{tag}`, which no "
                                                f"entity of courier {courier.name} lands "
                                                f"(tags: {', '.join(sorted(tags))})", line))
                elif feed is not None and (feed.courier != courier.name or feed.tag != tag):
                    problems.append(ConfigError(sources, f"{key}.{op.feed_id}", f"loads `{courier.name}/{tag}`, but "
                                                f"{feed.path} reads `{feed.courier}/{feed.tag}`", line))
    for feed in feeds:
        courier = project.couriers.get(feed.courier)
        if courier is None:
            problems.append(feed.error("courier", f"no courier `{feed.courier}` in sources.yml"))
        elif feed.tag not in {entity.tag for entity in courier.entities}:
            problems.append(feed.error("tag", f"courier {feed.courier} lands no file tag `{feed.tag}`"))
    return problems
