"""The `courier` command line: parse, call the library, print.

Errors a user can cause print one line (`Error: ...`) and exit 1; `--debug` shows the traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from optimizely_courier.cli.common import (
    SECONDS,
    Context,
    current_project,
    date_options,
    note_pending_history,
    project_root,
    run_dates,
    warn_deprecated,
)
from optimizely_courier.cli.experiments import plan
from optimizely_courier.cli.feeds import feeds, model_problems
from optimizely_courier.cli.groups import group, serve
from optimizely_courier.cli.ui import ui
from optimizely_courier.errors import CourierError
from optimizely_courier.text import to_json


class CourierGroup(click.Group):
    """A click group that turns CourierError into one line and exit code 1."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's signature
        try:
            return super().invoke(ctx)
        except CourierError as exc:
            if _debug(ctx):
                raise
            if exc.verbatim:
                click.echo(str(exc), err=True)
                raise click.exceptions.Exit(1) from None
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            raise click.ClickException("; ".join(lines)) from None
        except Exception as exc:  # only DuckDB's "file in use" becomes a message; anything else is a bug
            from optimizely_courier.runs.lock import file_holder, is_lock_conflict

            if _debug(ctx) or not is_lock_conflict(exc):
                raise
            raise click.ClickException(f"the warehouse is in use: {file_holder(exc)} holds it; "
                                       "try again when it has finished") from None


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


@cli.command()
@click.argument("courier")
@date_options
@click.option("--skip-missing", is_flag=True, help="Skip days that are missing or have no ready marker.")
@click.option("--ingest-only", is_flag=True, help="Land raw data and stop: no load operations.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (status lines go to stderr).")
@click.option("--lock-timeout", default=300, show_default=True, type=SECONDS, metavar="SECONDS",
              help="How long to wait for another run, or a process such as a `dbt build`, that holds the "
                   "warehouse.")
@click.pass_context
def run(ctx: click.Context, courier: str, date: str | None, start: str | None, end: str | None,
        everything: bool, skip_missing: bool, ingest_only: bool, as_json: bool, lock_timeout: float) -> None:
    """Pull a courier's files for the given dates and apply its load operations.

    Lands each file tag into raw_<courier>.<tag> (files already landed with the same ETag are
    skipped), then builds the domain tables its load operations name from every landed file not
    yet in them (a plain `dbt build` does the same). With `load_operations: {}` it only lands
    files and keeps samples for `feeds init`. Every run is recorded in the run history from its start
    (see `courier history` and `courier status`).

    \b
    Examples:
      courier run optimizely --date 2026-11-27
      courier run optimizely --from 2026-11-01 --to 2026-11-08 --skip-missing
      courier run optimizely --all --ingest-only --json
    """
    from optimizely_courier.runs.progress import Reporter, run_table
    from optimizely_courier.runs.run import PARTIAL, PARTIAL_EXIT_CODE, RunOptions, run_courier

    dates = run_dates(date, start, end, everything)
    project = current_project(ctx)
    project.courier(courier)  # an unknown courier fails here, before a run is recorded
    reporter = Reporter(stream=sys.stderr if as_json else sys.stdout)
    options = RunOptions(skip_missing=skip_missing, ingest_only=ingest_only, lock_timeout=lock_timeout)
    try:
        report = run_courier(project, courier, dates, options, reporter)
    except CourierError:
        if as_json:
            from optimizely_courier.runs.history import list_runs

            click.echo(to_json(list_runs(project.warehouse, courier, limit=1)[0]))
        raise
    if as_json:
        click.echo(to_json(report.to_json()))
    else:
        click.echo(run_table(report))
    reporter.completed(report.run.duration_seconds)
    if report.run.status == PARTIAL:
        ctx.exit(PARTIAL_EXIT_CODE)


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
    from optimizely_courier.cli.common import check_output, option_date, write_failed
    from optimizely_courier.dev.generate import E3Spec
    from optimizely_courier.dev.generate import generate as write

    check_output(out, "'OUT'", directory=True)
    spec = E3Spec(start=option_date(start, "--start"), days=days, experiments=experiments,
                  events=tuple(e for e in events.split(",") if e), rows=rows, rows_per_file=rows_per_file,
                  unready_days=unready_days, seed=seed)
    try:
        files = write(spec, out)
    except OSError as exc:
        raise write_failed(out, exc) from None
    click.echo(f"Wrote {len(files)} objects for {days} day(s) from {spec.start} under {out}")


@cli.command()
@click.option("--courier", help="Only runs of this courier.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1), help="How many runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as a JSON list.")
@click.pass_context
def history(ctx: click.Context, courier: str | None, limit: int, as_json: bool) -> None:
    """Show recorded runs, newest first.

    \b
    Examples:
      courier history
      courier history --courier optimizely --limit 5 --json
    """
    from optimizely_courier.runs.history import list_runs, mark_interrupted
    from optimizely_courier.runs.status import progress_text

    warehouse = current_project(ctx).warehouse
    mark_interrupted(warehouse)
    runs = list_runs(warehouse, courier, limit)
    note_pending_history(warehouse)
    if as_json:
        click.echo(to_json(runs))
        return
    if not runs:
        click.echo("No runs recorded yet.")
        return
    for run in runs:
        rows = sum(run["rows"].values())
        upserted = sum(feed.get("upserted", 0) for feed in run["feeds"].values())
        group = f" group {run['group_name']}" if run["group_name"] else ""
        click.echo(f"{run['started_at'][:19]}  {run['status']:<8} {run['courier']}{group}  {run['dates']}  "
                   f"{rows:,} rows landed, {upserted:,} upserted  {run['duration_seconds'] or 0:.1f}s  {run['run_id']}")
        if run["status"] == "running":
            click.echo(f"    in progress: {progress_text(run)}")
        if run["error"]:
            click.echo(f"    {run['error'].splitlines()[-1]}")


@cli.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_context
def status(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """Show where each courier stands, from the run history and the warehouse (no S3 request).

    Per courier: a run in progress (phase, since when, files so far), the last run and last success,
    files and rows landed, the newest partition and its freshness, files the last run rejected, each
    domain table with the landed files it has not built yet, and the groups that run it (in progress,
    failed, next run). While another process writes the warehouse, landed and built data are shown as
    the last courier run saw them, with who holds the warehouse now. NAME is a courier or a courier
    group (default: all).

    \b
    Examples:
      courier status
      courier status optimizely --json
    """
    from optimizely_courier.runs.history import mark_interrupted
    from optimizely_courier.runs.status import courier_status, render

    project = current_project(ctx)
    mark_interrupted(project.warehouse)
    if name is None:
        names = list(project.couriers)
    elif name in project.groups:
        names = [member.name for member in project.groups[name].couriers]
    else:
        names = [project.courier(name).name]
    statuses = [courier_status(project, courier) for courier in names]
    if as_json:
        click.echo(to_json(statuses))
    else:
        click.echo("\n\n".join(render(s) for s in statuses))


@cli.command()
@click.argument("courier")
@click.option("--tag", help="Only samples of this file tag.")
@click.option("--json", "as_json", is_flag=True, help="Print the samples as a JSON list.")
@click.pass_context
def samples(ctx: click.Context, courier: str, tag: str | None, as_json: bool) -> None:
    """List the sample files sample-mode runs kept, newest first.

    A run with `load_operations: {}` keeps a copy of one landed file per tag under
    .courier/samples/; `courier feeds init` infers a feed from the newest.

    \b
    Example:
      courier samples optimizely --tag decisions
    """
    import pyarrow.parquet as pq

    from optimizely_courier.landing.samples import samples as kept

    root = project_root(ctx)
    found = [{"tag": path.parent.name, "date": path.name[:10], "rows": pq.read_metadata(path).num_rows,
              "path": str(path.relative_to(root))} for path in kept(root, courier, tag)]
    if not found:  # a courier removed from sources.yml still lists the samples it kept
        current_project(ctx).courier(courier)  # a mistyped name is an error, not "no samples"
    if as_json:
        click.echo(to_json(found))
        return
    if not found:
        click.echo(f"No samples for {courier}: run it with `load_operations: {{}}` first.")
    for sample in found:
        click.echo(f"{sample['tag']:<16} {sample['date']}  {sample['rows']:>9,} rows  {sample['path']}")


@cli.command()
@click.argument("table")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1_000_000), help="Rows to show.")
@click.option("--where", help="A SQL condition on the table's columns (read-only).")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="A table (long cells cut, key columns never), CSV or a JSON list.")
@click.option("--vertical", is_flag=True, help="One block per row, a line per column (for wide rows).")
@click.option("--lock-timeout", default=300, show_default=True, type=SECONDS, metavar="SECONDS",
              help="How long to wait for a run or another process that is writing the warehouse.")
@click.pass_context
def explore(ctx: click.Context, table: str, limit: int, where: str | None, output_format: str,
            vertical: bool, lock_timeout: float) -> None:
    """Show rows of a domain table with column types and semantic tags.

    While a courier run or another process (a `dbt build`) writes the warehouse, it waits for it,
    saying who holds it, up to --lock-timeout seconds.

    \b
    Examples:
      courier explore "Optimizely:Decisions"
      courier explore "Optimizely:Conversions" --where "revenue_cents > 1000" --limit 5
      courier explore "Optimizely:Decisions" --vertical --limit 2
      courier explore "Optimizely:Decisions" --format csv --limit 1000 > decisions.csv
    """
    from optimizely_courier.feeds.feed import read_feeds
    from optimizely_courier.runs.explore import explore as look
    from optimizely_courier.runs.explore import render

    project = current_project(ctx)
    if project.engine != "duckdb":
        raise CourierError(f"courier explore reads the DuckDB warehouse; this project's tables are on "
                           f"{project.engine}: query them with its own tools (run history stays local: "
                           "`courier history`)")
    found, _ = read_feeds(project.root)

    def waiting(holder: str) -> None:
        click.echo(f"Waiting up to {lock_timeout:g}s for the warehouse: {holder} holds it", err=True)

    click.echo(render(look(project.warehouse, table, found, limit, where, lock_timeout, waiting), output_format,
                      vertical))


@cli.command()
@click.argument("experiment")
@click.option("--segment", metavar="COLUMN", help="One of the experiment's `segments`: results per its value.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Also draw each metric's lift by enrollment day into FILE (.png, .svg or .pdf).")
@click.pass_context
def results(ctx: click.Context, experiment: str, segment: str | None, as_json: bool, plot: Path | None) -> None:
    """Show an experiment's results: per metric and variation, units, totals, values, the lift over
    the baseline with its 95% interval, p- and q-values, the always-valid interval and p-value (for
    looking every day), the chance to beat the baseline and the expected loss, the guardrails, the
    sample ratio check overall and per day, and the visitors decided into more than one variation.

    The experiment is defined in experiments/*.yml; `courier feeds compile` writes its models and
    `dbt build --select tag:<experiment>` builds them from the domain tables.

    \b
    Examples:
      courier results checkout_button
      courier results checkout_button --segment country
      courier results checkout_button --json
      courier results checkout_button --plot lift.png
    """
    from optimizely_courier.experiments.render import render
    from optimizely_courier.experiments.results import experiment_results, find_experiment

    project = current_project(ctx)
    if plot is not None:
        from optimizely_courier.experiments.plot import check_plot_path, plot_results

        check_plot_path(plot)
    found = experiment_results(project.root, project.warehouse, experiment, segment)
    click.echo(to_json(found) if as_json else render(found))
    if plot is not None:
        # after the table: its checks passed, and the plot compares with the same baseline
        plot_results(find_experiment(project.root, experiment), project.warehouse, found["baseline"], plot)
        if not as_json:
            click.echo(f"\nwrote {plot}")


@cli.command()
@click.pass_context
def validate(ctx: click.Context) -> None:
    """Check sources.yml and feeds/ together, without touching S3.

    Reports every problem: malformed load operations, operations naming a missing feed or a tag
    no entity lands, feeds whose courier or file tag no courier lands, invalid or duplicate feeds.
    Warns, by weekday, about dates no scheduled run of a courier group loads (`only_past_day`).

    \b
    Example:
      courier validate
    """
    from optimizely_courier.feeds.feed import read_feeds
    from optimizely_courier.feeds.loadops import check_project

    project = current_project(ctx)
    found, problems = read_feeds(project.root)
    warn_deprecated(found)
    problems += model_problems(project.root, found, problems)
    problems += check_project(project, found)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        raise click.exceptions.Exit(1)
    from optimizely_courier.groups.coverage import coverage_warnings

    for warning in (w for chosen in project.groups.values() for w in coverage_warnings(chosen)):
        click.echo(f"warning: sources.yml: {warning}", err=True)
    click.echo(f"sources.yml and {len(found)} feed(s) are consistent")


cli.add_command(group)
cli.add_command(serve)
cli.add_command(feeds)
cli.add_command(plan)
cli.add_command(ui)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="courier")


if __name__ == "__main__":
    main()

