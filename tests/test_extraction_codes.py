"""Private versions: encrypted with a key from the extraction code, hidden from search, pulled with the code."""

import hashlib
import shutil

import pytest
import requests
from typer.testing import CliRunner

from conftest import REDIS_KI, REDIS_SHA256, SAMPLE_INDEX, TENGINE_KI, TENGINE_SHA256
from registry_index.cli import app
from registry_index.editing import add_image
from registry_index.index import load_index
from registry_index.site import build_site

CODE = "Ab3xY9"
runner = CliRunner()


@pytest.fixture(scope="module")
def private_site(tmp_path_factory):
    """An index with public redis 3.0.4 and private tengine 2.1.1, built; the encrypted file in `assets`."""
    root = tmp_path_factory.mktemp("private")
    index = root / "index"
    shutil.copytree(SAMPLE_INDEX, index)
    shutil.rmtree(index / "images")
    (index / "images").mkdir()
    assets = root / "assets"
    assets.mkdir()
    add_image(index, REDIS_KI)
    shutil.copy(REDIS_KI, assets)
    add_image(index, TENGINE_KI, code=CODE, encrypted_folder=assets)
    site = root / "site"
    build_site(load_index(index), site)
    return index, site, assets


@pytest.fixture
def base(private_site, running_server):
    _, site, assets = private_site
    return running_server(site, assets)


def test_private_entry_holds_no_code(private_site):
    index, site, assets = private_site
    version = load_index(index).image("cycore", "tengine").versions[0]
    assert version.file == "cycore-tengine-2.1.1.ki.enc"
    assert (assets / version.file).read_bytes()[:8] == b"KINDOENC"
    assert version.sha256 == hashlib.sha256((assets / version.file).read_bytes()).hexdigest()
    forbidden = [CODE, hashlib.md5(CODE.encode()).hexdigest(), hashlib.sha1(CODE.encode()).hexdigest(), hashlib.sha256(CODE.encode()).hexdigest(), TENGINE_SHA256]
    texts = [(index / "images/cycore/tengine.yaml").read_text()]
    texts += [path.read_text(errors="replace") for path in site.rglob("*") if path.is_file()]
    for text in texts:
        for secret in forbidden:
            assert secret not in text


def test_private_version_absent_from_listings(private_site):
    _, site, _ = private_site
    for path in site.rglob("*"):
        if path.is_file() and path.parts[-4:-1] != ("pull", "cycore", "tengine") and "private" not in path.parts:
            assert "tengine" not in path.read_text(), path
    assert sorted(p.name for p in (site / "v1/pull/cycore/tengine").iterdir()) == ["2.1.1.json"]
    assert not (site / "v1/images/cycore/tengine.json").exists()
    assert not (site / "v1/pull/anonymous/tengine.json").exists()


def test_public_pull_path_says_code_needed(private_site):
    _, site, _ = private_site
    stub = (site / "v1/pull/cycore/tengine/2.1.1.json").read_text()
    assert stub.startswith('{"code":"040014000","msg":"extraction code needed","protection":{"version":1,"kdf":"scrypt","n":131072,"r":8,"p":1,"salt":"')
    assert "lookup_id" not in stub


@pytest.mark.parametrize("path", [
    "/v1/pull?uniqueName=cycore/tengine:2.1.1",
    "/v1/pull?name=tengine&author=cycore&version=2.1.1",
])
def test_pull_without_code(base, path):
    assert requests.get(base + path, timeout=10).json() == {"code": "040014000", "msg": "extraction code needed"}


@pytest.mark.parametrize("query", ["uniqueName=cycore/tengine:2.1.1&code=Ab3xY8", "name=tengine&author=cycore&version=2.1.1&code=wrong-code"])
def test_pull_with_wrong_code(base, query):
    assert requests.get(f"{base}/v1/pull?{query}", timeout=30).json() == {"code": "040014000", "msg": "extraction code is wrong"}


def test_pull_with_invalid_code(base):
    answer = requests.get(f"{base}/v1/pull?uniqueName=cycore/tengine:2.1.1&code=abc", timeout=10).json()
    assert answer == {"code": "040014000", "msg": "extraction code is invalid: extraction code is 3 characters long; it must be 6 to 64 characters"}


@pytest.mark.parametrize("query", [
    f"uniqueName=cycore/tengine:2.1.1&code={CODE}",
    f"name=tengine&author=cycore&version=2.1.1&code={CODE}&username=cycore&token=0123",
])
def test_kindo_1x_pull_with_code_downloads_original(base, query):
    pull = requests.get(f"{base}/v1/pull?{query}", timeout=30).json()
    assert (pull["name"], pull["size"], pull["sha256"], pull["pusher"]) == ("cycore/tengine:2.1.1", "2386753", TENGINE_SHA256, "cycore")
    assert pull["url"].startswith(f"{base}/v1/decrypt/")
    download = requests.get(pull["url"], timeout=30)
    assert download.headers["Content-Length"] == "2386753"
    assert hashlib.sha256(download.content).hexdigest() == TENGINE_SHA256


def test_search_never_lists_private(base):
    assert requests.get(f"{base}/v1/search?q=tengine", timeout=10).json() == []
    assert requests.get(f"{base}/v1/search?q=tengine&username=cycore&token=x", timeout=10).json() == []
    assert [r["name"] for r in requests.get(f"{base}/v1/search?q=cycore", timeout=10).json()] == ["cycore/redis:3.0.4"]


def test_unknown_download_link(base):
    answer = requests.get(f"{base}/v1/decrypt/not-a-token/x.ki", timeout=10)
    assert (answer.status_code, answer.json()) == (404, {"code": "040014040", "msg": "download link expired or unknown; pull again"})


def test_tampered_file_stops_download(private_site, running_server, tmp_path):
    _, site, assets = private_site
    tampered = tmp_path / "assets"
    shutil.copytree(assets, tampered)
    path = tampered / "cycore-tengine-2.1.1.ki.enc"
    data = bytearray(path.read_bytes())
    data[200_000] ^= 1
    path.write_bytes(bytes(data))
    base = running_server(site, tampered)
    pull = requests.get(f"{base}/v1/pull?uniqueName=cycore/tengine:2.1.1&code={CODE}", timeout=30).json()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        _ = requests.get(pull["url"], timeout=30).content


def test_pull_command_private(base, tmp_path):
    output = tmp_path / "t.ki"
    result = runner.invoke(app, ["pull", "cycore/tengine:2.1.1", "--code", CODE, "--from", base, "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"pulled cycore/tengine:2.1.1 size=2386753 sha256={TENGINE_SHA256} -> {output}\n"
    assert output.read_bytes() == TENGINE_KI.read_bytes()


def test_pull_command_public_latest(base, tmp_path):
    output = tmp_path / "r.ki"
    result = runner.invoke(app, ["pull", "cycore/redis", "--from", base, "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"pulled cycore/redis:3.0.4 size=1367041 sha256={REDIS_SHA256} -> {output}\n"
    assert hashlib.sha256(output.read_bytes()).hexdigest() == REDIS_SHA256


def test_pull_command_without_author(base, tmp_path):
    result = runner.invoke(app, ["pull", "redis", "--from", base, "-o", str(tmp_path / "r.ki")])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("arguments, message", [
    (["cycore/tengine:2.1.1"], "Error: cycore/tengine:2.1.1 is private: extraction code needed; pass --code\n"),
    (["cycore/tengine:2.1.1", "--code", "Ab3xY8"], "Error: extraction code for cycore/tengine:2.1.1 is wrong\n"),
    (["cycore/nothing"], "Error: image cycore/nothing:latest not found at {base}\n"),
])
def test_pull_command_errors(base, tmp_path, arguments, message):
    result = runner.invoke(app, ["pull", *arguments, "--from", base, "-o", str(tmp_path / "x.ki")])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] + "\n" == message.format(base=base)
    assert list(tmp_path.iterdir()) == []


def test_pull_command_rejects_tampered_file(private_site, running_server, tmp_path):
    _, site, assets = private_site
    tampered = tmp_path / "assets"
    shutil.copytree(assets, tampered)
    path = tampered / "cycore-redis-3.0.4.ki"
    data = bytearray(path.read_bytes())
    data[1000] ^= 1
    path.write_bytes(bytes(data))
    base = running_server(site, tampered)
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(app, ["pull", "cycore/redis:3.0.4", "--from", base, "-o", str(out / "r.ki")])
    assert result.exit_code == 1
    bad = hashlib.sha256(bytes(data)).hexdigest()
    assert result.stderr.splitlines()[-1] + "\n" == f"Error: downloaded file has sha256 {bad}, but the registry lists {REDIS_SHA256}; nothing was saved\n"
    assert list(out.iterdir()) == []


def test_private_latest_version_rejected(index_dir, tmp_path):
    from conftest import make_ki, manifest
    from registry_index.errors import RegistryError

    with pytest.raises(RegistryError) as caught:
        add_image(index_dir, make_ki(tmp_path / "a.ki", manifest(version=None)), code=CODE, encrypted_folder=tmp_path)
    assert str(caught.value) == f"{tmp_path / 'a.ki'}: a version named 'latest' cannot be private; build the image with a version number"
