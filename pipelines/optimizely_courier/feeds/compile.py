"""The feed compiler: feeds/*.yml -> dbt models (SQL + YAML) that build the domain tables.

Per feed it writes
    models/staging/<source>/stg_<model>.sql      a view: raw rows extracted, cast, keyed, checked
    models/domain/<source>/<model>.sql           the domain table "<Source>:<Feed>", upserted by _pk
    models/rejected/<source>/<model>__rejected.sql rows that failed a cast or a required value
    a YAML file beside each: descriptions, contract types, semantic tags, tests
and, for all feeds, models/staging/__sources.yml and (when a feed has stitch: true)
models/stitch/stitch_input.sql. Every file starts with a header naming its feed; files with that
header that no feed produces any more are deleted, so `--check` catches them too.

The SQL comes from the templates in `templates/` (SQL with dbt's Jinja in it, filled in here); the
YAML is built as data and dumped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2
import yaml

from optimizely_courier.config.freshness import Freshness
from optimizely_courier.config.sources import Project, load_project
from optimizely_courier.errors import ConfigError
from optimizely_courier.feeds.feed import DEFAULT_MATCH, GENERATED, Feed, FeedColumn
from optimizely_courier.feeds.semantics import PII_TAGS, canonical
from optimizely_courier.feeds.sqlnames import comment, inert, jinja_arg, sql_name

MODELS_DIR = "models"
SOURCES_YAML = f"{MODELS_DIR}/staging/__sources.yml"
SQL_HEADER = "-- generated from {source}; do not edit"
YAML_HEADER = "# generated from {source}; do not edit"
GENERATED_MARKS = ("-- generated from feeds", "# generated from feeds", "-- generated from experiments",
                   "# generated from experiments")
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
LINEAGE = ("_load_id", "_file", "_file_date", "_file_row")


def data_type(column: FeedColumn) -> str:
    return f"decimal(38,{column.scale})" if column.type == "Decimal" else DUCKDB_TYPES[column.type]


def _src(column: FeedColumn) -> str:
    return sql_name(f"_src__{column.name}")


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


def _model_doc(feed: Feed, model: dict) -> str:
    tagged = {**model, "config": {**model["config"], "tags": ["feed", feed.id]}}
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


def _raw_freshness(limits: Freshness) -> dict:
    """`dbt source freshness` on a courier's raw tables: how old the newest landed partition date may
    get (`Project.freshness`)."""
    return {key: {"count": int(getattr(limits, key) / dt.timedelta(hours=1)), "period": "hour"}
            for key in ("warn_after", "error_after")}
LANDING_COLUMN_DOCS = {
    "_file": "The object key the row came from (relative to the courier prefix).",
    "_file_date": "The date partition the file pattern matched (Optimizely's processing date, UTC).",
    "_file_row": "The row's 0-based position in its file.",
    "_dlt_load_id": "The dlt load that landed the row (epoch seconds); counts once in `_dlt_loads`.",
}


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


def _stitch_tags(feeds: list[Feed]) -> list[str]:
    present = {tag for f in feeds for c in f.columns for tag in c.semantics}
    return [tag for tag in PII_TAGS if tag in present]


def stitch_sql(feeds: list[Feed]) -> str:
    tags = _stitch_tags(feeds)
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


def stitch_yaml(feeds: list[Feed]) -> str:
    columns = [{"name": "source", "description": "The domain table the row comes from."},
               {"name": "_pk", "description": "The row's primary key in that table."},
               {"name": "_updated", "description": "When that row was loaded."}]
    columns += [{"name": canonical(tag), "description": f"The column tagged `{tag}`.",
                 "config": {"meta": {"semantic": [tag], "pii": True}}} for tag in _stitch_tags(feeds)]
    doc = {"version": 2, "models": [{"name": "stitch_input", "description": "Identity-resolution input: the PII "
                                     "columns of every feed with stitch: true.", "columns": columns}]}
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
