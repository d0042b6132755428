"""The SQL of a feed's generated models, from the templates in `templates/` (SQL with dbt's Jinja in
it, filled in here), and the fingerprint of what they compute (`definition`).

    staging   a view: raw rows extracted, cast, keyed, checked
    domain    the domain table "<Source>:<Feed>", upserted by _pk
    rejected  rows that failed a cast or a required value
    stitch    the PII columns of every feed with stitch: true
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import jinja2

from optimizely_courier.feeds.feed import DEFAULT_MATCH, GENERATED, Feed, FeedColumn
from optimizely_courier.feeds.semantics import PII_TAGS, canonical
from optimizely_courier.feeds.sqlnames import comment, jinja_arg, sql_name

SQL_HEADER = "-- generated from {source}; do not edit"
DUCKDB_TYPES = {"Boolean": "boolean", "Date": "date", "Datetime": "timestamp with time zone", "Float": "double",
                "Integer": "bigint", "String": "varchar"}
SYSTEM_COLUMNS = (
    ("_pk", "varchar", "The primary key: key columns as text, joined with '|' (escaped) when composite."),
    ("_uuid_pk", "uuid", "A deterministic UUID of _pk."),
    ("_updated", "timestamp with time zone", "When this version of the row was loaded (its raw load's time)."),
    ("_load_id", "varchar", "The dlt load that landed the row."),
    ("_file", "varchar", "The object key the row came from."),
    ("_file_date", "date", "The date partition of that object."),
    ("_file_row", "bigint", "The row's 0-based position in that object."),
)


def data_type(column: FeedColumn) -> str:
    return f"decimal(38,{column.scale})" if column.type == "Decimal" else DUCKDB_TYPES[column.type]


def _src(column: FeedColumn) -> str:
    return sql_name(f"_src__{column.name}")


def _value(feed: Feed, column: FeedColumn) -> str:
    """SQL for a column's raw value, as landed."""
    ref = column.source
    base = "{{ courier_element() }}" if ref.column == feed.unnest else sql_name(ref.column)
    if ref.key is not None:
        by = "" if ref.by == DEFAULT_MATCH else f", '{ref.by}'"
        return "{{ courier_lookup(" + jinja_arg(base) + ", '" + ref.key + "'" + by + ") }}"
    if ref.field is not None:
        return "{{ courier_field(" + jinja_arg(base) + ", '" + ref.field + "') }}"
    return base


def _cast(column: FeedColumn) -> str:
    if column.type == "String":
        return "{{ courier_text(" + jinja_arg(_src(column)) + ") }}"
    return "{{ courier_try_cast(" + jinja_arg(_src(column)) + ", '" + data_type(column) + "') }}"


def _checks(feed: Feed) -> list[str]:
    checks = []
    for column in feed.columns:
        if column.required or column.name in feed.primary_key:
            checks.append(f"case when {_src(column)} is null then '{column.name}: required value missing' end")
        if column.type != "String":
            checks.append(f"case when {_src(column)} is not null and {sql_name(column.name)} is null\n"
                          f"            then '{column.name}: cannot cast ' || left({{{{ courier_text("
                          f"{jinja_arg(_src(column))}) }}}}, 80) || ' to {column.type}' end")
    return checks


def staging_sql(feed: Feed) -> str:
    unnest = f"\n    {{{{ courier_unnest({jinja_arg(sql_name(feed.unnest))}) }}}}" if feed.unnest else ""
    columns = [{"value": _value(feed, c), "src": _src(c), "cast": _cast(c), "name": sql_name(c.name)}
               for c in feed.columns]
    return _render("staging.sql", feed, columns=columns, unnest=unnest, checks=_checks(feed),
                   keys="[" + ", ".join(jinja_arg(sql_name(k)) for k in feed.primary_key) + "]")


def _domain_columns(feed: Feed) -> list[str]:
    return [sql_name(c.name) for c in feed.columns] + [name for name, _, _ in SYSTEM_COLUMNS]


def _winner_order(feed: Feed) -> list[str]:
    """The columns that decide which row of a key wins, most significant first (each descending)."""
    order = [] if feed.last_updated == GENERATED else [sql_name(feed.last_updated)]
    return order + ["_updated", "_file_date", "_file", "_file_row"]


def _jinja_list(items: list[str]) -> str:
    return "[" + ", ".join(jinja_arg(item) for item in items) + "]"


def definition(feed: Feed) -> str:
    """A fingerprint of what the feed's models compute: when it changes, every landed file is built again."""
    text = staging_sql(feed) + domain_sql(feed)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def domain_sql(feed: Feed) -> str:
    order = _winner_order(feed)
    return _render("domain.sql", feed, staging=f"ref('stg_{feed.model_name}')",
                   winner="load" if feed.last_updated == GENERATED else feed.last_updated,
                   ranked_columns=list(dict.fromkeys(["_pk", "_load_id", *order])),
                   ranking=[f"{c} desc nulls last" if c.startswith("{{") else f"{c} desc" for c in order],
                   columns=_domain_columns(feed), order=_jinja_list(order))


def rejected_sql(feed: Feed) -> str:
    columns = [{"name": sql_name(c.name), "src_arg": jinja_arg(_src(c))} for c in feed.columns]
    return _render("rejected.sql", feed, columns=columns)


def template_environment(module_file: str) -> jinja2.Environment:
    """The model templates beside `module_file` (in `templates/`). They are SQL with dbt's Jinja in
    it; ours is written [[ value ]] and [% block %], so dbt's {{ }} and {% %} pass through as text."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(module_file).parent / "templates"), undefined=jinja2.StrictUndefined,
        variable_start_string="[[", variable_end_string="]]", block_start_string="[%", block_end_string="%]",
        comment_start_string="[#", comment_end_string="#]", trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False)


TEMPLATES = template_environment(__file__)


def _render(template: str, feed: Feed, **context: object) -> str:
    header = SQL_HEADER.format(source=comment(feed.path))
    return TEMPLATES.get_template(template).render(feed=feed, header=header, **context)


def stitch_tags(feeds: list[Feed]) -> list[str]:
    """The PII tags the stitched `feeds` use, in PII_TAGS order: the stitch model's columns."""
    present = {tag for f in feeds for c in f.columns for tag in c.semantics}
    return [tag for tag in PII_TAGS if tag in present]


def stitch_sql(feeds: list[Feed]) -> str:
    tags = stitch_tags(feeds)
    parts = []
    for feed in sorted(feeds, key=lambda f: f.path):
        values = []
        for tag in tags:
            column = next((c for c in feed.columns if tag in c.semantics), None)
            kind = "date" if tag == "birthdate" else "{{ dbt.type_string() }}"
            value = f"cast({sql_name(column.name)} as {kind})" if column else f"cast(null as {kind})"
            values.append(f"{value} as {canonical(tag)}")
        parts.append({"feed": feed, "columns": values})
    sources = comment(", ".join(f.path for f in sorted(feeds, key=lambda f: f.path)))
    return TEMPLATES.get_template("stitch_input.sql").render(parts=parts, sources=sources)
