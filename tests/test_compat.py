"""The dlt and dbt internals the package relies on go through compat.py, which names the versions they were checked
against; outside them a command fails with one error naming the installed version and the supported range. Errors
that decide what happens next are told apart by type, with what they carry, never by their text."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from optimizely_courier import compat
from optimizely_courier.errors import NotReadyError, UnsupportedVersion
from tests.conftest import ROOT, SHOP_SOURCES, run_cli, write_feed
from tests.test_runs import FEED, write_part

PACKAGE = ROOT / "pipelines"
# dlt's and dbt's public API, used where it is needed (everything else comes through compat.py)
PUBLIC = {"import dlt", "from dlt.pipeline.exceptions import PipelineStepFailed", "from dbt.cli.main import dbtRunner"}


def test_no_module_but_compat_imports_a_dlt_or_dbt_internal():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "compat.py":
            continue
        for line in path.read_text().splitlines():
            statement = line.strip()
            if re.match(r"(from|import) (dlt|dbt)\b", statement) and statement not in PUBLIC:
                found.append(f"{path.relative_to(PACKAGE)}: {statement}")
    assert found == []


def test_the_installed_dlt_and_dbt_are_in_the_checked_ranges():
    for supported in (compat.DLT, compat.DBT_CORE, compat.DBT_DUCKDB):
        assert supported.holds(compat.require(supported)), supported


def test_a_version_outside_the_checked_range_is_one_error_naming_it_and_the_range():
    installed = compat.require(compat.DLT)
    future = compat.Supported("dlt", (9, 0, 0), (10,), "none")

    with pytest.raises(UnsupportedVersion) as raised:
        compat.require(future)

    assert str(raised.value) == (f"dlt {installed} is installed; optimizely-courier supports dlt>=9.0.0,<10: "
                                 "pip install 'dlt>=9.0.0,<10'")
    assert (raised.value.installed, raised.value.supported) == (installed, ">=9.0.0,<10")


def test_a_run_with_dbt_outside_the_checked_range_fails_with_that_error_before_building(dbt_project, monkeypatch):
    write_feed(dbt_project, FEED)
    (dbt_project / "sources.yml").write_text(SHOP_SOURCES + "    load_operations: {df-aaaaaa: [{type: load, "
                                                            "file: orders}]}\n")
    assert run_cli(dbt_project, "feeds", "compile").exit_code == 0
    write_part(dbt_project, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])
    installed = compat.require(compat.DBT_CORE)
    monkeypatch.setattr(compat, "DBT_CORE", compat.Supported("dbt-core", (2, 0, 0), (3,), "none"))

    result = run_cli(dbt_project, "run", "shop", "--all")

    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"Error: dbt-core {installed} is installed; optimizely-courier supports dbt-core>=2.0.0,<3: "
        "pip install 'dbt-core>=2.0.0,<3'")
    assert not (dbt_project / "target" / "run_results.json").exists()  # dbt was never asked to build


def test_data_not_ready_carries_every_missing_day(dbt_project):
    from optimizely_courier.config.sources import load_project
    from optimizely_courier.landing.discovery import RunDates, plan_run
    from optimizely_courier.landing.storage import open_store

    courier = load_project(dbt_project).courier("shop")
    days = RunDates.between(dt.date(2026, 11, 1), dt.date(2026, 11, 6))

    with pytest.raises(NotReadyError) as raised:
        plan_run(courier, open_store(courier), days)

    assert [entry.split(":")[0] for entry in raised.value.missing] == [f"orders 2026-11-0{d}" for d in range(1, 6)]
    assert raised.value.summary.endswith(" (and 2 more)")
    assert str(raised.value).startswith(f"source data not ready: {raised.value.summary}. Run again after")
