"""User text never becomes code: hostile strings (line breaks of every kind, NUL, quotes, SQL and Jinja
comment and expression markers, `$$`, whole attacks) in every string field of feeds, experiments and
sources.yml, and in the names of their files (tests/injection.py lists the fields and the text).

Each is refused with one line naming the file, or compiled into models where it stays inert text
(tests/injection_checks.py) and built by a real `dbt build` on a warehouse holding a canary table,
which nothing may touch. Validation and compilation run in-process, for every attack in every field
and for what hypothesis generates (a failing example shrunk to the smallest); the examples the courier
accepts are then built: those that looked wrong one by one, the others many to a project, one `dbt
build` a batch, and a batch that fails is split until the examples that fail it are found.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings

from optimizely_courier.config.sources import load_project
from optimizely_courier.errors import BuildError, one_line
from optimizely_courier.experiments.definition import load_experiments
from optimizely_courier.feeds.feed import load_feeds
from optimizely_courier.landing.e3 import DECISIONS_SCHEMA, EVENTS_SCHEMA
from optimizely_courier.runs.build import run_dbt
from tests.conftest import copy_dbt_files, run_cli, write_part
from tests.injection import (
    EXPERIMENT_FIELDS,
    FEED_FIELDS,
    SOURCES_FIELDS,
    Example,
    attack_grid,
    definition_files,
    examples,
    names_another_column,
)
from tests.injection_checks import (
    ACCEPTED,
    compile_and_validate,
    disagreement,
    how_taken,
    refusal_problems,
    skeleton,
    tracebacks,
    write_definitions,
)
from tests.reliability_report import record
from tests.test_experiments import T0, decision, event, write

pytestmark = [pytest.mark.reliability, pytest.mark.injection]  # a few minutes: make reliability, not make test
HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much, HealthCheck.too_slow]
REFUSE_OR_INERT = settings(max_examples=12, deadline=None, suppress_health_check=HEALTH)
COLLECT = settings(max_examples=60, deadline=None, suppress_health_check=HEALTH, phases=[Phase.generate])
BATCH = 24  # examples built in one project
MAX_BUILT = 48  # accepted examples built per family (sources.yml: SOURCES_BUILT, each a courier run of its own)
SOURCES_BUILT = 4
MAX_SUSPECTS = 8  # accepted examples that looked wrong, built one by one, per family
MAX_BUILDS = 16  # dbt builds per family, splitting included
DAY = "2026-11-25"
CANARY = [(1, "sing")]
FAMILIES = {"feed": FEED_FIELDS, "experiment": EXPERIMENT_FIELDS, "sources": SOURCES_FIELDS}


def test_the_unchanged_definitions_are_accepted_and_compile_alike():
    for fields in FAMILIES.values():
        for f in fields:
            assert how_taken(Example(f, f.base_value())) == (True, []), f


@pytest.mark.parametrize("family", FAMILIES)
def test_every_attack_and_line_break_in_every_field_is_refused_in_one_line_or_compiled_inert(family):
    taken = [(example, how_taken(example)[1]) for example in attack_grid(FAMILIES[family])]
    failures = [f"{example}: {one_line('; '.join(problems))}" for example, problems in taken if problems]
    assert not failures, f"{len(failures)} of {len(taken)} attacks:\n" + "\n".join(failures)


@pytest.mark.parametrize("field", [f for fields in FAMILIES.values() for f in fields], ids=str)
def test_each_field_refuses_hostile_text_in_one_line_or_compiles_it_inert(field):
    @REFUSE_OR_INERT
    @given(examples([field]))
    def refused_or_inert(example):
        _, problems = how_taken(example)
        assert not problems, f"{example}: " + one_line("; ".join(problems))

    refused_or_inert()


# -- accepted text builds, and the canary is never touched --------------------------------------------

def accepted_examples(fields: list, most: int) -> tuple[list[Example], list[Example]]:
    """The examples of the tests above (the attacks and what hypothesis generated) that the courier
    accepted: those that looked wrong there (models whose SQL or YAML changed first, then values outside
    their grammar), at most MAX_SUSPECTS, and at most `most` others, each list taking the fields in turn,
    attacks first."""
    found = ACCEPTED.setdefault(fields[0].family, {})
    attacks = attack_grid(fields)
    if not found:  # this test runs without the ones before it

        @COLLECT
        @given(examples(fields))
        def collect(example):
            how_taken(example)

        collect()
        for example in attacks:
            how_taken(example)
    order = {e: i for i, e in enumerate(attacks)}
    chosen = sorted((e for e in found if e.field.builds and not names_another_column(e.field, e.value)),
                    key=lambda e: (-found[e], order.get(e, len(order)), len(e.value), str(e)))
    turn = {e: sum(1 for other in chosen[:i] if other.field == e.field) for i, e in enumerate(chosen)}
    chosen.sort(key=lambda e: (-found[e], e not in order, turn[e]))
    return [e for e in chosen if found[e]][:MAX_SUSPECTS], [e for e in chosen if not found[e]][:most]


class Builds:
    """dbt builds of batches of examples on copies of a template project, within a budget."""

    def __init__(self, template: Path, work: Path, build: Callable[[Path, list[Example]], list[str]]):
        self.template, self.work, self.build, self.count = template, work, build, 0

    def failures(self, batch: list[Example]) -> list[tuple[list[Example], list[str]]]:
        """The examples of `batch` that fail it, each with what went wrong (a group of them when the
        budget ran out before they were told apart)."""
        self.count += 1
        root = self.work / f"build-{self.count}"
        shutil.copytree(self.template, root)
        problems = self.build(root, batch)
        if not problems:
            return []
        if len(batch) == 1 or self.count >= MAX_BUILDS:
            return [(batch, problems)]
        half = len(batch) // 2
        return self.failures(batch[:half]) + self.failures(batch[half:])


def check_builds(template: Path, work: Path, fields: list, build: Callable, batch: int = BATCH,
                 most: int = MAX_BUILT) -> None:
    """Build the examples that looked wrong one by one (what they do), the others many at a time."""
    suspects, others = accepted_examples(fields, most)
    builds = Builds(template, work, build)
    failed = [found for example in suspects for found in builds.failures([example])]
    failed += [found for start in range(0, len(others), batch) for found in builds.failures(others[start:start + batch])]
    chosen = suspects + others
    report = [f"{' | '.join(map(str, batch))}: {one_line('; '.join(problems))}" for batch, problems in failed]
    assert not failed, f"{len(failed)} of {len(chosen)} accepted examples did not build cleanly:\n" + "\n".join(report)


def warehouse(root: Path) -> dict:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as db:
        tables = set(db.execute("select table_schema, table_name from information_schema.tables").fetchall())
        schemas = {s for (s,) in db.execute("select schema_name from information_schema.schemata "
                                             "where catalog_name = current_database()").fetchall()}
        canary = db.execute("select * from main.canary order by all").fetchall()
        counts = {(s, t): db.execute(f'select count(*) from "{s}"."{t}"').fetchall()[0][0] for s, t in tables
                  if s in ("domain", "experiments")}
    return {"tables": tables, "schemas": schemas, "canary": canary, "counts": counts}


RECORD_TABLES = {("courier", name) for name in ("builds", "built_files", "experiment_builds", "key_checks")}
LANDING_TABLES = ("_courier_files", "_dlt_loads", "_dlt_pipeline_state", "_dlt_version")


def damage(root: Path, before: dict, expected_counts: Callable, built: bool = True) -> list[str]:
    """What a build did that it should not have: the canary changed, tables or schemas nobody defined;
    and when it succeeded (`built`), tables missing or holding other row counts than `expected_counts`
    (the template's as they were)."""
    after = warehouse(root)
    feeds, experiments = load_feeds(root), load_experiments(root)
    seeds = {("main", path.stem) for path in (root / "seeds").glob("*.csv")}
    landed = {(courier.dataset, table) for courier in load_project(root).couriers.values()
              for table in (*LANDING_TABLES, *(entity.tag for entity in courier.entities))}
    tables = before["tables"] | RECORD_TABLES | seeds | landed | {
        table for f in feeds for table in (("staging", f"stg_{f.model_name}"), ("domain", f.domain_table),
                                            ("domain", f"{f.domain_table}__rejected"), ("courier", f"keys__{f.id}"))} | {
        ("experiments", f"exp_{e.id}__{model}") for e in experiments for model in ("observations", "results")}
    problems = []
    if after["canary"] != CANARY:
        record("canary_changes")
        problems.append(f"the canary changed: {after['canary']}")
    if after["tables"] - tables or after["schemas"] - before["schemas"] - {s for s, _ in tables}:
        problems.append(f"tables or schemas nobody defined: {sorted(after['tables'] - tables)} "
                        f"{sorted(after['schemas'] - before['schemas'] - {s for s, _ in tables})}")
    if not built:
        return problems
    if tables - after["tables"]:
        problems.append(f"tables missing: {sorted(tables - after['tables'])}")
    counts = {**before["counts"], **expected_counts(feeds, experiments)}
    wrong = {table: (after["counts"].get(table), rows) for table, rows in counts.items()
             if after["counts"].get(table) != rows and table in after["tables"]}
    if wrong:
        problems.append(f"rows (found, expected): {wrong}")
    return problems


def dbt_build(root: Path, batch: list[Example], expected_counts: Callable) -> list[str]:
    for k, example in enumerate(batch, 1):
        write_definitions(root, definition_files(example, k))
    before = warehouse(root)
    results = compile_and_validate(root)
    problems = tracebacks(results) + disagreement(results)
    if any(r.exit_code != 0 for r in results) and not problems:  # each was accepted alone
        return [f"refused together: {results[-1].output.strip().splitlines()[0]}"]
    if results[0].exit_code != 0:
        return problems
    try:
        run_dbt(load_project(root), "build")
    except BuildError as exc:
        problems.append(str(exc))
    return problems + damage(root, before, expected_counts, built=not problems)


def add_canary(root: Path) -> None:
    with duckdb.connect(str(root / "warehouse.duckdb")) as db:
        db.execute("create table main.canary (id integer, word varchar)")
        db.execute("insert into main.canary values (?, ?)", CANARY[0])


# The feeds' raw table: three orders, five items between them.
ORDERS = pa.schema([("order_id", pa.string()), ("amount", pa.int64()), ("placed_at", pa.timestamp("us", "UTC")),
                    ("note", pa.string()),
                    ("attributes", pa.list_(pa.struct([("id", pa.string()), ("name", pa.string()),
                                                       ("value", pa.string())]))),
                    ("meta", pa.struct([("channel", pa.string())])),
                    ("items", pa.list_(pa.struct([("sku", pa.string())])))])


def order(number: int, skus: list[str]) -> dict:
    return {"order_id": f"o{number}", "amount": 100 * number, "placed_at": dt.datetime(2026, 11, 25, number, tzinfo=dt.UTC),
            "note": "n", "attributes": [{"id": "1", "name": "plan", "value": "pro"}], "meta": {"channel": "web"},
            "items": [{"sku": sku} for sku in skus]}


ORDER_ROWS = [order(1, ["s0"]), order(2, ["s0", "s1"]), order(3, ["s0", "s1"])]
ITEMS = sum(len(row["items"]) for row in ORDER_ROWS)


@pytest.fixture(scope="module")
def feed_template(tmp_path_factory) -> Path:
    """The shop courier's orders landed, no feed yet, and the canary."""
    root = tmp_path_factory.mktemp("feeds") / "template"
    root.mkdir()
    copy_dbt_files(root)
    skeleton(root, "feed")
    write_part(root, DAY, "part-0.parquet", ORDER_ROWS, ORDERS)
    landed = run_cli(root, "run", "shop", "--date", DAY)
    assert landed.exit_code == 0, landed.output
    add_canary(root)
    return root


def feed_counts(feeds: list, experiments: list) -> dict:
    counts = {}
    for f in feeds:
        counts[("domain", f.domain_table)] = ITEMS if f.unnest else len(ORDER_ROWS)
        counts[("domain", f"{f.domain_table}__rejected")] = 0
    return counts


def test_accepted_feed_text_builds_and_never_touches_the_canary(feed_template, tmp_path):
    check_builds(feed_template, tmp_path, FEED_FIELDS, lambda root, batch: dbt_build(root, batch, feed_counts))


EXPERIMENT_ID, UNITS = "1001", 2  # the experiment of the decisions below, and its units


@pytest.fixture(scope="module")
def experiment_template(tmp_path_factory) -> Path:
    """The Optimizely feeds built on a day of decisions and conversions, the support-call seed, the canary."""
    root = tmp_path_factory.mktemp("experiments") / "template"
    root.mkdir()
    copy_dbt_files(root)
    skeleton(root, "experiment")
    write(root, "decisions", DAY, f"experiment={EXPERIMENT_ID}", [
        decision("d1", "v1", "11", T0, EXPERIMENT_ID, country="DE"),
        decision("d2", "v2", "12", T0, EXPERIMENT_ID, country="FR")], DECISIONS_SCHEMA)
    write(root, "events", DAY, "event=purchase", [
        event("e1", "v1", "purchase", T0 + dt.timedelta(minutes=5), revenue=500, category="electronics")],
        EVENTS_SCHEMA)
    compiled = run_cli(root, "feeds", "compile")
    landed = run_cli(root, "run", "optimizely", "--date", DAY)
    assert compiled.exit_code == 0 and landed.exit_code == 0, compiled.output + landed.output
    add_canary(root)
    return root


def experiment_counts(feeds: list, experiments: list) -> dict:
    return {("experiments", f"exp_{e.id}__observations"): UNITS if e.experiment_id == EXPERIMENT_ID else 0
            for e in experiments}


def test_accepted_experiment_text_builds_and_never_touches_the_canary(experiment_template, tmp_path):
    check_builds(experiment_template, tmp_path, EXPERIMENT_FIELDS,
                 lambda root, batch: dbt_build(root, batch, experiment_counts))


@pytest.fixture(scope="module")
def sources_template(tmp_path_factory) -> Path:
    """No courier yet (each example adds its own), and the canary."""
    root = tmp_path_factory.mktemp("sources") / "template"
    root.mkdir()
    copy_dbt_files(root)
    skeleton(root, "sources")
    add_canary(root)
    return root


def place_data(root: Path, name: str) -> bool:
    """The orders where courier `name`'s prefix and patterns (as the courier reads them) say they are;
    False when no file can be there."""
    courier = load_project(root).courier(name)
    [entity] = courier.entities
    day = dt.date.fromisoformat(DAY)
    try:
        key = courier.local_path / courier.prefix / entity.pattern.render(day)
        path = key / "part-0.parquet" if entity.pattern.render(day).endswith("/") else key  # a dataset, or one file
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(ORDER_ROWS, schema=ORDERS), path)
        marker = courier.local_path / courier.prefix / entity.ready_marker.render(day)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except (OSError, ValueError):
        return False
    return True


def courier_run(root: Path, batch: list[Example]) -> list[str]:
    """An example's courier run: landing its files, then building its feed."""
    [example] = batch
    files = definition_files(example, 1)
    write_definitions(root, files)
    [name] = yaml.safe_load(files["sources.yml"])["couriers"]
    placed = place_data(root, name)
    before = warehouse(root)
    results = [*compile_and_validate(root), run_cli(root, "run", name, "--date", DAY)]
    problems = tracebacks(results)
    if placed and any(r.exit_code != 0 for r in results):
        problems.append(f"courier run failed: {results[-1].output.strip().splitlines()[-1]}")
    elif results[-1].exit_code != 0:  # nowhere to put the files: the run finds none, and says so
        problems += refusal_problems(results[-1], root)
    return problems + damage(root, before, feed_counts if placed else lambda *_: {}, built=not problems)


def test_accepted_sources_text_runs_and_never_touches_the_canary(sources_template, tmp_path):
    check_builds(sources_template, tmp_path, SOURCES_FIELDS, courier_run, batch=1, most=SOURCES_BUILT)

