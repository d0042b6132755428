"""Definitions written as an adversary would: no text from a feed, an experiment or a file name runs as
SQL or Jinja; names that would collide or that an engine reserves are quoted or refused in one line."""

from __future__ import annotations

import jinja2
import pyarrow as pa
import pytest

from optimizely_courier.feeds.sqlnames import comment, string_literal
from tests.cases import OPTIMIZELY_SOURCES, SHOP_LOADING_ORDERS
from tests.conftest import copy_dbt_files, query, run_cli, write_feed, write_part

DAY = "2026-11-25"
EXPERIMENT = """id: checkout
experiment_id: "1001"
{extra}metrics:
{metrics}"""
PURCHASES = "  - {name: purchases, kind: count, event: purchase}\n"


@pytest.fixture
def project(tmp_path):
    """The repository's dbt files and feeds (the experiments' domain tables), no data."""
    root = tmp_path / "project"
    root.mkdir()
    copy_dbt_files(root, "feeds")
    (root / "sources.yml").write_text(OPTIMIZELY_SOURCES)
    (root / "experiments").mkdir()
    return root


def experiment(root, metrics: str = PURCHASES, extra: str = "", name: str = "checkout.yml") -> None:
    (root / "experiments" / name).write_text(EXPERIMENT.format(extra=extra, metrics=metrics))


def refused(root, *command: str) -> str:
    """The one line a refused definition ends in (compile and validate agree)."""
    result = run_cli(root, *command)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_a_newline_in_an_experiment_id_is_refused_before_any_sql_is_written(project):
    (project / "experiments" / "checkout.yml").write_text(EXPERIMENT.format(extra="", metrics=PURCHASES).replace(
        '"1001"', '"1001\\n; delete from domain.\\"Optimizely:Conversions\\"; --"'))

    line = refused(project, "feeds", "compile")

    assert line.startswith("Error: experiments/checkout.yml:2: `experiment_id`: expected an Optimizely id (digits")
    assert "\n" not in line and not (project / "models" / "experiments").exists()
    assert refused(project, "validate").startswith("experiments/checkout.yml:2: `experiment_id`")


@pytest.mark.parametrize("folder, text", [
    ("experiments", EXPERIMENT.format(extra="", metrics=PURCHASES)),
    ("feeds/optimizely", "id: df-zzzzzz\n"),
])
def test_a_definition_whose_file_name_holds_a_newline_is_refused_naming_it_on_one_line(project, folder, text):
    (project / folder / "x\nselect 1; --.yml").write_text(text)

    line = refused(project, "feeds", "compile")

    assert line == (f"Error: {folder}/x\\nselect 1; --.yml: a definition's file name may hold only letters, digits, "
                    "`_`, `-` and `.`: rename the file")


@pytest.mark.parametrize("text", ["it's", "a\\b", "{{ env_var('X') }}", "{% do x %}", "$$ -- */ /*", "ünï\u2028",
                                  "tab\there", "\U0001F600", "plain text, 100% (a/b)"])
def test_a_string_literal_reaches_dbt_as_escapes_that_jinja_decodes_to_the_exact_text(text):
    literal = string_literal(text)
    if literal.startswith("'"):  # plain text is written as it is
        assert literal == f"'{text}'" and not set(text) & set("'\\{}\n\r")
        return
    argument = literal.removeprefix("{{ courier_string(").removesuffix(") }}")

    assert set(argument[1:-1]) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _.:@#%&()+,/=?!-\\")
    assert jinja2.Environment().from_string("{{ " + argument + " }}").render() == text


def test_a_comment_is_one_line_that_jinja_leaves_alone():
    text = comment("a\nb\rc\u2028d\u2029e\x85f\x00{{ x }}{% y %}")

    assert text.isprintable() and "{{ x" not in text and "{%" not in text


@pytest.mark.parametrize("metrics, extra, message", [
    ("  - {name: rev, kind: count, event: purchase}\n  - {name: rev__before, kind: count, event: purchase}\n",
     "cuped: 14d\n", "`metrics[1].name`: use lower-case letters, digits and single `_`s, starting with a letter "
                     "(`__` is kept for the columns the courier derives, such as `<metric>__before`)"),
    ("  - {name: variation_id, kind: count, event: purchase}\n", "",
     "`metrics[0].name`: `variation_id` is a column of every unit: give the metric another name"),
    (PURCHASES + "  - {name: country, kind: count, event: purchase}\n", "segments: [country]\n",
     "`metrics[1].name`: `country` is a segment: give the metric another name"),
    (PURCHASES, "segments: [visitor_id]\n", "`segments`: `visitor_id` is a column of every unit; segments are other "
                                            "decisions columns"),
    (PURCHASES + "  - {name: purchases, kind: unique, event: purchase}\n", "",
     "`metrics[1].name`: `purchases` is the name of another metric: give the metric another name"),
    ("  - {name: order, kind: count, event: purchase}\n", "",
     "`metrics[0].name`: `order` is a word SQL reserves on some engine: give the metric another name"),
    ("  - {name: select, kind: count, event: purchase}\n", "",
     "`metrics[0].name`: `select` is a word SQL reserves on some engine: give the metric another name"),
    (PURCHASES, 'baseline: "1; drop table x"\n', "`baseline`: expected an Optimizely id (digits"),
    (PURCHASES, "split: {\"1\": 50, \"x'y\": 50}\n", "`split`: expected variation ids (digits) as keys; got \"x'y\""),
    ("  - {name: views, kind: count, event: \"a\\nb\"}\n", "", "`metrics[0].event`: expected one line of "
                                                               "printable text; got 'a\\nb'"),
])
def test_names_that_collide_or_that_sql_reserves_are_refused_with_file_line_and_key(project, metrics, extra, message):
    experiment(project, metrics, extra)

    line = refused(project, "feeds", "compile")

    assert line.startswith("Error: experiments/checkout.yml:") and message in line, line


@pytest.mark.parametrize("metrics, other, model, expected", [
    ("  - {name: m, kind: count, from: {model: exp_checkout__results}}\n", None, None,
     "`exp_checkout__results` is built from this experiment: a metric cannot read its own results"),
    ("  - {name: m, kind: count, from: {model: exp_other__results}}\n",
     "  - {name: n, kind: count, from: {model: exp_checkout__observations}}\n", None,
     "`exp_other__results` depends on this experiment's own models (exp_other__results -> exp_other__observations "
     "-> exp_checkout__observations): a metric cannot read them"),
    ("  - {name: m, kind: count, from: {model: calls_by_variation}}\n", None,
     "select * from {{ ref('exp_checkout__results') }}\n",
     "`calls_by_variation` depends on this experiment's own models (calls_by_variation -> exp_checkout__results): "
     "a metric cannot read them"),
])
def test_a_metric_reading_its_own_experiments_models_is_refused_at_compile(project, metrics, other, model, expected):
    experiment(project, metrics)
    if other:
        (project / "experiments" / "other.yml").write_text(EXPERIMENT.format(extra="", metrics=other).replace(
            "id: checkout", "id: other"))
    if model:
        (project / "models" / "marts").mkdir(parents=True)
        (project / "models" / "marts" / "calls_by_variation.sql").write_text(model)

    line = refused(project, "feeds", "compile")

    assert expected in line, line
    assert refused(project, "validate").endswith(expected)


RESERVED = """id: df-aaaaaa
source: Shop
name: Orders
courier: shop
tag: orders
primary_key: [order_id]
columns:
  - {name: order_id, type: String, required: true}
  - {name: all, type: Integer, required: true}
  - {name: select, type: String, rename_to: Select}
"""


def test_a_feed_column_named_a_reserved_word_builds_and_keeps_its_values(tmp_path):
    root = tmp_path / "shop"
    root.mkdir()
    copy_dbt_files(root)
    (root / "sources.yml").write_text(SHOP_LOADING_ORDERS)
    write_feed(root, RESERVED)
    write_part(root, DAY, "part-0.parquet", [{"order_id": "a", "all": 1, "select": "x"}],
               pa.schema([("order_id", pa.string()), ("all", pa.int64()), ("select", pa.string())]))

    compiled = run_cli(root, "feeds", "compile")
    validated = run_cli(root, "validate")
    ran = run_cli(root, "run", "shop", "--date", DAY)

    assert compiled.exit_code == 0 and validated.exit_code == 0, compiled.output + validated.output
    assert ran.exit_code == 0, ran.output
    assert query(root, 'select order_id, "all", "Select" from domain."Shop:Orders"') == [("a", 1, "x")]
