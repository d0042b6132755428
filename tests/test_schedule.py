"""Cron schedules in a time zone (across both DST transitions), durations, offset windows, and the dates
scheduled runs load over a year."""

import collections
import dataclasses
import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizely_courier.config.groups import CourierGroup, GroupCourier
from optimizely_courier.config.schedule import (
    Cron,
    ScheduleError,
    parse_duration,
    parse_zone,
    previous_time,
    scheduled_times,
    unloaded_dates,
    window_dates,
)
from optimizely_courier.groups.coverage import coverage_warnings, never_loaded
from optimizely_courier.groups.group_run import scheduled_dates

UTC = dt.UTC


def times(cron: str, zone: str, after: str, n: int) -> list[str]:
    start = dt.datetime.fromisoformat(after)
    found = itertools.islice(scheduled_times(Cron.parse(cron), parse_zone(zone), start), n)
    return [t.astimezone(UTC).strftime("%Y-%m-%d %H:%M") for t in found]


@pytest.mark.parametrize("zone, after, expected", [
    # US spring forward 2027-03-14: 02:00 -> 03:00; 02:30 does not exist and runs once, at 03:30 PDT
    ("America/Los_Angeles", "2027-03-13T00:00:00+00:00", ["2027-03-13 10:30", "2027-03-14 10:30", "2027-03-15 09:30"]),
    # Europe spring forward 2027-03-28: 02:00 -> 03:00 CET/CEST
    ("Europe/Berlin", "2027-03-27T00:00:00+00:00", ["2027-03-27 01:30", "2027-03-28 01:30", "2027-03-29 00:30"]),
])
def test_a_skipped_wall_time_runs_once_after_the_jump(zone, after, expected):
    assert times("30 2 * * *", zone, after, 3) == expected


@pytest.mark.parametrize("cron, zone, after, expected", [
    # US fall back 2026-11-01: 01:00-02:00 happens twice; 01:30 runs once, at its first occurrence (PDT)
    ("30 1 * * *", "America/Los_Angeles", "2026-10-31T00:00:00+00:00",
     ["2026-10-31 08:30", "2026-11-01 08:30", "2026-11-02 09:30"]),
    # Europe fall back 2026-10-25: 02:00-03:00 happens twice
    ("30 2 * * *", "Europe/Berlin", "2026-10-24T00:00:00+00:00",
     ["2026-10-24 00:30", "2026-10-25 00:30", "2026-10-26 01:30"]),
])
def test_a_repeated_wall_time_does_not_run_twice(cron, zone, after, expected):
    assert times(cron, zone, after, 3) == expected


def test_hourly_schedule_runs_once_per_wall_clock_hour_on_a_fall_back_day():
    zone = parse_zone("America/Los_Angeles")
    start = dt.datetime(2026, 11, 1, 7, 0, tzinfo=UTC)  # local midnight (PDT)
    day = [t for t in itertools.islice(scheduled_times(Cron.parse("0 * * * *"), zone, start - dt.timedelta(seconds=1)),
                                       30) if t.astimezone(zone).date() == dt.date(2026, 11, 1)]
    assert [t.astimezone(zone).hour for t in day] == list(range(24))


def test_day_of_month_and_day_of_week_match_either_when_both_are_given():
    found = times("0 12 1 * mon", "UTC", "2026-06-01T00:00:00+00:00", 4)
    assert found == ["2026-06-01 12:00", "2026-06-08 12:00", "2026-06-15 12:00", "2026-06-22 12:00"]
    assert times("0 0 * * 0", "UTC", "2026-11-28T00:00:00+00:00", 1) == ["2026-11-29 00:00"]  # Sunday
    assert times("*/20 9-10 * * *", "UTC", "2026-11-28T00:00:00+00:00", 7)[-1] == "2026-11-29 09:00"


def test_previous_time_is_the_latest_at_or_before():
    cron, zone = Cron.parse("30 8 * * *"), parse_zone("America/Los_Angeles")
    at = dt.datetime(2026, 11, 28, 16, 30, tzinfo=UTC)
    assert previous_time(cron, zone, at) == at
    assert previous_time(cron, zone, at - dt.timedelta(seconds=1)) == at - dt.timedelta(days=1)


@pytest.mark.parametrize("text, message", [
    ("30 8 * *", "expected five fields"),
    ("61 8 * * *", "minute field '61': values must be within 0-59"),
    ("30 8 * * funday", "day of week field: 'funday' is not a number or a name"),
    ("30 8-6 * * *", "hour field '8-6': values must be within 0-23"),
    ("30 8 */0 * *", "a step must be at least 1"),
    ("30 8 * 13 *", "month field '13'"),
])
def test_invalid_cron_names_the_field(text, message):
    with pytest.raises(ScheduleError, match=message):
        Cron.parse(text)


@pytest.mark.parametrize("text, seconds", [("6h", 21600), ("30m", 1800), ("1h30m", 5400), ("2d", 172800),
                                           ("1w", 604800), ("45s", 45), ("500ms", 0.5), ("0", 0)])
def test_durations(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["6 hours", "h", "-1h", "1.5", "", "6H", True])
def test_malformed_durations_are_rejected(text):
    with pytest.raises(ScheduleError, match="expected a duration such as 30m"):
        parse_duration(text)


def test_unknown_zone_is_rejected():
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Olympus'"):
        parse_zone("Mars/Olympus")


def test_offset_window_dates_are_utc_unless_the_zone_is_asked_for():
    scheduled = dt.datetime(2026, 11, 28, 7, 30, tzinfo=UTC)  # 2026-11-27 23:30 in Los Angeles
    zone = parse_zone("America/Los_Angeles")
    assert window_dates(scheduled, dt.timedelta(hours=24)) == (dt.date(2026, 11, 27), dt.date(2026, 11, 28))
    assert window_dates(scheduled, dt.timedelta(hours=24), zone) == (dt.date(2026, 11, 26), dt.date(2026, 11, 27))
    assert window_dates(scheduled, dt.timedelta(hours=48)) == (dt.date(2026, 11, 26), dt.date(2026, 11, 28))
    assert window_dates(scheduled, dt.timedelta(hours=1)) == (dt.date(2026, 11, 28), dt.date(2026, 11, 29))


@pytest.mark.parametrize("macro, expected", [
    ("@hourly", ["2027-03-13 01:00", "2027-03-13 02:00"]), ("@daily", ["2027-03-14 00:00", "2027-03-15 00:00"]),
    ("@weekly", ["2027-03-14 00:00", "2027-03-21 00:00"]), ("@monthly", ["2027-04-01 00:00", "2027-05-01 00:00"]),
    ("@yearly", ["2028-01-01 00:00", "2029-01-01 00:00"]), ("30 8 ? * *", ["2027-03-13 08:30", "2027-03-14 08:30"]),
])
def test_cron_macros_and_question_marks_are_understood(macro, expected):
    assert times(macro, "UTC", "2027-03-13T00:30:00+00:00", 2) == expected


# --- The dates scheduled runs load: every date, once unless offsets overlap on purpose ---------------------------

BERLIN_WEEKDAYS = CourierGroup("weekdays", (GroupCourier("shop", offset=dt.timedelta(hours=24)),),
                               Cron.parse("15 6 * * 1-5"), parse_zone("Europe/Berlin"))


def loads(group: CourierGroup, at: str) -> list[str]:
    return [str(d) for d in scheduled_dates(group, group.couriers[0], dt.datetime.fromisoformat(at), None).days()]


def test_a_weekday_run_loads_the_days_since_the_previous_run_s_window():
    assert loads(BERLIN_WEEKDAYS, "2026-11-27T06:15:00+01:00") == ["2026-11-26"]  # Friday: Thursday
    assert loads(BERLIN_WEEKDAYS, "2026-11-30T06:15:00+01:00") == ["2026-11-27", "2026-11-28", "2026-11-29"]
    assert loads(BERLIN_WEEKDAYS, "2026-12-01T06:15:00+01:00") == ["2026-11-30"]


def test_a_daily_run_that_moves_across_utc_midnight_when_clocks_fall_back_skips_no_utc_date():
    # 16:30 in Los Angeles is 23:30 UTC in summer, 00:30 UTC the next day in winter: the first winter
    # run's offset window starts a day after the last summer run's ended, so it loads both dates
    group = CourierGroup("late", (GroupCourier("shop", offset=dt.timedelta(hours=24)),), Cron.parse("30 16 * * *"),
                         parse_zone("America/Los_Angeles"))
    assert loads(group, "2026-10-31T16:30:00-07:00") == ["2026-10-30"]
    assert loads(group, "2026-11-01T16:30:00-08:00") == ["2026-10-31", "2026-11-01"]
    assert loads(group, "2026-11-02T16:30:00-08:00") == ["2026-11-02"]


def test_only_past_day_loads_the_offset_window_alone():
    group = dataclasses.replace(BERLIN_WEEKDAYS, only_past_day=True)
    assert loads(group, "2026-11-30T06:15:00+01:00") == ["2026-11-29"]
    missed = unloaded_dates(group.schedule, group.timezone, dt.timedelta(hours=24), None, dt.date(2026, 11, 23),
                            dt.date(2026, 12, 7))
    assert missed == [dt.date(2026, 11, 27), dt.date(2026, 11, 28), dt.date(2026, 12, 4), dt.date(2026, 12, 5)]


SCHEDULES = {"daily": "{m} {h} * * *", "weekdays": "{m} {h} * * 1-5", "hourly": "{m} * * * *",
             "monthly": "{m} {h} 1 * *", "every 2 days": "{m} {h} */2 * *"}
ZONES = ("America/Los_Angeles", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata")
YEAR = (dt.date(2026, 1, 1), dt.date(2027, 1, 1))


def _simulated_year(group: CourierGroup) -> tuple[list[dt.datetime], list[list[dt.date]]]:
    """Every scheduled run from before the year until after it, with the dates each loads."""
    first = dt.datetime(2025, 11, 25, tzinfo=UTC)  # the monthly schedule's December run loads November
    times = list(itertools.takewhile(lambda t: t < dt.datetime(2027, 2, 5, tzinfo=UTC),
                                     scheduled_times(group.schedule, group.timezone, first)))
    return times, [scheduled_dates(group, group.couriers[0], t, None).days() for t in times]


@settings(max_examples=80, derandomize=True, deadline=None)
@given(kind=st.sampled_from(sorted(SCHEDULES)), hour=st.integers(0, 23), minute=st.sampled_from([0, 15, 30, 59]),
       zone=st.sampled_from(ZONES), offset_hours=st.sampled_from([0, 1, 24, 72]), use_zone=st.booleans(),
       only_past_day=st.booleans())
def test_over_a_year_every_date_is_loaded_or_warned_about(kind, hour, minute, zone, offset_hours, use_zone,
                                                          only_past_day):
    offset = dt.timedelta(hours=offset_hours)
    group = CourierGroup("g", (GroupCourier("shop", offset=offset),), Cron.parse(SCHEDULES[kind].format(m=minute, h=hour)),
                         parse_zone(zone), only_past_day=only_past_day, use_timezone_for_dates=use_zone)
    dates_zone = group.timezone if use_zone else UTC
    times, loaded = _simulated_year(group)
    counts = collections.Counter(day for days in loaded for day in days if YEAR[0] <= day < YEAR[1])
    never = [YEAR[0] + dt.timedelta(days=i) for i in range((YEAR[1] - YEAR[0]).days)
             if YEAR[0] + dt.timedelta(days=i) not in counts]

    # every date is loaded, or the warning names exactly the dates that are not
    assert never == never_loaded(group, group.couriers[0], *YEAR)
    assert bool(coverage_warnings(group)) == bool(never)
    if not only_past_day:
        assert never == []
    # a date two consecutive runs both load is a re-load the offset asks for: the offset is longer than the
    # time between them, or the earlier run's window was its own, unfinished, day
    for (earlier, later), (before, after) in zip(itertools.pairwise(times), itertools.pairwise(loaded), strict=True):
        if set(before) & set(after):
            own_day = (earlier - offset).astimezone(dates_zone).date() == earlier.astimezone(dates_zone).date()
            assert offset > later - earlier or own_day, (earlier, later, before, after)
            # and a run re-loads only dates of its own offset window, never dates it fills in
            own_start = (later - offset).astimezone(dates_zone).date()
            assert min(set(before) & set(after)) >= own_start
    # with an offset no longer than the time between runs, reaching back past midnight, exactly once
    gaps_fit = all(offset <= later - earlier for earlier, later in itertools.pairwise(times))
    past_midnight = all((t - offset).astimezone(dates_zone).date() < t.astimezone(dates_zone).date() for t in times)
    if gaps_fit and past_midnight and not never:
        assert set(counts.values()) == {1}
