"""`${VAR}` references in sources.yml: found, checked and replaced by the environment's values.

A value that is exactly one reference to an unset variable is absent (a command that does not need it
still works); an unset variable inside a longer value is an error naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from optimizely_courier.config.yamlfile import Section

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_REF = re.compile(r"\$\{(" + ENV_NAME.pattern + r")\}")


def is_env_ref(value: Any) -> bool:
    """Whether `value` is one `${VAR}` reference and nothing else."""
    return isinstance(value, str) and _ENV_REF.fullmatch(value.strip()) is not None


def env_name(value: Any) -> str | None:
    """The variable `value` references when it is one `${VAR}` reference, else None."""
    match = _ENV_REF.fullmatch(value.strip()) if isinstance(value, str) else None
    return match.group(1) if match else None


def expand(s: Section, key: str, env: Mapping[str, str]) -> str | None:
    """A string value with `${VAR}` replaced; an unset variable makes the whole value absent."""
    if s.raw(key) is None:
        return None
    value = s.string(key)
    missing = [name for name in env_references(value) if not env.get(name)]
    if missing:
        if is_env_ref(value):
            return None
        raise s.error(key, f"environment variable {missing[0]} is not set")
    return substitute(value, env)


def env_references(text: str) -> list[str]:
    """The names `text` references as `${VAR}`, in order."""
    return [match.group(1) for match in _ENV_REF.finditer(text)]


def substitute(text: str, env: Mapping[str, str]) -> str:
    """`text` with each `${VAR}` replaced by its value (every one must be set), stripped."""
    return _ENV_REF.sub(lambda m: env[m.group(1)], text).strip()
