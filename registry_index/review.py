"""Pull request validation: what a contributor's pull request may change.

The checks run on the pull request's git history alone, with no secrets:

- only files under `index/accounts/` and `index/images/` change (unless the
  author is trusted, such as a maintainer);
- a new account is owned by the pull request's author;
- images change only in author namespaces that the pull request's author owns;
- existing versions are unchanged, except for `yanked`, which only the owner sets;
- the whole index still follows the schema and name rules;
- each new version's file downloads within a size limit, and its sha256, size
  and manifest equal the entry.
"""

from __future__ import annotations

import logging
import re
import subprocess
import tarfile
import tempfile
from dataclasses import asdict
from pathlib import Path

from . import names
from .errors import InvalidIndex, Problem, RegistryError, printable
from .hosting import HostingError, download
from .index import Index, load_index
from .model import MAX_ASSET_BYTES, Image, Version
from .verify import verify_asset

log = logging.getLogger(__name__)

INDEX_FOLDER = "index"
SETTINGS_PATH = "index/registry.yaml"
ACCOUNTS_PREFIX = "index/accounts/"
IMAGES_PREFIX = "index/images/"
# Fields of a published version that may change after publication.
MUTABLE_VERSION_FIELDS = {"yanked", "line"}
MUTABLE_ACCOUNT_FIELDS = {"token_bcrypt", "line", "path"}


class GitError(RegistryError):
    """A git command failed."""


class UnsafeEntry(GitError):
    """An entry of a commit that cannot be written into a folder safely, such as a link to an absolute path."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def git(repository: Path, *args: str) -> bytes:
    result = subprocess.run(["git", "-C", str(repository), *args], capture_output=True, timeout=300)
    if result.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def resolve(repository: Path, revision: str) -> str:
    if revision.startswith("-"):
        raise GitError(f"revision {revision!r} is invalid; give a commit id or branch name")
    result = subprocess.run(["git", "-C", str(repository), "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], capture_output=True, timeout=300)
    if result.returncode == 0:
        return result.stdout.decode().strip()
    reason = result.stderr.decode(errors="replace").strip()
    if reason:
        raise GitError(f"revision {revision!r} cannot be resolved in {repository}: {reason}; check --repository and give a commit id or branch name")
    # With --quiet, git prints nothing for a revision that does not exist.
    raise GitError(f"revision {revision!r} is not a commit in {repository}; fetch it, or give a commit id or branch name")


def changed_files(repository: Path, base: str, head: str) -> list[tuple[str, str]]:
    """Return (status, path) of every file that differs between `base` and `head`; status is A, M, D or T."""
    output = git(repository, "diff", "--name-status", "--no-renames", "-z", base, head)
    fields = output.decode("utf-8", errors="replace").split("\0")
    return [(fields[i], fields[i + 1]) for i in range(0, len(fields) - 1, 2)]


# Maximum bytes of paths given to one git command. Linux rejects a command line
# longer than a quarter of the stack limit, 2 MiB with the usual 8 MiB stack,
# with "Argument list too long", and a pull request can change tens of thousands of files.
MAX_ARGUMENT_BYTES = 256 * 1024


def _exists(repository: Path, revision: str, path: str) -> bool:
    """Return True when `path` names a file or folder at commit `revision`."""
    result = subprocess.run(["git", "-C", str(repository), "cat-file", "-e", f"{revision}:{path}"], capture_output=True, timeout=300)
    return result.returncode == 0


def _batches(paths: list[str]) -> list[list[str]]:
    """Split `paths` into runs that fit on one git command line."""
    batches: list[list[str]] = []
    size = MAX_ARGUMENT_BYTES
    for path in paths:
        # Each argument also costs a pointer and a terminating NUL.
        cost = len(path.encode("utf-8")) + 9
        if size + cost > MAX_ARGUMENT_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(path)
        size += cost
    return batches


def _extract_index(repository: Path, revision: str, target: Path, paths: list[str]) -> Path:
    """Extract `paths`, files and folders that exist at `revision`, into `target` and return the path of its `index/` folder.

    The archive streams from git into the folder, so a large index is never held in memory.
    """
    target.mkdir(parents=True, exist_ok=True)
    for batch in _batches(paths):
        # Pathspecs are literal because a path from the diff is a file name, not a pattern.
        command = ["git", "-C", str(repository), "--literal-pathspecs", "archive", "--format=tar", revision, "--", *batch]
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
            try:
                with tarfile.open(fileobj=process.stdout, mode="r|") as tar:
                    tar.extractall(target, filter="data")
            except tarfile.FilterError as error:
                process.kill()
                raise UnsafeEntry(error.tarinfo.name, str(error)) from error
            except tarfile.TarError as error:
                process.kill()
                raise GitError(f"git archive {revision} gave an unreadable archive: {error}") from error
            errors = process.stderr.read()
            if process.wait() != 0:
                raise GitError(f"git archive {revision} failed: {errors.decode(errors='replace').strip()}")
    return target / "index"


def _load(folder: Path, problems: list[Problem] | None, changed: set[str]) -> Index | None:
    """Load and check the index in `folder`, keeping only the images of the `changed` paths: a file that did not change has no new version."""
    try:
        # The image paths start with the folder's name, `index`, as the paths in git do.
        return load_index(folder, select=lambda image: image.path in changed)
    except InvalidIndex as error:
        if problems is not None:
            problems.extend(error.problems)
        return None


def check_pull_request(repository: Path, base: str, head: str, pr_author: str, *, trusted: bool = False, download_assets: bool = True) -> list[Problem]:
    """Return every problem of the change from `base` to `head` made by GitHub user `pr_author`."""
    repository = Path(repository)
    base_commit = resolve(repository, base)
    head_commit = resolve(repository, head)
    changes = changed_files(repository, base_commit, head_commit)
    problems: list[Problem] = []

    for _status, path in changes:
        if not path.startswith((ACCOUNTS_PREFIX, IMAGES_PREFIX)) and not trusted:
            problems.append(Problem(path, 0, "only files under index/accounts/ and index/images/ may change in a pull request; ask a maintainer for other changes"))

    with tempfile.TemporaryDirectory(prefix="registry-index-review-") as scratch:
        scratch_path = Path(scratch)
        changed = {path for _status, path in changes}
        # The base needs only what the checks compare with: its settings, its
        # accounts and the changed image files, except added ones, which it
        # does not have. The head is checked whole.
        base_paths = [path for path in (SETTINGS_PATH, ACCOUNTS_PREFIX.rstrip("/")) if _exists(repository, base_commit, path)]
        base_paths += sorted(path for status, path in changes if path.startswith(IMAGES_PREFIX) and status != "A")
        base_index = _load(_extract_index(repository, base_commit, scratch_path / "base", base_paths), None, changed)
        head_paths = [INDEX_FOLDER] if _exists(repository, head_commit, INDEX_FOLDER) else []
        try:
            head_folder = _extract_index(repository, head_commit, scratch_path / "head", head_paths)
        except UnsafeEntry as error:
            problems.append(Problem(error.path, 0, f"{error.reason}; index files must be regular files in the repository, so replace it with the file itself"))
            return sorted(set(problems))
        if head_folder.is_symlink() or not head_folder.is_dir():
            problems.append(Problem(INDEX_FOLDER, 0, "the pull request removes the index folder or replaces it with a file or link; keep index/ a folder that contains registry.yaml, accounts/ and images/"))
            head_index = None
        else:
            head_index = _load(head_folder, problems, changed)
        if base_index is None:
            problems.append(Problem("index", 0, f"the base revision {base} has no valid settings, accounts or changed image files; fix the default branch first"))
            return sorted(problems)
        login = pr_author.lower()
        for status, path in changes:
            if path.startswith(ACCOUNTS_PREFIX):
                problems.extend(_check_account_change(status, path, base_index, head_index, login))
            elif path.startswith(IMAGES_PREFIX):
                problems.extend(_check_image_change(status, path, base_index, head_index, login))
        if head_index is not None and download_assets:
            problems.extend(_check_new_assets(base_index, head_index, scratch_path))
    return sorted(set(problems))


def _owner_login(username: str, base: Index, head: Index | None) -> str | None:
    account = base.account(username) or (head.account(username) if head is not None else None)
    return account.github.lower() if account is not None else None


def _stem(path: str) -> str:
    return path.rsplit("/", 1)[-1].removesuffix(".yaml")


def _check_account_change(status: str, path: str, base: Index, head: Index | None, login: str) -> list[Problem]:
    username = _stem(path)
    before = base.account(username)
    after = head.account(username) if head is not None else None
    if status == "D":
        return [Problem(path, 0, "accounts cannot be deleted by a pull request; ask a maintainer")]
    if before is None:
        if after is not None and after.github.lower() != login:
            return [Problem(path, after.line, f"new account {after.username!r} names GitHub user {after.github!r}, but the pull request is by {login!r}; an account must be owned by its author")]
        return []
    if before.github.lower() != login:
        return [Problem(path, 0, f"account {before.username!r} belongs to GitHub user {before.github!r}; only that user may change it")]
    if after is not None:
        changed = sorted(key for key, value in asdict(before).items() if key not in MUTABLE_ACCOUNT_FIELDS and asdict(after)[key] != value)
        if changed:
            return [Problem(path, after.line, f"account fields {', '.join(changed)} cannot change; only token_bcrypt may")]
    return []


def _check_image_change(status: str, path: str, base: Index, head: Index | None, login: str) -> list[Problem]:
    parts = path[len(IMAGES_PREFIX):].split("/")
    author = parts[0]
    owner = _owner_login(author, base, head)
    problems = []
    if owner is None:
        problems.append(Problem(path, 0, f"author {author!r} has no account; register it first"))
    elif owner != login:
        problems.append(Problem(path, 0, f"author namespace {author!r} belongs to GitHub user {owner!r}, not {login!r}; push images under your own author"))
    if len(parts) != 2:
        return problems
    before = base.image(author, _stem(path))
    after = head.image(author, _stem(path)) if head is not None else None
    if before is None:
        return problems
    if status == "D" or (head is not None and after is None):
        return [*problems, Problem(path, 0, "published images cannot be deleted; yank their versions instead")]
    if after is None:
        return problems
    for version in before.versions:
        now = after.find(version.version)
        if now is None:
            problems.append(Problem(path, 0, f"published version {version.version!r} was removed; versions are immutable, yank it instead"))
            continue
        changed = sorted(key for key, value in asdict(version).items() if key not in MUTABLE_VERSION_FIELDS and asdict(now)[key] != value)
        if changed:
            problems.append(Problem(path, now.line, f"published version {version.version!r} changed {', '.join(changed)}; versions are immutable, push a new version"))
    return problems


def _new_versions(base: Index, head: Index) -> list[tuple[Image, Version]]:
    found = []
    for key, image in sorted(head.images.items()):
        old = base.images.get(key)
        for version in image.versions:
            if old is None or old.find(version.version) is None:
                found.append((image, version))
    return found


def _check_new_assets(base: Index, head: Index, scratch: Path) -> list[Problem]:
    problems = []
    for image, version in _new_versions(base, head):
        unique = names.unique_name(image.author, image.name, version.version)
        url = version.source or version.url
        if not url:
            problems.append(Problem(image.path, version.line, f"{unique} has no source or url to download the file from; push it with `registry-index push`"))
            continue
        if head.account(version.pusher) is None or names.identity(version.pusher) != names.identity(image.author):
            problems.append(Problem(image.path, version.line, f"pusher {version.pusher!r} must be the author {image.author!r}"))
        log.info("downloading %s from %s", unique, url)
        try:
            path, _, _ = download(url, min(version.size + 1, MAX_ASSET_BYTES), scratch)
        except HostingError as error:
            problems.append(Problem(image.path, version.line, f"{unique}: {error}"))
            continue
        try:
            for mismatch in verify_asset(image, version, path, encrypted=version.is_private):
                problems.append(Problem(image.path, version.line, f"{unique}: {mismatch}"))
        finally:
            path.unlink(missing_ok=True)
    return problems


def step_summary(problems: list[Problem], base: str, head: str) -> str:
    """Return the Markdown that the validation workflow adds to the GitHub step summary."""
    if not problems:
        return f"### Index check passed\n\nThe change from `{base[:12]}` to `{head[:12]}` is valid.\n"
    count = f"{len(problems)} problem" if len(problems) == 1 else f"{len(problems)} problems"
    lines = [f"### Index check failed: {count}", "", "| file | line | problem |", "| --- | --- | --- |"]
    for problem in problems:
        # A path in a pull request may contain a line break, `|` or backticks, which would end the table row, cell or code span.
        path = printable(problem.path).replace("|", "\\|")
        lines.append(f"| {_code_span(path)} | {problem.line or ''} | {_plain_text(printable(problem.message))} |")
    return "\n".join(lines) + "\n"


# Characters that start Markdown emphasis, links, images, inline HTML, entities,
# code spans, strikethrough or a table cell's end.
_MARKDOWN_SYNTAX = re.compile(r"([\\`*_\[\]<>!&~|])")


def _plain_text(text: str) -> str:
    """Return `text` with a backslash before each character that Markdown would read as syntax.

    Messages quote values from the pull request, so a summary must show
    `![x](https://example.invalid/t.png)` as text, not load it as an image.
    """
    return _MARKDOWN_SYNTAX.sub(r"\\\1", text)


def _code_span(text: str) -> str:
    """Return `text` as a Markdown code span, fenced by one more backtick than its longest run of backticks."""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"
