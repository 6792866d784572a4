"""The index data model and the schema of each YAML file.

`parse_settings`, `parse_account` and `parse_image` read one file's node tree
into these dataclasses and record every problem they find; cross-file rules
(ownership, collisions) live in `index.py`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

import yaml

from . import names
from .strictyaml import Field, Reader

if TYPE_CHECKING:
    from .extraction import Protection

_SHA256 = re.compile(r"[0-9a-f]{64}")
# [0-9], not \d: in Python, \d also matches other scripts' digits, such as fullwidth ２.
BUILD_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_UTC_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_ASSET_FILE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]*\.ki(\.enc)?")
_REPOSITORY = re.compile(r"[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}")
_GITHUB_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?")
_RELEASE_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_BCRYPT = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
_HTTP_URL = re.compile(r"https?://[^\s\"'<>]+")

MIN_BCRYPT_COST = 12


def _pattern_check(pattern: re.Pattern[str], field_name: str, expected: str) -> callable:
    def check(value: str) -> str | None:
        if pattern.fullmatch(value):
            return None
        return f"{field_name} {value!r} is invalid; expected {expected}"
    return check


def _check_bcrypt(value: str) -> str | None:
    match = _BCRYPT.fullmatch(value)
    if not match:
        return "token_bcrypt is not a bcrypt hash ($2b$12$ followed by 53 characters); run `registry-index register`"
    if int(match.group(1)) < MIN_BCRYPT_COST:
        return f"token_bcrypt has cost {match.group(1)}; the minimum is {MIN_BCRYPT_COST}; run `registry-index register` again"
    return None


# GitHub refuses release assets of 2 GiB or more.
MAX_ASSET_BYTES = 2 * 1024 * 1024 * 1024 - 1


def size_problem(value: int) -> str | None:
    if 1 <= value <= MAX_ASSET_BYTES:
        return None
    return f"size {value} is out of range; a release asset has 1 to {MAX_ASSET_BYTES} bytes"


def build_time_problem(value: str) -> str | None:
    """Return why `value` is not a real time written as YYYY-MM-DD HH:MM:SS, or None."""
    if BUILD_TIME.fullmatch(value) and _real_date(value[:10]):
        hour, minute, second = int(value[11:13]), int(value[14:16]), int(value[17:19])
        if hour < 24 and minute < 60 and second < 60:
            return None
    return f"buildtime {value!r} is invalid; expected a time such as 2026-12-04 19:17:10"


@lru_cache(maxsize=1 << 14)
def _real_date(value: str) -> bool:
    """Return whether `value`, written YYYY-MM-DD, is a day of the calendar. Cached: registries share build days."""
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def url_problem(value: str) -> str | None:
    if value == "" or _HTTP_URL.fullmatch(value):
        return None
    return f"URL {value!r} is invalid; give an http:// or https:// URL or leave it empty"


# With asset_shards k, files spread over 16**k releases. k=4 already gives
# 65,536 releases, and creating each one is a rate-limited request.
MAX_ASSET_SHARDS = 4


def asset_shards_problem(value: int) -> str | None:
    if 0 <= value <= MAX_ASSET_SHARDS:
        return None
    return (
        f"asset_shards {value} is out of range; expected 0 to {MAX_ASSET_SHARDS}: "
        "0 keeps every file in the release asset_release, k spreads the files over 16^k releases"
    )


@dataclass(frozen=True)
class Settings:
    """Registry settings from `registry.yaml`."""

    title: str
    repository: str
    asset_release: str
    site_url: str
    github_url: str = "https://github.com"
    asset_shards: int = 0

    def release_tag(self, file: str) -> str:
        """Return the tag of the release that holds the asset `file`.

        With asset_shards 0 it is asset_release. With k > 0 it is asset_release,
        '-' and the first k hex digits of the SHA-256 of the file name, so the
        build and publish compute it alike without asking GitHub.
        """
        if self.asset_shards == 0:
            return self.asset_release
        digest = hashlib.sha256(file.encode("utf-8")).hexdigest()
        return f"{self.asset_release}-{digest[:self.asset_shards]}"

    def asset_url(self, file: str) -> str:
        """Return the download URL of a release asset of the registry repository."""
        return f"{self.github_url.rstrip('/')}/{self.repository}/releases/download/{self.release_tag(file)}/{file}"


@dataclass(frozen=True)
class Account:
    """A kindo account: the author namespace it owns and the GitHub login that owns it."""

    username: str
    uid: str
    github: str
    token_bcrypt: str
    created: str
    path: str = ""
    line: int = 0


@dataclass(frozen=True)
class Version:
    """One published version of an image and its release asset."""

    version: str
    file: str
    size: int
    sha256: str
    buildtime: str
    pusher: str
    url: str = ""
    source: str = ""
    summary: str = ""
    license: str = ""
    homepage: str = ""
    platform: str = ""
    pushed: str = ""
    yanked: str = ""
    protection: Protection | None = None
    sealed: str = ""
    line: int = 0

    @property
    def is_private(self) -> bool:
        """Whether the version is protected by an extraction code."""
        return self.protection is not None

    def download_url(self, settings: Settings) -> str:
        return self.url or settings.asset_url(self.file)


class Ordered(NamedTuple):
    """An image's versions newest first and its latest version, worked out once for the files, page and record of a build."""

    versions: list[Version]
    latest: Version | None


@dataclass
class Image:
    """An image (author/name) and all of its versions, from one YAML file."""

    author: str
    name: str
    versions: list[Version] = field(default_factory=list)
    path: str = ""

    def latest(self) -> Version | None:
        """Return the version that `latest` resolves to.

        A version named `latest` always wins, since it owns the latest path;
        otherwise the highest version that is not yanked.
        """
        explicit = self.find(names.LATEST)
        if explicit is not None:
            return explicit
        live = {version.version: version for version in self.versions if not version.yanked and not version.is_private}
        chosen = names.latest_version(list(live))
        return live[chosen] if chosen is not None else None

    def ordered(self) -> Ordered:
        """Return the versions newest first, by names.version_key, and the latest version."""
        return Ordered(sorted(self.versions, key=lambda version: names.version_key(version.version), reverse=True), self.latest())

    def find(self, version: str) -> Version | None:
        wanted = names.identity(version)
        for candidate in self.versions:
            # names.identity, inlined: builds call this for every version of every image.
            if candidate.version.lower().replace("_", "-") == wanted:
                return candidate
        return None


SETTINGS_FIELDS = [
    Field("title", "str"),
    Field("repository", "str", check=_pattern_check(_REPOSITORY, "repository", "a GitHub repository such as owner/name")),
    Field("asset_release", "str", check=_pattern_check(_RELEASE_TAG, "asset_release", "a release tag such as images")),
    Field("site_url", "str", check=url_problem),
    Field("github_url", "str", required=False, check=url_problem),
    Field("asset_shards", "int", required=False, check=asset_shards_problem),
]

ACCOUNT_FIELDS = [
    Field("username", "str", check=names.author_problem),
    Field("uid", "str", check=_pattern_check(re.compile(r"[A-Za-z0-9-]{1,64}"), "uid", "letters, digits and '-'")),
    Field("github", "str", check=_pattern_check(_GITHUB_LOGIN, "github", "a GitHub login")),
    Field("token_bcrypt", "str", check=_check_bcrypt),
    Field("created", "str", check=_pattern_check(_UTC_TIME, "created", "a UTC time such as 2026-12-04T19:17:10Z")),
]

IMAGE_FIELDS = [
    Field("author", "str", check=names.author_problem),
    Field("name", "str", check=names.name_problem),
    Field("versions", "list"),
]

VERSION_FIELDS = [
    Field("version", "str", check=names.version_problem),
    Field("file", "str", check=_pattern_check(_ASSET_FILE, "file", "a file name ending in .ki")),
    Field("url", "str", required=False, check=url_problem),
    Field("source", "str", required=False, check=url_problem),
    Field("size", "int", check=size_problem),
    Field("sha256", "str", check=_pattern_check(_SHA256, "sha256", "64 lowercase hexadecimal digits")),
    Field("buildtime", "str", check=build_time_problem),
    Field("pusher", "str", check=names.author_problem),
    Field("summary", "str", required=False),
    Field("license", "str", required=False),
    Field("homepage", "str", required=False, check=url_problem),
    Field("platform", "str", required=False),
    Field("pushed", "str", required=False, check=_pattern_check(_UTC_TIME, "pushed", "a UTC time such as 2026-12-04T19:17:10Z")),
    Field("yanked", "str", required=False),
    Field("protection", "map", required=False),
    Field("sealed", "str", required=False),
]

PROTECTION_FIELDS = [
    Field("version", "int"),
    Field("kdf", "str"),
    Field("n", "int"),
    Field("r", "int"),
    Field("p", "int"),
    Field("salt", "str"),
    Field("lookup_id", "str"),
]


def parse_settings(node: yaml.Node, reader: Reader) -> Settings | None:
    values = reader.mapping(node, SETTINGS_FIELDS, "registry settings")
    if values is None or any(f.name not in values for f in SETTINGS_FIELDS if f.required):
        return None
    values.pop("_line")
    return Settings(**values)


def parse_account(node: yaml.Node, reader: Reader) -> Account | None:
    values = reader.mapping(node, ACCOUNT_FIELDS, "account")
    if values is None or any(f.name not in values for f in ACCOUNT_FIELDS):
        return None
    line = values.pop("_line")
    return Account(**values, path=reader.path, line=line)


def parse_image(node: yaml.Node, reader: Reader) -> Image | None:
    values = reader.mapping(node, IMAGE_FIELDS, "image")
    if values is None:
        return None
    versions = []
    if values.get("versions") == []:
        reader.problem(node, "image has no versions; remove the file or add a version")
    for item in values.get("versions", []):
        version = _parse_version(item, reader)
        if version is not None:
            versions.append(version)
    if "author" not in values or "name" not in values:
        return None
    return Image(values["author"], values["name"], versions, path=reader.path)


def _parse_version(node: yaml.Node, reader: Reader) -> Version | None:
    values = reader.mapping(node, VERSION_FIELDS, "version entry")
    if values is None:
        return None
    if any(f.name not in values for f in VERSION_FIELDS if f.required):
        return None
    if values.get("yanked") == "":
        reader.problem(node, "yanked is empty; give the reason for the yank, or remove the key")
        return None
    if "protection" in values:
        protection = _parse_protection(values["protection"], reader)
        if protection is None:
            return None
        values["protection"] = protection
    if ("protection" in values) != bool(values.get("sealed")):
        reader.problem(node, "a private version needs both protection and sealed; push it again with `registry-index push --code`")
        return None
    if "protection" in values and names.identity(values["version"]) == names.LATEST:
        reader.problem(node, "a version named 'latest' cannot be private; give it a version number")
        return None
    line = values.pop("_line")
    return Version(**values, line=line)


def _parse_protection(node: yaml.Node, reader: Reader) -> Protection | None:
    # Imported here: the cryptography library it loads costs every command time, and few files hold a protection.
    from .extraction import InvalidProtection, Protection

    values = reader.mapping(node, PROTECTION_FIELDS, "protection")
    if values is None or any(f.name not in values for f in PROTECTION_FIELDS):
        return None
    values.pop("_line")
    try:
        return Protection.from_dict(values)
    except InvalidProtection as error:
        for problem in error.problems:
            reader.problem(node, f"protection: {problem}")
        return None
