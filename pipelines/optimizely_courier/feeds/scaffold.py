"""`courier feeds init`: a first feed YAML inferred from a sample Parquet file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from optimizely_courier.errors import CourierError
from optimizely_courier.feeds.feed import FEEDS_DIR, IDENTIFIER, NAME, SOURCE_REF, load_feeds, new_feed_id
from optimizely_courier.landing.samples import samples

# Column names that carry a well-known meaning in Optimizely's export.
KNOWN_SEMANTICS = {"visitor_id": "fk-optimizely-visitor", "email": "email", "phone": "phone"}
MAX_SURFACED_KEYS = 10


def _feed_type(kind: pa.DataType) -> tuple[str, str]:
    """(feed type, note) for an Arrow type; nested values become JSON text."""
    if pa.types.is_boolean(kind):
        return "Boolean", ""
    if pa.types.is_integer(kind):
        return "Integer", ""
    if pa.types.is_floating(kind):
        return "Float", ""
    if pa.types.is_decimal(kind):
        return f"Decimal, scale: {kind.scale}", ""
    if pa.types.is_timestamp(kind):
        return "Datetime", ""
    if pa.types.is_date(kind):
        return "Date", ""
    if pa.types.is_nested(kind):
        return "String", "as JSON"
    return "String", ""


def _surfaced_keys(table: pa.Table, column: str) -> list[str]:
    """Attribute names (list of {name, value}) or map keys seen in the sample, for `from:` columns."""
    kind = table.schema.field(column).type
    values = table.column(column).slice(0, 10_000).to_pylist()
    keys: list[str] = []
    for value in values:
        if not value:
            continue
        if pa.types.is_map(kind):
            found = [k for k, _ in value]
        elif pa.types.is_list(kind) and isinstance(value[0], dict) and "name" in value[0] and "value" in value[0]:
            # an attribute without a name (Optimizely Web's built-in ones) is known by its type
            found = [item.get("name") or item.get("type") for item in value
                     if item and (item.get("name") or item.get("type"))]
        else:
            return []
        keys += [k for k in found if k not in keys]
        if len(keys) >= MAX_SURFACED_KEYS:
            break
    return [k for k in keys if SOURCE_REF.match(f"x[{k}]")][:MAX_SURFACED_KEYS]


def _column_line(name: str, kind: str, extra: dict) -> str:
    parts = [f"name: {name}", f"type: {kind}"] + [f"{k}: {v}" for k, v in extra.items()]
    return "  - {" + ", ".join(parts) + "}"


def render_feed(table: pa.Table, courier: str, tag: str, source: str, name: str, sample: str) -> str:
    """Feed YAML text for a sample table."""
    columns = table.column_names
    key = "uuid" if "uuid" in columns else columns[0]
    lines = [f"# {source}:{name}, inferred from {sample}. Review the types, key and semantic tags.",
             f"id: {new_feed_id()}", f"source: {source}", f"name: {name}", f"courier: {courier}", f"tag: {tag}",
             f"primary_key: [{key}]" + ("" if key == "uuid" else "   # no uuid column: choose the key"),
             "last_updated: generated", "stitch: false", "error_threshold: 0.01", "columns:"]
    surfaced: list[str] = []
    for column in columns:
        kind, note = _feed_type(table.schema.field(column).type)
        extra: dict = {}
        if column == key:
            extra["required"] = "true"
        if column in KNOWN_SEMANTICS:
            extra["semantic"] = KNOWN_SEMANTICS[column]
        if not IDENTIFIER.match(column):
            extra["rename_to"] = re.sub(r"\W+", "_", column).strip("_") or "column"
        if note:
            extra["description"] = json.dumps(f"{column} {note}")
        line = _column_line(column if IDENTIFIER.match(column) else json.dumps(column), kind, extra)
        lines.append(line)
        for surfaced_key in _surfaced_keys(table, column) if note else []:
            target = re.sub(r"\W+", "_", f"{column}_{surfaced_key}").strip("_").lower()
            surfaced.append(_column_line(target, "String", {"from": json.dumps(f"{column}[{surfaced_key}]")}))
    if surfaced:
        lines += ["  # values by name from nested columns, as seen in the sample"] + surfaced
    return "\n".join(lines) + "\n"


def init_feed(root: Path, courier: str, tag: str, source: str, name: str, sample: Path | None = None) -> Path:
    """Write feeds/<source>/<name>.yml for a file tag; refuse to overwrite an existing feed.

    Raises:
        CourierError: bad names, no sample, an unreadable sample, or an existing feed.
    """
    for option, value in (("--source", source), ("--name", name), ("--courier", courier), ("--tag", tag)):
        if not NAME.match(value):
            raise CourierError(f"{option}: use letters, digits and _ and start with a letter; got {value!r}")
    path = root / FEEDS_DIR / source.lower() / f"{name.lower()}.yml"
    if path.exists():
        raise CourierError(f"{path.relative_to(root)} already exists; edit it, or choose another --name")
    clash = next((f for f in load_feeds(root) if f.domain_table.lower() == f"{source}:{name}".lower()), None)
    if clash is not None:
        raise CourierError(f"{clash.path} already defines {clash.domain_table}")
    if sample is None:
        found = samples(root, courier, tag)
        if not found:
            raise CourierError(f"no sample file for {courier}/{tag}: run `courier run {courier} --date D` with "
                               f"`load_operations: {{}}` first, or pass --sample PATH")
        sample = found[0]
    try:
        table = pq.read_table(sample)
    except (OSError, pa.ArrowInvalid) as exc:
        raise CourierError(f"cannot read sample {sample}: {exc}") from None
    label = sample.relative_to(root).as_posix() if sample.is_relative_to(root) else str(sample)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_feed(table, courier, tag, source, name, label), encoding="utf-8")
    return path
