"""Contributor commands that open pull requests: register an account, push an image."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import replace
from pathlib import Path

from github import GithubException, UnknownObjectException

from . import extraction, names
from .accounts import account_path, new_account, render_account_yaml
from .archive import read_image
from .editing import new_version, now_utc, protect, render_image_yaml
from .errors import RegistryError
from .hosting import GitHub, HostingError
from .index import Index, display_path, image_path
from .model import Account

log = logging.getLogger(__name__)

# Release of the contributor's fork that holds pushed files until publish copies them.
UPLOAD_RELEASE = "registry-index-uploads"


def _upstream_file(upstream, path: str) -> bytes | None:
    try:
        return upstream.get_contents(path).decoded_content
    except UnknownObjectException:
        return None
    except GithubException as error:
        raise HostingError(f"cannot read {path} from {upstream.full_name} (HTTP {error.status})") from None


def register(index: Index, github: GitHub, username: str, password: str) -> tuple[Account, str]:
    """Open a pull request that adds account `username`; return the account and the pull request URL."""
    account = new_account(username, password, github.login(), now_utc(), index)
    upstream = github.repository(index.settings.repository)
    path = account_path(username)
    if _upstream_file(upstream, path) is not None:
        raise RegistryError(f"username {username!r} is taken in {upstream.full_name}; choose another")
    url = github.propose(
        upstream,
        branch=f"register-{names.path_part(username)}",
        files={path: render_account_yaml(account)},
        title=f"Register account {username}",
        body=f"Registers the kindo account `{username}`, owned by GitHub user `{account.github}`.",
    )
    return account, url


def push(index: Index, github: GitHub, ki_path: Path | str, code: str | None = None) -> tuple[dict, str]:
    """Upload a .ki to the contributor's fork and open a pull request adding its entry.

    With `code`, the uploaded file is encrypted and the version is private.
    Return the API document's push response and the pull request URL.
    """
    if code is not None:
        extraction.check_code(code)
    kindo_image = read_image(ki_path)
    manifest = kindo_image.manifest
    login = github.login()
    account = index.account(manifest.author)
    if account is None:
        raise RegistryError(f"author {manifest.author!r} has no account in this registry; run `registry-index register {manifest.author}` and wait for its pull request to be merged")
    if account.github.lower() != login.lower():
        raise RegistryError(f"author namespace {account.username!r} belongs to GitHub user {account.github!r}, not {login!r}; push images under your own author")
    image, version = new_version(index, kindo_image, pusher=account.username)
    if code is not None and names.identity(version.version) == names.LATEST:
        raise RegistryError(f"{kindo_image.path}: a version named 'latest' cannot be private; build the image with a version number")

    upstream = github.repository(index.settings.repository)
    yaml_path = image_path(index.root, image.author, image.name)
    repository_path = "index/" + str(yaml_path.relative_to(index.root))
    local = yaml_path.read_bytes() if yaml_path.exists() else None
    if _upstream_file(upstream, repository_path) != local:
        raise RegistryError(f"{display_path(index.root, yaml_path)} differs from {upstream.full_name}; update your clone (git pull) and push again")

    fork = github.fork(upstream)
    release = github.release(fork, UPLOAD_RELEASE)
    with tempfile.TemporaryDirectory(prefix="registry-index-push-") as scratch:
        upload_path = kindo_image.path
        if code is not None:
            version, upload_path = protect(image, version, kindo_image, code, Path(scratch))
        existing = github.assets(release).get(version.file)
        if existing is not None:
            log.info("replacing %s from an earlier push in %s", version.file, fork.full_name)
            github.delete(existing)
        uploaded = github.upload(release, upload_path, version.file)
    version = replace(version, file=uploaded.name, source=uploaded.url)
    image.versions[-1] = version

    unique = names.unique_name(image.author, image.name, version.version)
    url = github.propose(
        upstream,
        branch=f"push-{names.path_part(image.author)}-{names.path_part(image.name)}-{names.path_part(version.version)}",
        files={repository_path: render_image_yaml(image)},
        title=f"Push {unique}",
        body=f"Adds `{unique}` ({version.size} bytes, sha256 `{version.sha256}`), uploaded to {uploaded.url}.",
    )
    return {"author": image.author, "version": version.version, "name": image.name}, url
