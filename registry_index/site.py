"""Building the static site: the one writer of the build output.

A full build reads the image files in search order in two worker processes,
writes each image's files as it goes into a staging folder beside the output
folder, then adds the files that span images (search nodes, author pages,
the home page) and swaps the staging folder in, so an interrupted build
leaves the previous site complete. Only a compact record of each image stays
in memory.

The build also leaves a spare copy of the site (hard links, so it costs no
file data) and a state file. The next build compares the image files' stat
keys with the state. When only image files changed, it brings the spare up
to date, applies the changes to it, and exchanges it with the site in one
rename, so the old site becomes the spare. The result has the same bytes as a
full build of the same index (tests/test_incremental.py).

NOTE: the site and the spare share files through hard links, and neither is
checked file by file. A file edited in place in either folder stays until
`build --full`; edit the index, never the built folders.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gc
import hashlib
import logging
import multiprocessing
import os
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from . import api, names, pages, search, state
from .errors import InvalidIndex, Problem, SiteError
from .fileio import exchange_folders, replace_folder
from .index import ACCOUNTS_DIR, SETTINGS_FILE, CrossCheck, FileKey, Header, Index, ImageFile, check_index, check_unexpected, file_key, list_images, read_header, read_image_file
from .model import Account, Image, Ordered, Settings
from .progress import Progress
from .state import ImageRecord

log = logging.getLogger(__name__)

# Present in every built site; the build replaces only folders that have it,
# so `--out` pointed at a wrong folder never deletes anyone's files.
MARKER = ".registry-index-site"
# In the site and the spare folder: the token of the build each holds, or
# "dirty" while a build changes the spare. The state file beside the site
# names the token of the site it describes, so a state left from another
# build is never trusted.
GENERATION_FILE = ".registry-index-generation"
# A file changed this close before a build started may change again within
# the same tick of a coarse file system clock without changing its stat, so
# the next build reads it again, as git does with "racily clean" files.
RACY_NANOSECONDS = 2_000_000_000
# Image files per task of a worker process.
CHUNK = 256
WORKERS = 2


@dataclass(frozen=True)
class BuildSummary:
    images: int
    versions: int
    files: int
    bytes: int
    seconds: float
    out: Path
    mode: str = "full"

    def line(self) -> str:
        if self.mode == "nothing changed":
            return f"up to date: none of {self.images} image files changed, nothing written in {self.seconds:.2f} s -> {self.out}"
        return (
            f"built {self.images} images, {self.versions} versions: "
            f"{self.files} files, {self.bytes} bytes written in {self.seconds:.2f} s ({self.mode}) -> {self.out}"
        )


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


class Tree:
    """Writes files under one folder, creating parent folders once.

    With `mirror`, every new file is also hard-linked there, so that the
    mirror becomes a spare copy of the folder as the files are written. When
    a link fails (no room, no hard links), the mirror is given up and
    `mirror_error` contains the reason.
    """

    def __init__(self, root: Path, replace: bool = False, mirror: Path | None = None):
        self.root = root
        self.replace = replace
        self.made: set[str] = set()
        self.files = 0
        self.bytes = 0
        self.mirror = None if mirror is None else str(mirror)
        self.mirror_made: set[str] = set()
        self.mirror_error: str | None = None
        # Paths are joined as strings: os.path.join costs more than the write on small files.
        self._prefix = os.path.join(root, "")

    def write(self, relative: str, content: bytes) -> None:
        """Write `relative`, a normalized relative path, with `content`."""
        parent = relative.rpartition("/")[0]
        if parent not in self.made:
            os.makedirs(os.path.join(self.root, parent), exist_ok=True)
            self.made.add(parent)
        path = self._prefix + relative
        if self.replace:
            # The spare shares files with the site through hard links, so a
            # file is never written in place: a new file is renamed over it.
            temporary = f"{path}.{os.getpid()}.tmp"
            with open(temporary, "wb") as stream:
                stream.write(content)
            os.replace(temporary, path)
        else:
            # os.open rather than open(): no buffered file object, a few µs less on each of a million files.
            descriptor = os.open(path, _NEW_FILE, 0o644)
            try:
                written = os.write(descriptor, content)
                if written < len(content):
                    # A short write (a full disk reports its error on the next call).
                    view = memoryview(content)[written:]
                    while view:
                        view = view[os.write(descriptor, view):]
            finally:
                os.close(descriptor)
            if self.mirror is not None:
                self._link(relative, path, parent)
        self.files += 1
        self.bytes += len(content)

    def _link(self, relative: str, path: str, parent: str) -> None:
        try:
            if parent not in self.mirror_made:
                os.makedirs(os.path.join(self.mirror, parent), exist_ok=True)
                self.mirror_made.add(parent)
            _link(path, f"{self.mirror}/{relative}")
        except OSError as error:
            self.mirror_error = error.strerror or str(error)
            self.mirror = None

    def remove(self, relative: str) -> None:
        """Remove a file and the folders it leaves empty, as a full build would not make them."""
        try:
            os.unlink(os.path.join(self.root, relative))
        except FileNotFoundError:
            return
        parent = os.path.dirname(relative)
        while parent:
            try:
                os.rmdir(os.path.join(self.root, parent))
            except OSError:
                break
            self.made.discard(parent)
            parent = os.path.dirname(parent)


def _link(source: str, target: str) -> None:
    os.link(source, target)


def fingerprint(header: Header) -> str:
    """Return what, besides image files, decides every byte of the site: settings, accounts, templates and this code."""
    digest = hashlib.sha256()
    digest.update(repr(header.settings).encode())
    digest.update(repr(sorted(header.accounts.items())).encode())
    digest.update(code_fingerprint().encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Return a hash of this package's code and templates (read once per process)."""
    digest = hashlib.sha256()
    folder = Path(__file__).resolve().parent
    for path in sorted(folder.glob("*.py")) + sorted(pages.templates_folder().rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _input_keys(root: Path) -> dict[str, FileKey]:
    """Return the stat keys of the settings file and the account files, by path relative to the index."""
    keys: dict[str, FileKey] = {}
    base = str(root)
    for relative in [SETTINGS_FILE, *(f"{ACCOUNTS_DIR}/{name}" for name in sorted(_names(root / ACCOUNTS_DIR)))]:
        try:
            keys[relative] = file_key(os.lstat(os.path.join(base, relative)))
        except OSError:
            keys[relative] = (0, 0, 0, 0)
    return keys


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _open_state(out: Path) -> state.Stored | None:
    """Return the state of the site at `out`, or None when there is none that describes it."""
    try:
        stored = state.Stored(out)
    except (OSError, *state.DAMAGED):
        return None
    if stored.head.generation != _generation(out):
        stored.close()
        return None
    return stored


class Known(NamedTuple):
    """Facts from the state that a build uses before it reads the index."""

    summary: BuildSummary | None = None  # set when nothing changed
    image_files: list[ImageFile] | None = None  # the listing, when it found no problem
    accounts: dict[str, Account] | None = None  # when no account file changed
    stored: state.Stored | None = None  # the open state; the build closes it
    changed: list[ImageFile] | None = None  # image files whose stat key differs from the state's, or is racy
    inputs: dict[str, FileKey] | None = None  # stat keys of the settings and account files, when taken


def _known(root: Path, out: Path, started: float) -> Known:
    """Compare the index with the state of the site at `out` from stat keys alone, reading no file."""
    if not (out / MARKER).is_file():
        return Known()
    stored = _open_state(out)
    if stored is None:
        return Known()
    head = stored.head
    racy = head.started - RACY_NANOSECONDS
    inputs = _input_keys(root)
    same_inputs = inputs == head.inputs and all(key[0] < racy for key in inputs.values())
    problems: list[Problem] = []
    check_unexpected(root, problems)
    image_files = list_images(root, problems)
    if problems:
        return Known(stored=stored, inputs=inputs)
    keys = stored.keys
    changed = [image_file for image_file in image_files if keys.get(image_file.relative) != image_file.key or image_file.key[0] >= racy]
    if same_inputs and not changed and len(image_files) == len(keys) and head.code == code_fingerprint():
        summary = BuildSummary(len(keys), 0, 0, 0, time.monotonic() - started, out, "nothing changed")
        return Known(summary, image_files, stored=stored)
    try:
        accounts = stored.accounts() if same_inputs else None
    except state.DAMAGED:
        accounts = None
    return Known(None, image_files, accounts, stored, changed, inputs)


def _record(image_file: ImageFile, image: Image, data: bytes | None = None, ordered: Ordered | None = None) -> ImageRecord:
    """Return the compact record of an image; `data` is the file's bytes when the fast reader read them, `ordered` is `image.ordered()` when known."""
    versions = image.versions
    # A version that repeats an earlier one is reported as a duplicate version, not as a reused file.
    first: dict[str, int] = {}
    duplicates = {id(version) for version in versions if first.setdefault(names.identity(version.version), id(version)) != id(version)}
    return ImageRecord(
        key=image_file.key,
        path=image.path,
        author=image.author,
        name=image.name,
        versions=tuple(version.version for version in versions),
        lookup_ids=tuple((version.protection.lookup_id, f"{image.path}:{version.line}") for version in versions if version.protection is not None),
        files=tuple((version.file.lower(), version.line) for version in versions if not version.url and id(version) not in duplicates),
        entry=api.search_entry(image, ordered),
        listing=pages.listing(image, ordered),
        # The bytes decide the image, and hashing them costs far less than building the image's repr.
        digest=hashlib.blake2b(data if data is not None else repr(image).encode(), digest_size=16).hexdigest(),
    )


def image_outputs(env, settings: Settings, image: Image, ordered: Ordered | None = None) -> list[tuple[str, bytes]]:
    """Return (path, content) of every file of one image: its API files and its page; `ordered` is `image.ordered()` when known."""
    files = api.image_files(settings, image, ordered)
    page = pages.render_image_page(env, settings, image, ordered)
    if page is not None:
        files.append((pages.image_page_path(image.author, image.name), page))
    return files


# The worker processes read these, set before they fork.
_job: dict = {}


def _render_chunk(image_files: list[ImageFile]) -> tuple[list[ImageRecord | None], list[Problem], Tree]:
    """Read, check and write a run of image files; return their records (None for an unusable file), problems and the writer's counts."""
    header: Header = _job["header"]
    tree = Tree(_job["staging"], mirror=_job["mirror"])
    env = _job["env"]
    problems: list[Problem] = []
    records: list[ImageRecord | None] = []
    for image_file in image_files:
        image, data = read_image_file(header.root, image_file.path, header.accounts, problems, transient=True)
        if image is None:
            records.append(None)
            continue
        # The versions newest first and the latest, which the record, the files and the page all use.
        ordered = image.ordered()
        records.append(_record(image_file, image, data, ordered))
        if not problems:
            try:
                for relative, content in image_outputs(env, header.settings, image, ordered):
                    tree.write(relative, content)
            except FileExistsError:
                # Another image has the same identity; the check across files reports it.
                pass
    return records, problems, _counts_of(tree)


def _counts_of(tree: Tree) -> Tree:
    """Return what the parent needs of a worker's writer: its counts and mirror error, not its sets of folders."""
    tree.made = tree.mirror_made = set()
    return tree


def _write_nodes(keys: list[str]) -> Tree:
    """Compute and write the nodes of `keys` (the empty key or keys of 1 to PREFIX_LENGTH characters) and the nodes below them."""
    corpus: search.Corpus = _job["corpus"]
    postings: search.Postings = _job["postings"]
    tree = Tree(_job["staging"], mirror=_job["mirror"])
    for key in keys:
        if key == "":
            nodes = search.nodes_of(corpus, "", search.everything(corpus)) if corpus.entries else {}
        else:
            nodes = search.nodes_of(corpus, key, postings.matches(key))
        for node_key, node in nodes.items():
            tree.write(search.node_path(node_key), search.encode_node(corpus, node))
    return _counts_of(tree)


def _chunks(items: list, size: int) -> list[list]:
    return [items[start:start + size] for start in range(0, len(items), size)]


class _InProcess:
    """The part of a process pool that the build uses, run in this process."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def imap(self, function, items):
        return map(function, items)

    imap_unordered = imap


class _Workers:
    """WORKERS forked processes that inherit what `_job` holds; they finish their tasks and exit when the block ends."""

    def __enter__(self):
        # Frozen objects are skipped by the workers' cycle collector, so the
        # records and the search data they inherit stay in shared pages.
        # gc.unfreeze() releases every frozen object, so a process that froze
        # its own objects is left as it is.
        freeze = gc.get_freeze_count() == 0
        if freeze:
            gc.freeze()
        # A Ctrl-C or SIGTERM inside Pool() would leave its workers and threads
        # running with nothing to stop them. So those signals wait until the
        # pool exists, and the workers unblock them in `_worker_start`.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED_SIGNALS)
        try:
            pool = multiprocessing.get_context("fork").Pool(WORKERS, initializer=_worker_start)
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            raise
        finally:
            if freeze:
                gc.unfreeze()
        try:
            # A signal that waited is handled here, and its exception stops the new pool.
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        except BaseException:
            pool.terminate()
            pool.join()
            raise
        self.pool = pool
        return pool

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.pool.close()
        else:
            self.pool.terminate()
        self.pool.join()


_DEFERRED_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _worker_start() -> None:
    # The CLI turns SIGTERM into SystemExit, which a pool worker must not
    # catch: the parent stops its workers with SIGTERM after a failure.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The parent blocked these signals while it made the pool. A SIGTERM that waited ends the worker here.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _DEFERRED_SIGNALS)
    # The parent turned the collector off for the build (`_without_cycle_collection`), but a worker's own objects need it.
    gc.enable()


@contextlib.contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Turn Python's cycle collector off in this process for the block.

    A full build keeps millions of objects until it ends (records, search
    entries, postings), and each run of the collector's oldest generation
    walks all of them: about 5 % of a 100,000-image build. The build makes
    few reference cycles, so skipping the collection costs little memory.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _pool(tasks: int):
    """Return a pool of WORKERS forked processes, or this process alone for one task.

    A process with other threads (a test with a server running, say) is never
    forked: a lock held by another thread at the fork stays held forever in
    the child.
    """
    if tasks < 2 or threading.active_count() > 1:
        return _InProcess()
    return _Workers()


def _cross_check(records: Iterable[ImageRecord], problems: list[Problem]) -> None:
    """Check the rules across image files on their records, in search order, as `CrossCheck` does on images."""
    check = CrossCheck(problems)
    for record in records:
        other = check.images.get(record.identity)
        if other is not None:
            problems.append(Problem(record.path, 0, f"image {record.author}/{record.name} collides with {other}; names ignore case and '_' versus '-'"))
            continue
        check.images[record.identity] = f"{record.author}/{record.name} in {record.path}"
        for lookup_id, here in record.lookup_ids:
            first = check.lookup_ids.setdefault(lookup_id, here)
            if first != here:
                problems.append(Problem(record.path, int(here.rsplit(":", 1)[1]), f"protection lookup_id is the same as at {first}; push the version again with its own code"))
        for file, line in record.files:
            first = check.files.setdefault(file, (record.path, line))
            if first != (record.path, line):
                problems.append(Problem(record.path, line, f"file {file!r} is also used at {first[0]}:{first[1]}; every version needs its own release asset name"))


def _common_files(env, settings: Settings, accounts: dict, records: list[ImageRecord]) -> Iterator[tuple[str, bytes]]:
    """Yield the files that span images, except search nodes: anonymous pulls, author pages, home and index.json."""
    for name, authors in _anonymous(records).items():
        yield api.anonymous_file(authors[0][1], [author for author, _ in authors])
    authors = _authors(accounts, records)
    for author, listings in authors:
        yield pages.author_page_path(author), pages.render_author_page(env, settings, author, listings)
    counts = _counts(records)
    yield from pages.render_common_pages(env, settings, [(author, len(listings)) for author, listings in authors], counts["listed_images"], counts["searchable"])
    yield "v1/index.json", api.encode(api.registry_document(settings, counts["images"], counts["versions"], counts["searchable"]))


def _anonymous(records: Iterable[ImageRecord], only: set[str] | None = None) -> dict[str, list[tuple[str, str]]]:
    """Return, by name identity (those in `only`, or all), the (author, name) of every image with a public version, in search order."""
    by_name: dict[str, list[tuple[str, str]]] = {}
    for record in records:
        if record.listing is not None:
            key = names.identity(record.name)
            if only is None or key in only:
                by_name.setdefault(key, []).append((record.author, record.name))
    return dict(sorted(by_name.items()))


def _authors(accounts: dict, records: Iterable[ImageRecord]) -> list[tuple[str, list[pages.Listing]]]:
    """Return every author with their listed images, in identity order. Every account is an author, with or without images."""
    by_author: dict[str, tuple[str, list[pages.Listing]]] = {}
    for account in accounts.values():
        by_author.setdefault(names.identity(account.username), (account.username, []))
    for record in records:
        if record.listing is not None:
            by_author.setdefault(names.identity(record.author), (record.author, []))[1].append(record.listing)
    return [by_author[key] for key in sorted(by_author)]


def _counts(records: Iterable[ImageRecord]) -> dict[str, int]:
    counts = {"images": 0, "versions": 0, "listed_images": 0, "searchable": 0}
    for record in records:
        if record.listing is not None:
            counts["images"] += 1
            counts["versions"] += record.listing.versions
        if record.entry is not None:
            counts["listed_images"] += 1
            counts["searchable"] += len(record.entry.versions)
    return counts


def _check_target(out: Path) -> None:
    if not out.exists():
        return
    if out.is_symlink() or not out.is_dir():
        raise SiteError(f"{out} exists and is not a folder; choose another --out")
    if any(out.iterdir()) and not (out / MARKER).is_file():
        raise SiteError(f"{out} is not empty and was not built by registry-index (no {MARKER} file); choose an empty or new --out folder")


def check_out(root: Path | str, out: Path | str) -> None:
    """Raise SiteError when the output folder `out` contains the index folder `root`, is inside it, or keeps its side files where the index is."""
    resolved_out = Path(os.path.realpath(out))
    resolved_index = Path(os.path.realpath(root))
    if resolved_index == resolved_out or resolved_out in resolved_index.parents:
        raise SiteError(f"--out {out} contains the index folder {root}; the build replaces --out as a whole, so choose a folder outside the index")
    if resolved_index in resolved_out.parents:
        raise SiteError(f"--out {out} is inside the index folder {root}; the built site would become part of the index, so choose a folder outside the index")
    # The build also writes and deletes `.<out name>.*` beside --out: the spare copy, the state, the lock and staging folders.
    side = f".{resolved_out.name}."
    for folder in (resolved_index, *resolved_index.parents):
        if folder.parent == resolved_out.parent and folder.name.startswith(side):
            raise SiteError(
                f"the index folder {root} is at {folder}, where the build keeps its own files beside --out {out} (names starting with {side}); "
                "move the index or choose another --out"
            )


def _spare(out: Path) -> Path:
    return out.with_name(f".{out.name}.spare")


def _discard_spare(spare: Path) -> None:
    """Remove the spare folder so that no later build can take a half-removed one for a copy of the site."""
    if spare.is_symlink() or spare.is_file():
        spare.unlink()
        return
    if not spare.exists():
        return
    # One rename first: a build killed while deleting leaves a folder no one reads.
    retired = spare.with_name(f"{spare.name}.old-{os.getpid()}")
    os.rename(spare, retired)
    shutil.rmtree(retired, ignore_errors=True)


def _remove_stale_staging(out: Path) -> None:
    """Remove staging folders and unfinished state files that an interrupted build left beside `out`."""
    for entry in out.parent.glob(f".{out.name}.staging-*"):
        log.debug("removing %s left by an interrupted build", entry)
        shutil.rmtree(entry, ignore_errors=True)
    for entry in out.parent.glob(f".{out.name}.state.*.tmp"):
        entry.unlink(missing_ok=True)
    for entry in [*out.parent.glob(f".{out.name}.spare.old-*"), *out.parent.glob(f".{out.name}.spare.new-*")]:
        shutil.rmtree(entry, ignore_errors=True)


def write_site(files: Iterable[tuple[str, bytes]], out: Path) -> tuple[int, int]:
    """Write all files into a staging folder and swap it in at `out`; return (files, bytes)."""
    out = Path(os.path.abspath(out))
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        tree = Tree(staging)
        for relative, content in files:
            tree.write(relative, content)
        os.chmod(staging, 0o755)
        replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return tree.files, tree.bytes


def build_site(source: Index | Path | str, out: Path | str, incremental: bool = True, progress: Progress | None = None) -> BuildSummary:
    """Render the site of the index `source` (a folder, or an index already loaded) into `out`.

    With `incremental`, a site that this build wrote before is updated in
    place of a full build when only image files changed. Two builds into
    one `out` run one after the other: the second waits for the first.
    """
    # Checked before the lock file is made, because the lock file goes beside `out`.
    check_out(source.root if isinstance(source, Index) else source, out)
    out = Path(os.path.abspath(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(f".{out.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build(source, out, incremental, progress)


def _build(source: Index | Path | str, out: Path, incremental: bool, progress: Progress | None) -> BuildSummary:
    started = time.monotonic()
    wall_clock = time.time_ns()
    progress = progress or Progress(enabled=False)
    out = Path(os.path.abspath(out))
    inputs: dict[str, FileKey] = {}
    if isinstance(source, Index):
        header = Header(source.root, source.settings, source.accounts, [], [])
        loaded = source
        _check_target(out)
    else:
        progress.stage("listing the index")
        root = Path(source)
        _remove_stale_staging(out)
        if incremental and root.is_dir():
            # Checking stat keys alone is enough to say nothing changed.
            known = _known(root, out, started)
        else:
            known = Known()
        try:
            if known.summary is not None:
                return known.summary
            inputs = known.inputs if known.inputs is not None else _input_keys(root)
            header = read_header(source, known.image_files, known.accounts)
            loaded = None
            _check_target(out)
            if header.settings is None or header.problems:
                _raise_every_problem(header)
            if incremental:
                summary = _incremental(header, out, started, wall_clock, progress, inputs, known)
                if summary is not None:
                    progress.done()
                    return summary
                if known.accounts is not None:
                    # A full build reads the accounts from their files, never from the state.
                    header = read_header(source, known.image_files)
                    if header.problems:
                        _raise_every_problem(header)
        finally:
            if known.stored is not None:
                known.stored.close()
    summary = _full(header, loaded, out, started, wall_clock, progress, inputs)
    progress.done()
    log.debug("%s", summary.line())
    return summary


def _raise_every_problem(header: Header) -> None:
    """Raise InvalidIndex with the problems of the image files too, as `validate` lists them, not only the header's.

    Only a failing build reads every image file this way, once.
    """
    check_index(header.root)  # raises InvalidIndex with every problem
    # The index was fixed since the header was read: report what was found then.
    raise InvalidIndex(header.problems)


def _full(header: Header, loaded: Index | None, out: Path, started: float, wall_clock: int, progress: Progress, inputs: dict[str, FileKey]) -> BuildSummary:
    token = secrets.token_hex(8)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    spare = _spare(out)
    # The spare copy grows beside the staging folder as the workers write.
    new_spare = None if loaded is not None else spare.with_name(f"{spare.name}.new-{os.getpid()}")
    head = state.Head(state.FORMAT, fingerprint(header), token, "", wall_clock, inputs, code_fingerprint(), [], [])
    prepared: list[Path] = []

    def keep_state(records: dict[str, ImageRecord]) -> None:
        # Written while the workers write the search nodes, and put in place after the site.
        if loaded is None:
            prepared.append(state.prepare(out, head, records, header.accounts))

    try:
        with _without_cycle_collection():
            files, size, records, mirror_error = _render_all(header, loaded, staging, new_spare, progress, keep_state)
        tree = Tree(staging, mirror=None if mirror_error else new_spare)
        if loaded is None:
            tree.write(GENERATION_FILE, f"{token}\n".encode())
        mirror_error = mirror_error or tree.mirror_error
        os.chmod(staging, 0o755)
        _discard_spare(spare)
        if new_spare is not None:
            if mirror_error:
                # The site is whole without it; only the next build is a full one.
                log.warning("cannot keep a spare copy of the site at %s (%s); the next build will render everything", spare, mirror_error)
                shutil.rmtree(new_spare, ignore_errors=True)
            else:
                os.chmod(new_spare, 0o755)
                os.rename(new_spare, spare)
        replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if new_spare is not None:
            shutil.rmtree(new_spare, ignore_errors=True)
        for path in prepared:
            path.unlink(missing_ok=True)
        raise
    for path in prepared:
        state.install(out, path)
    counts = _counts(records.values())
    return BuildSummary(counts["images"], counts["versions"], files + tree.files, size + tree.bytes, time.monotonic() - started, out)


def _render_all(
    header: Header, loaded: Index | None, staging: Path, mirror: Path | None, progress: Progress, meanwhile: Callable[[dict[str, ImageRecord]], None],
) -> tuple[int, int, dict[str, ImageRecord], str | None]:
    """Write every file of the site into `staging`, hard-linked into `mirror` too; raise InvalidIndex on any problem.

    Return (files, bytes, records, why the mirror was given up or None).
    `meanwhile` gets the records while the workers write the search nodes.
    """
    env = pages.environment()
    settings = header.settings
    problems = list(header.problems)
    records: dict[str, ImageRecord] = {}
    files = size = 0
    mirror_errors: list[str] = []
    tree = Tree(staging, mirror=mirror)
    tree.write(MARKER, b"registry-index site\n")
    tree.write(".nojekyll", b"")
    corpus = search.Corpus()
    postings = search.Postings(corpus)
    if loaded is not None:
        for image in loaded.sorted_images():
            relative = os.path.relpath(image.path, loaded.root.name) if image.path else f"{image.author}/{image.name}"
            record = records[relative] = _record(ImageFile(relative, relative, (0, 0, 0, 0)), image)
            if record.entry is not None:
                postings.add(corpus.append(record.entry))
            for path, content in image_outputs(env, settings, image):
                tree.write(path, content)
    else:
        progress.stage("rendering images", total=len(header.image_files))
        _job.update(header=header, staging=staging, env=env, mirror=mirror)
        chunks = _chunks(header.image_files, CHUNK)
        with _pool(len(chunks)) as pool:
            for chunk, (chunk_records, chunk_problems, written) in zip(chunks, pool.imap(_render_chunk, chunks)):
                problems.extend(chunk_problems)
                files += written.files
                size += written.bytes
                if written.mirror_error:
                    mirror_errors.append(written.mirror_error)
                for image_file, record in zip(chunk, chunk_records):
                    if record is not None:
                        records[image_file.relative] = record
                        # Gather search keys here while the workers render the next images.
                        if record.entry is not None:
                            postings.add(corpus.append(record.entry))
                progress.advance(len(chunk))
        _cross_check(records.values(), problems)
        if problems:
            raise InvalidIndex(problems)
    for path, content in _common_files(env, settings, header.accounts, list(records.values())):
        tree.write(path, content)
    progress.stage("writing search")
    _job.update(corpus=corpus, postings=postings, staging=staging, mirror=None if mirror_errors or tree.mirror_error else mirror)
    node_files = node_bytes = 0
    # Large keys first, so that the two workers finish at about the same time.
    keys = sorted(postings.keys(), key=lambda key: (-postings.size(key), key))
    key_chunks = [[""]] + [keys[start::WORKERS * 8] for start in range(WORKERS * 8)]
    with _pool(len(keys)) as pool:
        results = pool.imap_unordered(_write_nodes, key_chunks)
        meanwhile(records)
        for written in results:
            node_files += written.files
            node_bytes += written.bytes
            if written.mirror_error:
                mirror_errors.append(written.mirror_error)
            progress.advance(written.files)
    _job.clear()
    mirror_error = mirror_errors[0] if mirror_errors else tree.mirror_error
    return files + tree.files + node_files, size + tree.bytes + node_bytes, records, mirror_error


def _inside(relative: object) -> bool:
    """Return whether `relative` is a path inside a folder: relative, normalized, and without `..`."""
    return (
        isinstance(relative, str) and relative != "" and "\x00" not in relative and not os.path.isabs(relative)
        and os.path.normpath(relative) == relative and relative != ".." and not relative.startswith("../")
    )


def _generation(folder: Path) -> str | None:
    try:
        return (folder / GENERATION_FILE).read_text().strip()
    except OSError:
        return None


def _spare_ready(out: Path, head: state.Head) -> Path | None:
    """Bring the spare folder to the site's generation, or return None when it cannot be."""
    spare = _spare(out)
    if spare.is_symlink() or not spare.is_dir():
        return None
    generation = _generation(spare)
    if generation == head.generation:
        return spare
    if not head.previous or generation != head.previous:
        return None
    if not all(_inside(relative) for relative in [*head.removed, *head.written]):
        log.warning("the build state %s names files outside the site; building in full", state.state_path(out))
        return None
    tree = Tree(spare, replace=True)
    tree.write(GENERATION_FILE, b"dirty\n")
    for relative in head.removed:
        tree.remove(relative)
    for relative in head.written:
        destination = spare / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = f"{destination}.{os.getpid()}.tmp"
        os.link(out / relative, temporary)
        os.replace(temporary, destination)
    tree.write(GENERATION_FILE, f"{head.generation}\n".encode())
    return spare


def _incremental(header: Header, out: Path, started: float, wall_clock: int, progress: Progress, inputs: dict[str, FileKey], known: Known) -> BuildSummary | None:
    """Update the site at `out` for the image files that changed; return None when a full build is needed."""
    stored = known.stored
    if stored is None or known.changed is None or not (out / MARKER).is_file():
        return None
    try:
        return _update(stored, header, out, started, wall_clock, progress, inputs, known.changed)
    except state.DAMAGED as error:
        # Values of a damaged or edited state file: the full build does not read it.
        log.warning("the build state %s is damaged (%s: %s); building in full", state.state_path(out), type(error).__name__, error)
        return None


def _update(stored: state.Stored, header: Header, out: Path, started: float, wall_clock: int, progress: Progress, inputs: dict[str, FileKey], changed: list[ImageFile]) -> BuildSummary | None:
    head = stored.head
    if head.fingerprint != fingerprint(header):
        return None
    removed_files = []
    if len(stored.keys) != len(header.image_files) - sum(1 for image_file in changed if image_file.relative not in stored.keys):
        present = {image_file.relative for image_file in header.image_files}
        removed_files = [relative for relative in stored.keys if relative not in present]
    progress.stage("updating", total=len(changed) + len(removed_files))
    problems: list[Problem] = []
    new_images: dict[str, Image] = {}
    new_records: dict[str, ImageRecord] = {}
    old_records: dict[str, ImageRecord] = {}
    for relative in removed_files:
        old_records[relative] = stored.record(relative)
    for image_file in changed:
        image, data = read_image_file(header.root, image_file.path, header.accounts, problems)
        if problems or image is None:
            return None  # the full build reports every problem, in order
        record = _record(image_file, image, data)
        old = stored.record(image_file.relative)
        # A file with a new stat key and the same content (touched, or checked out again) changes nothing.
        if old is None or old[1:] != record[1:]:
            new_images[image_file.relative] = image
            new_records[image_file.relative] = record
            if old is not None:
                old_records[image_file.relative] = old
    keys = dict(stored.keys)
    for relative in removed_files:
        del keys[relative]
    for image_file in changed:
        keys[image_file.relative] = image_file.key
    if not new_records and not removed_files:
        stored.commit(head._replace(started=wall_clock, inputs=inputs), keys)
        return BuildSummary(len(keys), 0, 0, 0, time.monotonic() - started, out, "nothing changed")
    if len(new_records) + len(removed_files) > len(header.image_files) // 10 + 16:
        log.debug("%d of %d images changed; building in full", len(new_records) + len(removed_files), len(header.image_files))
        return None
    if not _fits(stored, old_records, new_records):
        return None
    spare = _spare_ready(out, head)
    if spare is None:
        return None
    env = pages.environment()
    settings = header.settings
    stored.apply(old_records, new_records)

    written: dict[str, bytes] = {}
    for image in new_images.values():
        for path, content in image_outputs(env, settings, image):
            written[path] = content
    stale = set()
    for record in old_records.values():
        stale.update(_old_image(record))
    # Files that span images: rewrite those of the names and authors touched.
    touched = [*old_records.values(), *new_records.values()]
    for name_id in {names.identity(record.name) for record in touched}:
        path = api.anonymous_path(name_id)
        same_name = stored.same_name(name_id)
        if same_name:
            written[path] = api.anonymous_file(same_name[0][1], [author for author, _ in same_name])[1]
        else:
            stale.add(path)
    for author_id in {names.identity(record.author) for record in touched}:
        account = header.accounts.get(author_id)
        if account is not None:
            written[pages.author_page_path(account.username)] = pages.render_author_page(env, settings, account.username, stored.listings(author_id))
    per_author = stored.listed_per_author()
    authors = [(header.accounts[key].username, per_author.get(key, 0)) for key in sorted(header.accounts)]
    counts = stored.counts()
    for path, content in pages.render_common_pages(env, settings, authors, counts["listed_images"], counts["searchable"]):
        written[path] = content
    written["v1/index.json"] = api.encode(api.registry_document(settings, counts["images"], counts["versions"], counts["searchable"]))
    nodes, node_removals = _changed_nodes(stored, out, old_records, new_records, counts["searchable"])
    for key, content in nodes.items():
        written[search.node_path(key)] = content
    stale.update(search.node_path(key) for key in node_removals)

    if not all(_inside(relative) for relative in stale):
        # The paths of old images come from the state: a damaged one must not reach outside the site.
        log.warning("the build state %s names files outside the site; building in full", state.state_path(out))
        return None
    tree = Tree(spare, replace=True)
    tree.write(GENERATION_FILE, b"dirty\n")
    removed = sorted(relative for relative in stale - set(written) if (out / relative).exists())
    for relative in removed:
        tree.remove(relative)
    changed_paths = [relative for relative in sorted(written) if not _same(out / relative, written[relative])]
    for relative in changed_paths:
        tree.write(relative, written[relative])
    token = secrets.token_hex(8)
    tree.write(GENERATION_FILE, f"{token}\n".encode())
    if not exchange_folders(spare, out):
        log.info("this system cannot exchange two folders in one step; building in full")
        return None
    stored.commit(state.Head(state.FORMAT, head.fingerprint, token, head.generation, wall_clock, inputs, code_fingerprint(), changed_paths + [GENERATION_FILE], removed), keys)
    progress.advance(len(changed) + len(removed_files))
    return BuildSummary(counts["images"], counts["versions"], tree.files, tree.bytes, time.monotonic() - started, out, "incremental")


def _fits(stored: state.Stored, old_records: dict[str, ImageRecord], new_records: dict[str, ImageRecord]) -> bool:
    """Return whether the changed records keep the rules across files; when not, the full build reports the problem."""
    leaving = set(old_records) | set(new_records)
    identities: set[tuple[str, str]] = set()
    files: set[str] = set()
    lookup_ids: set[str] = set()
    for record in new_records.values():
        if record.identity in identities or any(holder not in leaving for holder in stored.holders(*record.identity)):
            return False
        identities.add(record.identity)
        for file, _ in record.files:
            owner = stored.file_owner(file)
            if file in files or (owner is not None and owner not in leaving):
                return False
            files.add(file)
        for lookup_id, _ in record.lookup_ids:
            owner = stored.lookup_owner(lookup_id)
            if lookup_id in lookup_ids or (owner is not None and owner not in leaving):
                return False
            lookup_ids.add(lookup_id)
    return True


def _changed_nodes(stored: state.Stored, out: Path, old_records: dict[str, ImageRecord], new_records: dict[str, ImageRecord], searchable: int) -> tuple[dict[str, bytes], set[str]]:
    """Return the search nodes to write (key -> bytes) and the keys whose nodes to remove."""
    changes: list[tuple[search.Entry | None, search.Entry | None]] = []
    for relative in {**old_records, **new_records}:
        old = old_records[relative].entry if relative in old_records else None
        new = new_records[relative].entry if relative in new_records else None
        if old != new:
            changes.append((old, new))
    if not changes:
        return {}, set()
    if all(search.grows(old, new) for old, new in changes):
        return search.Growth([(old, new) for old, new in changes if new is not None], lambda key: _read_node(out, key)).run(searchable), set()
    # Some version left search: recompute the nodes of the changed keys from every entry.
    corpus = search.Corpus(record.entry for _, record in stored.records() if record.entry is not None)
    folder = out / search.SEARCH_FOLDER
    existing = [search.file_key(name[:-5]) for name in os.listdir(folder)] if folder.is_dir() else []
    old_entries = [old for old, _ in changes if old is not None]
    new_entries = [new for _, new in changes if new is not None]
    nodes, removals = search.update_nodes(corpus, old_entries, new_entries, lambda key: _read_node(out, key), existing)
    return {key: search.encode_node(corpus, node) for key, node in nodes.items()}, removals


def _old_image(record: ImageRecord) -> list[str]:
    """Return the paths of the API files and pages that the site contains for the image of `record`."""
    paths = [api.pull_path(record.author, record.name, version) for version in record.versions]
    paths += [api.private_path(lookup_id) for lookup_id, _ in record.lookup_ids]
    paths.append(api.pull_path(record.author, record.name, names.LATEST))
    paths.append(api.image_document_path(record.author, record.name))
    paths.append(pages.image_page_path(record.author, record.name))
    paths.append(pages.author_page_path(record.author))
    return paths


def _read_node(out: Path, key: str) -> dict | None:
    import json

    try:
        return json.loads((out / search.node_path(key)).read_bytes())
    except FileNotFoundError:
        return None


def _same(path: Path, content: bytes) -> bool:
    try:
        if path.stat().st_size != len(content):
            return False
        return path.read_bytes() == content
    except OSError:
        return False
