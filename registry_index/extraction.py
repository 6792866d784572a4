"""Extraction codes: keys derived from a code, and streaming encryption of .ki files.

A pusher may protect an image version with an extraction code. The registry is
static hosting, which cannot check a secret, so the protection is cryptographic:

* scrypt with a random per-version salt turns the code into 32 bytes, and
  HKDF-Expand (SHA-256) derives two independent values from them under distinct
  info labels: the encryption key and the lookup id. The public index contains
  only a `Protection` record (scrypt parameters, salt, lookup id), so testing
  one guess at the code costs a full scrypt derivation.
* The .ki file is stored encrypted with AES-256-GCM in fixed-size chunks, in a
  variant of the STREAM construction ("Online Authenticated-Encryption and its
  Nonce-Reuse Misuse-Resistance", Hoang, Reyhanitabar, Rogaway and Vizár 2015,
  IACR ePrint 2015/189) that puts the last-chunk flag in the associated data
  instead of the nonce. A file of any size is encrypted and decrypted in
  constant memory. Truncation, reordering, dropped chunks and appended data all
  fail authentication.

Encrypted file format, version 1 (integers are big-endian):

    offset  size  field
    0       8     magic b"KINDOENC"
    8       1     format version, 1
    9       4     chunk size C: plaintext bytes per chunk, 1 to MAX_CHUNK_SIZE
    13      16    file salt, random
    29      8     nonce prefix, random
    37      32    key commitment
    69            chunks, each ciphertext || 16-byte GCM tag

HKDF-SHA256 of the encryption key, salted with the file salt, gives the AES key
of this file and the key commitment under two info labels, so every file has
its own AES key even when one encryption key is reused. The key commitment lets
a reader reject a wrong key before the first chunk, and makes the format
key-committing, which AES-GCM alone is not.

Chunk i (from 0) is sealed with nonce = nonce prefix || uint32(i) and
associated data = the 69 header bytes || final flag (1 byte: 1 for the last
chunk, 0 otherwise). Every chunk but the last contains exactly C plaintext
bytes and the last contains 0 to C, so an empty file is one chunk of only a tag.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import struct
import time
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from os import urandom
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .errors import RegistryError

log = logging.getLogger(__name__)

CODE_MIN_LENGTH = 6
CODE_MAX_LENGTH = 64

PROTECTION_VERSION = 1
KDF_SCRYPT = "scrypt"
# n=2**17, r=8 needs 128 MiB and took 0.49 s per derivation on one core of a
# 2-core AMD EPYC virtual machine, measured with benchmarks/kdf_rate.py.
DEFAULT_N = 2**17
DEFAULT_R = 8
DEFAULT_P = 1
MAX_P = 16
# scrypt needs about 128 * n * r bytes. The maximum keeps a record from
# exhausting a client's memory. The minimum applies when reading records, so
# that an edited index cannot make a client derive with cheap parameters. Such
# a client would request a path named by a lookup id that is cheap to test.
MAX_KDF_MEMORY = 256 * 1024 * 1024
MIN_KDF_MEMORY = 64 * 1024 * 1024
SALT_SIZE = 16
KEY_SIZE = 32
LOOKUP_ID_SIZE = 16

MAGIC = b"KINDOENC"
STREAM_VERSION = 1
DEFAULT_CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024
TAG_SIZE = 16
FILE_SALT_SIZE = 16
NONCE_PREFIX_SIZE = 8
_HEADER = struct.Struct(f">{len(MAGIC)}sBI{FILE_SALT_SIZE}s{NONCE_PREFIX_SIZE}s{KEY_SIZE}s")
HEADER_SIZE = _HEADER.size
# The chunk index is a 32-bit field of the nonce.
MAX_CHUNKS = 2**32

_INFO_ENCRYPTION_KEY = b"registry-index extraction v1 encryption key"
_INFO_LOOKUP_ID = b"registry-index extraction v1 lookup id"
_INFO_FILE_KEY = b"registry-index stream v1 file key"
_INFO_KEY_COMMITMENT = b"registry-index stream v1 key commitment"

_FIELDS = ("version", "kdf", "n", "r", "p", "salt", "lookup_id")
_INT_FIELDS = ("version", "n", "r", "p")
_STR_FIELDS = ("kdf", "salt", "lookup_id")
_HEX_DIGITS = frozenset("0123456789abcdef")
_MIB = 1024 * 1024


class ExtractionError(RegistryError):
    """Base class of the errors about extraction codes and encrypted images."""


class InvalidCode(ExtractionError):
    """An extraction code that breaks the code rules. The message never contains the code."""


class InvalidProtection(ExtractionError):
    """A protection record with invalid fields. `problems` lists every one."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid protection record: " + "; ".join(problems))


class InvalidEncryptedFile(ExtractionError):
    """A file that is not in the encrypted image format, or whose header is cut short."""


class WrongCodeOrTampered(ExtractionError):
    """Failed authentication: the code or key is wrong, or the data was modified.

    A wrong key and modified data fail the same check, so the message cannot always
    name the cause.
    """


@dataclass(frozen=True)
class DerivedKeys:
    """The secrets derived from an extraction code for one image version."""

    encryption_key: bytes = field(repr=False)
    lookup_id: str


@dataclass(frozen=True)
class Protection:
    """Public record of a protected image version: how to derive its keys from the code.

    Safe to publish: it contains no key and no fast hash of the code. The lookup id
    comes from the same scrypt output as the encryption key, so testing a guess
    against it costs as much as testing it by decrypting the file.
    """

    version: int
    kdf: str
    n: int
    r: int
    p: int
    salt: str
    lookup_id: str

    def to_dict(self) -> dict[str, str | int]:
        """Return the record as strings and integers, in field order, for the index YAML."""
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def from_dict(cls, data: object, *, min_kdf_memory: int = MIN_KDF_MEMORY) -> Protection:
        """Build a record from index data, checking every field.

        Raises InvalidProtection listing all invalid fields. Parameters whose scrypt
        memory is under `min_kdf_memory` bytes are rejected. Lower it only in tests.
        """
        problems = _protection_problems(data, min_kdf_memory)
        if problems:
            raise InvalidProtection(problems)
        assert isinstance(data, Mapping)
        return cls(**{name: data[name] for name in _FIELDS})


def check_code(code: str) -> None:
    """Raise InvalidCode unless `code` follows the code rules.

    A code is 6 to 64 characters after Unicode NFC normalization, each printable
    and none whitespace. Messages give positions but never the code's characters.
    """
    if not isinstance(code, str):
        raise InvalidCode(f"extraction code must be a string, got {type(code).__name__}")
    code = unicodedata.normalize("NFC", code)
    if not CODE_MIN_LENGTH <= len(code) <= CODE_MAX_LENGTH:
        raise InvalidCode(
            f"extraction code is {len(code)} characters long; "
            f"it must be {CODE_MIN_LENGTH} to {CODE_MAX_LENGTH} characters"
        )
    for position, character in enumerate(code, start=1):
        if character.isspace():
            raise InvalidCode(
                f"extraction code contains whitespace at position {position}; "
                "remove spaces, tabs and line breaks"
            )
        if not character.isprintable():
            raise InvalidCode(
                f"extraction code contains a non-printable character at position {position}; "
                "use letters, digits and punctuation"
            )


def new_protection(
    code: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P
) -> tuple[Protection, DerivedKeys]:
    """Protect a new image version: draw a random salt and derive the keys from `code`.

    Raises InvalidCode if the code breaks the code rules, and InvalidProtection
    for invalid scrypt parameters. Smaller parameters than the defaults are
    accepted here so that tests stay fast, but `Protection.from_dict` rejects
    records under MIN_KDF_MEMORY.
    """
    code_bytes = _encode_code(code)
    problems = _kdf_problems(n, r, p, min_kdf_memory=0)
    if problems:
        raise InvalidProtection(problems)
    salt = urandom(SALT_SIZE)
    keys = _derive_keys(code_bytes, salt, n, r, p)
    protection = Protection(
        version=PROTECTION_VERSION,
        kdf=KDF_SCRYPT,
        n=n,
        r=r,
        p=p,
        salt=salt.hex(),
        lookup_id=keys.lookup_id,
    )
    return protection, keys


def derive(code: str, protection: Protection) -> DerivedKeys:
    """Derive the encryption key and lookup id of a protected version from its code.

    The returned keys always match the record: if the derived lookup id differs
    from `protection.lookup_id`, this raises WrongCodeOrTampered, because the code
    is wrong or the record was edited. Raises InvalidCode if the code breaks the
    code rules. Takes as long as one scrypt derivation.
    """
    keys = _derive_keys(
        _encode_code(code), bytes.fromhex(protection.salt), protection.n, protection.r, protection.p
    )
    if not hmac.compare_digest(keys.lookup_id, protection.lookup_id):
        raise WrongCodeOrTampered(
            "wrong extraction code: the derived lookup id does not match the protection record; "
            "check the code, and if it is correct, the record was modified"
        )
    return keys


def encrypt_stream(
    src: BinaryIO, dst: BinaryIO, key: bytes, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> int:
    """Encrypt `src` into `dst` in the chunked format and return the bytes written.

    Memory use is a few chunks whatever the file size. Every call draws a
    new file salt and nonce prefix, so encrypting the same input twice gives
    different output. Raises ExtractionError if the input has more than
    MAX_CHUNKS chunks.
    """
    _check_key(key)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size is {chunk_size!r}; it must be an integer from 1 to {MAX_CHUNK_SIZE}")

    file_salt = urandom(FILE_SALT_SIZE)
    nonce_prefix = urandom(NONCE_PREFIX_SIZE)
    cipher, commitment = _file_keys(key, file_salt)
    header = _HEADER.pack(MAGIC, STREAM_VERSION, chunk_size, file_salt, nonce_prefix, commitment)
    _write_all(dst, header)
    written = len(header)

    index = 0
    chunk = _read_exact(src, chunk_size)
    while True:
        if index >= MAX_CHUNKS:
            raise ExtractionError(
                f"input is larger than {MAX_CHUNKS} chunks of {chunk_size} bytes; use a larger chunk_size"
            )
        following = _read_exact(src, chunk_size) if len(chunk) == chunk_size else b""
        final = not following
        sealed = cipher.encrypt(_nonce(nonce_prefix, index), chunk, _associated_data(header, final))
        _write_all(dst, sealed)
        written += len(sealed)
        if final:
            return written
        chunk = following
        index += 1


def iter_decrypt(src: BinaryIO, key: bytes) -> Iterator[bytes]:
    """Decrypt `src` and yield its plaintext one authenticated chunk at a time.

    The header and key commitment are checked during this call, so a damaged
    header raises InvalidEncryptedFile and a wrong key raises WrongCodeOrTampered
    before any chunk is read. Each chunk is yielded only after its tag is verified, but the stream is complete only
    when iteration ends without error: truncation shows as an error at the end.
    An HTTP server can pull the first chunk before it sends a status line, and
    must abort the response, never end it normally, if a later chunk raises.
    Memory use is a few chunks whatever the file size.
    """
    _check_key(key)
    header = _read_header(src)
    cipher, commitment = _file_keys(key, header.file_salt)
    if not hmac.compare_digest(commitment, header.commitment):
        raise WrongCodeOrTampered(
            "the key does not match this file: the extraction code is wrong, "
            "or the file header was modified"
        )
    return _decrypt_chunks(src, cipher, header)


def decrypt_stream(src: BinaryIO, dst: BinaryIO, key: bytes) -> int:
    """Decrypt `src` into `dst` and return the plaintext bytes written.

    Each chunk is written only after its tag is verified. On an error, `dst`
    already contains the chunks before the failing one, and a truncated file is
    detected only at its end. So write to a temporary file, keep it only if
    this returns, and discard it on any ExtractionError.
    """
    written = 0
    for plaintext in iter_decrypt(src, key):
        _write_all(dst, plaintext)
        written += len(plaintext)
    return written


@dataclass(frozen=True)
class _StreamHeader:
    raw: bytes
    chunk_size: int
    file_salt: bytes
    nonce_prefix: bytes
    commitment: bytes


def _encode_code(code: str) -> bytes:
    check_code(code)
    return unicodedata.normalize("NFC", code).encode("utf-8")


def _derive_keys(code_bytes: bytes, salt: bytes, n: int, r: int, p: int) -> DerivedKeys:
    started = time.perf_counter()
    secret = Scrypt(salt=salt, length=KEY_SIZE, n=n, r=r, p=p).derive(code_bytes)
    log.debug("scrypt derivation took %.3f s (n=%d, r=%d, p=%d)", time.perf_counter() - started, n, r, p)
    encryption_key = HKDFExpand(algorithm=hashes.SHA256(), length=KEY_SIZE, info=_INFO_ENCRYPTION_KEY).derive(secret)
    lookup_id = HKDFExpand(algorithm=hashes.SHA256(), length=LOOKUP_ID_SIZE, info=_INFO_LOOKUP_ID).derive(secret)
    return DerivedKeys(encryption_key=encryption_key, lookup_id=lookup_id.hex())


def _protection_problems(data: object, min_kdf_memory: int) -> list[str]:
    if not isinstance(data, Mapping):
        return [f"protection must be a mapping with fields {', '.join(_FIELDS)}, got {type(data).__name__}"]

    problems = [f"field {name!r} is missing" for name in _FIELDS if name not in data]
    problems += [
        f"field {_show(name)} is unknown; the fields are {', '.join(_FIELDS)}" for name in data if name not in _FIELDS
    ]
    for name in _INT_FIELDS:
        value = data.get(name)
        if name in data and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append(f"field {name!r} must be an integer, got {_describe(value)}")
    for name in _STR_FIELDS:
        if name in data and not isinstance(data[name], str):
            problems.append(f"field {name!r} must be a string, got {_describe(data[name])}")
    if problems:
        return problems

    if data["version"] != PROTECTION_VERSION:
        problems.append(
            f"field 'version' is {data['version']}; this registry-index reads only version "
            f"{PROTECTION_VERSION}, so upgrade registry-index"
        )
    if data["kdf"] != KDF_SCRYPT:
        problems.append(f"field 'kdf' is {_show(data['kdf'])}; the only supported KDF is {KDF_SCRYPT!r}")
    problems += _kdf_problems(data["n"], data["r"], data["p"], min_kdf_memory)
    for name, size in (("salt", SALT_SIZE), ("lookup_id", LOOKUP_ID_SIZE)):
        if not _is_lower_hex(data[name], size):
            problems.append(
                f"field {name!r} is {_show(data[name])}; it must be {2 * size} lowercase hex digits ({size} bytes)"
            )
    return problems


def _kdf_problems(n: int, r: int, p: int, min_kdf_memory: int) -> list[str]:
    problems = []
    if n < 2 or n & (n - 1):
        problems.append(f"field 'n' is {n}; scrypt needs a power of two of at least 2")
    if r < 1:
        problems.append(f"field 'r' is {r}; it must be at least 1")
    if not 1 <= p <= MAX_P:
        problems.append(f"field 'p' is {p}; it must be from 1 to {MAX_P}")
    if problems:
        return problems

    memory = 128 * n * r
    if memory > MAX_KDF_MEMORY:
        problems.append(
            f"scrypt parameters n={n}, r={r} need {memory // _MIB} MiB; the maximum is {MAX_KDF_MEMORY // _MIB} MiB"
        )
    elif memory < min_kdf_memory:
        problems.append(
            f"scrypt parameters n={n}, r={r} need only {memory / _MIB:g} MiB; at least "
            f"{min_kdf_memory / _MIB:g} MiB is required so that each guess at the code stays expensive"
        )
    return problems


def _is_lower_hex(value: str, size: int) -> bool:
    return len(value) == 2 * size and set(value) <= _HEX_DIGITS


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null)"
    return f"{type(value).__name__} {_show(value)}"


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        size = f"{len(key)} bytes" if isinstance(key, bytes) else type(key).__name__
        raise ValueError(f"key must be {KEY_SIZE} bytes, got {size}; pass DerivedKeys.encryption_key")


def _file_keys(key: bytes, file_salt: bytes) -> tuple[AESGCM, bytes]:
    file_key = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=file_salt, info=_INFO_FILE_KEY).derive(key)
    commitment = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=file_salt, info=_INFO_KEY_COMMITMENT).derive(
        key
    )
    return AESGCM(file_key), commitment


def _nonce(nonce_prefix: bytes, index: int) -> bytes:
    return nonce_prefix + index.to_bytes(4, "big")


def _associated_data(header: bytes, final: bool) -> bytes:
    return header + (b"\x01" if final else b"\x00")


def _read_header(src: BinaryIO) -> _StreamHeader:
    raw = _read_exact(src, HEADER_SIZE)
    if len(raw) < HEADER_SIZE:
        raise InvalidEncryptedFile(
            f"file is {len(raw)} bytes, shorter than the {HEADER_SIZE}-byte header: "
            "it was truncated or is not an encrypted image"
        )
    magic, version, chunk_size, file_salt, nonce_prefix, commitment = _HEADER.unpack(raw)
    if magic != MAGIC:
        raise InvalidEncryptedFile(f"file does not start with {MAGIC!r}: it is not an encrypted image")
    if version != STREAM_VERSION:
        raise InvalidEncryptedFile(
            f"encrypted file format version {version} is not supported; this registry-index reads "
            f"version {STREAM_VERSION}, so upgrade registry-index"
        )
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise InvalidEncryptedFile(
            f"chunk size {chunk_size} in the header is outside 1 to {MAX_CHUNK_SIZE}: the file is damaged"
        )
    return _StreamHeader(raw, chunk_size, file_salt, nonce_prefix, commitment)


def _decrypt_chunks(src: BinaryIO, cipher: AESGCM, header: _StreamHeader) -> Iterator[bytes]:
    block_size = header.chunk_size + TAG_SIZE
    index = 0
    block = _read_exact(src, block_size)
    while True:
        offset = HEADER_SIZE + index * block_size
        if not block:
            raise WrongCodeOrTampered("file ends after its header, without the final chunk: it was truncated")
        if index >= MAX_CHUNKS:
            raise WrongCodeOrTampered(f"file has more than {MAX_CHUNKS} chunks: data was appended")
        following = _read_exact(src, block_size) if len(block) == block_size else b""
        final = not following
        try:
            plaintext = cipher.decrypt(
                _nonce(header.nonce_prefix, index), block, _associated_data(header.raw, final)
            )
        except InvalidTag:
            raise WrongCodeOrTampered(
                f"chunk {index} at byte offset {offset} failed authentication: the file was truncated, "
                "reordered or modified; discard any output and download the file again"
            ) from None
        yield plaintext
        if final:
            return
        block = following
        index += 1


def _read_exact(src: BinaryIO, size: int) -> bytes:
    """Read `size` bytes, or fewer only at end of file, even from streams that return short reads."""
    data = src.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    remaining = size - len(data)
    while remaining:
        part = src.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def _write_all(dst: BinaryIO, data: bytes) -> None:
    """Write all of `data`, also to raw streams whose write() may write only part of it."""
    view = memoryview(data)
    while view:
        count = dst.write(view)
        if count is None:
            raise BlockingIOError("destination stream is non-blocking and not ready; pass a blocking stream")
        view = view[count:]


_INFO_SEAL_KEY = b"registry-index sealed record v1 key"
_SEAL_NONCE_SIZE = 12


def check_parameters(n: int, r: int, p: int) -> None:
    """Raise InvalidProtection unless the scrypt parameters are within the accepted memory range.

    A client calls this on parameters it read from a site before it derives, so
    a tampered site cannot make it derive with cheap parameters.
    """
    problems = _kdf_problems(n, r, p, MIN_KDF_MEMORY)
    if problems:
        raise InvalidProtection(problems)


def derive_from_parameters(code: str, salt: str, n: int, r: int, p: int) -> DerivedKeys:
    """Derive the keys of a protected version from its code and public scrypt parameters.

    Unlike `derive`, there is no lookup id to compare against: a wrong code
    shows up as a lookup id under which nothing is published.
    """
    try:
        salt_bytes = bytes.fromhex(salt)
    except ValueError:
        raise InvalidProtection([f"salt {salt[:60]!r} is not hexadecimal"]) from None
    return _derive_keys(_encode_code(code), salt_bytes, n, r, p)


def _seal_cipher(key: bytes) -> AESGCM:
    return AESGCM(HKDFExpand(algorithm=hashes.SHA256(), length=KEY_SIZE, info=_INFO_SEAL_KEY).derive(key))


def seal(key: bytes, data: bytes, associated_data: bytes) -> str:
    """Encrypt a small record with AES-256-GCM under a key derived from `key`; return base64 text."""
    nonce = urandom(_SEAL_NONCE_SIZE)
    return base64.b64encode(nonce + _seal_cipher(key).encrypt(nonce, data, associated_data)).decode("ascii")


def open_sealed(key: bytes, sealed: str, associated_data: bytes) -> bytes:
    """Decrypt a record made by `seal`; raise WrongCodeOrTampered when the key or the data is wrong."""
    try:
        raw = base64.b64decode(sealed, validate=True)
    except (ValueError, binascii.Error):
        raise WrongCodeOrTampered("sealed record is not valid base64; the index entry was modified") from None
    try:
        return _seal_cipher(key).decrypt(raw[:_SEAL_NONCE_SIZE], raw[_SEAL_NONCE_SIZE:], associated_data)
    except InvalidTag:
        raise WrongCodeOrTampered("wrong extraction code, or the sealed record was modified") from None
