"""Property-based tests of the three readers of untrusted input: index YAML, .ki files, serve requests.

For any input: the reader returns a result or raises the project's own error
(a RegistryError, or HubError inside the server), and it touches no file
outside its target. Example counts are bounded so the module runs in about
half a minute on two cores.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import sys
import threading
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, REDIS_KI, SAMPLE_INDEX
from hostile.zipcraft import DEFLATED, STORED, SYMLINK_MODE, UTF8_FLAG, FILE_MODE, Member, build_zip
from registry_index.archive import KindoImage, read_image
from registry_index.errors import InvalidArchive, InvalidIndex, Problem
from registry_index.index import Index, load_index
from registry_index.server import HubError, Target, make_server, pull_target
from registry_index.site import build_site
from registry_index.strictyaml import compose

SECRET = b"secret-outside-the-target-3c9e"
# Derandomized, so every run tries the same examples and a failure in CI reproduces locally.
BOUNDED = settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Return every entry under `folder`: relative path to (sha256 or link target, mtime in ns)."""
    entries = {}
    for path in sorted(folder.rglob("*")):
        relative = str(path.relative_to(folder))
        if path.is_symlink():
            entries[relative] = ("link:" + os.readlink(path), path.lstat().st_mtime_ns)
        elif path.is_file():
            entries[relative] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        else:
            entries[relative] = ("folder", path.stat().st_mtime_ns)
    return entries


@pytest.fixture
def sandbox(tmp_path):
    """A temporary folder with a secret file beside the target, to detect reads and writes outside it."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.yaml").write_bytes(b"title: " + SECRET + b"\n")
    return tmp_path


# --- index YAML ----------------------------------------------------------------------------

GOOD_IMAGE = (SAMPLE_INDEX / "images/cycore/redis.yaml").read_text()

KEYS = ["author", "name", "versions", "version", "file", "size", "sha256", "buildtime", "pusher", "url",
        "summary", "yanked", "title", "username", "<<", "? ", "", "author"]
SCALARS = ["\"cycore\"", "cycore", "redis", "1.10", "no", "~", "010", "2020-01-01", "0x10", "1_000", "-1",
           "\"\"", "''", "&a x", "*a", "!!python/object:os.system x", "!!binary aGk=", "!include x", "[", "]",
           "{", "}", "[a, [b, [c]]]", "{a: {b: c}}", "\"\\ud800\"", "\"\\x00\"", "|\n  text", ">-\n  text",
           "\"сycore\"", "\"ｒｅｄｉｓ\"", "CON", "\"../../x\"", "9" * 30, "\t", "%TAG", "---", "..."]

yaml_lines = st.builds(
    lambda indent, key, separator, value: " " * indent + key + separator + value,
    st.integers(0, 6), st.sampled_from(KEYS), st.sampled_from([": ", ":", " - ", "- ", ""]),
    st.sampled_from(SCALARS) | st.text(max_size=8),
)
structured_yaml = st.lists(yaml_lines, max_size=20).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass"))


@st.composite
def mutated_yaml(draw) -> bytes:
    """The valid sample image with characters deleted, inserted or replaced."""
    text = bytearray(GOOD_IMAGE.encode())
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["delete", "insert", "replace"]))
        piece = draw(st.sampled_from([b":", b"-", b" ", b"\n", b"\"", b"'", b"&a ", b"*a", b"!!", b"[", b"{", b"#",
                                      b"\t", b"\x00", b"\xff", "і".encode(), b"1.10"]) | st.binary(max_size=4))
        if action == "delete":
            del text[position:position + len(piece)]
        elif action == "insert":
            text[position:position] = piece
        else:
            text[position:position + len(piece)] = piece
    return bytes(text)


yaml_inputs = structured_yaml | mutated_yaml() | st.binary(max_size=300)


def problems_are_clean(problems: list[Problem]) -> None:
    for problem in problems:
        assert isinstance(problem, Problem)
        assert "\n" not in problem.message
        assert SECRET.decode() not in problem.message


@settings(BOUNDED, max_examples=300)
@given(data=yaml_inputs)
def test_compose_any_bytes(data):
    problems: list[Problem] = []
    node = compose(data, "f.yaml", problems)
    assert (node is None) == bool(problems)
    problems_are_clean(problems)


@settings(BOUNDED, max_examples=150)
@given(data=yaml_inputs, where=st.sampled_from(["images/cycore/redis.yaml", "accounts/cycore.yaml", "registry.yaml"]))
def test_load_index_any_file(sandbox, data, where):
    index = sandbox / "index"
    if not index.exists():
        shutil.copytree(SAMPLE_INDEX, index)
        (index / "accounts" / "mallory.yaml").symlink_to(sandbox / "outside" / "secret.yaml")
    original = (SAMPLE_INDEX / where).read_bytes()
    (index / where).write_bytes(data)
    before = snapshot(sandbox)
    try:
        result = load_index(index)
    except InvalidIndex as error:
        problems_are_clean(error.problems)
        assert error.problems
    else:
        pytest.fail(f"loaded an index with a symbolic link in accounts/: {result}")
    finally:
        after = snapshot(sandbox)
        (index / where).write_bytes(original)
    assert after == before


@settings(BOUNDED, max_examples=60)
@given(data=yaml_inputs)
def test_load_index_valid_or_invalid(sandbox, data):
    index = sandbox / "index"
    if not index.exists():
        shutil.copytree(SAMPLE_INDEX, index)
    (index / "images/cycore/redis.yaml").write_bytes(data)
    before = snapshot(sandbox)
    try:
        loaded = load_index(index)
    except InvalidIndex as error:
        problems_are_clean(error.problems)
    else:
        assert isinstance(loaded, Index)
    assert snapshot(sandbox) == before


# --- .ki files ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
manifests = st.fixed_dictionaries(
    {},
    optional={
        "author": st.sampled_from(["cycore", "CON", "сycore", "", "a" * 40]) | json_values,
        "name": st.sampled_from(["demo", "my_app", "../x", "ｒｅｄｉｓ"]) | json_values,
        "version": st.sampled_from(["1.0", "latest", "-rf", "1.0/../x"]) | json_values,
        "build_time": st.sampled_from(["2026-12-04 19:17:10", "２０２６-12-04 19:17:10"]) | json_values,
        "summary": json_values,
        "build_version": json_values,
        "min_version": json_values,
    },
).map(lambda document: json.dumps(document).encode())
member_names = st.sampled_from(["manifest.json", "files/a", "../a", "/abs", "a\\b", "c:x", "files/../../x", ".", "",
                                "a/./b", "files/", "MANIFEST.JSON"]) | st.text(max_size=12)
members = st.builds(
    Member,
    name=member_names,
    content=manifests | st.binary(max_size=64),
    method=st.sampled_from([STORED, DEFLATED, DEFLATED, 12, 14, 99]),
    flags=st.sampled_from([0, 0, UTF8_FLAG, 1, 8]),
    mode=st.sampled_from([FILE_MODE, FILE_MODE, SYMLINK_MODE, 0o040755, 0]),
    crc=st.none() | st.integers(0, 2**32 - 1),
    size=st.none() | st.integers(0, 2**32 - 1),
    local_size=st.none() | st.integers(0, 2**32 - 1),
    compressed_size=st.none() | st.integers(0, 2**32 - 1),
    local_name=st.none() | member_names,
)


def check_read(path: Path, sandbox: Path) -> None:
    before = snapshot(sandbox)
    try:
        image = read_image(path)
    except InvalidArchive as error:
        assert str(error).startswith(f"{path}: ")
        assert SECRET.decode() not in str(error)
    else:
        assert isinstance(image, KindoImage)
    assert snapshot(sandbox) == before


@settings(BOUNDED, max_examples=250)
@given(archive_members=st.lists(members, max_size=4), count=st.none() | st.integers(0, 70_000),
       offset=st.none() | st.integers(0, 2**32 - 1))
def test_read_crafted_zip(sandbox, archive_members, count, offset):
    path = sandbox / "crafted.ki"
    path.write_bytes(build_zip([Member("manifest.json", b'{"author": "cycore", "name": "demo"}'), *archive_members],
                               entry_count=count, directory_offset=offset))
    check_read(path, sandbox)


@settings(BOUNDED, max_examples=60)
@given(names=st.lists(member_names.filter(lambda name: "\x00" not in name and name), max_size=5),
       manifest=manifests, method=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]))
def test_read_zipfile_written_zip(sandbox, names, manifest, method):
    path = sandbox / "written.ki"
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr("manifest.json", manifest)
        for name in names:
            archive.writestr(name, b"payload")
    check_read(path, sandbox)


REAL_IMAGES = [REDIS_KI.read_bytes(), (FIXTURES / "cycore-tengine-2.1.1.ki").read_bytes()]


# A mutation is (region, offset, action, argument). Regions weight the
# manifest at the start and the central directory at the end, where most
# parsing happens. Falsifying examples print as these lists, not megabytes.
mutations = st.lists(
    st.tuples(
        st.sampled_from(["head", "tail", "tail", "anywhere"]),
        st.integers(0, 2**31),
        st.sampled_from(["flip", "flip", "truncate", "insert"]),
        st.integers(1, 255) | st.binary(min_size=1, max_size=8),
    ),
    min_size=1, max_size=4,
)


def mutate(original: bytes, changes: list[tuple]) -> bytes:
    """Return `original` with bytes flipped, cut or inserted as `changes` say."""
    data = bytearray(original)
    for region, offset, action, argument in changes:
        if not data:
            break
        if region == "head":
            position = offset % min(400, len(data))
        elif region == "tail":
            window = min(1200, len(data))
            position = len(data) - window + offset % window
        else:
            position = offset % len(data)
        if action == "flip":
            data[position] ^= argument if isinstance(argument, int) else argument[0] or 1
        elif action == "truncate":
            del data[position:]
        else:
            data[position:position] = argument if isinstance(argument, bytes) else bytes([argument])
    return bytes(data)


@settings(BOUNDED, max_examples=120)
@given(which=st.sampled_from([0, 1]), changes=mutations)
def test_read_mutated_real_image(sandbox, which, changes):
    path = sandbox / "mutated.ki"
    path.write_bytes(mutate(REAL_IMAGES[which], changes))
    check_read(path, sandbox)


# --- serve ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served_site(tmp_path_factory):
    """`serve` on the sample site in a thread; yields (address, site folder, escaped handler errors)."""
    root = tmp_path_factory.mktemp("served")
    site = root / "site"
    build_site(load_index(SAMPLE_INDEX), site)
    (root / "secret.json").write_bytes(b'{"secret": "' + SECRET + b'"}')
    server = make_server(site, "127.0.0.1", 0, FIXTURES)
    escaped: list[str] = []
    # socketserver calls handle_error for any exception that escapes a request handler.
    server.handle_error = lambda request, address: escaped.append(repr(sys.exc_info()[1]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    before = snapshot(root)
    yield server.server_address[:2], root, escaped
    server.shutdown()
    server.server_close()
    assert snapshot(root) == before


segments = st.sampled_from(["v1", "search", "pull", "images", "cycore", "redis", "latest.json", "3.0.4.json", "..",
                            ".", "%2e%2e", "%2E%2e", "%2f", "%5c", "%00", "%ff", "%c0%ae", "%", "%zz", "assets",
                            "cycore-redis-3.0.4.ki", "anonymous", "redis.json", "_all.json", "secret.json",
                            ".registry-index-site", "a" * 300, "index.html", "%D1%96"]) | st.text(
    st.characters(blacklist_characters=" \r\n\t#?", blacklist_categories=("Cs",)), max_size=6)
query_keys = st.sampled_from(["q", "name", "author", "version", "uniqueName", "username", "token", "code", "x"])
query_values = st.sampled_from(["redis", "cycore/redis:3.0.4", "anonymous/redis:latest", "", "%ff", "%00", "..%2f..",
                                "CON", "red%D1%96s", "%EF%BD%92", "a" * 70, "cycore/", ":", "/", "latest", "%"]) | st.text(
    st.characters(blacklist_characters=" \r\n\t#&", blacklist_categories=("Cs",)), max_size=8)
queries = st.lists(st.tuples(query_keys, query_values), max_size=5).map(
    lambda pairs: "&".join(f"{key}={value}" for key, value in pairs))


def join_target(path: str, query: str, api: str | None) -> str:
    """Return a request target: `api` (a query-string API path) or `path`, with `query` when it is not empty."""
    target = api or path
    if query:
        target += "?" + query
    return target


targets = st.builds(
    join_target,
    st.lists(segments, max_size=6).map(lambda parts: "/" + "/".join(parts)),
    queries,
    st.sampled_from([None, "/v1/search", "/v1/pull"]),
)


def request(address, target: bytes) -> tuple[int, str, bytes]:
    connection = socket.create_connection(address, timeout=10)
    try:
        connection.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        response = http.client.HTTPResponse(connection)
        response.begin()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        connection.close()


@settings(BOUNDED, max_examples=300)
@given(target=targets)
def test_serve_any_target(served_site, target):
    address, _, escaped = served_site
    status, content_type, body = request(address, target.encode("utf-8"))
    assert escaped == []
    assert status in (200, 400, 404, 414)
    assert SECRET not in body
    if content_type.startswith("application/json"):
        document = json.loads(body)
        if target.startswith(("/v1/search", "/v1/pull?")) and status == 200:
            assert isinstance(document, (list, dict))
    else:
        # "text/html;charset=utf-8" is the error page of http.server itself.
        assert content_type in ("text/html; charset=utf-8", "text/html;charset=utf-8", "application/octet-stream")


@settings(BOUNDED, max_examples=100)
@given(target=st.binary(min_size=1, max_size=60).filter(lambda raw: not any(byte in raw for byte in b" \r\n\t")))
def test_serve_any_raw_bytes(served_site, target):
    address, _, escaped = served_site
    status, _, body = request(address, b"/" + target)
    assert escaped == []
    assert status in (200, 400, 404, 414)
    assert SECRET not in body


@settings(BOUNDED, max_examples=300)
@given(params=st.dictionaries(query_keys, st.lists(query_values, min_size=1, max_size=2), max_size=5))
def test_pull_target_any_parameters(params):
    try:
        target = pull_target(params)
    except HubError as error:
        assert error.code in ("010004000", "010004001", "010004003")
    else:
        assert isinstance(target, Target)
        assert target.version is not None
