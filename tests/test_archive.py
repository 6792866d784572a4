"""Reading .ki files: the real kindo images and every kind of broken one."""

import zipfile

import pytest

from conftest import REDIS_KI, REDIS_SHA256, TENGINE_KI, make_ki, manifest
from registry_index.archive import Manifest, read_image
from registry_index.errors import InvalidArchive


def test_real_redis_image():
    image = read_image(REDIS_KI)
    assert image.manifest == Manifest(author="cycore", name="redis", version="3.0.4", build_time="2026-12-04 19:17:10", platform="linux")
    assert image.size == 1367041
    assert image.sha256 == REDIS_SHA256


def test_real_tengine_image():
    image = read_image(TENGINE_KI)
    assert (image.manifest.author, image.manifest.name, image.manifest.version) == ("cycore", "tengine", "2.1.1")
    assert image.size == 2386753


def test_missing_version_becomes_latest(tmp_path):
    image = read_image(make_ki(tmp_path / "a.ki", manifest(version=None)))
    assert image.manifest.version == "latest"


@pytest.mark.parametrize("manifest_data, expected", [
    (manifest(author="cy-core"), "manifest.json: author 'cy-core' has characters outside letters and digits; rename it"),
    (manifest(name="my app"), "manifest.json: name 'my app' has characters outside letters, digits, '_' and '-'; rename it"),
    (manifest(version="1.0/../x"), "manifest.json: version '1.0/../x' has characters outside letters, digits, '.' and '-', starting with a letter or digit; rename it"),
    (manifest(version=1.1), "manifest.json: version must be a string, got 1.1"),
    (manifest(author=None), "manifest.json is missing 'author'; set it in the image's build script"),
    (manifest(summary=["x"]), "manifest.json: summary must be a string, got ['x']"),
    (manifest(build_version="1.1"), "manifest.json: build_version must be a number such as 1.1, got '1.1'"),
    (manifest(build_version=True), "manifest.json: build_version must be a number such as 1.1, got True"),
    (b"[1, 2]", "manifest.json must be a JSON object, not list"),
    (b'{"name": ', "manifest.json is not valid JSON: Expecting value at line 1"),
    (b'{"name": "\xff"}', "manifest.json is not UTF-8 (invalid byte at offset 10)"),
])
def test_manifest_problem(tmp_path, manifest_data, expected):
    path = make_ki(tmp_path / "bad.ki", manifest_data)
    with pytest.raises(InvalidArchive) as caught:
        read_image(path)
    assert str(caught.value) == f"{path}: {expected}"


def test_not_a_zip(tmp_path):
    path = tmp_path / "text.ki"
    path.write_text("hello")
    with pytest.raises(InvalidArchive) as caught:
        read_image(path)
    assert str(caught.value) == f"{path}: not a zip archive (File is not a zip file); a .ki file is a zip built by `kindo build`"


def test_truncated_zip(tmp_path):
    path = tmp_path / "cut.ki"
    path.write_bytes(REDIS_KI.read_bytes()[:100_000])
    with pytest.raises(InvalidArchive) as caught:
        read_image(path)
    assert str(caught.value) == f"{path}: not a zip archive (File is not a zip file); a .ki file is a zip built by `kindo build`"


def test_manifest_not_at_root(tmp_path):
    path = make_ki(tmp_path / "nested.ki", None, {"sub/manifest.json": b"{}"})
    with pytest.raises(InvalidArchive) as caught:
        read_image(path)
    assert str(caught.value) == f"{path}: no manifest.json at the root of the archive; build the image with `kindo build`"


def test_missing_file(tmp_path):
    with pytest.raises(InvalidArchive) as caught:
        read_image(tmp_path / "nope.ki")
    assert str(caught.value) == f"{tmp_path / 'nope.ki'}: file not found"


@pytest.mark.parametrize("member, expected", [
    ("../evil", "member '../evil' points outside the archive with '..'; rebuild the image"),
    ("files/../../evil", "member 'files/../../evil' points outside the archive with '..'; rebuild the image"),
    ("/etc/passwd", "member '/etc/passwd' has an absolute path; rebuild the image"),
    ("C:/windows", "member 'C:/windows' has an absolute path; rebuild the image"),
    ("files\\..\\evil", "member 'files\\\\..\\\\evil' contains a backslash; rebuild the image"),
])
def test_hostile_member_names(tmp_path, member, expected):
    path = make_ki(tmp_path / "evil.ki", manifest(), {member: b"x"})
    with pytest.raises(InvalidArchive) as caught:
        read_image(path)
    assert str(caught.value) == f"{path}: {expected}"


def test_symlink_member(tmp_path):
    path = tmp_path / "link.ki"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.json", '{"author": "cycore", "name": "a"}')
        info = zipfile.ZipInfo("files/link")
        info.external_attr = (0o120777 << 16)
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(InvalidArchive) as caught:
        read_image(path)
    assert str(caught.value) == f"{path}: member 'files/link' is a symbolic link; rebuild the image without links"


def test_manifest_inflating_past_limit(tmp_path):
    huge = b'{"author": "cycore", "name": "a", "summary": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    path = make_ki(tmp_path / "bomb.ki", huge)
    assert path.stat().st_size < 20_000
    with pytest.raises(InvalidArchive) as caught:
        read_image(path)
    assert str(caught.value) == f"{path}: manifest.json is larger than 1048576 bytes; it is not a kindo manifest"
