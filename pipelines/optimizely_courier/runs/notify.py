"""Notifications: a run's events sent to the webhooks and commands its courier or group names.

    couriers:
      optimizely:
        notify:
          - {webhook: "${SLACK_WEBHOOK_URL}", events: [run_failed, data_missing, freshness]}
          - {command: "mail -s courier ops@example.com"}

A webhook gets a Slack-compatible JSON POST: `{"text": ..., "event": ..., "courier": ..., ...}`. A
command runs in the project directory with the message on stdin and `COURIER_EVENT`,
`COURIER_MESSAGE` and `COURIER_SUBJECT` (the courier or group) in its environment. A notification
that cannot be delivered is a warning, never a failed run; its URL is never printed (it often
holds a token).
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

from optimizely_courier.config.sources import NotifyTarget

TIMEOUT_SECONDS = 10


def notify(targets: Iterable[NotifyTarget], event: str, subject: str, message: str, root: Path,
           details: dict | None = None, warn: Callable[[str], None] | None = None) -> int:
    """Send `event` to every target that listens for it; return how many were delivered."""
    delivered = 0
    for target in targets:
        if event not in target.events:
            continue
        try:
            _send(target, event, subject, message, root, details or {})
            delivered += 1
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            if warn is not None:
                warn(f"notification {target.label} ({event}) was not delivered: {_reason(exc)}")
    return delivered


def _send(target: NotifyTarget, event: str, subject: str, message: str, root: Path, details: dict) -> None:
    text = f"[optimizely-courier] {subject}: {message}"
    if target.webhook is not None:
        body = json.dumps({"text": text, "event": event, "subject": subject, **details}, default=str).encode()
        request = urllib.request.Request(target.webhook, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - configured URL
            response.read()
        return
    env = {**os.environ, "COURIER_EVENT": event, "COURIER_MESSAGE": message, "COURIER_SUBJECT": subject}
    process = subprocess.run(target.command, shell=True, cwd=root, env=env, input=text, text=True,
                             capture_output=True, timeout=60)
    if process.returncode != 0:
        raise ValueError(f"the command exited with {process.returncode}")


def _reason(exc: Exception) -> str:
    """Why delivery failed, without the URL (urllib puts it in some messages)."""
    from urllib.error import HTTPError, URLError

    if isinstance(exc, HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, URLError):
        return f"cannot connect ({type(exc.reason).__name__})"
    return str(exc) if isinstance(exc, ValueError) else type(exc).__name__
