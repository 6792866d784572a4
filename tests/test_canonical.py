"""The canonical fast reader gives the strict reader's image, or leaves the file to it."""

import sys
from pathlib import Path

import pytest

from registry_index import canonical
from registry_index.editing import render_image_yaml
from registry_index.errors import Problem
from registry_index.model import parse_image
from registry_index.strictyaml import Reader, compose

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from synthetic_registry import make_images  # noqa: E402

REDIS = '''# Written by registry-index.
author: "cycore"
name: "redis"
versions:
  - version: "3.0.4"
    file: "cycore-redis-3.0.4.ki"
    size: 1367041
    sha256: "d4a6849f128ab875e41410cfc7a37ae3a79226736f2a385a685a776e15a0166c"
    buildtime: "2026-12-04 19:17:10"
    pusher: "cycore"
    platform: "linux"
    pushed: "2026-12-04T19:36:44Z"
'''


def strict(text: str):
    problems: list[Problem] = []
    node = compose(text.encode("utf-8"), "images/cycore/redis.yaml", problems)
    image = parse_image(node, Reader("images/cycore/redis.yaml", problems)) if node is not None else None
    return image, problems


def test_synthetic_images_read_alike():
    for image in make_images(200, 4, seed=3):
        text = render_image_yaml(image)
        fast = canonical.read_image(text, "images/cycore/redis.yaml")
        transient = canonical.read_image(text, "images/cycore/redis.yaml", transient=True)
        expected, problems = strict(text)
        assert problems == []
        assert fast is not None
        assert fast == expected
        assert transient == expected
        assert repr(transient) == repr(expected)


@pytest.mark.parametrize("text", [
    REDIS,
    REDIS.replace("# Written by registry-index.\n", ""),
    REDIS.replace('    platform: "linux"\n', '\n# a comment between keys\n    platform: "linux"\n'),
    REDIS.replace('    pushed: "2026-12-04T19:36:44Z"\n', '    summary: "Ünïcode — #not a comment: yes"\n    yanked: "broken"\n'),
    REDIS.replace('name: "redis"\n', "") + 'name: "redis"\n',
    REDIS + REDIS[REDIS.index("  - version"):].replace("3.0.4", "3.0.5"),
])
def test_accepted_text_equals_strict_reading(text):
    expected, problems = strict(text)
    assert problems == []
    assert canonical.read_image(text, "images/cycore/redis.yaml") == expected
    assert canonical.read_image(text, "images/cycore/redis.yaml", transient=True) == expected


@pytest.mark.parametrize("change", [
    ('"3.0.4"', "3.0.4"),  # a plain scalar: YAML may read it as a number
    ('"3.0.4"', "'3.0.4'"),
    ('"linux"', '"li\\u006eux"'),  # an escape
    ('"linux"', '"linux"  '),
    ('"linux"', '"linux" # trailing comment'),
    ('"linux"', '"li\u2028nux"'),  # a YAML line break inside the quotes
    ('"linux"', '"li\x85nux"'),
    ('# Written', '# Wri\x01tten'),  # a non-printable character in a comment
    ('size: 1367041', 'size: "1367041"'),
    ('size: 1367041', 'size: 01367041'),
    ('size: 1367041', 'size:\t1367041'),
    ('    platform:', '    unknown:'),
    ('    platform: "linux"', '    platform: "linux"\n    platform: "linux"'),
    ('    pusher: "cycore"\n', ''),
    ('"cycore-redis-3.0.4.ki"', '"cycore-redis-3.0.4.zip"'),
    ('"d4a6849f', '"D4A6849F'),
    ('    pushed:', '    yanked: ""\n    pushed:'),
    ('versions:\n', 'versions: []\n'),
    ('\n', '\r\n'),
    ('author: "cycore"', 'author: "cycore"\nauthor: "cycore"'),
    ('  - version', '   - version'),
])
def test_other_text_left_to_strict_reader(change):
    old, new = change
    assert old in REDIS
    assert canonical.read_image(REDIS.replace(old, new), "images/cycore/redis.yaml") is None


def test_missing_final_newline_left_to_strict_reader():
    assert canonical.read_image(REDIS.rstrip("\n"), "images/cycore/redis.yaml") is None
