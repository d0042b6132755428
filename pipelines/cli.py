"""The `courier` command line: parse, call the library, print.

Errors a user can cause print one line (`Error: ...`) and exit 1; `--debug` shows the traceback.
"""

from __future__ import annotations

import json
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
            if exc.verbatim:
                click.echo(str(exc), err=True)
                raise click.exceptions.Exit(1) from None
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            raise click.ClickException("; ".join(lines)) from None
        except Exception as exc:  # only DuckDB's "file in use" becomes a message; anything else is a bug
            if _debug(ctx) or not _is_lock_conflict(exc):
                raise
            raise click.ClickException(f"the warehouse is in use by another process ({_lock_holder(exc)}); "
                                       "try again when it has finished") from None


def _is_lock_conflict(exc: BaseException) -> bool:
    """DuckDB refusing the warehouse file because another process has it open for writing."""
    return "Could not set lock on file" in str(exc)


def _lock_holder(exc: BaseException) -> str:
    import re

    match = re.search(r"Conflicting lock is held in (.+?) \(PID (\d+)\)", str(exc))
    return f"{match.group(1)}, PID {match.group(2)}" if match else "another process"


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
@click.option("--ingest-only", is_flag=True, help="Land raw data and stop: no load operations.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (status lines go to stderr).")
@click.option("--lock-timeout", default=300, show_default=True, type=click.FloatRange(0), metavar="SECONDS",
              help="How long to wait for another run that holds the warehouse.")
@click.pass_context
def run(ctx: click.Context, courier: str, date: Optional[str], start: Optional[str], end: Optional[str],
        everything: bool, skip_missing: bool, ingest_only: bool, as_json: bool, lock_timeout: float) -> None:
    """Pull a courier's files for the given dates and apply its load operations.

    Lands each file tag into raw_<courier>.<tag> (files already landed with the same ETag are
    skipped), then builds the domain tables its load operations name from exactly this run's
    files. With `load_operations: {}` it only lands files and keeps samples for `feeds init`.
    Every run is recorded in the warehouse (see `courier history`).

    \b
    Examples:
      courier run optimizely --date 2026-11-27
      courier run optimizely --from 2026-11-01 --to 2026-11-08 --skip-missing
      courier run optimizely --all --ingest-only --json
    """
    from pipelines.progress import Reporter
    from pipelines.runs import RunOptions, run_courier

    dates = _run_dates(date, start, end, everything)
    project = _project(ctx)
    reporter = Reporter(stream=sys.stderr if as_json else sys.stdout)
    options = RunOptions(skip_missing=skip_missing, ingest_only=ingest_only, lock_timeout=lock_timeout)
    try:
        report = run_courier(project, courier, dates, options, reporter)
    except CourierError:
        if as_json:
            from pipelines.history import list_runs

            click.echo(json.dumps(list_runs(project.warehouse, courier, limit=1)[0], indent=2))
        raise
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(format_run(report))
    reporter.completed(report.record.duration_seconds)


def format_run(report) -> str:  # noqa: ANN001
    """Per-tag files and rows landed, then per-feed rows upserted and rejected."""
    landing = report.landing
    lines = [f"Courier {landing.courier} ({landing.location}), {landing.dates.describe()}:"]
    width = max([len("tag")] + [len(tag) for tag in landing.tags])
    lines.append(f"  {'tag':<{width}}  {'files':>7}  {'rows':>12}  {'already landed':>14}")
    for tag, stats in landing.tags.items():
        lines.append(f"  {tag:<{width}}  {stats.files:>7,}  {stats.rows:>12,}  {stats.already_loaded:>14,}")
    if report.feeds:
        width = max(len(feed.domain_table) for feed in report.feeds.values())
        lines.append(f"  {'domain table':<{width}}  {'upserted':>10}  {'rejected':>9}")
        for feed in report.feeds.values():
            note = "  (truncated first)" if feed.truncated else "  (up to date)" if feed.up_to_date else ""
            lines.append(f"  {feed.domain_table:<{width}}  {feed.upserted:>10,}  {feed.rejected:>9,}{note}")
    for tag, stats in landing.tags.items():
        if stats.new_columns:
            lines.append(f"  raw table {tag} gained column(s): {', '.join(stats.new_columns)}")
        lines += [f"  warning: rejected {item['reason']} (retried on the next run)" for item in stats.rejected]
    if landing.samples:
        lines.append(f"  samples kept: {', '.join(str(p.name) for p in landing.samples)} (see `courier samples`)")
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


@cli.command()
@click.option("--courier", help="Only runs of this courier.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1), help="How many runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs as a JSON list.")
@click.pass_context
def history(ctx: click.Context, courier: Optional[str], limit: int, as_json: bool) -> None:
    """Show recorded runs, newest first.

    \b
    Examples:
      courier history
      courier history --courier optimizely --limit 5 --json
    """
    from pipelines.history import list_runs

    runs = list_runs(_project(ctx).warehouse, courier, limit)
    if as_json:
        click.echo(json.dumps(runs, indent=2))
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
        if run["error"]:
            click.echo(f"    {run['error'].splitlines()[-1]}")


@cli.command()
@click.argument("courier")
@click.option("--tag", help="Only samples of this file tag.")
@click.pass_context
def samples(ctx: click.Context, courier: str, tag: Optional[str]) -> None:
    """List the sample files sample-mode runs kept, newest first.

    A run with `load_operations: {}` keeps a copy of one landed file per tag under
    .courier/samples/; `courier feeds init` infers a feed from the newest.

    \b
    Example:
      courier samples optimizely --tag decisions
    """
    import pyarrow.parquet as pq

    from pipelines.samples import samples as kept

    found = kept(ctx.obj.project_dir, courier, tag)
    if not found:
        click.echo(f"No samples for {courier}: run it with `load_operations: {{}}` first.")
        return
    for path in found:
        rows = pq.read_metadata(path).num_rows
        click.echo(f"{path.parent.name:<16} {path.name[:10]}  {rows:>9,} rows  "
                   f"{path.relative_to(ctx.obj.project_dir)}")


@cli.command()
@click.argument("table")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1), help="Rows to show.")
@click.option("--where", help="A SQL condition on the table's columns (read-only).")
@click.pass_context
def explore(ctx: click.Context, table: str, limit: int, where: Optional[str]) -> None:
    """Show rows of a domain table with column types and semantic tags.

    \b
    Examples:
      courier explore "Optimizely:Decisions"
      courier explore "Optimizely:Conversions" --where "revenue_cents > 1000" --limit 5
    """
    from pipelines.explore import explore as look, render
    from pipelines.feeds import read_feeds

    project = _project(ctx)
    found, _ = read_feeds(project.root)
    click.echo(render(look(project.warehouse, table, found, limit, where)))


@cli.command()
@click.pass_context
def validate(ctx: click.Context) -> None:
    """Check sources.yml and feeds/ together, without touching S3.

    Reports every problem: malformed load operations, operations naming a missing feed or a tag
    no entity lands, feeds whose courier or file tag no courier lands, invalid or duplicate feeds.

    \b
    Example:
      courier validate
    """
    from pipelines.feeds import read_feeds
    from pipelines.loadops import check_project

    project = _project(ctx)
    found, problems = read_feeds(project.root)
    problems += model_problems(project.root, found, problems)
    problems += check_project(project, found)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        raise click.exceptions.Exit(1)
    click.echo(f"sources.yml and {len(found)} feed(s) are consistent")


def _iso_instant(text: Optional[str], option: str):  # noqa: ANN202
    """An ISO date-time (UTC when it has no offset), naming the option on failure."""
    import datetime as dt

    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.UsageError(f"{option}: expected an ISO date-time such as 2026-11-28T08:30:00Z; got {text!r}")
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


@cli.group()
def group() -> None:
    """Courier groups: couriers run as a unit on a schedule, gating downstream work.

    \b
    Examples:
      courier group next optimizely -n 3
      courier group run optimizely --date 2026-11-27
      courier group export optimizely --to cron
    """


@group.command("run")
@click.argument("name")
@date_options
@click.pass_context
def group_run(ctx: click.Context, name: str, date: Optional[str], start: Optional[str], end: Optional[str],
              everything: bool) -> None:
    """Run a courier group now.

    With dates, it loads exactly those (the schedule is ignored). Without, it runs as its latest
    scheduled time would: each courier's offset window, catching up on missed days, waiting up to
    each courier's `wait` for late data. Downstream commands run only when every courier succeeded.

    \b
    Examples:
      courier group run optimizely --date 2026-11-27
      courier group run optimizely            # as scheduled (what cron or Airflow call)
    """
    from pipelines.groups import run_group
    from pipelines.progress import Reporter

    given = date or start or end or everything
    dates = _run_dates(date, start, end, everything) if given else None
    run_group(_project(ctx), name, dates, reporter=Reporter())


@group.command("next")
@click.argument("name")
@click.option("-n", "count", default=5, show_default=True, type=click.IntRange(1), help="How many times.")
@click.option("--after", help="ISO date-time to start from (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def group_next(ctx: click.Context, name: str, count: int, after: Optional[str], as_json: bool) -> None:
    """Show the next scheduled times, in the group's zone and in UTC, with the dates each loads.

    \b
    Examples:
      courier group next optimizely
      courier group next optimizely -n 3 --after 2027-03-13T00:00:00Z --json
    """
    import datetime as dt
    import itertools

    from pipelines.groups import scheduled_dates
    from pipelines.schedule import scheduled_times

    chosen = _project(ctx).group(name)
    if chosen.schedule is None:
        raise CourierError(f"courier group {name} has no schedule: it runs by hand only")
    start = _iso_instant(after, "--after") or dt.datetime.now(dt.timezone.utc)
    times = list(itertools.islice(scheduled_times(chosen.schedule, chosen.timezone, start), count))
    entries = [{"local": t.astimezone(chosen.timezone).isoformat(), "utc": t.isoformat(),
                "dates": {m.name: [str(d) for d in scheduled_dates(chosen, m, t, None).days()]
                          for m in chosen.couriers}} for t in times]
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    status = "" if chosen.status == "active" else "  (inactive: runs by hand only)"
    click.echo(f"{name}: {chosen.schedule.text} in {chosen.timezone.key}{status}")
    for entry in entries:
        loads = "; ".join(f"{courier} {days[0]}" + (f" to {days[-1]}" if len(days) > 1 else "")
                          for courier, days in entry["dates"].items())
        click.echo(f"  {entry['local']}  ({entry['utc']})  loads {loads}")


@group.command("export")
@click.argument("name")
@click.option("--to", "target", type=click.Choice(["airflow", "cron"]), required=True, help="Orchestrator.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@click.pass_context
def group_export(ctx: click.Context, name: str, target: str, output: Optional[Path]) -> None:
    """Write an Airflow DAG or a crontab entry (with CRON_TZ) that runs the group on its schedule.

    \b
    Examples:
      courier group export optimizely --to cron >> my.crontab
      courier group export optimizely --to airflow -o dags/courier_optimizely.py
    """
    from pipelines.export import export

    text = export(_project(ctx).group(name), target, ctx.obj.project_dir)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        click.echo(f"wrote {output}")


@group.command("history")
@click.argument("name", required=False)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def group_history(ctx: click.Context, name: Optional[str], limit: int, as_json: bool) -> None:
    """Show group runs, newest first, with their courier runs, alerts and downstream results.

    \b
    Example:
      courier group history optimizely --limit 5
    """
    from pipelines.history import list_runs

    runs = list_runs(_project(ctx).warehouse, group=name, limit=limit, table="group_runs")
    if as_json:
        click.echo(json.dumps(runs, indent=2))
        return
    for run in runs:
        scheduled = f" scheduled {run['scheduled_for'][:16]}" if run["scheduled_for"] else " by hand"
        click.echo(f"{run['started_at'][:19]}  {run['status']:<8} {run['group_name']}{scheduled}  {run['dates']}")
        for line in run["alerts"] + ([run["error"]] if run["error"] else []):
            click.echo(f"    {line}")
    if not runs:
        click.echo("No group runs recorded yet.")


@cli.command()
@click.option("--clock-start", hidden=True, help="Start the clock at this ISO instant (rehearsals, tests).")
@click.pass_context
def serve(ctx: click.Context, clock_start: Optional[str]) -> None:
    """Run every active courier group on its schedule until stopped (SIGTERM or Ctrl-C).

    Groups run one at a time; a run in progress finishes before the scheduler stops. Missed
    scheduled runs are caught up at start.

    \b
    Example:
      courier serve
    """
    from pipelines.clock import Clock
    from pipelines.serve import serve as run_forever

    run_forever(_project(ctx), Clock(_iso_instant(clock_start, "--clock-start")))


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
    problems += model_problems(ctx.obj.project_dir, found, problems)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        raise click.exceptions.Exit(1)
    click.echo(f"{len(found)} feed(s) and their generated models are valid")


def model_problems(root: Path, found: list, problems: list) -> list:
    """Generated models that do not match the feeds (only checked when the feeds themselves are valid)."""
    from pipelines.compile import write_models
    from pipelines.errors import ConfigError

    if problems:
        return []
    stale = write_models(root, found, check=True).stale
    return [ConfigError(path, "", "generated model is missing or out of date: run `courier feeds compile`", 1)
            for path in stale]


@feeds.command("diff")
@click.argument("base", required=False)
@click.option("--format", "output_format", type=click.Choice(["markdown", "json"]), default="markdown",
              show_default=True)
@click.option("--fail-on", type=click.Choice(["breaking", "attention"]),
              help="Exit 1 when the verdict is at least this (for CI gates).")
@click.pass_context
def feeds_diff(ctx: click.Context, base: Optional[str], output_format: str, fail_on: Optional[str]) -> None:
    """What changes to feeds, load operations and entities do to the domain tables, ranked.

    Compares BASE (default origin/main, else main; any git ref) with the working tree and prints a
    verdict (breaking, needs attention, safe) and each change. Retyped columns are checked
    against the warehouse's existing values when there is one.

    \b
    Examples:
      courier feeds diff
      courier feeds diff HEAD~1 --format json
      courier feeds diff origin/main --fail-on breaking >> "$GITHUB_STEP_SUMMARY"
    """
    import os

    from pipelines.config import warehouse_path
    from pipelines.review import review, to_markdown

    root = ctx.obj.project_dir
    result = review(root, base, dict(os.environ), warehouse_path(root, os.environ))
    click.echo(json.dumps(result.to_json(), indent=2) if output_format == "json" else to_markdown(result), nl=False)
    if output_format == "json":
        click.echo()
    if result.fails(fail_on):
        raise click.exceptions.Exit(1)


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

