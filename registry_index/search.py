"""The static search layout: substring search served from at most two files.

A search for `q` must return every record whose lowercase unique name
(`author/name:version`) contains `q` lowercased. Static hosts ignore query
strings, so the build writes one file (a *node*) per key, where a key is a
substring of some unique name:

- every substring of 1 to PREFIX_LENGTH characters has a node;
- a node is *complete* when it lists every record containing its key and there
  are at most LIMIT of them;
- otherwise it is *truncated*: it lists the first LIMIT records in search
  order, the exact total, and (for keys of PREFIX_LENGTH characters or more)
  `splits`, every longer key starting with it that is truncated too;
- every key one character longer than a truncated key of PREFIX_LENGTH or
  more characters has a node as well.

`plan_lookup` and `answer` are the client side of the rule; `serve`, the
`pull` client and the browse page follow the same steps. A key with no node
has no matching record.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

PREFIX_LENGTH = 3
LIMIT = 100
# A key never grows past this many characters; a node at this length is
# complete whatever its size, so file names stay short.
MAX_KEY_LENGTH = 48
ALPHABET = frozenset(string.ascii_lowercase + string.digits + "-_./:")
_LITERAL = frozenset(string.ascii_lowercase + string.digits + "-")
ALL_KEY_FILE = "_all"


def key_file(key: str) -> str:
    """Return the file name stem of a key: `_xx` hex escapes for `_ . / :`."""
    if key == "":
        return ALL_KEY_FILE
    return "".join(char if char in _LITERAL else f"_{ord(char):02x}" for char in key)


def node_path(key: str) -> str:
    return f"v1/search/{key_file(key)}.json"


def normalize_query(query: str) -> str | None:
    """Return the lowercase query, or None when no unique name can contain it."""
    lowered = query.lower()
    if any(char not in ALPHABET for char in lowered):
        return None
    return lowered


@dataclass
class Node:
    key: str
    total: int
    members: list[int]  # record numbers, ascending; all of them when complete
    complete: bool
    splits: list[str] = field(default_factory=list)


def build_nodes(unique_names: list[str]) -> dict[str, Node]:
    """Return the node of every key, for records whose lowercase unique names are given in search order."""
    postings: dict[str, list[int]] = {}
    for number, text in enumerate(unique_names):
        keys = {
            text[start:start + length]
            for length in range(1, PREFIX_LENGTH + 1)
            for start in range(len(text) - length + 1)
        }
        for key in keys:
            postings.setdefault(key, []).append(number)

    nodes: dict[str, Node] = {"": _node("", list(range(len(unique_names))))}
    for key, members in postings.items():
        node = _node(key, members)
        nodes[key] = node
        if not node.complete and len(key) == PREFIX_LENGTH:
            node.splits = _expand(key, members, unique_names, nodes)
    return nodes


def _node(key: str, members: list[int]) -> Node:
    complete = len(members) <= LIMIT or len(key) >= MAX_KEY_LENGTH
    return Node(key, len(members), members if complete else members[:LIMIT], complete)


def _expand(root: str, members: list[int], unique_names: list[str], nodes: dict[str, Node]) -> list[str]:
    """Add the nodes one character longer than each truncated key below `root`; return those truncated keys."""
    splits: list[str] = []
    pending = [(root, members)]
    while pending:
        key, key_members = pending.pop()
        children: dict[str, list[int]] = {}
        for number in key_members:
            text = unique_names[number]
            start = text.find(key)
            seen: set[str] = set()
            while start != -1:
                end = start + len(key)
                if end < len(text):
                    child = text[start:end + 1]
                    if child not in seen:
                        seen.add(child)
                        children.setdefault(child, []).append(number)
                start = text.find(key, start + 1)
        for child, child_members in children.items():
            node = _node(child, child_members)
            nodes[child] = node
            if not node.complete:
                splits.append(child)
                pending.append((child, child_members))
    return sorted(splits)


def plan_lookup(query: str, first: dict | None) -> str | None:
    """Return the key of the second node to read after reading the first node, or None when the first node is enough.

    `first` is the parsed node of `query[:PREFIX_LENGTH]` (None when absent).
    """
    if first is None or first["complete"] or len(query) <= PREFIX_LENGTH:
        return None
    prefixes = [key for key in [first["key"], *first.get("splits", [])] if query.startswith(key)]
    longest = max(prefixes, key=len)
    if longest == query:
        return query if longest != first["key"] else None
    return query[:len(longest) + 1]


def answer(query: str, node: dict | None) -> tuple[list[dict], int, bool]:
    """Return (results, total, truncated) for `query` from the last node read."""
    if node is None:
        return [], 0, False
    if not node["complete"]:
        # A truncated node is only ever the last one read when its key is the query.
        return node["results"], node["total"], True
    results = [record for record in node["results"] if query in record["unique_name"].lower()]
    return results, len(results), False
