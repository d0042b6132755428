"""Every command documents itself (help text with an example, a mention in the README), needs a project
where it reads one, and exits 2 on a usage error."""

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from optimizely_courier.cli.main import cli
from tests.conftest import SHOP_SOURCES

ROOT = Path(__file__).resolve().parent.parent


def _commands(group: click.Group, prefix: str = "courier"):
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from _commands(command, path)


COMMANDS = list(_commands(cli))


@pytest.mark.parametrize("path, command", COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_has_help_with_an_example(path, command):
    assert command.help and "Example" in command.help, f"{path} --help has no example"


@pytest.mark.parametrize("path", [p for p, c in COMMANDS if not isinstance(c, click.Group)])
def test_every_command_is_in_the_readme(path):
    assert f"`{path}" in (ROOT / "README.md").read_text(), f"README does not mention {path}"


# What each command needs to get as far as reading the project (`generate` needs none).
PROJECT_ARGS = {
    "courier explore": ["Shop:Orders"], "courier feeds compile": ["--check"], "courier feeds diff": [],
    "courier feeds init": ["--courier", "shop", "--tag", "orders", "--source", "Shop", "--name", "Orders"],
    "courier feeds list": [], "courier feeds validate": [], "courier group export": ["nightly", "--to", "cron"],
    "courier group history": [], "courier group next": ["nightly"], "courier group run": ["nightly", "--all"],
    "courier history": [], "courier plan": ["checkout", "--mde", "5%"], "courier results": ["checkout"],
    "courier run": ["shop", "--all"],
    "courier samples": ["shop"], "courier serve": [], "courier status": [], "courier ui": [], "courier validate": [],
}


def test_every_command_but_generate_says_which_project_it_needs():
    assert sorted(PROJECT_ARGS) == sorted(p for p, c in COMMANDS if not isinstance(c, click.Group)
                                          and p != "courier generate")


@pytest.mark.parametrize("path", sorted(PROJECT_ARGS))
def test_a_command_run_outside_a_project_fails_naming_sources_yml_and_suggesting_c(tmp_path, path):
    result = CliRunner().invoke(cli, ["-C", str(tmp_path), *path.split()[1:], *PROJECT_ARGS[path]])

    assert result.exit_code == 1, result.output
    assert result.output == (f"Error: {tmp_path / 'sources.yml'}: file not found: run courier in the project "
                             "directory, or pass -C DIR\n")


GROUP = """courier_groups:
  nightly:
    schedule: "30 8 * * *"
    timezone: UTC
    couriers: [{name: shop, offset: 24h}]
"""


@pytest.mark.parametrize("args, option", [
    (["run", "shop", "--date", "2026/11/26"], "--date"),
    (["run", "shop", "--from", "2026-11-26", "--to", "26.11.2026"], "--to"),
    (["run", "shop", "--from", "2026-11-26", "--to", "2026-11-25"], "--to"),
    (["run", "shop", "--all", "--lock-timeout", "5m"], "--lock-timeout"),
    (["group", "run", "nightly", "--date", "2026-13-01"], "--date"),
    (["group", "run", "nightly", "--scheduled-for", "yesterday"], "--scheduled-for"),
    (["group", "next", "nightly", "--after", "2026-11-28 8am"], "--after"),
    (["serve", "--clock-start", "now"], "--clock-start"),
    (["generate", "OUT", "--start", "2026/11/25"], "--start"),
])
def test_a_bad_date_or_duration_is_a_usage_error_that_exits_2_before_any_work(tmp_path, args, option):
    (tmp_path / "sources.yml").write_text(SHOP_SOURCES + GROUP)

    result = CliRunner().invoke(cli, ["-C", str(tmp_path), *[str(tmp_path / a) if a == "OUT" else a for a in args]],
                                prog_name="courier")

    assert result.exit_code == 2, result.output
    assert result.output.startswith("Usage: courier ")
    assert result.output.splitlines()[-1].startswith("Error: ") and option in result.output.splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sources.yml"]


BLOCKED_SITE = Path(__file__).resolve().parent / "blocked_site"
# feature: the modules made to fail to import, the command, the module named and the extra
EXTRAS = {
    "ui": ("starlette", ["ui"], "courier ui", "starlette", "ui"),
    "plot": ("matplotlib", ["results", "demo_checkout", "--plot", "lift.png"], "--plot", "matplotlib", "plot"),
    "spark": ("pyspark", ["run", "shop", "--date", "2026-11-25"],
              "the spark engine (`warehouse: {type: spark}`)", "pyspark", "spark"),
    "snowflake": ("snowflake", ["run", "shop", "--date", "2026-11-25"],
                  "the snowflake engine (`warehouse: {type: snowflake}`)", "snowflake.connector", "cloud"),
    "demo": ("moto", None, "the demo", "moto", "demo"),
}


@pytest.mark.parametrize("feature", list(EXTRAS))
def test_a_feature_whose_extra_is_missing_fails_with_one_line_naming_the_pip_install(dbt_project, feature):
    import os
    import subprocess
    import sys

    from tests.conftest import write_part

    blocked, args, what, module, extra = EXTRAS[feature]
    if feature in ("spark", "snowflake"):
        warehouse = {"spark": "{type: spark, lake: lake}", "snowflake": "{type: snowflake}"}[feature]
        (dbt_project / "sources.yml").write_text(SHOP_SOURCES + f"warehouse: {warehouse}\n")
        write_part(dbt_project, "2026-11-25", "part-0.parquet", [{"order_id": "A", "amount": 1}])
    command = ["-m", "optimizely_courier.dev.demo"] if args is None else ["-m", "optimizely_courier", *args]
    env = {**os.environ, "COURIER_BLOCKED_MODULES": blocked, "DO_NOT_TRACK": "1",
           "PYTHONPATH": os.pathsep.join([str(BLOCKED_SITE), str(ROOT / "pipelines"), str(ROOT)])}

    result = subprocess.run([sys.executable, *command], cwd=dbt_project, env=env, capture_output=True, text=True)

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip() == (f"Error: {what} needs the `{extra}` extra ({module} is not installed): "
                                     f"pip install 'optimizely-courier[{extra}]'")
