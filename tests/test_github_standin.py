"""Tests for the GitHub stand-in, driven through PyGithub and plain HTTP as the registry tooling uses it."""

from __future__ import annotations

import io
import time
import urllib.request

import pytest
import requests
from github import (
    Auth,
    BadCredentialsException,
    Github,
    GithubException,
    GithubRetry,
    RateLimitExceededException,
    UnknownObjectException,
)

from github_standin import GitHubStandIn, rename_asset

README = b"Registry index\n"
# Blob SHA from `printf 'name: foo\n' | git hash-object --stdin`.
FOO_YAML = b"name: foo\n"
FOO_YAML_SHA = "5a240e3ed2eed285939b773f2e7c8b20d27e921c"


@pytest.fixture
def standin():
    """Stand-in with maintainer ``kindo`` owning ``kindo/registry`` and contributor ``alice``."""
    with GitHubStandIn() as server:
        server.add_user("kindo")
        server.add_user("alice")
        server.create_repository("kindo/registry", files={"index/README.md": README})
        yield server


@pytest.fixture
def maintainer(standin):
    return standin.client("kindo")


@pytest.fixture
def contributor(standin):
    return standin.client("alice")


def open_pull_from_fork(contributor, files, branch="add-foo", title="Add foo"):
    """Fork kindo/registry as alice, commit ``files`` on a new branch and open a pull request."""
    upstream = contributor.get_repo("kindo/registry")
    fork = upstream.create_fork()
    fork.create_git_ref(f"refs/heads/{branch}", fork.get_branch("main").commit.sha)
    for path, content in files.items():
        try:
            current = fork.get_contents(path, ref=branch)
        except UnknownObjectException:
            fork.create_file(path, f"Add {path}", content, branch=branch)
        else:
            fork.update_file(path, f"Update {path}", content, current.sha, branch=branch)
    return upstream.create_pull(base="main", head=f"alice:{branch}", title=title, body="Please merge.")


def create_release_with_asset(maintainer, name="kindo-foo-1.0.ki", data=b"PK\x03\x04foo"):
    release = maintainer.get_repo("kindo/registry").create_git_release("v1.0", "v1.0", "First release")
    asset = release.upload_asset_from_memory(io.BytesIO(data), len(data), name, content_type="application/zip")
    return release, asset


# Authentication and repositories ----------------------------------------------------------


def test_unknown_token_is_rejected(standin):
    client = Github(base_url=standin.api_url, auth=Auth.Token("not-a-token"), retry=None)

    with pytest.raises(BadCredentialsException) as caught:
        client.get_repo("kindo/registry")

    assert caught.value.status == 401
    assert caught.value.data["message"] == "Bad credentials"


def test_token_decides_acting_user(maintainer, contributor):
    assert maintainer.get_user().login == "kindo"
    assert contributor.get_user().login == "alice"


def test_repository_fields(standin, maintainer, contributor):
    repository = maintainer.get_repo("kindo/registry")

    assert repository.full_name == "kindo/registry"
    assert repository.owner.login == "kindo"
    assert repository.default_branch == "main"
    assert repository.html_url == f"{standin.root_url}/kindo/registry"
    assert repository.fork is False
    assert repository.permissions.push is True
    assert contributor.get_repo("kindo/registry").permissions.push is False


def test_anonymous_client_cannot_write(standin):
    anonymous = Github(base_url=standin.api_url, retry=None, seconds_between_requests=None)
    repository = anonymous.get_repo("kindo/registry")

    assert repository.get_contents("index/README.md").decoded_content == README
    with pytest.raises(GithubException) as caught:
        repository.create_file("index/x.yaml", "Add x", "x")
    assert caught.value.status == 401


# Forks, branches and contents -------------------------------------------------------------


def test_fork_copies_branches_and_files(standin, contributor):
    upstream = contributor.get_repo("kindo/registry")

    fork = upstream.create_fork()

    assert fork.full_name == "alice/registry"
    assert fork.fork is True
    assert fork.parent.full_name == "kindo/registry"
    assert fork.get_contents("index/README.md").decoded_content == README
    assert standin.repository("alice/registry").parent is standin.repository("kindo/registry")
    assert standin.repository("alice/registry").refs == standin.repository("kindo/registry").refs


def test_second_fork_returns_existing_fork(standin, contributor):
    upstream = contributor.get_repo("kindo/registry")

    first = upstream.create_fork()
    second = upstream.create_fork()

    assert second.full_name == first.full_name
    assert sorted(standin.repositories) == ["alice/registry", "kindo/registry"]


def test_create_branch_from_main(standin, maintainer):
    repository = maintainer.get_repo("kindo/registry")
    main_sha = repository.get_branch("main").commit.sha

    ref = repository.create_git_ref("refs/heads/feature/x", main_sha)

    assert ref.ref == "refs/heads/feature/x"
    assert ref.object.sha == main_sha
    assert repository.get_branch("feature/x").commit.sha == main_sha
    assert standin.repository("kindo/registry").branches == {"main": main_sha, "feature/x": main_sha}


def test_create_existing_branch_returns_422(maintainer):
    repository = maintainer.get_repo("kindo/registry")
    main_sha = repository.get_branch("main").commit.sha

    with pytest.raises(GithubException) as caught:
        repository.create_git_ref("refs/heads/main", main_sha)

    assert caught.value.status == 422
    assert caught.value.data["message"] == "Reference already exists"


def test_missing_branch_returns_404(maintainer):
    with pytest.raises(GithubException) as caught:
        maintainer.get_repo("kindo/registry").get_branch("nope")

    assert caught.value.status == 404


def test_put_file_records_commit(standin, maintainer):
    repository = maintainer.get_repo("kindo/registry")

    result = repository.create_file("index/foo.yaml", "Add foo", FOO_YAML)

    assert result["content"].sha == FOO_YAML_SHA
    assert result["content"].path == "index/foo.yaml"
    assert result["commit"].sha == repository.get_branch("main").commit.sha
    assert repository.get_contents("index/foo.yaml").decoded_content == FOO_YAML
    assert standin.files("kindo/registry") == {"index/README.md": README, "index/foo.yaml": FOO_YAML}
    latest = standin.history("kindo/registry")[0]
    assert latest.message == "Add foo"
    assert latest.author_login == "kindo"
    assert len(standin.history("kindo/registry")) == 2


def test_update_file_needs_current_sha(maintainer):
    repository = maintainer.get_repo("kindo/registry")
    repository.create_file("index/foo.yaml", "Add foo", FOO_YAML)

    with pytest.raises(GithubException) as missing_sha:
        repository.create_file("index/foo.yaml", "Add foo again", FOO_YAML)
    with pytest.raises(GithubException) as stale_sha:
        repository.update_file("index/foo.yaml", "Change foo", b"name: bar\n", sha="0" * 40)
    repository.update_file("index/foo.yaml", "Change foo", b"name: bar\n", sha=FOO_YAML_SHA)

    assert missing_sha.value.status == 422
    assert stale_sha.value.status == 409
    assert repository.get_contents("index/foo.yaml").decoded_content == b"name: bar\n"


def test_delete_file_commits_removal(standin, maintainer):
    repository = maintainer.get_repo("kindo/registry")
    readme = repository.get_contents("index/README.md")

    repository.delete_file("index/README.md", "Remove README", readme.sha)

    assert standin.files("kindo/registry") == {}
    assert standin.history("kindo/registry")[0].message == "Remove README"


def test_directory_listing(maintainer):
    repository = maintainer.get_repo("kindo/registry")
    repository.create_file("index/foo/1.0.yaml", "Add foo 1.0", FOO_YAML)

    root = repository.get_contents("")
    index = repository.get_contents("index")

    assert [(entry.path, entry.type) for entry in root] == [("index", "dir")]
    assert [(entry.path, entry.type) for entry in index] == [("index/README.md", "file"), ("index/foo", "dir")]


def test_push_without_access_returns_403(contributor):
    with pytest.raises(GithubException) as caught:
        contributor.get_repo("kindo/registry").create_file("index/foo.yaml", "Add foo", FOO_YAML)

    assert caught.value.status == 403


# Pull requests ----------------------------------------------------------------------------


def test_open_pull_request_from_fork(standin, contributor):
    pull = open_pull_from_fork(contributor, {"index/foo.yaml": FOO_YAML})

    fork_head = standin.repository("alice/registry").branches["add-foo"]
    assert pull.number == 1
    assert pull.state == "open"
    assert pull.title == "Add foo"
    assert pull.user.login == "alice"
    assert pull.head.ref == "add-foo"
    assert pull.head.label == "alice:add-foo"
    assert pull.head.sha == fork_head
    assert pull.head.repo.full_name == "alice/registry"
    assert pull.base.ref == "main"
    assert pull.base.repo.full_name == "kindo/registry"
    assert pull.mergeable is True
    assert pull.html_url == f"{standin.root_url}/kindo/registry/pull/1"


def test_pull_request_without_commits_returns_422(contributor):
    upstream = contributor.get_repo("kindo/registry")
    fork = upstream.create_fork()
    fork.create_git_ref("refs/heads/empty", fork.get_branch("main").commit.sha)

    with pytest.raises(GithubException) as caught:
        upstream.create_pull(base="main", head="alice:empty", title="Nothing")

    assert caught.value.status == 422
    assert caught.value.data["errors"][0]["message"] == "No commits between main and alice:empty"


def test_pull_request_files(contributor):
    pull = open_pull_from_fork(
        contributor, {"index/foo.yaml": FOO_YAML, "index/README.md": b"Registry index\nNow with foo\n"}
    )

    files = {file.filename: file for file in pull.get_files()}

    assert sorted(files) == ["index/README.md", "index/foo.yaml"]
    assert files["index/foo.yaml"].status == "added"
    assert files["index/foo.yaml"].additions == 1
    assert files["index/foo.yaml"].deletions == 0
    assert files["index/foo.yaml"].sha == FOO_YAML_SHA
    assert files["index/README.md"].status == "modified"
    assert files["index/README.md"].additions == 1
    assert files["index/README.md"].patch == "@@ -1 +1,2 @@\n Registry index\n+Now with foo"


def test_list_pulls_filters_state_and_head(maintainer, contributor):
    pull = open_pull_from_fork(contributor, {"index/foo.yaml": FOO_YAML})
    upstream = maintainer.get_repo("kindo/registry")

    assert [each.number for each in upstream.get_pulls()] == [pull.number]
    assert [each.number for each in upstream.get_pulls(head="alice:add-foo")] == [pull.number]
    assert list(upstream.get_pulls(head="alice:other")) == []
    assert list(upstream.get_pulls(state="closed")) == []

    upstream.get_pull(pull.number).edit(state="closed")

    assert list(upstream.get_pulls()) == []
    assert [each.state for each in upstream.get_pulls(state="closed")] == ["closed"]


def test_pull_request_follows_new_head_commits(standin, contributor):
    pull = open_pull_from_fork(contributor, {"index/foo.yaml": FOO_YAML})
    fork = contributor.get_repo("alice/registry")

    fork.create_file("index/bar.yaml", "Add bar", "name: bar\n", branch="add-foo")

    refreshed = contributor.get_repo("kindo/registry").get_pull(pull.number)
    assert refreshed.head.sha == standin.repository("alice/registry").branches["add-foo"]
    assert refreshed.commits == 2
    assert sorted(file.filename for file in refreshed.get_files()) == ["index/bar.yaml", "index/foo.yaml"]


def test_merge_applies_head_files_to_base(standin, maintainer, contributor):
    pull = open_pull_from_fork(contributor, {"index/foo.yaml": FOO_YAML})
    head_sha = pull.head.sha
    base_sha = standin.repository("kindo/registry").branches["main"]

    status = maintainer.get_repo("kindo/registry").get_pull(pull.number).merge()

    assert status.merged is True
    assert status.message == "Pull Request successfully merged"
    assert standin.files("kindo/registry") == {"index/README.md": README, "index/foo.yaml": FOO_YAML}
    merge_commit = standin.history("kindo/registry")[0]
    assert merge_commit.sha == status.sha
    assert merge_commit.parents == (base_sha, head_sha)
    assert merge_commit.message == "Merge pull request #1 from alice/add-foo\n\nAdd foo"
    assert merge_commit.author_login == "kindo"

    merged = maintainer.get_repo("kindo/registry").get_pull(pull.number)
    assert merged.state == "closed"
    assert merged.merged is True
    assert merged.is_merged() is True
    assert merged.merged_by.login == "kindo"
    assert merged.merge_commit_sha == status.sha
    assert [file.filename for file in merged.get_files()] == ["index/foo.yaml"]


def test_squash_merge_has_one_parent(standin, maintainer, contributor):
    pull = open_pull_from_fork(contributor, {"index/foo.yaml": FOO_YAML})
    base_sha = standin.repository("kindo/registry").branches["main"]

    maintainer.get_repo("kindo/registry").get_pull(pull.number).merge(merge_method="squash")

    squashed = standin.history("kindo/registry")[0]
    assert squashed.parents == (base_sha,)
    assert squashed.message == "Add foo (#1)"


def test_merge_conflict_returns_405(maintainer, contributor):
    pull = open_pull_from_fork(contributor, {"index/README.md": b"Changed by alice\n"})
    upstream = maintainer.get_repo("kindo/registry")
    readme = upstream.get_contents("index/README.md")
    upstream.update_file("index/README.md", "Change README", b"Changed by kindo\n", readme.sha)

    assert upstream.get_pull(pull.number).mergeable is False
    with pytest.raises(GithubException) as caught:
        upstream.get_pull(pull.number).merge()

    assert caught.value.status == 405
    assert caught.value.data["message"] == "Pull Request is not mergeable"


def test_merge_without_push_access_returns_403(contributor):
    pull = open_pull_from_fork(contributor, {"index/foo.yaml": FOO_YAML})

    with pytest.raises(GithubException) as caught:
        pull.merge()

    assert caught.value.status == 403


def test_merge_stale_head_sha_returns_409(maintainer, contributor):
    pull = open_pull_from_fork(contributor, {"index/foo.yaml": FOO_YAML})

    with pytest.raises(GithubException) as caught:
        maintainer.get_repo("kindo/registry").get_pull(pull.number).merge(sha="0" * 40)

    assert caught.value.status == 409


# Releases and assets ----------------------------------------------------------------------


def test_create_release_tags_default_branch(standin, maintainer):
    repository = maintainer.get_repo("kindo/registry")

    release = repository.create_git_release("v1.0", "Version 1.0", "First release")

    stored = standin.repository("kindo/registry")
    assert release.tag_name == "v1.0"
    assert release.name == "Version 1.0"
    assert release.body == "First release"
    assert release.draft is False
    upload_path = f"/repos/kindo/registry/releases/{release.id}/assets{{?name,label}}"
    assert release.upload_url == standin.uploads_url + upload_path
    assert stored.refs["refs/tags/v1.0"] == stored.branches["main"]
    assert repository.get_release("v1.0").id == release.id
    assert repository.get_release(release.id).tag_name == "v1.0"
    assert [each.tag_name for each in repository.get_releases()] == ["v1.0"]


def test_duplicate_release_tag_returns_422(maintainer):
    repository = maintainer.get_repo("kindo/registry")
    repository.create_git_release("v1.0", "v1.0", "First release")

    with pytest.raises(GithubException) as caught:
        repository.create_git_release("v1.0", "v1.0 again", "Second release")

    assert caught.value.status == 422
    assert caught.value.data["errors"] == [{"resource": "Release", "code": "already_exists", "field": "tag_name"}]


def test_delete_release_keeps_tag(standin, maintainer):
    repository = maintainer.get_repo("kindo/registry")
    repository.create_git_release("v1.0", "v1.0", "First release")

    repository.get_release("v1.0").delete_release()

    assert list(repository.get_releases()) == []
    assert "refs/tags/v1.0" in standin.repository("kindo/registry").refs
    with pytest.raises(GithubException) as caught:
        repository.get_release("v1.0")
    assert caught.value.status == 404


def test_draft_release_is_hidden_until_published(standin, maintainer, contributor):
    repository = maintainer.get_repo("kindo/registry")
    draft = repository.create_git_release("v2.0", "v2.0", "Draft", draft=True)

    assert list(contributor.get_repo("kindo/registry").get_releases()) == []
    assert "refs/tags/v2.0" not in standin.repository("kindo/registry").refs

    draft.update_release("v2.0", "Published", draft=False)

    assert [each.tag_name for each in contributor.get_repo("kindo/registry").get_releases()] == ["v2.0"]
    assert "refs/tags/v2.0" in standin.repository("kindo/registry").refs


@pytest.mark.parametrize(
    ("uploaded", "stored"),
    [
        ("kindo-foo-1.0.ki", "kindo-foo-1.0.ki"),
        ("kindo_foo 1.0.ki", "kindo_foo.1.0.ki"),
        ("app-(15-5).apk", "app-.15-5..apk"),
        ("pkg-1:2~3+4.ki", "pkg-1.2.3.4.ki"),
        (".config", "default.config"),
        ("foo.ki.", "foo.ki"),
        ("ü.ki", "default..ki"),
    ],
)
def test_rename_asset(uploaded, stored):
    assert rename_asset(uploaded) == stored


def test_upload_asset_renames_name(standin, maintainer):
    release, asset = create_release_with_asset(maintainer, name="kindo foo (1.0).ki", data=b"PK\x03\x04foo")

    assert asset.name == "kindo.foo..1.0..ki"
    assert asset.size == 7
    assert asset.state == "uploaded"
    assert asset.content_type == "application/zip"
    assert asset.uploader.login == "kindo"
    assert asset.browser_download_url == f"{standin.root_url}/kindo/registry/releases/download/v1.0/kindo.foo..1.0..ki"
    assert [each.name for each in release.get_assets()] == ["kindo.foo..1.0..ki"]


def test_upload_asset_from_file_path(maintainer, tmp_path):
    path = tmp_path / "kindo-foo-1.0.ki"
    path.write_bytes(b"PK\x03\x04from disk")
    release = maintainer.get_repo("kindo/registry").create_git_release("v1.0", "v1.0", "First release")

    asset = release.upload_asset(str(path))

    assert asset.name == "kindo-foo-1.0.ki"
    assert asset.size == len(b"PK\x03\x04from disk")


def test_duplicate_asset_name_returns_422(maintainer):
    release, _ = create_release_with_asset(maintainer, name="kindo foo.ki")

    with pytest.raises(GithubException) as caught:
        # Renamed to the same stored name as the first upload.
        release.upload_asset_from_memory(io.BytesIO(b"other"), 5, "kindo(foo.ki")

    assert caught.value.status == 422
    assert caught.value.data["message"] == "Validation Failed"
    assert caught.value.data["errors"] == [{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}]


def test_upload_without_push_access_returns_403(maintainer, contributor):
    release, _ = create_release_with_asset(maintainer)
    as_contributor = contributor.get_repo("kindo/registry").get_release(release.id)

    with pytest.raises(GithubException) as caught:
        as_contributor.upload_asset_from_memory(io.BytesIO(b"x"), 1, "x.ki")

    assert caught.value.status == 403


def test_download_returns_exact_bytes(standin, maintainer):
    data = bytes(range(256)) * 40
    _, asset = create_release_with_asset(maintainer, data=data)

    browser = requests.get(asset.browser_download_url, timeout=10)
    api_request = urllib.request.Request(asset.url, headers={"Accept": "application/octet-stream"})
    with urllib.request.urlopen(api_request, timeout=10) as api_response:
        api_bytes = api_response.read()
    _, _, chunks = maintainer.get_repo("kindo/registry").get_release_asset(asset.id).download_asset(chunk_size=1024)

    assert browser.status_code == 200
    assert browser.headers["Content-Type"] == "application/octet-stream"
    assert browser.content == data
    assert api_bytes == data
    assert b"".join(chunks) == data
    assert maintainer.get_repo("kindo/registry").get_release_asset(asset.id).download_count == 3


def test_download_of_missing_asset_returns_404(standin, maintainer):
    create_release_with_asset(maintainer)

    response = requests.get(f"{standin.root_url}/kindo/registry/releases/download/v1.0/missing.ki", timeout=10)

    assert response.status_code == 404


def test_delete_asset_frees_name(maintainer):
    release, asset = create_release_with_asset(maintainer, name="kindo-foo-1.0.ki")

    asset.delete_asset()
    again = release.upload_asset_from_memory(io.BytesIO(b"new"), 3, "kindo-foo-1.0.ki")

    assert again.name == "kindo-foo-1.0.ki"
    assert [each.id for each in release.get_assets()] == [again.id]


def test_asset_listing_is_paginated(standin):
    client = standin.client("kindo", per_page=2)
    release = client.get_repo("kindo/registry").create_git_release("v1.0", "v1.0", "First release")
    for number in range(5):
        release.upload_asset_from_memory(io.BytesIO(b"x"), 1, f"asset-{number}.ki")

    names = [asset.name for asset in release.get_assets()]

    assert names == [f"asset-{number}.ki" for number in range(5)]
    asset_pages = [entry.query.get("page") for entry in standin.request_log if entry.path.endswith("/assets")]
    assert asset_pages[-3:] == [None, "2", "3"]


# Limits -----------------------------------------------------------------------------------


def test_asset_limit_rejects_upload_past_max(standin, maintainer):
    standin.limit_assets_per_release(2)
    release = maintainer.get_repo("kindo/registry").create_git_release("v1.0", "v1.0", "First release")
    release.upload_asset_from_memory(io.BytesIO(b"1"), 1, "one.ki")
    release.upload_asset_from_memory(io.BytesIO(b"2"), 1, "two.ki")

    with pytest.raises(GithubException) as caught:
        release.upload_asset_from_memory(io.BytesIO(b"3"), 1, "three.ki")

    assert caught.value.status == 422
    assert caught.value.data["errors"][0]["message"] == "A release can have at most 2 assets."


def test_asset_limit_is_off_by_default(standin):
    assert standin.max_assets_per_release is None


def test_rate_limit_returns_403_with_retry_after(standin, maintainer):
    standin.limit_content_creation(max_requests=2, window_seconds=60)
    repository = maintainer.get_repo("kindo/registry")
    repository.create_file("index/a.yaml", "Add a", "a")
    repository.create_file("index/b.yaml", "Add b", "b")

    with pytest.raises(RateLimitExceededException) as caught:
        repository.create_file("index/c.yaml", "Add c", "c")

    assert caught.value.status == 403
    assert caught.value.headers["retry-after"] == "60"
    assert caught.value.data["message"].startswith("You have exceeded a secondary rate limit")
    # Reads do not count as content creation.
    assert repository.get_contents("index/a.yaml").decoded_content == b"a"


def test_rate_limit_window_expires(standin, maintainer):
    standin.limit_content_creation(max_requests=1, window_seconds=0.5)
    repository = maintainer.get_repo("kindo/registry")
    repository.create_file("index/a.yaml", "Add a", "a")
    with pytest.raises(RateLimitExceededException):
        repository.create_file("index/b.yaml", "Add b", "b")

    time.sleep(0.6)
    repository.create_file("index/b.yaml", "Add b", "b")

    assert sorted(standin.files("kindo/registry")) == ["index/README.md", "index/a.yaml", "index/b.yaml"]


def test_rate_limit_off_by_default(standin, maintainer):
    repository = maintainer.get_repo("kindo/registry")

    for number in range(100):
        repository.create_file(f"index/{number}.yaml", f"Add {number}", "x")

    assert standin.content_rate_limits == []
    assert len(standin.history("kindo/registry")) == 101


# Fault injection --------------------------------------------------------------------------


def test_injected_502_fails_matching_request_once(standin, maintainer):
    fault = standin.inject_fault("GET", r"/repos/kindo/registry$", "502")

    with pytest.raises(GithubException) as caught:
        maintainer.get_repo("kindo/registry")
    repository = maintainer.get_repo("kindo/registry")

    assert caught.value.status == 502
    assert repository.full_name == "kindo/registry"
    assert fault.hits == 1
    assert standin.faults == []


def test_injected_502_leaves_state_unchanged(standin, maintainer):
    repository = maintainer.get_repo("kindo/registry")
    standin.inject_fault("PUT", r"/contents/", "502")

    with pytest.raises(GithubException) as caught:
        repository.create_file("index/foo.yaml", "Add foo", FOO_YAML)

    assert caught.value.status == 502
    assert standin.files("kindo/registry") == {"index/README.md": README}


def test_pygithub_retry_recovers_from_502(standin):
    standin.inject_fault("GET", r"/repos/kindo/registry$", "502")
    client = standin.client("kindo", retry=GithubRetry(total=3))

    repository = client.get_repo("kindo/registry")

    assert repository.full_name == "kindo/registry"
    assert [entry.status for entry in standin.request_log[-2:]] == [502, 200]


def test_timeout_fault_exceeds_client_timeout(standin):
    standin.inject_fault("GET", r"/repos/kindo/registry$", "timeout", hold_seconds=2.0)
    client = standin.client("kindo", timeout=1)

    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.get_repo("kindo/registry")

    assert time.monotonic() - started < 2.0
    assert client.get_repo("kindo/registry").full_name == "kindo/registry"


def test_truncated_upload_leaves_starter_asset(standin, maintainer):
    release = maintainer.get_repo("kindo/registry").create_git_release("v1.0", "v1.0", "First release")
    standin.inject_fault("POST", r"/releases/\d+/assets$", "truncate_upload")
    data = b"0123456789"

    with pytest.raises(GithubException) as failed:
        release.upload_asset_from_memory(io.BytesIO(data), len(data), "kindo-foo-1.0.ki")
    [starter] = release.get_assets()
    with pytest.raises(GithubException) as retried:
        release.upload_asset_from_memory(io.BytesIO(data), len(data), "kindo-foo-1.0.ki")
    download = requests.get(starter.browser_download_url, timeout=10)

    assert failed.value.status == 502
    assert starter.name == "kindo-foo-1.0.ki"
    assert starter.state == "starter"
    assert starter.size == 5
    assert retried.value.status == 422
    assert download.status_code == 404

    starter.delete_asset()
    uploaded = release.upload_asset_from_memory(io.BytesIO(data), len(data), "kindo-foo-1.0.ki")
    assert uploaded.state == "uploaded"
    assert uploaded.size == 10


def test_unlimited_fault_repeats_until_cleared(standin, maintainer):
    standin.inject_fault("GET", r"/repos/kindo/registry$", "502", times=None)

    for _ in range(3):
        with pytest.raises(GithubException):
            maintainer.get_repo("kindo/registry")
    standin.clear_faults()

    assert maintainer.get_repo("kindo/registry").full_name == "kindo/registry"


def test_fault_skips_first_matching_requests(standin, maintainer):
    release = maintainer.get_repo("kindo/registry").create_git_release("v1.0", "v1.0", "First release")
    fault = standin.inject_fault("POST", r"/releases/\d+/assets$", "502", times=None, skip=1)

    first = release.upload_asset_from_memory(io.BytesIO(b"1"), 1, "one.ki")
    with pytest.raises(GithubException) as caught:
        release.upload_asset_from_memory(io.BytesIO(b"2"), 1, "two.ki")

    assert first.state == "uploaded"
    assert caught.value.status == 502
    assert fault.hits == 1
    assert [asset.name for asset in release.get_assets()] == ["one.ki"]


def test_inject_fault_rejects_invalid_arguments(standin):
    with pytest.raises(ValueError, match="Unknown fault kind"):
        standin.inject_fault("GET", r"/", "503")
    with pytest.raises(ValueError, match="applies to POST uploads"):
        standin.inject_fault("GET", r"/", "truncate_upload")
    with pytest.raises(ValueError, match="hold_seconds"):
        standin.inject_fault("GET", r"/", "timeout", hold_seconds=600)
    with pytest.raises(ValueError, match="skip"):
        standin.inject_fault("GET", r"/", "502", skip=-1)
