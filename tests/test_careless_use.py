"""Careless and hostile use of the CLI found by trying the tool as a new user."""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from typer.testing import CliRunner

from conftest import REDIS_KI, make_ki, manifest
from registry_index.cli import app
from registry_index.editing import add_image
from registry_index.errors import InvalidArchive, InvalidIndex, RegistryError, SiteError
from registry_index.index import load_index
from registry_index.site import build_site

runner = CliRunner()


def test_concurrent_adds_keep_every_version(index_dir, tmp_path):
    files = [make_ki(tmp_path / f"v{i}.ki", manifest(version=f"1.{i}")) for i in range(6)]

    def add(path):
        return subprocess.run([sys.executable, "-m", "registry_index", "add", str(path), "--index", str(index_dir)],
                              capture_output=True, text=True, timeout=120).returncode

    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(add, files))
    assert codes == [0] * 6
    versions = sorted(v.version for v in load_index(index_dir).image("cycore", "demo").versions)
    assert versions == ["1.0", "1.1", "1.2", "1.3", "1.4", "1.5"]


def test_add_rejects_bad_manifest_homepage(index_dir, tmp_path):
    path = make_ki(tmp_path / "a.ki", manifest(homepage="javascript:alert(1)"))
    with pytest.raises(InvalidArchive) as caught:
        add_image(index_dir, path)
    assert str(caught.value) == f"{path}: manifest.json: homepage 'javascript:alert(1)' is not an http:// or https:// URL; fix it in the image's build script"
    assert list((index_dir / "images").iterdir()) == []


def test_encrypted_out_without_code(index_dir, tmp_path):
    with pytest.raises(RegistryError) as caught:
        add_image(index_dir, REDIS_KI, encrypted_folder=tmp_path)
    assert str(caught.value) == "--encrypted-out is only for private versions; add --code CODE, or drop --encrypted-out to add a public version"


def test_code_without_encrypted_out(index_dir):
    with pytest.raises(RegistryError) as caught:
        add_image(index_dir, REDIS_KI, code="Ab3xY9")
    assert str(caught.value) == "--code needs --encrypted-out DIR: the folder where the encrypted file is written for upload"


def test_encrypted_file_never_overwritten(index_dir, tmp_path):
    (tmp_path / "cycore-redis-3.0.4.ki.enc").write_bytes(b"earlier")
    with pytest.raises(RegistryError) as caught:
        add_image(index_dir, REDIS_KI, code="Ab3xY9", encrypted_folder=tmp_path)
    assert str(caught.value) == f"{tmp_path / 'cycore-redis-3.0.4.ki.enc'} already exists; move it away or choose another --encrypted-out folder"
    assert (tmp_path / "cycore-redis-3.0.4.ki.enc").read_bytes() == b"earlier"
    assert list((index_dir / "images").iterdir()) == []


def index_contents(index):
    return sorted(str(path.relative_to(index)) for path in index.rglob("*"))


def encrypted_out_error(index_dir, folder) -> str:
    """Return the error of adding a private version with `folder` as --encrypted-out, after checking that the index is unchanged."""
    before = index_contents(index_dir)
    with pytest.raises(RegistryError) as caught:
        add_image(index_dir, REDIS_KI, code="Ab3xY9", encrypted_folder=folder)
    # No image YAML, no encrypted file, no temporary file and no lock file.
    assert index_contents(index_dir) == before
    return str(caught.value)


@pytest.mark.parametrize("inside", ["images", "images/cycore", ".private"])
def test_encrypted_out_inside_index(index_dir, inside):
    folder = index_dir / inside
    folder.mkdir(exist_ok=True)
    assert encrypted_out_error(index_dir, folder) == f"--encrypted-out {folder} is inside the index folder {index_dir}; the encrypted file would be written into the index, so choose a folder outside the index"


def test_encrypted_out_is_index(index_dir):
    assert encrypted_out_error(index_dir, index_dir) == f"--encrypted-out {index_dir} is the index folder {index_dir}; the encrypted file would be written into the index, so choose a folder outside the index"


def test_encrypted_out_through_link(index_dir, tmp_path):
    (tmp_path / "link").symlink_to(index_dir / "images")
    folder = tmp_path / "link"
    assert encrypted_out_error(index_dir, folder) == f"--encrypted-out {folder} is inside the index folder {index_dir}; the encrypted file would be written into the index, so choose a folder outside the index"


def test_encrypted_out_through_bind_mount(index_dir, tmp_path):
    # A bind mount shows the index under another path that no link resolves to.
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    mount = subprocess.run(["mount", "--bind", str(index_dir), str(mounted)], capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"bind mounts are not allowed here: {mount.stderr.strip()}")
    try:
        folder = mounted / "images"
        assert encrypted_out_error(index_dir, folder) == f"--encrypted-out {folder} is inside the index folder {index_dir}; the encrypted file would be written into the index, so choose a folder outside the index"
    finally:
        subprocess.run(["umount", str(mounted)], check=True)


def test_encrypted_out_beside_index(index_dir):
    # The folder that contains the index is outside it: the encrypted file goes beside the index.
    add_image(index_dir, REDIS_KI, code="Ab3xY9", encrypted_folder=index_dir.parent)
    assert (index_dir.parent / "cycore-redis-3.0.4.ki.enc").is_file()
    assert index_contents(index_dir) == [".registry-index.lock", "accounts", "accounts/cycore.yaml", "images", "images/cycore", "images/cycore/redis.yaml", "registry.yaml"]


def test_add_cli_rejects_encrypted_out_inside_index(index_dir, monkeypatch):
    monkeypatch.chdir(index_dir.parent)
    (index_dir / "images/alice").mkdir()
    before = index_contents(index_dir)
    result = runner.invoke(app, ["add", str(REDIS_KI), "--index", "index", "--code", "Ab3xY9", "--encrypted-out", "index/images/alice"])
    assert result.exit_code == 1
    assert result.stderr == "Error: --encrypted-out index/images/alice is inside the index folder index; the encrypted file would be written into the index, so choose a folder outside the index\n"
    assert index_contents(index_dir) == before


def test_private_entry_seals_manifest_details(index_dir, tmp_path):
    path = make_ki(tmp_path / "a.ki", manifest(summary="top secret tool", license="Proprietary", homepage="https://secret.example"))
    add_image(index_dir, path, code="Ab3xY9", encrypted_folder=tmp_path)
    text = (index_dir / "images/cycore/demo.yaml").read_text()
    for detail in ("top secret tool", "Proprietary", "secret.example", "linux"):
        assert detail not in text


def test_build_refuses_out_containing_index(sample_index, tmp_path):
    with pytest.raises(SiteError) as caught:
        build_site(load_index(sample_index), sample_index.parent)
    assert str(caught.value) == f"--out {sample_index.parent} contains the index folder {sample_index}; the build replaces --out as a whole, so choose a folder outside the index"
    assert (sample_index / "registry.yaml").is_file()


@pytest.mark.parametrize("loaded", [False, True], ids=["folder", "loaded"])
@pytest.mark.parametrize("inside", ["site", "images/site", ".site"])
def test_build_rejects_out_inside_index(sample_index, loaded, inside):
    out = sample_index / inside
    with pytest.raises(SiteError) as caught:
        build_site(load_index(sample_index) if loaded else sample_index, out)
    assert str(caught.value) == f"--out {out} is inside the index folder {sample_index}; the built site would become part of the index, so choose a folder outside the index"
    # Not even the lock file that goes beside --out was made.
    assert sorted(path.name for path in sample_index.iterdir()) == ["accounts", "images", "registry.yaml"]
    assert sorted(path.name for path in (sample_index / "images").iterdir()) == ["cycore"]


def test_build_rejects_out_through_link(sample_index, tmp_path):
    (tmp_path / "link").symlink_to(sample_index)
    out = tmp_path / "link" / "site"
    with pytest.raises(SiteError) as caught:
        build_site(sample_index, out)
    assert str(caught.value) == f"--out {out} is inside the index folder {sample_index}; the built site would become part of the index, so choose a folder outside the index"
    assert not (sample_index / "site").exists()


@pytest.mark.parametrize("side", [".site.spare", ".site.state", ".site.lock", ".site.staging-abc/deeper"])
def test_build_rejects_index_among_side_files(sample_index, tmp_path, side):
    index = tmp_path / side
    index.parent.mkdir(parents=True, exist_ok=True)
    sample_index.rename(index)
    out = tmp_path / "site"
    with pytest.raises(SiteError) as caught:
        build_site(index, out)
    folder = tmp_path / side.split("/")[0]
    assert str(caught.value) == (
        f"the index folder {index} is at {folder}, where the build keeps its own files beside --out {out} (names starting with .site.); "
        "move the index or choose another --out"
    )
    assert sorted(path.name for path in index.iterdir()) == ["accounts", "images", "registry.yaml"]
    assert not out.exists()


def test_build_cli_rejects_out_inside_index(sample_index, monkeypatch):
    monkeypatch.chdir(sample_index.parent)
    result = runner.invoke(app, ["build", "--index", "index", "--out", "index/site"])
    assert result.exit_code == 1
    assert result.stderr == "Error: --out index/site is inside the index folder index; the built site would become part of the index, so choose a folder outside the index\n"
    assert not (sample_index / "site").exists()


def test_publish_rejects_out_before_uploads(sample_index, monkeypatch):
    monkeypatch.chdir(sample_index.parent)
    # Were the check to come after an upload, the request would go to loopback and never leave this machine.
    result = runner.invoke(app, ["publish", "--index", "index", "--out", "index/site", "--token", "unused", "--api-url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert result.stderr == "Error: --out index/site is inside the index folder index; the built site would become part of the index, so choose a folder outside the index\n"
    assert not (sample_index / "site").exists()


@pytest.mark.parametrize("old, new, expected", [
    ("size: 1367041", "size: 0", "index/images/cycore/redis.yaml:7: size 0 is out of range; a release asset has 1 to 2147483647 bytes"),
    ('buildtime: "2026-12-04 19:17:10"', 'buildtime: "2026-13-45 99:99:99"', "index/images/cycore/redis.yaml:9: buildtime '2026-13-45 99:99:99' is invalid; expected a time such as 2026-12-04 19:17:10"),
])
def test_entry_value_ranges(sample_index, old, new, expected):
    path = sample_index / "images/cycore/redis.yaml"
    path.write_text(path.read_text().replace(old, new))
    with pytest.raises(InvalidIndex) as caught:
        load_index(sample_index)
    assert [str(p) for p in caught.value.problems] == [expected]


def test_shared_asset_file_name(sample_index):
    path = sample_index / "images/cycore/tengine.yaml"
    path.write_text(path.read_text().replace("cycore-tengine-2.1.1.ki", "cycore-redis-3.0.4.ki"))
    with pytest.raises(InvalidIndex) as caught:
        load_index(sample_index)
    assert [str(p) for p in caught.value.problems] == [
        "index/images/cycore/tengine.yaml:5: file 'cycore-redis-3.0.4.ki' is also used at index/images/cycore/redis.yaml:5; every version needs its own release asset name"
    ]


def test_serve_assets_ignores_links_and_other_files(sample_index, tmp_path, running_server):
    build_site(load_index(sample_index), tmp_path / "site")
    assets = tmp_path / "assets"
    assets.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    (assets / "passwd.ki").symlink_to(secret)
    (assets / "notes.txt").write_text("hello")
    base = running_server(tmp_path / "site", assets)
    for name in ("passwd.ki", "notes.txt"):
        answer = requests.get(f"{base}/assets/{name}", timeout=5)
        assert answer.status_code == 404
        assert "root:x" not in answer.text


def test_serve_port_out_of_range():
    result = runner.invoke(app, ["serve", "--port", "70000"])
    assert result.exit_code == 2
    # The wording is typer's and changes between its versions; the option and the limit stay.
    assert "'--port'" in result.output
    assert "65535" in result.output


@pytest.mark.parametrize("reference", ["a/b/c", "", "cycore/redis:1:2", "cycore/"])
def test_pull_rejects_bad_reference(reference):
    result = runner.invoke(app, ["pull", reference, "--from", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert result.stderr == f"Error: image reference {reference!r} is invalid; write AUTHOR/NAME[:VERSION], such as cycore/redis:3.0.4\n"


def test_pull_refuses_non_regular_output(sample_index, tmp_path, running_server):
    build_site(load_index(sample_index), tmp_path / "site")
    base = running_server(tmp_path / "site", REDIS_KI.parent)
    target = tmp_path / "folder"
    target.mkdir()
    result = runner.invoke(app, ["pull", "cycore/redis", "--from", base, "-o", str(target)])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == f"Error: -o {target} exists and is not a regular file; give a new file name"
    missing = tmp_path / "nowhere" / "r.ki"
    result = runner.invoke(app, ["pull", "cycore/redis", "--from", base, "-o", str(missing)])
    assert result.stderr.splitlines()[-1] == f"Error: -o {missing}: folder {missing.parent} not found; create it first"


def test_pull_from_unreachable_site():
    result = runner.invoke(app, ["pull", "cycore/redis", "--from", "127.0.0.1:9"])
    assert result.exit_code == 1
    assert result.stderr == "Error: cannot connect to http://127.0.0.1:9; check --from and that the site is up\n"
