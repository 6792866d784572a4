"""`build`: the static site's paths, contents, determinism and atomic replacement."""

import gc
import json
import multiprocessing
import os
import signal
import threading
from dataclasses import replace

import pytest

from conftest import REDIS_KI, REDIS_SHA256, TENGINE_KI, make_ki, manifest
from registry_index import api
from registry_index.editing import add_image
from registry_index.errors import InvalidIndex, SiteError
from registry_index.index import load_index
from registry_index.site import build_site, write_site

REDIS_URL = "https://github.com/kindo-hub/registry-index/releases/download/images/cycore-redis-3.0.4.ki"


def read(site, relative):
    return json.loads((site / relative).read_text())


def test_sample_site_layout(sample_index, tmp_path):
    site = tmp_path / "site"
    summary = build_site(load_index(sample_index), site)
    assert (summary.images, summary.versions) == (2, 2)
    files = sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file() and "search" not in p.parts)
    assert files == [
        ".nojekyll", ".registry-index-site", "404.html", "authors.html", "authors/cycore.html",
        "images/cycore/redis.html", "images/cycore/tengine.html", "index.html",
        "static/search.js", "static/site.css", "static/site.js",
        "v1/images/cycore/redis.json", "v1/images/cycore/tengine.json", "v1/index.json",
        "v1/pull/anonymous/redis.json", "v1/pull/anonymous/tengine.json",
        "v1/pull/cycore/redis/3.0.4.json", "v1/pull/cycore/redis/latest.json",
        "v1/pull/cycore/tengine/2.1.1.json", "v1/pull/cycore/tengine/latest.json",
    ]
    pull = read(site, "v1/pull/cycore/redis/3.0.4.json")
    assert pull == {
        "name": "redis", "version": "3.0.4", "unique_name": "cycore/redis:3.0.4", "author": "cycore",
        "pusher": "cycore", "size": "1367041", "buildtime": "2026-12-04 19:17:10", "url": REDIS_URL,
        "summary": "", "sha256": REDIS_SHA256, "file": "cycore-redis-3.0.4.ki", "license": "",
        "homepage": "", "platform": "linux",
    }
    assert read(site, "v1/pull/cycore/redis/latest.json") == pull
    assert read(site, "v1/pull/anonymous/redis.json") == {"name": "redis", "authors": ["cycore"]}
    assert read(site, "v1/search/red.json") == {
        "key": "red", "complete": True, "total": 1,
        "images": [["cycore/redis", ["3.0.4"], "3.0.4", "", "1367041", "2026-12-04 19:17:10"]],
    }
    assert read(site, "v1/images/cycore/redis.json") == {"author": "cycore", "name": "redis", "latest": "3.0.4", "versions": ["3.0.4"]}
    assert read(site, "v1/index.json") == {
        "api": "v1", "title": "kindo sample registry", "images": 2, "versions": 2,
        "search": {"prefix_length": 3, "limit": 1000, "shown": 100, "max_key_length": 48, "searchable": 2},
    }


def test_pull_objects_and_node_entries_shape(sample_index, tmp_path):
    site = tmp_path / "site"
    build_site(load_index(sample_index), site)
    required = {"name", "version", "url", "author", "size", "buildtime", "pusher", "unique_name"}
    objects = [read(site, str(p.relative_to(site))) for p in (site / "v1/pull/cycore").rglob("*.json")]
    assert len(objects) == 4
    for document in objects:
        assert required <= set(document)
        assert all(isinstance(document[key], str) for key in required)
    entries = [entry for node in (site / "v1/search").glob("*.json") for entry in read(site, str(node.relative_to(site)))["images"]]
    assert len(entries) > 10
    for base, versions, *shown in entries:
        assert base in ("cycore/redis", "cycore/tengine")
        assert versions in (["3.0.4"], ["2.1.1"])
        assert len(shown) == 4 and all(isinstance(value, str) for value in shown)


def test_pull_object_starts_with_search_object(sample_index):
    index = load_index(sample_index)
    image = index.sorted_images()[0]
    version = image.versions[0]
    pull = api.pull_object(index.settings, image, version)
    search_fields = list(api.search_record(index.settings, image, version))
    assert list(pull)[:len(search_fields)] == search_fields
    assert list(pull)[len(search_fields):] == ["sha256", "file", "license", "homepage", "platform"]


TRICKY_TEXTS = ['say "hi"', "back\\slash", "tab\there", "line\u2028separator", "中文 ünïcode", "\x01\x1f control", ""]


@pytest.mark.parametrize("text", TRICKY_TEXTS)
@pytest.mark.parametrize("yanked", ["", "broken \"build\""])
def test_pull_template_equals_encoder(sample_index, text, yanked):
    index = load_index(sample_index)
    image = index.sorted_images()[0]
    version = replace(image.versions[0], summary=text, license=text, homepage=text, platform=text, yanked=yanked, url=f"https://example.com/{text}")
    expected = api.encode(api.pull_object(index.settings, image, version))
    assert api.encode_pull_object(index.settings, image, version) == expected


def test_build_is_byte_identical(sample_index, tmp_path):
    index = load_index(sample_index)
    build_site(index, tmp_path / "one")
    build_site(load_index(sample_index), tmp_path / "two")
    one = {p.relative_to(tmp_path / "one"): p.read_bytes() for p in (tmp_path / "one").rglob("*") if p.is_file()}
    two = {p.relative_to(tmp_path / "two"): p.read_bytes() for p in (tmp_path / "two").rglob("*") if p.is_file()}
    assert one == two


def test_latest_is_highest_numeric_version(index_dir, tmp_path):
    for version in ["3.0.9", "3.0.10", "3.0.2"]:
        add_image(index_dir, make_ki(tmp_path / f"{version}.ki", manifest(version=version)))
    build_site(load_index(index_dir), tmp_path / "site")
    assert read(tmp_path / "site", "v1/pull/cycore/demo/latest.json")["version"] == "3.0.10"
    assert read(tmp_path / "site", "v1/images/cycore/demo.json")["latest"] == "3.0.10"
    assert read(tmp_path / "site", "v1/images/cycore/demo.json")["versions"] == ["3.0.10", "3.0.9", "3.0.2"]


def test_explicit_latest_version_wins(index_dir, tmp_path):
    add_image(index_dir, make_ki(tmp_path / "a.ki", manifest(version="9.0")))
    add_image(index_dir, make_ki(tmp_path / "b.ki", manifest(version=None)))
    build_site(load_index(index_dir), tmp_path / "site")
    assert read(tmp_path / "site", "v1/pull/cycore/demo/latest.json")["version"] == "latest"


def test_yanked_version_left_out_of_latest_and_search(index_dir, tmp_path):
    add_image(index_dir, make_ki(tmp_path / "a.ki", manifest(version="1.0")))
    add_image(index_dir, make_ki(tmp_path / "b.ki", manifest(version="2.0")))
    path = index_dir / "images/cycore/demo.yaml"
    lines = path.read_text().splitlines()
    position = max(i for i, line in enumerate(lines) if line.startswith("    pushed:"))
    lines.insert(position + 1, '    yanked: "broken build"')
    path.write_text("\n".join(lines) + "\n")
    site = tmp_path / "site"
    build_site(load_index(index_dir), site)
    assert read(site, "v1/pull/cycore/demo/latest.json")["version"] == "1.0"
    assert read(site, "v1/pull/cycore/demo/2.0.json")["yanked"] == "broken build"
    assert read(site, "v1/search/dem.json")["images"] == [["cycore/demo", ["1.0"], "1.0", "a demo image", "401", "2026-12-04 19:17:10"]]
    assert read(site, "v1/images/cycore/demo.json") == {"author": "cycore", "name": "demo", "latest": "1.0", "versions": ["2.0", "1.0"], "yanked": {"2.0": "broken build"}}


def test_paths_use_identity_spelling(index_dir, tmp_path):
    add_image(index_dir, make_ki(tmp_path / "a.ki", manifest(name="My_App", version="1.0-RC1")))
    site = tmp_path / "site"
    build_site(load_index(index_dir), site)
    assert read(site, "v1/pull/cycore/my-app/1.0-rc1.json")["unique_name"] == "cycore/My_App:1.0-RC1"
    assert read(site, "v1/pull/anonymous/my-app.json") == {"name": "My_App", "authors": ["cycore"]}


def test_failed_build_keeps_previous_site(sample_index, tmp_path):
    site = tmp_path / "site"
    build_site(load_index(sample_index), site)
    before = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}

    def files_then_crash():
        yield ".registry-index-site", b"x"
        yield "v1/index.json", b"{}"
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_site(files_then_crash(), site)
    assert {p: p.read_bytes() for p in site.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".site")] == [".site.lock"]


def test_build_refuses_foreign_folder(sample_index, tmp_path):
    target = tmp_path / "home"
    target.mkdir()
    (target / "thesis.tex").write_text("precious")
    with pytest.raises(SiteError) as caught:
        build_site(load_index(sample_index), target)
    assert str(caught.value) == f"{target} is not empty and was not built by registry-index (no .registry-index-site file); choose an empty or new --out folder"
    assert (target / "thesis.tex").read_text() == "precious"


def test_rebuild_replaces_old_files(index_dir, tmp_path):
    add_image(index_dir, REDIS_KI)
    site = tmp_path / "site"
    build_site(load_index(index_dir), site)
    (index_dir / "images/cycore/redis.yaml").unlink()
    add_image(index_dir, TENGINE_KI)
    build_site(load_index(index_dir), site)
    assert not (site / "v1/pull/cycore/redis").exists()
    assert (site / "v1/pull/cycore/tengine/2.1.1.json").is_file()


def test_stale_staging_folder_removed(sample_index, tmp_path):
    stale = tmp_path / ".site.staging-abc"
    stale.mkdir()
    build_site(load_index(sample_index), tmp_path / "site")
    assert not stale.exists()


def test_build_restores_cycle_collector(sample_index, tmp_path):
    # The build turns the collector off and freezes objects while it forks workers.
    build_site(sample_index, tmp_path / "site", incremental=False)
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0

    (sample_index / "images" / "cycore" / "broken.yaml").write_text("versions: [\n")
    with pytest.raises(InvalidIndex):
        build_site(sample_index, tmp_path / "site", incremental=False)
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_build_keeps_objects_the_caller_froze(sample_index, tmp_path):
    marker = [object()]
    gc.freeze()
    try:
        build_site(sample_index, tmp_path / "site", incremental=False)
        # Frozen objects are not in any generation that gc.get_objects() lists.
        assert not any(found is marker for found in gc.get_objects())
    finally:
        gc.unfreeze()
    assert any(found is marker for found in gc.get_objects())


def test_interrupt_while_pool_starts_stops_workers(sample_index, tmp_path, monkeypatch):
    # Ctrl-C arrives as the worker pool is made: the build stops, and no worker or pool thread is left.
    context = multiprocessing.get_context("fork")
    make_pool = type(context).Pool
    # Kept alive, as the frames of an exception raised inside Pool() keep it.
    # An unreferenced pool would be stopped by its finalizer anyway.
    pools = []

    def interrupted_pool(self, *arguments, **options):
        pools.append(make_pool(self, *arguments, **options))
        os.kill(os.getpid(), signal.SIGINT)
        return pools[-1]

    monkeypatch.setattr(type(context), "Pool", interrupted_pool)
    try:
        with pytest.raises(KeyboardInterrupt):
            build_site(sample_index, tmp_path / "site", incremental=False)
        assert multiprocessing.active_children() == []
        assert threading.active_count() == 1
        assert sorted(path.name for path in tmp_path.iterdir()) == [".site.lock", "index"]
    finally:
        for pool in pools:
            pool.terminate()
            pool.join()


def test_build_leaves_collector_off(sample_index, tmp_path):
    gc.disable()
    try:
        build_site(sample_index, tmp_path / "site", incremental=False)
        assert not gc.isenabled()
    finally:
        gc.enable()
