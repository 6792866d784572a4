"""Strict YAML reading: node trees with line numbers, and typed field access.

PyYAML resolves plain scalars by YAML 1.1 rules, so `1.10` becomes the float
1.1, `no` becomes False, `010` becomes 8 and `2020-01-01` becomes a date. The
index must keep names, versions, times and hashes exactly as written, so this
module never constructs Python objects from YAML. It composes the node tree
(the C parser when PyYAML has it), checks its structure, and reads each field
from its node: a string field accepts only scalars that YAML itself reads as
strings, and asks for quotes otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import yaml

from .errors import Problem

try:
    _Loader = yaml.CSafeLoader
except AttributeError:  # PyYAML built without libyaml
    _Loader = yaml.SafeLoader

MAX_YAML_BYTES = 1024 * 1024
# An image file nests three levels (image, versions, version entry). Deeper
# nesting is rejected before composing, because PyYAML composes recursively:
# 200,000 nested `[` crashed the C loader of PyYAML 6.0.3 with a segmentation
# fault, and 1,000 levels raised RecursionError in the Python one.
MAX_YAML_DEPTH = 16
# Sizes are bytes of one file, and 19 digits are more than any file size needs.
MAX_INT_DIGITS = 19

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_PLAIN_TAGS = {
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:int": "a number",
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:null": "empty (null)",
    "tag:yaml.org,2002:timestamp": "a date",
}
_CORE_TAGS = {_STR, _INT, _MAP, _SEQ, *_PLAIN_TAGS}


def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def compose(data: bytes, path: str, problems: list[Problem]) -> yaml.Node | None:
    """Parse one YAML document into a node tree, or add problems and return None.

    Refused: files over MAX_YAML_BYTES, text that is not UTF-8, nesting deeper
    than MAX_YAML_DEPTH, several documents, anchors and aliases (they make
    "billion laughs" bombs possible and an index never needs them), tags
    outside YAML's core schema such as `!!python/object`, and duplicate keys.
    """
    if len(data) > MAX_YAML_BYTES:
        problems.append(Problem(path, 0, f"file is {len(data)} bytes; the maximum is {MAX_YAML_BYTES}"))
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        problems.append(Problem(path, 0, f"file is not UTF-8 text (invalid byte at offset {error.start}); save it as UTF-8"))
        return None
    try:
        rejected = _check_events(text)
        if rejected is not None:
            problems.append(Problem(path, *rejected))
            return None
        documents = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else 0
        if "cannot start any token" in str(error.problem) and error.problem_mark is not None and "\t" in text.splitlines()[line - 1 if line else 0][: error.problem_mark.column + 1]:
            problems.append(Problem(path, line, "invalid YAML: a tab character; YAML indents with spaces only, so replace the tab with spaces"))
        elif "nesting depth" in str(error.problem):
            # libyaml from PyYAML 6.0.4 on stops deep flow nesting itself while it
            # scans ahead, before the event check above sees the depth.
            problems.append(Problem(path, line, f"YAML nesting is deeper than {MAX_YAML_DEPTH} levels; an index file needs at most 3"))
        else:
            problems.append(Problem(path, line, f"invalid YAML: {error.problem}"))
        return None
    except yaml.reader.ReaderError as error:
        # The C loader counts the position in UTF-8 bytes, the Python loader in characters.
        if _Loader is yaml.SafeLoader:
            line = text.count("\n", 0, error.position) + 1
        else:
            line = data.count(b"\n", 0, error.position) + 1
        character = f"U+{error.character:04X}" if isinstance(error.character, int) else repr(error.character)
        problems.append(Problem(path, line, f"invalid YAML: character {character} is not allowed in YAML text; remove it"))
        return None
    except yaml.YAMLError as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        problems.append(Problem(path, 0, f"invalid YAML: {first_line}"))
        return None
    documents = [document for document in documents if document is not None]
    if not documents:
        problems.append(Problem(path, 0, "file is empty; it must hold one YAML mapping"))
        return None
    if len(documents) > 1:
        problems.append(Problem(path, line_of(documents[1]), "file holds several YAML documents; keep one"))
        return None
    before = len(problems)
    _check_structure(documents[0], path, problems, set())
    if len(problems) > before:
        return None
    return documents[0]


def _check_events(text: str) -> tuple[int, str] | None:
    """Scan the parser events for anchors, aliases and deep nesting; return (line, message) of the first.

    The parser emits events without recursion, so this is safe on input that
    would crash the recursive composer.
    """
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            return line, "YAML anchors and aliases are not allowed; write the value out"
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                return line, f"YAML nesting is deeper than {MAX_YAML_DEPTH} levels; an index file needs at most 3"
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
    return None


def _check_structure(node: yaml.Node, path: str, problems: list[Problem], seen: set[int]) -> None:
    if id(node) in seen:
        problems.append(Problem(path, line_of(node), "YAML anchors and aliases are not allowed; write the value out"))
        return
    seen.add(id(node))
    if node.tag not in _CORE_TAGS:
        problems.append(Problem(path, line_of(node), f"YAML tag {node.tag!r} is not allowed; remove it"))
        return
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_structure(item, path, problems, seen)
    elif isinstance(node, yaml.MappingNode):
        keys: dict[str, int] = {}
        for key, value in node.value:
            _check_structure(key, path, problems, seen)
            if not isinstance(key, yaml.ScalarNode):
                problems.append(Problem(path, line_of(key), "mapping keys must be plain words"))
                continue
            if key.value in keys:
                problems.append(Problem(
                    path, line_of(key),
                    f"duplicate key {key.value!r} (first at line {keys[key.value]}); keep one",
                ))
            else:
                keys[key.value] = line_of(key)
            _check_structure(value, path, problems, seen)


def _describe(node: yaml.ScalarNode) -> str:
    return _PLAIN_TAGS.get(node.tag, "not text")


@dataclass(frozen=True)
class Field:
    """One key of a YAML mapping: its kind ("str", "int", "list", "map"), and a value check."""

    name: str
    kind: str
    required: bool = True
    check: Callable[[str], str | None] | None = None


class Reader:
    """Reads typed fields from mapping nodes of one file, collecting problems."""

    def __init__(self, path: str, problems: list[Problem]):
        self.path = path
        self.problems = problems

    def problem(self, node: yaml.Node | None, message: str) -> None:
        self.problems.append(Problem(self.path, line_of(node) if node is not None else 0, message))

    def mapping(self, node: yaml.Node, fields: list[Field], what: str) -> dict[str, object] | None:
        """Read `node` as a mapping with exactly `fields`; return field name to value.

        A field that has a problem is left out of the result, so callers read
        optional and broken fields alike with `.get`.
        """
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{what} must be a mapping of keys to values")
            return None
        by_name = {field.name: field for field in fields}
        present: dict[str, yaml.Node] = {}
        for key, value in node.value:
            if key.value not in by_name:
                known = ", ".join(field.name for field in fields)
                self.problem(key, f"unknown key {key.value!r} in {what}; known keys: {known}")
                continue
            present[key.value] = value
        values: dict[str, object] = {}
        for field in fields:
            if field.name not in present:
                if field.required:
                    self.problem(node, f"{what} is missing the required key {field.name!r}")
                continue
            value = self._field(present[field.name], field)
            if value is not None:
                values[field.name] = value
        values["_line"] = line_of(node)
        return values

    def _field(self, node: yaml.Node, field: Field) -> object:
        if field.kind == "str":
            value = self.string(node, field.name)
        elif field.kind == "int":
            value = self.integer(node, field.name)
        elif field.kind == "list":
            if not isinstance(node, yaml.SequenceNode):
                self.problem(node, f"{field.name} must be a list")
                return None
            return node.value
        else:
            return node
        if value is not None and field.check is not None:
            message = field.check(value)
            if message is not None:
                self.problem(node, message)
                return None
        return value

    def string(self, node: yaml.Node, name: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, f"{name} must be text, not a list or mapping")
            return None
        if node.tag != _STR:
            self.problem(
                node,
                f"{name}: {node.value} is read by YAML as {_describe(node)}, not text; "
                f"quote it: {name}: \"{node.value}\"",
            )
            return None
        return node.value

    def integer(self, node: yaml.Node, name: str) -> int | None:
        if (
            not isinstance(node, yaml.ScalarNode)
            or node.tag != _INT
            or not node.value.isdigit()
            or not node.value.isascii()
            or (len(node.value) > 1 and node.value.startswith("0"))
        ):
            shown = node.value if isinstance(node, yaml.ScalarNode) else "a list or mapping"
            self.problem(node, f"{name} must be a whole number written in digits, such as 1367041, not {shown!r}")
            return None
        if len(node.value) > MAX_INT_DIGITS:
            # Checked before int(), which raises ValueError past 4,300 digits (Python 3.11 and later).
            self.problem(node, f"{name} has {len(node.value)} digits; the maximum is {MAX_INT_DIGITS}")
            return None
        return int(node.value)
