"""What the `courier` commands share: the context object, loading the project, run dates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click


class Seconds(click.ParamType):
    """A finite number of seconds from 0 to a day (not `nan`, not `inf`)."""

    name = "seconds"

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201 - click's signature
        import math

        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"expected a number of seconds, got {value!r}", param, ctx)
        if not math.isfinite(seconds) or not 0 <= seconds <= 86400:
            self.fail(f"expected a number of seconds from 0 to 86400, got {value!r}", param, ctx)
        return seconds


SECONDS = Seconds()


def check_output(path: Path, param_hint: str, directory: bool = False) -> None:
    """Fail as a usage error, before any work, when `path` cannot be written: the nearest existing folder
    above it must be a directory, and a file's own folder must exist (a directory's missing parents are made).
    """
    above = path if directory else path.parent
    existing = next(folder for folder in (above, *above.parents) if folder.exists() or folder == folder.parent)
    if not existing.is_dir():
        raise click.BadParameter(f"cannot write {path}: {existing} is a file, not a directory", param_hint=param_hint)
    if not directory and existing != above:
        raise click.BadParameter(f"cannot write {path}: directory {above} does not exist", param_hint=param_hint)


def write_failed(path: Path, exc: OSError) -> click.ClickException:
    """One line for a write the operating system refused (permissions, a full disk)."""
    return click.ClickException(f"cannot write {path}: {exc.strerror or type(exc).__name__}")


def warn_deprecated(feeds: list) -> None:
    """One warning line (stderr) per old key spelling a feed uses, naming its file:line and the new key."""
    for feed in feeds:
        for message in feed.deprecations:
            click.echo(f"warning: {message}", err=True)


@dataclass
class Context:
    """What the root command passes to every sub-command (`-C`, `--debug`)."""

    project_dir: Path
    debug: bool


def project_root(ctx: click.Context) -> Path:
    """The `-C` directory, which must hold sources.yml: a check run in the wrong directory fails, never passes."""
    from optimizely_courier.config.sources import SOURCES_FILE
    from optimizely_courier.errors import ConfigError

    root = ctx.obj.project_dir
    if not (root / SOURCES_FILE).is_file():
        raise ConfigError(root / SOURCES_FILE, "", "file not found: run courier in the project directory, "
                                                   "or pass -C DIR")
    return root


def current_project(ctx: click.Context):  # noqa: ANN202 - a config.Project
    """The project in the `-C` directory, loaded and validated."""
    from optimizely_courier.config.sources import load_project

    return load_project(project_root(ctx))


def run_dates(date: str | None, start: str | None, end: str | None, everything: bool):  # noqa: ANN202
    """The dates of `--date`, `--from/--to` or `--all` (exactly one of them); anything else is a usage error."""
    from optimizely_courier.landing.discovery import RunDates

    chosen = [name for name, given in (("--date", date), ("--from/--to", start or end), ("--all", everything))
              if given]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --date D, --from D --to D, or --all")
    if date:
        return RunDates.one(option_date(date, "--date"))
    if everything:
        return RunDates.everything()
    if not (start and end):
        raise click.UsageError("--from and --to go together (start inclusive, end exclusive)")
    first, last = option_date(start, "--from"), option_date(end, "--to")
    if last <= first:
        raise click.UsageError(f"--to {last} must be after --from {first} (the end date is exclusive)")
    return RunDates.between(first, last)


def option_date(text: str, option: str):  # noqa: ANN201 - a datetime.date
    """A YYYY-MM-DD option value; anything else is a usage error naming the option."""
    from optimizely_courier.errors import CourierError
    from optimizely_courier.landing.discovery import parse_date

    try:
        return parse_date(text, option)
    except CourierError as exc:
        raise click.UsageError(str(exc)) from None


def date_options(command):  # noqa: ANN001, ANN201 - a click decorator
    """The run-date options shared by every command that runs a courier."""
    command = click.option("--all", "everything", is_flag=True, help="Every date present in the bucket.")(command)
    command = click.option("--to", "end", metavar="D", help="End date, exclusive.")(command)
    command = click.option("--from", "start", metavar="D", help="Start date, inclusive.")(command)
    command = click.option("--date", metavar="D", help="One day, as YYYY-MM-DD.")(command)
    return command


def iso_instant(text: str | None, option: str):  # noqa: ANN202
    """An ISO date-time (UTC when it has no offset), naming the option on failure."""
    import datetime as dt

    if text is None:
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.UsageError(f"{option}: expected an ISO date-time such as 2026-11-28T08:30:00Z; "
                               f"got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def note_pending_history(warehouse: Path) -> None:
    """Say so on stderr when runs an earlier version recorded in the warehouse cannot be shown yet."""
    from optimizely_courier.runs.history import history_pending

    if history_pending(warehouse):
        click.echo("note: runs recorded by an earlier version in the warehouse are not shown yet: another "
                   "process is writing it; they will be once it is free", err=True)
