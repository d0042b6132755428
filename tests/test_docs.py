"""The documentation holds: README.md stays a front door, every relative link and anchor resolves, every
command and option is in the command reference, and every key the config validators accept is in its
reference page."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from optimizely_courier.cli.main import cli
from optimizely_courier.config.couriers import COURIER_KEYS, CREDENTIAL_KEYS, ENTITY_KEYS, LAND_AS_KEYS
from optimizely_courier.config.freshness import FRESHNESS_KEYS
from optimizely_courier.config.groups import GROUP_COURIER_KEYS, GROUP_KEYS
from optimizely_courier.config.notify import NOTIFY_KEYS
from optimizely_courier.config.sources import SOURCES_KEYS, WAREHOUSE_KEYS
from optimizely_courier.experiments.definition import EXPERIMENT_KEYS, METRIC_KEYS, PRIOR_KEYS, SOURCE_KEYS
from optimizely_courier.feeds.feed import COLUMN_KEYS, FEED_KEYS, RENAMED_KEYS
from optimizely_courier.feeds.loadops import OPERATION_KEYS

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
COMMANDS = DOCS / "reference" / "commands.md"
README_LIMIT = 20 * 1024

PAGES = [README, *sorted(DOCS.rglob("*.md"))]
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.M)
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _prose(text: str) -> str:
    """The text outside fenced code blocks, where `#` starts a heading and `[x](y)` is a link."""
    return FENCE.sub("", text)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text without markup, lower case, only letters, digits, `-`, `_`
    and spaces kept, spaces as `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"[`*]", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page; a repeated heading gets -1, -2, ... as on GitHub."""
    repeats: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(_prose(page.read_text())):
        slug = _slug(match.group(2))
        repeats[slug] = repeats.get(slug, -1) + 1
        found.add(f"{slug}-{repeats[slug]}" if repeats[slug] else slug)
    return found


def _links():
    for page in PAGES:
        for match in LINK.finditer(_prose(page.read_text())):
            target = match.group(1)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: leave the repository
                yield page, target


LINKS = list(_links())


def test_the_readme_is_at_most_20_kb():
    assert README.stat().st_size <= README_LIMIT, f"README.md is {README.stat().st_size} bytes, over {README_LIMIT}"


def test_there_are_pages_and_links_to_check():
    assert (DOCS / "index.md").exists() and len(LINKS) > 20


@pytest.mark.parametrize("page, target", LINKS, ids=[f"{p.relative_to(ROOT)}->{t}" for p, t in LINKS])
def test_every_relative_link_resolves_to_a_file_and_heading(page, target):
    path, _, anchor = target.partition("#")
    linked = (page.parent / path).resolve() if path else page
    assert linked.exists(), f"{page.relative_to(ROOT)}: link to {target}: no such file"
    if anchor:
        assert linked.suffix == ".md", f"{page.relative_to(ROOT)}: link to {target}: an anchor into a non-Markdown file"
        assert anchor in anchors(linked), f"{page.relative_to(ROOT)}: link to {target}: no such heading"


def _command_tree(command: click.Command, path: str = "courier"):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _command_tree(sub, f"{path} {name}")


def _options(command: click.Command) -> list[str]:
    return [name for param in command.params if isinstance(param, click.Option) and not param.hidden
            for name in (*param.opts, *param.secondary_opts) if name not in ("--help", "-h")]


COMMAND_TREE = list(_command_tree(cli))


def _section(page_text: str, title: str) -> str | None:
    """The text under the heading that starts with `title`, up to the next heading of its level or above."""
    prose = _prose(page_text)
    headings = list(HEADING.finditer(prose))
    for i, match in enumerate(headings):
        if match.group(2).startswith(title):
            level = len(match.group(1))
            end = next((h.start() for h in headings[i + 1:] if len(h.group(1)) <= level), len(prose))
            return prose[match.end():end]
    return None


@pytest.mark.parametrize("path, command", COMMAND_TREE, ids=[p for p, _ in COMMAND_TREE])
def test_every_command_and_its_options_are_in_the_command_reference(path, command):
    section = _section(COMMANDS.read_text(), f"`{path}`")

    assert section is not None, f"docs/reference/commands.md has no heading `{path}`"
    missing = [name for name in _options(command) if not re.search(rf"`{re.escape(name)}\b", section)]
    assert not missing, f"docs/reference/commands.md, `{path}`: options not documented: {', '.join(missing)}"


def _credential_keys() -> set[str]:
    return {"type", *(key for keys in CREDENTIAL_KEYS.values() for key in keys)}


def _operation_keys() -> set[str]:
    return {key for keys in OPERATION_KEYS.values() for key in keys}


# Each reference page and the keys its file's validators accept.
CONFIG_KEYS = [
    ("docs/reference/sources.md", "sources.yml", SOURCES_KEYS),
    ("docs/reference/sources.md", "couriers.<name>", COURIER_KEYS),
    ("docs/reference/sources.md", "credential", _credential_keys()),
    ("docs/reference/sources.md", "entities[]", ENTITY_KEYS),
    ("docs/reference/sources.md", "object/land-as", LAND_AS_KEYS),
    ("docs/reference/sources.md", "load operations", _operation_keys()),
    ("docs/reference/sources.md", "courier_groups.<name>", GROUP_KEYS),
    ("docs/reference/sources.md", "courier_groups.<name>.couriers[]", GROUP_COURIER_KEYS),
    ("docs/reference/sources.md", "notify[]", NOTIFY_KEYS),
    ("docs/reference/sources.md", "freshness", FRESHNESS_KEYS),
    ("docs/reference/sources.md", "warehouse", WAREHOUSE_KEYS),
    ("docs/reference/feeds.md", "a feed", (*FEED_KEYS, *RENAMED_KEYS)),
    ("docs/reference/feeds.md", "columns[]", COLUMN_KEYS),
    ("docs/reference/experiments.md", "an experiment", EXPERIMENT_KEYS),
    ("docs/reference/experiments.md", "metrics[]", METRIC_KEYS),
    ("docs/reference/experiments.md", "metrics[].from", SOURCE_KEYS),
    ("docs/reference/experiments.md", "prior", PRIOR_KEYS),
]


@pytest.mark.parametrize("page, where, keys", CONFIG_KEYS, ids=[f"{p}:{w}" for p, w, _ in CONFIG_KEYS])
def test_every_key_the_validators_accept_is_in_its_reference_page(page, where, keys):
    text = (ROOT / page).read_text()
    # `key`, or the key qualified by its place: `columns[].from`, `couriers.<name>.freshness`
    missing = [key for key in keys if not re.search(rf"`(?:[^`\s]*[.\]])?{re.escape(key)}`", text)]
    assert not missing, f"{page}: keys of {where} not documented: {', '.join(missing)}"


@pytest.mark.parametrize("heading, anchor", [
    ("Configuration: `sources.yml`", "configuration-sourcesyml"),
    ("dlt's own CLI", "dlts-own-cli"),
    ("Capping (winsorizing)", "capping-winsorizing"),
    ("What a run lands and builds, and how it recovers", "what-a-run-lands-and-builds-and-how-it-recovers"),
    ("`courier dlt <courier>` (global_options)", "courier-dlt-courier-global_options"),
])
def test_headings_get_githubs_anchors(heading, anchor):
    assert _slug(heading) == anchor


def test_a_repeated_heading_gets_a_numbered_anchor(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Setup\n\n## Setup\n\n```\n# not a heading\n```\n\n### Setup\n")

    assert anchors(page) == {"setup", "setup-1", "setup-2"}
