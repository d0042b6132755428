"""Hostile text for tests/test_injection_fuzz.py: what it is made of, which fields of feeds, experiments and
sources.yml it goes into, and the files an example writes.

An example is one field of a valid definition with its value replaced by hostile text. The fields are
named by their path in the definition's YAML document; `Key("x")` names the mapping key `x` itself.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import yaml
from hypothesis import strategies as st

# -- hostile text ------------------------------------------------------------------------------------

LINE_BREAKS = ["\n", "\r", "\r\n", "\u2028", "\u2029", "\u0085", "\x00", "\x0b", "\x0c", "\t"]
QUOTES = ["'", '"', "`", "''", "\\", "\\'", "\\n"]
SQL_PIECES = ["--", "/*", "*/", ";", "$$", "$q$", ")", "(", ",", "::", "||", " ", "select", "all", "order", "from"]
JINJA_PIECES = ["{{", "}}", "{%", "%}", "{#", "#}", "{{ 6*7 }}", "{% raw %}", "{% endraw %}", "{%- ", " -%}",
                "{{ env_var('HOME') }}"]
YAML_PIECES = [": ", "#", "- ", "&a", "*a", "!!python/object:os.system", "|", "{", "}", "[", "]"]
# Whole attacks on the canary: each works where text reaches the SQL, the Jinja or the YAML unescaped.
# (dbt wraps a model's SQL in `create ... as (` ... `)`; DuckDB runs every statement of a string; a
# generated YAML file's later `models:` key wins over an earlier one, but nothing else says `seeds:`.)
CANARY_ATTACKS = [  # the most potent first: the tests that build suspects build the first ones
    "\nselect 1 as a); delete from main.canary; create table main.pwned as (\n--",
    "\nseeds: [{name: support_calls, config: {pre_hook: 'delete from main.canary'}}]\n#",  # the projects' seed
    "\rselect 1 as a); delete from main.canary; create table main.pwned as (\r--",
    "'); delete from main.canary; --",
    '"); delete from main.canary; --',
    "*/ delete from main.canary; /*",
    "\n; delete from main.canary;\n",
    "{{ run_query('delete from main.canary') }}",
    "{% do run_query('delete from main.canary') %}",
    "') }}{% do run_query('delete from main.canary') %}{{ ('",
    "$$; delete from main.canary; select $$",
    "\ncreate schema pwned;\n",
    "\nmodels: [{name: x, config: {pre_hook: 'delete from main.canary'}}]\n#",
]
PIECES = LINE_BREAKS + QUOTES + SQL_PIECES + JINJA_PIECES + YAML_PIECES + CANARY_ATTACKS
PLAIN_WORD = re.compile(r"\w*", re.ASCII)


def _insert(base: str, pieces: list[str], positions: list[int]) -> str:
    text = base
    for piece, position in zip(pieces, positions):
        at = position % (len(text) + 1)
        text = text[:at] + piece + text[at:]
    return text


def hostile_text(base: str) -> st.SearchStrategy[str]:
    """Text that is not a plain word: pieces of SQL, Jinja and YAML syntax, line breaks of every kind and
    whole attacks on the canary; alone, joined, or put into the field's valid value `base`."""
    piece = st.sampled_from(PIECES) | st.text(min_size=1, max_size=6)
    after = piece.map(lambda p: base + p)
    joined = st.lists(piece, min_size=1, max_size=5).map("".join)
    inside = st.lists(st.tuples(piece, st.integers(0, 200)), min_size=1, max_size=3).map(
        lambda found: _insert(base, [p for p, _ in found], [i for _, i in found]))
    return st.one_of(after, inside, joined, st.text(max_size=24)).filter(lambda text: not PLAIN_WORD.fullmatch(text))


# -- where it goes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """A path step naming a mapping's key itself (the hostile text becomes the key)."""

    name: str


FILE_NAME = "<file name>"  # the path of the definition's own file: feeds/shop/<value>.yml


@dataclass(frozen=True)
class Field:
    """A string field of a definition. `kind` says what an accepted value may be:
      text   anything, as long as it reaches the models only as inert literals or comments
      token  a name, id or tag: accepted only in its strict grammar (TOKEN)
      ref    a token naming a column of a raw table or seed, which validation cannot see: a value that
             names another column is not built (its build fails for that reason alone)
      from   a feed column's `from:` (SOURCE_REF, strictly)
    `also`: paths in the other definition of the example (the feed of a sources.yml example) that must
    hold the same value, so that the two stay consistent."""

    base: str  # the base document's name in BASES
    path: tuple
    kind: str = "text"
    also: tuple = ()
    builds: bool = True  # whether an accepted value is built (not a `local_path`: it points elsewhere)

    def __str__(self) -> str:
        steps = [f"<{step.name}>" if isinstance(step, Key) else str(step) for step in self.path]
        return f"{self.base}:" + ".".join(steps)

    @property
    def family(self) -> str:
        return self.base.split("_")[0]

    def base_value(self) -> str:
        if self.path == (FILE_NAME,):
            return "orders"
        value = BASES[self.base]
        for step in self.path:
            value = step.name if isinstance(step, Key) else value[step]
        return str(value)


TOKEN = re.compile(r"[A-Za-z0-9_.:/-]+")
SOURCE_REF = re.compile(r"[A-Za-z_]\w*(\[((name|type|id)=)?[\w:. $-]+\]|\.[\w:$-]+)?", re.ASCII)


def strictly_valid(kind: str, value: str) -> bool:
    """Whether an accepted value keeps to its field's grammar: no whitespace, quotes or control characters
    in names, ids and tags (the text fields may hold anything)."""
    if kind in ("token", "ref"):
        return TOKEN.fullmatch(value) is not None
    if kind == "from":
        return SOURCE_REF.fullmatch(value) is not None
    return True


def names_another_column(example_field: Field, value: str) -> bool:
    """A `ref` or `from` value that names another raw or seed column than the base: valid, but its build
    fails for want of the column, which is no business of this test."""
    if example_field.kind not in ("ref", "from"):
        return False
    column = re.match(r"\s*([A-Za-z_]\w*)", value, re.ASCII)
    base = re.match(r"([A-Za-z_]\w*)", example_field.base_value(), re.ASCII)
    return column is not None and column.group(1) != base.group(1)


def place(doc: Any, path: tuple, value: str) -> Any:
    """A deep copy of `doc` with `value` at `path`."""
    doc = copy.deepcopy(doc)
    *parents, last = path
    target = doc
    for step in parents:
        target = target[step]
    if isinstance(last, Key):
        target = _renamed(target, last.name, value)
        return _set(doc, parents, target)
    target[last] = value
    return doc


def _renamed(mapping: dict, old: str, new: str) -> dict:
    return {(new if key == old else key): item for key, item in mapping.items()}


def _set(doc: Any, path: list, value: Any) -> Any:
    if not path:
        return value
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


def dump(doc: Any) -> str:
    """YAML text of `doc` that reads back as `doc`, whatever its strings hold."""
    text = yaml.dump(doc, Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=False, width=1_000_000)
    assert yaml.safe_load(text) == doc, text  # as the courier reads it
    return text


# -- the definitions the hostile text goes into -------------------------------------------------------

FEED = {
    "id": "df-fz0000", "source": "Shop", "name": "Orders", "description": "Orders of the shop.",
    "courier": "shop", "tag": "orders", "primary_key": ["order_id"], "last_updated": "placed_at",
    "columns": [
        {"name": "order_id", "type": "String", "required": True, "semantic": "pk", "description": "The order."},
        {"name": "amount", "type": "Integer", "description": "In cents."},
        {"name": "placed_at", "type": "Datetime", "semantic": "custom-placed"},
        {"name": "note", "type": "String", "rename_to": "memo"},
        {"name": "plan", "type": "String", "from": "attributes[plan]"},
        {"name": "channel", "type": "String", "from": "meta.channel"},
    ]}
FEED_UNNEST = {
    "id": "df-fz0000", "source": "Shop", "name": "Items", "courier": "shop", "tag": "orders",
    "primary_key": ["order_id", "sku"], "unnest": "items",
    "columns": [{"name": "order_id", "type": "String", "required": True},
                {"name": "sku", "type": "String", "required": True, "from": "items.sku"}]}
FEED_OLD_SPELLING = _renamed(FEED, "tag", "file")  # the key's old name, still read (with a warning)
EXPERIMENT = {
    "id": "fz", "experiment_id": "1001", "baseline": "11", "window": "48h", "cuped": "14d",
    "split": {"11": 50, "12": 50},
    "segments": ["country"], "multiple_exposures": "exclude", "prior": {"mean": "0%", "sd": "30%"},
    "decisions": "Optimizely:Decisions", "conversions": "Optimizely:Conversions",
    "metrics": [
        {"name": "purchases", "kind": "count", "event": "purchase", "cap_value": 20, "better": "lower",
         "guardrail": True, "max_harm": "2%"},
        {"name": "revenue", "kind": "sum", "event": "purchase", "value": "revenue_cents",
         "where": {"category": "electronics"}, "cap": "99%"},
        {"name": "views", "kind": "unique", "event": "detail_page_view"},
        {"name": "per_purchase", "kind": "ratio", "numerator": "revenue", "denominator": "purchases"},
    ]}
EXPERIMENT_FROM = {**EXPERIMENT, "metrics": [
    *EXPERIMENT["metrics"][:2],
    {"name": "calls", "kind": "count", "from": {"model": "support_calls", "visitor_id": "visitor_id",
                                                "timestamp": "call_start",
                                                "timestamp_format": "%m/%d/%Y %H:%M:%S", "timezone": "UTC"}},
    EXPERIMENT["metrics"][3]]}
SOURCES = {"couriers": {"shop": {
    "local_path": "mirror", "prefix": "exports",
    "entities": [{"object/file-pattern": "'orders/date='yyyy-MM-dd'/'",
                  "object/ready-marker": "'orders/date='yyyy-MM-dd'/_SUCCESS'",
                  "object/land-as": {"file/tag": "orders"}}],
    "load_operations": {"df-fz0000": [{"type": "load", "file": "orders"}]}}}}
BASES = {"feed": FEED, "feed_unnest": FEED_UNNEST, "feed_old": FEED_OLD_SPELLING, "experiment": EXPERIMENT,
         "experiment_from": EXPERIMENT_FROM, "sources": SOURCES}

_COLUMNS = ("columns",)
FEED_FIELDS = [
    Field("feed", ("id",), "token"), Field("feed", ("source",), "token"), Field("feed", ("name",), "token"),
    Field("feed", ("description",)), Field("feed", ("courier",), "token"), Field("feed", ("tag",), "token"),
    Field("feed", ("primary_key", 0), "token"), Field("feed", ("last_updated",), "token"),
    Field("feed", (Key("description"),), "token"),
    Field("feed", (*_COLUMNS, 0, "name"), "token"), Field("feed", (*_COLUMNS, 0, "description")),
    Field("feed", (*_COLUMNS, 0, "semantic"), "token"), Field("feed", (*_COLUMNS, 1, "name"), "ref"),
    Field("feed", (*_COLUMNS, 1, "type"), "token"), Field("feed", (*_COLUMNS, 1, "description")),
    Field("feed", (*_COLUMNS, 2, "semantic"), "token"), Field("feed", (*_COLUMNS, 3, "name"), "ref"),
    Field("feed", (*_COLUMNS, 3, "rename_to"), "token"), Field("feed", (*_COLUMNS, 4, "from"), "from"),
    Field("feed", (*_COLUMNS, 5, "from"), "from"), Field("feed", (*_COLUMNS, 3, Key("rename_to")), "token"),
    Field("feed", (FILE_NAME,)),
    Field("feed_unnest", ("unnest",), "ref"), Field("feed_unnest", (*_COLUMNS, 1, "from"), "from"),
    Field("feed_old", ("file",), "token"),
]
_METRICS = ("metrics",)
EXPERIMENT_FIELDS = [
    Field("experiment", ("id",), "token"), Field("experiment", ("experiment_id",), "token"),
    Field("experiment", ("baseline",), "token"), Field("experiment", ("window",)), Field("experiment", ("cuped",)),
    Field("experiment", ("split", Key("11")), "token"), Field("experiment", ("segments", 0), "token"),
    Field("experiment", ("decisions",), "token"), Field("experiment", ("conversions",), "token"),
    Field("experiment", (*_METRICS, 0, "name"), "token"), Field("experiment", (*_METRICS, 0, "kind"), "token"),
    Field("experiment", (*_METRICS, 0, "event")), Field("experiment", (*_METRICS, 1, "value"), "token"),
    Field("experiment", (*_METRICS, 1, "where", Key("category")), "token"),
    Field("experiment", (*_METRICS, 1, "where", "category")),
    Field("experiment", (*_METRICS, 3, "numerator"), "token"),
    Field("experiment", (*_METRICS, 3, "denominator"), "token"),
    Field("experiment", ("multiple_exposures",), "token"),
    Field("experiment", ("prior", "mean")), Field("experiment", ("prior", "sd")),
    Field("experiment", (*_METRICS, 0, "cap_value")), Field("experiment", (*_METRICS, 0, "better"), "token"),
    Field("experiment", (*_METRICS, 0, "guardrail")), Field("experiment", (*_METRICS, 0, "max_harm")),
    Field("experiment", (*_METRICS, 1, "cap")),
    Field("experiment", (FILE_NAME,)),
    Field("experiment_from", (*_METRICS, 2, "from", "model"), "token"),
    Field("experiment_from", (*_METRICS, 2, "from", "visitor_id"), "ref"),
    Field("experiment_from", (*_METRICS, 2, "from", "timestamp"), "ref"),
]
_SHOP = ("couriers", "shop")
_ENTITY = (*_SHOP, "entities", 0)
SOURCES_FIELDS = [
    Field("sources", ("couriers", Key("shop")), "token", also=(("courier",),)),
    Field("sources", (*_SHOP, "prefix")),
    Field("sources", (*_SHOP, "local_path"), builds=False),
    Field("sources", (*_ENTITY, "object/file-pattern")),
    Field("sources", (*_ENTITY, "object/ready-marker")),
    Field("sources", (*_ENTITY, "object/land-as", "file/tag"), "token", also=(("tag",),)),
    Field("sources", (*_SHOP, "load_operations", Key("df-fz0000")), "token", also=(("id",),)),
    Field("sources", (*_SHOP, "load_operations", "df-fz0000", 0, "file"), "token"),
]


@dataclass(frozen=True)
class Example:
    """One field of a definition holding a hostile value."""

    field: Field
    value: str

    def __str__(self) -> str:
        return f"{self.field} = {self.value!r}"


def examples(fields: list[Field]) -> st.SearchStrategy[Example]:
    return st.sampled_from(fields).flatmap(lambda f: hostile_text(f.base_value()).filter(
        lambda value: f.path != (FILE_NAME,) or is_file_name(value)).map(lambda value: Example(f, value)))


TRAILING = ["\n", "\r", "\r\n", "\u2028", "\u0085", "\x00", " "]  # after a valid value, each alone


def attack_grid(fields: list[Field]) -> list[Example]:
    """Every whole attack on the canary in every field, and each line break alone, after the field's
    valid value (which an attacker keeps, so that the rest of the definition still holds)."""
    return [Example(f, f.base_value() + attack) for f in fields for attack in CANARY_ATTACKS + TRAILING
            if f.path != (FILE_NAME,) or is_file_name(f.base_value() + attack)]


def is_file_name(text: str) -> bool:
    """Whether a file can have this name (plus `.yml`) here: no `/`, no NUL, not too long."""
    return "/" not in text and "\x00" not in text and len(f"{text}.yml".encode()) <= 255


def identity(base: str, k: int) -> dict:
    """The base document of example number `k` in a project of many: its own feed id, names and ids."""
    doc = copy.deepcopy(BASES[base])
    if base.startswith("feed"):
        doc.update(id=f"df-fz{k:04d}", name=f"{doc['name']}{k}")
    elif base.startswith("experiment"):
        doc["id"] = f"fz{k}"
    return doc


def definition_files(example: Example, k: int = 0) -> dict[str, str]:
    """The files example `k` writes (relative path -> text): its feed or experiment, or for sources.yml a
    courier `c<k>` and the feed that reads it."""
    f, value = example.field, example.value
    if f.family == "sources":
        courier = copy.deepcopy(SOURCES["couriers"]["shop"])
        courier["load_operations"] = {f"df-fz{k:04d}": courier["load_operations"]["df-fz0000"]}
        sources = {"couriers": {f"c{k}": courier}}
        path = tuple(f"c{k}" if step == "shop" else Key(f"c{k}") if step == Key("shop") else
                     Key(f"df-fz{k:04d}") if step == Key("df-fz0000") else f"df-fz{k:04d}" if step == "df-fz0000"
                     else step for step in f.path)
        feed = identity("feed", k) | {"courier": f"c{k}"}
        for also in f.also:
            feed = place(feed, also, value)
        return {"sources.yml": dump(place(sources, path, value)), f"feeds/shop/f{k}.yml": dump(feed)}
    folder = "feeds/shop" if f.family == "feed" else "experiments"
    doc = identity(f.base, k)
    if f.path == (FILE_NAME,):
        return {f"{folder}/{value}.yml": dump(doc)}
    # the field's own value leaves the document as it is (a number or true stays one, not its text)
    changed = doc if value == f.base_value() else place(doc, f.path, value)
    return {f"{folder}/{'f' if f.family == 'feed' else 'e'}{k}.yml": dump(changed)}
