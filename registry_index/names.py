"""Name rules, canonical forms and version ordering.

Kindo 1.x enforces the character sets when it builds an image: author
`[a-zA-Z0-9]+`, name `[a-zA-Z0-9_-]+`, version `[a-zA-Z0-9.-]+`. The registry
adds length bounds and refuses the few spellings that are unsafe as file names
in the built site (`.`/`..` and Windows device names such as `CON`).

Identity is case-insensitive and treats `_` and `-` alike, so `My_App` and
`my-app` are the same image; output paths use the lowercase spelling.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

MAX_AUTHOR_LENGTH = 32
MAX_NAME_LENGTH = 64
MAX_VERSION_LENGTH = 64

# The author that kindo 1.x sends when the user gave none. It is never a real
# account, so the built site uses it as the path of author-less pulls.
ANONYMOUS = "anonymous"
# The version that kindo 1.x sends when the user gave none, and the name of the
# stable path for an image's newest version.
LATEST = "latest"

_AUTHOR = re.compile(r"[a-zA-Z0-9]+")
_NAME = re.compile(r"[a-zA-Z0-9_-]+")
# A version must start with a letter or digit: kindo allows `..` and `-x`,
# which would be path tricks or option-like file names in the built site.
_VERSION = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9.-]*")
_WINDOWS_DEVICES = frozenset(
    ["con", "prn", "aux", "nul"]
    + [f"com{digit}" for digit in range(1, 10)]
    + [f"lpt{digit}" for digit in range(1, 10)]
)


def _check(kind: str, value: object, pattern: re.Pattern[str], allowed: str, maximum: int) -> str | None:
    if not isinstance(value, str):
        return f"{kind} must be a string, got {value!r}"
    if not value:
        return f"{kind} is empty; write one made of {allowed}"
    if len(value) > maximum:
        return f"{kind} {value!r} is {len(value)} characters long; the maximum is {maximum}"
    if not pattern.fullmatch(value):
        return f"{kind} {value!r} has characters outside {allowed}{_describe_non_ascii(value)}; rename it"
    if value.lower().split(".")[0] in _WINDOWS_DEVICES:
        return f"{kind} {value!r} is a reserved device name on Windows; choose another {kind}"
    return None


def _describe_non_ascii(value: str) -> str:
    """Return a note naming the first non-ASCII character of `value` and its position, or "".

    Look-alikes such as Cyrillic `і` print like ASCII letters, so the message
    names the code point that the reader cannot see.
    """
    for position, character in enumerate(value, start=1):
        if not character.isascii():
            name = unicodedata.name(character, "unnamed character")
            return f" (U+{ord(character):04X} {name} at position {position})"
    return ""


def author_problem(value: object) -> str | None:
    """Return why `value` is not a valid author, or None if it is valid."""
    problem = _check("author", value, _AUTHOR, "letters and digits", MAX_AUTHOR_LENGTH)
    if problem is None and str(value).lower() == ANONYMOUS:
        return f"author {value!r} is reserved for pulls without an author; choose another author"
    return problem


def name_problem(value: object) -> str | None:
    """Return why `value` is not a valid image name, or None if it is valid."""
    return _check("name", value, _NAME, "letters, digits, '_' and '-'", MAX_NAME_LENGTH)


def version_problem(value: object) -> str | None:
    """Return why `value` is not a valid version, or None if it is valid."""
    problem = _check(
        "version", value, _VERSION,
        "letters, digits, '.' and '-', starting with a letter or digit", MAX_VERSION_LENGTH,
    )
    return problem


def identity(value: str) -> str:
    """Return the identity key: two names with the same key are the same name."""
    return value.lower().replace("_", "-")


def path_part(value: str) -> str:
    """Return the spelling of an author, name or version in output paths."""
    return value.lower()


def unique_name(author: str, name: str, version: str) -> str:
    """Return kindo's unique name `author/name:version`."""
    return f"{author}/{name}:{version}"


_VERSION_PART = re.compile(r"\d+|\D+")


@lru_cache(maxsize=1 << 16)
def version_key(version: str) -> tuple:
    """Return a sort key that orders versions from oldest to newest.

    The version splits into runs of digits and of other characters. Digit runs
    compare as numbers (so 3.0.10 is above 3.0.9), other runs compare as
    lowercase text, and a digit run sorts below a text run at the same place.
    When everything compares equal, a longer version is newer (1.0.1 above 1.0),
    and the exact spelling breaks the last ties so the order is total.
    """
    parts = []
    for run in _VERSION_PART.findall(version):
        if run.isdigit():
            parts.append((0, int(run), ""))
        else:
            parts.append((1, 0, run.lower()))
    return (tuple(parts), version)


def latest_version(versions: list[str]) -> str | None:
    """Return the version that `latest` names: an explicit `latest`, else the highest."""
    if not versions:
        return None
    for version in versions:
        if version.lower() == LATEST:
            return version
    return max(versions, key=version_key)
