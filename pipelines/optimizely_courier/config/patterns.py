"""The courier file-pattern language.

Text in single quotes is literal (`''` is a quote), the date tokens `yyyy`, `MM` and `dd` stand
outside quotes, `*` matches within one path segment (inside or outside quotes), and a pattern
ending in `/` names a Parquet dataset directory whose part files sit one level below:

    'type=decisions/date='yyyy-MM-dd'/experiment=*/'

Everything here is pure string work; listing lives in `discovery.py`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from urllib.parse import unquote

DATE_TOKENS = {"yyyy": r"\d{4}", "MM": r"\d{2}", "dd": r"\d{2}"}
# Spark and Hadoop write bookkeeping files next to part files; none of them hold rows.
_BOOKKEEPING = re.compile(r"^(_.*|\..*|.*\.crc)\Z")


class PatternError(ValueError):
    """A file pattern that does not parse; the message says where and why."""


@dataclass(frozen=True)
class _Token:
    kind: str  # "text" | "date" | "star"
    value: str = ""


def _tokenize(pattern: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, quoted = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "'":
            if pattern.startswith("''", i):
                tokens.append(_Token("text", "'"))
                i += 2
                continue
            quoted = not quoted
            i += 1
        elif char == "*":
            tokens.append(_Token("star"))
            i += 1
        elif quoted or not char.isalpha():
            tokens.append(_Token("text", char))
            i += 1
        else:
            token = next((t for t in DATE_TOKENS if pattern.startswith(t, i)), None)
            if token is None:
                raise PatternError(
                    f"unquoted text at position {i + 1} ({pattern[i:i + 8]!r}): only the date tokens "
                    "yyyy, MM and dd may stand outside single quotes; quote literal text like 'type=events/'"
                )
            tokens.append(_Token("date", token))
            i += len(token)
    if quoted:
        raise PatternError("unbalanced single quote: every literal must be closed with '")
    return _merge_text(tokens)


def _merge_text(tokens: list[_Token]) -> list[_Token]:
    merged: list[_Token] = []
    for token in tokens:
        if token.kind == "text" and merged and merged[-1].kind == "text":
            merged[-1] = _Token("text", merged[-1].value + token.value)
        else:
            merged.append(token)
    return merged


def _split_segments(tokens: list[_Token]) -> list[list[_Token]]:
    """Split tokens on '/': one token list per path segment (the last may be empty)."""
    segments: list[list[_Token]] = [[]]
    for token in tokens:
        if token.kind != "text":
            segments[-1].append(token)
            continue
        parts = token.value.split("/")
        for index, part in enumerate(parts):
            if index:
                segments.append([])
            if part:
                segments[-1].append(_Token("text", part))
    return segments


def _segment_regex(segment: list[_Token], seen: set[str]) -> str:
    out = []
    for token in segment:
        if token.kind == "text":
            out.append(re.escape(token.value))
        elif token.kind == "star":
            out.append(r"[^/]*")
        elif token.value in seen:
            out.append(f"(?P={token.value})")
        else:
            seen.add(token.value)
            out.append(f"(?P<{token.value}>{DATE_TOKENS[token.value]})")
    return "".join(out)


def _render_segment(segment: list[_Token], day: dt.date) -> str:
    values = {"yyyy": f"{day.year:04d}", "MM": f"{day.month:02d}", "dd": f"{day.day:02d}"}
    return "".join(
        t.value if t.kind == "text" else "*" if t.kind == "star" else values[t.value]
        for t in segment
    )


@dataclass(frozen=True)
class FilePattern:
    """A parsed file pattern."""

    text: str
    segments: tuple[tuple[_Token, ...], ...]

    @classmethod
    def parse(cls, text: str) -> FilePattern:
        if not isinstance(text, str) or not text.strip():
            raise PatternError("a file pattern must be a non-empty string")
        segments = _split_segments(_tokenize(text))
        if segments[0] == [] and len(segments) > 1:
            segments = segments[1:]  # a leading '/' means the courier prefix itself
        if any(not seg for seg in segments[:-1]):
            raise PatternError("empty path segment ('//') in file pattern")
        if any(len(seg) == 1 and seg[0].kind == "text" and seg[0].value in (".", "..") for seg in segments):
            raise PatternError("a '.' or '..' path segment would leave the courier's prefix")
        return cls(text, tuple(tuple(seg) for seg in segments))

    @property
    def is_directory(self) -> bool:
        """True when the pattern ends in '/': part files sit one level below it."""
        return len(self.segments) > 1 and not self.segments[-1]

    @property
    def date_tokens(self) -> set[str]:
        return {t.value for seg in self.segments for t in seg if t.kind == "date"}

    @property
    def has_wildcards(self) -> bool:
        return any(t.kind == "star" for seg in self.segments for t in seg)

    def render(self, day: dt.date) -> str:
        """The pattern for one day, wildcards left as '*'."""
        return "/".join(_render_segment(list(seg), day) for seg in self.segments)

    def literal_prefix(self, day: dt.date) -> str:
        """The longest literal key prefix for one day: all that a listing needs to be bounded by."""
        rendered = self.render(day)
        star = rendered.find("*")
        return rendered if star < 0 else rendered[:star]

    def key_regex(self, day: dt.date) -> re.Pattern:
        """Regex matching object keys (relative to the courier prefix) of this pattern on one day."""
        parts = [_segment_regex(_day_tokens(seg, day), set()) for seg in self.segments]
        if self.is_directory:
            parts[-1] = r"[^/]+"
        return re.compile("/".join(parts))

    def date_segments(self) -> list[tuple[_Token, ...]]:
        """Segments up to and including the last one that holds a date token."""
        last = max(i for i, seg in enumerate(self.segments) if any(t.kind == "date" for t in seg))
        return list(self.segments[: last + 1])

    def date_of(self, relative_key: str) -> dt.date | None:
        """The date that the date-bearing head of a key encodes, or None when it does not match."""
        seen: set[str] = set()
        regex = "/".join(_segment_regex(list(seg), seen) for seg in self.date_segments())
        match = re.match(regex + r"(?:/|$)", relative_key)
        if not match:
            return None
        try:
            return dt.date(int(match["yyyy"]), int(match["MM"]), int(match["dd"]))
        except (IndexError, ValueError):
            return None

    def hive_values(self, relative_key: str) -> dict[str, str]:
        """URL-decoded `name=value` segments of a key where the pattern has a wildcard.

        `event=add%3Acart` gives {"event": "add:cart"}; `event=NULL` stays the string "NULL",
        since Optimizely writes it as a real event name.
        """
        values: dict[str, str] = {}
        for pattern_segment, key_segment in zip(self.segments, relative_key.split("/")):
            if "=" in key_segment and any(t.kind == "star" for t in pattern_segment):
                name, _, value = key_segment.partition("=")
                values[unquote(name)] = unquote(value)
        return values


def _day_tokens(segment: tuple[_Token, ...], day: dt.date) -> list[_Token]:
    """Replace date tokens of a segment with their text for `day`, keeping wildcards."""
    return [t if t.kind == "star" else _Token("text", _render_segment([t], day)) for t in segment]


def segment_regex(segment: tuple[_Token, ...]) -> re.Pattern:
    """Regex for one pattern segment on any date (used when walking the date levels)."""
    return re.compile(_segment_regex(list(segment), set()))


def segment_literal_head(segment: tuple[_Token, ...]) -> str:
    """The literal text a segment starts with, to narrow a listing of that level."""
    return segment[0].value if segment and segment[0].kind == "text" else ""


def is_data_file(name: str, size: int) -> bool:
    """False for markers, Spark/Hadoop bookkeeping (`_SUCCESS`, `_committed_*`, `*.crc`) and empty objects."""
    return size > 0 and not _BOOKKEEPING.match(name)
