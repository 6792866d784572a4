"""Loading the index folder from disk and checking the rules across its files.

Layout: `registry.yaml`, `accounts/<username>.yaml` and
`images/<author>/<name>.yaml`, where the folder and file names are the
lowercase spellings. `load_index` reads everything, collects every problem
and raises `InvalidIndex` once; `check_index` checks the same, holding one
image at a time.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import NamedTuple

from . import canonical, names
from .errors import InvalidIndex, Problem
from .model import Account, Image, Settings, parse_account, parse_image, parse_settings
from .strictyaml import MAX_YAML_BYTES, Reader, compose

log = logging.getLogger(__name__)

SETTINGS_FILE = "registry.yaml"
ACCOUNTS_DIR = "accounts"
IMAGES_DIR = "images"


@dataclass
class Index:
    """A loaded, valid index."""

    root: Path
    settings: Settings
    accounts: dict[str, Account] = field(default_factory=dict)  # by identity
    images: dict[tuple[str, str], Image] = field(default_factory=dict)  # by (author, name) identity

    def account(self, username: str) -> Account | None:
        return self.accounts.get(names.identity(username))

    def image(self, author: str, name: str) -> Image | None:
        return self.images.get((names.identity(author), names.identity(name)))

    def sorted_images(self) -> list[Image]:
        return sorted(self.images.values(), key=lambda image: (image.author.lower(), image.name.lower()))


def image_path(root: Path, author: str, name: str) -> Path:
    """Return where the YAML file of image `author/name` lives."""
    return root / IMAGES_DIR / names.path_part(author) / f"{names.path_part(name)}.yaml"


def display_path(root: Path, path: Path) -> str:
    """Return `path` as messages show it: starting at the index folder's name."""
    return str(Path(root.name) / path.relative_to(root)) if root.name else str(path)


def _read(path: Path | str, shown: str, problems: list[Problem]):
    # Read one byte past the limit, so a huge file costs no more memory than a valid one.
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_YAML_BYTES + 1)
            size = os.fstat(stream.fileno()).st_size
    except OSError as error:
        problems.append(Problem(shown, 0, f"cannot read file: {error.strerror}; make it readable and run again"))
        return None
    if len(data) > MAX_YAML_BYTES:
        problems.append(Problem(shown, 0, f"file is {max(size, len(data))} bytes; the maximum is {MAX_YAML_BYTES}"))
        return None
    return compose(data, shown, problems)


def _not_folder(root: Path, path: Path, problems: list[Problem]) -> bool:
    """Add a problem and return True when `path` exists and is not a folder (a missing folder lists nothing)."""
    if not os.path.lexists(path) or path.is_dir():
        return False
    problems.append(Problem(display_path(root, path), 0, f"unexpected entry; {path.name}/ must be a folder, so replace it with one"))
    return True


def _is_link(root: Path, path: Path, problems: list[Problem]) -> bool:
    """Add a problem and return True when `path` is a symbolic link.

    A link in a pull request could point anywhere on the machine that
    validates it, and messages quote the values they read.
    """
    if not path.is_symlink():
        return False
    problems.append(Problem(display_path(root, path), 0, "unexpected symbolic link; replace it with the file or folder itself"))
    return True


# Problems for a symbolic link where the index expects a file or folder of its
# own. The loader never follows such a link, so it reads nothing outside the index.
LINKED_ACCOUNT_FILE = "symbolic link in place of an account file; account files must be regular files in the repository, so replace the link with the file itself"
LINKED_AUTHOR_FOLDER = "symbolic link in place of an author folder; author folders must be real folders in the repository, so replace the link with the folder itself"
LINKED_IMAGE_FILE = "symbolic link in place of an image file; image files must be regular files in the repository, so replace the link with the file itself"


# The stat fields that tell whether a file changed since it was last read, as
# git's index does: a rewrite changes the modification time or the size, and a
# replacement by rename changes the inode.
FileKey = tuple[int, int, int, int]


def file_key(status: os.stat_result) -> FileKey:
    return (status.st_mtime_ns, status.st_ctime_ns, status.st_size, status.st_ino)


class ImageFile(NamedTuple):
    """One image file of the index, as listed before it is read (a tuple: 100,000 are made on every build)."""

    relative: str  # images/<author>/<name>.yaml
    path: str  # a str, not a Path: building 100,000 Path objects costs a build that finds nothing changed a second
    key: FileKey


@dataclass
class Header:
    """The parts of an index besides its images: settings, accounts, and its image files in search order."""

    root: Path
    settings: Settings | None
    accounts: dict[str, Account]
    image_files: list[ImageFile]
    problems: list[Problem]


def read_header(root: Path | str, image_files: list[ImageFile] | None = None, accounts: dict[str, Account] | None = None) -> Header:
    """Read the settings and accounts of the index at `root` and list its image files; problems are collected, not raised.

    `image_files` is a listing of the image files made without problems, and
    `accounts` the accounts read from files that have not changed since, to
    use instead of reading them again.
    """
    root = Path(root)
    problems: list[Problem] = []
    if not root.is_dir():
        raise InvalidIndex([Problem(str(root), 0, "index folder not found; pass --index DIR or run in the registry repository")])
    settings = _load_settings(root, problems)
    check_unexpected(root, problems)
    if accounts is None:
        accounts = _load_accounts(root, problems)
    return Header(root, settings, accounts, list_images(root, problems) if image_files is None else image_files, problems)


class CrossCheck:
    """The rules across image files, checked one image at a time in search order."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        self.images: dict[tuple[str, str], str] = {}  # identity -> "author/name in path"
        self.lookup_ids: dict[str, str] = {}
        self.files: dict[str, str] = {}

    def add(self, image: Image) -> bool:
        """Check `image` against the images added before; return False when it collides with one and must be left out."""
        key = (names.identity(image.author), names.identity(image.name))
        other = self.images.get(key)
        if other is not None:
            self.problems.append(Problem(image.path, 0, f"image {image.author}/{image.name} collides with {other}; names ignore case and '_' versus '-'"))
            return False
        self.images[key] = f"{image.author}/{image.name} in {image.path}"
        for version in image.versions:
            here = f"{image.path}:{version.line}"
            if version.protection is not None:
                # Two private versions with one lookup id would share a path in the site; a copied protection record does that.
                first = self.lookup_ids.setdefault(version.protection.lookup_id, here)
                if first != here:
                    self.problems.append(Problem(image.path, version.line, f"protection lookup_id is the same as at {first}; push the version again with its own code"))
            if version.url:
                continue
            # Two versions with one asset file name would overwrite each other in the release.
            first = self.files.setdefault(version.file.lower(), here)
            # A duplicated version is reported once, as a duplicate version.
            duplicate = image.find(version.version) is not version
            if first != here and not duplicate:
                self.problems.append(Problem(image.path, version.line, f"file {version.file!r} is also used at {first}; every version needs its own release asset name"))
        return True


class Totals(NamedTuple):
    """The settings of a valid index and its number of accounts, images and versions."""

    accounts: int
    images: int
    versions: int
    settings: Settings


def _each_image(root: Path | str, keep: Callable[[Image], None], transient: bool) -> Header:
    """Read and check every image file in search order, passing each usable image to `keep`; raise InvalidIndex listing every problem.

    Besides the rules across files, only what `keep` stores stays in memory.
    """
    header = read_header(root)
    problems = header.problems
    check = CrossCheck(problems)
    for image_file in header.image_files:
        image = read_image_file(header.root, image_file.path, header.accounts, problems, transient)[0]
        if image is not None and check.add(image):
            keep(image)
    if problems or header.settings is None:
        raise InvalidIndex(problems)
    return header


def load_index(root: Path | str, select: Callable[[Image], bool] | None = None) -> Index:
    """Load and validate the whole index at `root`; raise InvalidIndex listing every problem.

    With `select`, the index keeps only the images it accepts, and every
    other image is checked and dropped, which saves memory in large indexes.
    """
    images: dict[tuple[str, str], Image] = {}

    def keep(image: Image) -> None:
        if select is None or select(image):
            images[(names.identity(image.author), names.identity(image.name))] = image

    # Versions built the faster way take more memory, so they are used only when few images are kept.
    header = _each_image(root, keep, transient=select is not None)
    log.debug("loaded %d accounts and %d images from %s", len(header.accounts), len(images), header.root)
    return Index(header.root, header.settings, header.accounts, images)


def check_index(root: Path | str, on_image: Callable[[Image], None] | None = None) -> Totals:
    """Validate the whole index at `root` as `load_index` does, keeping one image in memory at a time; raise InvalidIndex listing every problem.

    At 100,000 images, `load_index` needs more than a gigabyte. `on_image`,
    when given, gets every image of a valid index in search order from a
    second reading of the files, so it never receives an image of an invalid index.
    """
    counted = [0, 0]

    def count(image: Image) -> None:
        counted[0] += 1
        counted[1] += len(image.versions)

    header = _each_image(root, count, transient=True)
    if on_image is not None:
        for image_file in header.image_files:
            try:
                changed = file_key(os.lstat(image_file.path)) != image_file.key
            except OSError:
                changed = True
            if changed:
                # The file changed after the first reading checked it.
                raise InvalidIndex([Problem(display_path(header.root, Path(image_file.path)), 0, "file changed while the index was read twice; run the command again")])
            problems: list[Problem] = []
            image = read_image_file(header.root, image_file.path, header.accounts, problems, transient=True)[0]
            if problems or image is None:
                raise InvalidIndex(problems)
            on_image(image)
    return Totals(len(header.accounts), counted[0], counted[1], header.settings)


def _read_canonical(path: Path | str, shown: str, transient: bool = False) -> tuple[Image | None, bytes]:
    """Read a file that `registry-index add` wrote with the fast reader; None sends it to the strict reader.

    Also return the bytes read (empty when the file could not be read).
    """
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_YAML_BYTES + 1)
    except OSError:
        return None, b""
    if len(data) > MAX_YAML_BYTES:
        return None, data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, data
    return canonical.read_image(text, shown, transient), data


def _load_settings(root: Path, problems: list[Problem]) -> Settings | None:
    path = root / SETTINGS_FILE
    shown = display_path(root, path)
    if _is_link(root, path, problems):
        return None
    if not path.is_file():
        problems.append(Problem(shown, 0, "registry settings file not found; create it (see docs/index-format.md)"))
        return None
    node = _read(path, shown, problems)
    if node is None:
        return None
    return parse_settings(node, Reader(shown, problems))


def check_unexpected(root: Path, problems: list[Problem]) -> None:
    expected = {SETTINGS_FILE, ACCOUNTS_DIR, IMAGES_DIR}
    for entry in sorted(os.listdir(root)):
        if entry.startswith(".") or entry in expected:
            continue
        problems.append(Problem(
            display_path(root, root / entry), 0,
            f"unexpected entry; an index holds only {SETTINGS_FILE}, {ACCOUNTS_DIR}/ and {IMAGES_DIR}/",
        ))


def _yaml_files(folder: Path, root: Path, problems: list[Problem], linked: str) -> list[Path]:
    """List the .yaml files directly in `folder`. Anything else is a problem, with the message `linked` for a symbolic link named *.yaml."""
    if _is_link(root, folder, problems) or _not_folder(root, folder, problems) or not folder.is_dir():
        return []
    try:
        entries = sorted(folder.iterdir())
    except OSError as error:
        problems.append(Problem(display_path(root, folder), 0, f"cannot list folder: {error.strerror}; make it a readable folder and run again"))
        return []
    files = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_symlink() and entry.suffix == ".yaml":
            problems.append(Problem(display_path(root, entry), 0, linked))
            continue
        if entry.is_symlink() or not entry.is_file() or entry.suffix != ".yaml":
            problems.append(Problem(display_path(root, entry), 0, "unexpected entry; only regular .yaml files belong here"))
            continue
        files.append(entry)
    return files


def _load_accounts(root: Path, problems: list[Problem]) -> dict[str, Account]:
    accounts: dict[str, Account] = {}
    for path in _yaml_files(root / ACCOUNTS_DIR, root, problems, LINKED_ACCOUNT_FILE):
        shown = display_path(root, path)
        node = _read(path, shown, problems)
        if node is None:
            continue
        account = parse_account(node, Reader(shown, problems))
        if account is None:
            continue
        expected_file = f"{names.path_part(account.username)}.yaml"
        if path.name != expected_file:
            problems.append(Problem(shown, account.line, f"account {account.username!r} must be in {ACCOUNTS_DIR}/{expected_file}; rename the file"))
            continue
        key = names.identity(account.username)
        if key in accounts:
            other = accounts[key]
            problems.append(Problem(shown, account.line, f"username {account.username!r} collides with {other.username!r} in {other.path}; usernames ignore case and '_' versus '-'"))
            continue
        accounts[key] = account
    return accounts


INVALID_AUTHOR_FOLDER = (
    "invalid author folder name; images/ contains one folder per author, named with the author's username "
    "in lowercase ASCII letters and digits, so rename this folder or remove it"
)


def _is_author_folder_name(name: str) -> bool:
    """Return True when `name` is the folder name of some valid author: the author's lowercase spelling."""
    return names.author_problem(name) is None and name == names.path_part(name)


# Opening an author folder: never through a link, and closed in any child process.
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def list_images(root: Path, problems: list[Problem]) -> list[ImageFile]:
    """List the image files in search order: by author folder, then by file name without `.yaml`.

    One directory scan and one lstat per file: at 100,000 images the listing
    is what a build that finds nothing changed spends its time on.
    """
    images_dir = root / IMAGES_DIR
    if _is_link(root, images_dir, problems) or _not_folder(root, images_dir, problems) or not images_dir.is_dir():
        return []
    listed: list[ImageFile] = []
    append, stat, new_tuple = listed.append, os.stat, tuple.__new__
    try:
        with os.scandir(images_dir) as authors:
            author_entries = sorted((entry for entry in authors if not entry.name.startswith(".")), key=lambda entry: entry.name)
    except OSError as error:
        problems.append(Problem(display_path(root, images_dir), 0, f"cannot list folder: {error.strerror}; make it a readable folder and run again"))
        return []
    for author_entry in author_entries:
        author_dir = Path(author_entry.path)
        # Author names are letters and digits only, so a linked name with a dot is some other stray entry.
        if author_entry.is_symlink() and "." not in author_entry.name:
            problems.append(Problem(display_path(root, author_dir), 0, LINKED_AUTHOR_FOLDER))
            continue
        if author_entry.is_symlink() or not author_entry.is_dir(follow_symlinks=False):
            problems.append(Problem(display_path(root, author_dir), 0, "unexpected entry; images/ holds one folder per author"))
            continue
        files: list[tuple[str, str]] = []
        unexpected = []
        # Listing and lstat relative to the folder's descriptor: the kernel
        # then resolves one path component per file instead of the whole path.
        try:
            folder = os.open(author_entry.path, _FOLDER_FLAGS)
        except OSError as error:
            # Unreadable, or removed or replaced since the folder of authors was read.
            problems.append(Problem(display_path(root, author_dir), 0, f"cannot open folder: {error.strerror}; make it a readable folder and run again"))
            continue
        try:
            try:
                with os.scandir(folder) as scanned:
                    for entry in scanned:
                        name = entry.name
                        if name.startswith("."):
                            continue
                        # is_file without following links is False for a symlink.
                        if not name.endswith(".yaml") or not entry.is_file(follow_symlinks=False):
                            linked = name.endswith(".yaml") and entry.is_symlink()
                            unexpected.append((name, LINKED_IMAGE_FILE if linked else "unexpected entry; only regular .yaml files belong here"))
                            continue
                        files.append((name[:-5], name))
            except OSError as error:
                problems.append(Problem(display_path(root, author_dir), 0, f"cannot list folder: {error.strerror}; make it a readable folder and run again"))
                continue
            for name, message in sorted(unexpected):
                problems.append(Problem(display_path(root, author_dir / name), 0, message))
            # When the name is wrong, each image file already has a problem
            # because its author differs from the folder. So the folder itself
            # is reported only when it contains no image file.
            if not files and not _is_author_folder_name(author_entry.name):
                problems.append(Problem(display_path(root, author_dir), 0, INVALID_AUTHOR_FOLDER))
            files.sort()
            prefix = f"{IMAGES_DIR}/{author_entry.name}/"
            folder_path = f"{author_entry.path}/"
            for _, name in files:
                try:
                    status = stat(name, dir_fd=folder, follow_symlinks=False)
                except OSError as error:
                    problems.append(Problem(display_path(root, author_dir / name), 0, f"cannot read file: {error.strerror}; make it readable and run again"))
                    continue
                # tuple.__new__ rather than ImageFile(...), whose generated __new__ is a Python call per file.
                append(new_tuple(ImageFile, (prefix + name, folder_path + name, (status.st_mtime_ns, status.st_ctime_ns, status.st_size, status.st_ino))))
        finally:
            os.close(folder)
    return listed


def read_image(root: Path, path: Path | str, accounts: dict[str, Account], problems: list[Problem]) -> Image | None:
    """Read and check one image file; add its problems to `problems` and return None when it cannot be used."""
    return read_image_file(root, path, accounts, problems)[0]


def read_image_file(
    root: Path, path: Path | str, accounts: dict[str, Account], problems: list[Problem], transient: bool = False,
) -> tuple[Image | None, bytes | None]:
    """Read and check one image file as `read_image` does; also return the bytes of a file the fast reader read, else None.

    `transient` is for an image used briefly and dropped: it is read faster and takes more memory.
    """
    # Paths as strings when the path is already in pathlib's normal form, as
    # the listing makes them: Path objects cost about a tenth of a fast read.
    path_text, root_text = os.fspath(path), os.fspath(root)
    relative = path_text[len(root_text) + 1:] if path_text.startswith(root_text + "/") else ""
    normalized = bool(root.name and relative) and not {"", "."}.intersection(relative.split("/"))
    shown = f"{root.name}/{relative}" if normalized else display_path(root, Path(path))
    image, data = _read_canonical(path_text, shown, transient)
    if image is None:
        data = None
        node = _read(path_text, shown, problems)
        if node is None:
            return None, None
        image = parse_image(node, Reader(shown, problems))
    if image is None:
        return None, None
    if not normalized or path_text != f"{root_text}/{IMAGES_DIR}/{names.path_part(image.author)}/{names.path_part(image.name)}.yaml":
        expected = image_path(root, image.author, image.name)
        if Path(path) != expected:
            problems.append(Problem(shown, 1, f"image {image.author}/{image.name} must be in {display_path(root, expected)}; move the file"))
            return None, None
    account = accounts.get(names.identity(image.author))
    if account is None:
        problems.append(Problem(shown, 1, f"author {image.author!r} has no account in {ACCOUNTS_DIR}/; register it first"))
    elif account.username != image.author:
        problems.append(Problem(shown, 1, f"author {image.author!r} differs from the account name {account.username!r}; write {account.username!r}"))
    seen: dict[str, int] = {}
    for version in image.versions:
        key = names.identity(version.version)
        if key in seen:
            problems.append(Problem(shown, version.line, f"version {version.version!r} duplicates the version at line {seen[key]}; versions ignore case"))
        else:
            seen[key] = version.line
        if names.identity(version.pusher) not in accounts:
            problems.append(Problem(shown, version.line, f"pusher {version.pusher!r} has no account in {ACCOUNTS_DIR}/"))
    return image, data
