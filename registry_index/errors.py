"""Exceptions raised by registry-index.

Every message names the file, field or value at fault and how to fix it.
Validation collects all problems first and raises once, so a contributor sees
every mistake in one run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Control characters and Unicode line separators: a file name in a pull
# request may contain them, and each problem must stay on one line.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """Escape control characters and line separators in `text` as Python does in a string literal (`\\n`, `\\x1b`)."""
    return _UNPRINTABLE.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


class RegistryError(Exception):
    """Base class of every error that registry-index reports to its user."""


@dataclass(frozen=True, order=True)
class Problem:
    """One validation problem, located at a line of a file (line 0: whole file)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        path, message = printable(self.path), printable(self.message)
        if self.line:
            return f"{path}:{self.line}: {message}"
        return f"{path}: {message}"


class InvalidIndex(RegistryError):
    """The index has one or more problems; `problems` lists all of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


class InvalidArchive(RegistryError):
    """A .ki file is not a readable kindo image."""


class ImageExists(RegistryError):
    """A version that is already in the index was added again."""


class SiteError(RegistryError):
    """The build output folder cannot be written or read."""
