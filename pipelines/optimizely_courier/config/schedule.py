"""Cron schedules in an IANA time zone, durations, and the dates a scheduled run loads.

Scheduled times are computed on the zone's wall clock and converted to UTC:
- a time that does not exist that day (02:30 when clocks jump from 02:00 to 03:00) runs once, at
  the same offset past the jump (03:30);
- a time that happens twice (01:30 when clocks fall back) runs once, at its first occurrence.
Cron semantics are Vixie cron's: when both day-of-month and day-of-week are restricted, a day
matching either runs.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = dt.UTC
# The cron macros every cron understands.
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_NAMES = {3: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
          4: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_SEARCH_DAYS = 366 * 8  # a schedule like "0 0 29 2 1" may not fire for years
# Waits, offsets and poll intervals beyond this are mistakes (and overflow date arithmetic).
MAX_DURATION = dt.timedelta(days=366)
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class ScheduleError(ValueError):
    """A cron string, zone or duration that does not parse; the message says which part."""


def parse_duration(text: object) -> dt.timedelta:
    """`6h`, `30m`, `1h30m`, `2d`, `1w`, `45s`, `500ms`, or `0`."""
    value = str(text).strip() if isinstance(text, (str, int)) and not isinstance(text, bool) else ""
    if value == "0":
        return dt.timedelta(0)
    if not value or _DURATION.sub("", value) != "":
        raise ScheduleError(f"expected a duration such as 30m, 6h, 1h30m, 2d or 1w; got {text!r}")
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(value))
    if seconds > MAX_DURATION.total_seconds():
        raise ScheduleError(f"{text!r} is longer than the longest duration allowed, {MAX_DURATION.days}d")
    return dt.timedelta(seconds=seconds)


def parse_zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ScheduleError(f"expected an IANA time zone such as America/Los_Angeles; got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r}; use an IANA name such as America/Los_Angeles "
                            "or UTC") from None


def _field_values(text: str, index: int) -> set[int]:
    name, low, high = _FIELDS[index]
    values: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?", part.lower())
        if not match:
            raise ScheduleError(f"{name} field {text!r}: expected *, a number, a range a-b, a list, or a step /n")
        span, step = match.group(1), int(match.group(2) or 1)
        if step < 1:
            raise ScheduleError(f"{name} field {text!r}: a step must be at least 1")
        if span == "*":
            start, end = low, high if index != 4 else 6
        else:
            bounds = [_number(b, index) for b in span.split("-")]
            start, end = bounds[0], bounds[-1]
            if match.group(2) and len(bounds) == 1:
                end = high
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise ScheduleError(f"{name} field {text!r}: values must be within {low}-{high}")
        values.update(range(start, end + 1, step))
    return {0 if index == 4 and v == 7 else v for v in values}


def _number(text: str, index: int) -> int:
    if text.isdigit():
        return int(text)
    names = _NAMES.get(index, [])
    if text in names:
        return names.index(text) + (1 if index == 3 else 0)
    raise ScheduleError(f"{_FIELDS[index][0]} field: {text!r} is not a number or a name")


@dataclass(frozen=True)
class Cron:
    """A parsed five-field cron expression."""

    text: str
    minutes: frozenset
    hours: frozenset
    days: frozenset
    months: frozenset
    weekdays: frozenset  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: object) -> Cron:
        if not isinstance(text, str):
            raise ScheduleError(f"expected a cron string such as \"30 8 * * *\"; got {text!r}")
        fields = MACROS.get(text.strip().lower(), text).split()
        # `?` (Quartz, AWS) means "no specific value" in a day field: the same as `*`
        fields = ["*" if field == "?" and index in (2, 4) else field for index, field in enumerate(fields)]
        if len(fields) != 5:
            raise ScheduleError(f"expected five fields (minute hour day-of-month month day-of-week); got "
                                f"{len(fields)} in {text!r}")
        values = [frozenset(_field_values(f, i)) for i, f in enumerate(fields)]
        cron = cls(text, *values, any_day=fields[2] == "*", any_weekday=fields[4] == "*")
        if not cron.any_day and cron.any_weekday and not any(day <= _MONTH_DAYS[month - 1] for month in cron.months
                                                              for day in cron.days):
            raise ScheduleError(f"{text!r} never runs: none of its months has day {min(cron.days)}")
        return cron

    def runs_on(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        in_month, in_week = day.day in self.days, (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week


def _instant(day: dt.date, hour: int, minute: int, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant of a wall-clock time; gaps resolve past the jump, repeats to the first."""
    wall = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)  # fold=0: first occurrence
    return wall.astimezone(UTC)


def _local_date(instant: dt.datetime, zone: ZoneInfo) -> dt.date:
    try:
        return instant.astimezone(zone).date()
    except OverflowError:  # within a day of the calendar's ends
        return instant.date()


def scheduled_times(cron: Cron, zone: ZoneInfo, after: dt.datetime) -> Iterator[dt.datetime]:
    """Scheduled instants (UTC) strictly after `after`, in order (none past the end of the calendar)."""
    day = max(_local_date(after, zone), dt.date.min + dt.timedelta(days=1)) - dt.timedelta(days=1)
    for _ in range(MAX_SEARCH_DAYS):
        if cron.runs_on(day):
            try:
                times = sorted({_instant(day, h, m, zone) for h in cron.hours for m in cron.minutes})
            except OverflowError:  # the last days of year 9999 have no UTC instant in range
                return
            yield from (t for t in times if t > after)
        if day == dt.date.max:
            return
        day += dt.timedelta(days=1)


# The year (and firings) a schedule's longest gap is read from: fixed, so the answer never depends on
# today; a whole year includes its DST changes.
GAP_YEAR_START = dt.datetime(2026, 1, 1, tzinfo=UTC)
GAP_MAX_FIRINGS = 5000


def longest_gap(cron: Cron, zone: ZoneInfo) -> dt.timedelta:
    """The longest time between two consecutive scheduled runs over a year (for weekdays-only, the weekend)."""
    end = GAP_YEAR_START + dt.timedelta(days=366)
    times = itertools.islice(itertools.takewhile(lambda t: t <= end, scheduled_times(cron, zone, GAP_YEAR_START)),
                             GAP_MAX_FIRINGS)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    return max(gaps, default=dt.timedelta(days=366))


def longest_staleness(cron: Cron, zone: ZoneInfo, offset: dt.timedelta,
                      dates_zone: ZoneInfo | None = None) -> dt.timedelta:
    """How old the newest loaded date gets before the next scheduled run loads a newer one, over a year.

    Ages count from the start (UTC) of the date, as `courier status` and `dbt source freshness` do;
    every run loads up to the end of its offset window (a weekday schedule's Friday run loads
    Thursday, which is 4 days and the Monday run's time of day old when that run starts).
    """
    end = GAP_YEAR_START + dt.timedelta(days=366)
    times = itertools.islice(itertools.takewhile(lambda t: t <= end, scheduled_times(cron, zone, GAP_YEAR_START)),
                             GAP_MAX_FIRINGS)
    ages = [later - dt.datetime.combine(window_dates(earlier, offset, dates_zone)[1] - dt.timedelta(days=1),
                                        dt.time(), UTC)
            for earlier, later in itertools.pairwise(times)]
    return max(ages, default=dt.timedelta(days=366))


def previous_time(cron: Cron, zone: ZoneInfo, at: dt.datetime) -> dt.datetime | None:
    """The latest scheduled instant at or before `at` (searching back up to MAX_SEARCH_DAYS)."""
    day = min(_local_date(at, zone), dt.date.max - dt.timedelta(days=1)) + dt.timedelta(days=1)
    for _ in range(MAX_SEARCH_DAYS):
        if cron.runs_on(day):
            try:
                times = sorted({_instant(day, h, m, zone) for h in cron.hours for m in cron.minutes}, reverse=True)
            except OverflowError:
                times = []
            found = next((t for t in times if t <= at), None)
            if found is not None:
                return found
        if day == dt.date.min:
            return None
        day -= dt.timedelta(days=1)
    return None


def window_dates(scheduled: dt.datetime, offset: dt.timedelta, zone: ZoneInfo | None = None) -> tuple[dt.date, dt.date]:
    """The offset window of a run scheduled at `scheduled`: [date(scheduled - offset), date(scheduled)).

    Dates are UTC unless `zone` is given (the group's `use_timezone_for_dates`). At least one day
    is loaded: with an offset shorter than the time since midnight, it is the current day.
    """
    tz = zone or UTC
    try:
        start = (scheduled - offset).astimezone(tz).date()
    except OverflowError:  # an offset reaching back past the first day of the calendar
        start = dt.date.min
    end = max(scheduled.astimezone(tz).date(), start + dt.timedelta(days=1))
    return start, end


def covering_window(cron: Cron, zone: ZoneInfo, scheduled: dt.datetime, offset: dt.timedelta,
                    dates_zone: ZoneInfo | None = None) -> tuple[dt.date, dt.date]:
    """The dates a run at `scheduled` loads so that no date falls between two scheduled runs.

    From the end of the previous scheduled time's offset window to the end of this run's own (a
    weekday schedule's Monday run loads Friday to Sunday), and never less than its own window: an
    offset longer than the time since the previous run re-loads dates on purpose, for late data.
    """
    start, end = window_dates(scheduled, offset, dates_zone)
    try:
        previous = previous_time(cron, zone, scheduled - dt.timedelta(microseconds=1))
    except OverflowError:
        previous = None
    if previous is not None:
        start = min(start, window_dates(previous, offset, dates_zone)[1])
    return start, end


def unloaded_dates(cron: Cron, zone: ZoneInfo, offset: dt.timedelta, dates_zone: ZoneInfo | None,
                   start: dt.date, end: dt.date) -> list[dt.date]:
    """The dates in [start, end) that no scheduled run's own offset window loads.

    What a group with `only_past_day: true` never loads: with it, a run loads only its offset
    window, so the days a schedule skips (a weekday schedule's weekend) are left out.
    """
    def days(since: dt.date, until: dt.date) -> list[dt.date]:
        return [since + dt.timedelta(days=i) for i in range((until - since).days)]

    missed: list[dt.date] = []
    covered_to = start  # every date before it is loaded, or already in `missed`
    # Runs from two days before `start` (none earlier loads a date from `start` on) until none can
    # load a date before `end`; windows only move forward, so a date is missed when it falls between two.
    first = dt.datetime.combine(start, dt.time(), UTC) - dt.timedelta(days=2)
    last = dt.datetime.combine(end, dt.time(), UTC) + offset + dt.timedelta(days=2)
    for scheduled in itertools.takewhile(lambda t: t <= last, scheduled_times(cron, zone, first)):
        window_start, window_end = window_dates(scheduled, offset, dates_zone)
        missed += days(covered_to, min(window_start, end))
        covered_to = max(covered_to, window_end)
        if covered_to >= end:
            return missed
    return missed + days(covered_to, end)
