"""How the courier takes an example of tests/injection.py: refused with one line naming the file, or
compiled into models whose SQL and Jinja do what the unchanged definition's do (the text inside
literals, quoted names and comments only) and whose YAML dbt reads as plain text.

`how_taken` writes the example into a project of its own, runs `courier feeds compile` and `courier
validate` in-process and says what is wrong; the examples the courier accepted are kept in ACCEPTED
for the tests that build them.
"""

from __future__ import annotations

import functools
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import sqlglot
import yaml
from sqlglot.errors import TokenError

from tests.cases import OPTIMIZELY_SOURCES
from tests.conftest import ROOT, SHOP_SOURCES, run_cli
from tests.injection import Example, definition_files, dump, strictly_valid
from tests.reliability_report import record

SEEDS = ROOT / "examples" / "lab-metrics" / "seeds"


# -- projects ----------------------------------------------------------------------------------------

# The columns of the shipped Optimizely feeds the experiments read (the others only slow the test down).
EXPERIMENT_COLUMNS = {"decisions": ("uuid", "visitor_id", "variation_id", "experiment_id", "is_holdback", "decided_at",
                                    "country"),
                      "conversions": ("uuid", "visitor_id", "event_name", "converted_at", "revenue_cents", "category")}


def skeleton(root: Path, family: str) -> None:
    """What an example's definition sits in: sources.yml, the feeds and seeds it refers to."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "mirror").mkdir(exist_ok=True)
    if family == "feed":
        (root / "sources.yml").write_text(SHOP_SOURCES)
    elif family == "experiment":
        (root / "sources.yml").write_text(OPTIMIZELY_SOURCES)
        write_definitions(root, experiment_feeds())
    if family != "sources":  # a seed for the experiments' `from:` metric, and for an attack to configure
        shutil.copytree(SEEDS, root / "seeds", dirs_exist_ok=True)


@functools.cache
def experiment_feeds() -> dict[str, str]:
    files = {}
    for tag, columns in EXPERIMENT_COLUMNS.items():
        doc = yaml.safe_load((ROOT / "feeds" / "optimizely" / f"{tag}.yml").read_text())
        doc["columns"] = [c for c in doc["columns"] if c.get("rename_to", c["name"]) in columns]
        files[f"feeds/optimizely/{tag}.yml"] = dump(doc)
    return files


def write_definitions(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if relative == "sources.yml" and path.exists():  # a batch: each example adds its own courier
            text = path.read_text() + text.split("\n", 1)[1]
        path.write_text(text, encoding="utf-8")


def compile_and_validate(root: Path) -> list:
    """`courier feeds compile`, then `courier validate` (which also checks the models are up to date)."""
    compiled = run_cli(root, "feeds", "compile")
    return [compiled] if compiled.exit_code != 0 else [compiled, run_cli(root, "validate")]


STALE = "generated model is missing or out of date"  # what validate says of models compile did not write


def disagreement(results: list) -> list[str]:
    """`courier validate` finding the models `courier feeds compile` has just written out of date."""
    if len(results) == 2 and results[1].exit_code != 0 and STALE in results[1].output:
        return [f"`courier validate` finds the models `courier feeds compile` has just written out of date: "
                f"{results[1].output.splitlines()[0]}"]
    return []


# -- refused in one line, or compiled inert ----------------------------------------------------------

def tracebacks(results: list) -> list[str]:
    found = [f"a traceback: {r.exception!r}" for r in results
             if r.exception is not None and not isinstance(r.exception, SystemExit) or "Traceback" in r.output]
    record("tracebacks_seen", len(found))
    return found


def refusal_problems(result, root: Path) -> list[str]:  # noqa: ANN001 - a click Result
    """A refusal is exit code 1 and lines that each say `Error:` or name a file, every line break of the
    hostile text escaped (str.splitlines breaks where a terminal or a log viewer might)."""
    line = re.compile(rf"^(Error: |{re.escape(str(root))}/|sources\.yml|feeds/|experiments/|models/)")
    strays = [text for text in result.output.splitlines() if text.strip() and not line.match(text)]
    return ([f"refused with exit code {result.exit_code}"] if result.exit_code != 1 else []) + \
        [f"refused in more than one line; the stray line: {text!r} of {result.output!r}" for text in strays[:1]]


def generated(root: Path) -> tuple[list, list[str]]:
    """The shapes of the generated SQL files (sorted), and the problems of the generated YAML files."""
    models = root / "models"
    shapes = sorted(sql_shape(path.read_text(encoding="utf-8")) for path in models.rglob("*.sql"))
    problems = [f"{path.relative_to(root)}: {problem}" for path in sorted(models.rglob("*.yml"))
                for problem in yaml_problems(path.read_text(encoding="utf-8"))]
    return shapes, problems


def shape_difference(shapes: list, base: list) -> str:
    """Where the first model whose shape the unchanged definition does not have departs from the nearest
    one it has: a few tokens around the first difference, Jinja's or SQL's."""
    new = next(shape for shape in shapes if shape not in base)
    if not isinstance(new[0], tuple):
        return " ".join(new)  # (does not lex or tokenize, why)

    def common(a: tuple, b: tuple) -> int:
        return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))

    nearest = max((b for b in base if isinstance(b[0], tuple)), key=lambda b: (new[0] == b[0], common(new[1], b[1])))
    part = 0 if new[0] != nearest[0] else 1
    at = common(new[part], nearest[part])
    return (f"{('Jinja', 'SQL')[part]} tokens {' '.join(new[part][max(at - 4, 0):at + 6])!r} where the unchanged "
            f"definition has {' '.join(nearest[part][max(at - 4, 0):at + 6])!r}")


_BASE_SHAPES: dict[str, list] = {}


def base_shapes(example: Example) -> list:
    """The shapes of the models the unchanged definition compiles into."""
    name = example.field.base
    if name not in _BASE_SHAPES:
        unchanged = Example(example.field, example.field.base_value())
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            skeleton(root, example.field.family)
            write_definitions(root, definition_files(unchanged))
            assert all(r.exit_code == 0 for r in compile_and_validate(root)), unchanged
            shapes, problems = generated(root)
            assert not problems, problems
        _BASE_SHAPES[name] = shapes
    return _BASE_SHAPES[name]


# Examples the courier accepted, per family, and how wrong they looked (SUSPICION): the tests that build
# accepted examples take theirs from here (and generate some when it is empty).
ACCEPTED: dict[str, dict[Example, int]] = {}
CHANGED_MODELS, OTHER_PROBLEMS, NOTHING = 2, 1, 0  # what looked wrong: generated SQL or YAML changed, or else


def how_taken(example: Example) -> tuple[bool, list[str]]:
    """Whether the courier accepted `example`, and what is wrong with how it took it."""
    accepted, problems, suspicion = _how_taken(example)
    if accepted:
        ACCEPTED.setdefault(example.field.family, {})[example] = suspicion
    return accepted, problems


def _how_taken(example: Example) -> tuple[bool, list[str], int]:
    record("injection_inputs_tried")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        skeleton(root, example.field.family)
        write_definitions(root, definition_files(example))
        results = compile_and_validate(root)
        problems, stale = tracebacks(results), disagreement(results)
        refused = next((r for r in results if r.exit_code != 0), None)
        if refused is not None and not stale:
            return False, problems + refusal_problems(refused, root), NOTHING
        problems += stale  # compile accepted it
        if not strictly_valid(example.field.kind, example.value):
            problems.append(f"accepted, though `{example.field.path[-1]}` is a {example.field.kind} and this is "
                            "not one")
        shapes, changed = generated(root)
        if example.field.kind != "from" and shapes != base_shapes(example):
            changed.append(f"accepted, and it changed what the SQL does: {shape_difference(shapes, base_shapes(example))}")
        return True, problems + changed, CHANGED_MODELS if changed else OTHER_PROBLEMS if problems else NOTHING


# -- the shape of generated models --------------------------------------------------------------------

DBT_JINJA = jinja2.Environment()
INERT_BRACE = "{{ '{' }}"  # what a brace of user text becomes in generated files: it renders a brace
QUOTED_NAME = re.compile(r"\{\{ q\('[^'\\]*'\) \}\}")  # a column name the adapter quotes: an identifier
# A string literal the target engine's macro quotes, from a Jinja string with escapes: a literal.
QUOTED_STRING = re.compile(r"\{\{ courier_string\('(?:[^'\\]|\\.)*'\) \}\}")


def _reserved() -> frozenset[str]:
    rows = duckdb.sql("select keyword_name from duckdb_keywords() where keyword_category != 'unreserved'").fetchall()
    return frozenset(name for (name,) in rows)


RESERVED = _reserved()


def sql_shape(text: str) -> tuple:
    """What a generated model's SQL and Jinja do, without what they say: the Jinja tokens (names kept,
    strings as `str`) and the SQL tokens around them (reserved words and punctuation kept; identifiers,
    literals and numbers as `word`; comments dropped). Text that stays inside a literal, a quoted name
    or a comment leaves the shape as it was; text that gets out adds tokens. (A brace of user text is
    written `{{ '{' }}`, which renders a brace: it is text, wherever it stands; `{{ q('Name') }}` is a
    quoted name and `{{ courier_string('...') }}` a string literal, when their Jinja string is whole.)"""
    try:
        plain = QUOTED_STRING.sub("'_string_'", QUOTED_NAME.sub("q_name", text.replace(INERT_BRACE, "_brace_")))
        lexed = list(DBT_JINJA.lex(plain))
    except jinja2.TemplateSyntaxError as exc:
        return ("jinja does not lex", str(exc))
    sql, jinja = [], []
    for _, kind, value in lexed:
        if kind == "data":
            sql.append(value)
        elif kind != "whitespace":
            if kind in ("variable_begin", "block_begin"):
                sql.append(" jinja ")
            jinja.append("str" if kind == "string" else value)
    try:
        tokens = sqlglot.tokenize("".join(sql), read="duckdb")
    except TokenError as exc:
        return ("sql does not tokenize", str(exc))
    words = [_word(token) for token in tokens]
    return tuple(jinja), tuple(words)


LITERALS = ("STRING", "HEREDOC_STRING", "NATIONAL_STRING", "RAW_STRING", "BIT_STRING", "HEX_STRING",
            "BYTE_STRING", "IDENTIFIER", "NUMBER")


def _word(token: Any) -> str:
    """A SQL token as the shape keeps it: `word` for names and literals, else its text."""
    if token.token_type.name in LITERALS:
        return "word"
    text = token.text.lower()
    return "word" if re.fullmatch(r"\w+", text, re.ASCII) and text not in RESERVED else text


def yaml_problems(text: str) -> list[str]:
    """What is wrong with a generated YAML file: its header must be one comment line, and every string in
    it inert to dbt's Jinja (plain text, or `{{ '{' }}`, which renders a brace)."""
    problems = []
    header, _, _ = text.partition("\n")
    if not header.startswith("# generated from") or any(c in header for c in "\r\u2028\u2029\u0085"):
        problems.append(f"header is not one comment line: {header!r}")
    try:
        doc = yaml.load(text, Loader=yaml.CSafeLoader)  # as dbt reads it
    except yaml.YAMLError as exc:
        return [*problems, f"does not parse: {str(exc).splitlines()[0]}"]
    for string in _strings(doc):
        if "{" in string.replace(INERT_BRACE, ""):
            problems.append(f"Jinja can read {string!r}")
    return problems


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in (*_strings(key), *_strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []
