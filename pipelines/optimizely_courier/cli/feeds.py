"""`courier feeds ...`: write, check, compile and review the feeds in feeds/."""

from __future__ import annotations

from pathlib import Path

import click

from optimizely_courier.cli.common import project_root, warn_deprecated
from optimizely_courier.text import to_json


@click.group()
def feeds() -> None:
    """Feeds: the YAML files in feeds/ that define domain tables.

    \b
    Examples:
      courier feeds init --courier optimizely --tag decisions --source Optimizely --name Decisions
      courier feeds validate
      courier feeds compile --check
    """


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the feeds as a JSON list.")
@click.pass_context
def feeds_list(ctx: click.Context, as_json: bool) -> None:
    """List the feeds: id, domain table, courier/tag and path.

    \b
    Examples:
      courier feeds list
      courier feeds list --json
    """
    from optimizely_courier.feeds.feed import load_feeds

    found = sorted(load_feeds(project_root(ctx)), key=lambda f: f.domain_table)
    if as_json:
        # `file`: the tag's old name, kept for scripts that read it
        click.echo(to_json([{"id": f.id, "domain_table": f.domain_table, "courier": f.courier, "tag": f.tag,
                             "file": f.tag, "primary_key": list(f.primary_key), "path": str(f.path)} for f in found]))
        return
    for feed in found:
        click.echo(f"{feed.id}  {feed.domain_table:<28} {feed.courier}/{feed.tag:<16} {feed.path}")


@feeds.command("validate")
@click.pass_context
def feeds_validate(ctx: click.Context) -> None:
    """Check every feed; print every problem as file:line: message.

    \b
    Example:
      courier feeds validate
    """
    from optimizely_courier.feeds.feed import read_feeds

    root = project_root(ctx)
    found, problems = read_feeds(root)
    warn_deprecated(found)
    problems += model_problems(root, found, problems)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        raise click.exceptions.Exit(1)
    click.echo(f"{len(found)} feed(s) and their generated models are valid")


def model_problems(root: Path, found: list, problems: list) -> list:
    """Generated models that do not match the feeds and experiments (only checked when the feeds
    themselves are valid), or the experiment definition that is not."""
    from optimizely_courier.errors import ConfigError
    from optimizely_courier.experiments.compile import generated_models

    if problems:
        return []
    try:
        stale = generated_models(root, found, check=True).stale
    except ConfigError as exc:
        return [exc]
    return [ConfigError(path, "", "generated model is missing or out of date: run `courier feeds compile`", 1)
            for path in stale]


@feeds.command("diff")
@click.argument("base", required=False)
@click.option("--format", "output_format", type=click.Choice(["markdown", "json"]), default="markdown",
              show_default=True)
@click.option("--fail-on", type=click.Choice(["breaking", "attention"]),
              help="Exit 1 when the verdict is at least this (for CI gates).")
@click.pass_context
def feeds_diff(ctx: click.Context, base: str | None, output_format: str, fail_on: str | None) -> None:
    """What changes to feeds, load operations, entities and experiments do to the tables, ranked.

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

    from optimizely_courier.config.sources import warehouse_path
    from optimizely_courier.experiments.review import experiment_changes
    from optimizely_courier.feeds.review import review, to_markdown

    root = project_root(ctx)
    result = review(root, base, dict(os.environ), warehouse_path(root, os.environ))
    result.changes += experiment_changes(root, result.base)
    click.echo(to_json(result.to_json()) if output_format == "json" else to_markdown(result), nl=False)
    if output_format == "json":
        click.echo()
    if result.fails(fail_on):
        raise click.exceptions.Exit(1)


@feeds.command("compile")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when a generated file is stale or missing.")
@click.pass_context
def feeds_compile(ctx: click.Context, check: bool) -> None:
    """Generate the dbt models of every feed and experiment under models/.

    Each feed becomes a staging view, a domain table model, a rejected-rows model and their YAML;
    each experiment (experiments/*.yml) its observations and results models. Generated files start
    with a header naming their source; do not edit them.

    \b
    Examples:
      courier feeds compile
      courier feeds compile --check     # in CI: fails when models/ is not up to date
    """
    from optimizely_courier.experiments.compile import generated_models
    from optimizely_courier.feeds.feed import load_feeds

    root = project_root(ctx)
    found = load_feeds(root)
    warn_deprecated(found)
    report = generated_models(root, found, check=check)
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
@click.option("--courier", required=True, help="Courier that lands the files.")
@click.option("--tag", help="The tag of the landed files (their raw table) the feed reads.")
@click.option("--file", "old_tag", hidden=True, help="The old name of --tag (deprecated).")
@click.option("--source", required=True, help='Source name: the domain table is "<source>:<name>".')
@click.option("--name", required=True, help="Feed name.")
@click.option("--sample", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A Parquet file to infer from (default: the newest sample the courier kept).")
@click.pass_context
def feeds_init(ctx: click.Context, courier: str, tag: str | None, old_tag: str | None, source: str, name: str,
               sample: Path | None) -> None:
    """Write a new feed inferred from a sample file; never overwrites.

    Proposes `uuid` as the primary key when present, generates the feed id, and surfaces the
    attribute names and tag keys seen in the sample as `from:` columns.

    \b
    Example:
      courier feeds init --courier optimizely --tag decisions --source Optimizely --name Decisions
    """
    from optimizely_courier.feeds.scaffold import init_feed

    tag = _tag_option(ctx, tag, old_tag)
    root = project_root(ctx)
    path = init_feed(root, courier, tag, source, name, sample)
    click.echo(f"wrote {path.relative_to(root)}: review it, then run `courier feeds compile`")


def _tag_option(ctx: click.Context, tag: str | None, old_tag: str | None) -> str:
    """`--tag`, or its old name `--file` (deprecated: a warning says so); exactly one of them."""
    if tag is not None and old_tag is not None:
        raise click.UsageError("--file is the old name of --tag: give only --tag", ctx)
    if old_tag is not None:
        click.echo("warning: --file is deprecated: use --tag", err=True)
        return old_tag
    if tag is None:
        raise click.MissingParameter(ctx=ctx, param=next(p for p in ctx.command.params if p.name == "tag"))
    return tag
