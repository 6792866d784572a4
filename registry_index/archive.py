"""Reading kindo images (.ki files) without extracting them.

A .ki is a zip archive with `manifest.json` at its root, written by the kindo
client. The registry reads the manifest with a size limit, checks the member
names that a client would extract, and hashes the whole file.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import stat
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from . import names
from .errors import InvalidArchive

MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_MEMBERS = 100_000
_HASH_CHUNK = 1024 * 1024

_TEXT_KEYS = ("homepage", "summary", "license", "platform", "build_time")
# Exceptions besides BadZipFile that zipfile (Python 3.11) lets through on
# damaged member data: zlib.error and lzma.LZMAError from the decompressors,
# EOFError when the compressed data ends early, OSError from bz2.
_CORRUPT_DATA_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError)


@dataclass(frozen=True)
class Manifest:
    """The fields of a .ki manifest that the registry uses."""

    author: str
    name: str
    version: str
    build_time: str
    summary: str = ""
    license: str = ""
    homepage: str = ""
    platform: str = ""


@dataclass(frozen=True)
class KindoImage:
    """A checked .ki file: its manifest, size in bytes and sha256."""

    path: Path
    manifest: Manifest
    size: int
    sha256: str


def file_sha256(path: Path) -> tuple[int, str]:
    """Return the size and sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def read_image(path: Path | str) -> KindoImage:
    """Read and check the .ki file at `path`; raise InvalidArchive on any problem."""
    path = Path(path)
    if not path.is_file():
        raise InvalidArchive(f"{path}: file not found")
    manifest = read_manifest(path)
    size, sha256 = file_sha256(path)
    return KindoImage(path, manifest, size, sha256)


def read_manifest(path: Path) -> Manifest:
    """Read and check the manifest of the .ki file at `path`, reading at most MAX_MANIFEST_BYTES of it.

    The read is bounded whatever sizes the archive records, so a zip bomb or a
    member whose recorded size lies costs at most that much memory.
    """
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise InvalidArchive(f"{path}: not a zip archive ({error}); a .ki file is a zip built by `kindo build`") from None
    except UnicodeDecodeError as error:
        raise InvalidArchive(
            f"{path}: a member name is flagged as UTF-8 but is not UTF-8 (invalid byte at offset {error.start}); rebuild the image"
        ) from None
    except (OSError, NotImplementedError) as error:
        # NotImplementedError: the archive needs a newer zip version than zipfile reads.
        raise InvalidArchive(f"{path}: cannot read the archive: {error}") from None
    with archive:
        _check_members(path, archive.infolist())
        _check_local_names(path, archive.infolist())
        if MANIFEST not in archive.NameToInfo:
            raise InvalidArchive(f"{path}: no {MANIFEST} at the root of the archive; build the image with `kindo build`")
        try:
            with archive.open(MANIFEST) as stream:
                data = stream.read(MAX_MANIFEST_BYTES + 1)
        except (zipfile.LargeZipFile, NotImplementedError, RuntimeError) as error:
            raise InvalidArchive(f"{path}: cannot read {MANIFEST}: {error}") from None
        except _CORRUPT_DATA_ERRORS as error:
            raise InvalidArchive(f"{path}: {MANIFEST} is corrupt in the archive ({error}); rebuild the image") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise InvalidArchive(f"{path}: {MANIFEST} is larger than {MAX_MANIFEST_BYTES} bytes; it is not a kindo manifest")
    return parse_manifest(path, data)


def _check_members(path: Path, members: list[zipfile.ZipInfo]) -> None:
    """Refuse member names that would write outside the folder a client extracts into."""
    if len(members) > MAX_MEMBERS:
        raise InvalidArchive(f"{path}: archive has {len(members)} members; the maximum is {MAX_MEMBERS}")
    seen: set[str] = set()
    for member in members:
        # zipfile cuts `filename` at the first NUL; other unzip tools may not.
        name = member.orig_filename
        parts = name.split("/")
        if "\\" in name:
            raise InvalidArchive(f"{path}: member {name!r} contains a backslash; rebuild the image")
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            raise InvalidArchive(f"{path}: member {name!r} has an absolute path; rebuild the image")
        if ".." in parts:
            raise InvalidArchive(f"{path}: member {name!r} points outside the archive with '..'; rebuild the image")
        if "\x00" in name:
            raise InvalidArchive(f"{path}: member {name!r} contains a NUL character; rebuild the image")
        if stat.S_ISLNK(member.external_attr >> 16):
            raise InvalidArchive(f"{path}: member {name!r} is a symbolic link; rebuild the image without links")
        if name in seen:
            raise InvalidArchive(f"{path}: member {name!r} appears twice; rebuild the image")
        seen.add(name)


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    """Build a JSON object, raising _DuplicateKey for a repeated key.

    json keeps the last of repeated keys and other readers may keep the
    first, so the registry and a client could disagree on the author.
    """
    document = {}
    for key, value in pairs:
        if key in document:
            raise _DuplicateKey(key)
        document[key] = value
    return document


_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, then the name and extra field lengths
_LOCAL_SIGNATURE = b"PK\x03\x04"
_UTF8_FLAG = 0x800


def _check_local_names(path: Path, members: list[zipfile.ZipInfo]) -> None:
    """Reject members whose local header names another path than the central directory.

    zipfile reads names from the central directory, which _check_members
    checks. Tools that stream an archive read the local headers instead, so a
    local name such as `../x` behind a harmless central name would escape.
    """
    try:
        with open(path, "rb") as stream:
            for member in members:
                stream.seek(member.header_offset)
                header = stream.read(_LOCAL_HEADER.size)
                if len(header) < _LOCAL_HEADER.size:
                    raise InvalidArchive(f"{path}: the local header of member {member.orig_filename!r} is cut short; rebuild the image")
                signature, name_length, _ = _LOCAL_HEADER.unpack(header)
                if signature != _LOCAL_SIGNATURE:
                    raise InvalidArchive(f"{path}: member {member.orig_filename!r} has no local header at offset {member.header_offset}; rebuild the image")
                raw_name = stream.read(name_length)
                encoding = "utf-8" if member.flag_bits & _UTF8_FLAG else "cp437"
                local_name = raw_name.decode(encoding, errors="replace")
                if local_name != member.orig_filename:
                    raise InvalidArchive(
                        f"{path}: member {member.orig_filename!r} is named {local_name!r} in its local header; rebuild the image"
                    )
    except OSError as error:
        raise InvalidArchive(f"{path}: cannot read the archive: {error}") from None


def parse_manifest(path: Path | str, data: bytes) -> Manifest:
    """Check the bytes of manifest.json and return its fields."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidArchive(f"{path}: {MANIFEST} is not UTF-8 (invalid byte at offset {error.start})") from None
    try:
        document = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as error:
        raise InvalidArchive(f"{path}: {MANIFEST} is not valid JSON: {error.msg} at line {error.lineno}") from None
    except _DuplicateKey as error:
        raise InvalidArchive(f"{path}: {MANIFEST} has the key {error.key!r} twice; rebuild the image") from None
    except RecursionError:
        raise InvalidArchive(f"{path}: {MANIFEST} nests too deeply; it is not a kindo manifest") from None
    except ValueError:
        # int() refuses numbers longer than this limit (Python 3.11 and later).
        limit = sys.get_int_max_str_digits()
        raise InvalidArchive(f"{path}: {MANIFEST} has a number longer than {limit} digits; it is not a kindo manifest") from None
    if not isinstance(document, dict):
        raise InvalidArchive(f"{path}: {MANIFEST} must be a JSON object, not {type(document).__name__}")

    # kindo 1.x pushes a manifest without a version as version `latest`.
    document.setdefault("version", names.LATEST)
    for key in ("author", "name"):
        if key not in document:
            raise InvalidArchive(f"{path}: {MANIFEST} is missing {key!r}; set it in the image's build script")
    for key, check in (("author", names.author_problem), ("name", names.name_problem), ("version", names.version_problem)):
        problem = check(document[key])
        if problem is not None:
            raise InvalidArchive(f"{path}: {MANIFEST}: {problem}")
    for key in _TEXT_KEYS:
        value = document.get(key, "")
        if not isinstance(value, str):
            raise InvalidArchive(f"{path}: {MANIFEST}: {key} must be a string, got {value!r}")
    for key in ("build_version", "min_version"):
        value = document.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArchive(f"{path}: {MANIFEST}: {key} must be a number such as 1.1, got {value!r}")
    return Manifest(
        author=document["author"],
        name=document["name"],
        version=document["version"],
        build_time=document.get("build_time", ""),
        summary=document.get("summary", ""),
        license=document.get("license", ""),
        homepage=document.get("homepage", ""),
        platform=document.get("platform", ""),
    )


def manifest_mismatches(manifest: Manifest, author: str, name: str, version: str, buildtime: str) -> list[str]:
    """Return how a manifest disagrees with the index entry it is published as."""
    mismatches = []
    for field, expected, actual in (
        ("author", author, manifest.author),
        ("name", name, manifest.name),
        ("version", version, manifest.version),
        ("buildtime", buildtime, manifest.build_time),
    ):
        if expected != actual:
            mismatches.append(f"{field} is {expected!r} in the index but {actual!r} in {MANIFEST}")
    return mismatches
