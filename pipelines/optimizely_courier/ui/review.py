"""The feed review page: `courier feeds diff BASE` (feeds, load operations, entities and experiments,
each change ranked) as the page a pull request shows. Retyped columns are checked against the warehouse
when no one writes it; otherwise the page says they were not."""

from __future__ import annotations

import os
import re
from typing import Any

from optimizely_courier.config.sources import Project
from optimizely_courier.errors import CourierError
from optimizely_courier.feeds.review import RANK, SCOPES, review, to_markdown
from optimizely_courier.ui.access import NoWarehouse, Unavailable, reading

# A git ref as a person types one (a branch, a tag, HEAD~1, a commit): never an option, never a space.
REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./~^@{}+-]{0,199}\Z")


class BadRef(CourierError):
    """A base ref that is not one."""


def review_view(project: Project, base: str | None) -> dict[str, Any]:
    """The ranked review of the working tree against `base` (default origin/main, else main).

    Raises:
        BadRef: `base` is not a ref as people write them.
        CourierError: not a git repository, no such ref, or feeds that do not parse.
    """
    from optimizely_courier.experiments.review import experiment_changes

    if base is not None and not REF.match(base):
        raise BadRef(f"base {base!r} is not a git ref (a branch, a tag, HEAD~1 or a commit)")
    unchecked = None
    try:
        with reading(project):  # its checks open the file themselves, read-only
            result = review(project.root, base, dict(os.environ), project.warehouse)
    except (Unavailable, NoWarehouse) as exc:
        unchecked = str(exc)
        result = review(project.root, base, dict(os.environ), None)
    result.changes += experiment_changes(project.root, result.base)
    found = result.to_json()
    sections = []
    for scope, title in SCOPES.items():
        subjects: dict[str, list[dict]] = {}
        for change in found["changes"]:
            if change["scope"] == scope:
                subjects.setdefault(change["subject"], []).append(change)
        if subjects:
            sections.append({"title": title, "subjects": [
                {"subject": subject, "file": changes[0]["file"] if scope in ("feed", "experiments") else "",
                 "changes": sorted(changes, key=lambda c: -RANK[c["severity"]])}
                for subject, changes in subjects.items()]})
    return {**found, "sections": sections, "markdown": to_markdown(result), "unchecked": unchecked}
