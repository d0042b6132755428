"""Tables as plain text, for commands whose output is read, piped and pasted."""

from __future__ import annotations

import io


def as_text(renderable: object) -> str:
    """`renderable` as plain text, as wide as it needs (no terminal width applies to a table whose
    output may be piped or pasted)."""
    from rich.console import Console

    console = Console(width=100_000, color_system=None, highlight=False, file=io.StringIO())
    with console.capture() as capture:
        console.print(renderable)
    return "\n".join(line.rstrip() for line in capture.get().splitlines()).strip("\n")
