"""Notifications: a run's events sent to the webhooks and commands its courier or group names.

    couriers:
      optimizely:
        notify:
          - {webhook: "${SLACK_WEBHOOK_URL}", events: [run_failed, data_missing, freshness]}
          - {command: "mail -s courier ops@example.com"}
          - {command: "scripts/page.sh", env: [AWS_PROFILE]}

A webhook gets a Slack-compatible JSON POST: `{"text": ..., "event": ..., "courier": ..., ...}`. Its
`${VAR}`s resolve when a notification is sent. A command runs in the project directory with the
message on stdin and `COURIER_EVENT`, `COURIER_MESSAGE` and `COURIER_SUBJECT` (the courier or group)
in its environment; not the courier's credentials (`withheld`) unless its `env` lists them.

A notification that cannot be delivered is a warning naming the target (`couriers.X.notify[i]`) and the
variable its URL came from, never a failed run, and the other targets still run. Nothing of a URL is
ever printed: it often holds a token, and Python's HTTP errors quote it.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping

from optimizely_courier.config.sources import NotifyTarget, Project, env_references, substitute

TIMEOUT_SECONDS = 10
COMMAND_TIMEOUT_SECONDS = 60
# Names of the courier's credentials in the environment: dlt's (`COURIERS__<NAME>__CREDENTIAL__...`)
# and boto3's. Besides them, every variable sources.yml references is withheld.
CREDENTIAL_PREFIXES = ("COURIERS__", "AWS_")


class Undelivered(Exception):
    """Why a notification was not delivered, in words that hold nothing of the target's URL."""


def notify(targets: Iterable[NotifyTarget], event: str, subject: str, message: str, project: Project,
           details: dict | None = None, warn: Callable[[str], None] | None = None,
           env: Mapping[str, str] | None = None) -> int:
    """Send `event` to every target that listens for it; return how many were delivered.

    Args:
        targets: the courier's or group's notify targets.
        event: what happened (a NotifyEvent).
        subject: `courier <name>` or `courier group <name>`.
        message: what to say.
        project: the project (commands run in its directory, without the variables it references).
        details: more fields for a webhook's JSON.
        warn: told about each notification that was not delivered.
        env: the environment; defaults to `os.environ`.
    """
    env = os.environ if env is None else env
    delivered = 0
    for target in targets:
        if event not in target.events:
            continue
        try:
            if target.webhook is not None:
                _post(target, event, subject, message, details or {}, env)
            else:
                _run(target, event, subject, message, project, env)
            delivered += 1
        except Undelivered as exc:
            if warn is not None:
                warn(f"notification {target.label} ({event}) was not delivered: {exc}")
    return delivered


def _post(target: NotifyTarget, event: str, subject: str, message: str, details: dict,
          env: Mapping[str, str]) -> None:
    text = f"[optimizely-courier] {subject}: {message}"
    body = json.dumps({"text": text, "event": event, "subject": subject, **details}, default=str).encode()
    url = webhook_url(target, env)
    source = _url_source(target)
    try:
        request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - configured URL
            response.read()
    except urllib.error.HTTPError as exc:
        raise Undelivered(f"the webhook from {source}: HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise Undelivered(f"the webhook from {source}: cannot connect ({type(exc.reason).__name__})") from None
    except (ValueError, http.client.InvalidURL):  # a port that is no number, user:token@, a control character
        raise Undelivered(f"the webhook from {source}: its URL does not parse") from None
    except (OSError, http.client.HTTPException) as exc:  # a timeout, a connection cut, a garbled response
        raise Undelivered(f"the webhook from {source}: {type(exc).__name__}") from None


def webhook_url(target: NotifyTarget, env: Mapping[str, str]) -> str:
    """The target's URL with its `${VAR}`s resolved now.

    Raises:
        Undelivered: a variable is not set, or the URL is not http(s).
    """
    written = target.webhook or ""
    missing = [name for name in env_references(written) if not env.get(name)]
    if missing:
        raise Undelivered(f"environment variable {missing[0]} is not set")
    url = substitute(written, env)
    if not url.startswith(("http://", "https://")):
        raise Undelivered(f"the webhook from {_url_source(target)}: it is not an http:// or https:// URL")
    return url


def _url_source(target: NotifyTarget) -> str:
    """Where the target's URL comes from, for messages: its variables, never its text."""
    names = env_references(target.webhook or "")
    return ", ".join(f"${{{name}}}" for name in names) if names else "sources.yml"


def _run(target: NotifyTarget, event: str, subject: str, message: str, project: Project,
         env: Mapping[str, str]) -> None:
    text = f"[optimizely-courier] {subject}: {message}"
    passed = {**command_env(env, withheld(project), target.env),
              "COURIER_EVENT": event, "COURIER_MESSAGE": message, "COURIER_SUBJECT": subject}
    try:
        process = subprocess.run(target.command, shell=True, cwd=project.root, env=passed, input=text, text=True,
                                 capture_output=True, timeout=COMMAND_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise Undelivered(f"the command did not finish within {COMMAND_TIMEOUT_SECONDS}s") from None
    except OSError as exc:
        raise Undelivered(f"the command did not start ({type(exc).__name__})") from None
    if process.returncode != 0:
        raise Undelivered(f"the command exited with {process.returncode}")


def withheld(project: Project) -> Callable[[str], bool]:
    """Whether a variable is one of the courier's credentials, kept from notify commands."""
    referenced = project.referenced_variables()
    return lambda name: name.startswith(CREDENTIAL_PREFIXES) or name in referenced


def command_env(env: Mapping[str, str], is_withheld: Callable[[str], bool], passed: Iterable[str]) -> dict[str, str]:
    """`env` without the withheld variables, except those a target's `env` lists."""
    keep = set(passed)
    return {name: value for name, value in env.items() if name in keep or not is_withheld(name)}
