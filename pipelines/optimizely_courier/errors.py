"""Errors a user can cause. Each one renders as a single line that names what to fix.

The CLI catches `CourierError` and prints `Error: <message>` with a non-zero exit; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class CourierError(Exception):
    """Base class of every error a user can cause (config, credentials, data, missing files)."""

    # True when the message is printed exactly as it is, without the `Error: ` prefix.
    verbatim = False


class ConfigError(CourierError):
    """A config file (sources.yml, a feed) is wrong: names the file, line and key path."""

    def __init__(self, file: Path | str, key: str, message: str, line: int | None = None):
        self.file = one_line(str(file))
        self.key = one_line(key)
        self.line = line
        self.detail = one_line(message)
        key, message = self.key, self.detail
        where = f"{self.file}:{line}" if line else self.file
        super().__init__(f"{where}: `{key}`: {message}" if key else f"{where}: {message}")


def one_line(text: str) -> str:
    """Text with control characters escaped, so a message from hostile input stays one line."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class CredentialError(CourierError):
    """Credentials could not be obtained (token API, STS, profile)."""


class StorageError(CourierError):
    """S3 or the local mirror refused or failed a request: names bucket/object and identity."""


class NotReadyError(CourierError):
    """A required day is missing or has no ready marker: `missing` names each one (`<tag> <day>: <reason>`)."""

    def __init__(self, missing: list[str], advice: str = ""):
        self.missing = list(missing)
        super().__init__(f"source data not ready: {self.summary}{advice}")

    @property
    def summary(self) -> str:
        """The first three of `missing`, with a count of the rest."""
        more = f" (and {len(self.missing) - 3} more)" if len(self.missing) > 3 else ""
        return "; ".join(self.missing[:3]) + more


class DataError(CourierError):
    """A landed file cannot be read."""


class FeedErrors(CourierError):
    """One or more feed problems; the message is the first, with a count of the rest."""

    def __init__(self, problems: list[ConfigError]):
        self.problems = problems
        more = f" (and {len(problems) - 1} more problem(s): run `courier feeds validate`)" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}")


class MissingFeedsError(CourierError):
    """Load operations name feed ids that no feed in feeds/ has."""

    verbatim = True

    def __init__(self, feed_ids: list[str]):
        self.feed_ids = feed_ids
        names = ", ".join(f'"{feed_id}"' for feed_id in feed_ids)
        super().__init__(f"Error running load-operations task\nCannot find required feeds: {names}")


class WarehouseBusy(CourierError):
    """Another run or process held the warehouse for longer than this command would wait."""

    def __init__(self, message: str, holder: str = ""):
        super().__init__(message)
        self.holder = holder  # who holds it: a courier run, or a process outside the courier


class BuildError(CourierError):
    """dbt could not build a domain table (threshold exceeded, SQL error, failed test)."""


class ThresholdExceeded(BuildError):
    """A feed rejected more rows than its error threshold allows, so its domain table is unchanged.

    `rejected` and `total` are the rows of the build (None when the warehouse could not say).
    """

    def __init__(self, message: str, domain_table: str, threshold: float, rejected: int | None = None,
                 total: int | None = None):
        super().__init__(message)
        self.domain_table = domain_table
        self.threshold = threshold
        self.rejected = rejected
        self.total = total


class UnsupportedVersion(CourierError):
    """An installed dlt or dbt package is outside the range the courier was checked against (`compat.py`)."""

    def __init__(self, package: str, installed: str | None, supported: str):
        self.package, self.installed, self.supported = package, installed, supported
        found = f"{package} {installed} is installed" if installed else f"{package} is not installed"
        super().__init__(f"{found}; optimizely-courier supports {package}{supported}: "
                         f"pip install '{package}{supported}'")


class MissingExtra(CourierError):
    """An optional feature's extra is not installed: the message names the `pip install` line."""

    def __init__(self, feature: str, extra: str, module: str):
        self.feature, self.extra, self.module = feature, extra, module
        super().__init__(f"{feature} needs the `{extra}` extra ({module} is not installed): "
                         f"pip install 'optimizely-courier[{extra}]'")


class Interrupted(CourierError):
    """A stop was requested (SIGTERM/SIGINT) while waiting."""


class GroupFailed(CourierError):
    """A group run did not succeed: the message says which courier or downstream command, and why."""


class GroupDataMissing(GroupFailed):
    """A group courier's source data was not ready by the end of its wait (`on_missing: stop`); `missing`
    names what was missing, as `NotReadyError.missing` does."""

    def __init__(self, message: str, missing: list[str] | None = None):
        super().__init__(message)
        self.missing = list(missing or [])


def find_courier_error(exc: BaseException) -> CourierError | None:
    """Return the first CourierError in an exception's cause chain (dlt wraps resource errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, CourierError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
