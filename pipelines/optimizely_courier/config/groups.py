"""Courier groups (`courier_groups:` in sources.yml): couriers run as a unit on a cron schedule in a time
zone, each with its wait, offset and what to do when its data is missing, gating downstream commands."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from optimizely_courier.config.notify import NotifyTarget, parse_notify
from optimizely_courier.config.schedule import Cron, ScheduleError, parse_duration, parse_zone
from optimizely_courier.config.yamlfile import Section, line_of

OnMissing = Literal["stop", "notify"]  # a group courier whose data is not ready past its wait
GroupStatus = Literal["active", "inactive"]
GROUP_KEYS = ("schedule", "timezone", "status", "only_past_day", "use_timezone_for_dates", "couriers", "downstream",
              "poll", "notify")
GROUP_COURIER_KEYS = ("name", "wait", "offset", "on_missing")
DEFAULT_POLL = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class GroupCourier:
    """One courier of a courier group, with how long to wait for its data and which dates to accept."""

    name: str
    wait: dt.timedelta = dt.timedelta(0)
    offset: dt.timedelta = dt.timedelta(hours=24)
    on_missing: OnMissing = "stop"


@dataclass(frozen=True)
class CourierGroup:
    """Couriers run as a unit on a cron schedule in a time zone, gating downstream commands."""

    name: str
    couriers: tuple[GroupCourier, ...]
    schedule: Cron | None = None  # None: run by hand only
    timezone: ZoneInfo = ZoneInfo("UTC")
    status: GroupStatus = "active"
    only_past_day: bool = False
    use_timezone_for_dates: bool = False
    downstream: tuple[str, ...] = ()
    poll: dt.timedelta = DEFAULT_POLL
    notify: tuple[NotifyTarget, ...] = ()

    @property
    def active(self) -> bool:
        return self.status == "active" and self.schedule is not None


def parse_group(name: str, s: Section, couriers: Collection[str]) -> CourierGroup:
    """One group of `courier_groups`; its members must be among `couriers` (the configured names)."""
    s.check_keys(GROUP_KEYS)
    members = []
    for index, item in enumerate(s.items("couriers")):
        c = Section(item, s.file, f"{s.key('couriers')}[{index}]", line_of(s.raw("couriers"), index))
        c.check_keys(GROUP_COURIER_KEYS)
        courier = c.string("name")
        if courier not in couriers:
            raise c.error("name", f"no courier `{courier}` in couriers (configured: {', '.join(sorted(couriers))})")
        members.append(GroupCourier(courier, schedule_value(c, "wait", "0", parse_duration),
                                    schedule_value(c, "offset", "24h", parse_duration),
                                    c.choice("on_missing", get_args(OnMissing), default="stop")))
    if not members:
        raise s.error("couriers", "expected at least one courier")
    downstream = s.items("downstream", required=False)
    if not all(isinstance(command, str) and command.strip() for command in downstream):
        raise s.error("downstream", "expected a list of shell commands, such as [dbt build]")
    return CourierGroup(
        name=name, couriers=tuple(members),
        schedule=schedule_value(s, "schedule", None, Cron.parse),
        timezone=schedule_value(s, "timezone", "UTC", parse_zone),
        status=s.choice("status", get_args(GroupStatus), default="active"),
        only_past_day=s.boolean("only_past_day", False),
        use_timezone_for_dates=s.boolean("use_timezone_for_dates", False),
        downstream=tuple(downstream),
        poll=schedule_value(s, "poll", "60s", parse_duration),
        notify=parse_notify(s),
    )


def schedule_value(s: Section, key: str, default: Any, parse: Callable[[Any], Any]) -> Any:
    """A schedule, zone or duration value, parsed; errors name the key."""
    value = s.raw(key, default)
    if value is None:
        return None
    try:
        return parse(value)
    except ScheduleError as exc:
        raise s.error(key, str(exc)) from None
