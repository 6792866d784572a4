"""The build state: what a later build needs to update the site without reading every image file.

It is an SQLite file beside the output folder (`.<out>.state`), never inside
it, so it is not published. It holds:

- the head: the format, a fingerprint of the settings, accounts and code, the
  token of the site it describes, and what the last build changed;
- the stat key of every image file, which a build that finds nothing changed
  compares alone;
- one row per image file with its compact record, and one row per release
  asset name and per private lookup id. An incremental build checks the
  rules across files with indexed queries, and reads the author pages,
  anonymous files and totals it touches the same way, instead of loading
  every record.

Blobs are marshal data: plain values only, so a state file planted beside the
site cannot run code the way a pickle can. A damaged or foreign file is no
state at all, and the build renders everything.
"""

from __future__ import annotations

import marshal
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from . import names, pages, search
from .index import FileKey
from .model import Account

FORMAT = 2
# The errors that reading a damaged or edited state file can raise. The build then renders everything.
DAMAGED = (AttributeError, EOFError, IndexError, KeyError, TypeError, ValueError, sqlite3.Error)


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
    digest: str  # of everything read from the file, so that any edit shows, even of an old version

    @property
    def identity(self) -> tuple[str, str]:
        return names.identity(self.author), names.identity(self.name)


class Head(NamedTuple):
    """The facts of how the site was built. `written` and `removed` turn the site `previous` into the site `generation`."""

    format: int
    fingerprint: str
    generation: str
    previous: str
    started: int  # time.time_ns() when the build began
    inputs: dict[str, FileKey]  # stat keys of the settings and account files when the build began
    code: str  # hash of the code and the templates
    written: list[str]
    removed: list[str]


def state_path(out: Path) -> Path:
    """Return where the state of the site at `out` is kept: beside it, so it is never published."""
    return out.with_name(f".{out.name}.state")


def sort_key(author: str, name: str) -> str:
    """Return a string that sorts like the search order, (author folder, file name): folders and files are lowercase."""
    return f"{names.path_part(author)}\x00{names.path_part(name)}"


_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE images (
    relative TEXT PRIMARY KEY,
    sort TEXT NOT NULL,
    author_id TEXT NOT NULL,
    name_id TEXT NOT NULL,
    listed INTEGER NOT NULL,
    listed_versions INTEGER NOT NULL,
    searchable INTEGER NOT NULL,
    searchable_versions INTEGER NOT NULL,
    record BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX images_by_author ON images (author_id, sort);
CREATE INDEX images_by_name ON images (name_id, sort);
-- Covering indexes: the totals and the list of authors are read without the records.
CREATE INDEX images_totals ON images (listed, author_id, listed_versions, searchable, searchable_versions);
CREATE TABLE files (file TEXT PRIMARY KEY, relative TEXT NOT NULL, line INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE lookups (lookup_id TEXT PRIMARY KEY, relative TEXT NOT NULL, here TEXT NOT NULL) WITHOUT ROWID;
"""


def _fields(record: ImageRecord) -> bytes:
    entry, listing = record.entry, record.listing
    return marshal.dumps((
        record.key, record.path, record.author, record.name, record.versions, record.lookup_ids, record.files,
        None if entry is None else tuple(entry),
        None if listing is None else (listing.author, listing.name, listing.latest, listing.summary, listing.versions),
        record.digest,
    ))


def _record(blob: bytes) -> ImageRecord:
    key, path, author, name, versions, lookup_ids, files, entry, listing, digest = marshal.loads(blob)
    return ImageRecord(
        tuple(key), path, author, name, versions, lookup_ids, files,
        None if entry is None else search.Entry._make(entry),
        None if listing is None else pages.Listing(*listing),
        digest,
    )


def _row(relative: str, record: ImageRecord) -> tuple:
    author_id, name_id = record.identity
    listing, entry = record.listing, record.entry
    return (
        relative, sort_key(record.author, record.name), author_id, name_id,
        int(listing is not None), listing.versions if listing is not None else 0,
        int(entry is not None), len(entry.versions) if entry is not None else 0,
        _fields(record),
    )


def _insert(connection: sqlite3.Connection, records: Iterable[tuple[str, ImageRecord]]) -> None:
    images, files, lookups = [], [], []
    for relative, record in records:
        images.append(_row(relative, record))
        # A file or lookup id used twice is a problem the build reports before any state is kept.
        files.extend((file, relative, line) for file, line in record.files)
        lookups.extend((lookup_id, relative, here) for lookup_id, here in record.lookup_ids)
    connection.executemany("INSERT INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", images)
    connection.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?)", files)
    connection.executemany("INSERT OR REPLACE INTO lookups VALUES (?, ?, ?)", lookups)


def _set_meta(connection: sqlite3.Connection, head: Head, keys: dict[str, FileKey]) -> None:
    connection.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [
        ("head", marshal.dumps(tuple(head))),
        ("keys", marshal.dumps(keys)),
    ])


def _accounts_blob(accounts: dict[str, Account]) -> bytes:
    return marshal.dumps({key: tuple(vars(account).values()) for key, account in accounts.items()})


def save(out: Path, head: Head, records: dict[str, ImageRecord], accounts: dict[str, Account]) -> None:
    """Write a new state for the site at `out` from every record, replacing the old one in one rename."""
    install(out, prepare(out, head, records, accounts))


def install(out: Path, prepared: Path) -> None:
    """Put a state file that `prepare` wrote in place."""
    os.replace(prepared, state_path(out))


def prepare(out: Path, head: Head, records: dict[str, ImageRecord], accounts: dict[str, Account]) -> Path:
    """Write a new state for the site at `out` beside it, under a temporary name; return that name."""
    path = state_path(out)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    connection = sqlite3.connect(temporary, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        connection.executescript(_SCHEMA)
        connection.execute("BEGIN")
        _insert(connection, records.items())
        _set_meta(connection, head, {relative: record.key for relative, record in records.items()})
        connection.execute("INSERT INTO meta VALUES ('accounts', ?)", (_accounts_blob(accounts),))
        connection.execute("COMMIT")
    finally:
        connection.close()
    return temporary


_HEAD_TYPES = {
    "format": int, "fingerprint": str, "generation": str, "previous": str, "started": int,
    "inputs": dict, "code": str, "written": list, "removed": list,
}


def _checked_head(values: object) -> Head:
    """Return the head from its stored values, or raise ValueError when they are not what `save` writes."""
    if type(values) is not tuple or len(values) != len(Head._fields):
        raise ValueError("the head has the wrong fields")
    head = Head(*values)
    if head.format != FORMAT:
        raise ValueError(f"state format {head.format!r}")
    for name, kind in _HEAD_TYPES.items():
        if type(getattr(head, name)) is not kind:
            raise ValueError(f"head field {name} is not {kind.__name__}")
    if not all(type(relative) is str and _is_key(key) for relative, key in head.inputs.items()):
        raise ValueError("head field inputs contains a value that is not a stat key")
    if not all(type(relative) is str for relative in [*head.written, *head.removed]):
        raise ValueError("head fields written and removed must list paths")
    return head


def _is_key(value: object) -> bool:
    return type(value) is tuple and len(value) == 4 and all(type(number) is int for number in value)


def _numbers(values: dict) -> dict:
    if not all(type(value) is int for value in values.values()):
        raise ValueError("a total in the state is not a whole number")
    return values


class Stored:
    """An open state file. Changes made with `apply` are seen by its queries and kept only by `commit`."""

    def __init__(self, out: Path):
        self.path = state_path(out)
        if not self.path.is_file() or self.path.is_symlink():
            raise ValueError(f"no state file at {self.path}")
        self.connection = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True, isolation_level=None)
        try:
            rows = dict(self.connection.execute("SELECT name, value FROM meta WHERE name IN ('head', 'keys')"))
            self.head = _checked_head(marshal.loads(rows["head"]))
            self.keys: dict[str, FileKey] = marshal.loads(rows["keys"])
            if type(self.keys) is not dict:
                raise ValueError("the stat keys are not a mapping")
        except BaseException:
            self.connection.close()
            raise

    def close(self) -> None:
        self.connection.close()

    def accounts(self) -> dict[str, Account]:
        """Return the accounts as the build that wrote this state read them, by username identity."""
        row = self.connection.execute("SELECT value FROM meta WHERE name = 'accounts'").fetchone()
        return {key: Account(*fields) for key, fields in marshal.loads(row[0]).items()}

    def record(self, relative: str) -> ImageRecord | None:
        row = self.connection.execute("SELECT record FROM images WHERE relative = ?", (relative,)).fetchone()
        return None if row is None else _record(row[0])

    def records(self) -> Iterator[tuple[str, ImageRecord]]:
        """Yield (relative path, record) of every image file, in search order."""
        for relative, blob in self.connection.execute("SELECT relative, record FROM images ORDER BY sort"):
            yield relative, _record(blob)

    def holders(self, author_id: str, name_id: str) -> list[str]:
        """Return the image files of the image with this identity."""
        return [row[0] for row in self.connection.execute("SELECT relative FROM images WHERE author_id = ? AND name_id = ?", (author_id, name_id))]

    def file_owner(self, file: str) -> str | None:
        row = self.connection.execute("SELECT relative FROM files WHERE file = ?", (file,)).fetchone()
        return None if row is None else row[0]

    def lookup_owner(self, lookup_id: str) -> str | None:
        row = self.connection.execute("SELECT relative FROM lookups WHERE lookup_id = ?", (lookup_id,)).fetchone()
        return None if row is None else row[0]

    def listings(self, author_id: str) -> list[pages.Listing]:
        """Return the listings of one author's images in search order."""
        rows = self.connection.execute("SELECT record FROM images WHERE author_id = ? AND listed = 1 ORDER BY sort", (author_id,))
        return [_record(blob).listing for blob, in rows]

    def same_name(self, name_id: str) -> list[tuple[str, str]]:
        """Return (author, name) of every listed image with this name identity, in search order."""
        rows = self.connection.execute("SELECT record FROM images WHERE name_id = ? AND listed = 1 ORDER BY sort", (name_id,))
        return [(record.author, record.name) for record in (_record(blob) for blob, in rows)]

    def listed_per_author(self) -> dict[str, int]:
        """Return, by author identity, how many of the author's images have a listed version."""
        return _numbers(dict(self.connection.execute("SELECT author_id, COUNT(*) FROM images WHERE listed = 1 GROUP BY author_id")))

    def counts(self) -> dict[str, int]:
        """Return the totals the home page and index.json state, as `site._counts` computes them from records."""
        row = self.connection.execute(
            "SELECT COALESCE(SUM(listed), 0), COALESCE(SUM(listed_versions), 0), COALESCE(SUM(searchable), 0), COALESCE(SUM(searchable_versions), 0) FROM images"
        ).fetchone()
        return _numbers(dict(zip(("images", "versions", "listed_images", "searchable"), row)))

    def apply(self, removed: dict[str, ImageRecord], added: dict[str, ImageRecord]) -> None:
        """Remove the rows of the `removed` image files (with their records) and add those of `added`, in a transaction left open until `commit`."""
        connection = self.connection
        if not connection.in_transaction:
            connection.execute("BEGIN")
        for relative, record in removed.items():
            connection.execute("DELETE FROM images WHERE relative = ?", (relative,))
            connection.executemany("DELETE FROM files WHERE file = ? AND relative = ?", [(file, relative) for file, _ in record.files])
            connection.executemany("DELETE FROM lookups WHERE lookup_id = ? AND relative = ?", [(lookup_id, relative) for lookup_id, _ in record.lookup_ids])
        _insert(connection, added.items())

    def commit(self, head: Head, keys: dict[str, FileKey]) -> None:
        connection = self.connection
        if not connection.in_transaction:
            connection.execute("BEGIN")
        _set_meta(connection, head, keys)
        connection.execute("COMMIT")
