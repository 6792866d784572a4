"""The static search layout returns exactly the substring matches, in at most two reads."""

import random

import pytest

from registry_index import search


def lookup(nodes: dict, query: str) -> tuple[list[int], int, bool, int]:
    """Look up `query` in built nodes as a static client does; return (members, total, truncated, reads)."""
    lowered = search.normalize_query(query)
    if lowered is None:
        return [], 0, False, 0

    def read(key):
        node = nodes.get(key)
        if node is None:
            return None
        return {"key": node.key, "complete": node.complete, "total": node.total, "splits": node.splits,
                "results": [{"unique_name": names[m], "n": m} for m in node.members]}

    names = lookup.names
    first = read(lowered[:search.PREFIX_LENGTH])
    reads = 1
    node = first
    second = search.plan_lookup(lowered, first)
    if second is not None:
        node = read(second)
        reads += 1
    results, total, truncated = search.answer(lowered, node)
    return [r["n"] for r in results], total, truncated, reads


def synthetic_names(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = ["redis", "nginx", "tengine", "mysql", "lib", "lib-redis", "app", "go", "py"]
    authors = ["cycore", "alice", "bob9", "zed"]
    out = set()
    while len(out) < count:
        name = rng.choice(words) + rng.choice(["", "-", "_"]) + rng.choice(words + [str(rng.randint(0, 99))])
        version = f"{rng.randint(0, 3)}.{rng.randint(0, 12)}.{rng.randint(0, 30)}"
        out.add(f"{rng.choice(authors)}/{name}:{version}")
    return sorted(out)


@pytest.mark.parametrize("limit", [5, 40])
def test_search_equals_substring_match(monkeypatch, limit):
    monkeypatch.setattr(search, "LIMIT", limit)
    names = synthetic_names(600, seed=7)
    lookup.names = names
    nodes = search.build_nodes(names)
    queries = {"", "r", "re", "red", "redi", "redis", "lib-redis", "/lib", ":1.", "1.1", "1.10", "cycore/redis",
               "_", "zzz", "REDIS", "bob9/app", "s:3.1", "é", "a b"}
    queries |= {name[start:start + length] for name in names[::37] for start in (0, 3, 8) for length in (2, 4, 7, 12)}
    for query in sorted(queries):
        expected = [number for number, name in enumerate(names) if query.lower() in name]
        members, total, truncated, reads = lookup(nodes, query)
        assert reads <= 2, query
        assert total == len(expected), query
        if truncated:
            assert members == expected[:limit], query
        else:
            assert members == expected, query


def test_key_file_escapes():
    assert [search.key_file(key) for key in ["", "red", "a_b", "a/b:1.0", "x-y"]] == ["_all", "red", "a_5fb", "a_2fb_3a1_2e0", "x-y"]


def test_query_with_foreign_character_needs_no_read():
    assert search.normalize_query("réd") is None
    assert search.normalize_query("Redis:1.0") == "redis:1.0"
