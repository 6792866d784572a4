"""Zip archives written byte by byte, so a test can make every recorded field lie.

`zipfile` writes only consistent archives. These helpers write the local
headers, the central directory and the end record from `Member` values, where
each size, CRC, flag and attribute can be set to anything.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

LOCAL_SIGNATURE = 0x04034B50
CENTRAL_SIGNATURE = 0x02014B50
END_SIGNATURE = 0x06054B50
ZIP64_END_SIGNATURE = 0x06064B50
ZIP64_LOCATOR_SIGNATURE = 0x07064B50
STORED = 0
DEFLATED = 8
UTF8_FLAG = 0x800
ENCRYPTED_FLAG = 0x1
UNIX = 3  # "version made by" high byte: the external attributes hold a Unix mode
SYMLINK_MODE = 0o120777
FILE_MODE = 0o100644


def deflate(data: bytes) -> bytes:
    """Return raw deflate data (no zlib header), as zip members store it."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


@dataclass
class Member:
    """One archive member. Fields left as None are computed from `content`."""

    name: bytes | str
    content: bytes = b""
    method: int = DEFLATED
    flags: int = 0
    mode: int = FILE_MODE
    version_needed: int = 20  # the zip version needed to extract, times 10
    data: bytes | None = None  # the stored bytes; default: `content` compressed by `method`
    crc: int | None = None
    compressed_size: int | None = None
    size: int | None = None  # uncompressed size in the central directory
    local_size: int | None = None  # uncompressed size in the local header
    local_name: bytes | str | None = None
    extra: bytes = b""
    extras: dict = field(default_factory=dict)

    def encoded_name(self, local: bool = False) -> bytes:
        name = self.local_name if local and self.local_name is not None else self.name
        return name.encode("utf-8") if isinstance(name, str) else name

    def stored_data(self) -> bytes:
        if self.data is not None:
            return self.data
        return deflate(self.content) if self.method == DEFLATED else self.content


def build_zip(members: list[Member], entry_count: int | None = None, directory_offset: int | None = None) -> bytes:
    """Return the bytes of a zip archive of `members`, with any recorded field overridden."""
    body = bytearray()
    central = bytearray()
    for member in members:
        data = member.stored_data()
        crc = member.crc if member.crc is not None else zlib.crc32(member.content)
        compressed = member.compressed_size if member.compressed_size is not None else len(data)
        size = member.size if member.size is not None else len(member.content)
        local_size = member.local_size if member.local_size is not None else size
        offset = len(body)
        local_name = member.encoded_name(local=True)
        body += struct.pack(
            "<IHHHHHIIIHH", LOCAL_SIGNATURE, member.version_needed, member.flags, member.method, 0, 0x21,
            crc, compressed, local_size, len(local_name), len(member.extra),
        )
        body += local_name + member.extra + data
        name = member.encoded_name()
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII", CENTRAL_SIGNATURE, (UNIX << 8) | 20, member.version_needed, member.flags, member.method, 0, 0x21,
            crc, compressed, size, len(name), len(member.extra), 0, 0, 0, member.mode << 16, offset,
        )
        central += name + member.extra
    count = entry_count if entry_count is not None else len(members)
    start = directory_offset if directory_offset is not None else len(body)
    zip64 = b""
    if count > 0xFFFF:
        # The classic end record counts to 65,535; more members need the zip64 end record.
        zip64_offset = len(body) + len(central)
        zip64 = struct.pack("<IQHHIIQQQQ", ZIP64_END_SIGNATURE, 44, (UNIX << 8) | 45, 45, 0, 0, count, count, len(central), start)
        zip64 += struct.pack("<IIQI", ZIP64_LOCATOR_SIGNATURE, 0, zip64_offset, 1)
        count = 0xFFFF
    end = struct.pack("<IHHHHIIH", END_SIGNATURE, 0, 0, count, count, len(central), start, 0)
    return bytes(body + central + zip64 + end)
