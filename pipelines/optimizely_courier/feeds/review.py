"""`courier feeds diff`: what a change to feeds, load operations or entities does to the domain tables.

Compares a git ref (the pull request's base) with the working tree and ranks each change:
`breaking` (downstream queries or the table itself break: a removed column, a new primary key),
`needs attention` (behaviour changes a reviewer must accept: new PII, a retype, a truncate) or
`safe`. The verdict is the highest rank found.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from optimizely_courier.config.couriers import Courier, Entity
from optimizely_courier.config.sources import SOURCES_FILE, Project, parse_sources
from optimizely_courier.config.yamlfile import parse_yaml
from optimizely_courier.errors import ConfigError, CourierError
from optimizely_courier.feeds.feed import FEEDS_DIR, Feed, FeedColumn, parse_feed, read_feeds
from optimizely_courier.feeds.loadops import parse_operations

BREAKING, ATTENTION, SAFE = "breaking", "needs attention", "safe"
RANK = {SAFE: 0, ATTENTION: 1, BREAKING: 2}
FAIL_ON = {"breaking": BREAKING, "attention": ATTENTION}


@dataclass(frozen=True)
class Change:
    severity: str
    scope: str  # "feed" | "load_operations" | "entities"
    subject: str  # the domain table, feed id or courier
    kind: str
    message: str
    file: str = ""


@dataclass
class Review:
    base: str
    changes: list[Change]

    @property
    def verdict(self) -> str:
        return max((c.severity for c in self.changes), key=RANK.get, default=SAFE)

    def counts(self) -> dict[str, int]:
        return {level: sum(c.severity == level for c in self.changes) for level in (BREAKING, ATTENTION, SAFE)}

    def fails(self, fail_on: str | None) -> bool:
        return fail_on is not None and RANK[self.verdict] >= RANK[FAIL_ON[fail_on]]

    def to_json(self) -> dict:
        return {"base": self.base, "verdict": self.verdict, "counts": self.counts(),
                "changes": [asdict(c) for c in self.changes]}


# -- reading the base ------------------------------------------------------------------------------

def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def resolve_base(root: Path, base: str | None) -> str:
    """The ref to compare with: BASE, else origin/main, else main."""
    if _git(root, "rev-parse", "--is-inside-work-tree").returncode != 0:
        raise CourierError(f"{root} is not inside a git repository: feeds diff compares git refs")
    for ref in [base] if base else ["origin/main", "main"]:
        if _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode == 0:
            return ref
    raise CourierError(f"no git ref {base!r} in {root}" if base else
                       f"neither origin/main nor main exists in {root}: pass the base ref, e.g. HEAD~1")


def _base_text(root: Path, ref: str, path: str) -> str | None:
    shown = _git(root, "show", f"{ref}:./{path}")
    return shown.stdout if shown.returncode == 0 else None


def base_yaml_files(root: Path, ref: str, folder: str) -> list[tuple[str, str]]:
    """(path, text) of each YAML file under `folder` at `ref`."""
    listed = _git(root, "ls-tree", "-r", "--name-only", ref, "--", folder)
    return [(path, _base_text(root, ref, path) or "")
            for path in sorted(p for p in listed.stdout.splitlines() if p.endswith((".yml", ".yaml")))]


def base_feeds(root: Path, ref: str) -> list[Feed]:
    feeds = []
    for path, text in base_yaml_files(root, ref, FEEDS_DIR):
        problems: list[ConfigError] = []
        try:
            feed = parse_feed(parse_yaml(text, path), path, problems)
        except ConfigError:
            continue
        if feed is not None:
            feeds.append(feed)
    return feeds


def _project_from(root: Path, text: str | None, env: dict) -> Project | None:
    if text is None:
        return None
    try:
        return parse_sources(parse_yaml(text, SOURCES_FILE), Path(SOURCES_FILE), root, env)
    except ConfigError:
        return None


# -- comparing -------------------------------------------------------------------------------------

def review(root: Path, base: str | None, env: dict, warehouse: Path | None = None) -> Review:
    """Compare BASE with the working tree."""
    ref = resolve_base(root, base)
    old_feeds = {f.id: f for f in base_feeds(root, ref)}
    new_list, problems = read_feeds(root)
    if problems:
        raise CourierError(f"{problems[0]} (fix the feeds first: run `courier feeds validate`)")
    new_feeds = {f.id: f for f in new_list}
    changes: list[Change] = []
    for feed_id in sorted(old_feeds.keys() | new_feeds.keys()):
        changes += _feed_changes(old_feeds.get(feed_id), new_feeds.get(feed_id), warehouse)
    old_project = _project_from(root, _base_text(root, ref, SOURCES_FILE), env)
    new_path = root / SOURCES_FILE
    new_project = _project_from(root, new_path.read_text() if new_path.exists() else None, env)
    if old_project and new_project:
        changes += _courier_changes(old_project, new_project, {**old_feeds, **new_feeds}, warehouse)
    return Review(ref, changes)


def _feed_changes(old: Feed | None, new: Feed | None, warehouse: Path | None) -> list[Change]:
    feed = new or old
    assert feed is not None

    def change(severity: str, kind: str, message: str) -> Change:
        return Change(severity, "feed", feed.domain_table, kind, message, feed.path)

    if old is None:
        pii = [c.name for c in new.columns if c.is_pii]
        if pii:
            return [change(ATTENTION, "feed_added", f"new feed `{new.id}` with PII columns {_names(pii)}")]
        return [change(SAFE, "feed_added", f"new feed `{new.id}` reading `{new.courier}/{new.tag}`")]
    if new is None:
        return [change(BREAKING, "feed_removed", f"feed `{old.id}` removed: `{old.domain_table}` is no longer "
                                                 "maintained and queries on it will go stale")]
    changes = []
    # The build sees a changed feed definition and rebuilds its table from every landed file.
    rebuilt = "the next `courier run` or `dbt build` rebuilds the table from every landed file"
    if old.domain_table != new.domain_table:
        changes.append(change(BREAKING, "renamed", f"domain table renamed from `{old.domain_table}` to "
                                                   f"`{new.domain_table}`: queries on the old name break"))
    if old.primary_key != new.primary_key:
        changes.append(change(BREAKING, "primary_key", f"primary key changed from {_names(old.primary_key)} to "
                                                       f"{_names(new.primary_key)}: {rebuilt}"))
    if (old.courier, old.tag) != (new.courier, new.tag):
        changes.append(change(BREAKING, "source", f"reads `{new.courier}/{new.tag}` instead of "
                                                  f"`{old.courier}/{old.tag}`: {rebuilt}"))
    if old.unnest != new.unnest:
        changes.append(change(BREAKING, "unnest", f"unnest changed from `{old.unnest}` to `{new.unnest}`: one row "
                                                  f"now stands for something else; {rebuilt}"))
    changes += _column_changes(old, new, warehouse, change, rebuilt)
    if old.last_updated != new.last_updated:
        changes.append(change(ATTENTION, "last_updated", f"last-updated changed from `{old.last_updated}` to "
                                                         f"`{new.last_updated}`: a different row may win per key"))
    if old.stitch != new.stitch:
        state = "on: its PII columns now feed stitch_input" if new.stitch else "off: it leaves stitch_input"
        changes.append(change(ATTENTION, "stitch", f"stitch turned {state}"))
    if old.error_threshold != new.error_threshold:
        changes.append(change(ATTENTION, "error_threshold", f"error threshold changed from "
                                                            f"{old.error_threshold:.2%} to {new.error_threshold:.2%}"))
    return changes


def _column_changes(old: Feed, new: Feed, warehouse: Path | None, change,  # noqa: ANN001
                    rebuilt: str) -> list[Change]:
    changes = []
    old_columns = {c.name: c for c in old.columns}
    new_columns = {c.name: c for c in new.columns}
    by_source = {str(c.source): c for c in new.columns}
    renamed = {}
    for name, column in old_columns.items():
        if name not in new_columns and str(column.source) in by_source and by_source[str(column.source)].name \
                not in old_columns:
            renamed[name] = by_source[str(column.source)].name
    for name in old_columns:
        if name in renamed:
            changes.append(change(BREAKING, "column_renamed", f"column `{name}` renamed to `{renamed[name]}`: "
                                                              f"queries on the old name break; {rebuilt}"))
        elif name not in new_columns:
            changes.append(change(BREAKING, "column_removed", f"column `{name}` removed: queries on it break"))
    for name, column in new_columns.items():
        before = old_columns.get(name) or old_columns.get(next((o for o, n in renamed.items() if n == name), ""))
        if before is None:
            pii = " and it is PII" if column.is_pii else ""
            changes.append(change(ATTENTION if column.is_pii else SAFE, "column_added",
                                  f"column `{name}` added ({column.type}{pii})"))
            continue
        changes += _same_column_changes(new, before, column, warehouse, change)
    return changes


def _same_column_changes(feed: Feed, old: FeedColumn, new: FeedColumn, warehouse: Path | None,
                         change) -> list[Change]:  # noqa: ANN001
    changes = []
    if (old.type, old.scale) != (new.type, new.scale):
        severity, detail = _cast_check(warehouse, feed, old, new)
        changes.append(change(severity, "column_retyped", f"column `{new.name}` retyped from {_type(old)} to "
                                                          f"{_type(new)}: {detail}"))
    if str(old.source) != str(new.source):
        changes.append(change(ATTENTION, "column_source", f"column `{new.name}` now reads `{new.source}` instead of "
                                                          f"`{old.source}`"))
    if new.is_pii and not old.is_pii:
        tags = ", ".join(t for t in new.semantics if t not in old.semantics)
        changes.append(change(ATTENTION, "pii_added", f"column `{new.name}` becomes PII (semantic tag {tags})"))
    elif old.is_pii and not new.is_pii:
        changes.append(change(ATTENTION, "pii_removed", f"column `{new.name}` is no longer tagged PII"))
    elif set(old.semantics) != set(new.semantics):
        changes.append(change(SAFE, "semantic", f"column `{new.name}` semantic tags changed from "
                                                f"{_names(old.semantics) or 'none'} to "
                                                f"{_names(new.semantics) or 'none'}"))
    if new.required and not old.required:
        changes.append(change(ATTENTION, "required", f"column `{new.name}` is now required: rows without it will "
                                                     "be rejected"))
    return changes


def _cast_check(warehouse: Path | None, feed: Feed, old: FeedColumn, new: FeedColumn) -> tuple[str, str]:
    """Whether the domain table's existing values cast to the new type (checked in the warehouse)."""
    from optimizely_courier.feeds.sql import data_type

    if warehouse is None or not warehouse.exists():
        return ATTENTION, "not checked against existing values (no warehouse)"
    import duckdb

    relation = f'domain."{feed.domain_table}"'
    try:
        with duckdb.connect(str(warehouse), read_only=True) as db:
            total, failing = db.execute(
                f'select count("{new.name}"), count("{new.name}") - count(try_cast("{new.name}" as {data_type(new)})) '
                f"from {relation}").fetchall()[0]
    except duckdb.Error:
        return ATTENTION, f"not checked against existing values ({feed.domain_table} not in the warehouse)"
    if failing:
        return BREAKING, f"{failing:,} of {total:,} existing values do not cast; rebuild or fix the data"
    return ATTENTION, f"all {total:,} existing values cast cleanly"


def _courier_changes(old: Project, new: Project, feeds: dict[str, Feed], warehouse: Path | None) -> list[Change]:
    changes = []
    for name in sorted(old.couriers.keys() | new.couriers.keys()):
        before, after = old.couriers.get(name), new.couriers.get(name)
        if after is None:
            used = [f.domain_table for f in feeds.values() if f.courier == name]
            severity = BREAKING if used else ATTENTION
            changes.append(Change(severity, "entities", name, "courier_removed", f"courier `{name}` removed"
                                  + (f": {', '.join(used)} stop updating" if used else "")))
            continue
        if before is None:
            changes.append(Change(SAFE, "entities", name, "courier_added", f"courier `{name}` added"))
            continue
        changes += _operation_changes(before, after, feeds)
        changes += _entity_changes(before, after, feeds, warehouse)
    return changes


def _operation_changes(old: Courier, new: Courier, feeds: dict[str, Feed]) -> list[Change]:
    def operations(courier: Courier) -> dict:
        try:
            return {op.feed_id: op for op in parse_operations(courier, Path(SOURCES_FILE))}
        except ConfigError:
            return {}

    before, after = operations(old), operations(new)
    changes = []
    for feed_id in sorted(before.keys() | after.keys()):
        table = feeds[feed_id].domain_table if feed_id in feeds else feed_id
        o, n = before.get(feed_id), after.get(feed_id)

        def change(severity: str, kind: str, message: str) -> Change:
            return Change(severity, "load_operations", feed_id, kind, f"`{feed_id}` ({table}): {message}",
                          SOURCES_FILE)

        if n is None:
            changes.append(change(ATTENTION, "operations_removed", "no longer loaded by courier runs"))
        elif o is None:
            changes.append(change(ATTENTION if n.truncate else SAFE, "operations_added",
                                  f"now loaded from {_names(n.tags)}" + (" after a truncate" if n.truncate else "")))
        else:
            if n.truncate and not o.truncate:
                changes.append(change(ATTENTION, "truncate_added", "truncate added: every run empties the table "
                                                                   "first, keeping only that run's rows"))
            if o.truncate and not n.truncate:
                changes.append(change(ATTENTION, "truncate_removed", "truncate removed: runs now upsert into the "
                                                                     "existing rows"))
            if o.tags != n.tags:
                changes.append(change(ATTENTION, "files_changed", f"loads {_names(n.tags) or 'nothing'} instead of "
                                                                  f"{_names(o.tags) or 'nothing'}"))
    return changes


def _entity_changes(old: Courier, new: Courier, feeds: dict[str, Feed], warehouse: Path | None) -> list[Change]:
    changes = []
    before = {e.tag: e for e in old.entities}
    after = {e.tag: e for e in new.entities}
    for tag in sorted(before.keys() | after.keys()):
        o, n = before.get(tag), after.get(tag)

        def change(severity: str, kind: str, message: str) -> Change:
            return Change(severity, "entities", new.name, kind, f"`{new.name}/{tag}`: {message}", SOURCES_FILE)

        if n is None:
            used = [f.domain_table for f in feeds.values() if f.courier == new.name and f.tag == tag]
            changes.append(change(BREAKING if used else ATTENTION, "entity_removed", "entity removed" +
                                  (f": {', '.join(used)} stop updating" if used else "")))
        elif o is None:
            changes.append(change(SAFE, "entity_added", f"entity added with pattern `{n.pattern.text}`"))
        else:
            if o.pattern.text != n.pattern.text:
                changes.append(change(ATTENTION, "pattern_changed", f"file pattern `{o.pattern.text}` -> "
                                      f"`{n.pattern.text}`{_pattern_effect(new, o, n, warehouse)}"))
            if (o.ready_marker and o.ready_marker.text) != (n.ready_marker and n.ready_marker.text):
                changes.append(change(ATTENTION, "ready_marker_changed", "ready marker changed to "
                                      f"`{n.ready_marker.text if n.ready_marker else 'none'}`"))
            if o.optional != n.optional:
                changes.append(change(ATTENTION, "optional_changed", "now optional: missing days are skipped"
                                      if n.optional else "now required: a missing day fails the run"))
    return changes


def _pattern_effect(courier: Courier, old: Entity, new: Entity, warehouse: Path | None) -> str:
    """How many of the newest landed day's files each pattern matches (when the warehouse has them)."""
    if warehouse is None or not warehouse.exists():
        return " (not checked: no landed files)"
    import duckdb

    try:
        with duckdb.connect(str(warehouse), read_only=True) as db:
            rows = db.execute(f'select distinct _file, _file_date from {courier.dataset}."{old.tag}" where '
                              f'_file_date = (select max(_file_date) from {courier.dataset}."{old.tag}")').fetchall()
    except duckdb.Error:
        return " (not checked: no landed files)"
    if not rows:
        return " (not checked: no landed files)"
    day = rows[0][1]
    matched = [sum(bool(p.key_regex(day).fullmatch(key)) for key, _ in rows) for p in (old.pattern, new.pattern)]
    return (f"; of the {len(rows)} files landed for {day}, the old pattern matches {matched[0]}, "
            f"the new one {matched[1]}")


def _names(values) -> str:  # noqa: ANN001
    return ", ".join(f"`{v}`" for v in values)


def _type(column: FeedColumn) -> str:
    return f"Decimal(scale {column.scale})" if column.type == "Decimal" else column.type


# -- rendering -------------------------------------------------------------------------------------

SCOPES = {"feed": "Feeds", "load_operations": "Load operations", "entities": "Couriers and entities",
          "experiments": "Experiments"}


def to_markdown(result: Review) -> str:
    counts = result.counts()
    lines = [f"**Verdict: {result.verdict}** ({counts[BREAKING]} breaking, {counts[ATTENTION]} needs attention, "
             f"{counts[SAFE]} safe; compared with `{result.base}`)"]
    if not result.changes:
        lines += ["", "No changes to feeds, load operations, couriers or experiments."]
    for scope, title in SCOPES.items():
        subjects: dict[str, list[Change]] = {}
        for c in result.changes:
            if c.scope == scope:
                subjects.setdefault(c.subject, []).append(c)
        if not subjects:
            continue
        lines += ["", f"### {title}"]
        for subject, changes in subjects.items():
            where = f" ({changes[0].file})" if scope in ("feed", "experiments") else ""
            lines += ["", f"**{subject}**{where}"]
            for c in sorted(changes, key=lambda c: -RANK[c.severity]):
                lines.append(f"- **{c.severity}**: {c.message}")
    return "\n".join(lines) + "\n"
