"""Output of commands that is read, piped and pasted: tables as plain text, JSON as strict JSON."""

from __future__ import annotations

import io
import json
import math


def as_text(renderable: object) -> str:
    """`renderable` as plain text, as wide as it needs (no terminal width applies to a table whose
    output may be piped or pasted)."""
    from rich.console import Console

    console = Console(width=100_000, color_system=None, highlight=False, file=io.StringIO())
    with console.capture() as capture:
        console.print(renderable)
    return "\n".join(line.rstrip() for line in capture.get().splitlines()).strip("\n")


def to_json(value: object) -> str:
    """`value` as strict JSON (RFC 8259: no NaN or Infinity, which Python's json writes by default): a
    non-finite number is null; dates and other objects are their text."""
    return json.dumps(_finite(value), indent=2, default=str, allow_nan=False)


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
