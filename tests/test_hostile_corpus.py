"""The hostile-input corpus: every case gives exactly its expected error, and nothing more."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import tracemalloc

import pytest

from conftest import FIXTURES, SAMPLE_INDEX
from hostile import archives, http_targets, index_yaml
from registry_index.archive import read_image
from registry_index.errors import InvalidArchive, InvalidIndex
from registry_index.index import load_index
from registry_index.server import make_server
from registry_index.site import build_site


def by_id(cases):
    return pytest.mark.parametrize("case", cases, ids=[case.id for case in cases])


@pytest.mark.parametrize("table", [index_yaml.CASES, archives.CASES, http_targets.CASES])
def test_case_ids_unique(table):
    ids = [case.id for case in table]
    assert len(ids) == len(set(ids))


@pytest.fixture
def settings_and_account(tmp_path):
    """An index with the sample settings and the cycore account, and no images."""
    index = tmp_path / "index"
    shutil.copytree(SAMPLE_INDEX, index)
    shutil.rmtree(index / "images")
    (index / "images").mkdir()
    return index


@by_id(index_yaml.CASES)
def test_hostile_index_file(settings_and_account, case):
    case.prepare(settings_and_account)
    with pytest.raises(InvalidIndex) as caught:
        load_index(settings_and_account)
    messages = [str(problem) for problem in caught.value.problems]
    assert messages == case.problems
    assert index_yaml.SECRET not in str(caught.value)


@by_id(archives.CASES)
def test_hostile_archive(tmp_path, case):
    path = tmp_path / "hostile.ki"
    path.write_bytes(case.build())
    with pytest.raises(InvalidArchive) as caught:
        read_image(path)
    assert str(caught.value) == f"{path}: {case.message}"


def test_zip_bomb_read_is_bounded(tmp_path):
    path = tmp_path / "bomb.ki"
    path.write_bytes(archives.streamed_bomb(size=256 * 1024 * 1024, claimed=2**31))
    assert path.stat().st_size < 400_000
    tracemalloc.start()
    try:
        with pytest.raises(InvalidArchive) as caught:
            read_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(caught.value) == f"{path}: manifest.json is larger than 1048576 bytes; it is not a kindo manifest"
    # The manifest inflates to 256 MiB; the reader keeps at most its 1 MiB limit and buffers.
    assert peak < 8 * 1024 * 1024


@pytest.fixture(scope="module")
def sample_server(tmp_path_factory):
    """`serve` on the sample site with the fixture images as assets, on a free loopback port."""
    import threading

    site = tmp_path_factory.mktemp("hostile") / "site"
    build_site(load_index(SAMPLE_INDEX), site)
    server = make_server(site, "127.0.0.1", 0, FIXTURES)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[:2]
    server.shutdown()
    server.server_close()


def send_raw(address, target: bytes, headers: dict[str, str]) -> http.client.HTTPResponse:
    """Send one GET with `target` as raw bytes and return the parsed response."""
    connection = socket.create_connection(address, timeout=10)
    lines = [b"GET " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [f"{key}: {value}".encode() for key, value in headers.items()]
    connection.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
    response = http.client.HTTPResponse(connection)
    response.begin()
    response.body = response.read()
    connection.close()
    return response


@by_id(http_targets.CASES)
def test_hostile_request(sample_server, case):
    response = send_raw(sample_server, case.target, case.headers)
    assert response.status == case.status
    assert response.getheader("Content-Type") == case.content_type
    if case.body is not None:
        assert json.loads(response.body) == case.body
    assert b"root:" not in response.body
