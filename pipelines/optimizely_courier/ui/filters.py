"""How the templates write numbers, times and values they have no layout of their own for."""

from __future__ import annotations

import json
from typing import Any

from optimizely_courier.ui.results import generic


def count(value: Any) -> str:  # noqa: ANN401
    """A whole number with thousands separators; empty for none."""
    return "" if value is None else f"{value:,}"


def share(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def when(value: str | None) -> str:
    """An ISO timestamp to the second, as `2026-11-29 08:31:05` (the zone as it is stored: UTC)."""
    if not value:
        return "-"
    return value[:19].replace("T", " ")


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def pretty(value: Any) -> str:  # noqa: ANN401
    return json.dumps(value, indent=2, default=str)


def total(mapping: dict | None) -> int:
    """The sum of a mapping's numbers (a run's rows or files per tag)."""
    return sum(v for v in (mapping or {}).values() if isinstance(v, int | float))


FILTERS = {"count": count, "share": share, "when": when, "seconds": seconds, "pretty": pretty, "generic": generic,
           "total": total}
