"""The semantic-tag vocabulary of feeds, and the rules tags must follow.

Tags are the documented vocabulary (PII tags, keys, and the prefixed families such as
`txn-item/...`) plus custom tags, which must start with `custom-`.
"""

from __future__ import annotations

import difflib
import re

# Tags that mark a column as customer PII; `canonical` names are what Stitch input exposes.
PII_TAGS = ("address", "address2", "birthdate", "city", "company", "country", "create-dt", "email", "full-name",
            "gender", "generational-suffix", "given-name", "phone", "postal", "state", "surname", "title",
            "update-dt")
KEY_TAGS = ("pk", "ck")
KEY_PREFIXES = ("fk-", "bk-", "sk-")
FAMILY_PREFIXES = ("txn-item/", "pc/", "email-event/", "email-summary/", "email-opt/", "sms-opt/", "loy/",
                   "loy-event/", "fiscal/", "compliance/")
DB_TAGS = ("db/required", "db/unique")
CUSTOM_PREFIX = "custom-"
ONCE_PER_FEED = ("given-name", "surname")
REQUIRED_TYPE = {"birthdate": "Date", "phone": "String"}
_SUFFIX = re.compile(r"^[a-z0-9]+(?:[-_/][a-z0-9]+)*\Z")


def canonical(tag: str) -> str:
    """The column name a PII tag gets in Stitch input (`given-name` -> `given_name`)."""
    return tag.replace("-", "_")


def is_pii(tag: str) -> bool:
    return tag in PII_TAGS


def check_tag(tag: str) -> str | None:
    """None when `tag` is valid, else the reason, with a suggestion when one is close."""
    if tag in PII_TAGS or tag in KEY_TAGS or tag in DB_TAGS:
        return None
    for prefix in KEY_PREFIXES + FAMILY_PREFIXES + (CUSTOM_PREFIX,):
        if tag.startswith(prefix):
            rest = tag[len(prefix):]
            return None if _SUFFIX.match(rest) else f"`{tag}` needs a name after `{prefix}` (lowercase, digits, -)"
    close = difflib.get_close_matches(tag.lower().replace("_", "-"), PII_TAGS + KEY_TAGS + DB_TAGS, n=1, cutoff=0.6)
    hint = f"did you mean `{close[0]}`? " if close else ""
    return (f"unknown semantic tag `{tag}`: {hint}Use a documented tag (e.g. email, given-name, fk-<namespace>, "
            f"txn-item/<field>) or a custom tag starting with `{CUSTOM_PREFIX}`")
