"""Notification targets of a courier or a courier group (`notify:` in sources.yml).

    notify: [{webhook: ..., events: [<NotifyEvent>, ...]}, {command: ..., env: [VAR, ...]}]

A webhook's `${VAR}` is resolved when a notification is sent (`runs.notify`), so an unset one breaks no
command that reads sources.yml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from optimizely_courier.config.env import ENV_NAME
from optimizely_courier.config.yamlfile import Section, line_of

NotifyEvent = Literal["run_failed", "data_missing", "files_rejected", "rows_rejected", "new_columns", "freshness"]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = get_args(NotifyEvent)
NOTIFY_KEYS = ("webhook", "command", "events", "env")


@dataclass(frozen=True)
class NotifyTarget:
    """Where an event goes: a Slack-compatible webhook (JSON POST) or a shell command."""

    webhook: str | None = field(default=None, repr=False)  # as written, `${VAR}` and all; may hold a token
    command: str | None = None
    events: tuple[NotifyEvent, ...] = NOTIFY_EVENTS
    label: str = ""  # where it is configured, for messages: `couriers.optimizely.notify[0]`
    env: tuple[str, ...] = ()  # a command's variables to pass although they look like credentials


def parse_notify(s: Section) -> tuple[NotifyTarget, ...]:
    """The `notify` list of a courier or group section (none when it has no `notify`)."""
    targets = []
    for index, item in enumerate(s.items("notify", required=False)):
        n = Section(item, s.file, f"{s.key('notify')}[{index}]", line_of(s.raw("notify"), index))
        n.check_keys(NOTIFY_KEYS)
        if n.has("webhook") == n.has("command"):
            raise n.error("webhook", "give exactly one of `webhook: <url>` (write a secret URL as ${VAR}) or "
                                     "`command: <shell command>`")
        webhook = n.string("webhook") if n.has("webhook") else None
        if webhook is not None and not webhook.strip().startswith(("http://", "https://", "${")):
            raise n.error("webhook", "expected an http:// or https:// URL (or ${VAR} holding one)")
        events = n.raw("events", list(NOTIFY_EVENTS))
        if not isinstance(events, list) or not events or any(e not in NOTIFY_EVENTS for e in events):
            raise n.error("events", f"expected a list of events from: {', '.join(NOTIFY_EVENTS)}")
        passed = n.raw("env", [])
        if n.has("env") and webhook is not None:
            raise n.error("env", "only a `command` target takes `env` (the variables it needs)")
        if not isinstance(passed, list) or n.has("env") and not passed or not all(
                isinstance(name, str) and ENV_NAME.fullmatch(name) for name in passed):
            raise n.error("env", "expected a list of environment variable names, such as [AWS_PROFILE]")
        targets.append(NotifyTarget(webhook=webhook, command=n.string("command") if n.has("command") else None,
                                    events=tuple(events), label=n.path, env=tuple(passed)))
    return tuple(targets)
