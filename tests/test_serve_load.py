"""`serve` under load on loopback: no errors, and a client that sends one byte a second blocks no one.

Latency figures come from benchmarks/serve_load.py, not from this test.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from synthetic import write_index

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import serve_load  # noqa: E402

CLIENTS = 50
REQUESTS = 10_000
TIME_LIMIT = 240


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`registry-index serve` in a subprocess on a synthetic site; yields its address, the targets and the recorded responses."""
    folder = tmp_path_factory.mktemp("load")
    index = write_index(folder / "index", images=60, seed=5)
    site = folder / "site"
    built = subprocess.run([sys.executable, "-m", "registry_index", "-q", "build", "--index", str(index), "--out", str(site)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    process, address = serve_load.start_server(site)
    targets = serve_load.request_targets(index, seed=5)
    expected = serve_load.record_responses(address, targets)
    yield address, targets, expected
    process.terminate()
    process.wait(timeout=10)


def test_recorded_responses_cover_every_status(server):
    _, _, expected = server
    statuses = sorted({status for status, _ in expected.values()})
    assert statuses == [200, 400, 404]
    assert expected["/v1/pull?uniqueName=nobody/x:1"] == (200, b'{"code": "040014040", "msg": "image not found: nobody/x:1"}\n')


def test_serve_under_load(server):
    address, targets, expected = server
    result = serve_load.run_load(address, targets, expected, CLIENTS, REQUESTS, TIME_LIMIT, seed=5)
    assert result.errors == []
    assert len(result.latencies) == REQUESTS


def test_kept_alive_connection_has_no_ack_delay(server):
    address, _, expected = server
    connection = http.client.HTTPConnection(*address, timeout=10)
    latencies = []
    for _ in range(31):
        started = time.perf_counter()
        response = serve_load.fetch(connection, "/v1/index.json")
        latencies.append(time.perf_counter() - started)
        assert response == expected["/v1/index.json"]
    connection.close()
    # With Nagle's algorithm on, each request waited for the client's delayed ACK, 44 ms here.
    assert sorted(latencies)[15] < 0.030


SLOW_REQUEST = b"GET /v1/index.json HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
SLOW_BYTES = 5
SLOW_CLIENTS = 5


def send_slowly(connection: socket.socket, progress: list[int]) -> None:
    """Send the first SLOW_BYTES bytes of the request one a second, counting them in `progress`."""
    for byte in SLOW_REQUEST[:SLOW_BYTES]:
        connection.sendall(bytes([byte]))
        progress.append(byte)
        time.sleep(1)


def test_slow_clients_do_not_block_others(server):
    address, targets, expected = server
    slow = [socket.create_connection(address, timeout=30) for _ in range(SLOW_CLIENTS)]
    progress = [[] for _ in slow]
    senders = [threading.Thread(target=send_slowly, args=(connection, sent)) for connection, sent in zip(slow, progress)]
    for sender in senders:
        sender.start()
    time.sleep(1.5)

    result = serve_load.run_load(address, targets, expected, clients=10, requests=300, time_limit=60, seed=6)
    slow_bytes_sent = [len(sent) for sent in progress]
    for sender in senders:
        sender.join()

    assert result.errors == []
    assert len(result.latencies) == 300
    # Every fast request completed while every slow request was still incomplete.
    assert max(slow_bytes_sent) < SLOW_BYTES, f"the fast load ended only after the slow clients sent {slow_bytes_sent} bytes"

    # The slow connections are still open: the rest of the request gets the full response.
    for connection in slow:
        connection.sendall(SLOW_REQUEST[SLOW_BYTES:])
        response = http.client.HTTPResponse(connection)
        response.begin()
        assert (response.status, response.read()) == expected["/v1/index.json"]
        connection.close()
