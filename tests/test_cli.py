"""Every command documents itself: help text with an example, and a mention in the README."""

from pathlib import Path

import click
import pytest

from optimizely_courier.cli.main import cli

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
