"""The secrets a courier's credential leaves out of sources.yml, through dlt's config system.

A configspec, `CredentialSecrets`, is resolved under `couriers.<courier>.credential` by dlt's own
providers for the project, in dlt's order: environment variables
(`COURIERS__<COURIER>__CREDENTIAL__SECRET_ACCESS_KEY`), then `.dlt/secrets.toml`
(`[couriers.<courier>.credential]`). dlt is imported only to resolve a secret left out of
sources.yml (its import costs about half a second); checking the secrets file needs only tomllib.
"""

from __future__ import annotations

import functools
import os
import tomllib
from pathlib import Path

from optimizely_courier.errors import ConfigError

SECRETS_FILE = ".dlt/secrets.toml"
# Fields whose value may only come from the environment or dlt's secrets.
SECRET_KEYS = ("secret_access_key", "session_token", "token")


def resolve_secrets(root: Path, courier: str) -> dict[str, str]:
    """The credential secrets dlt's providers hold for `courier` (only those that are set); nothing,
    without importing dlt, when the project has no secrets file and no `COURIERS__` variable is set."""
    if not (root / SECRETS_FILE).exists() and not any(name.startswith("COURIERS__") for name in os.environ):
        return {}
    check_secrets_file(root)  # a file dlt cannot parse: one line naming it, not dlt's traceback
    from optimizely_courier.compat import resolve_in_project

    resolved = resolve_in_project(root, _spec()(), ("couriers", courier, "credential"))
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
    try:
        couriers = tomllib.loads(path.read_text(encoding="utf-8")).get("couriers", {})
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "", f"cannot read secrets file: {exc}") from None
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


@functools.cache
def _spec() -> type:
    """The configspec, made on first use (defining it imports dlt)."""
    from optimizely_courier.compat import BaseConfiguration, TSecretStrValue, configspec

    fields = {key: None for key in SECRET_KEYS}
    return configspec(type("CredentialSecrets", (BaseConfiguration,), {
        "__annotations__": {key: TSecretStrValue | None for key in SECRET_KEYS},
        "__doc__": "A courier credential's secret keys, as dlt resolves them under couriers.<name>.credential.",
        "__module__": __name__, **fields}))
