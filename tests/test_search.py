"""The static search layout returns exactly the substring matches in at most two reads, and updates as a full build would."""

import json
import random

import pytest

from registry_index import search
from registry_index.search import Corpus, Entry

WORDS = ["ab", "ba", "a-b", "b_a", "abc", "x1", "1.0", "aa", "redis", "lib"]
VERSIONS = ["1.0", "1.0.1", "a1", "b", "10", "ab", "0.1-rc1", "2.0-beta"]


def random_entries(rng: random.Random, count: int) -> list[Entry]:
    """Return up to `count` entries in search order, built from a few shared words so that keys repeat."""
    by_base = {}
    for _ in range(count):
        base = rng.choice(["ab", "Ba", "a1", "lib"]) + "/" + "".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
        versions = sorted({rng.choice(VERSIONS) for _ in range(rng.randint(1, 4))}, reverse=True)
        by_base[base.lower()] = Entry(base, tuple(versions), versions[0], "summary", "1024", "2026-12-04 19:17:10")
    return [by_base[key] for key in sorted(by_base)]


def site_of(corpus: Corpus) -> dict[str, dict]:
    """Return the nodes of a full build as a client reads them: parsed JSON by key."""
    return {key: json.loads(search.encode_node(corpus, node)) for key, node in search.build_nodes(corpus).items()}


def lookup(site: dict[str, dict], query: str) -> tuple[list[str], int, bool, int]:
    """Look up `query` as a static client does; return (unique names, total, truncated, reads)."""
    lowered = search.normalize_query(query)
    if lowered is None:
        return [], 0, False, 0
    first = site.get(lowered[:search.PREFIX_LENGTH])
    second = search.plan_lookup(lowered, first)
    node = first if second is None else site.get(second)
    images, total, truncated = search.answer(lowered, node)
    return search.unique_names(images), total, truncated, 1 if second is None else 2


def substring_match(entries: list[Entry], query: str) -> list[str]:
    return [f"{entry.base}:{version}" for entry in entries for version in entry.versions if query.lower() in f"{entry.base}:{version}".lower()]


def all_queries(entries: list[Entry]) -> set[str]:
    names = substring_match(entries, "")
    queries = {"", "a", "zz", ":", "/a", "A-B", "réd", "a b", "lib/redis:1.0"}
    return queries | {name.lower()[start:start + length] for name in names for start in range(len(name)) for length in (1, 2, 3, 4, 5, 7, 12)}


@pytest.mark.parametrize("seed", range(40))
def test_search_equals_substring_match(monkeypatch, seed):
    rng = random.Random(seed)
    limit = rng.choice([1, 2, 3, 5, 8, 100])
    shown = rng.choice([1, max(1, limit // 2), limit])
    monkeypatch.setattr(search, "LIMIT", limit)
    monkeypatch.setattr(search, "SHOWN", shown)
    entries = random_entries(rng, rng.randint(1, 30))
    site = site_of(Corpus(entries))
    for query in sorted(all_queries(entries)):
        expected = substring_match(entries, query) if search.normalize_query(query) is not None else []
        found, total, truncated, reads = lookup(site, query)
        assert reads <= 2, query
        assert total == len(expected), query
        if truncated:
            assert len(expected) > limit
            assert found == expected[:shown], query
        else:
            assert found == expected, query


def level_by_level_subtree(corpus: Corpus, root: str, matches: list, nodes: dict) -> list[str]:
    """Compute a subtree one level at a time from all matches, as the build did before `_subtree` sorted texts."""
    splits = []
    pending = [(root, matches)]
    while pending:
        key, key_matches = pending.pop()
        for child, child_matches in search._children(corpus, key, key_matches).items():
            node = search._node(corpus, child, child_matches)
            nodes[child] = node
            if not node.complete:
                splits.append(child)
                pending.append((child, child_matches))
    return sorted(splits)


@pytest.mark.parametrize("seed", range(40))
def test_subtree_equals_level_by_level(monkeypatch, seed):
    rng = random.Random(2000 + seed)
    monkeypatch.setattr(search, "LIMIT", rng.choice([1, 2, 3, 5, 8]))
    monkeypatch.setattr(search, "SHOWN", rng.choice([1, search.LIMIT]))
    corpus = Corpus(random_entries(rng, rng.randint(5, 40)))
    fast = search.build_nodes(corpus)
    monkeypatch.setattr(search, "_subtree", level_by_level_subtree)
    assert search.build_nodes(corpus) == fast


@pytest.mark.parametrize("seed", range(40))
def test_update_equals_full_build(monkeypatch, seed):
    rng = random.Random(1000 + seed)
    monkeypatch.setattr(search, "LIMIT", rng.choice([1, 2, 3, 5, 8, 100]))
    monkeypatch.setattr(search, "SHOWN", rng.choice([1, search.LIMIT]))
    entries = random_entries(rng, rng.randint(0, 30))
    before = site_of(Corpus(entries))
    after_entries = list(entries)
    old, new = [], []
    for _ in range(rng.randint(1, 3)):
        if after_entries and rng.random() < 0.5:
            old.append(after_entries.pop(rng.randrange(len(after_entries))))
    for entry in random_entries(rng, rng.randint(0, 2)):
        if all(other.base.lower() != entry.base.lower() for other in after_entries):
            after_entries.append(entry)
            new.append(entry)
    after_entries.sort(key=lambda entry: entry.base.lower())
    corpus = Corpus(after_entries)
    written, removed = search.update_nodes(corpus, old, new, before.get, list(before))
    updated = {key: node for key, node in before.items() if key not in removed}
    updated.update({key: json.loads(search.encode_node(corpus, node)) for key, node in written.items()})
    assert updated == site_of(corpus)


@pytest.mark.parametrize("seed", range(60))
def test_growth_equals_full_build(monkeypatch, seed):
    """New images and new versions update the nodes from the site's nodes alone, to what a full build gives."""
    rng = random.Random(2000 + seed)
    monkeypatch.setattr(search, "LIMIT", rng.choice([1, 2, 3, 5, 8, 100]))
    monkeypatch.setattr(search, "SHOWN", rng.choice([1, 2, search.LIMIT]))
    entries = random_entries(rng, rng.randint(0, 40))
    before = site_of(Corpus(entries))

    after = {entry.base.lower(): entry for entry in entries}
    changes = []
    for _ in range(rng.randint(1, 3)):
        if after and rng.random() < 0.6:
            old = after[rng.choice(sorted(after))]
            added = {rng.choice(VERSIONS + ["9.9", "1.0-x"]) for _ in range(rng.randint(1, 3))}
            versions = tuple(sorted(set(old.versions) | added, reverse=True))
            new = old._replace(versions=versions, latest=versions[0], summary=f"now {len(versions)}")
        else:
            old = None
            new = random_entries(rng, 1)[0]
            if new.base.lower() in after:
                continue
        if any(new.base == other.base for _, other in changes):
            continue
        assert search.grows(old, new)
        after[new.base.lower()] = new
        changes.append((old, new))

    corpus = Corpus(sorted(after.values(), key=lambda entry: search._order(entry.base)))
    written = search.Growth(changes, before.get).run(sum(len(entry.versions) for entry in corpus.entries))
    updated = dict(before)
    updated.update({key: json.loads(content) for key, content in written.items()})
    assert updated == site_of(corpus)
    assert all(content == search.encode_document(**{**updated[key], "splits": updated[key].get("splits", [])}) for key, content in written.items())


def test_only_added_versions_grow():
    entry = Entry("a/b", ("2.0", "1.0"), "2.0", "", "1", "2026-12-04 19:17:10")
    assert search.grows(None, entry)
    assert search.grows(entry._replace(versions=("1.0",)), entry)
    assert not search.grows(entry, entry._replace(versions=("2.0",)))
    assert not search.grows(entry, None)
    assert not search.grows(entry, entry._replace(base="a/B"))


def test_node_format():
    entries = [
        Entry("cycore/redis", ("3.0.4", "3.0.3"), "3.0.4", "in-memory store", "1367041", "2026-12-04 19:17:10"),
        Entry("cycore/Tengine", ("2.1.1",), "2.1.1", "", "2048", "2025-01-01 00:00:00"),
    ]
    site = site_of(Corpus(entries))
    assert site["3.0"] == {
        "key": "3.0", "complete": True, "total": 2,
        "images": [["cycore/redis", ["3.0.4", "3.0.3"], "3.0.4", "in-memory store", "1367041", "2026-12-04 19:17:10"]],
    }
    assert site["e:2"] == {"key": "e:2", "complete": True, "total": 1, "images": [["cycore/Tengine", ["2.1.1"], "2.1.1", "", "2048", "2025-01-01 00:00:00"]]}
    assert site[""]["total"] == 3
    assert lookup(site, "redis:3.0.3") == (["cycore/redis:3.0.3"], 1, False, 1)


def test_truncated_node_lists_the_first_shown(monkeypatch):
    monkeypatch.setattr(search, "LIMIT", 2)
    monkeypatch.setattr(search, "SHOWN", 1)
    entries = [Entry(f"a/n{number}", ("1.0", "0.9"), "1.0", "", "1", "2026-12-04 19:17:10") for number in range(3)]
    entries.append(Entry("a/n1x", ("1.0",), "1.0", "", "1", "2026-12-04 19:17:10"))
    site = site_of(Corpus(entries))
    assert site["a/n"] == {
        "key": "a/n", "complete": False, "total": 7,
        "images": [["a/n0", ["1.0"], "1.0", "", "1", "2026-12-04 19:17:10"]],
        "splits": ["a/n1"],
    }
    assert site["a/n1"] == {"key": "a/n1", "complete": False, "total": 3, "images": [["a/n1", ["1.0"], "1.0", "", "1", "2026-12-04 19:17:10"]]}
    assert lookup(site, "a/n") == (["a/n0:1.0"], 7, True, 1)
    assert lookup(site, "a/n1") == (["a/n1:1.0"], 3, True, 2)
    assert lookup(site, "a/n1:") == (["a/n1:1.0", "a/n1:0.9"], 2, False, 2)
    assert lookup(site, "a/n2") == (["a/n2:1.0", "a/n2:0.9"], 2, False, 2)


def test_key_file_escapes_and_back():
    keys = ["", "red", "a_b", "a/b:1.0", "x-y", "_", "__"]
    assert [search.key_file(key) for key in keys] == ["_all", "red", "a_5fb", "a_2fb_3a1_2e0", "x-y", "_5f", "_5f_5f"]
    assert [search.file_key(search.key_file(key)) for key in keys] == keys


def test_query_with_foreign_character_needs_no_read():
    assert search.normalize_query("réd") is None
    assert search.normalize_query("Redis:1.0") == "redis:1.0"


def test_image_with_many_versions(monkeypatch):
    # Past 64 versions, the versions of a partial match no longer fit a 64-bit mask.
    monkeypatch.setattr(search, "LIMIT", 50)
    monkeypatch.setattr(search, "SHOWN", 10)
    versions = tuple(f"1.{number}" for number in range(99, -1, -1))
    entries = [Entry("a/many", versions, "1.99", "", "1", "2026-12-04 19:17:10"), Entry("b/few", ("1.5", "2.0"), "2.0", "", "1", "2026-12-04 19:17:10")]
    site = site_of(Corpus(entries))
    for query in ["1.5", ":1.5", "y:1.9", "1.", "y:1", "w:1.5", "many:1.50"]:
        expected = substring_match(entries, query)
        found, total, truncated, _ = lookup(site, query)
        assert total == len(expected), query
        assert found == (expected[:10] if truncated else expected), query
    assert lookup(site, "y:1.9") == ([f"a/many:1.{number}" for number in (99, 98, 97, 96, 95, 94, 93, 92, 91, 90, 9)], 11, False, 2)
