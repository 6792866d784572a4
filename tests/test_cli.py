"""The CLI: exit codes, exact messages, and help for every command."""

import errno
import shutil

import pytest
from typer.testing import CliRunner

from conftest import REDIS_KI, make_ki, manifest
from registry_index import verify
from registry_index.archive import file_sha256
from registry_index.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command", [[], ["validate"], ["add"], ["build"], ["serve"]])
def test_every_command_has_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage: " in result.output


def test_validate_ok(sample_index):
    result = runner.invoke(app, ["validate", "--index", str(sample_index)])
    assert result.exit_code == 0
    assert result.stdout == ""


def test_validate_lists_problems_and_fails(index_dir):
    (index_dir / "images/cycore").mkdir()
    (index_dir / "images/cycore/redis.yaml").write_text('author: "cycore"\nname: "redis"\nversions: []\ncolour: 1\n')
    result = runner.invoke(app, ["validate", "--index", str(index_dir)])
    assert result.exit_code == 1
    assert result.stdout == (
        "index/images/cycore/redis.yaml:1: image has no versions; remove the file or add a version\n"
        "index/images/cycore/redis.yaml:4: unknown key 'colour' in image; known keys: author, name, versions\n"
    )
    assert result.stderr == f"Error: 2 problems in {index_dir}\n"


def test_validate_reports_linked_image_file(sample_index, tmp_path):
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text('author: "cycore"\nname: "app"\nversions: []\n')
    (sample_index / "images/cycore/app.yaml").symlink_to(elsewhere)
    result = runner.invoke(app, ["validate", "--index", str(sample_index)])
    assert result.exit_code == 1
    assert result.stdout == "index/images/cycore/app.yaml: symbolic link in place of an image file; image files must be regular files in the repository, so replace the link with the file itself\n"
    assert result.stderr == f"Error: 1 problem in {sample_index}\n"


def test_invalid_index_skips_assets(sample_index, tmp_path):
    folder = tmp_path / "assets"
    folder.mkdir()
    make_ki(folder / "cycore-redis-3.0.4.ki", manifest(name="redis", version="3.0.4"))
    (sample_index / "images/cycore/extra.yaml").write_text('author: "cycore"\nname: "extra"\nversions: []\n')
    result = runner.invoke(app, ["validate", "--index", str(sample_index), "--assets", str(folder)])
    assert result.exit_code == 1
    assert result.stdout == "index/images/cycore/extra.yaml:1: image has no versions; remove the file or add a version\n"
    assert result.stderr == f"Error: 1 problem in {sample_index}\n"


def test_validate_assets_finds_mismatch(sample_index, tmp_path):
    folder = tmp_path / "assets"
    folder.mkdir()
    make_ki(folder / "cycore-redis-3.0.4.ki", manifest(name="redis", version="3.0.4"))
    result = runner.invoke(app, ["validate", "--index", str(sample_index), "--assets", str(folder)])
    assert result.exit_code == 1
    size, sha256 = file_sha256(folder / "cycore-redis-3.0.4.ki")
    assert result.stdout.splitlines() == [
        f"index/images/cycore/redis.yaml:5: cycore-redis-3.0.4.ki: size is 1367041 in the index but the file has {size} bytes",
        f"index/images/cycore/redis.yaml:5: cycore-redis-3.0.4.ki: sha256 is d4a6849f128ab875e41410cfc7a37ae3a79226736f2a385a685a776e15a0166c in the index but the file has {sha256}",
    ]


def test_validate_assets_unreadable_file(sample_index, tmp_path, monkeypatch):
    folder = tmp_path / "assets"
    folder.mkdir()
    shutil.copy(REDIS_KI, folder / "cycore-redis-3.0.4.ki")

    def unreadable(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    # Root reads a file whatever its mode, so the test makes the read fail instead.
    monkeypatch.setattr(verify, "file_sha256", unreadable)
    result = runner.invoke(app, ["validate", "--index", str(sample_index), "--assets", str(folder)])
    assert result.exit_code == 1
    assert result.stdout == "index/images/cycore/redis.yaml:5: cycore-redis-3.0.4.ki: cannot read file: Permission denied; make it readable and run again\n"
    assert result.stderr == f"Error: 1 problem in {sample_index}\n"


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_validate_assets_not_a_folder(sample_index, tmp_path, kind):
    folder = tmp_path / "assets"
    if kind == "file":
        folder.write_text("not a folder\n")
    result = runner.invoke(app, ["validate", "--index", str(sample_index), "--assets", str(folder)])
    assert result.exit_code == 1
    assert result.stderr == f"Error: --assets {folder}: folder not found; pass the folder that contains the .ki files\n"


def test_add_prints_what_was_added(index_dir):
    result = runner.invoke(app, ["add", str(REDIS_KI), "--index", str(index_dir)])
    assert result.exit_code == 0
    assert result.stdout == "added cycore/redis:3.0.4 size=1367041 sha256=d4a6849f128ab875e41410cfc7a37ae3a79226736f2a385a685a776e15a0166c -> index/images/cycore/redis.yaml\n"


def test_add_existing_version_fails(sample_index):
    result = runner.invoke(app, ["add", str(REDIS_KI), "--index", str(sample_index)])
    assert result.exit_code == 1
    assert result.stderr == f"Error: {REDIS_KI}: cycore/redis:3.0.4 already exists in index/images/cycore/redis.yaml:5; published versions are immutable, so build a new version\n"


def test_add_not_a_zip_fails(index_dir, tmp_path):
    path = tmp_path / "x.ki"
    path.write_text("no")
    result = runner.invoke(app, ["add", str(path), "--index", str(index_dir)])
    assert result.exit_code == 1
    assert result.stderr == f"Error: {path}: not a zip archive (File is not a zip file); a .ki file is a zip built by `kindo build`\n"


def test_build_invalid_index_writes_nothing(index_dir, tmp_path):
    (index_dir / "registry.yaml").write_text('title: "x"\n')
    out = tmp_path / "site"
    result = runner.invoke(app, ["build", "--index", str(index_dir), "--out", str(out)])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == f"Error: 3 problems in {index_dir}; nothing was built"
    assert not out.exists()


def test_build_prints_summary(sample_index, tmp_path):
    result = runner.invoke(app, ["build", "--index", str(sample_index), "--out", str(tmp_path / "site")])
    assert result.exit_code == 0
    assert result.stdout.startswith("built 2 images, 2 versions: ")
    assert result.stdout.endswith(f" -> {tmp_path / 'site'}\n")


def test_serve_unbuilt_site_fails(tmp_path):
    result = runner.invoke(app, ["serve", "--site", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path} is not a built site (no .registry-index-site); run `registry-index build` first\n"
