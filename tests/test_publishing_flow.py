"""Publishing by pull request, end to end against the local GitHub stand-in and real git repositories.

The flow: register, check-pr, merge, push, check-pr, merge, publish (mirror and
build), serve, and a pull that downloads the exact bytes. Then the pull
requests that must fail, and a publish that is re-run after a failure.
"""

import hashlib
import json
import subprocess
import threading
from pathlib import Path

import pytest
import requests
from typer.testing import CliRunner

from conftest import make_ki, manifest
from github_standin import GitHubStandIn
from registry_index.cli import app
from registry_index.index import load_index
from registry_index.review import check_pull_request
from registry_index.server import make_server

runner = CliRunner()
UPSTREAM = "maint/registry"


def registry_yaml(github_url: str) -> str:
    return (
        'title: "test registry"\n'
        f'repository: "{UPSTREAM}"\n'
        'asset_release: "images"\n'
        'site_url: "https://maint.github.io/registry/"\n'
        f'github_url: "{github_url}"\n'
    )


def git(repository: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repository), *args], capture_output=True, text=True, check=True)
    return result.stdout.strip()


class Registry:
    """The upstream registry in the stand-in, and a local git clone kept in step with it."""

    def __init__(self, standin: GitHubStandIn, clone: Path):
        self.standin = standin
        self.clone = clone
        clone.mkdir()
        git(clone, "init", "-q", "-b", "main")
        git(clone, "config", "user.email", "test@example.invalid")
        git(clone, "config", "user.name", "test")
        self.sync("main")

    def write_tree(self, files: dict[str, bytes]) -> None:
        for path in self.clone.rglob("*"):
            if path.is_file() and ".git" not in path.parts:
                path.unlink()
        for path, content in files.items():
            target = self.clone / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)

    def sync(self, branch: str) -> str:
        """Make the clone's `branch` equal the upstream default branch; return its commit."""
        git(self.clone, "checkout", "-q", "-B", branch)
        self.write_tree(self.standin.files(UPSTREAM))
        git(self.clone, "add", "-A")
        git(self.clone, "commit", "-q", "--allow-empty", "-m", "sync")
        return git(self.clone, "rev-parse", "HEAD")

    def pull_request_commits(self, number: int) -> tuple[str, str]:
        """Commit the pull request's head files on a branch of the clone; return (base, head) commits."""
        pull = self.standin.client("maint").get_repo(UPSTREAM).get_pull(number)
        base = git(self.clone, "rev-parse", "main")
        git(self.clone, "checkout", "-q", "-B", f"pr-{number}", base)
        self.write_tree(self.standin.files(pull.head.repo.full_name, pull.head.ref))
        git(self.clone, "add", "-A")
        git(self.clone, "commit", "-q", "--allow-empty", "-m", f"pull request {number}")
        head = git(self.clone, "rev-parse", "HEAD")
        git(self.clone, "checkout", "-q", "main")
        return base, head

    def merge(self, number: int) -> None:
        self.standin.client("maint").get_repo(UPSTREAM).get_pull(number).merge()
        self.sync("main")

    def change(self, edit, message: str = "change") -> tuple[str, str]:
        """Commit `edit(clone)` on a branch off main; return (base, head) commits."""
        base = git(self.clone, "rev-parse", "main")
        git(self.clone, "checkout", "-q", "-B", "attempt", base)
        edit(self.clone)
        git(self.clone, "add", "-A")
        git(self.clone, "commit", "-q", "-m", message)
        head = git(self.clone, "rev-parse", "HEAD")
        git(self.clone, "checkout", "-q", "main")
        return base, head


@pytest.fixture
def standin():
    with GitHubStandIn() as server:
        for login in ("maint", "alice", "mallory"):
            server.add_user(login)
        server.create_repository(UPSTREAM, files={"index/registry.yaml": registry_yaml(server.root_url)})
        yield server


@pytest.fixture
def registry(standin, tmp_path):
    return Registry(standin, tmp_path / "clone")


def cli(standin, login, *args, input=None):
    options = ["--token", f"token-{login}", "--api-url", standin.api_url, "--write-interval", "0"]
    return runner.invoke(app, [*args, *options], input=input)


def check(registry, base, head, author):
    return [str(problem) for problem in check_pull_request(registry.clone, base, head, author)]


def register_alice(registry):
    result = cli(registry.standin, "alice", "register", "alice", "--password-stdin", "--index", str(registry.clone / "index"), input="s3cret\n")
    assert result.exit_code == 0, result.output
    base, head = registry.pull_request_commits(1)
    assert check(registry, base, head, "alice") == []
    registry.merge(1)
    return json.loads(result.stdout)


def push_alice(registry, tmp_path, version="1.0", number=2):
    ki = make_ki(tmp_path / f"alice-demo-{version}.ki", manifest(author="alice", version=version))
    result = cli(registry.standin, "alice", "push", str(ki), "--index", str(registry.clone / "index"))
    assert result.exit_code == 0, result.output
    base, head = registry.pull_request_commits(number)
    assert check(registry, base, head, "alice") == []
    registry.merge(number)
    return ki, json.loads(result.stdout)


def test_full_flow(registry, tmp_path):
    registered = register_alice(registry)
    assert registered["username"] == "alice"
    assert len(registered["uid"]) == 36
    account = load_index(registry.clone / "index").account("alice")
    assert (account.github, account.uid) == ("alice", registered["uid"])
    assert account.token_bcrypt.startswith("$2b$12$")

    ki, pushed = push_alice(registry, tmp_path)
    assert pushed == {"author": "alice", "version": "1.0", "name": "demo"}
    version = load_index(registry.clone / "index").image("alice", "demo").versions[0]
    assert version.source == f"{registry.standin.root_url}/alice/registry/releases/download/registry-index-uploads/alice-demo-1.0.ki"

    site = tmp_path / "site"
    result = cli(registry.standin, "maint", "publish", "--index", str(registry.clone / "index"), "--out", str(site))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "published: 1 uploaded, 0 already present, 0 half-uploaded replaced, 0 hosted elsewhere"
    release = registry.standin.client("maint").get_repo(UPSTREAM).get_release("images")
    assert [asset.name for asset in release.get_assets()] == ["alice-demo-1.0.ki"]

    server = make_server(site, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host, port = server.server_address[:2]
        pull = requests.get(f"http://{host}:{port}/v1/pull?uniqueName=alice/demo:1.0", timeout=5).json()
    finally:
        server.shutdown()
        server.server_close()
    assert pull["url"] == f"{registry.standin.root_url}/maint/registry/releases/download/images/alice-demo-1.0.ki"
    downloaded = requests.get(pull["url"], timeout=5).content
    assert hashlib.sha256(downloaded).hexdigest() == hashlib.sha256(ki.read_bytes()).hexdigest()

    again = cli(registry.standin, "maint", "publish", "--index", str(registry.clone / "index"), "--out", str(site))
    assert again.stdout.splitlines()[0] == "published: 0 uploaded, 1 already present, 0 half-uploaded replaced, 0 hosted elsewhere"


def test_register_output_and_pull_request(registry):
    result = cli(registry.standin, "alice", "register", "alice", "--password-stdin", "--index", str(registry.clone / "index"), input="pw\n")
    assert result.exit_code == 0, result.output
    pulls = list(registry.standin.client("maint").get_repo(UPSTREAM).get_pulls())
    assert [(p.title, p.head.ref, p.user.login) for p in pulls] == [("Register account alice", "register-alice", "alice")]
    files = registry.standin.files("alice/registry", "register-alice")
    assert b"s3cret" not in files["index/accounts/alice.yaml"]
    assert hashlib.md5(b"pw").hexdigest().encode() not in files["index/accounts/alice.yaml"]


@pytest.mark.parametrize("username, password, message", [
    ("anonymous", "pw", "Error: username 'anonymous' is reserved for pulls without an author; choose another author\n"),
    ("al ice", "pw", "Error: username 'al ice' has characters outside letters and digits; rename it\n"),
    ("alice", "", "Error: password is empty; choose a password\n"),
    ("alice", "é" * 37, "Error: password is 74 bytes in UTF-8; the maximum is 72; choose a shorter one\n"),
])
def test_register_rejects(registry, username, password, message):
    result = cli(registry.standin, "alice", "register", username, "--password-stdin", "--index", str(registry.clone / "index"), input=password + "\n")
    assert result.exit_code == 1
    assert result.stderr == message


def test_register_rejects_taken_name(registry):
    register_alice(registry)
    result = cli(registry.standin, "mallory", "register", "ALICE", "--password-stdin", "--index", str(registry.clone / "index"), input="x\n")
    assert result.exit_code == 1
    assert result.stderr == "Error: username 'ALICE' is taken by 'alice' (names ignore case and '_' versus '-'); choose another\n"


def test_push_under_someone_elses_author(registry, tmp_path):
    register_alice(registry)
    ki = make_ki(tmp_path / "x.ki", manifest(author="alice"))
    result = cli(registry.standin, "mallory", "push", str(ki), "--index", str(registry.clone / "index"))
    assert result.exit_code == 1
    assert result.stderr == "Error: author namespace 'alice' belongs to GitHub user 'alice', not 'mallory'; push images under your own author\n"


def test_pr_editing_someone_elses_image(registry, tmp_path):
    register_alice(registry)
    push_alice(registry, tmp_path)

    def edit(clone):
        path = clone / "index/images/alice/demo.yaml"
        path.write_text(path.read_text() + '    yanked: "mine now"\n')

    base, head = registry.change(edit)
    assert check(registry, base, head, "mallory") == [
        "index/images/alice/demo.yaml: author namespace 'alice' belongs to GitHub user 'alice', not 'mallory'; push images under your own author"
    ]
    assert check(registry, base, head, "alice") == []


def test_pr_repushing_version_with_other_bytes(registry, tmp_path):
    register_alice(registry)
    push_alice(registry, tmp_path)

    def edit(clone):
        path = clone / "index/images/alice/demo.yaml"
        text = path.read_text()
        old_sha = load_index(clone / "index").image("alice", "demo").versions[0].sha256
        path.write_text(text.replace(old_sha, "0" * 64))

    base, head = registry.change(edit)
    assert check(registry, base, head, "alice") == [
        "index/images/alice/demo.yaml:5: published version '1.0' changed sha256; versions are immutable, push a new version"
    ]


def test_pr_removing_a_version(registry, tmp_path):
    register_alice(registry)
    push_alice(registry, tmp_path)
    base, head = registry.change(lambda clone: (clone / "index/images/alice/demo.yaml").unlink())
    assert check(registry, base, head, "alice") == [
        "index/images/alice/demo.yaml: published images cannot be deleted; yank their versions instead"
    ]


def test_pr_on_a_broken_base(registry, tmp_path):
    register_alice(registry)
    push_alice(registry, tmp_path)
    demo = registry.clone / "index/images/alice/demo.yaml"
    good = demo.read_text()
    # A maintainer pushed a broken file to main, and a pull request repairs it.
    demo.write_text(good + "colour: 1\n")
    git(registry.clone, "commit", "-q", "-am", "break demo")
    base, head = registry.change(lambda clone: (clone / "index/images/alice/demo.yaml").write_text(good))
    assert check(registry, base, head, "alice") == [
        f"index: the base revision {base} has no valid settings, accounts or changed image files; fix the default branch first"
    ]


def test_pr_adding_account_for_another_login(registry):
    register_alice(registry)

    def edit(clone):
        text = (clone / "index/accounts/alice.yaml").read_text()
        (clone / "index/accounts/bob.yaml").write_text(text.replace('"alice"', '"bob"', 1).replace('github: "alice"', 'github: "alice"'))

    base, head = registry.change(edit)
    assert check(registry, base, head, "mallory") == [
        "index/accounts/bob.yaml:2: new account 'bob' names GitHub user 'alice', but the pull request is by 'mallory'; an account must be owned by its author"
    ]


def test_pr_touching_a_workflow(registry):
    register_alice(registry)

    def edit(clone):
        (clone / ".github/workflows").mkdir(parents=True)
        (clone / ".github/workflows/evil.yml").write_text("on: push\n")

    base, head = registry.change(edit)
    assert check(registry, base, head, "alice") == [
        ".github/workflows/evil.yml: only files under index/accounts/ and index/images/ may change in a pull request; ask a maintainer for other changes"
    ]
    assert check_pull_request(registry.clone, base, head, "alice", trusted=True) == []


def test_pr_with_file_that_does_not_match(registry, tmp_path):
    register_alice(registry)
    push_alice(registry, tmp_path)
    other = make_ki(tmp_path / "other.ki", manifest(author="alice", version="2.0", summary="other bytes"))
    fork = registry.standin.client("alice").get_repo("alice/registry")
    asset = fork.get_release("registry-index-uploads").upload_asset(str(other), name="swapped.ki")

    def edit(clone):
        path = clone / "index/images/alice/demo.yaml"
        entry = load_index(clone / "index").image("alice", "demo").versions[0]
        block = path.read_text().split("versions:\n")[1]
        new_block = block.replace('"1.0"', '"2.0"', 1).replace(entry.source, asset.browser_download_url).replace("alice-demo-1.0.ki", "alice-demo-2.0.ki")
        path.write_text(path.read_text() + new_block)

    base, head = registry.change(edit)
    problems = check(registry, base, head, "alice")
    entry = load_index(registry.clone / "index").image("alice", "demo").versions[0]
    assert other.stat().st_size > entry.size
    assert problems == [
        f"index/images/alice/demo.yaml:16: alice/demo:2.0: download of {asset.browser_download_url} is larger than {entry.size + 1} bytes; stopped"
    ]


def test_pr_with_manifest_that_does_not_match(registry, tmp_path):
    register_alice(registry)
    push_alice(registry, tmp_path)
    same_size = make_ki(tmp_path / "other.ki", manifest(author="alice", version="1.0", summary="a demo imagf"))
    fork = registry.standin.client("alice").get_repo("alice/registry")
    asset = fork.get_release("registry-index-uploads").upload_asset(str(same_size), name="same-size.ki")

    def edit(clone):
        path = clone / "index/images/alice/demo.yaml"
        entry = load_index(clone / "index").image("alice", "demo").versions[0]
        block = path.read_text().split("versions:\n")[1]
        new_block = block.replace('"1.0"', '"2.0"', 1).replace(entry.source, asset.browser_download_url)
        path.write_text(path.read_text() + new_block.replace('file: "alice-demo-1.0.ki"', 'file: "alice-demo-2.0.ki"'))

    base, head = registry.change(edit)
    entry = load_index(registry.clone / "index").image("alice", "demo").versions[0]
    assert same_size.stat().st_size == entry.size
    sha = hashlib.sha256(same_size.read_bytes()).hexdigest()
    assert check(registry, base, head, "alice") == [
        f"index/images/alice/demo.yaml:16: alice/demo:2.0: sha256 is {entry.sha256} in the index but the file has {sha}",
        "index/images/alice/demo.yaml:16: alice/demo:2.0: version is '2.0' in the index but '1.0' in manifest.json",
    ]


def test_publish_rerun_after_failure(registry, tmp_path):
    register_alice(registry)
    first, _ = push_alice(registry, tmp_path, "1.0", 2)
    second, _ = push_alice(registry, tmp_path, "2.0", 3)
    standin = registry.standin
    site = tmp_path / "site"
    index = str(registry.clone / "index")

    # Let the first upload through, then break every later upload half way.
    standin.inject_fault("POST", r"/releases/\d+/assets$", "truncate_upload", times=None, skip=1)
    failed = cli(standin, "maint", "publish", "--index", index, "--out", str(site))
    standin.clear_faults()
    assert failed.exit_code == 1
    assert failed.stderr.splitlines()[-1] == "Error: upload of alice-demo-2.0.ki to release images failed twice and left a half-uploaded asset; run publish again"
    assert not site.exists()
    release = standin.client("maint").get_repo(UPSTREAM).get_release("images")
    assert sorted((a.name, a.state) for a in release.get_assets()) == [("alice-demo-1.0.ki", "uploaded"), ("alice-demo-2.0.ki", "starter")]

    rerun = cli(standin, "maint", "publish", "--index", index, "--out", str(site))
    assert rerun.exit_code == 0, rerun.output
    assert rerun.stdout.splitlines()[0] == "published: 1 uploaded, 1 already present, 1 half-uploaded replaced, 0 hosted elsewhere"
    assets = {a.name: a for a in standin.client("maint").get_repo(UPSTREAM).get_release("images").get_assets()}
    assert sorted(assets) == ["alice-demo-1.0.ki", "alice-demo-2.0.ki"]
    for name, ki in (("alice-demo-1.0.ki", first), ("alice-demo-2.0.ki", second)):
        assert requests.get(assets[name].browser_download_url, timeout=5).content == ki.read_bytes()
    assert (site / "v1/pull/alice/demo/2.0.json").is_file()


def test_publish_refuses_other_bytes_under_same_name(registry, tmp_path):
    register_alice(registry)
    push_alice(registry, tmp_path)
    impostor = make_ki(tmp_path / "impostor.ki", manifest(author="alice", summary="impostor"))
    repo = registry.standin.client("maint").get_repo(UPSTREAM)
    release = repo.create_git_release("images", "images", "")
    release.upload_asset(str(impostor), name="alice-demo-1.0.ki")
    result = cli(registry.standin, "maint", "publish", "--index", str(registry.clone / "index"), "--out", str(tmp_path / "site"))
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: release images already has an asset alice-demo-1.0.ki with other bytes than alice/demo:1.0 "
        f"(sha256 {load_index(registry.clone / 'index').image('alice', 'demo').versions[0].sha256}); "
        "published files are never overwritten, so a maintainer must investigate\n"
    )
    assert [a.name for a in release.get_assets()] == ["alice-demo-1.0.ki"]


def test_private_push_publish_and_pull(registry, tmp_path):
    register_alice(registry)
    ki = make_ki(tmp_path / "secret.ki", manifest(author="alice", name="secret", version="1.0"))
    result = cli(registry.standin, "alice", "push", str(ki), "--code", "Ab3xY9", "--index", str(registry.clone / "index"))
    assert result.exit_code == 0, result.output
    uploaded = registry.standin.files("alice/registry", "push-alice-secret-1.0")["index/images/alice/secret.yaml"]
    assert b"Ab3xY9" not in uploaded
    base, head = registry.pull_request_commits(2)
    assert check(registry, base, head, "alice") == []
    registry.merge(2)

    site = tmp_path / "site"
    published = cli(registry.standin, "maint", "publish", "--index", str(registry.clone / "index"), "--out", str(site))
    assert published.exit_code == 0, published.output
    release = registry.standin.client("maint").get_repo(UPSTREAM).get_release("images")
    asset = next(iter(release.get_assets()))
    assert asset.name == "alice-secret-1.0.ki.enc"
    assert requests.get(asset.browser_download_url, timeout=5).content[:8] == b"KINDOENC"

    server = make_server(site, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host, port = server.server_address[:2]
        base_url = f"http://{host}:{port}"
        assert requests.get(f"{base_url}/v1/search?q=secret", timeout=5).json() == []
        pull = requests.get(f"{base_url}/v1/pull?uniqueName=alice/secret:1.0&code=Ab3xY9", timeout=30).json()
        downloaded = requests.get(pull["url"], timeout=30).content
    finally:
        server.shutdown()
        server.server_close()
    assert downloaded == ki.read_bytes()


def test_pr_with_unencrypted_file_for_private_version(registry, tmp_path):
    register_alice(registry)
    ki = make_ki(tmp_path / "secret.ki", manifest(author="alice", name="secret", version="1.0"))
    assert cli(registry.standin, "alice", "push", str(ki), "--code", "Ab3xY9", "--index", str(registry.clone / "index")).exit_code == 0
    registry.pull_request_commits(2)
    fork = registry.standin.client("alice").get_repo("alice/registry")
    plain = fork.get_release("registry-index-uploads").upload_asset(str(ki), name="plain.ki")

    def edit(clone):
        head_files = registry.standin.files("alice/registry", "push-alice-secret-1.0")
        text = head_files["index/images/alice/secret.yaml"].decode()
        entry_source = text.split('source: "')[1].split('"')[0]
        size = ki.stat().st_size
        sha = hashlib.sha256(ki.read_bytes()).hexdigest()
        lines = []
        for line in text.replace(entry_source, plain.browser_download_url).splitlines():
            if line.strip().startswith("size:"):
                line = f"    size: {size}"
            if line.strip().startswith("sha256:"):
                line = f'    sha256: "{sha}"'
            lines.append(line)
        (clone / "index/images/alice").mkdir(parents=True, exist_ok=True)
        (clone / "index/images/alice/secret.yaml").write_text("\n".join(lines) + "\n")

    base, head = registry.change(edit)
    assert check(registry, base, head, "alice") == [
        "index/images/alice/secret.yaml:5: alice/secret:1.0: the file of a private version is not an encrypted kindo image; push it with --code"
    ]


def test_check_pr_command_writes_step_summary(registry, tmp_path):
    register_alice(registry)

    def edit(clone):
        (clone / "README.md").write_text("changed | by pr\n")
        (clone / "index/accounts/alice.yaml").unlink()

    base, head = registry.change(edit)
    summary = tmp_path / "summary.md"
    result = runner.invoke(app, ["check-pr", "--base", base, "--head", head, "--pr-author", "mallory",
                                 "--repository", str(registry.clone), "--summary", str(summary)])
    assert result.exit_code == 1
    assert result.stdout == (
        "README.md: only files under index/accounts/ and index/images/ may change in a pull request; ask a maintainer for other changes\n"
        "index/accounts/alice.yaml: accounts cannot be deleted by a pull request; ask a maintainer\n"
    )
    assert result.stderr.splitlines()[-1] == "Error: 2 problems in the pull request"
    assert summary.read_text() == (
        "### Index check failed: 2 problems\n\n| file | line | problem |\n| --- | --- | --- |\n"
        "| `README.md` |  | only files under index/accounts/ and index/images/ may change in a pull request; ask a maintainer for other changes |\n"
        "| `index/accounts/alice.yaml` |  | accounts cannot be deleted by a pull request; ask a maintainer |\n"
    )


def test_check_pr_command_rejects_bad_revision(registry):
    result = runner.invoke(app, ["check-pr", "--base", "--upload-pack=evil", "--head", "main", "--pr-author", "alice", "--repository", str(registry.clone)])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "Error: revision '--upload-pack=evil' is invalid; give a commit id or branch name"


def test_check_pr_command_names_missing_revision(registry):
    result = runner.invoke(app, ["check-pr", "--base", "no-such-branch", "--head", "main", "--pr-author", "alice", "--repository", str(registry.clone)])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == f"Error: revision 'no-such-branch' is not a commit in {registry.clone}; fetch it, or give a commit id or branch name"


def test_check_pr_command_quotes_git_on_bad_revision(registry):
    result = runner.invoke(app, ["check-pr", "--base", "main^{tree}", "--head", "main", "--pr-author", "alice", "--repository", str(registry.clone)])
    assert result.exit_code == 1
    last = result.stderr.splitlines()[-1]
    # Between the two parts is git's own message, whose wording depends on the git version.
    assert last.startswith(f"Error: revision 'main^{{tree}}' cannot be resolved in {registry.clone}: ")
    assert last.endswith("; check --repository and give a commit id or branch name")


def test_pr_changing_someone_elses_account(registry):
    register_alice(registry)

    def edit(clone):
        path = clone / "index/accounts/alice.yaml"
        path.write_text(path.read_text().replace('github: "alice"', 'github: "mallory"'))

    base, head = registry.change(edit)
    assert check(registry, base, head, "mallory") == [
        "index/accounts/alice.yaml: account 'alice' belongs to GitHub user 'alice'; only that user may change it"
    ]
    assert check(registry, base, head, "alice") == [
        "index/accounts/alice.yaml:2: account fields github cannot change; only token_bcrypt may"
    ]


def test_pr_removing_one_version(registry, tmp_path):
    register_alice(registry)
    push_alice(registry, tmp_path, "1.0", 2)
    push_alice(registry, tmp_path, "2.0", 3)

    def edit(clone):
        path = clone / "index/images/alice/demo.yaml"
        text = path.read_text()
        head, versions = text.split("versions:\n")
        second = versions[versions.index('  - version: "2.0"'):]
        path.write_text(head + "versions:\n" + second)

    base, head = registry.change(edit)
    assert check(registry, base, head, "alice") == [
        "index/images/alice/demo.yaml: published version '1.0' was removed; versions are immutable, yank it instead"
    ]


@pytest.mark.parametrize("change, expected", [
    (lambda text: text.replace('pusher: "alice"', 'pusher: "bob"'), "index/images/alice/demo.yaml:16: pusher 'bob' has no account in accounts/"),
    (lambda text: "\n".join(line for line in text.splitlines() if "source:" not in line) + "\n",
     "index/images/alice/demo.yaml:16: alice/demo:2.0 has no source or url to download the file from; push it with `registry-index push`"),
])
def test_pr_new_version_bad_source_pusher(registry, tmp_path, change, expected):
    register_alice(registry)
    push_alice(registry, tmp_path)

    def edit(clone):
        path = clone / "index/images/alice/demo.yaml"
        text = path.read_text()
        block = text.split("versions:\n")[1].replace('"1.0"', '"2.0"', 1).replace("alice-demo-1.0.ki", "alice-demo-2.0.ki")
        path.write_text(text + change(block))

    base, head = registry.change(edit)
    assert check(registry, base, head, "alice") == [expected]
