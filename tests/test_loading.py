"""Strict loading of the index: every problem with its file, line and fix."""

import os
import shutil
import weakref
from pathlib import Path

import pytest

from registry_index import index as index_module
from registry_index.errors import InvalidIndex
from registry_index.index import Totals, check_index, load_index
from registry_index.site import build_site

VERSION = """\
  - version: "3.0.4"
    file: "cycore-redis-3.0.4.ki"
    size: 1367041
    sha256: "d4a6849f128ab875e41410cfc7a37ae3a79226736f2a385a685a776e15a0166c"
    buildtime: "2026-12-04 19:17:10"
    pusher: "cycore"
"""
GOOD = 'author: "cycore"\nname: "redis"\nversions:\n' + VERSION


def problems_for(index_dir: Path, text: str, relative: str = "images/cycore/redis.yaml") -> list[str]:
    path = index_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidIndex) as caught:
        load_index(index_dir)
    problems = [str(problem) for problem in caught.value.problems]
    # validate reads one image at a time and must find the same problems, in the same order.
    with pytest.raises(InvalidIndex) as checked:
        check_index(index_dir)
    assert [str(problem) for problem in checked.value.problems] == problems
    # The build reads image files one at a time in worker processes and checks
    # the rules across files on compact records: it must find the same problems.
    with pytest.raises(InvalidIndex) as built:
        build_site(index_dir, index_dir.parent / "site")
    assert sorted(str(problem) for problem in built.value.problems) == sorted(problems)
    assert not (index_dir.parent / "site").exists()
    return problems


def test_check_index_counts(sample_index):
    assert check_index(sample_index) == Totals(accounts=1, images=2, versions=2, settings=load_index(sample_index).settings)


def test_check_index_keeps_no_image(index_dir):
    for name in ("alpha", "beta", "gamma"):
        (index_dir / "images/cycore").mkdir(exist_ok=True)
        (index_dir / f"images/cycore/{name}.yaml").write_text(GOOD.replace('"redis"', f'"{name}"').replace("cycore-redis-", f"cycore-{name}-"))
    seen: list[tuple[str, bool]] = []
    previous: list[weakref.ref] = []

    def on_image(image) -> None:
        # The image passed before was freed, because no reference to it remains.
        seen.append((image.name, bool(previous) and previous[-1]() is not None))
        previous.append(weakref.ref(image))

    assert check_index(index_dir, on_image) == Totals(accounts=1, images=3, versions=3, settings=load_index(index_dir).settings)
    assert seen == [("alpha", False), ("beta", False), ("gamma", False)]


def test_check_index_reports_file_changed_between_readings(index_dir):
    (index_dir / "images/cycore").mkdir()
    for name in ("alpha", "beta"):
        (index_dir / f"images/cycore/{name}.yaml").write_text(GOOD.replace('"redis"', f'"{name}"').replace("cycore-redis-", f"cycore-{name}-"))
    beta = index_dir / "images/cycore/beta.yaml"

    def on_image(image) -> None:
        # While the second reading passes alpha on, beta gets another version.
        if image.name == "alpha":
            beta.write_text(beta.read_text() + VERSION.replace("3.0.4", "3.0.5"))

    with pytest.raises(InvalidIndex) as caught:
        check_index(index_dir, on_image)
    assert [str(problem) for problem in caught.value.problems] == ["index/images/cycore/beta.yaml: file changed while the index was read twice; run the command again"]


@pytest.mark.parametrize("spelling", ["{root}/images/cycore/{file}", "{root}//images/cycore/{file}", "{root}/./images/cycore/{file}", "{root}/images/cycore//{file}"])
@pytest.mark.parametrize("file", ["redis.yaml", "other.yaml"])
def test_read_image_file_path_spellings(index_dir, spelling, file):
    (index_dir / "images/cycore").mkdir()
    (index_dir / f"images/cycore/{file}").write_text(GOOD)
    problems: list = []
    accounts = index_module.read_header(index_dir).accounts
    image, _ = index_module.read_image_file(index_dir, spelling.format(root=index_dir, file=file), accounts, problems)
    if file == "redis.yaml":
        assert image is not None
        assert image.path == "index/images/cycore/redis.yaml"
        assert problems == []
    else:
        assert image is None
        assert [str(problem) for problem in problems] == ["index/images/cycore/other.yaml:1: image cycore/redis must be in index/images/cycore/redis.yaml; move the file"]


def test_load_index_keeps_selected_images(index_dir):
    (index_dir / "images/cycore").mkdir()
    for name in ("alpha", "beta"):
        (index_dir / f"images/cycore/{name}.yaml").write_text(GOOD.replace('"redis"', f'"{name}"').replace("cycore-redis-", f"cycore-{name}-"))
    loaded = load_index(index_dir, select=lambda image: image.path == "index/images/cycore/alpha.yaml")
    assert sorted(loaded.images) == [("cycore", "alpha")]


def test_load_index_checks_other_images(index_dir):
    (index_dir / "images/cycore").mkdir()
    (index_dir / "images/cycore/alpha.yaml").write_text(GOOD.replace('"redis"', '"alpha"'))
    (index_dir / "images/cycore/beta.yaml").write_text('author: "cycore"\nname: "beta"\nversions: []\n')
    with pytest.raises(InvalidIndex) as caught:
        load_index(index_dir, select=lambda image: image.name == "alpha")
    assert [str(problem) for problem in caught.value.problems] == ["index/images/cycore/beta.yaml:1: image has no versions; remove the file or add a version"]


def test_good_image_loads(index_dir):
    (index_dir / "images/cycore").mkdir()
    (index_dir / "images/cycore/redis.yaml").write_text(GOOD)
    index = load_index(index_dir)
    image = index.image("CYCORE", "Redis")
    assert image.name == "redis"
    assert [v.version for v in image.versions] == ["3.0.4"]
    assert image.versions[0].size == 1367041


F = "index/images/cycore/redis.yaml"


@pytest.mark.parametrize("old, new, expected", [
    ('version: "3.0.4"', "version: 1.10", f'{F}:4: version: 1.10 is read by YAML as a number, not text; quote it: version: "1.10"'),
    ('version: "3.0.4"', "version: 2.0", f'{F}:4: version: 2.0 is read by YAML as a number, not text; quote it: version: "2.0"'),
    ('version: "3.0.4"', "version: no", f'{F}:4: version: no is read by YAML as a boolean, not text; quote it: version: "no"'),
    ('version: "3.0.4"', "version: 010", f'{F}:4: version: 010 is read by YAML as a number, not text; quote it: version: "010"'),
    ('version: "3.0.4"', "version: 2020-01-01", f'{F}:4: version: 2020-01-01 is read by YAML as a date, not text; quote it: version: "2020-01-01"'),
    ('version: "3.0.4"', "version: ~", f'{F}:4: version: ~ is read by YAML as empty (null), not text; quote it: version: "~"'),
    ('version: "3.0.4"', 'version: "3.0 4"', f"{F}:4: version '3.0 4' has characters outside letters, digits, '.' and '-', starting with a letter or digit; rename it"),
    ('buildtime: "2026-12-04 19:17:10"', "buildtime: 2026-12-04 19:17:10", f'{F}:8: buildtime: 2026-12-04 19:17:10 is read by YAML as a date, not text; quote it: buildtime: "2026-12-04 19:17:10"'),
    ('buildtime: "2026-12-04 19:17:10"', 'buildtime: "yesterday"', f"{F}:8: buildtime 'yesterday' is invalid; expected a time such as 2026-12-04 19:17:10"),
    ("size: 1367041", 'size: "1367041"', f"{F}:6: size must be a whole number written in digits, such as 1367041, not '1367041'"),
    ("size: 1367041", "size: 1_367_041", f"{F}:6: size must be a whole number written in digits, such as 1367041, not '1_367_041'"),
    ("size: 1367041", "size: 0x10", f"{F}:6: size must be a whole number written in digits, such as 1367041, not '0x10'"),
    ('sha256: "d4a6', 'sha256: "D4A6', f"{F}:7: sha256 'D4A6849f128ab875e41410cfc7a37ae3a79226736f2a385a685a776e15a0166c' is invalid; expected 64 lowercase hexadecimal digits"),
    ('pusher: "cycore"', 'pusher: "cycore"\n    colour: "red"', f"{F}:10: unknown key 'colour' in version entry; known keys: version, file, url, source, size, sha256, buildtime, pusher, summary, license, homepage, platform, pushed, yanked, protection, sealed"),
    ('    file: "cycore-redis-3.0.4.ki"\n', "", f"{F}:4: version entry is missing the required key 'file'"),
    ('name: "redis"', 'name: "re dis"', f"{F}:2: name 're dis' has characters outside letters, digits, '_' and '-'; rename it"),
    ('pusher: "cycore"', 'pusher: "cycore"\n    pusher: "cycore"', f"{F}:10: duplicate key 'pusher' (first at line 9); keep one"),
    ('version: "3.0.4"', "version: !!python/object:os.system 1", f"{F}:4: YAML tag 'tag:yaml.org,2002:python/object:os.system' is not allowed; remove it"),
    ('pusher: "cycore"', 'pusher: "nobody"', f"{F}:4: pusher 'nobody' has no account in accounts/"),
    ('pusher: "cycore"', 'pusher: "cycore"\n    yanked: ""', f"{F}:4: yanked is empty; give the reason for the yank, or remove the key"),
    ('pusher: "cycore"', 'pusher: "cycore"\n    homepage: "javascript:alert(1)"', f"{F}:10: URL 'javascript:alert(1)' is invalid; give an http:// or https:// URL or leave it empty"),
])
def test_image_problem(index_dir, old, new, expected):
    assert old in GOOD
    assert problems_for(index_dir, GOOD.replace(old, new, 1)) == [expected]


def test_duplicate_version_differing_in_case(index_dir):
    text = (GOOD + VERSION.replace('"3.0.4"', '"3.0.4-RC1"').replace("3.0.4.ki", "3.0.4-rc1.ki")
            + VERSION.replace('"3.0.4"', '"3.0.4-rc1"').replace("3.0.4.ki", "3.0.4-rc1b.ki"))
    assert problems_for(index_dir, text) == [f"{F}:16: version '3.0.4-rc1' duplicates the version at line 10; versions ignore case"]


def test_duplicate_version_listed_twice(index_dir):
    assert problems_for(index_dir, GOOD + VERSION) == [f"{F}:10: version '3.0.4' duplicates the version at line 4; versions ignore case"]


def test_missing_required_key(index_dir):
    assert problems_for(index_dir, GOOD.replace('name: "redis"\n', "")) == [f"{F}:1: image is missing the required key 'name'"]


def test_unknown_top_level_key(index_dir):
    assert problems_for(index_dir, GOOD + "stars: 5\n") == [f"{F}:10: unknown key 'stars' in image; known keys: author, name, versions"]


def test_not_a_mapping(index_dir):
    assert problems_for(index_dir, "- just\n- a list\n") == [f"{F}:1: image must be a mapping of keys to values"]


def test_alias_bomb(index_dir):
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f'{chr(98 + level)}: &{chr(98 + level)} [*{chr(97 + level)},*{chr(97 + level)},*{chr(97 + level)},*{chr(97 + level)},*{chr(97 + level)},*{chr(97 + level)},*{chr(97 + level)},*{chr(97 + level)},*{chr(97 + level)}]\n'
        for level in range(8)
    )
    problems = problems_for(index_dir, bomb)
    assert problems[0] == f"{F}:1: YAML anchors and aliases are not allowed; write the value out"


def test_several_documents(index_dir):
    assert problems_for(index_dir, GOOD + "---\n" + GOOD) == [f"{F}:11: file holds several YAML documents; keep one"]


def test_invalid_utf8(index_dir):
    path = index_dir / "images/cycore/redis.yaml"
    path.parent.mkdir(parents=True)
    path.write_bytes(GOOD.encode().replace(b"redis", b"red\xffis", 1))
    with pytest.raises(InvalidIndex) as caught:
        load_index(index_dir)
    assert [str(p) for p in caught.value.problems] == [f"{F}: file is not UTF-8 text (invalid byte at offset 27); save it as UTF-8"]


def test_huge_file(index_dir):
    text = GOOD + "# " + "x" * (1024 * 1024) + "\n"
    assert problems_for(index_dir, text) == [f"{F}: file is {len(text)} bytes; the maximum is 1048576"]


def test_yaml_syntax_error(index_dir):
    assert problems_for(index_dir, 'author: "cycore\n') == [f"{F}:2: invalid YAML: found unexpected end of stream"]


def test_file_in_wrong_place(index_dir):
    assert problems_for(index_dir, GOOD, "images/cycore/Redis.yaml") == [
        "index/images/cycore/Redis.yaml:1: image cycore/redis must be in index/images/cycore/redis.yaml; move the file"
    ]


def test_name_differing_only_in_underscore(index_dir):
    (index_dir / "images/cycore").mkdir()
    (index_dir / "images/cycore/my_app.yaml").write_text(GOOD.replace('"redis"', '"my_app"'))
    assert problems_for(index_dir, GOOD.replace('"redis"', '"my-app"'), "images/cycore/my-app.yaml") == [
        "index/images/cycore/my_app.yaml: image cycore/my_app collides with cycore/my-app in index/images/cycore/my-app.yaml; names ignore case and '_' versus '-'"
    ]


def test_author_spelled_in_other_case(index_dir):
    assert problems_for(index_dir, GOOD.replace('author: "cycore"', 'author: "CyCore"')) == [
        f"{F}:1: author 'CyCore' differs from the account name 'cycore'; write 'cycore'"
    ]


def test_author_without_account(index_dir):
    text = GOOD.replace('author: "cycore"', 'author: "ghost"')
    assert problems_for(index_dir, text, "images/ghost/redis.yaml") == [
        "index/images/ghost/redis.yaml:1: author 'ghost' has no account in accounts/; register it first"
    ]


def test_every_problem_reported_at_once(index_dir):
    text = GOOD.replace('version: "3.0.4"', "version: 1.10").replace("size: 1367041", "size: big")
    assert problems_for(index_dir, text) == [
        f'{F}:4: version: 1.10 is read by YAML as a number, not text; quote it: version: "1.10"',
        f"{F}:6: size must be a whole number written in digits, such as 1367041, not 'big'",
    ]


def test_account_problems(index_dir):
    text = (index_dir / "accounts/cycore.yaml").read_text()
    (index_dir / "accounts/cycore.yaml").write_text(text.replace('github: "cycore"', 'github: "-bad-"').replace("$2b$12$", "$2b$04$"))
    with pytest.raises(InvalidIndex) as caught:
        load_index(index_dir)
    assert [str(p) for p in caught.value.problems] == [
        "index/accounts/cycore.yaml:3: github '-bad-' is invalid; expected a GitHub login",
        "index/accounts/cycore.yaml:4: token_bcrypt has cost 04; the minimum is 12; run `registry-index register` again",
    ]


def test_missing_settings(index_dir):
    (index_dir / "registry.yaml").unlink()
    with pytest.raises(InvalidIndex) as caught:
        load_index(index_dir)
    assert [str(p) for p in caught.value.problems] == [
        "index/registry.yaml: registry settings file not found; create it (see docs/index-format.md)"
    ]


def test_unexpected_entries(index_dir):
    (index_dir / "notes.txt").write_text("hi")
    (index_dir / "images/readme.yaml").write_text("x: 1")
    with pytest.raises(InvalidIndex) as caught:
        load_index(index_dir)
    assert [str(p) for p in caught.value.problems] == [
        "index/images/readme.yaml: unexpected entry; images/ holds one folder per author",
        "index/notes.txt: unexpected entry; an index holds only registry.yaml, accounts/ and images/",
    ]


def test_tab_indentation(index_dir):
    text = GOOD.replace("    file:", "\tfile:", 1)
    assert problems_for(index_dir, text) == [f"{F}:5: invalid YAML: a tab character; YAML indents with spaces only, so replace the tab with spaces"]


@pytest.mark.parametrize("folder", ["images", "accounts"])
def test_folder_that_is_a_file(index_dir, folder):
    shutil.rmtree(index_dir / folder)
    (index_dir / folder).write_text("x")
    with pytest.raises(InvalidIndex) as caught:
        load_index(index_dir)
    assert [str(p) for p in caught.value.problems] == [f"index/{folder}: unexpected entry; {folder}/ must be a folder, so replace it with one"]
    with pytest.raises(InvalidIndex) as built:
        build_site(index_dir, index_dir.parent / "site")
    assert [str(p) for p in built.value.problems] == [f"index/{folder}: unexpected entry; {folder}/ must be a folder, so replace it with one"]


def _scandir_then(change):
    """Return os.scandir that runs `change` after the first listing of a folder named 'images', as a concurrent edit would."""
    real = os.scandir
    done = []

    def scandir(path="."):
        entries = list(real(path))
        if not done and isinstance(path, (str, Path)) and Path(path).name == "images":
            done.append(True)
            change()
        return _Listing(entries)
    return scandir


class _Listing(list):
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return None


def test_author_folder_replaced_while_listing(index_dir, monkeypatch):
    (index_dir / "images/cycore").mkdir()
    (index_dir / "images/cycore/redis.yaml").write_text(GOOD)

    def replace_with_file():
        shutil.rmtree(index_dir / "images/cycore")
        (index_dir / "images/cycore").write_text("now a file")
    monkeypatch.setattr(index_module.os, "scandir", _scandir_then(replace_with_file))
    problems: list = []
    assert index_module.list_images(index_dir, problems) == []
    assert [str(p) for p in problems] == ["index/images/cycore: cannot open folder: Not a directory; make it a readable folder and run again"]


def test_image_file_removed_while_listing(index_dir, monkeypatch):
    (index_dir / "images/cycore").mkdir()
    (index_dir / "images/cycore/redis.yaml").write_text(GOOD)
    (index_dir / "images/cycore/tengine.yaml").write_text(GOOD.replace("redis", "tengine"))
    real = os.scandir

    def scandir(path="."):
        entries = list(real(path))
        if isinstance(path, int):
            # The listing of the author folder, made through its descriptor: a file goes away after it.
            (index_dir / "images/cycore/redis.yaml").unlink()
        return _Listing(entries)
    monkeypatch.setattr(index_module.os, "scandir", scandir)
    problems: list = []
    listed = index_module.list_images(index_dir, problems)
    assert [image_file.relative for image_file in listed] == ["images/cycore/tengine.yaml"]
    assert [str(p) for p in problems] == ["index/images/cycore/redis.yaml: cannot read file: No such file or directory; make it readable and run again"]


def test_build_lists_image_problems_behind_account_ones(index_dir):
    (index_dir / "images/cycore").mkdir()
    (index_dir / "images/cycore/redis.yaml").write_text(GOOD.replace("size: 1367041", "size: 0"))
    account = index_dir / "accounts/cycore.yaml"
    account.write_text(account.read_text().replace('created: "', 'created: "not a time ', 1))
    (index_dir / "stray.txt").write_text("x")
    with pytest.raises(InvalidIndex) as loaded:
        load_index(index_dir)
    with pytest.raises(InvalidIndex) as built:
        build_site(index_dir, index_dir.parent / "site")
    expected = [str(problem) for problem in loaded.value.problems]
    assert [str(problem) for problem in built.value.problems] == expected
    assert "index/stray.txt: unexpected entry; an index holds only registry.yaml, accounts/ and images/" in expected
    assert any(problem.startswith("index/accounts/cycore.yaml") for problem in expected)
    assert any(problem.startswith("index/images/cycore/redis.yaml") for problem in expected)
    assert not (index_dir.parent / "site").exists()


BAD_AUTHOR_FOLDER = (
    "invalid author folder name; images/ contains one folder per author, named with the author's username "
    "in lowercase ASCII letters and digits, so rename this folder or remove it"
)


@pytest.mark.parametrize("folder", ["sp ace", "Bad!Name"])
def test_empty_author_folder_bad_name(index_dir, folder):
    (index_dir / "images/cycore").mkdir()
    (index_dir / "images/cycore/redis.yaml").write_text(GOOD)
    (index_dir / "images" / folder).mkdir()
    expected = [f"index/images/{folder}: {BAD_AUTHOR_FOLDER}"]
    with pytest.raises(InvalidIndex) as caught:
        load_index(index_dir)
    assert [str(p) for p in caught.value.problems] == expected
    for incremental in (True, False):
        with pytest.raises(InvalidIndex) as built:
            build_site(index_dir, index_dir.parent / "site", incremental=incremental)
        assert [str(p) for p in built.value.problems] == expected
    assert sorted(path.name for path in index_dir.parent.iterdir()) == [".site.lock", "index"]


def test_empty_author_folder_good_name(index_dir):
    # The name of an author without images yet, or without an account: nothing in the folder can be wrong.
    (index_dir / "images/alice").mkdir()
    assert load_index(index_dir).images == {}


def test_bad_author_folder_reported_by_file(index_dir):
    # A folder with a file gets the file's problem, and no second one for its name.
    assert problems_for(index_dir, GOOD, "images/sp ace/redis.yaml") == [
        "index/images/sp ace/redis.yaml:1: image cycore/redis must be in index/images/cycore/redis.yaml; move the file"
    ]


def test_bad_author_folder_with_stray_entry(index_dir):
    # Removing the stray entry would leave a folder with a bad name: both are reported at once.
    (index_dir / "images/sp ace/sub").mkdir(parents=True)
    with pytest.raises(InvalidIndex) as caught:
        load_index(index_dir)
    assert [str(p) for p in caught.value.problems] == [
        f"index/images/sp ace: {BAD_AUTHOR_FOLDER}",
        "index/images/sp ace/sub: unexpected entry; only regular .yaml files belong here",
    ]


def test_read_image_missing_file(index_dir):
    # The file is removed after the listing, as it can be while validate runs.
    problems: list = []
    image = index_module.read_image(index_dir, index_dir / "images/cycore/gone.yaml", {}, problems)
    assert image is None
    assert [str(p) for p in problems] == ["index/images/cycore/gone.yaml: cannot read file: No such file or directory; make it readable and run again"]
