"""Feeds: YAML files in `feeds/` that describe one domain table each, loaded and validated.

Every problem names the feed file, line and key; validation collects all problems of all feeds
(`courier feeds validate` prints them all), while commands that need valid feeds stop at the first.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from optimizely_courier.config.yamlfile import LineList, Section, definition_path, load_yaml
from optimizely_courier.errors import ConfigError, FeedErrors
from optimizely_courier.feeds.semantics import ONCE_PER_FEED, REQUIRED_TYPE, check_tag, is_pii

FEEDS_DIR = "feeds"
TYPES = ("Boolean", "Date", "Datetime", "Decimal", "Float", "Integer", "String")
FEED_KEYS = ("id", "source", "name", "description", "courier", "tag", "primary_key", "last_updated", "stitch",
             "error_threshold", "unnest", "columns")
# Keys renamed since feeds were first written: the old spelling still works, with a warning (`Feed.deprecations`).
RENAMED_KEYS = {"file": "tag"}
COLUMN_KEYS = ("name", "type", "required", "semantic", "from", "rename_to", "description", "scale")
DEFAULT_ERROR_THRESHOLD = 0.01
GENERATED = "generated"
# Grammars end in `\Z`, not `$`: `$` also matches before a final newline ("df-1a2b3c\n").
FEED_ID = re.compile(r"^df-[a-z0-9]{6}\Z")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*\Z")
# `col`, `col[key]` (attribute or map entry), `col[name=key]`, `col[type=key]`, `col[id=key]` (an
# attribute matched on that field only) or `col.field` (struct field / unnested element).
SOURCE_REF = re.compile(r"^(?P<column>[A-Za-z_][A-Za-z0-9_]*)"
                        r"(?:\[(?:(?P<by>name|type|id)=)?(?P<key>[A-Za-z0-9_:.\- $]+)\]"
                        r"|\.(?P<field>[A-Za-z0-9_:\-$]+))?\Z")
# How `col[key]` finds an attribute: its `name`, or for Optimizely's built-in attributes (browserId,
# device, campaign, source_type on Web exports), which have no name, its `type`.
DEFAULT_MATCH = "name-or-type"


@dataclass(frozen=True)
class SourceRef:
    """Where a feed column's value comes from in the raw table."""

    column: str
    key: str | None = None  # attributes[plan], tags[sku]
    field: str | None = None  # experiments.experiment_id
    by: str = DEFAULT_MATCH  # which attribute field `key` is matched on: name, type, id, or name-or-type

    def __str__(self) -> str:
        by = "" if self.by == DEFAULT_MATCH else f"{self.by}="
        return self.column + (f"[{by}{self.key}]" if self.key else f".{self.field}" if self.field else "")


@dataclass(frozen=True)
class FeedColumn:
    """One domain-table column."""

    name: str  # the final name
    type: str
    source: SourceRef
    required: bool = False
    semantics: tuple[str, ...] = ()
    description: str = ""
    scale: int = 0
    line: int = field(default=0, compare=False)

    @property
    def is_pii(self) -> bool:
        return any(is_pii(tag) for tag in self.semantics)


@dataclass(frozen=True)
class Feed:
    """A feed: how the files landed under one tag become one domain table `<source>:<name>`."""

    path: str  # relative to the project, e.g. feeds/optimizely/decisions.yml
    id: str
    source: str
    name: str
    courier: str
    tag: str  # the tag of the landed files it reads (the raw table raw_<courier>.<tag>)
    primary_key: tuple[str, ...]
    columns: tuple[FeedColumn, ...]
    last_updated: str = GENERATED
    stitch: bool = False
    error_threshold: float = DEFAULT_ERROR_THRESHOLD
    unnest: str | None = None
    description: str = ""
    lines: dict = field(default_factory=dict, compare=False, repr=False)
    spellings: dict = field(default_factory=dict, compare=False, repr=False)  # renamed key -> old spelling used
    deprecations: tuple[str, ...] = field(default=(), compare=False, repr=False)  # a warning per old spelling

    @property
    def domain_table(self) -> str:
        return f"{self.source}:{self.name}"

    @property
    def model_name(self) -> str:
        return f"{self.source.lower()}__{self.name.lower()}"

    def column(self, name: str) -> FeedColumn:
        return next(c for c in self.columns if c.name == name)

    def error(self, key: str, message: str) -> ConfigError:
        """A problem with one of the feed's keys, named as the file spells it, at its line."""
        return ConfigError(self.path, self.spellings.get(key, key), message, self.lines.get(key))


def feed_files(root: Path) -> list[Path]:
    directory = root / FEEDS_DIR
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def read_feeds(root: Path) -> tuple[list[Feed], list[ConfigError]]:
    """Every feed under `root/feeds`, and every problem found (in file and line order)."""
    feeds: list[Feed] = []
    problems: list[ConfigError] = []
    for path in feed_files(root):
        try:
            relative = definition_path(path, root)
            feed = parse_feed(load_yaml(path), relative, problems)
        except ConfigError as exc:
            problems.append(exc)
            continue
        if feed is not None:
            feeds.append(feed)
    _check_unique(feeds, problems)
    return feeds, problems


def declared_ids(root: Path) -> set[str]:
    """The `id` each feed file declares, whether or not the feed is valid (its own problems are reported
    for it: a load operation naming it is not also missing a feed)."""
    ids = set()
    for path in feed_files(root):
        try:
            doc = load_yaml(path)
        except ConfigError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("id"), str):
            ids.add(doc["id"])
    return ids


def load_feeds(root: Path) -> list[Feed]:
    """Every feed, or FeedErrors naming the first problem."""
    feeds, problems = read_feeds(root)
    if problems:
        raise FeedErrors(problems)
    return feeds


def _check_unique(feeds: list[Feed], problems: list[ConfigError]) -> None:
    for attribute, what in (("id", "feed id"), ("domain_table", "domain table"), ("model_name", "model name")):
        seen: dict[str, Feed] = {}
        for feed in feeds:
            value = getattr(feed, attribute)
            if value in seen:
                key = "id" if attribute == "id" else "name"
                problems.append(feed.error(key, f"{what} `{value}` is also used by {seen[value].path}"))
            seen.setdefault(value, feed)


def _collect(problems: list[ConfigError], check: Callable[[], object]) -> object:
    try:
        return check()
    except ConfigError as exc:
        problems.append(exc)
        return None


def parse_feed(doc: object, path: str, problems: list[ConfigError]) -> Feed | None:
    """Validate one parsed feed document; problems are appended, the feed returned when valid."""
    start = len(problems)
    s = Section(doc, path)
    _collect(problems, lambda: s.check_keys(FEED_KEYS, deprecated=RENAMED_KEYS))
    spelled, deprecations = _spellings(s, problems)
    feed_id = _collect(problems, lambda: _matching(s, "id", FEED_ID, "a feed id like df-7k2m9q (courier feeds init "
                                                                       "generates one)"))
    source = _collect(problems, lambda: _matching(s, "source", NAME, "letters, digits and _, starting with a letter"))
    name = _collect(problems, lambda: _matching(s, "name", NAME, "letters, digits and _, starting with a letter"))
    courier = _collect(problems, lambda: _matching(s, "courier", NAME, "a courier name from sources.yml"))
    tag = _collect(problems, lambda: _matching(s, spelled.get("tag", "tag"), NAME, "a file tag landed by the courier"))
    stitch = _collect(problems, lambda: s.boolean("stitch", False))
    threshold = _collect(problems, lambda: s.number("error_threshold", DEFAULT_ERROR_THRESHOLD, 0.0, 1.0))
    unnest = _collect(problems, lambda: _matching(s, "unnest", IDENTIFIER, "a list column of the raw table")
                      if s.has("unnest") else None)
    description = s.raw("description") or ""
    columns = _columns(s, problems)
    names = [c.name for c in columns]
    primary_key = _collect(problems, lambda: _primary_key(s, names))
    last_updated = _collect(problems, lambda: _last_updated(s, columns))
    _check_semantics(s, columns, primary_key or (), problems)
    if len(problems) > start:
        return None
    return Feed(path=path, id=feed_id, source=source, name=name, courier=courier, tag=tag,
                primary_key=tuple(primary_key), columns=tuple(columns), last_updated=last_updated,
                stitch=stitch, error_threshold=threshold, unnest=unnest, description=str(description),
                lines={key: s.line_of(spelled.get(key, key)) for key in FEED_KEYS}, spellings=spelled,
                deprecations=deprecations)


def _spellings(s: Section, problems: list[ConfigError]) -> tuple[dict[str, str], tuple[str, ...]]:
    """Per feed key, the key the file spells it with (an old spelling of a renamed key is read as the
    new one, and errors name the key as written), and the warning for each old spelling used."""
    spelled: dict[str, str] = {}
    deprecations = []
    for old, new in RENAMED_KEYS.items():
        if not s.has(old):
            continue
        if s.has(new):
            problems.append(s.error(old, f"the old name of `{new}`; keep only `{new}`"))
            continue
        spelled[new] = old
        deprecations.append(s.deprecated(old, new))
    return spelled, tuple(deprecations)


def _matching(s: Section, key: str, pattern: re.Pattern, expected: str) -> str:
    value = s.string(key)
    if not pattern.match(value):
        raise s.error(key, f"expected {expected}; got {value!r}")
    return value


def _columns(s: Section, problems: list[ConfigError]) -> list[FeedColumn]:
    items = _collect(problems, lambda: s.items("columns")) or []
    if not items and s.has("columns"):
        problems.append(s.error("columns", "expected at least one column"))
    columns: list[FeedColumn] = []
    for index, item in enumerate(items):
        line = items.line_of(index) if isinstance(items, LineList) else 0
        column = _collect(problems, lambda: _column(Section(item, s.file, f"columns[{index}]", line)))
        if column is None:
            continue
        if any(c.name == column.name for c in columns):
            problems.append(ConfigError(s.file, f"columns[{index}].name", f"column `{column.name}` appears twice; "
                                        "use rename_to to give one of them another name", line))
            continue
        columns.append(column)
    return columns


def _column(c: Section) -> FeedColumn:
    c.check_keys(COLUMN_KEYS)
    raw_name = c.string("name")
    final = c.string("rename_to", raw_name)
    if not IDENTIFIER.match(final):
        key = "rename_to" if c.has("rename_to") else "name"
        raise c.error(key, f"column names use letters, digits and _ only; got {final!r} (use rename_to)")
    text = c.string("from", raw_name)
    match = SOURCE_REF.match(text)
    if not match:
        raise c.error("from" if c.has("from") else "name",
                      f"expected a raw column, `column[key]` or `column.field`; got {text!r}")
    source = SourceRef(match["column"], match["key"], match["field"], match["by"] or DEFAULT_MATCH)
    kind = c.choice("type", TYPES)
    scale = 0
    if kind == "Decimal":
        scale = int(c.number("scale", 0, 0, 37))
    elif c.has("scale"):
        raise c.error("scale", "only Decimal columns take a scale")
    semantics = _semantic_list(c)
    return FeedColumn(name=final, type=kind, source=source, required=c.boolean("required", False),
                      semantics=semantics, description=str(c.raw("description") or ""), scale=scale, line=c.line)


def _semantic_list(c: Section) -> tuple[str, ...]:
    value = c.raw("semantic")
    if value is None:
        return ()
    tags = [value] if isinstance(value, str) else value
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise c.error("semantic", "expected a tag or a list of tags")
    for tag in tags:
        reason = check_tag(tag)
        if reason:
            raise c.error("semantic", reason)
    return tuple(tags)


def _primary_key(s: Section, names: list[str]) -> list[str]:
    value = s.required("primary_key")
    keys = [value] if isinstance(value, str) else value
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise s.error("primary_key", "expected one or more column names")
    for key in keys:
        if key not in names:
            raise s.error("primary_key", f"`{key}` is not a column of this feed (columns: {', '.join(names)})")
    if len(set(keys)) != len(keys):
        raise s.error("primary_key", "a column appears twice")
    return keys


def _last_updated(s: Section, columns: list[FeedColumn]) -> str:
    value = s.string("last_updated", GENERATED)
    if value == GENERATED:
        return value
    column = next((c for c in columns if c.name == value), None)
    if column is None:
        raise s.error("last_updated", f"`{value}` is not a column of this feed; name a Datetime or Integer "
                                      f"column, or use `generated`")
    if column.type not in ("Datetime", "Integer"):
        raise s.error("last_updated", f"`{value}` is {column.type}; the last-updated field must be Datetime or "
                                      "Integer (a Date is not precise enough)")
    return value


def _check_semantics(s: Section, columns: list[FeedColumn], primary_key: list[str],
                     problems: list[ConfigError]) -> None:
    lines = {c.name: c.line for c in columns}
    for tag in ONCE_PER_FEED:
        tagged = [c for c in columns if tag in c.semantics]
        for extra in tagged[1:]:
            problems.append(ConfigError(s.file, "semantic", f"`{tag}` may tag one column per feed; "
                                        f"`{tagged[0].name}` already has it, `{extra.name}` too",
                                        lines.get(extra.name)))
    for column in columns:
        for tag, required_type in REQUIRED_TYPE.items():
            if tag in column.semantics and column.type != required_type:
                problems.append(ConfigError(s.file, "semantic", f"`{tag}` requires type {required_type}; column "
                                            f"`{column.name}` is {column.type}", lines.get(column.name)))
        if "pk" in column.semantics and column.name not in primary_key:
            problems.append(ConfigError(s.file, "semantic", f"column `{column.name}` is tagged pk but is not in "
                                        "primary_key", lines.get(column.name)))


def new_feed_id() -> str:
    """A fresh feed id: `df-` and six lowercase letters or digits."""
    alphabet = string.ascii_lowercase + string.digits
    return "df-" + "".join(secrets.choice(alphabet) for _ in range(6))
