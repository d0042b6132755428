"""Dates no scheduled run of a courier group loads: what `courier validate` and `courier group next` warn about.

A group's scheduled runs load every date unless `only_past_day` is true: then a run loads only its
offset window, and the days its schedule skips (a weekday schedule's weekend, a monthly schedule's
month) are never loaded. The warning names them by weekday over one fixed year.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from optimizely_courier.config.groups import CourierGroup, GroupCourier
from optimizely_courier.config.schedule import GAP_YEAR_START, unloaded_dates

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
LISTED_DATES = 3  # a weekday missed this few times lists its dates


def coverage_year() -> tuple[dt.date, dt.date]:
    """The year the warnings are read from: the one `longest_gap` reads, so they never depend on today."""
    start = GAP_YEAR_START.date()
    return start, start.replace(year=start.year + 1)


def never_loaded(group: CourierGroup, member: GroupCourier, start: dt.date, end: dt.date) -> list[dt.date]:
    """The dates in [start, end) that none of the group's scheduled runs loads for `member`."""
    if group.schedule is None or not group.only_past_day:
        return []  # each run loads from the end of the previous one's window: nothing falls between
    dates_zone = group.timezone if group.use_timezone_for_dates else None
    return unloaded_dates(group.schedule, group.timezone, member.offset, dates_zone, start, end)


def coverage_warnings(group: CourierGroup) -> list[str]:
    """One warning per courier of the group whose scheduled runs leave dates unloaded."""
    start, end = coverage_year()
    warnings = []
    for index, member in enumerate(group.couriers):
        missed = never_loaded(group, member, start, end)
        if missed:
            zone = group.timezone.key if group.use_timezone_for_dates else "UTC"
            warnings.append(f"courier_groups.{group.name}.couriers[{index}] ({member.name}): with only_past_day: "
                            f"true, no scheduled run loads {by_weekday(missed, start, end)} ({zone} dates, "
                            f"{start.year}, offset {_hours(member.offset)}); set only_past_day: false to load "
                            "every date")
    return warnings


def by_weekday(missed: list[dt.date], start: dt.date, end: dt.date) -> str:
    """`every Friday, every Saturday` or `50 of 52 Mondays, 1 of 52 Sundays (2026-11-01)`."""
    totals = Counter((start + dt.timedelta(days=i)).weekday() for i in range((end - start).days))
    counts = Counter(day.weekday() for day in missed)
    parts = []
    for weekday in sorted(counts):
        name, count = WEEKDAYS[weekday], counts[weekday]
        if count == totals[weekday]:
            parts.append(f"every {name}")
            continue
        listed = [str(day) for day in missed if day.weekday() == weekday] if count <= LISTED_DATES else []
        parts.append(f"{count} of {totals[weekday]} {name}s" + (f" ({', '.join(listed)})" if listed else ""))
    return ", ".join(parts)


def _hours(delta: dt.timedelta) -> str:
    hours = delta / dt.timedelta(hours=1)
    return f"{hours:g}h"
