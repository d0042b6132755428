"""The secrets a courier's credential leaves out of sources.yml, through dlt's config system.

A configspec, `CredentialSecrets`, is resolved under `couriers.<courier>.credential` by dlt's own
providers for the project, in dlt's order: environment variables
(`COURIERS__<COURIER>__CREDENTIAL__SECRET_ACCESS_KEY`), then `.dlt/secrets.toml`
(`[couriers.<courier>.credential]`). dlt is imported only for a project that needs it (a secret
left out of sources.yml, or a secrets file to check): its import costs about half a second.
"""

from __future__ import annotations

import functools
import os
import tomllib
from pathlib import Path
from typing import Any

from optimizely_courier.errors import ConfigError

SECRETS_FILE = ".dlt/secrets.toml"
# Fields whose value may only come from the environment or dlt's secrets.
SECRET_KEYS = ("secret_access_key", "session_token", "token")


def resolve_secrets(root: Path, courier: str) -> dict[str, str]:
    """The credential secrets dlt's providers hold for `courier` (only those that are set); nothing,
    without importing dlt, when the project has no secrets file and no `COURIERS__` variable is set."""
    if not (root / SECRETS_FILE).exists() and not any(name.startswith("COURIERS__") for name in os.environ):
        return {}
    from dlt.common.configuration import resolve_configuration
    from dlt.common.configuration.container import Container
    from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext
    from dlt.common.runtime.run_context import RunContext

    # dlt's run context for the project directory (which need not be the working directory)
    with Container().injectable_context(PluggableRunContext(RunContext(str(root)))):
        resolved = resolve_configuration(_spec()(), sections=("couriers", courier, "credential"))
    return {key: str(resolved[key]) for key in SECRET_KEYS if resolved[key]}


def check_secrets_file(root: Path) -> None:
    """`.dlt/secrets.toml`, when there is one: its `[couriers.<name>.credential]` tables may hold only
    the secret keys, as non-empty strings (dlt's own sections are dlt's business).

    Raises:
        ConfigError: naming the file and the key.
    """
    path = root / SECRETS_FILE
    if not path.exists():
        return
    couriers = tomllib.loads(_secrets_toml(root).to_toml()).get("couriers", {})
    for name, courier in (couriers.items() if isinstance(couriers, dict) else [("", couriers)]):
        where = f"couriers.{name}" if name else "couriers"
        if not isinstance(courier, dict) or set(courier) - {"credential"} or not isinstance(
                courier.get("credential", {}), dict):
            raise ConfigError(path, where, "expected only a [couriers.<courier>.credential] table of secrets")
        for key, value in courier.get("credential", {}).items():
            if key not in SECRET_KEYS:
                raise ConfigError(path, f"{where}.credential.{key}", f"unknown key; secrets here are: "
                                  f"{', '.join(SECRET_KEYS)} (other credential keys belong in sources.yml)")
            if not isinstance(value, str) or not value:
                raise ConfigError(path, f"{where}.credential.{key}", f"expected a non-empty string, got a "
                                  f"{type(value).__name__}")


def _secrets_toml(root: Path) -> Any:  # noqa: ANN401 - dlt's SecretsTomlProvider
    """dlt's provider of the project's `.dlt/secrets.toml` (not the user-wide ~/.dlt one)."""
    from dlt.common.configuration.providers import SecretsTomlProvider

    try:
        return SecretsTomlProvider(settings_dir=str(root / ".dlt"))
    except Exception as exc:  # noqa: BLE001 - dlt wraps tomlkit's parse errors in several types
        raise ConfigError(root / SECRETS_FILE, "", f"cannot read secrets file: {_last_line(exc)}") from None


def _last_line(exc: Exception) -> str:
    """dlt's message ends with the parser's own line (which names the line and column)."""
    lines = str(exc).strip().splitlines()
    return lines[-1] if lines else type(exc).__name__


@functools.cache
def _spec() -> type:
    """The configspec, made on first use (defining it imports dlt)."""
    from dlt.common.configuration import configspec
    from dlt.common.configuration.specs import BaseConfiguration
    from dlt.common.typing import TSecretStrValue

    fields = {key: None for key in SECRET_KEYS}
    return configspec(type("CredentialSecrets", (BaseConfiguration,), {
        "__annotations__": {key: TSecretStrValue | None for key in SECRET_KEYS},
        "__doc__": "A courier credential's secret keys, as dlt resolves them under couriers.<name>.credential.",
        "__module__": __name__, **fields}))
