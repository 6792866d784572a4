"""Checking asset files against the index entries that describe them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .archive import file_sha256, manifest_mismatches, read_manifest
from .errors import InvalidArchive, Problem
from .extraction import MAGIC
from .model import Image, Version


def verify_asset(image: Image, version: Version, path: Path, encrypted: bool = False) -> list[str]:
    """Return how the .ki file at `path` disagrees with its index entry (empty when it matches).

    An encrypted file (a private version) can only be checked for size, sha256
    and its format's magic bytes, since its manifest needs the code.
    """
    size, sha256 = file_sha256(path)
    mismatches = []
    if size != version.size:
        mismatches.append(f"size is {version.size} in the index but the file has {size} bytes")
    if sha256 != version.sha256:
        mismatches.append(f"sha256 is {version.sha256} in the index but the file has {sha256}")
    if encrypted:
        with open(path, "rb") as stream:
            if stream.read(len(MAGIC)) != MAGIC:
                mismatches.append("the file of a private version is not an encrypted kindo image; push it with --code")
        return mismatches
    try:
        manifest = read_manifest(path)
    except InvalidArchive as error:
        return [*mismatches, str(error)]
    return mismatches + manifest_mismatches(manifest, image.author, image.name, version.version, version.buildtime)


def verify_assets(images: Iterable[Image], folder: Path) -> tuple[list[Problem], int]:
    """Check every version of `images` whose asset file is in `folder`; return the problems and how many files were checked."""
    problems = []
    checked = 0
    for image in images:
        for version in image.versions:
            path = folder / version.file
            if not path.is_file():
                continue
            checked += 1
            try:
                mismatches = verify_asset(image, version, path, encrypted=version.is_private)
            except OSError as error:
                # The file is unreadable, or was removed after is_file() found it.
                mismatches = [f"cannot read file: {error.strerror}; make it readable and run again"]
            for mismatch in mismatches:
                problems.append(Problem(image.path, version.line, f"{version.file}: {mismatch}"))
    return problems, checked
