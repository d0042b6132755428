"""The `courier` command line: parse, call the library, print.

Errors a user can cause print one line (`Error: ...`) and exit 1; `--debug` shows the traceback.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import click

from pipelines.errors import CourierError


@dataclass
class Context:
    project_dir: Path
    debug: bool


class CourierGroup(click.Group):
    """A click group that turns CourierError into one line and exit code 1."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's signature
        try:
            return super().invoke(ctx)
        except CourierError as exc:
            if _debug(ctx):
                raise
            raise click.ClickException(str(exc)) from None


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.obj and root.obj.debug) or "--debug" in sys.argv


@click.group(cls=CourierGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-C", "--project-dir", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="Project directory holding sources.yml, feeds/ and models/.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, project_dir: Path, debug: bool) -> None:
    """Bring Optimizely's Enriched Events Export into warehouse tables.

    \b
    Examples:
      courier run optimizely --date 2026-11-27
      courier run optimizely --from 2026-11-01 --to 2026-11-28 --skip-missing
      courier generate /tmp/e3 --days 3 --rows 10000
    """
    ctx.obj = Context(project_dir=project_dir.resolve(), debug=debug)


def _project(ctx: click.Context):  # noqa: ANN202
    from pipelines.config import load_project

    return load_project(ctx.obj.project_dir)


def _run_dates(date: Optional[str], start: Optional[str], end: Optional[str], everything: bool):  # noqa: ANN202
    from pipelines.discovery import RunDates, parse_date

    chosen = [name for name, given in (("--date", date), ("--from/--to", start or end), ("--all", everything))
              if given]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --date D, --from D --to D, or --all")
    if date:
        return RunDates.one(parse_date(date, "--date"))
    if everything:
        return RunDates.everything()
    if not (start and end):
        raise click.UsageError("--from and --to go together (start inclusive, end exclusive)")
    return RunDates.between(parse_date(start, "--from"), parse_date(end, "--to"))


def date_options(command):  # noqa: ANN001, ANN201 - a click decorator
    """The run-date options shared by every command that runs a courier."""
    command = click.option("--all", "everything", is_flag=True, help="Every date present in the bucket.")(command)
    command = click.option("--to", "end", metavar="D", help="End date, exclusive.")(command)
    command = click.option("--from", "start", metavar="D", help="Start date, inclusive.")(command)
    command = click.option("--date", metavar="D", help="One day, as YYYY-MM-DD.")(command)
    return command


@cli.command()
@click.argument("courier")
@date_options
@click.option("--skip-missing", is_flag=True, help="Skip days that are missing or have no ready marker.")
@click.pass_context
def run(ctx: click.Context, courier: str, date: Optional[str], start: Optional[str], end: Optional[str],
        everything: bool, skip_missing: bool) -> None:
    """Pull a courier's files for the given dates into raw tables.

    Lands each file tag into raw_<courier>.<tag> in the warehouse. Files already landed with the
    same ETag are skipped, so re-running a day loads nothing new.

    \b
    Examples:
      courier run optimizely --date 2026-11-27
      courier run optimizely --from 2026-11-01 --to 2026-11-08
      courier run optimizely --all --skip-missing
    """
    from pipelines.ingest import land

    dates = _run_dates(date, start, end, everything)
    result = land(_project(ctx), courier, dates, skip_missing=skip_missing)
    click.echo(format_landing(result))


def format_landing(result) -> str:  # noqa: ANN001
    """Per-tag files and rows landed, as a small table."""
    lines = [f"Courier {result.courier} ({result.location}), {result.dates.describe()}:"]
    width = max([len("tag")] + [len(tag) for tag in result.tags])
    lines.append(f"  {'tag':<{width}}  {'files':>7}  {'rows':>12}  {'already landed':>14}")
    for tag, stats in result.tags.items():
        lines.append(f"  {tag:<{width}}  {stats.files:>7,}  {stats.rows:>12,}  {stats.already_loaded:>14,}")
    lines += [f"  warning: {message}" for message in result.skipped]
    return "\n".join(lines)


@cli.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--start", default="2026-11-25", show_default=True, help="First partition date.")
@click.option("--days", default=3, show_default=True, type=click.IntRange(1), help="Daily partitions.")
@click.option("--experiments", default=3, show_default=True, type=click.IntRange(1), help="Experiments per day.")
@click.option("--events", default="purchase,add:cart,signup,NULL", show_default=True,
              help="Comma-separated event names.")
@click.option("--rows", default=1000, show_default=True, type=click.IntRange(0),
              help="Decision rows per day (conversions get as many).")
@click.option("--rows-per-file", default=100_000, show_default=True, type=click.IntRange(1))
@click.option("--unready-days", default=0, show_default=True, type=click.IntRange(0),
              help="Leave the last N days without _SUCCESS.")
@click.option("--seed", default=0, show_default=True, type=int)
def generate(out: Path, start: str, days: int, experiments: int, events: str, rows: int, rows_per_file: int,
             unready_days: int, seed: int) -> None:
    """Write sample E3 data (real schemas and layout) under OUT.

    OUT plays the account prefix: it receives type=decisions/... and type=events/...

    \b
    Example:
      courier generate /tmp/e3 --days 7 --rows 50000 --unready-days 1
    """
    from pipelines.discovery import parse_date
    from pipelines.e3 import E3Spec, generate as write

    spec = E3Spec(start=parse_date(start, "--start"), days=days, experiments=experiments,
                  events=tuple(e for e in events.split(",") if e), rows=rows, rows_per_file=rows_per_file,
                  unready_days=unready_days, seed=seed)
    files = write(spec, out)
    click.echo(f"Wrote {len(files)} objects for {days} day(s) from {spec.start} under {out}")


@cli.group()
def feeds() -> None:
    """Feeds: the YAML files in feeds/ that define domain tables.

    \b
    Examples:
      courier feeds init --courier optimizely --file decisions --source Optimizely --name Decisions
      courier feeds validate
      courier feeds compile --check
    """


@feeds.command("list")
@click.pass_context
def feeds_list(ctx: click.Context) -> None:
    """List the feeds: id, domain table, courier/file tag and file.

    \b
    Example:
      courier feeds list
    """
    from pipelines.feeds import load_feeds

    for feed in sorted(load_feeds(ctx.obj.project_dir), key=lambda f: f.domain_table):
        click.echo(f"{feed.id}  {feed.domain_table:<28} {feed.courier}/{feed.file:<16} {feed.path}")


@feeds.command("validate")
@click.pass_context
def feeds_validate(ctx: click.Context) -> None:
    """Check every feed; print every problem as file:line: message.

    \b
    Example:
      courier feeds validate
    """
    from pipelines.feeds import read_feeds

    found, problems = read_feeds(ctx.obj.project_dir)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        raise click.exceptions.Exit(1)
    click.echo(f"{len(found)} feed(s) valid")


@feeds.command("compile")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when a generated file is stale or missing.")
@click.pass_context
def feeds_compile(ctx: click.Context, check: bool) -> None:
    """Generate the dbt models of every feed under models/.

    Each feed becomes a staging view, a domain table model, a rejected-rows model and their YAML.
    Generated files start with a header naming their feed; do not edit them.

    \b
    Examples:
      courier feeds compile
      courier feeds compile --check     # in CI: fails when models/ is not up to date
    """
    from pipelines.compile import write_models
    from pipelines.feeds import load_feeds

    report = write_models(ctx.obj.project_dir, load_feeds(ctx.obj.project_dir), check=check)
    if check:
        for path in report.stale:
            click.echo(f"stale: {path}", err=True)
        if report.stale:
            click.echo("Generated models are out of date: run `courier feeds compile` and commit models/.", err=True)
            raise click.exceptions.Exit(1)
        click.echo("Generated models are up to date.")
        return
    for path in report.written:
        click.echo(f"wrote {path}")
    for path in report.removed:
        click.echo(f"removed {path}")
    if not (report.written or report.removed):
        click.echo("Generated models are up to date.")


@feeds.command("init")
@click.option("--courier", required=True, help="Courier that lands the file tag.")
@click.option("--file", "tag", required=True, help="File tag (raw table) the feed reads.")
@click.option("--source", required=True, help='Source name: the domain table is "<source>:<name>".')
@click.option("--name", required=True, help="Feed name.")
@click.option("--sample", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A Parquet file to infer from (default: the newest sample the courier kept).")
@click.pass_context
def feeds_init(ctx: click.Context, courier: str, tag: str, source: str, name: str, sample: Optional[Path]) -> None:
    """Write a new feed inferred from a sample file; never overwrites.

    Proposes `uuid` as the primary key when present, generates the feed id, and surfaces the
    attribute names and tag keys seen in the sample as `from:` columns.

    \b
    Example:
      courier feeds init --courier optimizely --file decisions --source Optimizely --name Decisions
    """
    from pipelines.scaffold import init_feed

    path = init_feed(ctx.obj.project_dir, courier, tag, source, name, sample)
    click.echo(f"wrote {path.relative_to(ctx.obj.project_dir)}: review it, then run `courier feeds compile`")


def main(argv: Optional[list[str]] = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="courier")


if __name__ == "__main__":
    main()

