"""GitHub operations through PyGithub: forks, branches, files, pull requests, release assets.

Every call goes through `GitHub`, so tests point the whole tool at a local
stand-in of the REST API with `--api-url`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from github import Auth, Github, GithubException, UnknownObjectException
from github.GitRelease import GitRelease
from github.GitReleaseAsset import GitReleaseAsset
from github.Repository import Repository

from .errors import RegistryError
from .ratelimit import RateLimitRetry

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.github.com"
DOWNLOAD_TIMEOUT = 60
# GitHub's cap on assets in one release, as users report it; GitHub's REST API docs do not state it.
MAX_RELEASE_ASSETS = 1000
_CHUNK = 1024 * 1024


class HostingError(RegistryError):
    """A GitHub request failed, or a download did not match its index entry."""


class ListingTruncated(HostingError):
    """GitHub stopped a listing at its cap on results; the items before the cap were complete."""


class AssetExists(HostingError):
    """GitHub returned 422: the release already has an asset of that name."""


@dataclass(frozen=True)
class UploadedAsset:
    name: str
    url: str


# PyGithub raises GithubException for HTTP errors, and lets requests' own
# exceptions (timeouts, refused connections) through.
_FAILURES = (GithubException, requests.RequestException)


def _describe(error: Exception) -> str:
    if isinstance(error, GithubException):
        message = error.data.get("message") if isinstance(error.data, dict) else None
        details = [item["message"] for item in _error_items(error) if isinstance(item.get("message"), str)]
        return f"HTTP {error.status}: {'; '.join([message or str(error.data), *details])}"
    return f"{type(error).__name__}: {error}"


def _error_items(error: GithubException) -> list[dict]:
    items = error.data.get("errors") if isinstance(error.data, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _is_already_exists(error: Exception) -> bool:
    """Return whether GitHub rejected an upload because the release has an asset of that name.

    Other 422 responses, such as a full release, must not be taken for a
    retried upload that already arrived.
    """
    if not isinstance(error, GithubException) or error.status != 422:
        return False
    return any(item.get("code") == "already_exists" for item in _error_items(error))


class GitHub:
    """A signed-in GitHub client."""

    def __init__(
        self,
        token: str,
        api_url: str = DEFAULT_API_URL,
        *,
        seconds_between_writes: float = 1.0,
        timeout: int = 30,
        max_release_assets: int = MAX_RELEASE_ASSETS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ):
        """Sign in with `token`; `sleep` and `clock` serve the waits after rate-limit responses."""
        if not token:
            raise HostingError("no GitHub token; set GITHUB_TOKEN or pass --token")
        self.client = Github(
            base_url=api_url.rstrip("/"),
            auth=Auth.Token(token),
            timeout=timeout,
            retry=RateLimitRetry(sleep=sleep, clock=clock, total=6),
            seconds_between_requests=0 if seconds_between_writes == 0 else 0.25,
            seconds_between_writes=seconds_between_writes,
            # The most GitHub sends per page, so listing 4,096 releases takes 41 requests.
            per_page=100,
        )
        self.token = token
        self.max_release_assets = max_release_assets
        self._login: str | None = None

    def login(self) -> str:
        if self._login is None:
            try:
                self._login = self.client.get_user().login
            except _FAILURES as error:
                raise HostingError(f"cannot read the signed-in GitHub user ({_describe(error)}); check the token") from None
        return self._login

    def repository(self, full_name: str) -> Repository:
        try:
            return self.client.get_repo(full_name)
        except _FAILURES as error:
            raise HostingError(f"cannot open repository {full_name} ({_describe(error)})") from None

    def fork(self, upstream: Repository) -> Repository:
        """Return the signed-in user's fork of `upstream`, creating it when missing."""
        try:
            return upstream.create_fork()
        except _FAILURES as error:
            raise HostingError(f"cannot fork {upstream.full_name} ({_describe(error)})") from None

    def propose(self, upstream: Repository, branch: str, files: dict[str, str], title: str, body: str) -> str:
        """Commit `files` to a new branch of the user's fork and open a pull request; return its URL."""
        fork = self.fork(upstream)
        base_sha = upstream.get_branch(upstream.default_branch).commit.sha
        try:
            fork.create_git_ref(ref=f"refs/heads/{branch}", sha=base_sha)
        except _FAILURES as error:
            raise HostingError(f"cannot create branch {branch} in {fork.full_name} ({_describe(error)}); delete the branch if it is left from an earlier try") from None
        try:
            for path, content in sorted(files.items()):
                try:
                    existing = fork.get_contents(path, ref=branch)
                    fork.update_file(path, title, content, existing.sha, branch=branch)
                except UnknownObjectException:
                    fork.create_file(path, title, content, branch=branch)
            pull = upstream.create_pull(title=title, body=body, head=f"{self.login()}:{branch}", base=upstream.default_branch)
        except _FAILURES as error:
            raise HostingError(f"cannot open the pull request from {fork.full_name}:{branch} ({_describe(error)})") from None
        log.info("opened %s", pull.html_url)
        return pull.html_url

    def release(self, repository: Repository, tag: str) -> GitRelease:
        """Return the release `tag` of `repository`, creating it when missing."""
        try:
            return repository.get_release(tag)
        except UnknownObjectException:
            pass
        except _FAILURES as error:
            raise HostingError(f"cannot read release {tag} of {repository.full_name} ({_describe(error)})") from None
        return self.create_release(repository, tag)

    def releases(self, repository: Repository) -> Iterator[GitRelease]:
        """Yield the published releases of `repository`, newest first, each with its assets.

        GitHub lists only the first 1,000 releases and answers the page after
        them with 422 "Only the first 1000 results are available."; then this
        raises ListingTruncated after the last release it could list.
        """
        try:
            for release in repository.get_releases():
                # A draft's download URLs do not work yet, and get_release(tag) does not find it.
                if not release.draft:
                    yield release
        except GithubException as error:
            if error.status == 422:
                raise ListingTruncated(f"GitHub listed only part of the releases of {repository.full_name} ({_describe(error)})") from None
            raise HostingError(f"cannot list the releases of {repository.full_name} ({_describe(error)})") from None
        except _FAILURES as error:
            raise HostingError(f"cannot list the releases of {repository.full_name} ({_describe(error)})") from None

    def find_release(self, repository: Repository, tag: str) -> GitRelease | None:
        """Return the published release `tag` with its assets, or None when there is none."""
        try:
            return repository.get_release(tag)
        except UnknownObjectException:
            return None
        except _FAILURES as error:
            raise HostingError(f"cannot read release {tag} of {repository.full_name} ({_describe(error)})") from None

    def create_release(self, repository: Repository, tag: str) -> GitRelease:
        """Create the release `tag`; return the existing one when another run created it first."""
        try:
            log.info("creating release %s in %s", tag, repository.full_name)
            return repository.create_git_release(tag, tag, "Kindo image files published by registry-index.")
        except GithubException as error:
            if error.status == 422:
                # Another run created it since we looked.
                try:
                    return repository.get_release(tag)
                except _FAILURES:
                    pass
            raise HostingError(f"cannot create release {tag} in {repository.full_name} ({_describe(error)})") from None
        except _FAILURES as error:
            raise HostingError(f"cannot create release {tag} in {repository.full_name} ({_describe(error)})") from None

    def assets(self, release: GitRelease) -> dict[str, GitReleaseAsset]:
        try:
            return {asset.name: asset for asset in release.get_assets()}
        except _FAILURES as error:
            raise HostingError(f"cannot list the assets of release {release.tag_name} ({_describe(error)})") from None

    def upload(self, release: GitRelease, path: Path, name: str) -> UploadedAsset:
        """Upload `path` as asset `name`; return the name GitHub gave it and its download URL."""
        try:
            asset = release.upload_asset(str(path), name=name, content_type="application/octet-stream")
        except _FAILURES as error:
            if _is_already_exists(error):
                raise AssetExists(f"release {release.tag_name} already has an asset named {name}") from None
            raise HostingError(f"upload of {name} to release {release.tag_name} failed ({_describe(error)})") from None
        if asset.name != name:
            log.info("GitHub renamed asset %s to %s", name, asset.name)
        return UploadedAsset(asset.name, asset.browser_download_url)

    def delete(self, asset: GitReleaseAsset) -> None:
        try:
            asset.delete_asset()
        except _FAILURES as error:
            raise HostingError(f"cannot delete asset {asset.name} ({_describe(error)})") from None


def download(url: str, max_bytes: int, folder: Path) -> tuple[Path, int, str]:
    """Download `url` into a new file in `folder`, reading at most `max_bytes`.

    Return (path, size, sha256). Raise HostingError for a non-HTTP URL, an HTTP
    error, or a body larger than `max_bytes`; the partial file is removed.
    """
    if not url.startswith(("http://", "https://")):
        raise HostingError(f"download URL {url!r} is not http or https")
    handle, name = tempfile.mkstemp(prefix=".download-", suffix=".ki", dir=folder)
    path = Path(name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(handle, "wb") as stream, requests.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT) as response:
            if response.status_code != 200:
                raise HostingError(f"download of {url} failed: HTTP {response.status_code}")
            for chunk in response.iter_content(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise HostingError(f"download of {url} is larger than {max_bytes} bytes; stopped")
                digest.update(chunk)
                stream.write(chunk)
    except requests.RequestException as error:
        path.unlink(missing_ok=True)
        raise HostingError(f"download of {url} failed: {error}") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, size, digest.hexdigest()
