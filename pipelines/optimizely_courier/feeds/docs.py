"""The YAML beside a feed's generated models (descriptions, contract types, semantic tags under `meta`,
tests), the raw sources (`__sources.yml`) and the stitch model, built as data and dumped."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import yaml

from optimizely_courier.config.freshness import Freshness
from optimizely_courier.feeds.feed import GENERATED, Feed, FeedColumn
from optimizely_courier.feeds.semantics import canonical
from optimizely_courier.feeds.sql import SYSTEM_COLUMNS, data_type, definition, stitch_tags
from optimizely_courier.feeds.sqlnames import comment, inert, sql_name

YAML_HEADER = "# generated from {source}; do not edit"
LANDING_COLUMN_DOCS = {
    "_file": "The object key the row came from (relative to the courier prefix).",
    "_file_date": "The date partition the file pattern matched (Optimizely's processing date, UTC).",
    "_file_row": "The row's 0-based position in its file.",
    "_dlt_load_id": "The dlt load that landed the row (epoch seconds); counts once in `_dlt_loads`.",
}


def _column_yaml(feed: Feed, column: FeedColumn) -> dict:
    # a reserved or mixed-case name is quoted in the contract's DDL and tests as it is in the SQL
    quoted = {"quote": True} if sql_name(column.name) != column.name else {}
    entry: dict = {"name": column.name, **quoted,
                   **({"description": column.description} if column.description else {}),
                   "data_type": data_type(column),
                   "config": {"meta": {"type": column.type, "from": str(column.source),
                                       "semantic": list(column.semantics), "pii": column.is_pii}}}
    if column.required or column.name in feed.primary_key:
        entry["data_tests"] = ["not_null"]
    return entry


def _feed_meta(feed: Feed) -> dict:
    """What the macros and `courier status` read from a feed model's config."""
    return {"feed_id": feed.id, "feed_file": feed.path, "domain_table": feed.domain_table, "courier": feed.courier,
            "tag": feed.tag, "definition": definition(feed), "primary_key": list(feed.primary_key),
            "last_updated": feed.last_updated, "stitch": feed.stitch, "error_threshold": feed.error_threshold,
            "pii_columns": [c.name for c in feed.columns if c.is_pii]}


def selector_tags(feed: Feed) -> list[str]:
    """dbt tags of a feed's models, for `--select tag:...`: `feed`, its id, its courier, its source
    (lower case, as in model names) and `pii` when a column holds PII. Every part is a validated name.
    They live in the YAML, not the SQL: the feed's definition fingerprint does not change with them."""
    return (["feed", feed.id, f"courier:{feed.courier}", f"source:{feed.source.lower()}"]
            + (["pii"] if any(c.is_pii for c in feed.columns) else []))


def _model_doc(feed: Feed, model: dict) -> str:
    tagged = {**model, "config": {**model["config"], "tags": selector_tags(feed)}}
    return generated_yaml({"version": 2, "models": [tagged]}, feed.path)


def staging_yaml(feed: Feed) -> str:
    return _model_doc(feed, {
        "name": f"stg_{feed.model_name}",
        "description": f"{feed.domain_table} staging: raw_{feed.courier}.{feed.tag} rows extracted, cast and "
                       "checked; `_reject_reason` says why a row is rejected.",
        "config": {"meta": {"feed_id": feed.id, "feed_file": feed.path}}})


def model_yaml(feed: Feed) -> str:
    keys = ", ".join(feed.primary_key)
    winner = "the newest load" if feed.last_updated == GENERATED else f"the newest `{feed.last_updated}`"
    system = [{"name": name, "description": text, "data_type": kind} for name, kind, text in SYSTEM_COLUMNS]
    # the key's uniqueness is checked for what each build wrote (macros/courier.sql), not the whole table
    system[0]["data_tests"] = [{"courier_unique_key": {"name": f"unique_{feed.model_name}__pk",
                                                       "arguments": {"feed_id": feed.id}}}, "not_null"]
    return _model_doc(feed, {
        "name": feed.model_name,
        "description": (feed.description or f"{feed.domain_table}.") + f" One row per {keys}; upserted from "
                       f"raw_{feed.courier}.{feed.tag}, {winner} wins.",
        "config": {"meta": _feed_meta(feed)},
        "columns": [_column_yaml(feed, c) for c in feed.columns] + system})


def rejected_yaml(feed: Feed) -> str:
    meta = _feed_meta(feed)
    return _model_doc(feed, {
        "name": f"{feed.model_name}__rejected",
        "description": f"Rows of raw_{feed.courier}.{feed.tag} that {feed.domain_table} rejected, with the reason "
                      "and the raw values as text.",
        "config": {"meta": {key: meta[key] for key in ("feed_id", "feed_file", "courier", "tag", "definition")}},
        "data_tests": [{"courier_error_threshold": {
            "name": threshold_test_name(feed),
            "description": f"At most {feed.error_threshold:.2%} of the rows a build reads are rejected; over that, "
                           f"the build stops before {feed.domain_table} changes.",
            "arguments": {"staging": f"ref('stg_{feed.model_name}')", "feed_id": feed.id, "courier": feed.courier,
                          "tag": feed.tag, "definition": meta["definition"], "threshold": feed.error_threshold},
            "config": {"tags": [feed.id]}}}]})


def threshold_test_name(feed: Feed) -> str:
    """The dbt test that holds a feed to its error threshold."""
    return f"{feed.model_name}__error_threshold"


def _raw_freshness(limits: Freshness) -> dict:
    """`dbt source freshness` on a courier's raw tables: how old the newest landed partition date may
    get (`Project.freshness`)."""
    return {key: {"count": int(getattr(limits, key) / dt.timedelta(hours=1)), "period": "hour"}
            for key in ("warn_after", "error_after")}


def sources_yaml(feeds: list[Feed], freshness: Mapping[str, Freshness]) -> str:
    read: dict[str, dict[str, set[str]]] = {}  # courier -> tag -> raw columns the feeds read
    for feed in feeds:
        columns = read.setdefault(feed.courier, {}).setdefault(feed.tag, set())
        columns.update(c.source.column for c in feed.columns)
        columns.update({feed.unnest} if feed.unnest else set())
    doc = {"version": 2, "sources": [
        {"name": f"raw_{courier}", "schema": f"raw_{courier}",
         "description": f"Raw tables the `{courier}` courier lands (append-only landing history).",
         # dlt names raw tables in the warehouse's own case (Snowflake: upper): unquoted names match
         "quoting": {"identifier": False},
         "config": {"freshness": _raw_freshness(freshness.get(courier, Freshness())),
                    "loaded_at_field": "cast(_file_date as timestamp)"},
         "tables": [_raw_table(tag, columns) for tag, columns in sorted(tags.items())]
                   + [{"name": "_courier_files", "description": "The record: every landed file version (key, ETag, "
                                                               "size, tag, date, rows) and the load that landed it.",
                       "config": {"freshness": None}},
                      {"name": "_dlt_loads", "description": "dlt's completed loads; a file version is landed once "
                                                            "its load is here with status 0.",
                       "config": {"freshness": None}}]}
        for courier, tags in sorted(read.items())]}
    return generated_yaml(doc, "feeds")


def _raw_table(tag: str, columns: set[str]) -> dict:
    documented = [{"name": name, "description": "Read by a feed."} for name in sorted(columns)]
    documented += [{"name": name, "description": text} for name, text in LANDING_COLUMN_DOCS.items()]
    return {"name": tag, "description": f"Every landed row of file tag `{tag}`.", "columns": documented}


def stitch_yaml(feeds: list[Feed]) -> str:
    columns = [{"name": "source", "description": "The domain table the row comes from."},
               {"name": "_pk", "description": "The row's primary key in that table."},
               {"name": "_updated", "description": "When that row was loaded."}]
    columns += [{"name": canonical(tag), "description": f"The column tagged `{tag}`.",
                 "config": {"meta": {"semantic": [tag], "pii": True}}} for tag in stitch_tags(feeds)]
    doc = {"version": 2, "models": [{"name": "stitch_input", "description": "Identity-resolution input: the PII "
                                     "columns of every feed with stitch: true.", "config": {"tags": ["pii"]},
                                     "columns": columns}]}
    return generated_yaml(doc, "feeds with stitch: true")


def generated_yaml(doc: dict, source: str) -> str:
    """`doc` as a generated YAML file naming `source` in its header; every string inert to Jinja."""
    body = yaml.safe_dump(_inert_strings(doc), sort_keys=False, width=110, allow_unicode=True)
    return YAML_HEADER.format(source=comment(source)) + "\n" + body


def _inert_strings(value):  # noqa: ANN001, ANN202 - any YAML value
    if isinstance(value, str):
        return inert(value)
    if isinstance(value, dict):
        return {key: _inert_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_inert_strings(item) for item in value]
    return value
