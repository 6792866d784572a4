"""Local stand-in of the GitHub REST API, so tests can drive PyGithub and plain HTTP downloads offline.

The stand-in serves real HTTP on 127.0.0.1 from a background thread and keeps all state in memory:
users and their tokens, repositories with branches, files and commits, forks, pull requests, releases
and release assets. Its URLs follow the GitHub Enterprise Server layout, so PyGithub needs no changes:

* REST API: ``http://127.0.0.1:PORT/api/v3`` (pass it as ``Github(base_url=...)``)
* asset uploads: ``http://127.0.0.1:PORT/api/uploads/...`` (returned as the release ``upload_url``)
* web and download URLs: ``http://127.0.0.1:PORT/{owner}/{repo}/...``

Typical use in a pytest fixture::

    with GitHubStandIn() as standin:
        standin.add_user("kindo")
        standin.create_repository("kindo/registry", files={"index/README.md": "hello"})
        gh = standin.client("kindo")
        ...

The stand-in also reproduces GitHub behaviour that clients must cope with. It renames uploaded asset
names and rejects duplicate asset names with ``422``. It can cap assets per release, cap a listing of
releases at its first results, and apply secondary rate limits on content creation (``403`` or ``429``
with ``Retry-After``, ``x-ratelimit-reset`` or no hint). Injected faults give ``502``,
requests that hang past the client timeout, and asset uploads that leave a partial asset.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
import itertools
import json
import logging
import math
import re
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from github import Auth, Github

# Per-request events log at DEBUG, so they stay out of the output of code under test that logs to stderr.
log = logging.getLogger(__name__)

API_PREFIX = "/api/v3"
UPLOADS_PREFIX = "/api/uploads"
DOCUMENTATION_URL = "https://docs.github.com/rest"

FAULT_KINDS = ("502", "timeout", "truncate_upload")
# Upper bound for a "timeout" fault, so a misconfigured test cannot hang a server thread for long.
MAX_HOLD_SECONDS = 30.0

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# GitHub's secondary rate limit wording, which PyGithub recognises so it raises RateLimitExceededException.
SECONDARY_RATE_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)

_ASSET_NAME_DISALLOWED = re.compile(r"[^A-Za-z0-9._-]")


def rename_asset(name: str) -> str:
    """Return the name GitHub gives a release asset uploaded as ``name``.

    GitHub documents only that it "renames asset filenames that have special characters,
    non-alphanumeric characters, and leading or trailing periods" (REST API docs, "Upload a release
    asset"). Users report these concrete cases, which the stand-in reproduces: each character other
    than an ASCII letter, digit, ``.``, ``-`` or ``_`` becomes ``.`` one for one
    (``app-(15-5).apk`` becomes ``app-.15-5..apk``), and a leading period gets ``default`` in front
    (``.config`` becomes ``default.config``).
    """
    renamed = _ASSET_NAME_DISALLOWED.sub(".", name)
    if renamed.startswith("."):
        renamed = "default" + renamed
    # NOTE: GitHub does not say what happens to trailing periods. The stand-in assumes it strips them.
    return renamed.rstrip(".")


def blob_sha(data: bytes) -> str:
    """Return the git blob SHA-1 of ``data``, which GitHub reports as a file's ``sha``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


# ---------------------------------------------------------------------------------------------
# Stored objects
# ---------------------------------------------------------------------------------------------


@dataclass
class User:
    """A GitHub account. Organizations are modelled as users, which is enough to own repositories."""

    login: str
    id: int
    token: str

    @property
    def email(self) -> str:
        return f"{self.id}+{self.login}@users.noreply.github.com"


@dataclass
class Commit:
    """A commit with its whole tree as a map from file path to blob SHA."""

    sha: str
    tree: dict[str, str]
    parents: tuple[str, ...]
    message: str
    author_login: str
    author_name: str
    author_email: str
    date: datetime
    sequence: int


@dataclass(eq=False)
class PullRequest:
    """A pull request from ``head``:``head_ref`` into ``base``:``base_ref``."""

    id: int
    number: int
    base: Repository = field(repr=False)
    base_ref: str
    head: Repository = field(repr=False)
    head_ref: str
    head_sha: str
    user: str
    title: str
    body: str | None
    draft: bool
    created_at: datetime
    updated_at: datetime
    state: str = "open"
    closed_at: datetime | None = None
    merged_at: datetime | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None

    @property
    def merged(self) -> bool:
        return self.merged_at is not None


@dataclass
class ReleaseAsset:
    """A file attached to a release. ``state`` is ``"uploaded"``, or ``"starter"`` after a failed upload."""

    id: int
    name: str
    label: str
    content_type: str
    data: bytes = field(repr=False)
    state: str
    uploader: str
    created_at: datetime
    updated_at: datetime
    download_count: int = 0

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Release:
    """A release and its assets, keyed by asset id in upload order."""

    id: int
    tag_name: str
    target_commitish: str
    name: str | None
    body: str | None
    draft: bool
    prerelease: bool
    author: str
    created_at: datetime
    published_at: datetime | None
    assets: dict[int, ReleaseAsset] = field(default_factory=dict)

    @property
    def download_tag(self) -> str:
        """Tag segment of download URLs. GitHub uses ``untagged-...`` until a draft is published."""
        if self.draft:
            return f"untagged-{hashlib.sha1(str(self.id).encode()).hexdigest()[:20]}"
        return self.tag_name


@dataclass(eq=False)
class Repository:
    """A repository. ``refs`` maps full ref names (``refs/heads/main``) to commit SHAs."""

    id: int
    owner: str
    name: str
    default_branch: str
    created_at: datetime
    parent: Repository | None = field(default=None, repr=False)
    refs: dict[str, str] = field(default_factory=dict)
    collaborators: set[str] = field(default_factory=set)
    pulls: dict[int, PullRequest] = field(default_factory=dict, repr=False)
    releases: dict[int, Release] = field(default_factory=dict, repr=False)
    next_number: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def source(self) -> Repository:
        """Root of the fork network this repository belongs to."""
        root = self
        while root.parent is not None:
            root = root.parent
        return root

    @property
    def branches(self) -> dict[str, str]:
        return {ref.removeprefix("refs/heads/"): sha for ref, sha in self.refs.items() if ref.startswith("refs/heads/")}

    def can_push(self, login: str | None) -> bool:
        return login is not None and (login == self.owner or login in self.collaborators)


@dataclass
class Fault:
    """An injected failure for requests whose method and path match (see GitHubStandIn.inject_fault)."""

    method: str
    path_pattern: re.Pattern[str]
    kind: str
    remaining: int | None
    hold_seconds: float
    skip: int = 0
    hits: int = 0


@dataclass
class RecordedRequest:
    """One request the stand-in received. ``status`` is None when the connection was dropped."""

    method: str
    path: str
    query: dict[str, str]
    login: str | None
    status: int | None


class ApiError(Exception):
    """An error response in GitHub's JSON shape."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message": self.message,
            "documentation_url": DOCUMENTATION_URL,
            "status": str(self.status),
        }
        if self.errors:
            body["errors"] = self.errors
        return body


def _validation_failed(resource: str, field_name: str | None, code: str, message: str | None = None) -> ApiError:
    error = {"resource": resource, "code": code}
    if field_name is not None:
        error["field"] = field_name
    if message is not None:
        error["message"] = message
    return ApiError(422, "Validation Failed", errors=[error])


# ---------------------------------------------------------------------------------------------
# Git objects
# ---------------------------------------------------------------------------------------------


class ObjectStore:
    """Blobs and commits of all repositories, shared the way GitHub shares objects across a fork network."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.commits: dict[str, Commit] = {}
        self._sequence = itertools.count(1)

    def store_blob(self, data: bytes) -> str:
        sha = blob_sha(data)
        self.blobs[sha] = data
        return sha

    def create_commit(
        self,
        tree: dict[str, str],
        parents: tuple[str, ...],
        message: str,
        author_login: str,
        author_name: str,
        author_email: str,
    ) -> Commit:
        """Store a commit. The SHA covers a sequence number, so identical commits still get distinct SHAs."""
        sequence = next(self._sequence)
        header = f"tree {self.tree_sha(tree)}\n"
        header += "".join(f"parent {parent}\n" for parent in parents)
        header += f"author {author_name} <{author_email}> {sequence}\n\n{message}"
        sha = hashlib.sha1(header.encode()).hexdigest()
        commit = Commit(sha, dict(tree), parents, message, author_login, author_name, author_email, _now(), sequence)
        self.commits[sha] = commit
        return commit

    @staticmethod
    def tree_sha(tree: Mapping[str, str]) -> str:
        """Return a stable SHA-1 for a tree. It is not git's tree hash, which needs nested tree objects."""
        listing = "".join(f"{path}\0{sha}\n" for path, sha in sorted(tree.items()))
        return hashlib.sha1(listing.encode()).hexdigest()

    def ancestors(self, sha: str) -> set[str]:
        """Return ``sha`` and every commit reachable from it."""
        seen = {sha}
        pending = [sha]
        while pending:
            for parent in self.commits[pending.pop()].parents:
                if parent not in seen:
                    seen.add(parent)
                    pending.append(parent)
        return seen

    def merge_base(self, first: str, second: str) -> str | None:
        """Return the nearest commit reachable from both SHAs, searching breadth-first from ``second``."""
        reachable_from_first = self.ancestors(first)
        seen = {second}
        queue = deque([second])
        while queue:
            sha = queue.popleft()
            if sha in reachable_from_first:
                return sha
            for parent in self.commits[sha].parents:
                if parent not in seen:
                    seen.add(parent)
                    queue.append(parent)
        return None

    def history(self, sha: str) -> list[Commit]:
        """Return every commit reachable from ``sha``, newest first."""
        return sorted((self.commits[each] for each in self.ancestors(sha)), key=lambda commit: -commit.sequence)

    def tree(self, sha: str | None) -> dict[str, str]:
        return self.commits[sha].tree if sha else {}

    def merge(self, ours: str, theirs: str) -> tuple[dict[str, str], list[str]]:
        """Return the tree from merging commit ``theirs`` into ``ours``, and the conflicting paths."""
        merge_base = self.merge_base(ours, theirs)
        return _merge_trees(self.tree(merge_base), self.tree(ours), self.tree(theirs))


def _diff_trees(old: Mapping[str, str], new: Mapping[str, str]) -> list[tuple[str, str, str | None, str | None]]:
    """Return ``(path, status, old_blob, new_blob)`` for each changed path, sorted by path."""
    changes = []
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path), new.get(path)
        if before == after:
            continue
        if before is None:
            status = "added"
        elif after is None:
            status = "removed"
        else:
            status = "modified"
        changes.append((path, status, before, after))
    return changes


def _merge_trees(
    base: Mapping[str, str], ours: Mapping[str, str], theirs: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """Apply the changes from ``base`` to ``theirs`` onto ``ours``, file by file.

    Returns the merged tree and the paths that both sides changed differently (conflicts).
    """
    merged = dict(ours)
    conflicts = []
    for path in set(base) | set(theirs):
        original, our_blob, their_blob = base.get(path), ours.get(path), theirs.get(path)
        if their_blob == original or our_blob == their_blob:
            continue
        if our_blob != original:
            conflicts.append(path)
        elif their_blob is None:
            del merged[path]
        else:
            merged[path] = their_blob
    return merged, sorted(conflicts)


def _line_changes(old: bytes | None, new: bytes | None) -> tuple[int, int, str | None]:
    """Return additions, deletions and a unified diff patch. Binary files count as zero, with no patch."""
    try:
        old_lines = (old or b"").decode("utf-8").splitlines()
        new_lines = (new or b"").decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return 0, 0, None
    diff = list(difflib.unified_diff(old_lines, new_lines, lineterm="", n=3))[2:]
    additions = sum(1 for line in diff if line.startswith("+"))
    deletions = sum(1 for line in diff if line.startswith("-"))
    return additions, deletions, "\n".join(diff)


# ---------------------------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------------------------


class ContentRateLimit:
    """Sliding-window limit on content-creating requests per user, like GitHub's secondary rate limit."""

    def __init__(self, max_requests: int, window_seconds: float):
        self.max_requests = max_requests
        self.window_seconds = window_seconds
        self._events: dict[str | None, deque[float]] = {}

    def wait(self, login: str | None, now: float) -> int | None:
        """Return the whole seconds until the user may send another request, or None if it may now."""
        events = self._events.setdefault(login, deque())
        while events and events[0] <= now - self.window_seconds:
            events.popleft()
        if len(events) >= self.max_requests:
            return max(1, math.ceil(events[0] + self.window_seconds - now))
        return None

    def record(self, login: str | None, now: float) -> None:
        self._events.setdefault(login, deque()).append(now)

    def acquire(self, login: str | None, now: float) -> int | None:
        """Record a request and return None, or return the seconds to wait if the user is over the limit."""
        seconds = self.wait(login, now)
        if seconds is None:
            self.record(login, now)
        return seconds


# ---------------------------------------------------------------------------------------------
# The stand-in
# ---------------------------------------------------------------------------------------------


class GitHubStandIn:
    """In-memory GitHub served over HTTP on 127.0.0.1, for tests.

    Start it with ``start()`` or a ``with`` block, create users and repositories with ``add_user`` and
    ``create_repository``, then talk to ``api_url`` as a user with ``client(login)``. All stored objects
    (``users``, ``repositories``, ``objects``, ``request_log``) are plain attributes for tests to inspect.
    """

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.repositories: dict[str, Repository] = {}
        self.objects = ObjectStore()
        self.request_log: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.max_assets_per_release: int | None = None
        self.content_rate_limits: list[ContentRateLimit] = []
        # How a rate-limited request is answered; see limit_content_creation.
        self.rate_limit_status = 403
        self.rate_limit_hint = "retry-after"
        # At most this many items in one listing, as GitHub's "Only the first 1000 results are available."
        self.max_listed_results: int | None = None
        # Seconds since the epoch; tests that simulate waits replace it with their own clock.
        self.clock: Callable[[], float] = time.time

        self._users_by_token: dict[str, User] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._api = _RestApi(self)

    # Lifecycle -----------------------------------------------------------------------------

    def start(self) -> GitHubStandIn:
        """Start serving on a free port of 127.0.0.1 in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("GitHubStandIn is already running. Call stop() before starting it again.")
        self._stopping.clear()
        self._server = _StandInHTTPServer(("127.0.0.1", 0), _RequestHandler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="github-standin", daemon=True
        )
        self._thread.start()
        log.info("GitHub stand-in listening on %s", self.root_url)
        return self

    def stop(self) -> None:
        """Stop serving. Requests held by a "timeout" fault are released and dropped."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        log.info("GitHub stand-in on %s stopped", self.root_url)
        self._server = None
        self._thread = None

    def __enter__(self) -> GitHubStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        """Web root, as ``https://github.com`` is for github.com."""
        if self._server is None:
            raise RuntimeError("GitHubStandIn is not running. Call start() first.")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        """REST API base URL to pass as ``Github(base_url=...)``."""
        return self.root_url + API_PREFIX

    @property
    def uploads_url(self) -> str:
        return self.root_url + UPLOADS_PREFIX

    # Setup ---------------------------------------------------------------------------------

    def add_user(self, login: str, token: str | None = None) -> User:
        """Create a user. Requests with ``Authorization: token <token>`` (or ``Bearer``) act as this user."""
        with self._lock:
            if login in self.users:
                raise ValueError(f"User {login!r} already exists.")
            user = User(login=login, id=next(self._ids), token=token or f"token-{login}")
            if user.token in self._users_by_token:
                raise ValueError(f"Token {user.token!r} already belongs to another user.")
            self.users[login] = user
            self._users_by_token[user.token] = user
            return user

    def create_repository(
        self,
        full_name: str,
        files: Mapping[str, bytes | str] | None = None,
        default_branch: str = "main",
        collaborators: tuple[str, ...] = (),
        message: str = "Initial commit",
    ) -> Repository:
        """Create ``owner/name`` with one commit on ``default_branch`` holding ``files``.

        The owner and collaborators must exist (see add_user), and they are the users who may push.
        """
        owner, _, name = full_name.partition("/")
        with self._lock:
            for login in (owner, *collaborators):
                if login not in self.users:
                    raise ValueError(f"User {login!r} does not exist. Create it with add_user() first.")
            if full_name in self.repositories:
                raise ValueError(f"Repository {full_name!r} already exists.")
            repository = Repository(
                id=next(self._ids),
                owner=owner,
                name=name,
                default_branch=default_branch,
                created_at=_now(),
                collaborators=set(collaborators),
            )
            tree = {path: self.objects.store_blob(_as_bytes(data)) for path, data in (files or {}).items()}
            owner_user = self.users[owner]
            commit = self.objects.create_commit(tree, (), message, owner, owner, owner_user.email)
            repository.refs[f"refs/heads/{default_branch}"] = commit.sha
            self.repositories[full_name] = repository
            return repository

    def client(self, login: str, **options: Any) -> Github:
        """Return a PyGithub client acting as ``login``.

        Retries and PyGithub's pauses between requests are off unless ``options`` set them, so tests
        see each response as sent and run fast. Other ``options`` go to ``Github(...)`` unchanged.
        """
        settings: dict[str, Any] = {"retry": None, "seconds_between_requests": None, "seconds_between_writes": None}
        settings.update(options)
        if login not in self.users:
            raise LookupError(f"User {login!r} does not exist. Create it with add_user() first.")
        return Github(base_url=self.api_url, auth=Auth.Token(self.users[login].token), **settings)

    # Inspection ----------------------------------------------------------------------------

    def repository(self, full_name: str) -> Repository:
        with self._lock:
            try:
                return self.repositories[full_name]
            except KeyError:
                raise LookupError(f"Repository {full_name!r} does not exist in the stand-in.") from None

    def files(self, full_name: str, ref: str | None = None) -> dict[str, bytes]:
        """Return the files at ``ref`` (default branch if None) as a map from path to content."""
        with self._lock:
            repository = self.repository(full_name)
            sha = self._resolve(repository, ref or repository.default_branch)
            if sha is None:
                raise LookupError(f"Ref {ref!r} does not exist in {full_name}.")
            return {path: self.objects.blobs[blob] for path, blob in self.objects.tree(sha).items()}

    def history(self, full_name: str, ref: str | None = None) -> list[Commit]:
        """Return the commits reachable from ``ref`` (default branch if None), newest first."""
        with self._lock:
            repository = self.repository(full_name)
            sha = self._resolve(repository, ref or repository.default_branch)
            if sha is None:
                raise LookupError(f"Ref {ref!r} does not exist in {full_name}.")
            return self.objects.history(sha)

    # Switches ------------------------------------------------------------------------------

    def inject_fault(
        self,
        method: str,
        path_regex: str,
        kind: str,
        times: int | None = 1,
        hold_seconds: float = 3.0,
        skip: int = 0,
    ) -> Fault:
        """Make ``times`` requests (all of them if None) matching ``method`` and ``path_regex`` fail.

        The first ``skip`` matching requests pass untouched, so a test can break, say, the second upload.

        ``path_regex`` is searched in the request path without its query string, for example
        ``r"/releases/\\d+/assets$"``. ``kind`` is one of:

        * ``"502"``: respond with ``502 Bad Gateway`` without touching any state.
        * ``"timeout"``: read the request, hold it ``hold_seconds`` (at most MAX_HOLD_SECONDS), then close
          the connection without answering. Set ``hold_seconds`` above the client's timeout.
        * ``"truncate_upload"``: for an asset upload, store the first half of the body as an asset in state
          ``"starter"``, then respond with ``502``, as GitHub documents for upstream failures during uploads.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"Unknown fault kind {kind!r}. Expected one of {', '.join(FAULT_KINDS)}.")
        if kind == "truncate_upload" and method.upper() != "POST":
            raise ValueError(f"Fault kind 'truncate_upload' applies to POST uploads, not {method!r}.")
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 or None for every request, not {times}.")
        if not 0 < hold_seconds <= MAX_HOLD_SECONDS:
            raise ValueError(f"hold_seconds must be in (0, {MAX_HOLD_SECONDS}], not {hold_seconds}.")
        if skip < 0:
            raise ValueError(f"skip must be 0 or more, not {skip}.")
        fault = Fault(method.upper(), re.compile(path_regex), kind, times, hold_seconds, skip)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def limit_assets_per_release(self, max_assets: int | None = 1000) -> None:
        """Reject uploads past ``max_assets`` per release with 422. None switches the limit off.

        The default is the cap of 1,000 assets per release that users report GitHub enforcing. GitHub's
        REST API docs do not state it.
        """
        self.max_assets_per_release = max_assets

    def limit_content_creation(
        self,
        max_requests: int | None = 80,
        window_seconds: float = 60.0,
        *,
        status: int = 403,
        hint: str = "retry-after",
        add: bool = False,
    ) -> None:
        """Reject writes once a user sends ``max_requests`` of them per window. None switches every limit off.

        Every POST, PUT, PATCH and DELETE counts as content creation. The defaults are GitHub's
        documented general limit of 80 content-generating requests per minute; ``add=True`` keeps the
        limits set before, so a test can apply 80 a minute and 500 an hour together. A rejected request
        gets ``status`` (403 or 429, which GitHub both sends), the secondary rate limit message and, by
        ``hint``: ``"retry-after"`` a ``Retry-After`` header with the seconds to wait, ``"reset"``
        ``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset`` with the epoch second of the end of the
        wait, or ``"none"`` no header, which leaves the client to back off on its own.
        """
        if hint not in ("retry-after", "reset", "none"):
            raise ValueError(f"hint must be 'retry-after', 'reset' or 'none', not {hint!r}.")
        if status not in (403, 429):
            raise ValueError(f"status must be 403 or 429, not {status}.")
        with self._lock:
            if max_requests is None:
                self.content_rate_limits = []
                return
            if not add:
                self.content_rate_limits = []
            self.content_rate_limits.append(ContentRateLimit(max_requests, window_seconds))
            self.rate_limit_status = status
            self.rate_limit_hint = hint

    def limit_listed_results(self, max_results: int | None = 1000) -> None:
        """Answer list requests for pages past the first ``max_results`` items with 422. None switches it off.

        GitHub answers ``GET /repos/{owner}/{repo}/releases?per_page=100&page=11`` with 422 "Only the first
        1000 results are available." (reported by users of repositories with more than 1,000 releases);
        the stand-in applies the cap to the release listing.
        """
        self.max_listed_results = max_results

    # Request processing --------------------------------------------------------------------

    def _process(self, request: _Request) -> _Response | None:
        """Apply faults, authentication and limits, then run the matching route. None drops the connection."""
        fault = self._take_fault(request)
        if fault is not None and fault.kind == "timeout":
            log.debug(
                "Holding %s %s for %.1f s, then dropping it (injected fault)",
                request.method,
                request.path,
                fault.hold_seconds,
            )
            self._stopping.wait(fault.hold_seconds)
            self._record(request, None)
            return None
        if fault is not None and fault.kind == "502":
            log.debug("Returning 502 for %s %s (injected fault)", request.method, request.path)
            return self._record(request, _Response(502, {"message": "Server Error"}))
        request.truncate_upload = fault is not None and fault.kind == "truncate_upload"

        try:
            request.user = self._authenticate(request)
            self._check_rate_limit(request)
            with self._lock:
                response = self._api.dispatch(request)
        except ApiError as error:
            log.debug("Returning %d for %s %s: %s", error.status, request.method, request.path, error.message)
            response = _Response(error.status, error.body(), error.headers)
        except Exception:
            log.exception("Stand-in failed on %s %s", request.method, request.path)
            response = _Response(500, {"message": "Server Error"})
        return self._record(request, response)

    def _take_fault(self, request: _Request) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method == request.method and fault.path_pattern.search(request.path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.hits += 1
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self.faults.remove(fault)
                    return fault
        return None

    def _authenticate(self, request: _Request) -> User | None:
        header = request.headers.get("Authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        user = self._users_by_token.get(token.strip()) if scheme.lower() in ("token", "bearer") else None
        if user is None and request.path.startswith("/api/"):
            raise ApiError(401, "Bad credentials")
        return user

    def _check_rate_limit(self, request: _Request) -> None:
        if not self.content_rate_limits or request.method not in WRITE_METHODS:
            return
        with self._lock:
            login = request.user.login if request.user else None
            now = self.clock()
            waits = [seconds for limit in self.content_rate_limits if (seconds := limit.wait(login, now)) is not None]
            if not waits:
                for limit in self.content_rate_limits:
                    limit.record(login, now)
                return
        retry_after = max(waits)
        log.debug("Rate limited %s %s by %s; wait %d s", request.method, request.path, login, retry_after)
        headers = {}
        if self.rate_limit_hint == "retry-after":
            headers["Retry-After"] = str(retry_after)
        elif self.rate_limit_hint == "reset":
            headers["x-ratelimit-remaining"] = "0"
            headers["x-ratelimit-reset"] = str(math.ceil(now + retry_after))
        raise ApiError(self.rate_limit_status, SECONDARY_RATE_LIMIT_MESSAGE, headers=headers)

    def _record(self, request: _Request, response: _Response | None) -> _Response | None:
        login = request.user.login if request.user else None
        status = response.status if response else None
        with self._lock:
            self.request_log.append(RecordedRequest(request.method, request.path, dict(request.query), login, status))
        return response

    # Git operations used by the routes -----------------------------------------------------

    def _resolve(self, repository: Repository, ref: str) -> str | None:
        """Return the commit SHA for a branch, tag, full ref name or commit SHA."""
        for name in (ref, f"refs/{ref}", f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if name in repository.refs:
                return repository.refs[name]
        return ref if ref in self.objects.commits else None

    def _commit_to_branch(
        self,
        repository: Repository,
        branch: str,
        changes: Mapping[str, bytes | None],
        message: str,
        user: User,
        author: Mapping[str, str] | None = None,
    ) -> Commit:
        """Commit ``changes`` (None deletes a path) on top of ``branch`` and move the branch to it."""
        ref = f"refs/heads/{branch}"
        parent = repository.refs[ref]
        tree = dict(self.objects.tree(parent))
        for path, data in changes.items():
            if data is None:
                tree.pop(path, None)
            else:
                tree[path] = self.objects.store_blob(data)
        author = author or {}
        commit = self.objects.create_commit(
            tree, (parent,), message, user.login, author.get("name", user.login), author.get("email", user.email)
        )
        repository.refs[ref] = commit.sha
        return commit


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


# ---------------------------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------------------------


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes
    user: User | None = None
    params: dict[str, str] = field(default_factory=dict)
    truncate_upload: bool = False

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiError(400, "Problems parsing JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "Problems parsing JSON")
        return data

    def require_user(self) -> User:
        if self.user is None:
            raise ApiError(401, "Requires authentication")
        return self.user


@dataclass
class _Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class _StandInHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], standin: GitHubStandIn):
        super().__init__(address, handler)
        self.standin = standin


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes, so without TCP_NODELAY each response waits on a delayed ACK.
    disable_nagle_algorithm = True
    server: _StandInHTTPServer

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _handle(self) -> None:
        split = urllib.parse.urlsplit(self.path)
        try:
            body = self._read_body()
        except ValueError as error:
            # The rest of the connection cannot be parsed after a malformed body.
            self.close_connection = True
            self._send(_Response(400, {"message": f"Invalid request body: {error}"}))
            return
        request = _Request(
            method=self.command,
            path=split.path,
            query=dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True)),
            headers=self.headers,
            body=body,
        )
        response = self.server.standin._process(request)
        if response is None:
            self.close_connection = True
            return
        self._send(response)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size_line = self.rfile.readline(1024)
                if not size_line:
                    raise ValueError("connection closed inside a chunked body")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline(1024)
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, response: _Response) -> None:
        headers = dict(response.headers)
        if isinstance(response.body, bytes):
            payload = response.body
            headers.setdefault("Content-Type", "application/octet-stream")
        elif response.body is None:
            payload = b""
        else:
            payload = json.dumps(response.body).encode("utf-8")
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        self.send_response(response.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


# ---------------------------------------------------------------------------------------------
# JSON shapes
# ---------------------------------------------------------------------------------------------


class _Renderer:
    """Builds GitHub-shaped JSON whose URLs all point back at the stand-in."""

    def __init__(self, standin: GitHubStandIn):
        self.standin = standin

    def repo_api_url(self, repository: Repository) -> str:
        return f"{self.standin.api_url}/repos/{repository.full_name}"

    def repo_html_url(self, repository: Repository) -> str:
        return f"{self.standin.root_url}/{repository.full_name}"

    def user(self, login: str) -> dict[str, Any]:
        user = self.standin.users[login]
        return {
            "login": user.login,
            "id": user.id,
            "node_id": f"U_{user.id}",
            "type": "User",
            "site_admin": False,
            "url": f"{self.standin.api_url}/users/{user.login}",
            "html_url": f"{self.standin.root_url}/{user.login}",
        }

    def repository(self, repository: Repository, viewer: User | None, with_network: bool = True) -> dict[str, Any]:
        api = self.repo_api_url(repository)
        login = viewer.login if viewer else None
        data: dict[str, Any] = {
            "id": repository.id,
            "node_id": f"R_{repository.id}",
            "name": repository.name,
            "full_name": repository.full_name,
            "owner": self.user(repository.owner),
            "private": False,
            "visibility": "public",
            "fork": repository.parent is not None,
            "url": api,
            "html_url": self.repo_html_url(repository),
            "clone_url": f"{self.repo_html_url(repository)}.git",
            "default_branch": repository.default_branch,
            "created_at": _iso(repository.created_at),
            "permissions": {
                "admin": login == repository.owner,
                "push": repository.can_push(login),
                "pull": True,
            },
            "pulls_url": f"{api}/pulls{{/number}}",
            "releases_url": f"{api}/releases{{/id}}",
            "contents_url": f"{api}/contents/{{+path}}",
        }
        if with_network and repository.parent is not None:
            data["parent"] = self.repository(repository.parent, viewer, with_network=False)
            data["source"] = self.repository(repository.source, viewer, with_network=False)
        return data

    def git_commit(self, repository: Repository, commit: Commit) -> dict[str, Any]:
        """Commit in the Git database shape, as the contents API returns it."""
        api = self.repo_api_url(repository)
        signature = {"name": commit.author_name, "email": commit.author_email, "date": _iso(commit.date)}
        return {
            "sha": commit.sha,
            "node_id": f"C_{commit.sha}",
            "url": f"{api}/git/commits/{commit.sha}",
            "html_url": f"{self.repo_html_url(repository)}/commit/{commit.sha}",
            "author": signature,
            "committer": signature,
            "message": commit.message,
            "tree": {"sha": ObjectStore.tree_sha(commit.tree), "url": f"{api}/git/trees/{commit.sha}"},
            "parents": [{"sha": parent, "url": f"{api}/git/commits/{parent}"} for parent in commit.parents],
        }

    def commit(self, repository: Repository, commit: Commit) -> dict[str, Any]:
        """Commit in the shape of the commits API, as branches and ``GET /commits`` return it."""
        api = self.repo_api_url(repository)
        git_commit = self.git_commit(repository, commit)
        author = self.user(commit.author_login) if commit.author_login in self.standin.users else None
        return {
            "sha": commit.sha,
            "node_id": git_commit["node_id"],
            "url": f"{api}/commits/{commit.sha}",
            "html_url": git_commit["html_url"],
            "commit": {key: git_commit[key] for key in ("url", "author", "committer", "message", "tree")},
            "author": author,
            "committer": author,
            "parents": [{"sha": parent, "url": f"{api}/commits/{parent}"} for parent in commit.parents],
        }

    def commit_with_files(self, repository: Repository, commit: Commit) -> dict[str, Any]:
        data = self.commit(repository, commit)
        parent_tree = self.standin.objects.tree(commit.parents[0] if commit.parents else None)
        files = self.changed_files(repository, commit.sha, parent_tree, commit.tree)
        additions = sum(each["additions"] for each in files)
        deletions = sum(each["deletions"] for each in files)
        data["files"] = files
        data["stats"] = {"additions": additions, "deletions": deletions, "total": additions + deletions}
        return data

    def branch(self, repository: Repository, name: str, sha: str) -> dict[str, Any]:
        api = self.repo_api_url(repository)
        return {
            "name": name,
            "commit": self.commit(repository, self.standin.objects.commits[sha]),
            "protected": False,
            "_links": {"self": f"{api}/branches/{name}", "html": f"{self.repo_html_url(repository)}/tree/{name}"},
        }

    def ref(self, repository: Repository, ref: str, sha: str) -> dict[str, Any]:
        api = self.repo_api_url(repository)
        return {
            "ref": ref,
            "node_id": f"REF_{repository.id}_{ref}",
            "url": f"{api}/git/{ref}",
            "object": {"sha": sha, "type": "commit", "url": f"{api}/git/commits/{sha}"},
        }

    def content(self, repository: Repository, path: str, ref: str, blob: str, with_content: bool) -> dict[str, Any]:
        api = self.repo_api_url(repository)
        quoted_path = urllib.parse.quote(path)
        html_url = f"{self.repo_html_url(repository)}/blob/{ref}/{quoted_path}"
        data: dict[str, Any] = {
            "type": "file",
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": blob,
            "size": len(self.standin.objects.blobs[blob]),
            "url": f"{api}/contents/{quoted_path}?ref={urllib.parse.quote(ref)}",
            "html_url": html_url,
            "git_url": f"{api}/git/blobs/{blob}",
            "download_url": f"{self.standin.root_url}/raw/{repository.full_name}/{ref}/{quoted_path}",
        }
        data["_links"] = {"self": data["url"], "git": data["git_url"], "html": html_url}
        if with_content:
            data["encoding"] = "base64"
            # GitHub wraps base64 content in lines, so clients must ignore the newlines when decoding.
            data["content"] = base64.encodebytes(self.standin.objects.blobs[blob]).decode("ascii")
        return data

    def directory_entry(self, repository: Repository, path: str, ref: str) -> dict[str, Any]:
        api = self.repo_api_url(repository)
        quoted_path = urllib.parse.quote(path)
        return {
            "type": "dir",
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": hashlib.sha1(f"{ref}:{path}".encode()).hexdigest(),
            "size": 0,
            "url": f"{api}/contents/{quoted_path}?ref={urllib.parse.quote(ref)}",
            "html_url": f"{self.repo_html_url(repository)}/tree/{ref}/{quoted_path}",
            "git_url": None,
            "download_url": None,
        }

    def changed_files(
        self, repository: Repository, head_sha: str, old_tree: Mapping[str, str], new_tree: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """Changed files in the shape of ``GET /pulls/{number}/files`` and of a commit's ``files``."""
        blobs = self.standin.objects.blobs
        files = []
        for path, status, old_blob, new_blob in _diff_trees(old_tree, new_tree):
            additions, deletions, patch = _line_changes(
                blobs[old_blob] if old_blob else None, blobs[new_blob] if new_blob else None
            )
            quoted_path = urllib.parse.quote(path)
            entry: dict[str, Any] = {
                "sha": new_blob or old_blob,
                "filename": path,
                "status": status,
                "additions": additions,
                "deletions": deletions,
                "changes": additions + deletions,
                "blob_url": f"{self.repo_html_url(repository)}/blob/{head_sha}/{quoted_path}",
                "raw_url": f"{self.standin.root_url}/raw/{repository.full_name}/{head_sha}/{quoted_path}",
                "contents_url": f"{self.repo_api_url(repository)}/contents/{quoted_path}?ref={head_sha}",
            }
            if patch is not None:
                entry["patch"] = patch
            files.append(entry)
        return files

    def pull(self, pull: PullRequest, viewer: User | None) -> dict[str, Any]:
        standin = self.standin
        api = f"{self.repo_api_url(pull.base)}/pulls/{pull.number}"
        html_url = f"{self.repo_html_url(pull.base)}/pull/{pull.number}"
        base_sha = _pull_base_sha(standin, pull)
        mergeable: bool | None = None
        mergeable_state = "unknown"
        if pull.state == "open" and base_sha is not None:
            mergeable = not standin.objects.merge(base_sha, pull.head_sha)[1]
            mergeable_state = "clean" if mergeable else "dirty"
        head_only = standin.objects.ancestors(pull.head_sha)
        if base_sha is not None:
            head_only -= standin.objects.ancestors(base_sha)
        return {
            "id": pull.id,
            "node_id": f"PR_{pull.id}",
            "number": pull.number,
            "url": api,
            "html_url": html_url,
            "diff_url": f"{html_url}.diff",
            "patch_url": f"{html_url}.patch",
            "issue_url": f"{self.repo_api_url(pull.base)}/issues/{pull.number}",
            "commits_url": f"{api}/commits",
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "body": pull.body,
            "user": self.user(pull.user),
            "draft": pull.draft,
            "created_at": _iso(pull.created_at),
            "updated_at": _iso(pull.updated_at),
            "closed_at": _iso(pull.closed_at),
            "merged_at": _iso(pull.merged_at),
            "merged": pull.merged,
            "merged_by": self.user(pull.merged_by) if pull.merged_by else None,
            "merge_commit_sha": pull.merge_commit_sha,
            "mergeable": mergeable,
            "mergeable_state": mergeable_state,
            "maintainer_can_modify": False,
            "commits": len(head_only),
            "head": self.pull_side(pull.head, pull.head_ref, pull.head_sha, viewer),
            "base": self.pull_side(pull.base, pull.base_ref, base_sha, viewer),
        }

    def pull_side(self, repository: Repository, ref: str, sha: str | None, viewer: User | None) -> dict[str, Any]:
        return {
            "label": f"{repository.owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": self.user(repository.owner),
            "repo": self.repository(repository, viewer, with_network=False),
        }

    def release(self, repository: Repository, release: Release) -> dict[str, Any]:
        api = f"{self.repo_api_url(repository)}/releases/{release.id}"
        upload = f"{self.standin.uploads_url}/repos/{repository.full_name}/releases/{release.id}/assets"
        tag = urllib.parse.quote(release.download_tag, safe="")
        return {
            "id": release.id,
            "node_id": f"RE_{release.id}",
            "url": api,
            "html_url": f"{self.repo_html_url(repository)}/releases/tag/{tag}",
            "assets_url": f"{api}/assets",
            "upload_url": upload + "{?name,label}",
            "tarball_url": f"{self.repo_api_url(repository)}/tarball/{tag}",
            "zipball_url": f"{self.repo_api_url(repository)}/zipball/{tag}",
            "tag_name": release.tag_name,
            "target_commitish": release.target_commitish,
            "name": release.name,
            "body": release.body,
            "draft": release.draft,
            "prerelease": release.prerelease,
            "created_at": _iso(release.created_at),
            "published_at": _iso(release.published_at),
            "author": self.user(release.author),
            "assets": [self.asset(repository, release, asset) for asset in release.assets.values()],
        }

    def asset(self, repository: Repository, release: Release, asset: ReleaseAsset) -> dict[str, Any]:
        tag = urllib.parse.quote(release.download_tag, safe="/")
        return {
            "id": asset.id,
            "node_id": f"RA_{asset.id}",
            "url": f"{self.repo_api_url(repository)}/releases/assets/{asset.id}",
            "browser_download_url": (
                f"{self.repo_html_url(repository)}/releases/download/{tag}/{urllib.parse.quote(asset.name)}"
            ),
            "name": asset.name,
            "label": asset.label,
            "state": asset.state,
            "content_type": asset.content_type,
            "size": asset.size,
            "digest": f"sha256:{hashlib.sha256(asset.data).hexdigest()}" if asset.state == "uploaded" else None,
            "download_count": asset.download_count,
            "created_at": _iso(asset.created_at),
            "updated_at": _iso(asset.updated_at),
            "uploader": self.user(asset.uploader),
        }


def _pull_base_sha(standin: GitHubStandIn, pull: PullRequest) -> str | None:
    """Return the base commit of a pull request: the tip it was merged into, else the current base tip."""
    if pull.merge_commit_sha is not None:
        return standin.objects.commits[pull.merge_commit_sha].parents[0]
    return pull.base.refs.get(f"refs/heads/{pull.base_ref}")


# ---------------------------------------------------------------------------------------------
# REST routes
# ---------------------------------------------------------------------------------------------

_Handler = Callable[["_RestApi", _Request], _Response]
_ROUTES: list[tuple[str, re.Pattern[str], _Handler]] = []
_REPO = API_PREFIX + r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"


def _route(method: str, pattern: str) -> Callable[[_Handler], _Handler]:
    """Register a handler for ``method`` on paths fully matching ``pattern``. Groups are URL-decoded."""

    def register(handler: _Handler) -> _Handler:
        _ROUTES.append((method, re.compile(pattern), handler))
        return handler

    return register


class _RestApi:
    """Route handlers. They run under the stand-in's lock and raise ApiError for error responses."""

    def __init__(self, standin: GitHubStandIn):
        self.standin = standin
        self.render = _Renderer(standin)

    def dispatch(self, request: _Request) -> _Response:
        for method, pattern, handler in _ROUTES:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                request.params = {key: urllib.parse.unquote(value or "") for key, value in match.groupdict().items()}
                if request.truncate_upload and handler is not _RestApi.upload_asset:
                    # A "truncate_upload" fault on any other route fails it like "502", with no state change.
                    raise ApiError(502, "Server Error")
                return handler(self, request)
        raise ApiError(404, "Not Found")

    # Shared lookups ------------------------------------------------------------------------

    def repository(self, request: _Request) -> Repository:
        repository = self.standin.repositories.get(f"{request.params['owner']}/{request.params['repo']}")
        if repository is None:
            raise ApiError(404, "Not Found")
        return repository

    def pushable_repository(self, request: _Request) -> Repository:
        """Return the request's repository after checking the caller may push to it."""
        user = request.require_user()
        repository = self.repository(request)
        if not repository.can_push(user.login):
            # NOTE: GitHub returns 404 instead for some of these, to hide what the caller may not see.
            raise ApiError(403, f"Must have push access to repository {repository.full_name}.")
        return repository

    def paginate(self, request: _Request, items: list[Any], max_results: int | None = None) -> _Response:
        """Return one page of ``items`` with a GitHub-style ``Link`` header for the other pages.

        With ``max_results``, only that many items can be listed and a page after them gets 422.
        """
        try:
            per_page = min(max(int(request.query.get("per_page", DEFAULT_PER_PAGE)), 1), MAX_PER_PAGE)
            page = max(int(request.query.get("page", 1)), 1)
        except ValueError:
            raise ApiError(422, "Invalid value for page or per_page. Both must be integers.") from None
        if max_results is not None:
            if (page - 1) * per_page >= max_results and items:
                raise ApiError(422, f"Only the first {max_results} results are available.")
            end = min(page * per_page, max_results)
            page_items = items[(page - 1) * per_page : end]
        else:
            page_items = items[(page - 1) * per_page : page * per_page]
        last_page = max(math.ceil(len(items) / per_page), 1)
        if len(page_items) < per_page and (page - 1) * per_page + len(page_items) < len(items):
            # A page cut short by max_results still links to the next one, which is then refused.
            last_page = max(last_page, page + 1)
        headers = {}
        if last_page > 1:
            links = []
            relations = {"prev": page - 1, "next": page + 1, "first": 1, "last": last_page}
            for relation, number in relations.items():
                if 1 <= number <= last_page and number != page:
                    query = urllib.parse.urlencode({**request.query, "per_page": per_page, "page": number})
                    links.append(f'<{self.standin.root_url}{request.path}?{query}>; rel="{relation}"')
            headers["Link"] = ", ".join(links)
        return _Response(200, page_items, headers)

    def find_pull(self, request: _Request) -> tuple[Repository, PullRequest]:
        repository = self.repository(request)
        pull = repository.pulls.get(int(request.params["number"]))
        if pull is None:
            raise ApiError(404, "Not Found")
        return repository, pull

    def refresh_head(self, pull: PullRequest) -> None:
        """Follow new pushes to an open pull request's head branch, as GitHub does."""
        if pull.state == "open":
            pull.head_sha = pull.head.refs.get(f"refs/heads/{pull.head_ref}", pull.head_sha)

    def find_release(self, request: _Request, repository: Repository) -> Release:
        release = repository.releases.get(int(request.params["release_id"]))
        if release is None or (release.draft and not repository.can_push(request.user and request.user.login)):
            raise ApiError(404, "Not Found")
        return release

    def find_asset(self, request: _Request, repository: Repository) -> tuple[Release, ReleaseAsset]:
        asset_id = int(request.params["asset_id"])
        can_push = repository.can_push(request.user and request.user.login)
        for release in repository.releases.values():
            if asset_id in release.assets and (can_push or not release.draft):
                return release, release.assets[asset_id]
        raise ApiError(404, "Not Found")

    # Users ---------------------------------------------------------------------------------

    @_route("GET", API_PREFIX + r"/user")
    def get_authenticated_user(self, request: _Request) -> _Response:
        return _Response(200, self.render.user(request.require_user().login))

    @_route("GET", API_PREFIX + r"/users/(?P<login>[^/]+)")
    def get_user(self, request: _Request) -> _Response:
        if request.params["login"] not in self.standin.users:
            raise ApiError(404, "Not Found")
        return _Response(200, self.render.user(request.params["login"]))

    # Repositories and forks ----------------------------------------------------------------

    @_route("GET", _REPO)
    def get_repository(self, request: _Request) -> _Response:
        return _Response(200, self.render.repository(self.repository(request), request.user))

    @_route("POST", _REPO + r"/forks")
    def create_fork(self, request: _Request) -> _Response:
        """Fork into the caller's namespace (or ``organization``), copying refs.

        When the owner already has a repository in this fork network, GitHub returns that one instead.
        """
        user = request.require_user()
        upstream = self.repository(request)
        body = request.json()
        owner = body.get("organization") or user.login
        if owner not in self.standin.users:
            raise _validation_failed("Fork", "organization", "invalid", f"Owner {owner!r} does not exist.")
        for repository in self.standin.repositories.values():
            if repository.owner == owner and repository.source is upstream.source:
                return _Response(202, self.render.repository(repository, user))

        base_name = body.get("name") or upstream.name
        name = base_name
        for suffix in range(1, 100):
            if f"{owner}/{name}" not in self.standin.repositories:
                break
            name = f"{base_name}-{suffix}"
        else:
            message = f"No free name for a fork of {upstream.full_name}."
            raise _validation_failed("Fork", "name", "already_exists", message)

        fork = Repository(
            id=next(self.standin._ids),
            owner=owner,
            name=name,
            default_branch=upstream.default_branch,
            created_at=_now(),
            parent=upstream,
        )
        if body.get("default_branch_only"):
            default_ref = f"refs/heads/{upstream.default_branch}"
            fork.refs[default_ref] = upstream.refs[default_ref]
        else:
            fork.refs.update(upstream.refs)
        self.standin.repositories[fork.full_name] = fork
        return _Response(202, self.render.repository(fork, user))

    # Branches and refs ---------------------------------------------------------------------

    @_route("GET", _REPO + r"/branches")
    def list_branches(self, request: _Request) -> _Response:
        repository = self.repository(request)
        api = self.render.repo_api_url(repository)
        branches = [
            {"name": name, "commit": {"sha": sha, "url": f"{api}/commits/{sha}"}, "protected": False}
            for name, sha in sorted(repository.branches.items())
        ]
        return self.paginate(request, branches)

    @_route("GET", _REPO + r"/branches/(?P<branch>.+)")
    def get_branch(self, request: _Request) -> _Response:
        repository = self.repository(request)
        sha = repository.branches.get(request.params["branch"])
        if sha is None:
            raise ApiError(404, "Branch not found")
        return _Response(200, self.render.branch(repository, request.params["branch"], sha))

    @_route("GET", _REPO + r"/git/refs?/(?P<ref>.+)")
    def get_ref(self, request: _Request) -> _Response:
        repository = self.repository(request)
        ref = "refs/" + request.params["ref"]
        if ref not in repository.refs:
            raise ApiError(404, "Not Found")
        return _Response(200, self.render.ref(repository, ref, repository.refs[ref]))

    @_route("POST", _REPO + r"/git/refs")
    def create_ref(self, request: _Request) -> _Response:
        repository = self.pushable_repository(request)
        body = request.json()
        ref, sha = body.get("ref"), body.get("sha")
        if not isinstance(ref, str) or not ref.startswith("refs/") or ref.count("/") < 2:
            raise ApiError(422, "ref must be formatted as 'refs/heads/<branch>' or 'refs/tags/<tag>'.")
        if sha not in self.standin.objects.commits:
            raise ApiError(422, "Object does not exist")
        if ref in repository.refs:
            raise ApiError(422, "Reference already exists")
        repository.refs[ref] = sha
        return _Response(201, self.render.ref(repository, ref, sha))

    @_route("PATCH", _REPO + r"/git/refs/(?P<ref>.+)")
    def update_ref(self, request: _Request) -> _Response:
        repository = self.pushable_repository(request)
        ref = "refs/" + request.params["ref"]
        body = request.json()
        sha = body.get("sha")
        if ref not in repository.refs:
            raise ApiError(422, "Reference does not exist")
        if sha not in self.standin.objects.commits:
            raise ApiError(422, "Object does not exist")
        if not body.get("force") and repository.refs[ref] not in self.standin.objects.ancestors(sha):
            raise ApiError(422, "Update is not a fast forward")
        repository.refs[ref] = sha
        return _Response(200, self.render.ref(repository, ref, sha))

    @_route("DELETE", _REPO + r"/git/refs/(?P<ref>.+)")
    def delete_ref(self, request: _Request) -> _Response:
        repository = self.pushable_repository(request)
        ref = "refs/" + request.params["ref"]
        if ref not in repository.refs:
            raise ApiError(422, "Reference does not exist")
        del repository.refs[ref]
        return _Response(204)

    # Commits -------------------------------------------------------------------------------

    @_route("GET", _REPO + r"/commits")
    def list_commits(self, request: _Request) -> _Response:
        repository = self.repository(request)
        ref = request.query.get("sha") or repository.default_branch
        sha = self.standin._resolve(repository, ref)
        if sha is None:
            raise ApiError(404, f"No commit found for SHA: {ref}")
        commits = self.standin.objects.history(sha)
        path = request.query.get("path")
        if path:
            commits = [commit for commit in commits if self._touches(commit, path)]
        return self.paginate(request, [self.render.commit(repository, commit) for commit in commits])

    def _touches(self, commit: Commit, path: str) -> bool:
        parent_tree = self.standin.objects.tree(commit.parents[0] if commit.parents else None)
        return any(
            changed == path or changed.startswith(path.rstrip("/") + "/")
            for changed, *_ in _diff_trees(parent_tree, commit.tree)
        )

    @_route("GET", _REPO + r"/commits/(?P<ref>.+)")
    def get_commit(self, request: _Request) -> _Response:
        repository = self.repository(request)
        sha = self.standin._resolve(repository, request.params["ref"])
        if sha is None:
            raise ApiError(422, f"No commit found for SHA: {request.params['ref']}")
        return _Response(200, self.render.commit_with_files(repository, self.standin.objects.commits[sha]))

    # Contents ------------------------------------------------------------------------------

    @staticmethod
    def _clean_path(path: str) -> str:
        cleaned = path.strip("/")
        if not cleaned or any(part in ("", ".", "..") for part in cleaned.split("/")):
            raise ApiError(422, f"path {path!r} contains a malformed path component")
        return cleaned

    @_route("GET", _REPO + r"/contents(?:/(?P<path>.*))?")
    def get_contents(self, request: _Request) -> _Response:
        repository = self.repository(request)
        ref = request.query.get("ref") or repository.default_branch
        sha = self.standin._resolve(repository, ref)
        if sha is None:
            raise ApiError(404, f"No commit found for the ref {ref}")
        tree = self.standin.objects.tree(sha)
        path = request.params["path"].strip("/")
        if path in tree:
            return _Response(200, self.render.content(repository, path, ref, tree[path], with_content=True))

        prefix = f"{path}/" if path else ""
        children: dict[str, str | None] = {}
        for file_path, blob in tree.items():
            if file_path.startswith(prefix):
                name, _, rest = file_path[len(prefix) :].partition("/")
                children[name] = None if rest else blob
        if not children and path:
            raise ApiError(404, "Not Found")
        entries = []
        for name, blob in sorted(children.items()):
            child_path = prefix + name
            if blob is None:
                entries.append(self.render.directory_entry(repository, child_path, ref))
            else:
                entries.append(self.render.content(repository, child_path, ref, blob, with_content=False))
        return _Response(200, entries)

    @_route("PUT", _REPO + r"/contents/(?P<path>.+)")
    def put_contents(self, request: _Request) -> _Response:
        """Create or update a file with one commit. Updates must name the current blob ``sha``."""
        user = request.require_user()
        repository = self.pushable_repository(request)
        path = self._clean_path(request.params["path"])
        body = request.json()
        if not isinstance(body.get("message"), str):
            raise _validation_failed("Commit", "message", "missing_field")
        if not isinstance(body.get("content"), str):
            raise _validation_failed("Commit", "content", "missing_field")
        try:
            data = base64.b64decode(body["content"], validate=True)
        except binascii.Error:
            raise ApiError(422, "content is not valid Base64") from None
        branch = body.get("branch") or repository.default_branch
        if branch not in repository.branches:
            raise ApiError(404, f"Branch {branch} not found")

        current = self.standin.objects.tree(repository.branches[branch]).get(path)
        if current is not None and "sha" not in body:
            raise ApiError(422, "Invalid request.\n\n\"sha\" wasn't supplied.")
        if "sha" in body and body["sha"] != current:
            raise ApiError(409, f"{path} does not match {body['sha']}")
        commit = self.standin._commit_to_branch(
            repository, branch, {path: data}, body["message"], user, body.get("author") or body.get("committer")
        )
        return _Response(
            200 if current else 201,
            {
                "content": self.render.content(repository, path, branch, commit.tree[path], with_content=False),
                "commit": self.render.git_commit(repository, commit),
            },
        )

    @_route("DELETE", _REPO + r"/contents/(?P<path>.+)")
    def delete_contents(self, request: _Request) -> _Response:
        user = request.require_user()
        repository = self.pushable_repository(request)
        path = self._clean_path(request.params["path"])
        body = request.json()
        if not isinstance(body.get("message"), str):
            raise _validation_failed("Commit", "message", "missing_field")
        if "sha" not in body:
            raise ApiError(422, "Invalid request.\n\n\"sha\" wasn't supplied.")
        branch = body.get("branch") or repository.default_branch
        if branch not in repository.branches:
            raise ApiError(404, f"Branch {branch} not found")
        current = self.standin.objects.tree(repository.branches[branch]).get(path)
        if current is None:
            raise ApiError(404, "Not Found")
        if body["sha"] != current:
            raise ApiError(409, f"{path} does not match {body['sha']}")
        commit = self.standin._commit_to_branch(
            repository, branch, {path: None}, body["message"], user, body.get("author") or body.get("committer")
        )
        return _Response(200, {"content": None, "commit": self.render.git_commit(repository, commit)})

    # Pull requests -------------------------------------------------------------------------

    @_route("POST", _REPO + r"/pulls")
    def create_pull(self, request: _Request) -> _Response:
        """Open a pull request from ``owner:branch`` (or a branch of this repository) into ``base``."""
        user = request.require_user()
        base_repository = self.repository(request)
        body = request.json()
        for required in ("title", "head", "base"):
            if not isinstance(body.get(required), str):
                raise _validation_failed("PullRequest", required, "missing_field")
        base_ref = body["base"]
        if base_ref not in base_repository.branches:
            raise _validation_failed("PullRequest", "base", "invalid")

        head_owner, _, head_ref = body["head"].rpartition(":")
        head_owner = head_owner or base_repository.owner
        head_repository = self._network_repository(base_repository, head_owner, body.get("head_repo"))
        if head_repository is None or head_ref not in head_repository.branches:
            raise _validation_failed("PullRequest", "head", "invalid")
        head_sha = head_repository.branches[head_ref]
        base_sha = base_repository.branches[base_ref]
        if head_sha in self.standin.objects.ancestors(base_sha):
            raise _validation_failed(
                "PullRequest", None, "custom", f"No commits between {base_ref} and {head_owner}:{head_ref}"
            )
        for existing in base_repository.pulls.values():
            same_head = existing.head is head_repository and existing.head_ref == head_ref
            if existing.state == "open" and same_head and existing.base_ref == base_ref:
                raise _validation_failed(
                    "PullRequest", None, "custom", f"A pull request already exists for {head_owner}:{head_ref}."
                )

        now = _now()
        pull = PullRequest(
            id=next(self.standin._ids),
            number=base_repository.next_number,
            base=base_repository,
            base_ref=base_ref,
            head=head_repository,
            head_ref=head_ref,
            head_sha=head_sha,
            user=user.login,
            title=body["title"],
            body=body.get("body"),
            draft=bool(body.get("draft", False)),
            created_at=now,
            updated_at=now,
        )
        base_repository.next_number += 1
        base_repository.pulls[pull.number] = pull
        return _Response(201, self.render.pull(pull, user))

    def _network_repository(self, base: Repository, owner: str, full_name: str | None) -> Repository | None:
        """Return ``owner``'s repository in ``base``'s fork network, or the one named by ``head_repo``."""
        if owner == base.owner and not full_name:
            return base
        for repository in self.standin.repositories.values():
            if repository.source is not base.source:
                continue
            if full_name and repository.full_name == full_name:
                return repository
            if not full_name and repository.owner == owner:
                return repository
        return None

    @_route("GET", _REPO + r"/pulls")
    def list_pulls(self, request: _Request) -> _Response:
        repository = self.repository(request)
        state = request.query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise _validation_failed("PullRequest", "state", "invalid")
        pulls = [pull for pull in repository.pulls.values() if state in ("all", pull.state)]
        if "head" in request.query:
            owner, _, ref = request.query["head"].rpartition(":")
            pulls = [pull for pull in pulls if pull.head_ref == ref and (not owner or pull.head.owner == owner)]
        if "base" in request.query:
            pulls = [pull for pull in pulls if pull.base_ref == request.query["base"]]
        sort_key = "updated_at" if request.query.get("sort") == "updated" else "created_at"
        descending = request.query.get("direction", "desc") != "asc"
        pulls.sort(key=lambda pull: (getattr(pull, sort_key), pull.number), reverse=descending)
        for pull in pulls:
            self.refresh_head(pull)
        return self.paginate(request, [self.render.pull(pull, request.user) for pull in pulls])

    @_route("GET", _REPO + r"/pulls/(?P<number>\d+)")
    def get_pull(self, request: _Request) -> _Response:
        _, pull = self.find_pull(request)
        self.refresh_head(pull)
        return _Response(200, self.render.pull(pull, request.user))

    @_route("PATCH", _REPO + r"/pulls/(?P<number>\d+)")
    def update_pull(self, request: _Request) -> _Response:
        user = request.require_user()
        repository, pull = self.find_pull(request)
        if user.login != pull.user and not repository.can_push(user.login):
            raise ApiError(403, f"Must be the author of pull request #{pull.number} or have push access.")
        body = request.json()
        state = body.get("state")
        if state is not None and state not in ("open", "closed"):
            raise _validation_failed("PullRequest", "state", "invalid")
        if state == "open" and pull.merged:
            raise _validation_failed("PullRequest", "state", "invalid", "A merged pull request cannot be reopened.")
        for name in ("title", "body"):
            if name in body:
                setattr(pull, name, body[name])
        now = _now()
        if state is not None and state != pull.state:
            self.refresh_head(pull)
            pull.state = state
            pull.closed_at = now if state == "closed" else None
        pull.updated_at = now
        return _Response(200, self.render.pull(pull, user))

    @_route("GET", _REPO + r"/pulls/(?P<number>\d+)/files")
    def list_pull_files(self, request: _Request) -> _Response:
        """List files changed on the head side since the merge base, as GitHub does."""
        _, pull = self.find_pull(request)
        self.refresh_head(pull)
        objects = self.standin.objects
        base_sha = _pull_base_sha(self.standin, pull)
        old_tree = objects.tree(objects.merge_base(base_sha, pull.head_sha) if base_sha else None)
        files = self.render.changed_files(pull.head, pull.head_sha, old_tree, objects.tree(pull.head_sha))
        return self.paginate(request, files)

    @_route("GET", _REPO + r"/pulls/(?P<number>\d+)/merge")
    def check_pull_merged(self, request: _Request) -> _Response:
        _, pull = self.find_pull(request)
        if not pull.merged:
            raise ApiError(404, "Not Found")
        return _Response(204)

    @_route("PUT", _REPO + r"/pulls/(?P<number>\d+)/merge")
    def merge_pull(self, request: _Request) -> _Response:
        """Merge the head branch into the base branch with a new commit on the base branch.

        ``merge`` records both tips as parents; ``squash`` and ``rebase`` record one commit on the base
        tip. Conflicts are detected per file: both sides changing one file differently is a conflict.
        """
        # NOTE: GitHub's "rebase" replays each head commit, but the stand-in squashes them into one.
        user = request.require_user()
        repository, pull = self.find_pull(request)
        if not repository.can_push(user.login):
            raise ApiError(403, f"Must have push access to repository {repository.full_name}.")
        self.refresh_head(pull)
        body = request.json()
        method = body.get("merge_method", "merge")
        if method not in ("merge", "squash", "rebase"):
            raise _validation_failed("PullRequest", "merge_method", "invalid")
        if pull.state != "open":
            raise ApiError(405, "Pull Request is not mergeable")
        if body.get("sha") and body["sha"] != pull.head_sha:
            raise ApiError(409, "Head branch was modified. Review and try the merge again.")
        base_ref = f"refs/heads/{pull.base_ref}"
        if base_ref not in repository.refs:
            raise ApiError(422, f"Base branch {pull.base_ref} does not exist any more.")
        base_sha = repository.refs[base_ref]
        tree, conflicts = self.standin.objects.merge(base_sha, pull.head_sha)
        if conflicts:
            raise ApiError(405, "Pull Request is not mergeable")

        if method == "merge":
            default_title = f"Merge pull request #{pull.number} from {pull.head.owner}/{pull.head_ref}"
            title = body.get("commit_title") or default_title
            details = body.get("commit_message", pull.title)
            parents: tuple[str, ...] = (base_sha, pull.head_sha)
        else:
            title = body.get("commit_title") or f"{pull.title} (#{pull.number})"
            details = body.get("commit_message", "")
            parents = (base_sha,)
        message = f"{title}\n\n{details}" if details else title
        commit = self.standin.objects.create_commit(tree, parents, message, user.login, user.login, user.email)
        repository.refs[base_ref] = commit.sha

        now = _now()
        pull.state = "closed"
        pull.closed_at = pull.merged_at = pull.updated_at = now
        pull.merged_by = user.login
        pull.merge_commit_sha = commit.sha
        return _Response(200, {"sha": commit.sha, "merged": True, "message": "Pull Request successfully merged"})

    # Releases ------------------------------------------------------------------------------

    def _create_tag(self, repository: Repository, release: Release) -> None:
        """Create the release's tag at ``target_commitish`` unless it exists, as publishing does on GitHub."""
        tag_ref = f"refs/tags/{release.tag_name}"
        if tag_ref not in repository.refs:
            sha = self.standin._resolve(repository, release.target_commitish)
            if sha is None:
                raise _validation_failed("Release", "target_commitish", "invalid")
            repository.refs[tag_ref] = sha

    @_route("POST", _REPO + r"/releases")
    def create_release(self, request: _Request) -> _Response:
        user = request.require_user()
        repository = self.pushable_repository(request)
        body = request.json()
        tag_name = body.get("tag_name")
        if not isinstance(tag_name, str) or not tag_name:
            raise _validation_failed("Release", "tag_name", "missing_field")
        if any(release.tag_name == tag_name for release in repository.releases.values()):
            raise _validation_failed("Release", "tag_name", "already_exists")
        release = Release(
            id=next(self.standin._ids),
            tag_name=tag_name,
            target_commitish=body.get("target_commitish") or repository.default_branch,
            name=body.get("name"),
            body=body.get("body"),
            draft=bool(body.get("draft", False)),
            prerelease=bool(body.get("prerelease", False)),
            author=user.login,
            created_at=_now(),
            published_at=None,
        )
        if self.standin._resolve(repository, release.target_commitish) is None:
            raise _validation_failed("Release", "target_commitish", "invalid")
        if not release.draft:
            self._create_tag(repository, release)
            release.published_at = release.created_at
        repository.releases[release.id] = release
        return _Response(201, self.render.release(repository, release))

    @_route("GET", _REPO + r"/releases")
    def list_releases(self, request: _Request) -> _Response:
        """List releases newest first, with drafts only for users who may push, as on GitHub."""
        repository = self.repository(request)
        can_push = repository.can_push(request.user and request.user.login)
        releases = [
            self.render.release(repository, release)
            for release in sorted(repository.releases.values(), key=lambda release: -release.id)
            if can_push or not release.draft
        ]
        return self.paginate(request, releases, self.standin.max_listed_results)

    @_route("GET", _REPO + r"/releases/latest")
    def get_latest_release(self, request: _Request) -> _Response:
        repository = self.repository(request)
        published = [
            release for release in repository.releases.values() if not release.draft and not release.prerelease
        ]
        if not published:
            raise ApiError(404, "Not Found")
        latest = max(published, key=lambda release: (release.published_at, release.id))
        return _Response(200, self.render.release(repository, latest))

    @_route("GET", _REPO + r"/releases/tags/(?P<tag>[^/]+)")
    def get_release_by_tag(self, request: _Request) -> _Response:
        """Return the published release for a tag. Drafts have no tag yet, so they are not found here."""
        repository = self.repository(request)
        for release in repository.releases.values():
            if release.tag_name == request.params["tag"] and not release.draft:
                return _Response(200, self.render.release(repository, release))
        raise ApiError(404, "Not Found")

    @_route("GET", _REPO + r"/releases/(?P<release_id>\d+)")
    def get_release(self, request: _Request) -> _Response:
        repository = self.repository(request)
        return _Response(200, self.render.release(repository, self.find_release(request, repository)))

    @_route("PATCH", _REPO + r"/releases/(?P<release_id>\d+)")
    def update_release(self, request: _Request) -> _Response:
        repository = self.pushable_repository(request)
        release = self.find_release(request, repository)
        body = request.json()
        new_tag = body.get("tag_name", release.tag_name)
        if any(other.tag_name == new_tag and other is not release for other in repository.releases.values()):
            raise _validation_failed("Release", "tag_name", "already_exists")
        release.tag_name = new_tag
        for name in ("target_commitish", "name", "body", "prerelease"):
            if name in body:
                setattr(release, name, body[name])
        if release.draft and body.get("draft") is False:
            release.draft = False
            release.published_at = _now()
        if not release.draft:
            self._create_tag(repository, release)
        return _Response(200, self.render.release(repository, release))

    @_route("DELETE", _REPO + r"/releases/(?P<release_id>\d+)")
    def delete_release(self, request: _Request) -> _Response:
        """Delete a release and its assets. Like on GitHub, the tag stays."""
        repository = self.pushable_repository(request)
        release = self.find_release(request, repository)
        del repository.releases[release.id]
        return _Response(204)

    # Release assets ------------------------------------------------------------------------

    @_route("GET", _REPO + r"/releases/(?P<release_id>\d+)/assets")
    def list_assets(self, request: _Request) -> _Response:
        repository = self.repository(request)
        release = self.find_release(request, repository)
        assets = [self.render.asset(repository, release, asset) for asset in release.assets.values()]
        return self.paginate(request, assets)

    @_route("POST", UPLOADS_PREFIX + r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/releases/(?P<release_id>\d+)/assets")
    def upload_asset(self, request: _Request) -> _Response:
        """Store the raw request body as an asset named by the ``name`` query parameter, after renaming."""
        user = request.require_user()
        repository = self.pushable_repository(request)
        release = self.find_release(request, repository)
        name = rename_asset(request.query.get("name", ""))
        if not name:
            raise _validation_failed("ReleaseAsset", "name", "missing_field")
        if any(asset.name == name for asset in release.assets.values()):
            raise _validation_failed("ReleaseAsset", "name", "already_exists")
        limit = self.standin.max_assets_per_release
        if limit is not None and len(release.assets) >= limit:
            # NOTE: GitHub's exact response past its 1,000-asset cap is undocumented, so 422 is an assumption.
            raise _validation_failed("ReleaseAsset", None, "custom", f"A release can have at most {limit} assets.")

        data = request.body
        state = "uploaded"
        if request.truncate_upload:
            log.debug(
                "Keeping %d of %d bytes of asset %r as a starter asset (injected fault)",
                len(data) // 2,
                len(data),
                name,
            )
            data, state = data[: len(data) // 2], "starter"
        now = _now()
        asset = ReleaseAsset(
            id=next(self.standin._ids),
            name=name,
            label=request.query.get("label", ""),
            content_type=request.headers.get("Content-Type") or "application/octet-stream",
            data=data,
            state=state,
            uploader=user.login,
            created_at=now,
            updated_at=now,
        )
        release.assets[asset.id] = asset
        if request.truncate_upload:
            raise ApiError(502, "Server Error")
        return _Response(201, self.render.asset(repository, release, asset))

    @_route("GET", _REPO + r"/releases/assets/(?P<asset_id>\d+)")
    def get_asset(self, request: _Request) -> _Response:
        """Return asset metadata, or the asset's bytes when the client accepts ``application/octet-stream``."""
        repository = self.repository(request)
        release, asset = self.find_asset(request, repository)
        if "application/octet-stream" in request.headers.get("Accept", ""):
            return self._download(asset)
        return _Response(200, self.render.asset(repository, release, asset))

    @_route("PATCH", _REPO + r"/releases/assets/(?P<asset_id>\d+)")
    def update_asset(self, request: _Request) -> _Response:
        repository = self.pushable_repository(request)
        release, asset = self.find_asset(request, repository)
        body = request.json()
        if "name" in body:
            name = rename_asset(body["name"])
            if any(other.name == name and other is not asset for other in release.assets.values()):
                raise _validation_failed("ReleaseAsset", "name", "already_exists")
            asset.name = name
        if "label" in body:
            asset.label = body["label"]
        asset.updated_at = _now()
        return _Response(200, self.render.asset(repository, release, asset))

    @_route("DELETE", _REPO + r"/releases/assets/(?P<asset_id>\d+)")
    def delete_asset(self, request: _Request) -> _Response:
        repository = self.pushable_repository(request)
        release, asset = self.find_asset(request, repository)
        del release.assets[asset.id]
        return _Response(204)

    @_route("GET", r"/(?P<owner>[^/]+)/(?P<repo>[^/]+)/releases/download/(?P<tag>.+)/(?P<name>[^/]+)")
    def download_asset(self, request: _Request) -> _Response:
        """Serve ``browser_download_url``. Draft releases are not public, so their URLs are not found."""
        repository = self.standin.repositories.get(f"{request.params['owner']}/{request.params['repo']}")
        if repository is not None:
            for release in repository.releases.values():
                if release.draft or release.tag_name != request.params["tag"]:
                    continue
                for asset in release.assets.values():
                    if asset.name == request.params["name"]:
                        return self._download(asset)
        raise ApiError(404, "Not Found")

    @staticmethod
    def _download(asset: ReleaseAsset) -> _Response:
        # NOTE: the stand-in assumes GitHub serves no bytes for an asset whose upload did not finish.
        if asset.state != "uploaded":
            raise ApiError(404, "Not Found")
        asset.download_count += 1
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{asset.name}"',
        }
        return _Response(200, asset.data, headers)

    @_route("GET", r"/raw/(?P<owner>[^/]+)/(?P<repo>[^/]+)/(?P<rest>.+)")
    def get_raw_file(self, request: _Request) -> _Response:
        """Serve a file's ``download_url``. The ref may contain slashes, so try each split of the path."""
        repository = self.standin.repositories.get(f"{request.params['owner']}/{request.params['repo']}")
        parts = request.params["rest"].split("/")
        if repository is not None:
            for split in range(1, len(parts)):
                sha = self.standin._resolve(repository, "/".join(parts[:split]))
                blob = self.standin.objects.tree(sha).get("/".join(parts[split:])) if sha else None
                if blob is not None:
                    headers = {"Content-Type": "text/plain; charset=utf-8"}
                    return _Response(200, self.standin.objects.blobs[blob], headers)
        raise ApiError(404, "Not Found")
