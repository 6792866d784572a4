"""Incremental builds give the same bytes as a full build, and keep the old site whole when interrupted."""

import logging
import marshal
import os
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from registry_index import progress as progress_module
from registry_index import search
from registry_index import site as site_module
from registry_index.errors import InvalidIndex
from registry_index.index import load_index
from registry_index.model import Image, Version
from registry_index.progress import Progress
from registry_index.site import GENERATION_FILE, build_site
from registry_index.state import state_path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from synthetic_registry import write_image, write_registry  # noqa: E402

# Files that record how a site was built rather than what it serves.
BOOKKEEPING = {GENERATION_FILE}


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and path.name not in BOOKKEEPING
    }


def folders(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_dir()}


def age(index: Path) -> None:
    """Date every index file a minute back, as files are between two builds that are not seconds apart."""
    past = time.time() - 60
    for path in index.rglob("*"):
        os.utime(path, (past, past))


def assert_same_as_full(index: Path, out: Path, scratch: Path) -> None:
    full = scratch / "full"
    build_site(index, full, incremental=False)
    loaded = scratch / "loaded"
    build_site(load_index(index), loaded)
    assert tree(out) == tree(full)
    assert folders(out) == folders(full)
    assert tree(loaded) == tree(full)


@pytest.fixture
def registry(tmp_path):
    registry = write_registry(tmp_path / "index", images=60, versions=3, seed=5)
    age(registry.root)
    return registry


def add_version(registry, number: int, version: str = "9.9.9") -> None:
    """Add a version to image `number` of `registry`, write its file, and age the index."""
    image = registry.images[number]
    image.versions.append(new_version(image, version))
    write_image(registry.root, image)
    age(registry.root)


def new_version(image, version: str) -> Version:
    base = image.versions[-1]
    return Version(**{**base.__dict__, "version": version, "file": f"{image.author}-{image.name}-{version}.ki".lower(), "line": 0})


def test_changes_build_same_bytes_as_full(registry, tmp_path):
    index, out = registry.root, tmp_path / "site"
    images = registry.images
    assert build_site(index, out).mode == "full"
    assert_same_as_full(index, out, tmp_path / "0")

    steps = []
    images[7].versions.append(new_version(images[7], "9.9.9"))
    steps.append(lambda: write_image(index, images[7]))
    images[3].versions[0] = Version(**{**images[3].versions[0].__dict__, "yanked": "broken", "line": 0})
    steps.append(lambda: write_image(index, images[3]))
    steps.append(lambda: (index / "images" / images[11].author.lower() / f"{images[11].name.lower()}.yaml").unlink())
    images[20].versions.append(new_version(images[20], "10.0.0"))
    steps.append(lambda: write_image(index, images[20]))
    # Back to an earlier content, which the spare folder held two builds ago.
    steps.append(lambda: (images[20].versions.pop(), write_image(index, images[20])))
    # Every version yanked: the image leaves search, the pages and the anonymous file.
    images[30].versions[:] = [Version(**{**version.__dict__, "yanked": "gone", "line": 0}) for version in images[30].versions]
    steps.append(lambda: write_image(index, images[30]))
    for number, step in enumerate(steps, start=1):
        step()
        age(index)
        summary = build_site(index, out)
        assert summary.mode == "incremental"
        assert 0 < summary.files < 200
        assert_same_as_full(index, out, tmp_path / str(number))


def test_unchanged_index_writes_nothing(registry, tmp_path):
    out = tmp_path / "site"
    build_site(registry.root, out)
    before = {path: path.stat().st_ino for path in out.rglob("*")}
    summary = build_site(registry.root, out)
    assert (summary.mode, summary.files, summary.bytes) == ("nothing changed", 0, 0)
    assert {path: path.stat().st_ino for path in out.rglob("*")} == before


def test_recent_files_are_read_again(registry, tmp_path):
    index, out = registry.root, tmp_path / "site"
    build_site(index, out)
    image = registry.images[9]
    image.versions.append(new_version(image, "9.9.9"))
    write_image(index, image)  # not aged: a second write in the same clock tick would keep its stat
    build_site(index, out)
    image.versions[-1] = Version(**{**image.versions[-1].__dict__, "summary": "changed", "line": 0})
    write_image(index, image)
    build_site(index, out)
    assert_same_as_full(index, out, tmp_path)


def test_interrupted_build_keeps_old_site(registry, tmp_path, monkeypatch):
    index, out = registry.root, tmp_path / "site"
    build_site(index, out)
    add_version(registry, 1)
    build_site(index, out)
    before = tree(out)
    add_version(registry, 2)

    writes = 0
    original = site_module.Tree.write

    def failing_write(self, relative, content):
        nonlocal writes
        writes += 1
        if writes == 6:  # after the spare caught up and began to change
            raise OSError(28, "No space left on device")
        original(self, relative, content)

    monkeypatch.setattr(site_module.Tree, "write", failing_write)
    with pytest.raises(OSError):
        build_site(index, out)
    assert tree(out) == before
    monkeypatch.setattr(site_module.Tree, "write", original)
    assert build_site(index, out).mode == "full"  # the spare was left half changed
    assert_same_as_full(index, out, tmp_path)


def test_damaged_state_builds_in_full(registry, tmp_path):
    index, out = registry.root, tmp_path / "site"
    build_site(index, out)
    state_path(out).write_bytes(b"not a state")
    add_version(registry, 4)
    assert build_site(index, out).mode == "full"
    assert_same_as_full(index, out, tmp_path)


def test_settings_change_builds_in_full(registry, tmp_path):
    index, out = registry.root, tmp_path / "site"
    build_site(index, out)
    settings = index / "registry.yaml"
    settings.write_text(settings.read_text().replace("Synthetic registry", "Renamed registry"))
    assert build_site(index, out).mode == "full"
    assert "Renamed registry" in (out / "index.html").read_text()


def test_builds_without_folder_exchange(registry, tmp_path, monkeypatch):
    monkeypatch.setattr(site_module, "exchange_folders", lambda first, second: False)
    index, out = registry.root, tmp_path / "site"
    build_site(index, out)
    for number in (1, 2):
        image = registry.images[number]
        image.versions.append(new_version(image, "9.9.9"))
        write_image(index, image)
        age(index)
        assert build_site(index, out).mode == "full"
        assert_same_as_full(index, out, tmp_path / str(number))


def test_site_is_built_when_the_spare_cannot_be(registry, tmp_path, monkeypatch, caplog):
    def no_room(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(site_module, "_link", no_room)
    index, out = registry.root, tmp_path / "site"
    assert build_site(index, out).mode == "full"
    assert caplog.messages == [f"cannot keep a spare copy of the site at {tmp_path / '.site.spare'} (No space left on device); the next build will render everything"]
    assert not (tmp_path / ".site.spare").exists()
    monkeypatch.undo()
    add_version(registry, 4)
    assert build_site(index, out).mode == "full"
    assert_same_as_full(index, out, tmp_path)


def test_progress_lines_without_terminal(registry, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(progress_module, "SHOW_AFTER", 0.0)
    monkeypatch.setattr(progress_module, "LOG_EVERY", 0.0)
    caplog.set_level(logging.INFO, logger="registry_index.progress")
    index, out = registry.root, tmp_path / "site"
    build_site(index, out, progress=Progress(terminal=False))
    assert caplog.messages == [
        "build: listing the index",
        "build: rendering images (60 steps)",
        "build: rendering images 60/60",
        "build: writing search",
    ]
    caplog.clear()
    registry.images[4].versions.append(new_version(registry.images[4], "9.9.9"))
    changed = write_image(index, registry.images[4])
    past = time.time() - 60
    os.utime(changed, (past, past))  # only this file: aging all of them would change every file's ctime
    build_site(index, out, progress=Progress(terminal=False))
    assert caplog.messages == ["build: listing the index", "build: updating (1 steps)", "build: updating 1/1"]


def test_account_change_is_seen_without_image_changes(registry, tmp_path):
    index, out = registry.root, tmp_path / "site"
    build_site(index, out)
    account = sorted((index / "accounts").iterdir())[0]
    account.write_text(account.read_text().replace('created: "2026-12-04T19:17:10Z"', 'created: "2026-12-05T00:00:00Z"'))
    assert build_site(index, out).mode == "full"
    assert build_site(index, out).mode == "nothing changed"


def test_half_removed_spare_not_reused(registry, tmp_path, monkeypatch):
    index, out = registry.root, tmp_path / "site"
    build_site(index, out)
    real_rmtree = site_module.shutil.rmtree

    def killed_half_way(path, ignore_errors=False):
        files = sorted(Path(path).rglob("*.json"))
        for file in files[: len(files) // 2]:
            file.unlink()
        raise KeyboardInterrupt  # stands for SIGKILL: the build stops here

    monkeypatch.setattr(site_module.shutil, "rmtree", killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        build_site(index, out, incremental=False)
    monkeypatch.setattr(site_module.shutil, "rmtree", real_rmtree)
    add_version(registry, 4)
    assert build_site(index, out).mode == "full"
    assert_same_as_full(index, out, tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".site")) == [".site.lock", ".site.spare", ".site.state"]


def test_symlinked_spare_is_never_followed(registry, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "important.txt").write_text("keep")
    (tmp_path / ".site.spare").symlink_to(elsewhere)
    index, out = registry.root, tmp_path / "site"
    build_site(index, out)
    assert [path.name for path in elsewhere.iterdir()] == ["important.txt"]
    assert (tmp_path / ".site.spare").is_dir()
    assert not (tmp_path / ".site.spare").is_symlink()
    assert not out.is_symlink()


def test_planted_state_file_runs_no_code(registry, tmp_path):
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    index, out = registry.root, tmp_path / "site"
    build_site(index, out)
    state_path(out).write_bytes(pickle.dumps(Payload()))
    assert build_site(index, out).mode == "full"
    assert not (tmp_path / "ran").exists()


def test_builds_at_once_run_one_after_the_other(registry, tmp_path):
    import threading

    index, out = registry.root, tmp_path / "site"
    build_site(index, out)
    add_version(registry, 4)
    results = []
    threads = [threading.Thread(target=lambda: results.append(build_site(index, out).mode)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["incremental", "nothing changed"]
    assert_same_as_full(index, out, tmp_path)


def test_growth_under_truncated_nodes(registry, tmp_path, monkeypatch):
    # Small limits give truncated nodes with subtrees, as 100,000 images do with the real ones.
    monkeypatch.setattr(search, "LIMIT", 12)
    monkeypatch.setattr(search, "SHOWN", 5)
    index, out = registry.root, tmp_path / "site"
    images = registry.images
    assert build_site(index, out).mode == "full"
    steps = []
    for number in (0, 7, 33, 59):
        images[number].versions.append(new_version(images[number], f"9.{number}.0"))
        steps.append(lambda image=images[number]: write_image(index, image))
    newcomer = Image(images[2].author, "redis-newcomer-api", [new_version(images[2], "1.0.0"), new_version(images[2], "0.9.0")])
    newcomer.versions = [Version(**{**version.__dict__, "file": f"newcomer-{version.version}.ki"}) for version in newcomer.versions]
    steps.append(lambda: write_image(index, newcomer))
    # A yanked version leaves search: the nodes are computed again from every entry.
    images[40].versions[0] = Version(**{**images[40].versions[0].__dict__, "yanked": "broken", "line": 0})
    steps.append(lambda: write_image(index, images[40]))
    for number, step in enumerate(steps, start=1):
        step()
        age(index)
        assert build_site(index, out).mode == "incremental"
        assert_same_as_full(index, out, tmp_path / str(number))


def test_touched_files_change_nothing(registry, tmp_path):
    index, out = registry.root, tmp_path / "site"
    build_site(index, out)
    before = {path: path.stat().st_ino for path in out.rglob("*")}
    age(index)  # a new ctime on every file, the same content
    assert build_site(index, out).mode == "nothing changed"
    assert build_site(index, out).mode == "nothing changed"
    assert {path: path.stat().st_ino for path in out.rglob("*")} == before


def test_many_changed_images_build_in_full(registry, tmp_path):
    index, out = registry.root, tmp_path / "site"
    build_site(index, out)
    for image in registry.images[:23]:  # more than a tenth of 60, plus 16
        image.versions.append(new_version(image, "9.9.9"))
        write_image(index, image)
    age(index)
    assert build_site(index, out).mode == "full"
    assert_same_as_full(index, out, tmp_path)


def test_incremental_problems_match_full_build(registry, tmp_path):
    index, out = registry.root, tmp_path / "site"
    build_site(index, out)
    images = registry.images
    images[6].versions[0] = Version(**{**images[6].versions[0].__dict__, "file": images[5].versions[0].file, "line": 0})
    write_image(index, images[6])
    age(index)
    with pytest.raises(InvalidIndex) as incremental:
        build_site(index, out)
    with pytest.raises(InvalidIndex) as full:
        build_site(index, tmp_path / "fresh", incremental=False)
    assert [str(problem) for problem in incremental.value.problems] == [str(problem) for problem in full.value.problems]
    assert len(incremental.value.problems) == 1
    assert "is also used at" in str(incremental.value.problems[0])


def edit_state(out: Path, statement: str, *parameters) -> None:
    connection = sqlite3.connect(state_path(out))
    with connection:
        connection.execute(statement, parameters)
    connection.close()


def edit_head(out: Path, **fields) -> None:
    connection = sqlite3.connect(state_path(out))
    head = marshal.loads(connection.execute("SELECT value FROM meta WHERE name = 'head'").fetchone()[0])
    names = ["format", "fingerprint", "generation", "previous", "started", "inputs", "code", "written", "removed"]
    values = [fields.get(name, value) for name, value in zip(names, head)]
    with connection:
        connection.execute("UPDATE meta SET value = ? WHERE name = 'head'", (marshal.dumps(tuple(values)),))
    connection.close()


def test_state_paths_outside_site_untouched(registry, tmp_path):
    index, out = registry.root, tmp_path / "site"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    build_site(index, out)
    add_version(registry, 3)
    assert build_site(index, out).mode == "incremental"  # the spare is now one build behind
    edit_head(out, removed=["../victim.txt"], written=[str(victim)])
    add_version(registry, 4)
    assert build_site(index, out).mode == "full"
    assert victim.read_text() == "keep me"
    assert_same_as_full(index, out, tmp_path / "0")


def test_edit_of_old_version_rebuilt(registry, tmp_path):
    index, out = registry.root, tmp_path / "site"
    image = registry.images[8]
    build_site(index, out)
    image.versions[0] = Version(**{**image.versions[0].__dict__, "size": image.versions[0].size + 1, "line": 0})
    write_image(index, image)
    age(index)
    assert build_site(index, out).mode == "incremental"
    assert_same_as_full(index, out, tmp_path)


@pytest.mark.parametrize(("damage", "mode"), [
    (lambda out: edit_head(out, started="soon"), "full"),
    (lambda out: edit_state(out, "UPDATE meta SET value = ? WHERE name = 'keys'", marshal.dumps(["a", "list"])), "full"),
    (lambda out: edit_state(out, "UPDATE meta SET value = ? WHERE name = 'keys'", marshal.dumps({1: None, "images/x/y.yaml": (1, 2, 3, 4)})), "full"),
    # The accounts are then read from their files.
    (lambda out: edit_state(out, "UPDATE meta SET value = ? WHERE name = 'accounts'", marshal.dumps(["a", "list"])), "incremental"),
    (lambda out: edit_state(out, "DROP TABLE images"), "full"),
    (lambda out: edit_state(out, "DROP TABLE files"), "full"),
    (lambda out: edit_state(out, "UPDATE images SET record = ?", b"not marshal"), "full"),
    (lambda out: edit_state(out, "UPDATE images SET record = ?", marshal.dumps((1, 2, 3))), "full"),
    (lambda out: edit_state(out, "UPDATE images SET listed_versions = 'x'"), "full"),
])
def test_damaged_state_values_build_in_full(registry, tmp_path, damage, mode):
    index, out = registry.root, tmp_path / "site"
    image = registry.images[12]
    build_site(index, out)
    damage(out)
    image.versions.append(new_version(image, "9.9.9"))
    changed = write_image(index, image)
    past = time.time() - 60
    os.utime(changed, (past, past))  # only this file, so the account files keep their stat keys
    assert build_site(index, out).mode == mode
    assert_same_as_full(index, out, tmp_path)
    assert build_site(index, out).mode == "nothing changed"


def test_unexpected_entry_found_without_image_changes(registry, tmp_path):
    index, out = registry.root, tmp_path / "site"
    build_site(index, out)
    (index / "notes.txt").write_text("junk")
    with pytest.raises(InvalidIndex) as error:
        build_site(index, out)
    assert [str(problem) for problem in error.value.problems] == [
        f"{index.name}/notes.txt: unexpected entry; an index holds only registry.yaml, accounts/ and images/",
    ]


@pytest.mark.parametrize("folder", ["sp ace", "Bad!Name"])
def test_empty_bad_author_folder_rejected(registry, tmp_path, folder):
    index, out = registry.root, tmp_path / "site"
    build_site(index, out)
    before = tree(out)
    (index / "images" / folder).mkdir()
    with pytest.raises(InvalidIndex) as error:
        build_site(index, out)
    assert [str(problem) for problem in error.value.problems] == [
        f"{index.name}/images/{folder}: invalid author folder name; images/ contains one folder per author, "
        "named with the author's username in lowercase ASCII letters and digits, so rename this folder or remove it",
    ]
    assert tree(out) == before
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".site.staging-")) == []
