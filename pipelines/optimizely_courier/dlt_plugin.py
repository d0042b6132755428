"""dlt's own CLI inside a courier project.

dlt loads modules registered under the `dlt` entry-point group and asks them two things:
- the run context: in a directory holding `sources.yml`, dlt's pipelines live in `.courier/pipelines`
  (where the courier keeps them), the `duckdb` destination is the project's warehouse and Arrow tables
  get load ids, so `dlt pipeline <courier> info|trace|schema|drop|sync` work on the courier's own
  pipeline with no flags, and so does an ordinary dlt script (`pipelines/optimizely_pipeline.py`);
- CLI commands: `dlt pipeline <courier> run ...` takes the same options as `courier run` and behaves
  identically (same output, same exit codes).
In a courier project, dlt's datasets (`pipeline.dataset()`, `dlt pipeline <courier> load-package <id>
row-counts`) also work with the sqlglot this project pins (`compat.adapt_dataset_qualify`). The dlt
internals a plugin needs (run context, providers, hook markers) come through `optimizely_courier.compat`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from optimizely_courier.compat import (
    ADD_LOAD_ID,
    DATA_DIR_ENV,
    PROJECT_DIR_ENV,
    BaseDocProvider,
    ConfigProvider,
    RunContext,
    RunContextBase,
    adapt_dataset_qualify,
    plugins,
)
from optimizely_courier.config.sources import SOURCES_FILE, warehouse_path
from optimizely_courier.settings import STATE_DIR


class ProjectDefaults(BaseDocProvider):
    """A courier project's defaults for dlt: the project's warehouse as the `duckdb` destination, and
    Arrow tables given `_dlt_load_id` (the record counts a file as landed by its load). dlt's own
    config (environment, .dlt/*.toml) is asked first and wins."""

    def __init__(self, project: str) -> None:
        warehouse = str(warehouse_path(Path(project), os.environ))
        defaults: dict[str, Any] = {"destination": {"duckdb": {"credentials": warehouse}}}
        *sections, key = ADD_LOAD_ID.split(".")
        nested = defaults
        for section in sections:
            nested = nested.setdefault(section, {})
        nested[key] = True
        super().__init__(defaults)

    @property
    def name(self) -> str:
        return "optimizely-courier project"

    @property
    def supports_secrets(self) -> bool:
        return True  # dlt types a destination's credentials as a secret, even a file path

    @property
    def supports_sections(self) -> bool:
        return True


class CourierProjectContext(RunContext):
    """dlt's default run context, with the courier's pipelines directory and warehouse."""

    @property
    def data_dir(self) -> str:
        # dlt keeps pipelines in `<data dir>/pipelines`: `.courier/pipelines`, as `courier run` does.
        default = os.path.join(os.path.abspath(self.run_dir), STATE_DIR)
        return os.environ.get(DATA_DIR_ENV, default)

    def initial_providers(self) -> list[ConfigProvider]:
        return super().initial_providers() + [ProjectDefaults(self.run_dir)]


@plugins.hookimpl(specname="plug_run_context", tryfirst=True)
def plug_courier_project_context(run_dir: str | None,
                                 runtime_kwargs: dict[str, Any] | None) -> RunContextBase | None:
    """The courier's context where the run directory is a courier project, else dlt decides."""
    project = os.environ.get(PROJECT_DIR_ENV, run_dir or ".")
    if runtime_kwargs or not os.path.isfile(os.path.join(project, SOURCES_FILE)):
        return None
    adapt_dataset_qualify()
    return CourierProjectContext(run_dir)


class CourierRunCommand:
    """`courier run`'s options, help and behaviour, mirrored from its click command so they never drift."""

    command = "run"
    parent = "pipeline"
    compose = "replace"
    help_string = "Run an optimizely-courier courier (the pipeline name is the courier name)"
    description = "Same as `courier run <pipeline name> ...`."
    docs_url = "https://github.com/optimizely-courier/optimizely-courier#commands"

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        import click

        from optimizely_courier.cli.main import cli, run

        parser.description = _markdown(run.help.replace("courier run optimizely", "dlt pipeline optimizely run"))
        for option in [*run.params, *cli.params]:
            if not isinstance(option, click.Option) or option.name == "help":
                continue
            flag = {"action": "store_true"} if option.is_flag else {"metavar": option.metavar or "DIR"}
            default = f" (default: {option.default})" if option.show_default else ""
            parser.add_argument(*option.opts, dest=f"courier_{option.name}", default=None,
                                help=(option.help or "") + default, **flag)

    def execute(self, args: argparse.Namespace) -> None:
        from optimizely_courier.cli.main import cli, run

        argv = self._options(args, cli) + ["run", args.pipeline_name] + self._options(args, run)
        cli.main(args=argv, prog_name="dlt pipeline run")  # exits with the command's own code

    @staticmethod
    def _options(args: argparse.Namespace, command: Any) -> list[str]:
        """The options given on dlt's command line, as `command` takes them."""
        argv: list[str] = []
        for option in command.params:
            value = getattr(args, f"courier_{option.name}", None)
            if value is True:
                argv.append(option.opts[0])
            elif value not in (None, False):
                argv += [option.opts[0], value]
        return argv


def _markdown(click_help: str) -> str:
    """click's help text as the Markdown dlt renders descriptions from: the `\\b` block (examples)
    verbatim in a code block, `<placeholders>` as code so Markdown does not take them for HTML."""
    import inspect
    import re

    prose, _, verbatim = inspect.cleandoc(click_help).partition("\b\n")
    prose = re.sub(r"(\S*<\w+>\S*)", r"`\1`", prose)
    heading, _, block = verbatim.partition("\n")
    return f"{prose}{heading}\n\n```\n{inspect.cleandoc(block)}\n```" if verbatim else prose


@plugins.hookimpl(specname="plug_cli")
def plug_cli_courier_run(host: str) -> type[CourierRunCommand] | None:
    return CourierRunCommand if host == "dlt" else None
