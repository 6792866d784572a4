"""Shared fixtures: the sample index, the real kindo images, .ki files made on the spot, and a GitHub stand-in."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import zipfile
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
SAMPLE_INDEX = REPOSITORY / "index"

# Tests run `python -m registry_index` in temporary folders. This makes those
# subprocesses import this checkout's package, installed or not.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))


def _find_fixtures() -> Path:
    """Return `shared/fixtures/kindo-images` beside the clone, or beside a folder above it.

    A clone sits beside `shared/`, and a git worktree one level deeper.
    """
    for folder in REPOSITORY.parents:
        candidate = folder / "shared" / "fixtures" / "kindo-images"
        if candidate.is_dir():
            return candidate
    return REPOSITORY.parent / "shared" / "fixtures" / "kindo-images"


FIXTURES = _find_fixtures()
REDIS_KI = FIXTURES / "cycore-redis-3.0.4.ki"
TENGINE_KI = FIXTURES / "cycore-tengine-2.1.1.ki"
REDIS_SHA256 = "d4a6849f128ab875e41410cfc7a37ae3a79226736f2a385a685a776e15a0166c"
TENGINE_SHA256 = "9d7b5550d23c03a0db0f4b160ade466c184ce9245a97a896a08f37cab6ff821f"


def manifest(**changes) -> dict:
    """Return a manifest as the kindo 1.1 client writes it, with `changes` applied (None removes a key)."""
    document = {
        "name": "demo", "version": "1.0.0", "author": "cycore", "homepage": "", "summary": "a demo image",
        "license": "MIT", "platform": "linux", "build_time": "2026-12-04 19:17:10",
        "build_version": 1.1, "min_version": 1.1, "files": ["demo"], "images": [],
    }
    for key, value in changes.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    return document


def make_ki(path: Path, manifest_data: dict | bytes | None = None, members: dict[str, bytes] | None = None) -> Path:
    """Write a .ki zip at `path` with a manifest (a dict, raw bytes, or None for none) and extra members."""
    if manifest_data is None and members is None:
        manifest_data = manifest()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        if manifest_data is not None:
            data = manifest_data if isinstance(manifest_data, bytes) else json.dumps(manifest_data).encode()
            archive.writestr("manifest.json", data)
        for name, content in (members or {"files/demo": b"#!/bin/sh\necho demo\n"}).items():
            archive.writestr(name, content)
    return path


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    """A copy of the sample index with the images removed: settings and the cycore account."""
    target = tmp_path / "index"
    shutil.copytree(SAMPLE_INDEX, target)
    shutil.rmtree(target / "images")
    (target / "images").mkdir()
    return target


@pytest.fixture
def sample_index(tmp_path: Path) -> Path:
    """A copy of the sample index as shipped, with both real images."""
    target = tmp_path / "index"
    shutil.copytree(SAMPLE_INDEX, target)
    return target


# The upstream registry repository of the publishing tests that use `standin`.
UPSTREAM = "maint/registry"


@pytest.fixture
def standin():
    """A GitHub stand-in with the maintainer `maint` owning UPSTREAM and the contributor `alice` with her fork."""
    from github_standin import GitHubStandIn

    with GitHubStandIn() as server:
        server.add_user("maint")
        server.add_user("alice")
        server.create_repository(UPSTREAM)
        server.create_repository("alice/registry")
        yield server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def running_server():
    """Start `make_server` servers on free loopback ports in threads; stop them after the test."""
    from registry_index.server import make_server

    servers = []

    def start(site: Path, assets: Path | None = None, **options) -> str:
        server = make_server(site, "127.0.0.1", 0, assets, **options)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append(server)
        host, port = server.server_address[:2]
        return f"http://{host}:{port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
