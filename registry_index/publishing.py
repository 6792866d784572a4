"""Publishing after merge: copy each new .ki file into the registry's own releases.

Each file goes to the release that `Settings.release_tag` names, which the
build uses for download URLs too. `publish` is safe to run again after any
failure: a file already in its release with the same bytes is left alone, a
half-uploaded asset is removed and uploaded again, and an asset with the same
name but other bytes stops the run, because a published version must never
change. A run stopped by a timeout goes on where it stopped when run again.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import requests
from github.GitRelease import GitRelease
from github.GitReleaseAsset import GitReleaseAsset
from github.Repository import Repository

from . import names
from .hosting import AssetExists, GitHub, HostingError, ListingTruncated, download
from .index import SETTINGS_FILE, Index, check_index
from .model import MAX_ASSET_BYTES, MAX_ASSET_SHARDS, Image, Settings
from .progress import Progress

log = logging.getLogger(__name__)


class ReleaseFull(HostingError):
    """A release would hold more assets than GitHub allows."""


@dataclass
class PublishReport:
    uploaded: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    replaced_partial: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    releases_created: list[str] = field(default_factory=list)


class Upload(NamedTuple):
    """One version as publish handles it: a few strings instead of the image, so that 1,000,000 of them fit in memory."""

    unique_name: str
    file: str
    size: int
    sha256: str
    source: str
    hosted_elsewhere: bool  # the version has its own url, so no release contains its file


def uploads_of(image: Image) -> list[Upload]:
    """Return the versions of `image` as publish handles them."""
    return [
        Upload(names.unique_name(image.author, image.name, version.version), version.file, version.size, version.sha256, version.source, bool(version.url))
        for version in image.versions
    ]


@dataclass
class _ReleaseWork:
    """One release of the registry: the versions that belong in it and those still to upload."""

    tag: str
    versions: list[Upload] = field(default_factory=list)
    pending: list[Upload] = field(default_factory=list)
    # Set once GitHub has been asked; `release` stays None when the release does not exist yet.
    checked: bool = False
    release: GitRelease | None = None
    asset_count: int = 0
    # Assets by name, kept only for releases with pending uploads.
    assets: dict[str, GitReleaseAsset] = field(default_factory=dict)


def _asset_sha256(asset) -> str:
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


def _check_present(tag: str, asset, upload: Upload) -> None:
    if asset.size != upload.size or _asset_sha256(asset) != upload.sha256:
        raise HostingError(
            f"release {tag} already has an asset {upload.file} with other bytes than {upload.unique_name} "
            f"(sha256 {upload.sha256}); published files are never overwritten, so a maintainer must investigate"
        )


def mirror_index(root: Path, github: GitHub, progress: Progress | None = None) -> PublishReport:
    """Validate the index at `root` and make sure every version's file is in its release; see `mirror_uploads`.

    The index is read one image at a time and only a few strings per version
    are kept, because the loaded index takes more than a gigabyte at 100,000 images.
    """
    uploads: list[Upload] = []
    totals = check_index(root, lambda image: uploads.extend(uploads_of(image)))
    return mirror_uploads(totals.settings, uploads, github, progress)


def mirror_assets(index: Index, github: GitHub, progress: Progress | None = None) -> PublishReport:
    """Make sure every version's file of a loaded index is in its release; see `mirror_uploads`."""
    return mirror_uploads(index.settings, [upload for image in index.sorted_images() for upload in uploads_of(image)], github, progress)


def mirror_uploads(settings: Settings, uploads: Iterable[Upload], github: GitHub, progress: Progress | None = None) -> PublishReport:
    """Make sure the file of every upload is in its release; raise HostingError on the first conflict.

    Nothing is written to GitHub before every release is known to have room
    for its new files, so a full release stops the run with nothing changed.
    """
    progress = progress or Progress(enabled=False)
    report = PublishReport()
    work = _plan(settings, uploads, report)
    repository = github.repository(settings.repository)

    progress.stage("listing releases")
    _read_releases(github, repository, work, report, progress)

    _check_room(settings, work, github.max_release_assets)

    progress.stage("uploading", total=sum(len(entry.pending) for entry in work.values()))
    with tempfile.TemporaryDirectory(prefix="registry-index-publish-") as scratch:
        for tag in sorted(work):
            entry = work[tag]
            if not entry.pending:
                continue
            if entry.release is None:
                # Created only now that a file must go in, because creating a release is rate-limited too.
                entry.release = github.create_release(repository, tag)
                report.releases_created.append(tag)
            for upload in entry.pending:
                _mirror(github, entry, upload, Path(scratch), report)
                progress.advance()
    return report


def _plan(settings: Settings, uploads: Iterable[Upload], report: PublishReport) -> dict[str, _ReleaseWork]:
    """Group the versions hosted in the registry's releases by release tag."""
    work: dict[str, _ReleaseWork] = {}
    for upload in uploads:
        if upload.hosted_elsewhere:
            report.external.append(upload.unique_name)
            continue
        tag = settings.release_tag(upload.file)
        work.setdefault(tag, _ReleaseWork(tag)).versions.append(upload)
    return work


def _read_releases(github: GitHub, repository: Repository, work: dict[str, _ReleaseWork], report: PublishReport, progress: Progress) -> None:
    """Learn what each release in `work` holds, with as few requests as GitHub allows.

    One listing of the releases, 100 a page, carries every release's assets
    in its JSON, so up to 1,000 releases (asset_shards 0 to 2) cost at most
    10 requests, however many assets they hold and however few versions are
    new. GitHub lists no more than 1,000 releases, so with more of them the
    releases it left out are read one request each by tag. Reads count
    against GitHub's primary rate limit only, not the content-creation limit.
    """
    try:
        for release in github.releases(repository):
            entry = work.get(release.tag_name)
            if entry is not None and not entry.checked:
                _compare(entry, release, report)
            progress.advance()
    except ListingTruncated as truncated:
        log.info("%s; reading the other releases one by one", truncated)
        # NOTE: with asset_shards 3 or more this costs a request per unlisted
        # release on every publish (about 3,100 at asset_shards 3), even when few versions are new.
        for tag in sorted(work):
            if not work[tag].checked:
                release = github.find_release(repository, tag)
                if release is not None:
                    _compare(work[tag], release, report)
                progress.advance()
    for entry in work.values():
        if not entry.checked:
            entry.checked = True
            entry.pending = list(entry.versions)


def _compare(entry: _ReleaseWork, release: GitRelease, report: PublishReport) -> None:
    """Sort the versions of `entry` into present ones and pending ones, from the assets of `release`."""
    assets = {asset.name: asset for asset in release.assets}
    entry.checked = True
    entry.asset_count = len(assets)
    for upload in entry.versions:
        asset = assets.get(upload.file)
        if asset is not None and asset.state == "uploaded":
            _check_present(release.tag_name, asset, upload)
            report.present.append(upload.unique_name)
        else:
            entry.pending.append(upload)
    if entry.pending:
        entry.release = release
        entry.assets = {upload.file: assets[upload.file] for upload in entry.pending if upload.file in assets}


def _check_room(settings: Settings, work: dict[str, _ReleaseWork], limit: int) -> None:
    """Raise ReleaseFull when a release cannot take its new files; a half-uploaded asset is replaced, so it takes no room."""
    for tag in sorted(work):
        entry = work[tag]
        new = sum(1 for upload in entry.pending if upload.file not in entry.assets)
        if new == 0 or entry.asset_count + new <= limit:
            continue
        if settings.asset_shards < MAX_ASSET_SHARDS:
            fix = (
                f"raise asset_shards in {SETTINGS_FILE} (now {settings.asset_shards}, at most {MAX_ASSET_SHARDS}) "
                "to spread the files over more releases. That moves every file to a release with another tag, "
                "so the next publish uploads all of them again and their download URLs change; "
                "keep the old releases, so the old URLs still work"
            )
        else:
            fix = f"asset_shards is at its maximum {MAX_ASSET_SHARDS}, so give some versions their own url"
        raise ReleaseFull(
            f"release {tag} has {entry.asset_count} assets and {new} more must go in, "
            f"but GitHub allows at most {limit} assets per release; {fix}"
        )


def _mirror(github: GitHub, entry: _ReleaseWork, upload: Upload, scratch: Path, report: PublishReport) -> None:
    unique = upload.unique_name
    release = entry.release
    asset = entry.assets.get(upload.file)
    if asset is not None and asset.state == "uploaded":
        # Another publish run uploaded it since the listing; entry.assets was read again after AssetExists.
        _check_present(entry.tag, asset, upload)
        report.present.append(unique)
        return
    if asset is not None:
        log.warning("removing half-uploaded asset %s (state %s) before uploading it again", asset.name, asset.state)
        github.delete(asset)
        report.replaced_partial.append(unique)
    source = upload.source
    if not source:
        raise HostingError(f"{unique} has no source URL and is not in release {entry.tag}; push it again")
    path, size, sha256 = download(source, min(upload.size + 1, MAX_ASSET_BYTES), scratch)
    try:
        if (size, sha256) != (upload.size, upload.sha256):
            raise HostingError(f"{unique}: the file at {source} has size {size} and sha256 {sha256}, but the index lists {upload.size} and {upload.sha256}; push the version again")
        try:
            uploaded = github.upload(release, path, upload.file)
        except AssetExists:
            # A retried upload whose first try reached GitHub, or another publish run: look at what it left.
            entry.assets = github.assets(release)
            asset = entry.assets.get(upload.file)
            if asset is not None and asset.state == "uploaded":
                _check_present(entry.tag, asset, upload)
                report.uploaded.append(unique)
                return
            if asset is not None:
                log.warning("removing half-uploaded asset %s left by a failed try", asset.name)
                github.delete(asset)
                report.replaced_partial.append(unique)
            try:
                uploaded = github.upload(release, path, upload.file)
            except AssetExists:
                raise HostingError(f"upload of {upload.file} to release {entry.tag} failed twice and left a half-uploaded asset; run publish again") from None
        if uploaded.name != upload.file:
            raise HostingError(f"{unique}: GitHub stored asset {upload.file} as {uploaded.name}; rename the file in the index to a name of letters, digits, '.', '-' and '_'")
    finally:
        path.unlink(missing_ok=True)
    log.info("uploaded %s as %s to release %s", unique, upload.file, entry.tag)
    report.uploaded.append(unique)
