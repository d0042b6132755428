"""How old a courier's newest landed partition may get: its own `freshness` in sources.yml, or what the
schedules of its courier groups imply (`Project.freshness` chooses)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from optimizely_courier.config.groups import CourierGroup, GroupCourier, schedule_value
from optimizely_courier.config.schedule import longest_gap, longest_staleness, parse_duration
from optimizely_courier.config.yamlfile import Section

FRESHNESS_KEYS = ("warn_after", "error_after")
LOAD_MARGIN = dt.timedelta(hours=1)  # a scheduled run's landing, after its wait, before a partition is late


@dataclass(frozen=True)
class Freshness:
    """How old a courier's newest landed partition may get before `dbt source freshness`,
    `courier status` and the `freshness` notification warn, and then call it an error."""

    warn_after: dt.timedelta = dt.timedelta(hours=48)
    error_after: dt.timedelta = dt.timedelta(hours=72)

    @classmethod
    def implied_by(cls, group: CourierGroup, member: GroupCourier) -> Freshness:
        """What a group's schedule implies: warn once the newest landed partition is older than it
        ever gets while every scheduled run lands its dates by the end of its `wait` (plus an hour to
        load them); an error one schedule interval (the longest gap between runs) later."""
        dates_zone = group.timezone if group.use_timezone_for_dates else None
        stale = longest_staleness(group.schedule, group.timezone, member.offset, dates_zone)
        warn = _whole_hours(stale + member.wait + LOAD_MARGIN)
        return cls(warn, _whole_hours(warn + longest_gap(group.schedule, group.timezone)))


def _whole_hours(delta: dt.timedelta) -> dt.timedelta:
    return dt.timedelta(hours=-(-delta // dt.timedelta(hours=1)))  # rounded up: dbt counts hours


def parse_freshness(s: Section | None) -> Freshness | None:
    """A courier's `freshness: {warn_after, error_after}`, or None when it has none."""
    if s is None:
        return None
    s.check_keys(FRESHNESS_KEYS)
    warn = schedule_value(s, "warn_after", None, parse_duration)
    error = schedule_value(s, "error_after", None, parse_duration)
    if warn is None or error is None:
        raise s.error("", "set both `warn_after` and `error_after`, such as {warn_after: 36h, error_after: 72h}")
    if error <= warn:
        raise s.error("error_after", "must be longer than `warn_after`")
    return Freshness(_whole_hours(warn), _whole_hours(error))
