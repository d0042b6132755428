"""Notifications that fail safely: bad webhook URLs, unset variables, and commands without the courier's credentials."""

from __future__ import annotations

import re

import pytest

from optimizely_courier.config.sources import parse_sources_text
from optimizely_courier.errors import ConfigError
from tests.conftest import SHOP_SOURCES, run_cli

NO_FILES_DAY = "2026-11-26"  # the mirror holds nothing for it: the run fails and sends `run_failed`
GROUP = """courier_groups:
  nightly:
    schedule: "0 6 * * *"
    couriers: [{name: shop}]
"""


def _with_notify(root, targets: str, extra: str = "") -> None:
    (root / "sources.yml").write_text(SHOP_SOURCES + "    notify:\n" + targets + extra)


def _warnings(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.strip().startswith("warning: notification")]


@pytest.mark.parametrize("url, reason", [
    ("https://user:TOKEN@127.0.0.1/hook", "its URL does not parse"),
    ("http://127.0.0.1:TOKEN/hook", "its URL does not parse"),
    ("http://127.0.0.1/hook\nTOKEN", "its URL does not parse"),
    ("http://127.0.0.1:1/TOKEN", "cannot connect (ConnectionRefusedError)"),
    ("ftp://127.0.0.1/TOKEN", "it is not an http:// or https:// URL"),
])
def test_a_webhook_that_does_not_parse_or_connect_is_a_warning_naming_only_its_target_and_variable(
        dbt_project, webhook, monkeypatch, url, reason):
    monkeypatch.setenv("BAD_HOOK", url)
    _with_notify(dbt_project, '      - {webhook: "${BAD_HOOK}"}\n      - {webhook: "${HOOK_URL}"}\n')

    result = run_cli(dbt_project, "run", "shop", "--date", NO_FILES_DAY)

    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, Exception), result.exception  # a SystemExit, not an escaped error
    assert _warnings(result.output) == [
        f"warning: notification couriers.shop.notify[0] (run_failed) was not delivered: the webhook from "
        f"${{BAD_HOOK}}: {reason}"]
    assert "TOKEN" not in result.output and "127.0.0.1" not in result.output
    assert [item["event"] for item in webhook.received] == ["run_failed"]  # the later target still ran


def test_an_unset_notify_variable_breaks_no_command_and_is_a_warning_when_a_notification_is_sent(
        dbt_project, webhook, monkeypatch):
    monkeypatch.delenv("UNSET_HOOK", raising=False)
    monkeypatch.delenv("UNSET_TOKEN", raising=False)
    _with_notify(dbt_project, '      - {webhook: "${UNSET_HOOK}"}\n'
                              '      - {webhook: "https://hooks.example.com/${UNSET_TOKEN}"}\n'
                              '      - {webhook: "${HOOK_URL}"}\n', GROUP)

    result = run_cli(dbt_project, "run", "shop", "--date", NO_FILES_DAY)

    assert result.exit_code == 1, result.output
    assert _warnings(result.output) == [
        "warning: notification couriers.shop.notify[0] (run_failed) was not delivered: "
        "environment variable UNSET_HOOK is not set",
        "warning: notification couriers.shop.notify[1] (run_failed) was not delivered: "
        "environment variable UNSET_TOKEN is not set"]
    assert [item["event"] for item in webhook.received] == ["run_failed"]
    for command in (["validate"], ["status"], ["history"], ["group", "next", "nightly"], ["group", "history"]):
        other = run_cli(dbt_project, *command)
        assert other.exit_code == 0, (command, other.output)
        assert "UNSET" not in other.output, (command, other.output)


def test_a_literal_webhook_must_still_be_an_http_url_when_sources_yml_is_read(tmp_path):
    text = SHOP_SOURCES + '    notify: [{webhook: "hooks.example.com/x"}]\n'
    with pytest.raises(ConfigError, match=r"`couriers.shop.notify\[0\].webhook`: expected an http:// or https:// URL"):
        parse_sources_text(text, tmp_path)


def _env_file(path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_a_command_notifier_runs_without_the_couriers_credentials_unless_it_lists_them(dbt_project, monkeypatch):
    monkeypatch.setenv("COURIERS__SHOP__CREDENTIAL__TOKEN", "courier-secret")
    monkeypatch.setenv("AWS_PROFILE", "ops")
    monkeypatch.setenv("REFERENCED_SECRET", "referenced-secret")
    monkeypatch.setenv("PLAIN_SETTING", "kept")
    (dbt_project / "sources.yml").write_text(SHOP_SOURCES + """    notify:
      - {command: "env > default.env"}
      - {command: "env > listed.env", env: [AWS_PROFILE, REFERENCED_SECRET]}
  bucketed:
    bucket: some-bucket
    credential: {type: iam-credential, access_key_id: AKIDEXAMPLE, secret_access_key: "${REFERENCED_SECRET}"}
    entities:
      - object/file-pattern: "'orders/date='yyyy-MM-dd'/'"
        object/land-as: {file/tag: orders}
""")

    result = run_cli(dbt_project, "run", "shop", "--date", NO_FILES_DAY)

    assert result.exit_code == 1, result.output
    assert _warnings(result.output) == []
    default, listed = _env_file(dbt_project / "default.env"), _env_file(dbt_project / "listed.env")
    for env in (default, listed):
        assert env["PLAIN_SETTING"] == "kept" and env["COURIER_EVENT"] == "run_failed"
        assert env["COURIER_SUBJECT"] == "courier shop"
        assert not [name for name in env if name.startswith("COURIERS__")]
        assert "AWS_SECRET_ACCESS_KEY" not in env and "AWS_ACCESS_KEY_ID" not in env
    assert not [name for name in default if name.startswith("AWS_")] and "REFERENCED_SECRET" not in default
    assert listed["AWS_PROFILE"] == "ops" and listed["REFERENCED_SECRET"] == "referenced-secret"


@pytest.mark.parametrize("target, message", [
    ('{command: "true", env: AWS_PROFILE}', "`couriers.shop.notify[0].env`: expected a list of environment variable names"),
    ('{command: "true", env: [AWS_PROFILE, "1BAD"]}', "`couriers.shop.notify[0].env`: expected a list of environment variable names"),
    ('{command: "true", env: []}', "`couriers.shop.notify[0].env`: expected a list of environment variable names"),
    ('{webhook: "${HOOK}", env: [AWS_PROFILE]}', "`couriers.shop.notify[0].env`: only a `command` target takes `env`"),
])
def test_a_notify_env_list_is_validated(tmp_path, target, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_sources_text(SHOP_SOURCES + f"    notify: [{target}]\n", tmp_path)
