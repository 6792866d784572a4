"""Publishing after merge: copy each new .ki file into the registry's own release.

`publish` is safe to run again after any failure: a file already in the
release with the same bytes is left alone, a half-uploaded asset is removed and
uploaded again, and an asset with the same name but other bytes stops the run,
because a published version must never change.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import requests

from . import names
from .hosting import AssetExists, GitHub, HostingError, download
from .index import Index
from .model import Image, Version
from .model import MAX_ASSET_BYTES

log = logging.getLogger(__name__)


@dataclass
class PublishReport:
    uploaded: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    replaced_partial: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)


def _asset_sha256(github: GitHub, asset) -> str:
    """Return the sha256 of a release asset: from GitHub's `digest` when it has one, else by downloading it."""
    digest = getattr(asset, "digest", None)
    if isinstance(digest, str) and digest.startswith("sha256:"):
        return digest.removeprefix("sha256:")
    sha = hashlib.sha256()
    with requests.get(asset.browser_download_url, stream=True, timeout=60) as response:
        if response.status_code != 200:
            raise HostingError(f"download of asset {asset.name} failed: HTTP {response.status_code}")
        for chunk in response.iter_content(1024 * 1024):
            sha.update(chunk)
    return sha.hexdigest()


def _check_present(github: GitHub, release, asset, version: Version, unique: str) -> None:
    if asset.size != version.size or _asset_sha256(github, asset) != version.sha256:
        raise HostingError(
            f"release {release.tag_name} already has an asset {version.file} with other bytes than {unique} "
            f"(sha256 {version.sha256}); published files are never overwritten, so a maintainer must investigate"
        )


def _mirror(github: GitHub, release, assets: dict, image: Image, version: Version, scratch: Path, report: PublishReport) -> None:
    unique = names.unique_name(image.author, image.name, version.version)
    asset = assets.get(version.file)
    if asset is not None and asset.state == "uploaded":
        _check_present(github, release, asset, version, unique)
        report.present.append(unique)
        return
    if asset is not None:
        log.warning("removing half-uploaded asset %s (state %s) before uploading it again", asset.name, asset.state)
        github.delete(asset)
        report.replaced_partial.append(unique)
    source = version.source or version.url
    if not source:
        raise HostingError(f"{unique} has no source URL and is not in release {release.tag_name}; push it again")
    path, size, sha256 = download(source, min(version.size + 1, MAX_ASSET_BYTES), scratch)
    try:
        if (size, sha256) != (version.size, version.sha256):
            raise HostingError(f"{unique}: the file at {source} has size {size} and sha256 {sha256}, but the index lists {version.size} and {version.sha256}; push the version again")
        try:
            uploaded = github.upload(release, path, version.file)
        except AssetExists:
            # A retried upload whose first try reached GitHub: look at what it left.
            asset = github.assets(release).get(version.file)
            if asset is not None and asset.state == "uploaded":
                _check_present(github, release, asset, version, unique)
                report.uploaded.append(unique)
                return
            if asset is not None:
                log.warning("removing half-uploaded asset %s left by a failed try", asset.name)
                github.delete(asset)
                report.replaced_partial.append(unique)
            try:
                uploaded = github.upload(release, path, version.file)
            except AssetExists:
                raise HostingError(f"upload of {version.file} to release {release.tag_name} failed twice and left a half-uploaded asset; run publish again") from None
        if uploaded.name != version.file:
            raise HostingError(f"{unique}: GitHub stored asset {version.file} as {uploaded.name}; rename the file in the index to a name of letters, digits, '.', '-' and '_'")
    finally:
        path.unlink(missing_ok=True)
    log.info("uploaded %s as %s", unique, version.file)
    report.uploaded.append(unique)


def mirror_assets(index: Index, github: GitHub) -> PublishReport:
    """Make sure every version's file is in the registry's own release; raise HostingError on the first conflict."""
    repository = github.repository(index.settings.repository)
    release = github.release(repository, index.settings.asset_release)
    assets = github.assets(release)
    report = PublishReport()
    with tempfile.TemporaryDirectory(prefix="registry-index-publish-") as scratch:
        for image in index.sorted_images():
            for version in image.versions:
                if version.url:
                    report.external.append(names.unique_name(image.author, image.name, version.version))
                    continue
                _mirror(github, release, assets, image, version, Path(scratch), report)
    return report
