"""A client of the static API: pull an image using only the site's files.

It resolves `latest` and author-less names the way docs/api.md describes,
downloads with a progress bar, decrypts private images locally, and checks the
sha256 of what it saves.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from . import extraction, names
from .api import CODE_NEEDED, anonymous_path, private_path, pull_path, sealed_context
from .errors import RegistryError
from .server import parse_unique_name

log = logging.getLogger(__name__)

TIMEOUT = 60
_CHUNK = 256 * 1024


class PullError(RegistryError):
    """A pull failed: not found, wrong code, or the file does not match."""


@dataclass(frozen=True)
class Pulled:
    unique_name: str
    path: Path
    size: int
    sha256: str


def site_address(base: str) -> str:
    """Return the site address to put paths under; like kindo, a host without a scheme gets http://."""
    if "://" not in base:
        base = f"http://{base}"
    if "?" in base or "#" in base:
        raise PullError(f"--from {base!r} has a query or fragment; give the site's address only, such as https://owner.github.io/registry/")
    return base.rstrip("/")


def _get_json(base: str, relative: str) -> dict | None:
    url = f"{site_address(base)}/{relative}"
    try:
        response = requests.get(url, timeout=TIMEOUT)
    except requests.ConnectionError:
        raise PullError(f"cannot connect to {site_address(base)}; check --from and that the site is up") from None
    except requests.RequestException as error:
        raise PullError(f"request to {url} failed: {type(error).__name__}") from None
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise PullError(f"{url} returned HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise PullError(f"{url} did not return JSON; check --from") from None


def resolve(base: str, reference: str, code: str | None) -> tuple[dict, bytes | None, dict | None]:
    """Return (pull record, decryption key or None, sealed details or None) for `author/name[:version]`."""
    target = parse_unique_name(reference)
    if reference.count("/") > 1 or reference.count(":") > 1 or not target.name:
        raise PullError(f"image reference {reference!r} is invalid; write AUTHOR/NAME[:VERSION], such as cycore/redis:3.0.4")

    for check, value in ((names.name_problem, target.name), (names.author_problem, target.author), (names.version_problem, target.version)):
        if value is not None and check(value) is not None:
            raise PullError(check(value))
    author = target.author
    if author is None or author.lower() == names.ANONYMOUS:
        owners = _get_json(base, anonymous_path(target.name))
        if owners is None:
            raise PullError(f"image {target.name!r} not found at {base}")
        if len(owners["authors"]) != 1:
            raise PullError(f"image name {target.name!r} is published by several authors ({', '.join(owners['authors'])}); give the author")
        author = owners["authors"][0]

    version = target.version or names.LATEST
    unique = names.unique_name(author, target.name, version)
    record = _get_json(base, pull_path(author, target.name, version))
    if record is None:
        raise PullError(f"image {unique} not found at {base}")
    if record.get("code") != CODE_NEEDED:
        return record, None, None

    if not code:
        raise PullError(f"{unique} is private: extraction code needed; pass --code")
    protection = record["protection"]
    extraction.check_parameters(protection["n"], protection["r"], protection["p"])
    log.info("deriving the key from the extraction code (about half a second)")
    keys = extraction.derive_from_parameters(code, protection["salt"], protection["n"], protection["r"], protection["p"])
    private = _get_json(base, private_path(keys.lookup_id))
    if private is None:
        raise PullError(f"extraction code for {unique} is wrong")
    context = sealed_context(private["author"], private["name"], private["version"])
    secret = json.loads(extraction.open_sealed(keys.encryption_key, private["sealed"], context))
    return private, keys.encryption_key, secret


def _download(url: str, target, expected_size: int) -> None:
    """Stream `url` into the open file `target`, with a progress bar on a terminal and log lines elsewhere."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    try:
        response = requests.get(url, stream=True, timeout=TIMEOUT)
    except requests.RequestException as error:
        raise PullError(f"download of {url} failed: {error}") from None
    with response:
        if response.status_code != 200:
            raise PullError(f"download of {url} failed: HTTP {response.status_code}")
        interactive = sys.stderr.isatty()
        progress = Progress("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), disable=not interactive)
        with progress:
            task = progress.add_task("downloading", total=expected_size)
            received = 0
            last_log = time.monotonic()
            for chunk in response.iter_content(_CHUNK):
                target.write(chunk)
                received += len(chunk)
                if received > expected_size:
                    raise PullError(f"download of {url} is larger than the {expected_size} bytes the index lists; the file on the server is not the published one")
                progress.update(task, completed=received)
                if not interactive and time.monotonic() - last_log > 5:
                    log.info("downloaded %d of %d bytes", received, expected_size)
                    last_log = time.monotonic()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def pull(base: str, reference: str, code: str | None = None, output: Path | None = None) -> Pulled:
    """Pull `author/name[:version]` from the static site at `base` into `output`.

    The file is written beside `output` under a temporary name and renamed only
    after its sha256 matches, so a failed pull leaves nothing behind.
    """
    record, key, secret = resolve(base, reference, code)
    file_name = secret["file"] if secret else record["file"]
    output = Path(output) if output is not None else Path(file_name)
    if output.exists() and (output.is_symlink() or not output.is_file()):
        raise PullError(f"-o {output} exists and is not a regular file; give a new file name")
    if not (output.parent if str(output.parent) else Path(".")).is_dir():
        raise PullError(f"-o {output}: folder {output.parent} not found; create it first")
    expected_sha256 = secret["sha256"] if secret else record["sha256"]
    expected_size = secret["size"] if secret else int(record["size"])
    folder = output.parent if str(output.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            if key is None:
                _download(record["url"], stream, expected_size)
            else:
                encrypted = Path(temporary + ".enc")
                try:
                    with open(encrypted, "wb") as encrypted_stream:
                        _download(record["url"], encrypted_stream, int(record["size"]))
                    with open(encrypted, "rb") as source:
                        extraction.decrypt_stream(source, stream, key)
                finally:
                    encrypted.unlink(missing_ok=True)
        sha256 = _sha256(Path(temporary))
        if sha256 != expected_sha256:
            raise PullError(f"downloaded file has sha256 {sha256}, but the registry lists {expected_sha256}; nothing was saved")
        os.chmod(temporary, 0o644)
        os.replace(temporary, output)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Pulled(record["unique_name"], output, expected_size, sha256)
