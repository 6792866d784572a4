"""The main job end to end through the CLI: add the real images, build, serve, search and pull over HTTP."""

import hashlib
import shutil
import subprocess
import sys
import threading

import pytest
import requests

from conftest import FIXTURES, REDIS_KI, REDIS_SHA256, TENGINE_KI, TENGINE_SHA256

CLI = [sys.executable, "-m", "registry_index"]


def run(*args, cwd):
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def served(index_dir, tmp_path):
    """Add both fixture images with the CLI, build, and start `registry-index serve` on a free port."""
    work = index_dir.parent
    for ki in (REDIS_KI, TENGINE_KI):
        added = run("add", str(ki), cwd=work)
        assert added.returncode == 0, added.stderr
    assert run("validate", "--assets", str(FIXTURES), cwd=work).returncode == 0
    built = run("build", "--out", "site", cwd=work)
    assert built.returncode == 0, built.stderr
    assert built.stdout.startswith("built 2 images, 2 versions: ")
    server = subprocess.Popen([*CLI, "serve", "--site", "site", "--port", "0", "--assets", str(FIXTURES)],
                              cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith("serving site at http://127.0.0.1:"), line
        yield line.split(" at ")[1].strip().rstrip("/")
    finally:
        server.terminate()
        server.wait(timeout=10)


def sha256_of(url):
    return hashlib.sha256(requests.get(url, timeout=10).content).hexdigest()


def test_kindo_1x_search_then_pull(served):
    results = requests.get(f"{served}/v1/search", params={"q": "redis"}, timeout=5).json()
    assert [(r["name"], r["pusher"], r["size"], r["buildtime"]) for r in results] == [
        ("cycore/redis:3.0.4", "cycore", "1367041", "2026-12-04 19:17:10")
    ]
    # kindo 1.x splits the chosen result's name on ':' and '/' and pulls by uniqueName.
    author_name, version = results[0]["name"].split(":")
    pull = requests.get(f"{served}/v1/pull", params={"uniqueName": f"{author_name}:{version}"}, timeout=5).json()
    assert pull["name"] == "cycore/redis:3.0.4"
    assert sha256_of(pull["url"]) == REDIS_SHA256


def test_kindo_1x_pull_without_author_and_version(served):
    pull = requests.get(f"{served}/v1/pull?uniqueName=anonymous/tengine:latest", timeout=5).json()
    assert (pull["name"], pull["version"], pull["pusher"]) == ("cycore/tengine:2.1.1", "2.1.1", "cycore")
    assert sha256_of(pull["url"]) == TENGINE_SHA256


def test_api_document_pull(served):
    pull = requests.get(f"{served}/v1/pull", params={"name": "redis", "author": "cycore", "version": "3.0.4"}, timeout=5).json()
    assert {k: pull[k] for k in ["version", "author", "size", "buildtime"]} == {
        "version": "3.0.4", "author": "cycore", "size": "1367041", "buildtime": "2026-12-04 19:17:10"}
    assert sha256_of(pull["url"]) == REDIS_SHA256
    only_name = requests.get(f"{served}/v1/pull", params={"name": "tengine"}, timeout=5).json()
    assert only_name["version"] == "2.1.1"


def test_static_client_pull(served):
    pull = requests.get(f"{served}/v1/pull/cycore/tengine/latest.json", timeout=5).json()
    assert (pull["name"], pull["unique_name"]) == ("tengine", "cycore/tengine:2.1.1")
    assert sha256_of(pull["url"]) == TENGINE_SHA256 == pull["sha256"]


def test_serve_logs_one_line_per_request(index_dir, tmp_path):
    work = index_dir.parent
    shutil.rmtree(index_dir / "images")
    (index_dir / "images").mkdir()
    assert run("build", cwd=work).returncode == 0
    server = subprocess.Popen([*CLI, "serve", "--port", "0"], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = server.stdout.readline().split(" at ")[1].strip().rstrip("/")
        requests.get(f"{base}/v1/search?q=x", timeout=5)
        requests.get(f"{base}/v1/index.json", timeout=5)
        # The server logs a request after it has sent the response, so wait
        # for both lines before stopping it. The timer ends a hung wait.
        watchdog = threading.Timer(10, server.terminate)
        watchdog.start()
        lines = []
        while len(lines) < 2 and (line := server.stderr.readline()):
            if line.startswith("INFO: 127.0.0.1 "):
                lines.append(line)
        watchdog.cancel()
    finally:
        server.terminate()
        server.communicate(timeout=10)
    assert [line.split(" ")[2:5] for line in lines] == [['"GET', '/v1/search?q=x"', "200"], ['"GET', '/v1/index.json"', "200"]]
