"""`dlt pipeline <courier> run ...`: the courier's run command through dlt's own CLI.

dlt loads modules registered under the `dlt` entry-point group and asks each for CLI commands;
a command whose `parent` is `pipeline` becomes a sub-command of `dlt pipeline <name>`. It takes the
same options as `courier run` and behaves identically (same output, same exit codes).
"""

from __future__ import annotations

import argparse
from typing import Optional, Type

from dlt.common.configuration import plugins

RUN_OPTIONS = ("--date", "--from", "--to")
RUN_FLAGS = ("--all", "--skip-missing", "--ingest-only", "--json", "--debug")


class CourierRunCommand:
    command = "run"
    parent = "pipeline"
    compose = "replace"
    help_string = "Run an optimizely-courier courier (the pipeline name is the courier name)"
    description = """
Pulls the courier's files for the given dates into raw_<courier> tables, exactly like
`courier run <courier> ...`. Example: dlt pipeline optimizely run --date 2026-11-27
"""
    docs_url = "https://github.com/optimizely-courier/optimizely-courier#commands"

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        for option in RUN_OPTIONS:
            parser.add_argument(option, dest=option.strip("-"), metavar="D", default=None)
        for flag in RUN_FLAGS:
            parser.add_argument(flag, dest=flag.strip("-").replace("-", "_"), action="store_true")
        parser.add_argument("--project-dir", "-C", dest="courier_project_dir", default=".",
                            help="Project directory holding sources.yml (default: current directory)")

    def execute(self, args: argparse.Namespace) -> None:
        from pipelines.cli import cli

        argv = ["-C", args.courier_project_dir] + (["--debug"] if args.debug else []) + ["run", args.pipeline_name]
        for option in RUN_OPTIONS:
            value = getattr(args, option.strip("-"))
            if value is not None:
                argv += [option, value]
        argv += [flag for flag in RUN_FLAGS if flag != "--debug" and getattr(args, flag.strip("-").replace("-", "_"))]
        cli.main(args=argv, prog_name="dlt pipeline run")  # exits with the command's own code


@plugins.hookimpl(specname="plug_cli")
def plug_cli_courier_run(host: str) -> Optional[Type[CourierRunCommand]]:
    return CourierRunCommand if host == "dlt" else None
