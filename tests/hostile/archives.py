"""Hostile .ki files: each case gives the bytes of an archive and the exact InvalidArchive message.

The message is given without the leading `<path>: `, which the test adds.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from .zipcraft import ENCRYPTED_FLAG, STORED, SYMLINK_MODE, UTF8_FLAG, Member, build_zip


def manifest(**changes: object) -> bytes:
    document = {
        "name": "demo", "version": "1.0.0", "author": "cycore", "homepage": "", "summary": "a demo image",
        "license": "MIT", "platform": "linux", "build_time": "2026-12-04 19:17:10",
        "build_version": 1.1, "min_version": 1.1, "files": ["demo"], "images": [],
    }
    document.update(changes)
    return json.dumps(document).encode()


MANIFEST = manifest()


@dataclass(frozen=True)
class ArchiveCase:
    id: str
    build: Callable[[], bytes]
    message: str


def with_member(member: Member) -> Callable[[], bytes]:
    """An archive of a valid manifest and one more member."""
    return lambda: build_zip([Member("manifest.json", MANIFEST), member])


def only_manifest(content: bytes | Callable[[], bytes] = MANIFEST, **fields: object) -> Callable[[], bytes]:
    """An archive of one manifest member with `fields` overridden (recorded sizes, data, flags)."""
    def build() -> bytes:
        data = content() if callable(content) else content
        return build_zip([Member("manifest.json", data, **fields)])
    return build


def manifest_bytes(data: bytes) -> Callable[[], bytes]:
    return lambda: build_zip([Member("manifest.json", data)])


def bomb() -> bytes:
    """A manifest of 16 MiB that deflates to about 16 KiB."""
    return b'{"author": "cycore", "name": "demo", "summary": "' + b"x" * (16 * 1024 * 1024) + b'"}'

CORRUPT = "manifest.json is corrupt in the archive"


def streamed_bomb(size: int, claimed: int) -> bytes:
    """Return an archive whose manifest inflates to `size` bytes and records `claimed`, built without holding the inflated bytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = b'{"author": "cycore", "name": "demo", "summary": "'
    chunk = b"x" * (1024 * 1024)
    parts = [compressor.compress(head)]
    crc = zlib.crc32(head)
    for _ in range((size - len(head)) // len(chunk)):
        parts.append(compressor.compress(chunk))
        crc = zlib.crc32(chunk, crc)
    parts.append(compressor.flush())
    return build_zip([Member("manifest.json", b"", data=b"".join(parts), crc=crc, size=claimed, local_size=claimed)])


def _many_members() -> bytes:
    members = [Member("manifest.json", MANIFEST)]
    members += [Member(f"files/{number}", b"", method=STORED) for number in range(100_000)]
    return build_zip(members)


CASES = [
    # Member names that would write outside the folder a client extracts into.
    ArchiveCase("dot-dot-member", with_member(Member("files/../../.bashrc", b"x")),
                "member 'files/../../.bashrc' points outside the archive with '..'; rebuild the image"),
    ArchiveCase("absolute-member", with_member(Member("/etc/cron.d/x", b"x")),
                "member '/etc/cron.d/x' has an absolute path; rebuild the image"),
    ArchiveCase("drive-relative-member", with_member(Member("c:evil.exe", b"x")),
                "member 'c:evil.exe' has an absolute path; rebuild the image"),
    ArchiveCase("backslash-member", with_member(Member("..\\..\\evil", b"x")),
                "member '..\\\\..\\\\evil' contains a backslash; rebuild the image"),
    ArchiveCase("symlink-member", with_member(Member("files/passwd", b"/etc/passwd", mode=SYMLINK_MODE)),
                "member 'files/passwd' is a symbolic link; rebuild the image without links"),
    ArchiveCase("nul-member", with_member(Member(b"files/a\x00b", b"x")),
                "member 'files/a\\x00b' contains a NUL character; rebuild the image"),
    ArchiveCase("nul-hides-dot-dot", with_member(Member(b"files\x00/../../x", b"x")),
                "member 'files\\x00/../../x' points outside the archive with '..'; rebuild the image"),
    ArchiveCase("duplicate-member", lambda: build_zip([Member("manifest.json", MANIFEST), Member("files/a", b"1"), Member("files/a", b"2")]),
                "member 'files/a' appears twice; rebuild the image"),
    ArchiveCase("local-name-differs", with_member(Member("files/ok", b"x", local_name="../../evil")),
                "member 'files/ok' is named '../../evil' in its local header; rebuild the image"),
    ArchiveCase("name-not-utf8", with_member(Member(b"files/\xff", b"x", flags=UTF8_FLAG)),
                "a member name is flagged as UTF-8 but is not UTF-8 (invalid byte at offset 6); rebuild the image"),
    ArchiveCase("too-many-members", _many_members,
                "archive has 100001 members; the maximum is 100000"),
    # Sizes that inflate past the limit, or that lie.
    ArchiveCase("zip-bomb-manifest", only_manifest(bomb),
                "manifest.json is larger than 1048576 bytes; it is not a kindo manifest"),
    ArchiveCase("bomb-claims-2-gib", only_manifest(bomb, size=2**31, local_size=2**31),
                "manifest.json is larger than 1048576 bytes; it is not a kindo manifest"),
    ArchiveCase("bomb-claims-100-bytes", only_manifest(bomb, size=100, local_size=100),
                f"{CORRUPT} (Bad CRC-32 for file 'manifest.json'); rebuild the image"),
    ArchiveCase("size-lies-smaller", only_manifest(size=10),
                f"{CORRUPT} (Bad CRC-32 for file 'manifest.json'); rebuild the image"),
    ArchiveCase("crc-lies", only_manifest(crc=0x12345678),
                f"{CORRUPT} (Bad CRC-32 for file 'manifest.json'); rebuild the image"),
    # Damaged data behind valid headers.
    ArchiveCase("corrupt-deflate", only_manifest(data=b"\xff" * 64),
                f"{CORRUPT} (Error -3 while decompressing data: invalid block type); rebuild the image"),
    ArchiveCase("corrupt-lzma", only_manifest(method=14, data=b"\x00" * 64),
                f"{CORRUPT} (Invalid or unsupported options); rebuild the image"),
    ArchiveCase("corrupt-bzip2", only_manifest(method=12, data=b"BZh9" + b"\x00" * 60),
                f"{CORRUPT} (Invalid data stream); rebuild the image"),
    ArchiveCase("unknown-method", only_manifest(method=99),
                "cannot read manifest.json: That compression method is not supported"),
    ArchiveCase("zip-version-8.4", only_manifest(version_needed=84),
                "cannot read the archive: zip file version 8.4"),
    ArchiveCase("encrypted-manifest", only_manifest(flags=ENCRYPTED_FLAG),
                "cannot read manifest.json: File 'manifest.json' is encrypted, password required for extraction"),
    # zipfile moves every member offset by the distance between the real and
    # the recorded directory start, so the first member is looked for at
    # (30 + 13 + manifest size) - 7.
    ArchiveCase("directory-offset-lies", lambda: build_zip([Member("manifest.json", MANIFEST, method=STORED)], directory_offset=7),
                f"member 'manifest.json' has no local header at offset {30 + 13 + len(MANIFEST) - 7}; rebuild the image"),
    ArchiveCase("empty-file", lambda: b"",
                "not a zip archive (File is not a zip file); a .ki file is a zip built by `kindo build`"),
    # Manifests that are not what they claim.
    ArchiveCase("json-nesting", manifest_bytes(b"[" * 100_000 + b"]" * 100_000),
                "manifest.json nests too deeply; it is not a kindo manifest"),
    ArchiveCase("json-huge-number", manifest_bytes(b'{"author": "cycore", "name": "demo", "build_version": 1' + b"0" * 5000 + b"}"),
                "manifest.json has a number longer than 4300 digits; it is not a kindo manifest"),
    ArchiveCase("json-duplicate-author", manifest_bytes(b'{"author": "cycore", "name": "demo", "author": "mallory"}'),
                "manifest.json has the key 'author' twice; rebuild the image"),
    ArchiveCase("cyrillic-author", manifest_bytes(manifest(author="сycore")),
                "manifest.json: author 'сycore' has characters outside letters and digits "
                "(U+0441 CYRILLIC SMALL LETTER ES at position 1); rename it"),
    ArchiveCase("fullwidth-name", manifest_bytes(manifest(name="ｒｅｄｉｓ")),
                "manifest.json: name 'ｒｅｄｉｓ' has characters outside letters, digits, '_' and '-' "
                "(U+FF52 FULLWIDTH LATIN SMALL LETTER R at position 1); rename it"),
    ArchiveCase("windows-aux-name", manifest_bytes(manifest(name="aux")),
                "manifest.json: name 'aux' is a reserved device name on Windows; choose another name"),
    ArchiveCase("windows-lpt9-version", manifest_bytes(manifest(version="LPT9")),
                "manifest.json: version 'LPT9' is a reserved device name on Windows; choose another version"),
    ArchiveCase("dash-version", manifest_bytes(manifest(version="-rf")),
                "manifest.json: version '-rf' has characters outside letters, digits, '.' and '-', "
                "starting with a letter or digit; rename it"),
]
