"""`add`: a .ki file becomes an index entry, written once and never changed."""

import pytest

from conftest import REDIS_KI, REDIS_SHA256, TENGINE_KI, make_ki, manifest
from registry_index.editing import add_image
from registry_index.errors import ImageExists, RegistryError
from registry_index.index import load_index


def test_add_writes_canonical_entry(index_dir):
    image, version = add_image(index_dir, REDIS_KI)
    assert (image.author, image.name, version.version) == ("cycore", "redis", "3.0.4")
    text = (index_dir / "images/cycore/redis.yaml").read_text()
    expected_head = (
        "# Written by registry-index. Published versions are immutable: add new versions, never edit old ones.\n"
        'author: "cycore"\nname: "redis"\nversions:\n'
        '  - version: "3.0.4"\n'
        '    file: "cycore-redis-3.0.4.ki"\n'
        "    size: 1367041\n"
        f'    sha256: "{REDIS_SHA256}"\n'
        '    buildtime: "2026-12-04 19:17:10"\n'
        '    pusher: "cycore"\n'
        '    platform: "linux"\n'
        '    pushed: "'
    )
    assert text.startswith(expected_head)
    assert load_index(index_dir).image("cycore", "redis").versions[0].sha256 == REDIS_SHA256


def test_add_round_trips_tricky_versions(index_dir, tmp_path):
    for version in ["1.10", "2.0", "010", "1e5", "no"]:
        add_image(index_dir, make_ki(tmp_path / f"{version}.ki", manifest(version=version)))
    versions = [v.version for v in load_index(index_dir).image("cycore", "demo").versions]
    assert versions == ["1.10", "2.0", "010", "1e5", "no"]


def test_add_second_version_keeps_first(index_dir, tmp_path):
    add_image(index_dir, make_ki(tmp_path / "a.ki", manifest(version="1.0")))
    add_image(index_dir, make_ki(tmp_path / "b.ki", manifest(version="1.1", summary="second")))
    image = load_index(index_dir).image("cycore", "demo")
    assert [(v.version, v.summary) for v in image.versions] == [("1.0", "a demo image"), ("1.1", "second")]


def test_add_refuses_existing_version(index_dir):
    add_image(index_dir, REDIS_KI)
    before = (index_dir / "images/cycore/redis.yaml").read_bytes()
    with pytest.raises(ImageExists) as caught:
        add_image(index_dir, REDIS_KI)
    assert str(caught.value) == f"{REDIS_KI}: cycore/redis:3.0.4 already exists in index/images/cycore/redis.yaml:5; published versions are immutable, so build a new version"
    assert (index_dir / "images/cycore/redis.yaml").read_bytes() == before


def test_add_refuses_version_differing_in_case(index_dir, tmp_path):
    add_image(index_dir, make_ki(tmp_path / "a.ki", manifest(version="1.0-rc1")))
    with pytest.raises(ImageExists):
        add_image(index_dir, make_ki(tmp_path / "b.ki", manifest(version="1.0-RC1")))


def test_add_refuses_name_differing_in_case(index_dir, tmp_path):
    add_image(index_dir, make_ki(tmp_path / "a.ki", manifest(name="my_app")))
    path = make_ki(tmp_path / "b.ki", manifest(name="My-App", version="2.0"))
    with pytest.raises(RegistryError) as caught:
        add_image(index_dir, path)
    assert str(caught.value) == f"{path}: name 'My-App' differs from the existing image cycore/my_app only in case or '_' versus '-'; build the image with name 'my_app'"


def test_add_refuses_author_without_account(index_dir, tmp_path):
    path = make_ki(tmp_path / "a.ki", manifest(author="ghost"))
    with pytest.raises(RegistryError) as caught:
        add_image(index_dir, path)
    assert str(caught.value) == f"{path}: author 'ghost' has no account in {index_dir}/accounts; register it first"
    assert not (index_dir / "images/ghost").exists()


def test_add_refuses_author_in_other_case(index_dir, tmp_path):
    path = make_ki(tmp_path / "a.ki", manifest(author="CyCore"))
    with pytest.raises(RegistryError) as caught:
        add_image(index_dir, path)
    assert str(caught.value) == f"{path}: author 'CyCore' differs from the account name 'cycore'; build the image with author 'cycore'"


def test_add_refuses_bad_build_time(index_dir, tmp_path):
    path = make_ki(tmp_path / "a.ki", manifest(build_time="04/12/2026"))
    with pytest.raises(RegistryError) as caught:
        add_image(index_dir, path)
    assert str(caught.value) == f"{path}: manifest.json: build_time '04/12/2026' is invalid; expected a time such as 2026-12-04 19:17:10"


def test_add_with_explicit_url(index_dir):
    _, version = add_image(index_dir, TENGINE_KI, url="https://example.org/t.ki")
    assert load_index(index_dir).image("cycore", "tengine").versions[0].url == "https://example.org/t.ki"
    assert version.url == "https://example.org/t.ki"


def test_add_refuses_bad_url(index_dir):
    with pytest.raises(RegistryError) as caught:
        add_image(index_dir, TENGINE_KI, url="file:///etc/passwd")
    assert str(caught.value) == "--url: URL 'file:///etc/passwd' is invalid; give an http:// or https:// URL or leave it empty"


def test_add_refuses_into_invalid_index(index_dir):
    (index_dir / "registry.yaml").write_text("title: 1.0\n")
    with pytest.raises(RegistryError):
        add_image(index_dir, REDIS_KI)
    assert list((index_dir / "images").iterdir()) == []
