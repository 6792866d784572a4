"""Tests of extraction codes: code rules, key derivation, protection records, encrypted files."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import struct
import tracemalloc

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from registry_index import extraction
from registry_index.extraction import (
    DEFAULT_CHUNK_SIZE,
    HEADER_SIZE,
    TAG_SIZE,
    ExtractionError,
    InvalidCode,
    InvalidEncryptedFile,
    InvalidProtection,
    Protection,
    WrongCodeOrTampered,
    check_code,
    decrypt_stream,
    derive,
    encrypt_stream,
    iter_decrypt,
    new_protection,
)

CODE = "Kindo7"
# 1 MiB of scrypt memory, about a millisecond per derivation.
FAST = {"n": 2**10, "r": 8, "p": 1}
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
SMALL_CHUNK = 64

VALID_RECORD = {
    "version": 1,
    "kdf": "scrypt",
    "n": 2**17,
    "r": 8,
    "p": 1,
    "salt": "000102030405060708090a0b0c0d0e0f",
    "lookup_id": "fb24751917cd9bfbc061ff88e3b03331",
}


def encrypt(data: bytes, key: bytes = KEY, chunk_size: int = SMALL_CHUNK) -> bytes:
    output = io.BytesIO()
    written = encrypt_stream(io.BytesIO(data), output, key, chunk_size=chunk_size)
    assert written == len(output.getvalue())
    return output.getvalue()


def decrypt(blob: bytes, key: bytes = KEY) -> bytes:
    output = io.BytesIO()
    written = decrypt_stream(io.BytesIO(blob), output, key)
    assert written == len(output.getvalue())
    return output.getvalue()


def expected_size(plaintext_size: int, chunk_size: int) -> int:
    chunks = max(1, -(-plaintext_size // chunk_size))
    return HEADER_SIZE + chunks * TAG_SIZE + plaintext_size


def split_chunks(blob: bytes, chunk_size: int) -> tuple[bytes, list[bytes]]:
    block_size = chunk_size + TAG_SIZE
    body = blob[HEADER_SIZE:]
    return blob[:HEADER_SIZE], [body[start : start + block_size] for start in range(0, len(body), block_size)]


def flip(blob: bytes, offset: int) -> bytes:
    return blob[:offset] + bytes([blob[offset] ^ 0x01]) + blob[offset + 1 :]


def fixed_random(size: int) -> bytes:
    return {16: b"\x11" * 16, 8: b"\x22" * 8}[size]


class ShortReads(io.RawIOBase):
    """A source that returns at most 3 bytes per read, like a slow socket."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 3) if size >= 0 else 3)


# Code rules


@pytest.mark.parametrize("code", ["Kindo7", "a" * 64, "p@ss-W0rd!", "κωδικός1"])
def test_check_code_accepts_valid_codes(code):
    check_code(code)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("Kind7", "extraction code is 5 characters long; it must be 6 to 64 characters"),
        ("", "extraction code is 0 characters long; it must be 6 to 64 characters"),
        ("a" * 65, "extraction code is 65 characters long; it must be 6 to 64 characters"),
        ("Kin do7", "extraction code contains whitespace at position 4; remove spaces, tabs and line breaks"),
        ("Kindo7\n", "extraction code contains whitespace at position 7; remove spaces, tabs and line breaks"),
        ("Kindo7\u00a0", "extraction code contains whitespace at position 7; remove spaces, tabs and line breaks"),
        (
            "Kin\x00do7",
            "extraction code contains a non-printable character at position 4; use letters, digits and punctuation",
        ),
        (
            "Kindo\u200b7",
            "extraction code contains a non-printable character at position 6; use letters, digits and punctuation",
        ),
    ],
)
def test_check_code_rejects_invalid_codes(code, message):
    with pytest.raises(InvalidCode) as raised:
        check_code(code)
    assert str(raised.value) == message


def test_check_code_rejects_non_string():
    with pytest.raises(InvalidCode) as raised:
        check_code(123456)  # type: ignore[arg-type]
    assert str(raised.value) == "extraction code must be a string, got int"


def test_check_code_counts_characters_after_nfc():
    # "e" + combining acute accent is 2 code points, and 1 after NFC.
    with pytest.raises(InvalidCode) as raised:
        check_code("abcde\u0301")
    assert str(raised.value) == "extraction code is 5 characters long; it must be 6 to 64 characters"


# Key derivation


def test_derive_known_answer():
    protection = Protection.from_dict({**VALID_RECORD, "n": FAST["n"]}, min_kdf_memory=0)

    keys = derive(CODE, protection)

    assert keys.encryption_key.hex() == "b9c80e708a8ee0ac2a9c40252f62cfa91eb35d82b54a3da4c4a5a7a88f9cab0a"
    assert keys.lookup_id == "fb24751917cd9bfbc061ff88e3b03331"


def test_derive_matches_scrypt_then_hkdf_expand():
    # Recompute from the documented construction with hashlib's scrypt and RFC 5869
    # HKDF-Expand, whose output up to 32 bytes is HMAC-SHA256(prk, info || 0x01).
    salt = bytes(range(16))
    protection = Protection.from_dict({**VALID_RECORD, "n": FAST["n"]}, min_kdf_memory=0)
    secret = hashlib.scrypt(CODE.encode(), salt=salt, n=FAST["n"], r=8, p=1, dklen=32)

    def expand(info: bytes, length: int) -> bytes:
        return hmac.new(secret, info + b"\x01", hashlib.sha256).digest()[:length]

    keys = derive(CODE, protection)

    assert keys.encryption_key == expand(b"registry-index extraction v1 encryption key", 32)
    assert keys.lookup_id == expand(b"registry-index extraction v1 lookup id", 16).hex()


def test_derive_wrong_code_raises():
    protection, _ = new_protection(CODE, **FAST)

    with pytest.raises(WrongCodeOrTampered) as raised:
        derive("Kindo8", protection)
    assert str(raised.value) == (
        "wrong extraction code: the derived lookup id does not match the protection record; "
        "check the code, and if it is correct, the record was modified"
    )


def test_derive_rejects_invalid_code():
    protection, _ = new_protection(CODE, **FAST)

    with pytest.raises(InvalidCode):
        derive("short", protection)


def test_derive_normalizes_unicode():
    composed = "caf\u00e9-code"
    decomposed = "cafe\u0301-code"
    protection, keys = new_protection(composed, **FAST)

    assert derive(decomposed, protection) == keys


def test_new_protection_record_fields():
    protection, keys = new_protection(CODE, **FAST)

    assert protection.version == 1
    assert protection.kdf == "scrypt"
    assert (protection.n, protection.r, protection.p) == (2**10, 8, 1)
    assert len(protection.salt) == 32
    assert protection.lookup_id == keys.lookup_id
    assert len(keys.lookup_id) == 32
    assert len(keys.encryption_key) == 32
    assert derive(CODE, protection) == keys


def test_new_protection_draws_fresh_salt():
    first, first_keys = new_protection(CODE, **FAST)
    second, second_keys = new_protection(CODE, **FAST)

    assert first.salt != second.salt
    assert first_keys.encryption_key != second_keys.encryption_key
    assert first_keys.lookup_id != second_keys.lookup_id


def test_new_protection_rejects_invalid_parameters():
    with pytest.raises(InvalidProtection) as raised:
        new_protection(CODE, n=1000, r=8, p=1)
    assert str(raised.value) == "invalid protection record: field 'n' is 1000; scrypt needs a power of two of at least 2"


def test_new_protection_with_real_defaults():
    protection, keys = new_protection(CODE)

    assert (protection.n, protection.r, protection.p) == (2**17, 8, 1)
    record = protection.to_dict()
    assert Protection.from_dict(record) == protection
    assert derive(CODE, Protection.from_dict(record)) == keys


def test_derived_keys_repr_hides_key():
    _, keys = new_protection(CODE, **FAST)

    assert keys.encryption_key.hex() not in repr(keys)
    assert repr(keys) == f"DerivedKeys(lookup_id={keys.lookup_id!r})"


# Protection records


def test_to_dict_exact_fields():
    protection = Protection.from_dict(VALID_RECORD)

    assert protection.to_dict() == VALID_RECORD
    assert list(protection.to_dict()) == ["version", "kdf", "n", "r", "p", "salt", "lookup_id"]


def test_to_dict_round_trip():
    protection, _ = new_protection(CODE, **FAST)

    assert Protection.from_dict(protection.to_dict(), min_kdf_memory=0) == protection


def test_to_dict_contains_no_code_or_hash():
    protection, keys = new_protection(CODE, **FAST)
    text = repr(protection.to_dict()).lower()
    code = CODE.encode()
    forbidden = {
        "code": CODE.lower(),
        "code hex": code.hex(),
        "code base64": base64.b64encode(code).decode().lower(),
        "sha256": hashlib.sha256(code).hexdigest(),
        "md5": hashlib.md5(code).hexdigest(),
        "sha1": hashlib.sha1(code).hexdigest(),
        "sha256 salted": hashlib.sha256(bytes.fromhex(protection.salt) + code).hexdigest(),
        "encryption key": keys.encryption_key.hex(),
    }

    for name, value in forbidden.items():
        assert value not in text, name


def test_to_dict_values_are_strings_and_ints():
    protection, _ = new_protection(CODE, **FAST)

    for name, value in protection.to_dict().items():
        assert type(value) in (str, int), name


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "field 'version' is 2; this registry-index reads only version 1, so upgrade registry-index"),
        ({"version": True}, "field 'version' must be an integer, got bool True"),
        ({"version": "1"}, "field 'version' must be an integer, got str '1'"),
        ({"kdf": "argon2id"}, "field 'kdf' is 'argon2id'; the only supported KDF is 'scrypt'"),
        ({"kdf": None}, "field 'kdf' must be a string, got nothing (null)"),
        ({"n": 100000}, "field 'n' is 100000; scrypt needs a power of two of at least 2"),
        ({"n": 1}, "field 'n' is 1; scrypt needs a power of two of at least 2"),
        ({"n": "131072"}, "field 'n' must be an integer, got str '131072'"),
        ({"n": 131072.0}, "field 'n' must be an integer, got float 131072.0"),
        ({"r": 0}, "field 'r' is 0; it must be at least 1"),
        ({"p": 0}, "field 'p' is 0; it must be from 1 to 16"),
        ({"p": 17}, "field 'p' is 17; it must be from 1 to 16"),
        ({"n": 2**19}, "scrypt parameters n=524288, r=8 need 512 MiB; the maximum is 256 MiB"),
        (
            {"n": 2**10},
            "scrypt parameters n=1024, r=8 need only 1 MiB; "
            "at least 64 MiB is required so that each guess at the code stays expensive",
        ),
        (
            {"r": 1},
            "scrypt parameters n=131072, r=1 need only 16 MiB; "
            "at least 64 MiB is required so that each guess at the code stays expensive",
        ),
        (
            {"salt": "000102030405060708090A0B0C0D0E0F"},
            "field 'salt' is '000102030405060708090A0B0C0D0E0F'; it must be 32 lowercase hex digits (16 bytes)",
        ),
        ({"salt": "0001"}, "field 'salt' is '0001'; it must be 32 lowercase hex digits (16 bytes)"),
        ({"salt": b"\x00\x01"}, "field 'salt' must be a string, got bytes b'\\x00\\x01'"),
        (
            {"lookup_id": "zz24751917cd9bfbc061ff88e3b03331"},
            "field 'lookup_id' is 'zz24751917cd9bfbc061ff88e3b03331'; it must be 32 lowercase hex digits (16 bytes)",
        ),
        (
            {"lookup_id": "f" * 100},
            "field 'lookup_id' is '" + "f" * 56 + "...; it must be 32 lowercase hex digits (16 bytes)",
        ),
        ({"code": "Kindo7"}, "field 'code' is unknown; the fields are version, kdf, n, r, p, salt, lookup_id"),
    ],
)
def test_from_dict_rejects_bad_field(change, message):
    with pytest.raises(InvalidProtection) as raised:
        Protection.from_dict({**VALID_RECORD, **change})
    assert raised.value.problems == [message]
    assert str(raised.value) == "invalid protection record: " + message


def test_from_dict_rejects_missing_field():
    record = dict(VALID_RECORD)
    del record["salt"]

    with pytest.raises(InvalidProtection) as raised:
        Protection.from_dict(record)
    assert raised.value.problems == ["field 'salt' is missing"]


def test_from_dict_rejects_non_mapping():
    with pytest.raises(InvalidProtection) as raised:
        Protection.from_dict(["scrypt"])
    assert str(raised.value) == (
        "invalid protection record: protection must be a mapping with fields "
        "version, kdf, n, r, p, salt, lookup_id, got list"
    )


def test_from_dict_lists_all_problems():
    record = {**VALID_RECORD, "kdf": "pbkdf2", "salt": "xyz", "p": 0}

    with pytest.raises(InvalidProtection) as raised:
        Protection.from_dict(record)
    assert raised.value.problems == [
        "field 'kdf' is 'pbkdf2'; the only supported KDF is 'scrypt'",
        "field 'p' is 0; it must be from 1 to 16",
        "field 'salt' is 'xyz'; it must be 32 lowercase hex digits (16 bytes)",
    ]


def test_derive_rejects_edited_record():
    protection, _ = new_protection(CODE, **FAST)
    record = {**protection.to_dict(), "n": 2**11}

    with pytest.raises(WrongCodeOrTampered):
        derive(CODE, Protection.from_dict(record, min_kdf_memory=0))


# Encrypted file format


def test_encrypt_known_answer(monkeypatch):
    monkeypatch.setattr(extraction, "urandom", fixed_random)

    blob = encrypt(b"kindo image", chunk_size=4)

    assert blob.hex() == (
        "4b494e444f454e430100000004111111111111111111111111111111112222222222222222"
        "b12ab593269fe561acd53ea153ebee65810808fad046590bb95709312cd9386158c9839c"
        "0a14d735652bfc0b8244c03e4125bd28378bdbf4dfc5b8a8da88cbd02626bb64499da596"
        "1d41c176c4a855881bfa274908c08bb7be1e47"
    )


def test_encrypted_file_matches_documented_layout():
    blob = encrypt(b"kindo image", chunk_size=4)
    header, chunks = split_chunks(blob, 4)
    magic, version, chunk_size, file_salt, nonce_prefix, commitment = struct.unpack(">8sBI16s8s32s", header)

    def file_hkdf(info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=file_salt, info=info).derive(KEY)

    cipher = AESGCM(file_hkdf(b"registry-index stream v1 file key"))
    plaintexts = [
        cipher.decrypt(nonce_prefix + index.to_bytes(4, "big"), chunk, header + bytes([index == 2]))
        for index, chunk in enumerate(chunks)
    ]

    assert HEADER_SIZE == 69
    assert magic == b"KINDOENC"
    assert version == 1
    assert chunk_size == 4
    assert commitment == file_hkdf(b"registry-index stream v1 key commitment")
    assert plaintexts == [b"kind", b"o im", b"age"]


@pytest.mark.parametrize(
    ("size", "chunk_size"),
    [
        (0, SMALL_CHUNK),
        (1, SMALL_CHUNK),
        (SMALL_CHUNK - 1, SMALL_CHUNK),
        (SMALL_CHUNK, SMALL_CHUNK),
        (SMALL_CHUNK + 1, SMALL_CHUNK),
        (3 * SMALL_CHUNK, SMALL_CHUNK),
        (10 * SMALL_CHUNK + 7, SMALL_CHUNK),
        (5, 1),
        (0, DEFAULT_CHUNK_SIZE),
        (DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_SIZE),
        (DEFAULT_CHUNK_SIZE + 1, DEFAULT_CHUNK_SIZE),
        (3 * 1024 * 1024 + 5, DEFAULT_CHUNK_SIZE),
    ],
)
def test_round_trip(size, chunk_size):
    data = bytes(index * 7 % 251 for index in range(size))

    blob = encrypt(data, chunk_size=chunk_size)

    assert len(blob) == expected_size(size, chunk_size)
    assert decrypt(blob) == data


def test_round_trip_with_default_chunk_size():
    data = b"x" * 100
    output = io.BytesIO()

    encrypt_stream(io.BytesIO(data), output, KEY)

    assert output.getvalue()[9:13] == DEFAULT_CHUNK_SIZE.to_bytes(4, "big")
    assert decrypt(output.getvalue()) == data


def test_round_trip_with_derived_key():
    protection, keys = new_protection(CODE, **FAST)
    blob = encrypt(b"manifest and layers", key=keys.encryption_key)

    assert decrypt(blob, key=derive(CODE, protection).encryption_key) == b"manifest and layers"


def test_round_trip_with_short_reads():
    data = bytes(range(256)) * 3

    encrypted = io.BytesIO()
    encrypt_stream(ShortReads(data), encrypted, KEY, chunk_size=SMALL_CHUNK)
    decrypted = io.BytesIO()
    decrypt_stream(ShortReads(encrypted.getvalue()), decrypted, KEY)

    assert decrypted.getvalue() == data


def test_iter_decrypt_yields_chunks():
    blob = encrypt(b"a" * 150)

    assert [len(chunk) for chunk in iter_decrypt(io.BytesIO(blob), KEY)] == [64, 64, 22]


def test_iter_decrypt_checks_key_before_iteration():
    blob = encrypt(b"a" * 150)

    with pytest.raises(WrongCodeOrTampered):
        iter_decrypt(io.BytesIO(blob), OTHER_KEY)


def test_encryption_is_randomized():
    assert encrypt(b"same input") != encrypt(b"same input")


def test_encrypt_rejects_bad_arguments():
    with pytest.raises(ValueError) as raised:
        encrypt(b"data", key=b"short")
    assert str(raised.value) == "key must be 32 bytes, got 5 bytes; pass DerivedKeys.encryption_key"

    with pytest.raises(ValueError) as raised:
        encrypt(b"data", chunk_size=0)
    assert str(raised.value) == "chunk_size is 0; it must be an integer from 1 to 16777216"


def test_encrypt_rejects_too_many_chunks(monkeypatch):
    monkeypatch.setattr(extraction, "MAX_CHUNKS", 3)

    assert decrypt(encrypt(b"abc", chunk_size=1)) == b"abc"
    with pytest.raises(ExtractionError) as raised:
        encrypt(b"abcd", chunk_size=1)
    assert str(raised.value) == "input is larger than 3 chunks of 1 bytes; use a larger chunk_size"


def test_decrypt_wrong_key_raises():
    blob = encrypt(b"secret image")

    with pytest.raises(WrongCodeOrTampered) as raised:
        decrypt(blob, key=OTHER_KEY)
    assert str(raised.value) == (
        "the key does not match this file: the extraction code is wrong, or the file header was modified"
    )


# Tampering: each case must raise, and which error is raised is exact.

AUTH_FAILED = "failed authentication: the file was truncated, reordered or modified; discard any output and download the file again"


def auth_failed(index: int, chunk_size: int = SMALL_CHUNK) -> str:
    offset = HEADER_SIZE + index * (chunk_size + TAG_SIZE)
    return f"chunk {index} at byte offset {offset} {AUTH_FAILED}"


def test_flipped_magic_raises():
    blob = flip(encrypt(b"data"), 0)

    with pytest.raises(InvalidEncryptedFile) as raised:
        decrypt(blob)
    assert str(raised.value) == "file does not start with b'KINDOENC': it is not an encrypted image"


def test_flipped_version_raises():
    blob = flip(encrypt(b"data"), 8)

    with pytest.raises(InvalidEncryptedFile) as raised:
        decrypt(blob)
    assert str(raised.value) == (
        "encrypted file format version 0 is not supported; this registry-index reads version 1, "
        "so upgrade registry-index"
    )


def test_flipped_chunk_size_raises():
    blob = encrypt(b"d" * 200)

    with pytest.raises(InvalidEncryptedFile) as raised:
        decrypt(flip(blob, 9))
    assert str(raised.value) == "chunk size 16777280 in the header is outside 1 to 16777216: the file is damaged"

    # Chunk size 65 instead of 64 is valid, so authentication of chunk 0 must catch it.
    with pytest.raises(WrongCodeOrTampered) as raised:
        decrypt(flip(blob, 12))
    assert str(raised.value) == auth_failed(0, chunk_size=65)


@pytest.mark.parametrize("offset", [13, 28, 37, 68])
def test_flipped_salt_or_commitment_raises(offset):
    blob = flip(encrypt(b"data"), offset)

    with pytest.raises(WrongCodeOrTampered) as raised:
        decrypt(blob)
    assert str(raised.value) == (
        "the key does not match this file: the extraction code is wrong, or the file header was modified"
    )


@pytest.mark.parametrize("offset", [29, 36])
def test_flipped_nonce_prefix_raises(offset):
    blob = flip(encrypt(b"d" * 200), offset)

    with pytest.raises(WrongCodeOrTampered) as raised:
        decrypt(blob)
    assert str(raised.value) == auth_failed(0)


def test_every_flipped_header_byte_raises():
    blob = encrypt(b"d" * 200)

    for offset in range(HEADER_SIZE):
        with pytest.raises(ExtractionError):
            decrypt(flip(blob, offset))


@pytest.mark.parametrize(
    ("position", "index"),
    [
        (0, 0),  # first ciphertext byte
        (SMALL_CHUNK - 1, 0),  # last ciphertext byte of chunk 0
        (SMALL_CHUNK, 0),  # first tag byte of chunk 0
        (SMALL_CHUNK + TAG_SIZE - 1, 0),  # last tag byte of chunk 0
        (SMALL_CHUNK + TAG_SIZE, 1),  # first ciphertext byte of chunk 1
        (2 * (SMALL_CHUNK + TAG_SIZE) + 3, 2),  # final chunk body
        (2 * (SMALL_CHUNK + TAG_SIZE) + 8 + TAG_SIZE - 1, 2),  # last byte of the file, in the final tag
    ],
)
def test_flipped_body_or_tag_raises(position, index):
    blob = encrypt(b"d" * (2 * SMALL_CHUNK + 8))

    with pytest.raises(WrongCodeOrTampered) as raised:
        decrypt(flip(blob, HEADER_SIZE + position))
    assert str(raised.value) == auth_failed(index)


def test_truncated_at_chunk_boundary_raises():
    blob = encrypt(b"d" * (3 * SMALL_CHUNK + 8))
    block_size = SMALL_CHUNK + TAG_SIZE

    for chunks in (1, 2, 3):
        with pytest.raises(WrongCodeOrTampered) as raised:
            decrypt(blob[: HEADER_SIZE + chunks * block_size])
        assert str(raised.value) == auth_failed(chunks - 1)


def test_truncated_exact_multiple_raises():
    # The final chunk is full here, so cutting it off leaves only full non-final chunks.
    blob = encrypt(b"d" * (2 * SMALL_CHUNK))

    with pytest.raises(WrongCodeOrTampered) as raised:
        decrypt(blob[: HEADER_SIZE + SMALL_CHUNK + TAG_SIZE])
    assert str(raised.value) == auth_failed(0)


@pytest.mark.parametrize("cut", [1, 8, TAG_SIZE, TAG_SIZE + 1, SMALL_CHUNK + TAG_SIZE - 1])
def test_truncated_mid_chunk_raises(cut):
    blob = encrypt(b"d" * (2 * SMALL_CHUNK + 8))

    with pytest.raises(WrongCodeOrTampered) as raised:
        decrypt(blob[: HEADER_SIZE + cut])
    assert str(raised.value) == auth_failed(0)


def test_truncated_final_chunk_raises():
    blob = encrypt(b"d" * (2 * SMALL_CHUNK + 8))

    for cut in (1, 8, TAG_SIZE + 7):
        with pytest.raises(WrongCodeOrTampered) as raised:
            decrypt(blob[:-cut])
        assert str(raised.value) == auth_failed(2)


def test_truncated_after_header_raises():
    blob = encrypt(b"data")

    with pytest.raises(WrongCodeOrTampered) as raised:
        decrypt(blob[:HEADER_SIZE])
    assert str(raised.value) == "file ends after its header, without the final chunk: it was truncated"


@pytest.mark.parametrize("size", [0, 1, HEADER_SIZE - 1])
def test_truncated_header_raises(size):
    blob = encrypt(b"data")

    with pytest.raises(InvalidEncryptedFile) as raised:
        decrypt(blob[:size])
    assert str(raised.value) == (
        f"file is {size} bytes, shorter than the 69-byte header: it was truncated or is not an encrypted image"
    )


def test_swapped_chunks_raise():
    header, chunks = split_chunks(encrypt(b"d" * (3 * SMALL_CHUNK + 8)), SMALL_CHUNK)
    chunks[0], chunks[1] = chunks[1], chunks[0]

    with pytest.raises(WrongCodeOrTampered) as raised:
        decrypt(header + b"".join(chunks))
    assert str(raised.value) == auth_failed(0)


def test_dropped_chunk_raises():
    header, chunks = split_chunks(encrypt(b"d" * (3 * SMALL_CHUNK + 8)), SMALL_CHUNK)
    del chunks[1]

    with pytest.raises(WrongCodeOrTampered) as raised:
        decrypt(header + b"".join(chunks))
    assert str(raised.value) == auth_failed(1)


def test_duplicated_chunk_raises():
    header, chunks = split_chunks(encrypt(b"d" * (3 * SMALL_CHUNK + 8)), SMALL_CHUNK)
    chunks.insert(1, chunks[0])

    with pytest.raises(WrongCodeOrTampered) as raised:
        decrypt(header + b"".join(chunks))
    assert str(raised.value) == auth_failed(1)


@pytest.mark.parametrize("size", [2 * SMALL_CHUNK + 8, 2 * SMALL_CHUNK])
@pytest.mark.parametrize("extra", [b"\x00", b"x" * (SMALL_CHUNK + TAG_SIZE)])
def test_appended_data_raises(size, extra):
    blob = encrypt(b"d" * size)

    with pytest.raises(WrongCodeOrTampered) as raised:
        decrypt(blob + extra)
    assert str(raised.value) == auth_failed(2 if size % SMALL_CHUNK else 1)


def test_concatenated_files_raise():
    first = encrypt(b"d" * 100)
    second = encrypt(b"e" * 100)

    with pytest.raises(WrongCodeOrTampered) as raised:
        decrypt(first + second)
    assert str(raised.value) == auth_failed(1)


def test_chunk_from_other_file_raises():
    # Same key and chunk size, so only the per-file key and header binding tell the files apart.
    header, chunks = split_chunks(encrypt(b"d" * 200), SMALL_CHUNK)
    _, other_chunks = split_chunks(encrypt(b"d" * 200), SMALL_CHUNK)
    chunks[1] = other_chunks[1]

    with pytest.raises(WrongCodeOrTampered) as raised:
        decrypt(header + b"".join(chunks))
    assert str(raised.value) == auth_failed(1)


def test_decrypt_stream_writes_only_authenticated_chunks():
    data = bytes(range(256))[: 3 * SMALL_CHUNK + 8]
    blob = flip(encrypt(data), HEADER_SIZE + 2 * (SMALL_CHUNK + TAG_SIZE))
    output = io.BytesIO()

    with pytest.raises(WrongCodeOrTampered):
        decrypt_stream(io.BytesIO(blob), output, KEY)
    # Chunks 0 and 1 were authenticated and written, so a caller must discard this output.
    assert output.getvalue() == data[: 2 * SMALL_CHUNK]


def test_decrypt_rejects_too_many_chunks(monkeypatch):
    blob = encrypt(b"abcd", chunk_size=1)
    monkeypatch.setattr(extraction, "MAX_CHUNKS", 3)

    with pytest.raises(WrongCodeOrTampered) as raised:
        decrypt(blob)
    assert str(raised.value) == "file has more than 3 chunks: data was appended"


def test_error_classes_share_base():
    for error in (InvalidCode, InvalidProtection, InvalidEncryptedFile, WrongCodeOrTampered):
        assert issubclass(error, ExtractionError)


class ZeroSource(io.RawIOBase):
    """A source of `size` zero bytes that keeps no buffer of its own."""

    def __init__(self, size: int):
        self._remaining = size

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        count = self._remaining if size < 0 else min(size, self._remaining)
        self._remaining -= count
        return bytes(count)


class CountingSink(io.RawIOBase):
    """A destination that keeps only the number of bytes written and their sha256."""

    def __init__(self):
        self.size = 0
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.size += len(data)
        self.digest.update(data)
        return len(data)


def test_streams_use_constant_memory(tmp_path):
    size = 32 * 1024 * 1024
    encrypted_path = tmp_path / "image.ki.enc"
    tracemalloc.start()
    try:
        with open(encrypted_path, "wb") as encrypted:
            encrypt_stream(ZeroSource(size), encrypted, KEY)
        _, encrypt_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()

        sink = CountingSink()
        with open(encrypted_path, "rb") as encrypted:
            decrypt_stream(encrypted, sink, KEY)
        _, decrypt_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert sink.size == size
    assert sink.digest.hexdigest() == hashlib.sha256(bytes(size)).hexdigest()
    assert encrypt_peak < 8 * DEFAULT_CHUNK_SIZE
    assert decrypt_peak < 8 * DEFAULT_CHUNK_SIZE
