"""Fast reading of image files in the canonical form that `registry-index add` writes.

Composing a YAML node tree costs about a millisecond per image file even with
PyYAML's C parser, because its resolver and every node are Python objects, so
a registry of 100,000 images would take minutes to load. The canonical form is
a narrow subset of YAML: comment lines, `key: "text"` with no backslash escape,
`key: digits`, and one `versions:` list of such mappings indented as `add`
writes it. `read_image` reads exactly that subset and returns an image only
when the file is also valid. For any other text, and for any invalid value, it
returns None, and the caller reads the file with the strict YAML reader, which
finds and reports the problems. So both readers give the same image for every
file that this one accepts; tests compare them.
"""

from __future__ import annotations

import dataclasses
import re

from .model import IMAGE_FIELDS, VERSION_FIELDS, Image, Version

# Characters that mean the same in every YAML context used here: no control
# character, nothing YAML reads as a line break (NEL, LS, PS), no byte order
# mark or non-character. Tabs and carriage returns are left to the strict reader.
_UNSAFE = "\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029\\ufeff\\ufffe\\uffff"
# One line: a key with a double-quoted value (no backslash escapes), a key
# with digits, a key alone (the start of the list), a comment or nothing.
_LINE = (
    rf'(?:(  - |    |)([a-z0-9_]+):(?: ("[^"\\{_UNSAFE}]*")| (0|[1-9][0-9]{{0,17}})|)'
    rf'|#[^{_UNSAFE}]*|)\n'
)
# The last group captures any other line, so one findall both splits the
# text and shows whether every line is canonical.
_LINE_PATTERN = re.compile(rf"{_LINE}|([^\n]*)\n")
# Python types of the field kinds a canonical line can hold; "list" and "map" match no value.
_TYPES = {"str": str, "int": int, "list": None, "map": None}
# Fields whose values differ in every version: caching their checks costs more than it saves.
_UNIQUE_VALUES = frozenset({"file", "size", "sha256", "buildtime", "pushed"})
# Per field name: the Python type of its value, its check, and whether passed values are cached.
_IMAGE_KINDS = {field.name: (_TYPES[field.kind], field.check, True) for field in IMAGE_FIELDS}
_VERSION_KINDS = {field.name: (_TYPES[field.kind], field.check, field.name not in _UNIQUE_VALUES) for field in VERSION_FIELDS}
_REQUIRED_VERSION_KEYS = frozenset(field.name for field in VERSION_FIELDS if field.required)
_LIST_KEY = "versions"
# (field name, value) pairs that passed their check. The checks are pure, and
# registries repeat values across files (versions, pushers, licenses), so the
# set is shared by every file and emptied when it reaches _PASSED_MAX.
_PASSED: set[tuple[str, object]] = set()
_PASSED_MAX = 1 << 16


def _parse(text: str) -> tuple[dict, list[tuple[int, dict]]] | None:
    """Split canonical text into the top-level values and the (line, values) of each list item."""
    if text and not text.endswith("\n"):
        return None
    top: dict[str, object] = {}
    items: list[tuple[int, dict]] = []
    current: dict | None = None
    in_list = False
    for number, (indent, key, quoted, digits, other) in enumerate(_LINE_PATTERN.findall(text), start=1):
        if other:
            return None
        if not key:
            continue  # a comment or an empty line
        if quoted:
            value = quoted[1:-1]
        elif digits:
            value = int(digits)
        else:
            value = None
        if not indent:
            in_list = False
            if key in top:
                return None
            if value is None:
                if key != _LIST_KEY:
                    return None
                in_list = True
                top[key] = items
                continue
            top[key] = value
            continue
        if not in_list or value is None:
            return None
        if indent == "  - ":
            current = {}
            items.append((number, current))
        elif current is None:
            return None
        if key in current:
            return None
        current[key] = value
    return top, items


def _valid(values: dict, kinds: dict) -> bool:
    """Return whether every value has its field's type and passes its check."""
    for key, value in values.items():
        kind = kinds.get(key)
        if kind is None or type(value) is not kind[0]:
            return False
        _, check, cached = kind
        if check is None:
            continue
        if not cached:
            if check(value) is not None:
                return False
        elif (key, value) not in _PASSED:
            if check(value) is not None:
                return False
            if len(_PASSED) >= _PASSED_MAX:
                _PASSED.clear()
            _PASSED.add((key, value))
    return True


# Every field of Version in order, with its default. The required ones are None until _transient_version sets them.
_VERSION_DEFAULTS = {field.name: None if field.default is dataclasses.MISSING else field.default for field in dataclasses.fields(Version)}


def _transient_version(values: dict, line: int) -> Version:
    """Return Version(**values, line=line) from checked values, without the frozen dataclass's __init__.

    That __init__ sets each of the 17 fields through object.__setattr__, about
    a seventh of the cost of reading an image file. Version has no
    __post_init__ and no slots, so filling its __dict__ gives an equal object.
    The object is about 300 bytes larger, because its __dict__ no longer
    shares its keys with the other instances, so only short-lived images
    (a build renders and drops each one) are made this way.
    """
    version = object.__new__(Version)
    fields = version.__dict__
    fields.update(_VERSION_DEFAULTS)
    fields.update(values)
    fields["line"] = line
    return version


def read_image(text: str, path: str, transient: bool = False) -> Image | None:
    """Return the image in canonical `text`, or None when the strict reader must read it.

    With `transient`, the versions are built faster but take more memory; see _transient_version.
    """
    parsed = _parse(text)
    if parsed is None:
        return None
    top, items = parsed
    if set(top) != set(_IMAGE_KINDS) or not items:
        return None
    scalars = {key: value for key, value in top.items() if key != _LIST_KEY}
    if not _valid(scalars, _IMAGE_KINDS):
        return None
    versions = []
    for line, values in items:
        if not _REQUIRED_VERSION_KEYS <= values.keys() or values.get("yanked") == "" or "sealed" in values:
            # A private version has a protection mapping, which only the strict reader reads.
            return None
        if not _valid(values, _VERSION_KINDS):
            return None
        versions.append(_transient_version(values, line) if transient else Version(**values, line=line))
    return Image(scalars["author"], scalars["name"], versions, path=path)
