"""publish under faults: a re-run after a 502, a timeout or a rate limit finishes the job,
with nothing lost and nothing uploaded twice, and overlapping publishes drop nothing."""

import threading
import time
from pathlib import Path

import pytest

from conftest import UPSTREAM, make_ki, manifest
from registry_index.editing import add_image
from registry_index.errors import RegistryError
from registry_index.hosting import GitHub, HostingError
from registry_index.index import load_index
from registry_index.publishing import mirror_assets

UPLOAD_PATH = r"/releases/\d+/assets$"


def make_index(standin, tmp_path: Path, versions: list[str], name: str = "index") -> Path:
    """Write an index whose versions' sources are assets of alice's fork in the stand-in."""
    root = tmp_path / name
    (root / "accounts").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "registry.yaml").write_text(
        f'title: "t"\nrepository: "{UPSTREAM}"\nasset_release: "images"\nsite_url: "https://maint.github.io/registry/"\ngithub_url: "{standin.root_url}"\n')
    (root / "accounts/alice.yaml").write_text(
        'username: "alice"\nuid: "u-1"\ngithub: "alice"\n'
        'token_bcrypt: "$2b$12$' + "a" * 53 + '"\ncreated: "2026-12-04T19:00:00Z"\n')
    fork = standin.client("alice").get_repo("alice/registry")
    try:
        release = fork.get_release("uploads")
    except Exception:
        release = fork.create_git_release("uploads", "uploads", "")
    existing = {asset.name: asset for asset in release.get_assets()}
    for version in versions:
        ki = tmp_path / f"alice-demo-{version}.ki"
        if not ki.exists():
            make_ki(ki, manifest(author="alice", version=version, summary=f"v{version}"))
        asset = existing.get(ki.name) or release.upload_asset(str(ki), name=ki.name)
        add_image(root, ki, url="")
        path = root / "images/alice/demo.yaml"
        text = path.read_text()
        marker = f'    file: "alice-demo-{version}.ki"\n'
        path.write_text(text.replace(marker, marker + f'    source: "{asset.browser_download_url}"\n'))
    return root


def github(standin, timeout=30) -> GitHub:
    return GitHub("token-maint", standin.api_url, seconds_between_writes=0, timeout=timeout)


def uploads_created(standin) -> list[str]:
    """Return the asset names whose upload the stand-in accepted with 201, in order."""
    return [entry.query["name"] for entry in standin.request_log
            if entry.method == "POST" and entry.path.startswith("/api/uploads/repos/maint/") and entry.status == 201]


def release_assets(standin) -> dict[str, bytes]:
    found = {}
    for release in standin.repository(UPSTREAM).releases.values():
        for asset in release.assets.values():
            found[asset.name] = (asset.state, asset.data)
    return found


def expected_bytes(tmp_path, versions):
    return {f"alice-demo-{v}.ki": ("uploaded", (tmp_path / f"alice-demo-{v}.ki").read_bytes()) for v in versions}


@pytest.mark.parametrize("kind", ["502", "truncate_upload"])
def test_rerun_after_upload_fault(standin, tmp_path, kind):
    index = load_index(make_index(standin, tmp_path, ["1.0", "2.0", "3.0"]))
    standin.inject_fault("POST", UPLOAD_PATH, kind, times=None, skip=1)
    with pytest.raises(HostingError):
        mirror_assets(index, github(standin))
    standin.clear_faults()
    report = mirror_assets(index, github(standin))
    assert report.present == ["alice/demo:1.0"]
    assert sorted(report.uploaded) == ["alice/demo:2.0", "alice/demo:3.0"]
    assert release_assets(standin) == expected_bytes(tmp_path, ["1.0", "2.0", "3.0"])
    assert sorted(uploads_created(standin)) == ["alice-demo-1.0.ki", "alice-demo-2.0.ki", "alice-demo-3.0.ki"]


def test_single_timeout_recovered_in_run(standin, tmp_path):
    index = load_index(make_index(standin, tmp_path, ["1.0", "2.0"]))
    standin.inject_fault("POST", UPLOAD_PATH, "timeout", times=1, skip=1, hold_seconds=2)
    report = mirror_assets(index, github(standin, timeout=1))
    assert sorted(report.uploaded) == ["alice/demo:1.0", "alice/demo:2.0"]
    assert release_assets(standin) == expected_bytes(tmp_path, ["1.0", "2.0"])
    assert sorted(uploads_created(standin)) == ["alice-demo-1.0.ki", "alice-demo-2.0.ki"]


def test_rerun_after_timeouts(standin, tmp_path):
    index = load_index(make_index(standin, tmp_path, ["1.0", "2.0"]))
    standin.inject_fault("POST", UPLOAD_PATH, "timeout", times=None, skip=1, hold_seconds=2)
    with pytest.raises(HostingError) as caught:
        mirror_assets(index, github(standin, timeout=1))
    assert str(caught.value).startswith("upload of alice-demo-2.0.ki to release images failed (")
    standin.clear_faults()
    report = mirror_assets(index, github(standin))
    assert (report.present, report.uploaded) == (["alice/demo:1.0"], ["alice/demo:2.0"])
    assert release_assets(standin) == expected_bytes(tmp_path, ["1.0", "2.0"])
    assert sorted(uploads_created(standin)) == ["alice-demo-1.0.ki", "alice-demo-2.0.ki"]


def test_duplicate_from_earlier_run_is_not_uploaded_again(standin, tmp_path):
    index = load_index(make_index(standin, tmp_path, ["1.0", "2.0"]))
    mirror_assets(index, github(standin))
    before = len(uploads_created(standin))
    report = mirror_assets(index, github(standin))
    assert sorted(report.present) == ["alice/demo:1.0", "alice/demo:2.0"]
    assert len(uploads_created(standin)) == before


def test_rate_limit_is_waited_out(standin, tmp_path):
    index = load_index(make_index(standin, tmp_path, ["1.0", "2.0", "3.0", "4.0"]))
    standin.limit_content_creation(max_requests=2, window_seconds=2)
    started = time.monotonic()
    report = mirror_assets(index, github(standin))
    assert sorted(report.uploaded) == ["alice/demo:1.0", "alice/demo:2.0", "alice/demo:3.0", "alice/demo:4.0"]
    assert time.monotonic() - started >= 2
    assert any(entry.status == 403 for entry in standin.request_log)
    assert release_assets(standin) == expected_bytes(tmp_path, ["1.0", "2.0", "3.0", "4.0"])


def test_overlapping_publishes_drop_nothing(standin, tmp_path):
    older = load_index(make_index(standin, tmp_path, ["1.0", "2.0"], "older"))
    newer = load_index(make_index(standin, tmp_path, ["1.0", "2.0", "3.0"], "newer"))
    errors = []

    def run(index):
        try:
            mirror_assets(index, github(standin))
        except RegistryError as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in (older, newer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert release_assets(standin) == expected_bytes(tmp_path, ["1.0", "2.0", "3.0"])
    assert sorted(uploads_created(standin)) == ["alice-demo-1.0.ki", "alice-demo-2.0.ki", "alice-demo-3.0.ki"]
