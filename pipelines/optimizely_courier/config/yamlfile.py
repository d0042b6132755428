"""YAML loading that remembers line numbers, so every config error can say `file:line`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from optimizely_courier.errors import ConfigError


class LineDict(dict):
    """A mapping that knows the line of each of its keys (1-based) and its own first line."""

    line: int = 0
    lines: dict

    def line_of(self, key: Any) -> int:
        return self.lines.get(key, self.line)


class LineList(list):
    """A sequence that knows the line of each item and its own first line."""

    line: int = 0
    lines: list

    def line_of(self, index: int) -> int:
        return self.lines[index] if index < len(self.lines) else self.line


def line_of(container: Any, key: Any = None) -> int:
    """Line of `container[key]` (or of the container itself) when known, else 0."""
    if key is not None and isinstance(container, (LineDict, LineList)):
        return container.line_of(key)
    return getattr(container, "line", 0)


def _loader_for(path: str) -> type:
    class _Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):  # noqa: ANN001 - PyYAML signature
            self.flatten_mapping(node)
            result = LineDict()
            result.line = node.start_mark.line + 1
            result.lines = {}
            for key_node, value_node in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in result:
                    raise ConfigError(path, str(key), "duplicate key", key_node.start_mark.line + 1)
                result[key] = self.construct_object(value_node, deep=True)
                result.lines[key] = key_node.start_mark.line + 1
            return result

        def construct_sequence(self, node, deep=False):  # noqa: ANN001
            result = LineList(self.construct_object(child, deep=True) for child in node.value)
            result.line = node.start_mark.line + 1
            result.lines = [child.start_mark.line + 1 for child in node.value]
            return result

    _Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_mapping)
    _Loader.add_constructor("tag:yaml.org,2002:seq", _Loader.construct_sequence)
    return _Loader


def parse_yaml(text: str, path: Path | str) -> Any:
    """Parse YAML text into LineDict/LineList; syntax errors become a ConfigError naming the line."""
    try:
        return yaml.load(text, Loader=_loader_for(str(path)))  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(path, "", f"invalid YAML: {exc.problem or exc.context}", line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, "", f"invalid YAML: {exc}") from None


def load_yaml(path: Path) -> Any:
    """Read and parse a YAML file; a missing or unreadable file is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "", f"cannot read file: {exc}") from None
    return parse_yaml(text, path)


# A definition's path reaches generated files (their `generated from` header) and messages.
DEFINITION_PATH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*\Z")


def definition_path(path: Path, root: Path) -> str:
    """`path` relative to the project (`feeds/optimizely/decisions.yml`), refused unless each part is
    letters, digits, `_`, `-` and `.`: a file name is text the generated models repeat."""
    relative = path.relative_to(root).as_posix()
    if not DEFINITION_PATH.match(relative):
        raise ConfigError(relative, "", "a definition's file name may hold only letters, digits, `_`, `-` and `.`: "
                                        "rename the file")
    return relative


_MISSING = object()


class Section:
    """A mapping from a YAML file, with its key path, for validation that names file:line and key.

    Example: `Section(doc, "sources.yml", "couriers.optimizely").string("bucket")` returns the
    value or raises `sources.yml:4: `couriers.optimizely.bucket`: expected a string, got 12`.
    """

    def __init__(self, data: Any, file: Path | str, path: str = "", line: int = 0):
        self.file = str(file)
        self.path = path
        self.line = line or line_of(data)
        if not isinstance(data, dict):
            raise self.error("", f"expected a mapping, got {_describe(data)}")
        self.data = data

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else str(name)

    def line_of(self, name: str) -> int:
        return line_of(self.data, name) or self.line

    def error(self, name: str, message: str) -> ConfigError:
        key = self.key(name) if name else self.path
        return ConfigError(self.file, key, message, self.line_of(name) if name else self.line)

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    def check_keys(self, allowed: list[str] | tuple[str, ...], deprecated: Iterable[str] = ()) -> None:
        """Reject keys outside `allowed` and `deprecated` (old spellings, still accepted), listing the
        valid ones."""
        for name in self.data:
            if name not in allowed and name not in deprecated:
                raise self.error(str(name), f"unknown key; valid keys are: {', '.join(allowed)}")

    def deprecated(self, old: str, new: str) -> str:
        """The one-line warning for a key spelled the old way: feeds/x.yml:6: `file`: deprecated, rename it to `tag`."""
        return str(self.error(old, f"deprecated, rename it to `{new}`"))

    def required(self, name: str) -> Any:
        if self.data.get(name) is None:
            raise self.error(name, "is required") if name in self.data else ConfigError(
                self.file, self.key(name), "is required", self.line)
        return self.data[name]

    def string(self, name: str, default: Any = _MISSING) -> Any:
        value = self.data.get(name)
        if value is None:
            if default is _MISSING:
                return self.required(name)
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, f"expected a non-empty string, got {_describe(value)}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.data.get(name, default)
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {_describe(value)}")
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise self.error(name, f"expected a number from {low} to {high}, got {_describe(value)}")
        return float(value)

    def choice(self, name: str, choices: tuple[str, ...], default: Any = _MISSING) -> str:
        value = self.string(name, default)
        if value not in choices:
            raise self.error(name, f"expected one of {', '.join(choices)}; got {value!r}")
        return value

    def section(self, name: str, required: bool = True) -> Section | None:
        value = self.data.get(name)
        if value is None and not required:
            return None
        if value is None:
            self.required(name)
        return Section(value, self.file, self.key(name), self.line_of(name))

    def items(self, name: str, required: bool = True) -> list:
        value = self.data.get(name)
        if value is None:
            if required:
                self.required(name)
            return []
        if not isinstance(value, list):
            raise self.error(name, f"expected a list, got {_describe(value)}")
        return value


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}" if not isinstance(value, str) else repr(value)
