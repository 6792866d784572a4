"""Hostile index files: each case changes a valid index and gives the exact problems `load_index` reports."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

IMAGE = "images/cycore/redis.yaml"
SHOWN = "index/" + IMAGE
VERSION = """\
  - version: "3.0.4"
    file: "cycore-redis-3.0.4.ki"
    size: 1367041
    sha256: "d4a6849f128ab875e41410cfc7a37ae3a79226736f2a385a685a776e15a0166c"
    buildtime: "2026-12-04 19:17:10"
    pusher: "cycore"
"""
GOOD_IMAGE = 'author: "cycore"\nname: "redis"\nversions:\n' + VERSION
SECRET = "outside-the-index-secret-7f3a"


@dataclass(frozen=True)
class IndexCase:
    """One hostile change to an index holding settings and the `cycore` account."""

    id: str
    prepare: Callable[[Path], None]
    problems: list[str]


def write(relative: str, content: str | bytes) -> Callable[[Path], None]:
    def prepare(index: Path) -> None:
        path = index / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return prepare


def image(old: str, new: str) -> Callable[[Path], None]:
    """Write the valid redis image with `old` replaced by `new`."""
    assert old in GOOD_IMAGE, old
    return write(IMAGE, GOOD_IMAGE.replace(old, new, 1))


def link(relative: str, target_name: str, content: str = SECRET) -> Callable[[Path], None]:
    """Replace `relative` by a symbolic link to a file outside the index when `target_name` ends in .yaml, else to a folder outside it."""
    def prepare(index: Path) -> None:
        outside = index.parent / target_name
        if target_name.endswith(".yaml"):
            outside.write_text(f"title: {content}\n")
        else:
            outside.mkdir()
            (outside / "cycore.yaml").write_text(f"username: {content}\n")
        path = index / relative
        if path.is_dir():
            for child in path.iterdir():
                child.unlink()
            path.rmdir()
        elif path.exists():
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(outside, path)
    return prepare


def folder(relative: str, *hidden: str) -> Callable[[Path], None]:
    """Make the folder `relative` with no entries but the hidden files named in `hidden`."""
    def prepare(index: Path) -> None:
        path = index / relative
        path.mkdir(parents=True)
        for name in hidden:
            (path / name).write_text("")
    return prepare


BAD_AUTHOR_FOLDER = (
    "invalid author folder name; images/ contains one folder per author, named with the author's username "
    "in lowercase ASCII letters and digits, so rename this folder or remove it"
)


def _billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(9):
        this, previous = chr(ord("b") + level), chr(ord("a") + level)
        lines.append(f"{this}: &{this} [" + ",".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


CASES = [
    # Resource exhaustion.
    IndexCase("billion-laughs", write(IMAGE, _billion_laughs()),
              [f"{SHOWN}:1: YAML anchors and aliases are not allowed; write the value out"]),
    IndexCase("anchor-without-alias", image('name: "redis"', 'name: &n "redis"'),
              [f"{SHOWN}:2: YAML anchors and aliases are not allowed; write the value out"]),
    IndexCase("merge-key", write(IMAGE, 'base: &b {author: "cycore"}\n<<: *b\nname: "redis"\n'),
              [f"{SHOWN}:1: YAML anchors and aliases are not allowed; write the value out"]),
    IndexCase("flow-nesting-200000", write(IMAGE, "[" * 200_000),
              [f"{SHOWN}:1: YAML nesting is deeper than 16 levels; an index file needs at most 3"]),
    IndexCase("block-nesting-17", write(IMAGE, "- " * 17 + "x\n"),
              [f"{SHOWN}:1: YAML nesting is deeper than 16 levels; an index file needs at most 3"]),
    IndexCase("huge-file", write(IMAGE, GOOD_IMAGE + "#" * (1024 * 1024) + "\n"),
              [f"{SHOWN}: file is {len(GOOD_IMAGE) + 1024 * 1024 + 1} bytes; the maximum is 1048576"]),
    IndexCase("huge-size-number", image("size: 1367041", "size: 1" + "0" * 5000),
              [f"{SHOWN}:6: size has 5001 digits; the maximum is 19"]),
    # Code execution and foreign types through tags.
    IndexCase("python-object-apply", image('name: "redis"', 'name: !!python/object/apply:os.system ["id"]'),
              [f"{SHOWN}:2: YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed; remove it"]),
    IndexCase("python-name", write("registry.yaml", "title: !!python/name:os.system\n"),
              ["index/registry.yaml:1: YAML tag 'tag:yaml.org,2002:python/name:os.system' is not allowed; remove it"]),
    IndexCase("local-include-tag", image('name: "redis"', "name: !include /etc/passwd"),
              [f"{SHOWN}:2: YAML tag '!include' is not allowed; remove it"]),
    IndexCase("binary-tag", image('sha256: "d4a6', 'sha256: !!binary "d4a6'),
              [f"{SHOWN}:7: YAML tag 'tag:yaml.org,2002:binary' is not allowed; remove it"]),
    # Keys given twice.
    IndexCase("duplicate-author", image('name: "redis"', 'name: "redis"\nauthor: "mallory"'),
              [f"{SHOWN}:3: duplicate key 'author' (first at line 1); keep one"]),
    IndexCase("duplicate-token", write("accounts/cycore.yaml", (
        'username: "cycore"\nuid: "u-1"\ngithub: "cycore"\n'
        'token_bcrypt: "$2b$12$mNeKHRsDUC/.vOuWffCyIe0W/20z2DNcrVpOu2nPZ14YavQ9whkP2"\n'
        'created: "2026-12-04T19:00:00Z"\ngithub: "mallory"\n')),
              ["index/accounts/cycore.yaml:6: duplicate key 'github' (first at line 3); keep one"]),
    # Bytes that are not YAML text.
    IndexCase("nul-character", write(IMAGE, GOOD_IMAGE.replace('name: "redis"', 'name: "re\x00dis"')),
              [f"{SHOWN}:2: invalid YAML: character U+0000 is not allowed in YAML text; remove it"]),
    IndexCase("overlong-utf8-slash", write(IMAGE, GOOD_IMAGE.encode().replace(b"redis", b"re\xc0\xafdis", 1)),
              [f"{SHOWN}: file is not UTF-8 text (invalid byte at offset 26); save it as UTF-8"]),
    IndexCase("utf16-file", write(IMAGE, GOOD_IMAGE.encode("utf-16")),
              [f"{SHOWN}: file is not UTF-8 text (invalid byte at offset 0); save it as UTF-8"]),
    # Names that look like other names or that Windows reserves.
    IndexCase("cyrillic-i-name", write("images/cycore/redіs.yaml", GOOD_IMAGE.replace('"redis"', '"redіs"')),
              ["index/images/cycore/redіs.yaml:2: name 'redіs' has characters outside letters, digits, '_' and '-' "
               "(U+0456 CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I at position 4); rename it"]),
    IndexCase("cyrillic-es-author", image('author: "cycore"', 'author: "сycore"'),
              [f"{SHOWN}:1: author 'сycore' has characters outside letters and digits "
               "(U+0441 CYRILLIC SMALL LETTER ES at position 1); rename it"]),
    IndexCase("fullwidth-name-nfkc-redis", image('name: "redis"', 'name: "ｒｅｄｉｓ"'),
              [f"{SHOWN}:2: name 'ｒｅｄｉｓ' has characters outside letters, digits, '_' and '-' "
               "(U+FF52 FULLWIDTH LATIN SMALL LETTER R at position 1); rename it"]),
    IndexCase("zero-width-space-version", image('version: "3.0.4"', 'version: "3.0.4\\u200b"'),
              [f"{SHOWN}:4: version '3.0.4\\u200b' has characters outside letters, digits, '.' and '-', "
               "starting with a letter or digit (U+200B ZERO WIDTH SPACE at position 6); rename it"]),
    IndexCase("fullwidth-digits-buildtime", image('buildtime: "2026', 'buildtime: "２０２６'),
              [f"{SHOWN}:8: buildtime '２０２６-12-04 19:17:10' is invalid; expected a time such as 2026-12-04 19:17:10"]),
    IndexCase("version-case-collision", write(IMAGE, GOOD_IMAGE.replace('"3.0.4"', '"V1"') + VERSION.replace('"3.0.4"', '"v1"')),
              [f"{SHOWN}:10: version 'v1' duplicates the version at line 4; versions ignore case"]),
    IndexCase("name-case-in-file-name", write("images/cycore/REDIS.yaml", GOOD_IMAGE.replace('"redis"', '"REDIS"')),
              ["index/images/cycore/REDIS.yaml:1: image cycore/REDIS must be in index/images/cycore/redis.yaml; move the file"]),
    IndexCase("windows-con-author", write("accounts/con.yaml", (
        'username: "CON"\nuid: "u-2"\ngithub: "mallory"\n'
        'token_bcrypt: "$2b$12$mNeKHRsDUC/.vOuWffCyIe0W/20z2DNcrVpOu2nPZ14YavQ9whkP2"\n'
        'created: "2026-12-04T19:00:00Z"\n')),
              ["index/accounts/con.yaml:1: author 'CON' is a reserved device name on Windows; choose another author"]),
    IndexCase("windows-nul-name", write("images/cycore/nul.yaml", GOOD_IMAGE.replace('"redis"', '"NUL"')),
              ["index/images/cycore/nul.yaml:2: name 'NUL' is a reserved device name on Windows; choose another name"]),
    IndexCase("windows-com1-version", image('version: "3.0.4"', 'version: "COM1.2"'),
              [f"{SHOWN}:4: version 'COM1.2' is a reserved device name on Windows; choose another version"]),
    IndexCase("dot-dot-version", image('version: "3.0.4"', 'version: "../../etc"'),
              [f"{SHOWN}:4: version '../../etc' has characters outside letters, digits, '.' and '-', starting with a letter or digit; rename it"]),
    IndexCase("anonymous-account", write("accounts/anonymous.yaml", (
        'username: "anonymous"\nuid: "u-3"\ngithub: "mallory"\n'
        'token_bcrypt: "$2b$12$mNeKHRsDUC/.vOuWffCyIe0W/20z2DNcrVpOu2nPZ14YavQ9whkP2"\n'
        'created: "2026-12-04T19:00:00Z"\n')),
              ["index/accounts/anonymous.yaml:1: author 'anonymous' is reserved for pulls without an author; choose another author"]),
    # Links that would make the loader read files outside the index.
    IndexCase("settings-symlink", link("registry.yaml", "elsewhere.yaml"),
              ["index/registry.yaml: unexpected symbolic link; replace it with the file or folder itself"]),
    IndexCase("accounts-folder-symlink", link("accounts", "elsewhere"),
              ["index/accounts: unexpected symbolic link; replace it with the file or folder itself"]),
    IndexCase("account-file-symlink", link("accounts/mallory.yaml", "elsewhere.yaml"),
              ["index/accounts/mallory.yaml: symbolic link in place of an account file; account files must be regular files in the repository, so replace the link with the file itself"]),
    IndexCase("account-other-symlink", link("accounts/notes.txt", "elsewhere"),
              ["index/accounts/notes.txt: unexpected entry; only regular .yaml files belong here"]),
    IndexCase("images-folder-symlink", link("images", "elsewhere"),
              ["index/images: unexpected symbolic link; replace it with the file or folder itself"]),
    IndexCase("author-folder-symlink", link("images/mallory", "elsewhere"),
              ["index/images/mallory: symbolic link in place of an author folder; author folders must be real folders in the repository, so replace the link with the folder itself"]),
    IndexCase("images-other-symlink", link("images/readme.yaml", "elsewhere.yaml"),
              ["index/images/readme.yaml: unexpected entry; images/ holds one folder per author"]),
    IndexCase("image-file-symlink", link(IMAGE, "elsewhere.yaml"),
              [f"{SHOWN}: symbolic link in place of an image file; image files must be regular files in the repository, so replace the link with the file itself"]),
    IndexCase("image-file-symlink-to-folder", link("images/cycore/app.yaml", "elsewhere"),
              ["index/images/cycore/app.yaml: symbolic link in place of an image file; image files must be regular files in the repository, so replace the link with the file itself"]),
    IndexCase("image-other-symlink", link("images/cycore/notes.txt", "elsewhere"),
              ["index/images/cycore/notes.txt: unexpected entry; only regular .yaml files belong here"]),
    # Author folders with no image files, whose names no author can have.
    IndexCase("empty-author-folder-space", folder("images/sp ace"), [f"index/images/sp ace: {BAD_AUTHOR_FOLDER}"]),
    IndexCase("empty-author-folder-punctuation", folder("images/Bad!Name"), [f"index/images/Bad!Name: {BAD_AUTHOR_FOLDER}"]),
    IndexCase("empty-author-folder-uppercase", folder("images/Cycore"), [f"index/images/Cycore: {BAD_AUTHOR_FOLDER}"]),
    IndexCase("empty-author-folder-cyrillic", folder("images/суcore"), [f"index/images/суcore: {BAD_AUTHOR_FOLDER}"]),
    IndexCase("empty-author-folder-reserved", folder("images/anonymous"), [f"index/images/anonymous: {BAD_AUTHOR_FOLDER}"]),
    IndexCase("empty-author-folder-too-long", folder("images/" + "a" * 33), [f"index/images/{'a' * 33}: {BAD_AUTHOR_FOLDER}"]),
    # A hidden file keeps an otherwise empty folder in git.
    IndexCase("author-folder-only-hidden-file", folder("images/sp ace", ".gitkeep"), [f"index/images/sp ace: {BAD_AUTHOR_FOLDER}"]),
]
