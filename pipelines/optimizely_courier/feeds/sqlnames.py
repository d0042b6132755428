"""How text from a definition (a feed, an experiment, a file name) reaches the generated dbt files.

It reaches them in four shapes only, each safe whatever the text holds:
- a name (`sql_name`): validated against an identifier grammar first, quoted by the adapter when an
  engine reserves the word or it is not lower case;
- a string literal (`string_literal`): every character outside a small plain set is written as a
  Jinja unicode escape inside a Jinja string, so the literal's source holds no quote, brace, newline
  or backslash-escape of SQL; a dbt macro (`courier_string`) then quotes the decoded text the way the
  target engine reads its literals;
- a comment (`comment`): one line, control and line-separator characters escaped, inert to Jinja;
- YAML (descriptions, meta): dumped by PyYAML, every string made inert to Jinja (`inert`).
"""

from __future__ import annotations

import re

from optimizely_courier.errors import one_line

# Words some supported engine reserves, beside DuckDB's own (asked from DuckDB below): Snowflake's,
# BigQuery's and Spark's ANSI-mode reserved words. A column named one of them is quoted.
OTHER_ENGINES_RESERVED = frozenset("""
    account all alter and any array as asc assert_rows_modified at authorization between both by case cast check
    collate column connect connection constraint contains create cross cube current current_date current_time
    current_timestamp current_user database default define delete desc distinct drop else end enum escape except
    exclude exists extract false fetch filter following for foreign from full grant group grouping groups gscluster
    hash having if ignore ilike in increment inner insert intersect interval into is issue join lateral leading left
    like limit localtime localtimestamp lookup merge minus natural new no not null nulls of offset on only or order
    organization outer over overlaps partition preceding primary proto qualify range recursive references regexp
    respect revoke right rlike rollup row rows sample schema select session_user set some start struct table
    tablesample then time to trailing treat trigger true try_cast unbounded union unique unknown unnest update user
    using values view when whenever where window with within
""".split())


def _reserved() -> frozenset[str]:
    import duckdb

    rows = duckdb.sql("select keyword_name from duckdb_keywords() where keyword_category != 'unreserved'").fetchall()
    return OTHER_ENGINES_RESERVED | {name for (name,) in rows}


RESERVED = _reserved()
PLAIN_NAME = re.compile(r"^[a-z_][a-z0-9_]*\Z")
# Characters a string literal's Jinja source may hold as they are; every other one is escaped.
_PLAIN_LITERAL = re.compile(r"[A-Za-z0-9 _.:@#%&()+,/=?!-]")


def is_reserved(name: str) -> bool:
    """Whether some supported engine reserves `name` (any case) as a keyword."""
    return name.lower() in RESERVED


def sql_name(name: str) -> str:
    """A column name as the model writes it: plain, as hand-written dbt does, unless an engine would
    read it otherwise (a reserved word such as `timestamp`, or upper case): then quoted by the adapter.
    `name` must already match an identifier grammar (the feed's or the experiment's)."""
    return name if PLAIN_NAME.match(name) and name not in RESERVED else "{{ q('" + name + "') }}"


def jinja_arg(sql: str) -> str:
    """A name as `sql_name` writes it, as an argument of a macro call (a quoted one stays quoted by the
    adapter)."""
    if sql.startswith("{{ ") and sql.endswith(" }}"):
        return sql[3:-3]
    return f"'{sql}'"


def string_literal(text: str) -> str:
    """SQL for the string `text` on every engine: `'text'` when it is plain (letters, digits, spaces and
    punctuation no engine escapes), else `{{ courier_string('<escaped>') }}`."""
    if all(_PLAIN_LITERAL.match(c) for c in text):
        return f"'{text}'"
    return "{{ courier_string(" + jinja_string(text) + ") }}"


def jinja_string(text: str) -> str:
    """`text` as a Jinja string literal, an argument of a macro call: every character outside the plain
    set written as a unicode escape, so the literal holds no quote, brace, newline or backslash of its own."""
    return "'" + "".join(c if _PLAIN_LITERAL.match(c) else _escape(c) for c in text) + "'"


def _escape(character: str) -> str:
    code = ord(character)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def comment(text: str) -> str:
    """`text` for a `--` comment of a generated model: one line, and nothing dbt's Jinja would run."""
    return inert(one_line(text))


def inert(text: str) -> str:
    """Text from a feed as dbt must show it, and never run it.

    dbt renders every string of a model's SQL and YAML with Jinja (descriptions included, when docs
    are built), so a description saying `{{ env_var('SECRET') }}` would be evaluated. Each `{`
    becomes `{{ '{' }}`, which renders back to `{` and can open no expression, statement or comment.
    """
    return text.replace("{", "{{ '{' }}")
