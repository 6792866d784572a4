"""Exceptions raised by registry-index.

Every message names the file, field or value at fault and how to fix it.
Validation collects all problems first and raises once, so a contributor sees
every mistake in one run.
"""

from __future__ import annotations

from dataclasses import dataclass


class RegistryError(Exception):
    """Base class of every error that registry-index reports to its user."""


@dataclass(frozen=True, order=True)
class Problem:
    """One validation problem, located at a line of a file (line 0: whole file)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}: {self.message}"
        return f"{self.path}: {self.message}"


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
