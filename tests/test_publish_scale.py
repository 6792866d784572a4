"""publish at scale, scaled down: files spread over releases by asset_shards, full
releases, GitHub's cap on listed releases, and rate limits waited out on a simulated clock.

Every test talks real HTTP to the GitHub stand-in on 127.0.0.1.
"""

import hashlib
import json
import logging
import weakref
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import UPSTREAM
from github_standin import WRITE_METHODS
from registry_index import progress as progress_module
from registry_index import publishing
from registry_index.cli import app
from registry_index.errors import InvalidIndex
from registry_index.hosting import GitHub, HostingError
from registry_index.index import load_index
from registry_index.model import Settings
from registry_index.publishing import ReleaseFull, mirror_assets, mirror_index

runner = CliRunner()
# A whole second, so the stand-in's Retry-After and x-ratelimit-reset give whole waits.
START = 1_900_000_000.0


class SimulatedClock:
    """Time for both the stand-in and publish: sleeping advances it at once and records the wait."""

    def __init__(self):
        self.now = START
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def file_bytes(number: int) -> bytes:
    return f"kindo image {number}\n".encode() * (1 + number % 5)


def make_index(standin, tmp_path: Path, count: int, shards: int, per_image: int = 10) -> Path:
    """Write an index of `count` versions, `per_image` to an image, whose sources are assets of alice's fork."""
    root = tmp_path / "index"
    (root / "accounts").mkdir(parents=True)
    (root / "images/alice").mkdir(parents=True)
    (root / "registry.yaml").write_text(
        f'title: "t"\nrepository: "{UPSTREAM}"\nasset_release: "images"\n'
        f'site_url: "https://maint.github.io/registry/"\ngithub_url: "{standin.root_url}"\nasset_shards: {shards}\n')
    (root / "accounts/alice.yaml").write_text(
        'username: "alice"\nuid: "u-1"\ngithub: "alice"\n'
        'token_bcrypt: "$2b$12$' + "a" * 53 + '"\ncreated: "2026-12-04T19:00:00Z"\n')
    uploads = standin.client("alice").get_repo("alice/registry").create_git_release("uploads", "uploads", "")
    images: dict[str, list[str]] = {}
    for number in range(count):
        name, version = f"app{number // per_image}", f"1.{number % per_image}"
        data = file_bytes(number)
        (tmp_path / "upload.ki").write_bytes(data)
        asset = uploads.upload_asset(str(tmp_path / "upload.ki"), name=f"alice-{name}-{version}.ki")
        images.setdefault(name, []).append(
            f'  - version: "{version}"\n    file: "alice-{name}-{version}.ki"\n'
            f'    source: "{asset.browser_download_url}"\n    size: {len(data)}\n'
            f'    sha256: "{hashlib.sha256(data).hexdigest()}"\n'
            f'    buildtime: "2026-12-04 19:17:10"\n    pusher: "alice"\n')
    for name, entries in images.items():
        (root / f"images/alice/{name}.yaml").write_text(f'author: "alice"\nname: "{name}"\nversions:\n' + "".join(entries))
    return root


def files_by_release(standin) -> dict[str, dict[str, bytes]]:
    """Return each release of the registry with its uploaded assets' bytes."""
    return {
        release.tag_name: {asset.name: asset.data for asset in release.assets.values() if asset.state == "uploaded"}
        for release in standin.repository(UPSTREAM).releases.values()
    }


def expected_by_release(index) -> dict[str, dict[str, bytes]]:
    expected: dict[str, dict[str, bytes]] = {}
    for image in index.sorted_images():
        for version in image.versions:
            number = int(image.name.removeprefix("app")) * 10 + int(version.version.split(".")[1])
            expected.setdefault(index.settings.release_tag(version.file), {})[version.file] = file_bytes(number)
    return expected


def writes_by(standin, login: str) -> list[tuple[str, str, int]]:
    return [(entry.method, entry.path, entry.status) for entry in standin.request_log
            if entry.login == login and entry.method in WRITE_METHODS]


def github(standin, clock: SimulatedClock | None = None, max_release_assets: int = 1000) -> GitHub:
    if clock is None:
        return GitHub("token-maint", standin.api_url, seconds_between_writes=0, max_release_assets=max_release_assets)
    standin.clock = clock.time
    return GitHub("token-maint", standin.api_url, seconds_between_writes=0, max_release_assets=max_release_assets,
                  sleep=clock.sleep, clock=clock.time)


@pytest.mark.parametrize("shards, file, tag", [
    (0, "cycore-redis-3.0.4.ki", "images"),
    (1, "cycore-redis-3.0.4.ki", "images-e"),
    (3, "cycore-redis-3.0.4.ki", "images-e32"),
    (4, "cycore-redis-3.0.4.ki", "images-e321"),
    (2, "alice-demo-1.0.ki", "images-78"),
    (2, "alice-app0-1.0.ki", "images-8c"),
])
def test_release_tag_rule(shards, file, tag):
    settings = Settings("t", "maint/registry", "images", "https://maint.github.io/registry/", asset_shards=shards)
    assert settings.release_tag(file) == tag
    assert settings.asset_url(file) == f"https://github.com/maint/registry/releases/download/{tag}/{file}"


@pytest.mark.parametrize("value, message", [
    ("5", "index/registry.yaml:7: asset_shards 5 is out of range; expected 0 to 4: 0 keeps every file in the release asset_release, k spreads the files over 16^k releases"),
    ('"2"', "index/registry.yaml:7: asset_shards must be a whole number written in digits, such as 1367041, not '2'"),
    ("-1", "index/registry.yaml:7: asset_shards must be a whole number written in digits, such as 1367041, not '-1'"),
    ("1.5", "index/registry.yaml:7: asset_shards must be a whole number written in digits, such as 1367041, not '1.5'"),
])
def test_asset_shards_validation(index_dir, value, message):
    (index_dir / "registry.yaml").write_text(
        'title: "t"\nrepository: "maint/registry"\nasset_release: "images"\n'
        'site_url: "https://maint.github.io/registry/"\n\n\n'
        f"asset_shards: {value}\n")
    with pytest.raises(InvalidIndex) as caught:
        load_index(index_dir)
    assert [str(problem) for problem in caught.value.problems] == [message]


def test_publish_spreads_files_over_releases(standin, tmp_path, monkeypatch):
    root = make_index(standin, tmp_path, 300, shards=1)
    index = load_index(root)
    standin.limit_assets_per_release(40)
    monkeypatch.setattr(progress_module, "SHOW_AFTER", 0.0)
    monkeypatch.setattr(progress_module, "LOG_EVERY", 0.0)
    options = ["--index", str(root), "--out", str(tmp_path / "site"), "--token", "token-maint",
               "--api-url", standin.api_url, "--write-interval", "0"]

    result = runner.invoke(app, ["publish", *options])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "published: 300 uploaded, 0 already present, 0 half-uploaded replaced, 0 hosted elsewhere"
    expected = expected_by_release(index)
    assert sorted(expected) == [f"images-{digit}" for digit in "0123456789abcdef"]
    assert files_by_release(standin) == expected
    assert max(len(files) for files in expected.values()) <= 40
    creations = [path for method, path, status in writes_by(standin, "maint") if method == "POST" and path.endswith("/releases")]
    assert creations == ["/api/v3/repos/maint/registry/releases"] * 16
    assert [line for line in result.stderr.splitlines() if line.startswith("INFO: publish:")] == [
        "INFO: publish: listing releases",
        "INFO: publish: uploading (300 steps)",
        "INFO: publish: uploading 300/300",
    ]

    pull = json.loads((tmp_path / "site/v1/pull/alice/app7/1.3.json").read_text())
    tag = index.settings.release_tag("alice-app7-1.3.ki")
    assert pull["url"] == f"{standin.root_url}/maint/registry/releases/download/{tag}/alice-app7-1.3.ki"

    writes_before = len(writes_by(standin, "maint"))
    requests_before = len(standin.request_log)
    again = runner.invoke(app, ["publish", *options])
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[0] == "published: 0 uploaded, 300 already present, 0 half-uploaded replaced, 0 hosted elsewhere"
    assert len(writes_by(standin, "maint")) == writes_before
    # One request for the repository and one page of the release listing, with every asset in it.
    assert [(entry.method, entry.path) for entry in standin.request_log[requests_before:]] == [
        ("GET", "/api/v3/repos/maint/registry"),
        ("GET", "/api/v3/repos/maint/registry/releases"),
    ]


def test_mirror_index_keeps_no_image(standin, tmp_path, monkeypatch):
    root = make_index(standin, tmp_path, 30, shards=1)
    seen: list[tuple[str, bool]] = []
    previous: list[weakref.ref] = []
    uploads_of = publishing.uploads_of

    def watched(image):
        # The image passed before was freed: publish keeps a few strings per version, not images.
        seen.append((image.name, bool(previous) and previous[-1]() is not None))
        previous.append(weakref.ref(image))
        return uploads_of(image)

    monkeypatch.setattr(publishing, "uploads_of", watched)
    report = mirror_index(root, github(standin))
    assert seen == [(f"app{number}", False) for number in range(3)]
    assert len(report.uploaded) == 30
    assert files_by_release(standin) == expected_by_release(load_index(root))


def test_shard_releases_created_on_demand(standin, tmp_path):
    index = load_index(make_index(standin, tmp_path, 3, shards=2))
    report = mirror_assets(index, github(standin))
    tags = sorted({index.settings.release_tag(f"alice-app0-1.{minor}.ki") for minor in range(3)})
    assert tags == ["images-27", "images-8c", "images-d3"]
    assert sorted(report.releases_created) == tags
    assert sorted(files_by_release(standin)) == tags


def test_full_release_stops_before_any_write(standin, tmp_path):
    index = load_index(make_index(standin, tmp_path, 6, shards=0))
    standin.limit_assets_per_release(5)
    with pytest.raises(ReleaseFull) as caught:
        mirror_assets(index, github(standin, max_release_assets=5))
    assert str(caught.value) == (
        "release images has 0 assets and 6 more must go in, but GitHub allows at most 5 assets per release; "
        "raise asset_shards in registry.yaml (now 0, at most 4) to spread the files over more releases. "
        "That moves every file to a release with another tag, so the next publish uploads all of them again "
        "and their download URLs change; keep the old releases, so the old URLs still work"
    )
    assert writes_by(standin, "maint") == []
    assert files_by_release(standin) == {}


def test_full_release_counts_existing_assets(standin, tmp_path):
    first = load_index(make_index(standin, tmp_path, 6, shards=0))
    index_path = first.root / "images/alice/app0.yaml"
    text = index_path.read_text()
    kept = text.split('  - version: "1.3"')[0]
    index_path.write_text(kept)
    mirror_assets(load_index(first.root), github(standin, max_release_assets=5))
    index_path.write_text(text)
    writes = len(writes_by(standin, "maint"))

    with pytest.raises(ReleaseFull) as caught:
        mirror_assets(load_index(first.root), github(standin, max_release_assets=5))
    assert str(caught.value).startswith("release images has 3 assets and 3 more must go in, but GitHub allows at most 5 assets per release; ")
    assert len(writes_by(standin, "maint")) == writes


def test_upload_rejected_by_release_cap(standin, tmp_path):
    index = load_index(make_index(standin, tmp_path, 3, shards=0))
    standin.limit_assets_per_release(2)
    with pytest.raises(HostingError) as caught:
        mirror_assets(index, github(standin))
    assert str(caught.value) == (
        "upload of alice-app0-1.2.ki to release images failed (HTTP 422: Validation Failed; A release can have at most 2 assets.)"
    )
    assert sorted(files_by_release(standin)["images"]) == ["alice-app0-1.0.ki", "alice-app0-1.1.ki"]
    assert all(asset.state == "uploaded" for release in standin.repository(UPSTREAM).releases.values() for asset in release.assets.values())


def test_releases_past_listing_cap_read_by_tag(standin, tmp_path):
    index = load_index(make_index(standin, tmp_path, 40, shards=1))
    mirror_assets(index, github(standin))
    tags = sorted(files_by_release(standin))
    # 40 files fill 15 of the 16 releases; no file goes to images-f, so that release is never created.
    assert tags == [f"images-{digit}" for digit in "0123456789abcde"]
    standin.limit_listed_results(5)
    requests_before = len(standin.request_log)

    report = mirror_assets(index, github(standin))
    assert len(report.present) == 40
    assert report.uploaded == []
    new_requests = standin.request_log[requests_before:]
    assert [entry.method for entry in new_requests if entry.method in WRITE_METHODS] == []
    listed = [entry.status for entry in new_requests if entry.path == "/api/v3/repos/maint/registry/releases"]
    assert listed == [200, 422]
    by_tag = [entry.path.rsplit("/", 1)[1] for entry in new_requests if "/releases/tags/" in entry.path]
    # The listing is newest first, and the releases were created in tag order.
    assert by_tag == tags[:10]


@pytest.mark.parametrize("status, hint, sleeps, reasons", [
    (403, "retry-after", [60, 3540], ["(HTTP 403): waiting 60 s (Retry-After)", "(HTTP 403): waiting 3540 s (Retry-After)"]),
    (403, "reset", [61, 3540], ["(HTTP 403): waiting 61 s (x-ratelimit-reset)", "(HTTP 403): waiting 3540 s (x-ratelimit-reset)"]),
    (429, "none", [60, 60, 120, 240, 480, 960, 1920], [
        "(HTTP 429): waiting 60 s (rate-limit response 1 in a row, no wait given)",
        "(HTTP 429): waiting 60 s (rate-limit response 1 in a row, no wait given)",
        "(HTTP 429): waiting 120 s (rate-limit response 2 in a row, no wait given)",
        "(HTTP 429): waiting 240 s (rate-limit response 3 in a row, no wait given)",
        "(HTTP 429): waiting 480 s (rate-limit response 4 in a row, no wait given)",
        "(HTTP 429): waiting 960 s (rate-limit response 5 in a row, no wait given)",
        "(HTTP 429): waiting 1920 s (rate-limit response 6 in a row, no wait given)",
    ]),
])
def test_rate_limits_waited_out(standin, tmp_path, caplog, status, hint, sleeps, reasons):
    index = load_index(make_index(standin, tmp_path, 12, shards=0))
    # GitHub's 80 a minute and 500 an hour, scaled down: 1 release and 12 uploads are 13 writes.
    standin.limit_content_creation(5, 60, status=status, hint=hint)
    standin.limit_content_creation(8, 3600, status=status, hint=hint, add=True)
    clock = SimulatedClock()
    caplog.set_level(logging.INFO, logger="registry_index.ratelimit")

    report = mirror_assets(index, github(standin, clock))
    assert len(report.uploaded) == 12
    assert files_by_release(standin) == expected_by_release(index)
    assert clock.sleeps == sleeps
    waits = [record.getMessage() for record in caplog.records if record.name == "registry_index.ratelimit"]
    assert [message[message.index("(HTTP "):] for message in waits] == reasons
    assert all(message.startswith("GitHub rate limit on POST /api/") for message in waits)
    rejected = [entry.status for entry in standin.request_log if entry.login == "maint" and entry.status in (403, 429)]
    assert len(rejected) == len(sleeps)

    writes = len(writes_by(standin, "maint"))
    again = mirror_assets(index, github(standin, clock))
    assert len(again.present) == 12
    assert len(writes_by(standin, "maint")) == writes
