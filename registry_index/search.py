"""The static search layout: substring search served from at most two files.

A search for `q` returns every searchable version whose lowercase unique name
(`author/name:version`) contains `q` lowercased. Static hosts ignore query
strings, so the build writes one file (a *node*) per key, where a key is a
substring of some unique name:

- every substring of 1 to PREFIX_LENGTH characters has a node;
- a node is *complete* when it lists every version containing its key and there
  are at most LIMIT of them, or when its key has MAX_KEY_LENGTH characters;
- otherwise it is *truncated*: it lists the first SHOWN versions in search
  order and the exact total, and a key of PREFIX_LENGTH characters lists
  `splits`, every longer key starting with it whose node is truncated too;
- every key one character longer than a truncated key of PREFIX_LENGTH or
  more characters has a node as well.

A node groups its versions by image and writes an image's display fields
once, not once per version, because those copies made up most of the site
(see docs/benchmarks.md).

`plan_lookup` and `answer` are the client side of the rule; `serve`, the
benchmark and the browse page follow the same steps. A key with no node has no
matching version.

The build computes every node at once (`build_nodes`); after a change to a few
images, `update_nodes` recomputes only the nodes whose key occurs in those
images' unique names, and gives the same nodes a full build would.
"""

from __future__ import annotations

import array
import bisect
import itertools
import json
from json.encoder import encode_basestring
import string
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

# One encoder for every node: json.dumps with options builds a new one on each call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# The encoder's string writer, for entries built from cached parts.
_string = encode_basestring

PREFIX_LENGTH = 3
# A node lists every match when there are at most LIMIT. A truncated node
# lists the first SHOWN, as many as the hub's search returned.
LIMIT = 1000
SHOWN = 100
# A key never grows past this many characters; a node at this length is
# complete whatever its size, so file names stay short.
MAX_KEY_LENGTH = 48
ALPHABET = frozenset(string.ascii_lowercase + string.digits + "-_./:")
_LITERAL = frozenset(string.ascii_lowercase + string.digits + "-")
ALL_KEY_FILE = "_all"
SEARCH_FOLDER = "v1/search"


def key_file(key: str) -> str:
    """Return the file name stem of a key: `_xx` hex escapes for `_ . / :`."""
    if key == "":
        return ALL_KEY_FILE
    return "".join(char if char in _LITERAL else f"_{ord(char):02x}" for char in key)


def file_key(stem: str) -> str:
    """Return the key of a node file name stem: the inverse of `key_file`."""
    if stem == ALL_KEY_FILE:
        return ""
    parts = stem.split("_")
    return parts[0] + "".join(chr(int(part[:2], 16)) + part[2:] for part in parts[1:])


def node_path(key: str) -> str:
    return f"{SEARCH_FOLDER}/{key_file(key)}.json"


def normalize_query(query: str) -> str | None:
    """Return the lowercase query, or None when no unique name can contain it."""
    lowered = query.lower()
    if any(char not in ALPHABET for char in lowered):
        return None
    return lowered


class Entry(NamedTuple):
    """One image as search lists it: its searchable versions, newest first, and what a result shows."""

    base: str  # author/name as written
    versions: tuple[str, ...]
    latest: str
    summary: str
    size: str
    buildtime: str

    def lowered(self) -> tuple[str, tuple[str, ...]]:
        return self.base.lower(), tuple(version.lower() for version in self.versions)


# A match is (entry number, versions): versions is None when every version
# of the entry contains the key, else the ascending numbers of those that do.
Match = tuple[int, "tuple[int, ...] | None"]


@dataclass
class Node:
    key: str
    total: int
    matches: list[Match]  # the listed ones: all when complete, the first SHOWN versions when truncated
    complete: bool
    splits: list[str] = field(default_factory=list)


class Corpus:
    """The entries of a search in search order, with the lowercase text that keys are matched against."""

    def __init__(self, entries: Iterable[Entry] = ()):
        self.entries: list[Entry] = []
        self.lowered: list[tuple[str, tuple[str, ...]]] = []
        # One string per entry holding every unique name, for a fast first test.
        self.haystacks: list[str] = []
        self.version_texts: list[str] = []
        self.counts: list[int] = []
        self._joined: str | None = None
        self._starts: list[int] = []
        # Entry number -> its JSON when listed with all its versions, and the
        # JSON before and after the versions when listed with some (see encode_node).
        self.fragments: dict[int, str] = {}
        self.fragment_parts: dict[int, tuple[str, str]] = {}
        for entry in entries:
            self.append(entry)

    def append(self, entry: Entry) -> int:
        """Add the next entry in search order; return its number."""
        base, versions = entry.lowered()
        self.entries.append(entry)
        self.lowered.append((base, versions))
        self.haystacks.append("\n".join(f"{base}:{version}" for version in versions))
        self.version_texts.append("\n".join(versions))
        self.counts.append(len(versions))
        self._joined = None
        return len(self.entries) - 1

    def match(self, number: int, key: str) -> tuple[int, ...] | None | bool:
        """Return how entry `number` matches `key`: None for all versions, the version numbers, or False for none."""
        base, versions = self.lowered[number]
        if key in base:
            return None
        # The end of the base that a key reaching into the version can start in.
        tail = base[max(0, len(base) - len(key) + 1):] if len(key) > 1 else ""
        found = tuple(index for index, version in enumerate(versions) if key in f"{tail}:{version}")
        return found if found else False

    def size(self, match: Match) -> int:
        return self.counts[match[0]] if match[1] is None else len(match[1])

    def holding(self, key: str) -> Iterator[int]:
        """Yield the numbers of the entries with a unique name that contains `key`, in order."""
        if self._joined is None:
            # One string for all entries: str.find skips the entries without the key at C speed.
            self._joined = "\n".join(self.haystacks) + "\n"
            self._starts = list(itertools.accumulate((len(haystack) + 1 for haystack in self.haystacks), initial=0))
        joined, starts = self._joined, self._starts
        position = joined.find(key)
        while position != -1:
            number = bisect.bisect_right(starts, position) - 1
            yield number
            position = joined.find(key, starts[number + 1])

    def scan(self, key: str, limit: int | None = None) -> tuple[list[Match], int]:
        """Return the matches of `key` in order, stopping once `limit` versions are found, and the versions found."""
        matches: list[Match] = []
        found = 0
        for number in self.holding(key):
            versions = self.match(number, key)
            if versions is False:
                continue
            matches.append((number, versions))
            found += self.size((number, versions))
            if limit is not None and found >= limit:
                break
        return matches, found


def _numbers() -> array.array:
    return array.array("i")


def _masks() -> array.array:
    return array.array("Q")


class Postings:
    """The matches of every key of 1 to PREFIX_LENGTH characters, gathered one entry at a time in search order.

    Stored compactly, since there are about a hundred per image: per key, an
    array of entry numbers, where an entry that matches with some of its
    versions only is written as -1 - number and its versions are kept aside.
    """

    def __init__(self, corpus: Corpus):
        self.corpus = corpus
        self.numbers: dict[str, array.array] = defaultdict(_numbers)
        # The versions of partial matches as bit masks; masks of 64 versions
        # or more (rare) are 0 here and kept as tuples in `wide`.
        self.partial: dict[str, array.array] = defaultdict(_masks)
        self.wide: dict[tuple[str, int], tuple[int, ...]] = {}
        self._version_keys: dict[str, tuple[str, ...]] = {}
        self._indexes: dict[int, tuple[int, ...]] = {}

    def keys(self) -> list[str]:
        return list(self.numbers)

    def size(self, key: str) -> int:
        return len(self.numbers[key])

    def matches(self, key: str) -> list[Match]:
        """Return the matches of `key` in search order."""
        masks = self.partial.get(key)
        if masks is None:
            return [(number, None) for number in self.numbers[key]]
        found: list[Match] = []
        position = 0
        # Many images have the same mask (the first version only, all ten versions), so each mask becomes a tuple once.
        indexes = self._indexes
        for number in self.numbers[key]:
            if number >= 0:
                found.append((number, None))
                continue
            mask = masks[position]
            if mask == 0:
                versions = self.wide[(key, position)]
            else:
                versions = indexes.get(mask)
                if versions is None:
                    versions = indexes[mask] = tuple(index for index in range(mask.bit_length()) if mask >> index & 1)
            found.append((-1 - number, versions))
            position += 1
        return found

    def add(self, number: int) -> None:
        base, versions = self.corpus.lowered[number]
        numbers = self.numbers
        inside = {base[start:start + length] for length in range(1, PREFIX_LENGTH + 1) for start in range(len(base) - length + 1)}
        for key in inside:
            numbers[key].append(number)
        # Keys that reach past the base contain ':' or lie in a version: the
        # versions that contain each, as a bit mask.
        crossing: dict[str, int] = {}
        get = crossing.get
        # Keys that start in the base and cross ':': the end of the base and
        # ':' (in every version), followed by up to `extra` version characters.
        tails = [base[-length:] + ":" for length in range(1, min(PREFIX_LENGTH - 1, len(base)) + 1)]
        reaching = [(tail, extra) for tail in tails for extra in range(1, PREFIX_LENGTH - len(tail) + 1)]
        for index, version in enumerate(versions):
            bit = 1 << index
            keys = self._version_keys.get(version)
            if keys is None:
                text = ":" + version
                keys = self._version_keys[version] = tuple({text[start:start + length] for length in range(1, PREFIX_LENGTH + 1) for start in range(len(text) - length + 1)})
            for key in keys:
                crossing[key] = get(key, 0) | bit
            for tail, extra in reaching:
                key = tail + version[:extra]
                crossing[key] = get(key, 0) | bit
        every = (1 << len(versions)) - 1
        for tail in tails:
            crossing[tail] = every
        for key in inside.intersection(crossing):
            del crossing[key]
        partial = self.partial
        for key, mask in crossing.items():
            numbers[key].append(-1 - number)
            masks = partial[key]
            if mask.bit_length() <= 64:
                masks.append(mask)
            else:
                self.wide[(key, len(masks))] = tuple(index for index in range(mask.bit_length()) if mask >> index & 1)
                masks.append(0)


def _node(corpus: Corpus, key: str, matches: list[Match], total: int | None = None) -> Node:
    """Return the node of `key` from its matches in order (all of them, or at least the first SHOWN versions when `total` is given)."""
    if total is None:
        counts = corpus.counts
        total = sum(counts[number] if versions is None else len(versions) for number, versions in matches)
    if total <= LIMIT or len(key) >= MAX_KEY_LENGTH:
        return Node(key, total, matches, True)
    listed: list[Match] = []
    room = SHOWN
    for number, versions in matches:
        if room <= 0:
            break
        indexes = versions if versions is not None else tuple(range(corpus.counts[number]))
        if len(indexes) <= room:
            listed.append((number, versions))
            room -= len(indexes)
        else:
            listed.append((number, indexes[:room]))
            room = 0
    return Node(key, total, listed, False)


def _children(corpus: Corpus, key: str, matches: list[Match]) -> dict[str, list[Match]]:
    """Return the matches of every key one character longer than `key`, in order."""
    children: dict[str, list[Match]] = {}
    length = len(key)
    version_texts = corpus.version_texts
    crossing = ":" in key
    scanned: dict[str, tuple[str, ...]] = {}
    for number, versions in matches:
        base, lowered = corpus.lowered[number]
        if versions is None:
            # Most often the key occurs once in the base and in no version.
            start = base.find(key)
            if 0 <= start < len(base) - length and base.find(key, start + 1) == -1 and key not in version_texts[number]:
                child = base[start:start + length + 1]
                found = children.get(child)
                if found is None:
                    children[child] = [(number, None)]
                else:
                    found.append((number, None))
                continue
        every: set[str] = set()
        some: dict[str, set[int]] = {}
        if versions is None:
            start = base.find(key)
            while start != -1:
                if start + length < len(base):
                    every.add(base[start:start + length + 1])
                else:
                    # The child ends in ':', which only unique names contain, not the base.
                    some.setdefault(key + ":", set()).update(range(len(lowered)))
                start = base.find(key, start + 1)
            # Occurrences inside a version (a key without ':' cannot cross into one).
            if key in version_texts[number]:
                for index, version in enumerate(lowered):
                    start = version.find(key)
                    while start != -1:
                        if start + length < len(version):
                            some.setdefault(version[start:start + length + 1], set()).add(index)
                        start = version.find(key, start + 1)
        else:
            # Only some versions match, so the key is not in the base: it starts in the
            # base's last length-1 characters or later. Versions come in ascending order.
            # A key without ':' lies inside the version, so the version alone gives its
            # children. Many entries share a version, and each text is scanned once.
            tail = base[max(0, len(base) - length + 1):]
            listed: dict[str, list[int]] = {}
            for index in versions:
                text = f"{tail}:{lowered[index]}" if crossing else lowered[index]
                extensions = scanned.get(text)
                if extensions is None:
                    extensions = scanned[text] = _extensions(key, text)
                for child in extensions:
                    found = listed.get(child)
                    if found is None:
                        listed[child] = [index]
                    else:
                        found.append(index)
            for child, indexes in listed.items():
                children.setdefault(child, []).append((number, tuple(indexes)))
            continue
        for child in every:
            children.setdefault(child, []).append((number, None))
        for child, indexes in some.items():
            if child not in every:
                children.setdefault(child, []).append((number, tuple(sorted(indexes))))
    return children


def _extensions(key: str, text: str) -> tuple[str, ...]:
    """Return the distinct keys one character longer than `key` that occur in `text`."""
    length = len(key)
    found: dict[str, None] = {}
    start = text.find(key)
    while start != -1:
        if start + length < len(text):
            found[text[start:start + length + 1]] = None
        start = text.find(key, start + 1)
    return tuple(found)


def _subtree(corpus: Corpus, root: str, matches: list[Match], nodes: dict[str, Node]) -> list[str]:
    """Add the nodes below the truncated key `root` to `nodes`; return the truncated keys among them, sorted.

    Most entries contain `root` once, in the base and in no version. Such an
    entry matches a longer key exactly when the base's text from that
    occurrence starts with the key, so those texts are sorted once and each
    node takes a slice of them, found by bisection. `_children` handles the
    other entries, one level at a time.
    """
    counts = corpus.counts
    version_texts = corpus.version_texts
    texts: list[str] = []
    numbers: list[int] = []
    others: list[Match] = []
    for number, versions in matches:
        if versions is None:
            base = corpus.lowered[number][0]
            start = base.find(root)
            if start >= 0 and base.find(root, start + 1) == -1 and root not in version_texts[number]:
                texts.append(base[start:start + MAX_KEY_LENGTH])
                numbers.append(number)
                continue
        others.append((number, versions))
    order = sorted(range(len(texts)), key=texts.__getitem__)
    texts = [texts[position] for position in order]
    numbers = [numbers[position] for position in order]

    splits: list[str] = []
    # (key, slice of texts whose entries contain it once, matches of the other entries)
    pending = [(root, 0, len(texts), others)]
    while pending:
        key, low, high, key_others = pending.pop()
        length = len(key)
        children = _children(corpus, key, key_others) if key_others else {}
        ranges: dict[str, tuple[int, int]] = {}
        # A base that ends with the key gives its whole entry to the key followed by ':'.
        position = bisect.bisect_right(texts, key, low, high)
        if position > low:
            ends = [(number, tuple(range(counts[number]))) for number in numbers[low:position]]
            colon = children.get(key + ":")
            children[key + ":"] = sorted(ends + colon, key=_first) if colon else sorted(ends, key=_first)
        while position < high:
            child = texts[position][:length + 1]
            end = bisect.bisect_left(texts, key + chr(ord(child[-1]) + 1), position, high)
            ranges[child] = (position, end)
            position = end
        for child in sorted(ranges.keys() | children.keys()):
            low_child, high_child = ranges.get(child, (0, 0))
            child_others = children.get(child, [])
            listed = sorted(numbers[low_child:high_child])
            total = sum(map(counts.__getitem__, listed)) + sum(counts[number] if versions is None else len(versions) for number, versions in child_others)
            child_matches = [(number, None) for number in listed]
            if child_others:
                child_matches = sorted(child_matches + child_others, key=_first)
            node = _node(corpus, child, child_matches, total)
            nodes[child] = node
            if not node.complete:
                splits.append(child)
                pending.append((child, low_child, high_child, child_others))
    return sorted(splits)


def _first(match: Match) -> int:
    return match[0]


def nodes_of(corpus: Corpus, key: str, matches: list[Match]) -> dict[str, Node]:
    """Return the node of `key`, whose matches are given, and, for a truncated key of PREFIX_LENGTH characters, the nodes below it."""
    node = _node(corpus, key, matches)
    nodes = {key: node}
    if not node.complete and len(key) == PREFIX_LENGTH:
        node.splits = _subtree(corpus, key, matches, nodes)
    return nodes


def everything(corpus: Corpus) -> list[Match]:
    """Return the matches of the empty key: every version."""
    return [(number, None) for number in range(len(corpus.entries))]


def build_nodes(corpus: Corpus) -> dict[str, Node]:
    """Return the node of every key of a search over `corpus`."""
    postings = Postings(corpus)
    for number in range(len(corpus.entries)):
        postings.add(number)
    nodes: dict[str, Node] = {}
    if corpus.entries:
        nodes[""] = _node(corpus, "", everything(corpus))
    for key in postings.keys():
        nodes.update(nodes_of(corpus, key, postings.matches(key)))
    return nodes


def _keys_of(lowered: Iterable[tuple[str, tuple[str, ...]]], longest: int) -> set[str]:
    """Return every substring of at most `longest` characters of the given unique names."""
    keys: set[str] = set()
    for base, versions in lowered:
        for text in [base] + [f"{base}:{version}" for version in versions]:
            for start in range(len(text)):
                for end in range(start + 1, min(len(text), start + longest) + 1):
                    keys.add(text[start:end])
    return keys


def update_nodes(
    corpus: Corpus,
    old: list[Entry],
    new: list[Entry],
    read_node: Callable[[str], dict | None],
    existing: Iterable[str],
) -> tuple[dict[str, Node], set[str]]:
    """Return the nodes to write and the keys whose nodes to remove after `old` entries were replaced by `new` ones.

    `corpus` contains the entries after the change; `read_node` reads a node of
    the site before the change and `existing` lists the keys of its nodes.
    The result equals what `build_nodes` gives for `corpus`, restricted to
    the keys that changed.
    """
    changed = [entry.lowered() for entry in old] + [entry.lowered() for entry in new]
    written: dict[str, Node] = {}
    removed: set[str] = set()
    if not changed:
        return written, removed
    if corpus.entries:
        written[""] = _node(corpus, "", everything(corpus))
    else:
        removed.add("")
    longest: set[str] | None = None

    def changed_keys() -> set[str]:
        nonlocal longest
        if longest is None:
            longest = _keys_of(changed, MAX_KEY_LENGTH)
        return longest

    below: dict[str, list[str]] = {}
    for key in existing:
        if len(key) > PREFIX_LENGTH:
            below.setdefault(key[:PREFIX_LENGTH], []).append(key)
    for key in sorted(_keys_of(changed, PREFIX_LENGTH)):
        before = read_node(key)
        if before is not None:
            # Count the change instead of rescanning: the total of a short key is large.
            total = before["total"] - _count(old, key) + _count(new, key)
            matches = corpus.scan(key, SHOWN)[0] if total > LIMIT else corpus.scan(key)[0]
            node = _node(corpus, key, matches, total)
        else:
            matches = corpus.scan(key)[0]
            node = _node(corpus, key, matches)
        if node.total == 0:
            removed.add(key)
        else:
            written[key] = node
        if len(key) < PREFIX_LENGTH:
            continue
        if node.total and not node.complete and before is not None and not before["complete"]:
            # Truncated before and after: only the nodes on the changed names' paths change,
            # and they are found among the entries that contain the key.
            candidates = [(number, None) for number in corpus.holding(key)]
            node.splits = _update_subtree(corpus, key, candidates, before.get("splits", []), changed_keys, below.get(key, []), written, removed)
        else:
            if node.total and not node.complete:
                matches = corpus.scan(key)[0]
            removed.update(below.get(key, ()))
            if node.total and not node.complete:
                node.splits = _subtree(corpus, key, matches, written)
    for key in written:
        removed.discard(key)
    return written, removed


def _update_subtree(
    corpus: Corpus,
    root: str,
    matches: list[Match],
    old_splits: list[str],
    changed_keys: Callable[[], set[str]],
    old_below: list[str],
    written: dict[str, Node],
    removed: set[str],
) -> list[str]:
    """Update the nodes below the truncated key `root`, which was truncated before too; return its new splits.

    A node's matches change only when its key occurs in a changed unique
    name, so only those keys are computed again, each from its parent's
    matches. A parent that becomes truncated gets all its children; one that
    stops being truncated loses all its descendants.
    """
    existing = set(old_below)
    was_truncated = set(old_splits)
    truncated = set(old_splits)
    full_matches = {root: matches}

    def drop_below(key: str) -> None:
        for other in existing:
            if other.startswith(key) and len(other) > len(key):
                removed.add(other)
                truncated.discard(other)
                written.pop(other, None)

    affected = sorted((key for key in changed_keys() if key.startswith(root) and len(key) > len(root)), key=lambda key: (len(key), key))
    for key in affected:
        parent = key[:-1]
        if parent != root and parent not in truncated:
            # The parent lists every match, so this key has no node.
            if key in existing:
                removed.add(key)
            truncated.discard(key)
            continue
        key_matches = []
        # The parent's entries, with or without their versions: only the numbers are read.
        haystacks = corpus.haystacks
        for number, _ in full_matches[parent]:
            if key in haystacks[number]:
                key_matches.append((number, corpus.match(number, key)))
        if not key_matches:
            if key in existing:
                removed.add(key)
            truncated.discard(key)
            drop_below(key)
            continue
        node = _node(corpus, key, key_matches)
        written[key] = node
        if node.complete:
            truncated.discard(key)
            if key in was_truncated:
                drop_below(key)
            continue
        truncated.add(key)
        full_matches[key] = key_matches
        if key not in was_truncated:
            # Newly truncated: every child gets a node, affected or not.
            truncated.update(_subtree(corpus, key, key_matches, written))
    return sorted(truncated)


def _count(entries: list[Entry], key: str) -> int:
    total = 0
    for base, versions in (entry.lowered() for entry in entries):
        if key in base:
            total += len(versions)
        else:
            total += sum(1 for version in versions if key in f"{base}:{version}")
    return total


def encode_node(corpus: Corpus, node: Node) -> bytes:
    """Return the JSON bytes of a node; see docs/api.md for the fields.

    The bytes equal those of `encode_document`. An entry listed with all its
    versions is encoded once and reused in every node that lists it, about
    fifty per image. For other entries, the text around the versions is
    encoded once.
    """
    fragments = corpus.fragments
    images = []
    for number, versions in node.matches:
        if versions is None:
            fragment = fragments.get(number)
            if fragment is None:
                fragment = fragments[number] = _ENCODER.encode(_listed(corpus.entries[number]))
        else:
            # A partial entry: the versions between the cached text before and after them.
            parts = corpus.fragment_parts.get(number)
            if parts is None:
                entry = corpus.entries[number]
                parts = corpus.fragment_parts[number] = (
                    f"[{_string(entry.base)},[",
                    f"],{_string(entry.latest)},{_string(entry.summary)},{_string(entry.size)},{_string(entry.buildtime)}]",
                )
            entry_versions = corpus.entries[number].versions
            fragment = parts[0] + ",".join([_string(entry_versions[index]) for index in versions]) + parts[1]
        images.append(fragment)
    text = f'{{"key":{_ENCODER.encode(node.key)},"complete":{"true" if node.complete else "false"},"total":{node.total},"images":[{",".join(images)}]'
    if node.splits:
        text += f',"splits":{_ENCODER.encode(node.splits)}'
    return (text + "}\n").encode("utf-8")


def _listed(entry: Entry) -> list:
    """Return a node's list for `entry` with all its versions and its display fields."""
    return [entry.base, list(entry.versions), entry.latest, entry.summary, entry.size, entry.buildtime]


def encode_document(key: str, complete: bool, total: int, images: list[list], splits: list[str]) -> bytes:
    document: dict = {"key": key, "complete": complete, "total": total, "images": images}
    if splits:
        document["splits"] = splits
    return (_ENCODER.encode(document) + "\n").encode("utf-8")


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


def answer(query: str, node: dict | None) -> tuple[list[list], int, bool]:
    """Return (images, total, truncated) for `query` from the last node read.

    Each image is a node entry whose version list contains only the versions
    that match `query`.
    """
    if node is None:
        return [], 0, False
    if not node["complete"]:
        # A truncated node is only ever the last one read when its key is the query.
        return node["images"], node["total"], True
    images = []
    total = 0
    for entry in node["images"]:
        base = entry[0].lower()
        versions = [version for version in entry[1] if query in f"{base}:{version.lower()}"]
        if versions:
            images.append([entry[0], versions, *entry[2:]])
            total += len(versions)
    return images, total, False


def unique_names(images: list[list]) -> list[str]:
    """Return the unique names `author/name:version` of the entries that `answer` returns, in order."""
    return [f"{entry[0]}:{version}" for entry in images for version in entry[1]]


# Growing nodes in place -------------------------------------------------------
#
# When every changed image only gains searchable versions (a new image, a new
# version), no key loses a match. Then a complete node plus the changed images
# gives every match of its key, and a truncated node's first SHOWN versions
# plus the changed images give the new first SHOWN. So the nodes to write
# follow from the nodes of the site and the changed entries alone, with no
# corpus: that is what keeps a one-version rebuild small at 100,000 images.


def grows(old: Entry | None, new: Entry | None) -> bool:
    """Return whether replacing `old` by `new` only adds searchable versions of the same image."""
    if new is None:
        return old is None
    return old is None or (old.base == new.base and set(old.versions) <= set(new.versions))


def _order(base: str) -> tuple[str, str]:
    author, _, name = base.partition("/")
    return author.lower(), name.lower()


def _matching(entry: Entry, key: str) -> list[str]:
    base = entry.base.lower()
    if key in base:
        return list(entry.versions)
    return [version for version in entry.versions if key in f"{base}:{version.lower()}"]


def _item(entry: Entry, versions: list[str]) -> list:
    return [entry.base, versions, entry.latest, entry.summary, entry.size, entry.buildtime]


def _first_shown(items: list[list]) -> list[list]:
    """Return the first SHOWN versions of `items`, the last item cut short when needed."""
    listed: list[list] = []
    room = SHOWN
    for item in items:
        if room <= 0:
            break
        if len(item[1]) <= room:
            listed.append(item)
            room -= len(item[1])
        else:
            listed.append([item[0], item[1][:room], *item[2:]])
            room = 0
    return listed


def _item_children(key: str, items: list[list]) -> dict[str, list[list]]:
    """Return the items of every key one character longer than `key`, from all the items of `key`, in order."""
    children: dict[str, list[list]] = {}
    for item in items:
        base = item[0].lower()
        found: dict[str, list[str]] = {}
        for version in item[1]:
            for child in _extensions(key, f"{base}:{version.lower()}"):
                found.setdefault(child, []).append(version)
        for child, versions in found.items():
            children.setdefault(child, []).append([item[0], versions, *item[2:]])
    return children


class Growth:
    """The nodes to write after images gained versions, computed from the site's nodes and the changed entries."""

    def __init__(self, changes: list[tuple[Entry | None, Entry]], read_node: Callable[[str], dict | None]):
        self.changes = changes
        self.read_node = read_node
        self.bases = {new.base for _, new in changes}
        self.written: dict[str, bytes] = {}
        self.texts = sorted({f"{new.base.lower()}:{version.lower()}" for _, new in changes for version in new.versions})

    def run(self, searchable: int) -> dict[str, bytes]:
        """Return (key -> node bytes) of every node that changes; `searchable` is the number of searchable versions after the change."""
        keys = {text[start:start + length] for text in self.texts for length in range(1, PREFIX_LENGTH + 1) for start in range(len(text) - length + 1)}
        for key in ["", *sorted(keys)]:
            self._key(key, self.read_node(key), None, total=searchable if key == "" else None)
        return self.written

    def _items(self, key: str, before: dict | None) -> tuple[list[list], int]:
        """Return the items of `key` after the change (all of them when `before` lists all) and the change in its total."""
        unchanged = [item for item in (before["images"] if before else []) if item[0] not in self.bases]
        added: list[tuple[tuple[str, str], list]] = []
        delta = 0
        for old, new in self.changes:
            versions = _matching(new, key)
            delta += len(versions) - (len(_matching(old, key)) if old is not None else 0)
            if versions:
                added.append((_order(new.base), _item(new, versions)))
        added.sort(key=lambda pair: pair[0])
        merged: list[list] = []
        position = 0
        for order, item in added:
            while position < len(unchanged) and _order(unchanged[position][0]) < order:
                merged.append(unchanged[position])
                position += 1
            merged.append(item)
        merged.extend(unchanged[position:])
        return merged, delta

    def _key(self, key: str, before: dict | None, known: list[list] | None, total: int | None = None) -> list[str]:
        """Write the node of `key` and, below a truncated key, its changed descendants; return the truncated keys among them.

        `known` contains every item of `key` when its parent just became
        truncated. Otherwise the items come from `before`, the node of the
        site, and the changed entries.
        """
        if known is not None:
            items, everything = known, True
            total = sum(len(item[1]) for item in items)
        else:
            items, delta = self._items(key, before)
            everything = before is None or before["complete"]
            if total is None:
                total = sum(len(item[1]) for item in items) if everything else before["total"] + delta
        if total <= LIMIT or len(key) >= MAX_KEY_LENGTH:
            self.written[key] = encode_document(key, True, total, items, [])
            return []
        below: list[str] = []
        if len(key) >= PREFIX_LENGTH:
            if everything:
                # Newly truncated: every longer key gets a node, from all the items.
                for child, child_items in _item_children(key, items).items():
                    below.extend(self._key(child, None, child_items))
            else:
                # Truncated before: only the longer keys in the changed names change.
                length = len(key) + 1
                children = {text[start:start + length] for text in self.texts for start in range(len(text) - length + 1) if text.startswith(key, start)}
                for child in sorted(children):
                    below.extend(self._key(child, self.read_node(child), None))
        splits: list[str] = []
        if len(key) == PREFIX_LENGTH:
            # A truncated key keeps its truncated descendants: nodes only grow here.
            splits = sorted(set(below) | set(before.get("splits", []) if before and not before["complete"] else []))
        self.written[key] = encode_document(key, False, total, _first_shown(items), splits)
        return [key, *below]
