"""`serve`: static paths and the query-string API over real HTTP on loopback."""

import hashlib
import http.client
import json
import logging
import resource
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from typer.testing import CliRunner

from conftest import FIXTURES, REDIS_SHA256, make_ki, manifest
from registry_index.cli import app
from registry_index.editing import add_image
from registry_index.errors import SiteError
from registry_index.index import load_index
from registry_index.lingering import LingeringCloser
from registry_index.server import (
    LINGER_SECONDS, MAX_CONNECTIONS, MAX_LINGERING_CONNECTIONS, MAX_WAITING_CONNECTIONS, SLOT_WAIT_SECONDS, HubError, RejectionLog, Target,
    _ReleaseOnce, loggable_target, make_server, parse_unique_name, pull_target,
)
from registry_index.site import build_site


@pytest.fixture
def site(sample_index, tmp_path):
    out = tmp_path / "site"
    build_site(load_index(sample_index), out)
    return out


@pytest.mark.parametrize("text, expected", [
    ("cycore/redis:3.0.4", Target("cycore", "redis", "3.0.4")),
    ("anonymous/redis:latest", Target("anonymous", "redis", "latest")),
    ("redis", Target(None, "redis", None)),
    ("cycore/redis", Target("cycore", "redis", None)),
])
def test_parse_unique_name(text, expected):
    assert parse_unique_name(text) == expected


@pytest.mark.parametrize("params, expected", [
    ({"uniqueName": ["cycore/redis:3.0.4"]}, Target("cycore", "redis", "3.0.4")),
    ({"uniqueName": ["Anonymous/redis:LATEST"]}, Target(None, "redis", "latest")),
    ({"name": ["redis"]}, Target(None, "redis", "latest")),
    ({"name": ["redis"], "author": ["cycore"], "version": ["3.0.4"]}, Target("cycore", "redis", "3.0.4")),
    ({"name": ["redis"], "author": [""], "version": [""]}, Target(None, "redis", "latest")),
])
def test_pull_target(params, expected):
    assert pull_target(params) == expected


@pytest.mark.parametrize("params, code, message", [
    ({}, "010004001", "missing required parameter name (or uniqueName)"),
    ({"name": [""]}, "010004003", "parameter name is empty; send the image name"),
    ({"uniqueName": [""]}, "010004003", "parameter uniqueName is empty; send author/name:version"),
    ({"uniqueName": ["cycore/re dis:1"]}, "010004000", "parameter invalid: name 're dis' has characters outside letters, digits, '_' and '-'; rename it"),
    ({"uniqueName": ["a/b/c:1"]}, "010004000", "parameter invalid: author 'a/b' has characters outside letters and digits; rename it"),
    ({"name": ["redis"], "version": ["../../x"]}, "010004000", "parameter invalid: version '../../x' has characters outside letters, digits, '.' and '-', starting with a letter or digit; rename it"),
])
def test_pull_target_errors(params, code, message):
    with pytest.raises(HubError) as caught:
        pull_target(params)
    assert (caught.value.code, caught.value.message) == (code, message)


@pytest.mark.parametrize("path, expected", [
    ("/v1/search?q=RED", [("cycore/redis:3.0.4", "3.0.4")]),
    ("/v1/search?q=cycore/", [("cycore/redis:3.0.4", "3.0.4"), ("cycore/tengine:2.1.1", "2.1.1")]),
    ("/v1/search?q=e:2.1", [("cycore/tengine:2.1.1", "2.1.1")]),
    ("/v1/search?q=nothing-like-this", []),
    ("/v1/search?q=%C3%A9", []),
    ("/v1/search?q=redis&username=cycore&token=abc", [("cycore/redis:3.0.4", "3.0.4")]),
])
def test_search_over_http(site, running_server, path, expected):
    base = running_server(site)
    answer = requests.get(base + path, timeout=5)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
    assert [(r["name"], r["version"]) for r in answer.json()] == expected


@pytest.mark.parametrize("path, expected", [
    ("/v1/search", {"code": "010004001", "msg": "missing required parameter q"}),
    ("/v1/search?q=", {"code": "010004003", "msg": "parameter q is empty; send the text to search for"}),
    ("/v1/search?q=%ff", {"code": "010004000", "msg": "query string is not valid UTF-8 after percent-decoding"}),
    ("/v1/pull?uniqueName=cycore/nope:1", {"code": "040014040", "msg": "image not found: cycore/nope:1"}),
    ("/v1/pull?uniqueName=anonymous/nope:latest", {"code": "040014040", "msg": "image not found: nope"}),
    ("/v1/pull?name=redis&version=9.9", {"code": "040014040", "msg": "image not found: cycore/redis:9.9"}),
    ("/v1/pull?" + "&".join(f"x{i}=1" for i in range(40)), {"code": "010004000", "msg": "query string has more than 32 parameters"}),
])
def test_query_api_errors_answer_200(site, running_server, path, expected):
    answer = requests.get(running_server(site) + path, timeout=5)
    assert answer.status_code == 200
    assert answer.json() == expected


def test_author_omitted_with_several_authors(sample_index, tmp_path, running_server):
    (sample_index / "accounts/alice.yaml").write_text((sample_index / "accounts/cycore.yaml").read_text().replace('"cycore"', '"alice"'))
    add_image(sample_index, make_ki(tmp_path / "a.ki", manifest(author="alice", name="redis")))
    build_site(load_index(sample_index), tmp_path / "site")
    answer = requests.get(running_server(tmp_path / "site") + "/v1/pull?uniqueName=anonymous/redis:latest", timeout=5)
    assert answer.json() == {"code": "010004000", "msg": "image name 'redis' is published by several authors (alice/redis, cycore/redis); give the author"}


def test_static_paths(site, running_server):
    base = running_server(site)
    pull = requests.get(base + "/v1/pull/cycore/redis/latest.json", timeout=5)
    assert pull.headers["Content-Type"] == "application/json; charset=utf-8"
    assert pull.json()["sha256"] == REDIS_SHA256
    assert requests.get(base + "/", timeout=5).text.startswith("<!doctype html>")
    missing = requests.get(base + "/v1/pull/cycore/redis/9.json", timeout=5)
    assert (missing.status_code, missing.json()["code"]) == (404, "040014040")
    assert requests.get(base + "/nowhere", timeout=5).status_code == 404
    assert requests.get(base + "/.registry-index-site", timeout=5).status_code == 404


@pytest.mark.parametrize("raw_path, status", [
    ("/v1/../../etc/passwd", 400),
    ("/v1/%2e%2e/%2e%2e/etc/passwd", 400),
    ("/%2e%2e%2f%2e%2e%2fetc/passwd", 400),
    ("/v1/pull/%ff.json", 400),
    ("/" + "a" * 5000, 414),
])
def test_hostile_paths(site, running_server, raw_path, status):
    host_port = running_server(site).removeprefix("http://")
    connection = http.client.HTTPConnection(host_port, timeout=5)
    connection.request("GET", raw_path)
    response = connection.getresponse()
    body = response.read()
    assert response.status == status
    assert b"root:" not in body


def test_symlink_out_of_site_not_served(site, running_server, tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"secret": 1}')
    (site / "v1" / "leak.json").symlink_to(secret)
    assert requests.get(running_server(site) + "/v1/leak.json", timeout=5).status_code == 404


def test_local_assets_preview(site, running_server):
    base = running_server(site, FIXTURES)
    pull = requests.get(base + "/v1/pull?uniqueName=cycore/redis:3.0.4", timeout=5).json()
    assert pull["url"] == base + "/assets/cycore-redis-3.0.4.ki"
    assert hashlib.sha256(requests.get(pull["url"], timeout=5).content).hexdigest() == REDIS_SHA256
    static = requests.get(base + "/v1/pull/cycore/redis/3.0.4.json", timeout=5).json()
    assert static["url"] == base + "/assets/cycore-redis-3.0.4.ki"
    assert requests.get(base + "/assets/..%2fetc", timeout=5).status_code == 400


def test_make_server_refuses_unbuilt_folder(tmp_path):
    with pytest.raises(SiteError) as caught:
        make_server(tmp_path, "127.0.0.1", 0)
    assert str(caught.value) == f"{tmp_path} is not a built site (no .registry-index-site); run `registry-index build` first"


@pytest.mark.parametrize("target, logged", [
    ("/v1/search?q=redis&username=cycore&token=e10adc3949ba59abbe56e057f20f883e",
     "/v1/search?q=redis&username=cycore&token=<redacted>"),
    ("/v1/pull?uniqueName=cycore/redis:3.0.4&code=Kindo7&Token=x", "/v1/pull?uniqueName=cycore/redis:3.0.4&code=<redacted>&Token=<redacted>"),
    ("/v1/pull?name=redis&tokens=1&xcode=2", "/v1/pull?name=redis&tokens=1&xcode=2"),
])
def test_loggable_target_redacts_secrets(target, logged):
    assert loggable_target(target) == logged


def test_request_log_has_no_token(site, running_server, caplog):
    caplog.set_level(logging.INFO, logger="registry_index.server")
    token = "e10adc3949ba59abbe56e057f20f883e"
    assert requests.get(running_server(site) + f"/v1/search?q=redis&username=cycore&token={token}", timeout=5).status_code == 200
    # The server logs a request after it has sent the response, so wait for the line.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [record.getMessage() for record in caplog.records if record.name == "registry_index.server"]
        if any("token=<redacted>" in line for line in lines):
            break
        time.sleep(0.01)
    assert any("/v1/search?q=redis&username=cycore&token=<redacted>" in line for line in lines)
    assert not any(token in line for line in lines)


def busy_line(max_connections: int) -> str:
    return f"127.0.0.1: connection rejected with HTTP 503 because the server is at its connection maximum ({max_connections}); raise --max-connections if the load is expected"


def busy_body(max_connections: int) -> bytes:
    return f'{{"code": "050000503", "msg": "server is busy at its connection maximum ({max_connections}); try again in a few seconds"}}\n'.encode()


def fetch(address: tuple[str, int], target: str = "/v1/index.json") -> tuple[int, str | None, bytes]:
    """Send GET `target` on a new connection and return the status, the Retry-After header and the body."""
    connection = http.client.HTTPConnection(*address, timeout=10)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, response.getheader("Retry-After"), response.read()
    finally:
        connection.close()


def read_until_closed(connection: socket.socket) -> bytes:
    received = b""
    while chunk := connection.recv(4096):
        received += chunk
    return received


def server_address(base: str) -> tuple[str, int]:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def test_connection_past_maximum_gets_503(site, running_server, caplog):
    caplog.set_level(logging.WARNING, logger="registry_index.server")
    address = server_address(running_server(site))
    idle = [socket.create_connection(address, timeout=10) for _ in range(MAX_CONNECTIONS)]
    try:
        started = time.monotonic()
        status, retry_after, body = fetch(address)
        waited = time.monotonic() - started
        assert status == 503
        assert retry_after == "1"
        assert body == busy_body(64)
        assert json.loads(body)["code"] == "050000503"
        # The connection waited for a free slot before it got the 503.
        assert waited >= SLOT_WAIT_SECONDS * 0.9

        # The server reads end of file on the closed connection and frees its slot for the next one.
        idle.pop().close()
        assert fetch(address) == (200, None, (site / "v1/index.json").read_bytes())
    finally:
        for connection in idle:
            connection.close()
    assert [record.getMessage() for record in caplog.records] == [busy_line(64)]


def test_full_waiting_room_rejects_at_once(site, running_server, caplog):
    caplog.set_level(logging.WARNING, logger="registry_index.server")
    address = server_address(running_server(site, max_connections=2))
    handled = [socket.create_connection(address, timeout=10) for _ in range(2)]
    waiting = [socket.create_connection(address, timeout=10) for _ in range(MAX_WAITING_CONNECTIONS)]
    try:
        started = time.monotonic()
        with socket.create_connection(address, timeout=10) as rejected:
            response = read_until_closed(rejected)
        elapsed = time.monotonic() - started
        body = busy_body(2)
        head = f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
        assert response == head.encode() + body
        assert elapsed < SLOT_WAIT_SECONDS

        # The waiting connections get the same 503 when their wait ends.
        for connection in waiting:
            assert read_until_closed(connection) == head.encode() + body

        handled.pop().close()
        assert fetch(address)[0] == 200
    finally:
        for connection in handled + waiting:
            connection.close()
    # One line for the first rejection, because the other 16 came within REJECTION_LOG_SECONDS of it.
    assert [record.getMessage() for record in caplog.records] == [busy_line(2)]


def busy_response(max_connections: int) -> bytes:
    body = busy_body(max_connections)
    head = f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    return head.encode() + body


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_rejected_clients_read_whole_503(site):
    server = make_server(site, "127.0.0.1", 0, max_connections=2)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = server.server_address[:2]
    handled = [socket.create_connection(address, timeout=10) for _ in range(2)]
    waiting = [socket.create_connection(address, timeout=10) for _ in range(MAX_WAITING_CONNECTIONS)]
    rejected = [socket.create_connection(address, timeout=10) for _ in range(24)]
    outcomes: list[bytes | str | None] = [None] * len(rejected)
    try:
        # Each piece arrives well after the 503 was sent, as the segments of a
        # request can over a slow network. A closed socket would reply to the
        # first with a reset, and the next send would fail.
        for piece in [b"GET /v1/index.json HTTP/1.1\r\n", b"Host: 127.0.0.1\r\n", b"Connection: close\r\n\r\n"]:
            time.sleep(0.05)
            for number, connection in enumerate(rejected):
                if outcomes[number] is not None:
                    continue
                try:
                    connection.sendall(piece)
                except OSError as error:
                    outcomes[number] = f"sending failed: {type(error).__name__}"
        for number, connection in enumerate(rejected):
            if outcomes[number] is not None:
                continue
            try:
                outcomes[number] = read_until_closed(connection)
            except OSError as error:
                outcomes[number] = f"reading failed: {type(error).__name__}"
        assert outcomes == [busy_response(2)] * len(rejected)

        for connection in rejected:
            connection.close()
        # Closed when the clients close theirs, well before LINGER_SECONDS.
        assert wait_until(lambda: server.closer.lingering() == 0, LINGER_SECONDS / 2)
    finally:
        for connection in handled + waiting + rejected:
            connection.close()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("open_files", [256, 400])
def test_lingering_fits_open_file_limit(site, monkeypatch, open_files):
    # Past the open-file limit, accept() fails and the server loop spins on a whole core.
    monkeypatch.setattr(resource, "getrlimit", lambda limit: (open_files, open_files))
    server = make_server(site, "127.0.0.1", 0)
    try:
        descriptors = 2 * MAX_CONNECTIONS + MAX_WAITING_CONNECTIONS + server.closer.max_connections
        assert descriptors < open_files
    finally:
        server.server_close()


def test_lingering_without_open_file_limit(site, monkeypatch):
    monkeypatch.setattr(resource, "getrlimit", lambda limit: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    server = make_server(site, "127.0.0.1", 0)
    try:
        assert server.closer.max_connections == MAX_LINGERING_CONNECTIONS
    finally:
        server.server_close()


def accepted_pair() -> tuple[socket.socket, socket.socket]:
    """Return a connected (server side, client side) pair, the server side non-blocking."""
    server_side, client_side = socket.socketpair()
    server_side.setblocking(False)
    client_side.settimeout(10)
    return server_side, client_side


def test_lingering_closer_closes_at_end_of_file():
    closer = LingeringCloser(linger_seconds=60, max_connections=4, max_bytes=1024)
    server_side, client_side = accepted_pair()
    try:
        assert closer.add(server_side)
        client_side.sendall(b"GET / HTTP/1.1\r\n\r\n")
        client_side.close()
        assert wait_until(lambda: closer.lingering() == 0, 5)
        assert server_side.fileno() == -1
    finally:
        closer.close()


def test_lingering_closer_closes_after_deadline():
    closer = LingeringCloser(linger_seconds=0.2, max_connections=4, max_bytes=1024)
    server_side, client_side = accepted_pair()
    try:
        started = time.monotonic()
        assert closer.add(server_side)
        assert client_side.recv(1) == b""
        assert time.monotonic() - started >= 0.2
        assert wait_until(lambda: closer.lingering() == 0, 5)
    finally:
        client_side.close()
        closer.close()


def test_lingering_closer_closes_past_max_bytes():
    closer = LingeringCloser(linger_seconds=60, max_connections=4, max_bytes=1024)
    server_side, client_side = accepted_pair()
    try:
        assert closer.add(server_side)
        client_side.sendall(b"x" * 1025)
        assert client_side.recv(1) == b""
        assert wait_until(lambda: closer.lingering() == 0, 5)
    finally:
        client_side.close()
        closer.close()


def test_lingering_closer_full_and_stopped():
    closer = LingeringCloser(linger_seconds=60, max_connections=2, max_bytes=1024)
    pairs = [accepted_pair() for _ in range(3)]
    try:
        assert [closer.add(server_side) for server_side, _ in pairs] == [True, True, False]
        assert closer.lingering() == 2
        closer.close()
        # Closing the closer closes what it kept open, and it takes nothing more.
        assert [client_side.recv(1) for _, client_side in pairs[:2]] == [b"", b""]
        assert closer.lingering() == 0
        assert not closer.add(pairs[2][0])
    finally:
        for server_side, client_side in pairs:
            server_side.close()
            client_side.close()


def test_rejection_log_counts_repeats(caplog):
    caplog.set_level(logging.WARNING, logger="registry_index.server")
    rejections = RejectionLog(interval=10)
    for client in ["192.0.2.1", "192.0.2.2", "192.0.2.3"]:
        rejections.rejected(client, 64)
    # As if the interval had passed since the first line.
    rejections.last_logged -= 10
    rejections.rejected("192.0.2.4", 64)
    rejections.rejected("192.0.2.5", 64)
    assert [record.getMessage() for record in caplog.records] == [
        "192.0.2.1: connection rejected with HTTP 503 because the server is at its connection maximum (64); raise --max-connections if the load is expected",
        "192.0.2.4: connection rejected with HTTP 503 because the server is at its connection maximum (64); raise --max-connections if the load is expected (2 more rejected since the previous message)",
    ]
    assert [record.levelname for record in caplog.records] == ["WARNING", "WARNING"]


def test_serve_max_connections_option(site):
    process = subprocess.Popen(
        [sys.executable, "-m", "registry_index", "serve", "--site", str(site), "--port", "0", "--max-connections", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    idle = []
    try:
        line = process.stdout.readline()
        assert line.startswith("serving ")
        address = server_address(line.rsplit(" at ", 1)[1].strip().rstrip("/"))
        idle = [socket.create_connection(address, timeout=10) for _ in range(2)]
        assert fetch(address) == (503, "1", busy_body(2))
        idle.pop().close()
        assert fetch(address) == (200, None, (site / "v1/index.json").read_bytes())
    finally:
        for connection in idle:
            connection.close()
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert stderr.splitlines().count(f"WARNING: {busy_line(2)}") == 1


def test_serve_rejects_zero_max_connections():
    result = CliRunner().invoke(app, ["serve", "--max-connections", "0"])
    assert result.exit_code == 2
    # The wording is typer's and changes between its versions; the option and the limit stay.
    assert "'--max-connections'" in result.output
    assert "x>=1" in result.output


def test_release_once_from_two_threads():
    # A handler thread and the thread that started it may both release the
    # slot when a signal interrupts Thread.start(); only one release may count.
    semaphore = threading.BoundedSemaphore(1)
    assert semaphore.acquire(blocking=False)
    release = _ReleaseOnce(semaphore)
    threads = [threading.Thread(target=release) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    release()
    assert semaphore.acquire(blocking=False)
    assert not semaphore.acquire(blocking=False)
