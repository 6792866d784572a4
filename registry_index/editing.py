"""Changing the index: adding a version from a .ki file.

The image YAML is written in one canonical form: keys in schema order and every
string double-quoted, so YAML never reinterprets a version such as 1.10.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from . import names
from . import api, extraction
from .archive import KindoImage, file_sha256, read_image
from .errors import ImageExists, InvalidArchive, RegistryError
from .fileio import atomic_write
from .index import Index, display_path, image_path, load_index
from .model import VERSION_FIELDS, Image, Version, build_time_problem, url_problem

log = logging.getLogger(__name__)

HEADER = "# Written by registry-index. Published versions are immutable: add new versions, never edit old ones.\n"


def _quote(value: str) -> str:
    # A JSON string is also a valid YAML double-quoted scalar.
    return json.dumps(value, ensure_ascii=False)


def render_image_yaml(image: Image) -> str:
    """Return the canonical YAML text of an image file."""
    lines = [HEADER.rstrip("\n"), f"author: {_quote(image.author)}", f"name: {_quote(image.name)}", "versions:"]
    for version in image.versions:
        first = True
        for field in VERSION_FIELDS:
            value = getattr(version, field.name)
            if not field.required and value in ("", None):
                continue
            prefix = "  - " if first else "    "
            first = False
            if field.kind == "map":
                lines.append(f"{prefix}{field.name}:")
                for key, item in value.to_dict().items():
                    lines.append(f"      {key}: {item if isinstance(item, int) else _quote(item)}")
                continue
            text = str(value) if field.kind == "int" else _quote(value)
            lines.append(f"{prefix}{field.name}: {text}")
    return "\n".join(lines) + "\n"


def asset_file_name(author: str, name: str, version: str) -> str:
    """Return the release asset name of a version: `author-name-version.ki`, lowercase."""
    return f"{names.path_part(author)}-{names.path_part(name)}-{names.path_part(version)}.ki"


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_version(index: Index, kindo_image: KindoImage, url: str = "", pusher: str | None = None, pushed: str | None = None) -> tuple[Image, Version]:
    """Check that `kindo_image` can be added to `index` and return the image with the new version.

    Nothing is written. Raises ImageExists for a version already in the index,
    and RegistryError for every other conflict.
    """
    manifest = kindo_image.manifest
    where = kindo_image.path
    account = index.account(manifest.author)
    if account is None:
        raise RegistryError(f"{where}: author {manifest.author!r} has no account in {index.root}/accounts; register it first")
    if account.username != manifest.author:
        raise RegistryError(f"{where}: author {manifest.author!r} differs from the account name {account.username!r}; build the image with author {account.username!r}")
    pusher = pusher or account.username
    pusher_account = index.account(pusher)
    if pusher_account is None:
        raise RegistryError(f"pusher {pusher!r} has no account in {index.root}/accounts; register it first")
    if url_problem(manifest.homepage):
        raise InvalidArchive(f"{where}: manifest.json: homepage {manifest.homepage!r} is not an http:// or https:// URL; fix it in the image's build script")
    if build_time_problem(manifest.build_time):
        raise InvalidArchive(f"{where}: manifest.json: build_time {manifest.build_time!r} is invalid; expected a time such as 2026-12-04 19:17:10")

    image = index.image(manifest.author, manifest.name)
    if image is None:
        image = Image(manifest.author, manifest.name, [], path=display_path(index.root, image_path(index.root, manifest.author, manifest.name)))
    elif image.name != manifest.name:
        raise RegistryError(f"{where}: name {manifest.name!r} differs from the existing image {image.author}/{image.name} only in case or '_' versus '-'; build the image with name {image.name!r}")
    existing = image.find(manifest.version)
    if existing is not None:
        unique = names.unique_name(image.author, image.name, existing.version)
        raise ImageExists(f"{where}: {unique} already exists in {image.path}:{existing.line}; published versions are immutable, so build a new version")

    version = Version(
        version=manifest.version,
        file=asset_file_name(manifest.author, manifest.name, manifest.version),
        size=kindo_image.size,
        sha256=kindo_image.sha256,
        buildtime=manifest.build_time,
        pusher=pusher_account.username,
        url=url,
        summary=manifest.summary,
        license=manifest.license,
        homepage=manifest.homepage,
        platform=manifest.platform,
        pushed=pushed or now_utc(),
    )
    updated = Image(image.author, image.name, [*image.versions, version], path=image.path)
    return updated, version


def protect(image: Image, version: Version, kindo_image: KindoImage, code: str, folder: Path) -> tuple[Version, Path]:
    """Encrypt a new version's file with a key derived from `code` into `folder`.

    Return the version turned private (its file, size and sha256 now those of
    the encrypted file, with the protection record and the sealed plaintext
    details) and the encrypted file's path.
    """
    encrypted = folder / f"{version.file}.enc"
    if encrypted.exists():
        raise RegistryError(f"{encrypted} already exists; move it away or choose another --encrypted-out folder")
    protection, keys = extraction.new_protection(code)
    # Encrypt under a temporary name, so an interrupted run never leaves a
    # truncated file that looks ready to upload.
    handle, temporary = tempfile.mkstemp(prefix=f".{encrypted.name}.", suffix=".part", dir=folder)
    try:
        with open(kindo_image.path, "rb") as source, os.fdopen(handle, "wb") as target:
            extraction.encrypt_stream(source, target, keys.encryption_key)
        os.replace(temporary, encrypted)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    size, sha256 = file_sha256(encrypted)
    # The manifest's descriptive fields are sealed too: only the build time,
    # which check-pr compares, stays readable in the entry.
    secret = {
        "sha256": kindo_image.sha256, "size": kindo_image.size, "file": version.file,
        "summary": version.summary, "license": version.license, "homepage": version.homepage, "platform": version.platform,
    }
    sealed = extraction.seal(keys.encryption_key, json.dumps(secret, sort_keys=True).encode(), api.sealed_context(image.author, image.name, version.version))
    private = replace(
        version, file=encrypted.name, size=size, sha256=sha256, protection=protection, sealed=sealed,
        summary="", license="", homepage="", platform="",
    )
    return private, encrypted


def check_encrypted_folder(index_root: Path | str, folder: Path | str) -> None:
    """Raise RegistryError when `folder` is the index folder or inside it.

    Folders are compared by device and inode, so a symbolic link, a bind
    mount or another spelling on a case-insensitive disk is no way around it.
    """
    index_status = os.stat(index_root)
    index_identity = (index_status.st_dev, index_status.st_ino)
    resolved = Path(os.path.realpath(folder))
    for depth, candidate in enumerate([resolved, *resolved.parents]):
        status = os.stat(candidate)
        if (status.st_dev, status.st_ino) != index_identity:
            continue
        place = f"is the index folder {index_root}" if depth == 0 else f"is inside the index folder {index_root}"
        raise RegistryError(
            f"--encrypted-out {folder} {place}; the encrypted file would be written into the index, "
            "so choose a folder outside the index"
        )


def add_image(index_root: Path | str, ki_path: Path | str, url: str = "", pusher: str | None = None,
              code: str | None = None, encrypted_folder: Path | None = None) -> tuple[Image, Version]:
    """Add the version in a .ki file to the index and write its image YAML.

    With `code`, the version is private: its encrypted file is written into
    `encrypted_folder`, ready to upload, and the entry describes that file.
    """
    if url and url_problem(url):
        raise RegistryError(f"--url: {url_problem(url)}")
    if code is None and encrypted_folder is not None:
        raise RegistryError("--encrypted-out is only for private versions; add --code CODE, or drop --encrypted-out to add a public version")
    if code is not None:
        extraction.check_code(code)
        if encrypted_folder is None:
            raise RegistryError("--code needs --encrypted-out DIR: the folder where the encrypted file is written for upload")
        if not Path(encrypted_folder).is_dir():
            raise RegistryError(f"--encrypted-out {encrypted_folder}: folder not found; create it first")
        check_encrypted_folder(index_root, encrypted_folder)
    kindo_image = read_image(ki_path)
    with index_lock(Path(index_root)):
        index = load_index(index_root)
        image, version = new_version(index, kindo_image, url=url, pusher=pusher)
        if code is not None:
            if names.identity(version.version) == names.LATEST:
                raise RegistryError(f"{kindo_image.path}: a version named 'latest' cannot be private; build the image with a version number")
            version, _ = protect(image, version, kindo_image, code, Path(encrypted_folder))
            image.versions[-1] = version
        path = image_path(index.root, image.author, image.name)
        atomic_write(path, render_image_yaml(image).encode("utf-8"))
    log.info("wrote %s", path)
    return image, version


LOCK_FILE = ".registry-index.lock"


@contextmanager
def index_lock(index_root: Path):
    """Hold an exclusive lock on the index, so concurrent `add` runs take turns instead of losing versions."""
    if not index_root.is_dir():
        yield
        return
    with open(index_root / LOCK_FILE, "a") as stream:
        fcntl.flock(stream, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(stream, fcntl.LOCK_UN)
