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

import hashlib
import fcntl
import logging
import marshal
import multiprocessing
import os
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from . import api, names, pages, search
from .errors import InvalidIndex, Problem, SiteError
from .fileio import exchange_folders, replace_folder
from .index import ACCOUNTS_DIR, SETTINGS_FILE, CrossCheck, FileKey, Header, Index, ImageFile, file_key, list_images, read_header, read_image
from .model import Image, Settings
from .progress import Progress

log = logging.getLogger(__name__)

# Present in every built site; the build replaces only folders that have it,
# so `--out` pointed at a wrong folder never deletes anyone's files.
MARKER = ".registry-index-site"
# In the site and the spare folder: the token of the build each holds, or
# "dirty" while a build changes the spare. The state file beside the site
# names the token of the site it describes, so a state left from another
# build is never trusted.
GENERATION_FILE = ".registry-index-generation"
STATE_FORMAT = 1
# A file changed this close before a build started may change again within
# the same tick of a coarse file system clock without changing its stat, so
# the next build reads it again, as git does with "racily clean" files.
RACY_NANOSECONDS = 2_000_000_000
# Image files per task of a worker process.
CHUNK = 256
WORKERS = 2


class ImageRecord(NamedTuple):
    """The record of one image file that lets a later build skip reading it again."""

    key: FileKey
    path: str  # as messages show it
    author: str
    name: str
    versions: tuple[str, ...]  # every version, private ones included
    lookup_ids: tuple[tuple[str, str], ...]  # (lookup id, "path:line") of private versions
    files: tuple[tuple[str, int], ...]  # (lowercase release asset name, line) of versions without their own URL
    entry: search.Entry | None
    listing: pages.Listing | None

    @property
    def identity(self) -> tuple[str, str]:
        return names.identity(self.author), names.identity(self.name)


@dataclass
class State:
    """The state file: how the site was built, to rebuild it incrementally."""

    format: int
    fingerprint: str
    generation: str  # token of the site this state describes
    previous: str  # token of the site before; `written` and `removed` turn that one into this one
    started: int  # time.time_ns() when the build began
    records: dict[str, ImageRecord]  # by image file path relative to the index, in search order
    written: list[str]
    removed: list[str]
    inputs: dict[str, FileKey]  # stat keys of the settings and account files when the build began
    code: str  # hash of this code and the templates


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


class Tree:
    """Writes files under one folder, creating parent folders once."""

    def __init__(self, root: Path, replace: bool = False):
        self.root = root
        self.replace = replace
        self.made: set[str] = set()
        self.files = 0
        self.bytes = 0

    def write(self, relative: str, content: bytes) -> None:
        parent = os.path.dirname(relative)
        if parent not in self.made:
            os.makedirs(os.path.join(self.root, parent), exist_ok=True)
            self.made.add(parent)
        path = os.path.join(self.root, relative)
        if self.replace:
            # The spare shares files with the site through hard links, so a
            # file is never written in place: a new file is renamed over it.
            temporary = f"{path}.{os.getpid()}.tmp"
            with open(temporary, "wb") as stream:
                stream.write(content)
            os.replace(temporary, path)
        else:
            with open(path, "xb") as stream:
                stream.write(content)
        self.files += 1
        self.bytes += len(content)

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


def fingerprint(header: Header) -> str:
    """Return what, besides image files, decides every byte of the site: settings, accounts, templates and this code."""
    digest = hashlib.sha256()
    digest.update(repr(header.settings).encode())
    digest.update(repr(sorted(header.accounts.items())).encode())
    digest.update(code_fingerprint().encode())
    return digest.hexdigest()


def code_fingerprint() -> str:
    """Return a hash of this package's code and templates."""
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
    for relative in [SETTINGS_FILE, *(f"{ACCOUNTS_DIR}/{name}" for name in sorted(_names(root / ACCOUNTS_DIR)))]:
        try:
            keys[relative] = file_key(os.lstat(root / relative))
        except OSError:
            keys[relative] = (0, 0, 0, 0)
    return keys


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _up_to_date(root: Path, out: Path, started: float) -> BuildSummary | None:
    """Return a summary when the site at `out` was built from exactly these files and this code, without reading any of them; else None."""
    if not (out / MARKER).is_file():
        return None
    state = _load_state(out)
    if state is None:
        return None
    racy = state.started - RACY_NANOSECONDS
    inputs = _input_keys(root)
    if inputs != state.inputs or any(key[0] >= racy for key in inputs.values()) or state.code != code_fingerprint():
        return None
    problems: list[Problem] = []
    image_files = list_images(root, problems)
    if problems or len(image_files) != len(state.keys):
        return None
    for image_file in image_files:
        if state.keys.get(image_file.relative) != image_file.key or image_file.key[0] >= racy:
            return None
    return BuildSummary(len(state.keys), 0, 0, 0, time.monotonic() - started, out, "nothing changed")


def _record(image_file: ImageFile, image: Image) -> ImageRecord:
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
        entry=api.search_entry(image),
        listing=pages.listing(image),
    )


def image_outputs(env, settings: Settings, image: Image) -> list[tuple[str, bytes]]:
    """Return (path, content) of every file of one image: its API files and its page."""
    files = api.image_files(settings, image)
    page = pages.render_image_page(env, settings, image)
    if page is not None:
        files.append((pages.image_page_path(image.author, image.name), page))
    return files


# The worker processes read these, set before they fork.
_job: dict = {}


def _render_chunk(image_files: list[ImageFile]) -> tuple[list[ImageRecord | None], list[Problem], int, int]:
    """Read, check and write a run of image files; return their records (None for an unusable file) and problems."""
    header: Header = _job["header"]
    tree = Tree(_job["staging"])
    env = _job["env"]
    problems: list[Problem] = []
    records: list[ImageRecord | None] = []
    for image_file in image_files:
        image = read_image(header.root, image_file.path, header.accounts, problems)
        if image is None:
            records.append(None)
            continue
        records.append(_record(image_file, image))
        if not problems:
            try:
                for relative, content in image_outputs(env, header.settings, image):
                    tree.write(relative, content)
            except FileExistsError:
                # Another image has the same identity; the check across files reports it.
                pass
    return records, problems, tree.files, tree.bytes


def _write_nodes(keys: list[str]) -> tuple[int, int]:
    """Compute and write the nodes of `keys` (the empty key or keys of 1 to PREFIX_LENGTH characters) and the nodes below them."""
    corpus: search.Corpus = _job["corpus"]
    postings: search.Postings = _job["postings"]
    tree = Tree(_job["staging"])
    for key in keys:
        if key == "":
            nodes = search.nodes_of(corpus, "", search.everything(corpus)) if corpus.entries else {}
        else:
            nodes = search.nodes_of(corpus, key, postings.matches(key))
        for node_key, node in nodes.items():
            tree.write(search.node_path(node_key), search.encode_node(corpus, node))
    return tree.files, tree.bytes


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
        self.pool = multiprocessing.get_context("fork").Pool(WORKERS, initializer=_worker_start)
        return self.pool

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.pool.close()
        else:
            self.pool.terminate()
        self.pool.join()


def _worker_start() -> None:
    # The CLI turns SIGTERM into SystemExit, which a pool worker must not
    # catch: the parent stops its workers with SIGTERM after a failure.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
    yield from pages.render_common_pages(env, settings, authors, counts["listed_images"], counts["searchable"])
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


def _check_out(root: Path, out: Path) -> None:
    resolved_out = Path(os.path.realpath(out))
    resolved_index = Path(os.path.realpath(root))
    if resolved_index == resolved_out or resolved_out in resolved_index.parents:
        raise SiteError(f"--out {out} contains the index folder {root}; the build replaces --out as a whole, so choose a folder outside the index")


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
    for entry in out.parent.glob(f".{out.name}.spare.old-*"):
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
    else:
        progress.stage("listing the index")
        root = Path(source)
        _remove_stale_staging(out)
        if incremental and root.is_dir():
            # Checking stat keys alone is enough to say nothing changed.
            summary = _up_to_date(root, out, started)
            if summary is not None:
                return summary
        inputs = _input_keys(root)
        header = read_header(source)
        loaded = None
    _check_out(header.root, out)
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out)
    if header.settings is None or (header.problems and loaded is None):
        raise InvalidIndex(header.problems)
    if incremental and loaded is None:
        summary = _incremental(header, out, started, wall_clock, progress, inputs)
        if summary is not None:
            progress.done()
            return summary
    summary = _full(header, loaded, out, started, wall_clock, progress, inputs)
    progress.done()
    log.debug("%s", summary.line())
    return summary


def _full(header: Header, loaded: Index | None, out: Path, started: float, wall_clock: int, progress: Progress, inputs: dict[str, FileKey]) -> BuildSummary:
    token = secrets.token_hex(8)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        files, size, records = _render_all(header, loaded, staging, progress)
        tree = Tree(staging)
        if loaded is None:
            tree.write(GENERATION_FILE, f"{token}\n".encode())
        os.chmod(staging, 0o755)
        spare = _spare(out)
        _discard_spare(spare)
        if loaded is None:
            progress.stage("linking the spare copy")
            try:
                _link_tree(staging, spare)
            except OSError as error:
                # The site is whole without it; only the next build is a full one.
                log.warning("cannot keep a spare copy of the site at %s (%s); the next build will render everything", spare, error.strerror)
                shutil.rmtree(spare, ignore_errors=True)
        replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if loaded is None:
        _save_state(out, State(STATE_FORMAT, fingerprint(header), token, "", wall_clock, records, [], [], inputs, code_fingerprint()))
    counts = _counts(records.values())
    return BuildSummary(counts["images"], counts["versions"], files + tree.files, size + tree.bytes, time.monotonic() - started, out)


def _render_all(header: Header, loaded: Index | None, staging: Path, progress: Progress) -> tuple[int, int, dict[str, ImageRecord]]:
    """Write every file of the site into `staging`; return (files, bytes, records); raise InvalidIndex on any problem."""
    env = pages.environment()
    settings = header.settings
    problems = list(header.problems)
    records: dict[str, ImageRecord] = {}
    files = size = 0
    tree = Tree(staging)
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
        _job.update(header=header, staging=staging, env=env)
        chunks = _chunks(header.image_files, CHUNK)
        with _pool(len(chunks)) as pool:
            for chunk, (chunk_records, chunk_problems, chunk_files, chunk_bytes) in zip(chunks, pool.imap(_render_chunk, chunks)):
                problems.extend(chunk_problems)
                files += chunk_files
                size += chunk_bytes
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
    _job.update(corpus=corpus, postings=postings, staging=staging)
    node_files = node_bytes = 0
    # Large keys first, so that the two workers finish at about the same time.
    keys = sorted(postings.keys(), key=lambda key: (-postings.size(key), key))
    key_chunks = [[""]] + [keys[start::WORKERS * 8] for start in range(WORKERS * 8)]
    with _pool(len(keys)) as pool:
        for chunk_files, chunk_bytes in pool.imap_unordered(_write_nodes, key_chunks):
            node_files += chunk_files
            node_bytes += chunk_bytes
            progress.advance(chunk_files)
    _job.clear()
    return files + tree.files + node_files, size + tree.bytes + node_bytes, records


def _link_tree(source: Path, target: Path) -> None:
    """Make `target` a copy of the folder `source` whose files are hard links."""
    for folder, subfolders, files in os.walk(source):
        relative = os.path.relpath(folder, source)
        destination = os.path.normpath(os.path.join(target, relative))
        os.makedirs(destination, exist_ok=True)
        for file in files:
            os.link(os.path.join(folder, file), os.path.join(destination, file))


def state_path(out: Path) -> Path:
    """Return where the state of the site at `out` is kept: beside it, so it is never published."""
    return out.with_name(f".{out.name}.state")


def _generation(folder: Path) -> str | None:
    try:
        return (folder / GENERATION_FILE).read_text().strip()
    except OSError:
        return None


def _save_state(out: Path, state: State) -> None:
    """Write the state beside the site: first the file keys, which a build that finds nothing changed reads alone, then the records."""
    path = state_path(out)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    head = (
        state.format, state.fingerprint, state.generation, state.previous, state.started,
        {relative: record.key for relative, record in state.records.items()}, state.inputs, state.code,
    )
    records = [(relative, *_record_fields(record)) for relative, record in state.records.items()]
    with open(temporary, "wb") as stream:
        # marshal reads plain data only, so a state file planted beside the
        # site cannot run code the way a pickle can. The head's length comes first.
        head_bytes = marshal.dumps(head)
        stream.write(len(head_bytes).to_bytes(8, "big"))
        stream.write(head_bytes)
        stream.write(marshal.dumps((records, state.written, state.removed)))
    os.replace(temporary, path)


def _record_fields(record: ImageRecord) -> tuple:
    entry = record.entry
    listing = record.listing
    return (
        record.key, record.path, record.author, record.name, record.versions, record.lookup_ids, record.files,
        None if entry is None else (entry.base, entry.versions, entry.latest, entry.summary, entry.size, entry.buildtime),
        None if listing is None else (listing.author, listing.name, listing.latest, listing.summary, listing.versions),
    )


def _record_from(fields: tuple) -> ImageRecord:
    key, path, author, name, versions, lookup_ids, files, entry, listing = fields
    return ImageRecord(
        key, path, author, name, versions, lookup_ids, files,
        None if entry is None else search.Entry._make(entry),
        None if listing is None else pages.Listing(*listing),
    )


class StoredState:
    """A state file read lazily: the file keys at once, the records on first use."""

    def __init__(self, out: Path):
        self.path = state_path(out)
        with open(self.path, "rb") as stream:
            length = int.from_bytes(stream.read(8), "big")
            if length > os.fstat(stream.fileno()).st_size:
                raise ValueError(f"state file {self.path} is damaged")
            head = marshal.loads(stream.read(length))
            self._offset = stream.tell()
        self.format, self.fingerprint, self.generation, self.previous, self.started, self.keys, self.inputs, self.code = head
        self._rest = None

    def _load_rest(self) -> tuple:
        if self._rest is None:
            with open(self.path, "rb") as stream:
                stream.seek(self._offset)
                records, written, removed = marshal.loads(stream.read())
            self._rest = ({relative: _record_from(fields) for relative, *fields in records}, written, removed)
        return self._rest

    @property
    def records(self) -> dict[str, ImageRecord]:
        return self._load_rest()[0]

    @property
    def written(self) -> list[str]:
        return self._load_rest()[1]

    @property
    def removed(self) -> list[str]:
        return self._load_rest()[2]


def _load_state(out: Path) -> StoredState | None:
    """Return the state of the site at `out`, or None when there is none that describes it."""
    try:
        state = StoredState(out)
    except (OSError, EOFError, TypeError, ValueError):
        return None
    if state.format != STATE_FORMAT or state.generation != _generation(out):
        return None
    return state


def _spare_ready(out: Path, state: State) -> Path | None:
    """Bring the spare folder to the site's generation, or return None when it cannot be."""
    spare = _spare(out)
    if spare.is_symlink() or not spare.is_dir():
        return None
    generation = _generation(spare)
    if generation == state.generation:
        return spare
    if not state.previous or generation != state.previous:
        return None
    tree = Tree(spare, replace=True)
    tree.write(GENERATION_FILE, b"dirty\n")
    for relative in state.removed:
        tree.remove(relative)
    for relative in state.written:
        destination = spare / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = f"{destination}.{os.getpid()}.tmp"
        os.link(out / relative, temporary)
        os.replace(temporary, destination)
    tree.write(GENERATION_FILE, f"{state.generation}\n".encode())
    return spare


def _incremental(header: Header, out: Path, started: float, wall_clock: int, progress: Progress, inputs: dict[str, FileKey]) -> BuildSummary | None:
    """Update the site at `out` for the image files that changed; return None when a full build is needed."""
    if not (out / MARKER).is_file():
        return None
    state = _load_state(out)
    if state is None or state.fingerprint != fingerprint(header):
        return None
    listed = {image_file.relative: image_file for image_file in header.image_files}
    racy = state.started - RACY_NANOSECONDS
    changed = []
    for image_file in header.image_files:
        key = state.keys.get(image_file.relative)
        if key is None or key != image_file.key or image_file.key[0] >= racy:
            changed.append(image_file)
    removed_files = [relative for relative in state.keys if relative not in listed]
    if not changed and not removed_files:
        return BuildSummary(len(state.keys), 0, 0, 0, time.monotonic() - started, out, "nothing changed")
    try:
        state.records
    except (EOFError, TypeError, ValueError):
        return None  # a damaged state: build in full
    spare = _spare_ready(out, state)
    if spare is None:
        return None
    progress.stage("updating", total=len(changed) + len(removed_files))
    env = pages.environment()
    settings = header.settings
    problems: list[Problem] = []
    new_images: dict[str, Image] = {}
    for image_file in changed:
        image = read_image(header.root, image_file.path, header.accounts, problems)
        if image is not None:
            new_images[image_file.relative] = image
    records = {}
    changed_files = {image_file.relative for image_file in changed}
    for image_file in header.image_files:
        relative = image_file.relative
        if relative in new_images:
            records[relative] = _record(image_file, new_images[relative])
        elif relative in state.records and relative not in changed_files:
            records[relative] = state.records[relative]
    _cross_check(records.values(), problems)
    if problems:
        raise InvalidIndex(problems)

    old_records = [state.records[relative] for relative in removed_files] + [state.records[f.relative] for f in changed if f.relative in state.records]
    old_images = [_old_image(record) for record in old_records]
    tree = Tree(spare, replace=True)
    tree.write(GENERATION_FILE, b"dirty\n")
    written: dict[str, bytes] = {}
    for image in new_images.values():
        for path, content in image_outputs(env, settings, image):
            written[path] = content
    stale = set()
    for record, paths in zip(old_records, old_images):
        stale.update(paths)
    # Files that span images: rewrite those of the names and authors touched.
    all_records = list(records.values())
    touched_names = {names.identity(record.name) for record in old_records} | {names.identity(image.name) for image in new_images.values()}
    touched_authors = {names.identity(record.author) for record in old_records} | {names.identity(image.author) for image in new_images.values()}
    anonymous = _anonymous(all_records, touched_names)
    for name in touched_names:
        path = api.anonymous_path(name)
        if name in anonymous:
            written[path] = api.anonymous_file(anonymous[name][0][1], [author for author, _ in anonymous[name]])[1]
        else:
            stale.add(path)
    authors = _authors(header.accounts, all_records)
    for author, listings in authors:
        if names.identity(author) in touched_authors:
            written[pages.author_page_path(author)] = pages.render_author_page(env, settings, author, listings)
    counts = _counts(all_records)
    for path, content in pages.render_common_pages(env, settings, authors, counts["listed_images"], counts["searchable"]):
        written[path] = content
    written["v1/index.json"] = api.encode(api.registry_document(settings, counts["images"], counts["versions"], counts["searchable"]))

    corpus = search.Corpus([record.entry for record in all_records if record.entry is not None])
    old_entries = [record.entry for record in old_records if record.entry is not None]
    new_entries = [records[relative].entry for relative in new_images if records[relative].entry is not None]
    existing = [search.file_key(name[:-5]) for name in os.listdir(out / search.SEARCH_FOLDER)] if (out / search.SEARCH_FOLDER).is_dir() else []
    node_changes, node_removals = search.update_nodes(corpus, old_entries, new_entries, lambda key: _read_node(out, key), existing)
    for key, node in node_changes.items():
        written[search.node_path(key)] = search.encode_node(corpus, node)
    stale.update(search.node_path(key) for key in node_removals)

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
    _save_state(out, State(STATE_FORMAT, state.fingerprint, token, state.generation, wall_clock, records, changed_paths + [GENERATION_FILE], removed, inputs, code_fingerprint()))
    progress.advance(len(changed) + len(removed_files))
    counts = _counts(records.values())
    return BuildSummary(counts["images"], counts["versions"], tree.files, tree.bytes, time.monotonic() - started, out, "incremental")


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
