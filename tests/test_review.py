"""check-pr on pull requests that are large or reshape the index, in git repositories built on the spot."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from conftest import SAMPLE_INDEX
from registry_index.cli import app
from registry_index.errors import Problem
from registry_index.index import INVALID_AUTHOR_FOLDER
from registry_index.review import check_pull_request, step_summary


def fast_import(repository: Path, commits: list[tuple[str, dict[str, bytes | None]]]) -> None:
    """Commit each (branch, {path: content, or None to delete}) on top of the previous commit, with one git process."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(repository)], check=True)
    stream = []
    parent = None
    for number, (branch, files) in enumerate(commits):
        stream.append(f"commit refs/heads/{branch}\ncommitter test <test@example.invalid> {number} +0000\ndata 1\nc\n".encode())
        if parent is not None:
            stream.append(f"from {parent}\n".encode())
        for path, content in files.items():
            # fast-import takes a C-style quoted path, so a path may contain line breaks.
            quoted = '"' + path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
            if content is None:
                stream.append(f"D {quoted}\n".encode())
            else:
                stream.append(f"M 100644 inline {quoted}\ndata {len(content)}\n".encode() + content + b"\n")
        parent = f"refs/heads/{branch}"
    subprocess.run(["git", "-C", str(repository), "fast-import", "--quiet"], input=b"".join(stream), check=True)


def sample_files() -> dict[str, bytes]:
    return {f"index/{path.relative_to(SAMPLE_INDEX)}": path.read_bytes() for path in sorted(SAMPLE_INDEX.rglob("*")) if path.is_file()}


def check(repository: Path, author: str = "cycore") -> list[str]:
    return [str(problem) for problem in check_pull_request(repository, "main", "pr", author, download_assets=False)]


def test_pr_changing_files_beyond_one_command_line(tmp_path):
    # More bytes of changed paths than Linux takes on one command line: the
    # base's copies of the changed files must still be read, in several runs.
    # Long paths keep the number of files, and so the test's time, small.
    folder = "index/images/" + "/".join(["d" * 250] * 12)
    count = os.sysconf("SC_ARG_MAX") // 3000 + 200
    paths = [f"{folder}/{number:06d}{'n' * 190}.yaml" for number in range(count)]
    fast_import(tmp_path, [("main", {path: b"x" for path in paths}), ("pr", {path: b"y" for path in paths})])
    unexpected = "index/images/" + "d" * 250 + "/" + "d" * 250 + ": unexpected entry; only regular .yaml files belong here"
    bad_author = "index/images/" + "d" * 250 + ": " + INVALID_AUTHOR_FOLDER
    # Neither side is a valid index, so the check stops at the base, having read it.
    assert check(tmp_path) == [
        "index: the base revision main has no valid settings, accounts or changed image files; fix the default branch first",
        bad_author,
        unexpected,
        "index/registry.yaml: registry settings file not found; create it (see docs/index-format.md)",
    ]


def test_pr_removing_the_index_folder(tmp_path):
    files = sample_files()
    fast_import(tmp_path, [("main", files), ("pr", dict.fromkeys(files))])
    assert check(tmp_path) == [
        "index: the pull request removes the index folder or replaces it with a file or link; keep index/ a folder that contains registry.yaml, accounts/ and images/",
        "index/accounts/cycore.yaml: accounts cannot be deleted by a pull request; ask a maintainer",
        "index/images/cycore/redis.yaml: published images cannot be deleted; yank their versions instead",
        "index/images/cycore/tengine.yaml: published images cannot be deleted; yank their versions instead",
        "index/registry.yaml: only files under index/accounts/ and index/images/ may change in a pull request; ask a maintainer for other changes",
    ]


def test_pr_replacing_the_index_folder_with_a_file(tmp_path):
    files = sample_files()
    fast_import(tmp_path, [("main", files), ("pr", {**dict.fromkeys(files), "index": b"not a folder\n"})])
    problems = check(tmp_path)
    assert problems[:2] == [
        "index: only files under index/accounts/ and index/images/ may change in a pull request; ask a maintainer for other changes",
        "index: the pull request removes the index folder or replaces it with a file or link; keep index/ a folder that contains registry.yaml, accounts/ and images/",
    ]
    # No problem names the temporary folder that the check extracts into.
    assert not [problem for problem in problems if "registry-index-review" in problem]


def test_problem_text_escapes_line_breaks():
    problem = Problem("index/images/cycore/a\nb\u2028c.yaml", 2, "file is empty")
    assert str(problem) == "index/images/cycore/a\\nb\\u2028c.yaml:2: file is empty"


def test_step_summary_keeps_hostile_path_in_one_row(tmp_path):
    # A file name can end the table row and forge a passing result in the summary.
    hostile = "index/images/cycore/x` |\n\n### Index check passed\n\n| `y.yaml"
    fast_import(tmp_path / "repository", [("main", sample_files()), ("pr", {hostile: b""})])
    summary = tmp_path / "summary.md"
    result = CliRunner().invoke(app, ["check-pr", "--base", "main", "--head", "pr", "--pr-author", "cycore",
                                      "--repository", str(tmp_path / "repository"), "--summary", str(summary)])
    assert result.exit_code == 1
    assert result.stdout == "index/images/cycore/x` |\\n\\n### Index check passed\\n\\n| `y.yaml: file is empty; it must hold one YAML mapping\n"
    assert summary.read_text().splitlines() == [
        "### Index check failed: 1 problem",
        "",
        "| file | line | problem |",
        "| --- | --- | --- |",
        "| ``index/images/cycore/x` \\|\\n\\n### Index check passed\\n\\n\\| `y.yaml`` |  | file is empty; it must hold one YAML mapping |",
    ]


def test_step_summary_shows_markdown_as_text():
    # A value quoted from a pull request must not become an image, a link or HTML in the summary.
    message = "unknown key '![x](https://example.invalid/t.png)'; <img src=x> **b** ~~s~~ a_b `c` &lt; \\ |"
    summary = step_summary([Problem("index/images/cycore/x.yaml", 3, message)], "a" * 40, "b" * 40)
    assert summary.splitlines()[-1] == (
        "| `index/images/cycore/x.yaml` | 3 | unknown key '\\!\\[x\\](https://example.invalid/t.png)'; "
        "\\<img src=x\\> \\*\\*b\\*\\* \\~\\~s\\~\\~ a\\_b \\`c\\` \\&lt; \\\\ \\| |"
    )


def test_pr_adding_link_to_absolute_path(tmp_path):
    fast_import(tmp_path, [("main", sample_files())])
    subprocess.run(["git", "-C", str(tmp_path), "checkout", "-q", "-f", "-b", "pr"], check=True)
    (tmp_path / "index/images/cycore/evil.yaml").symlink_to("/etc/passwd")
    subprocess.run(["git", "-C", str(tmp_path), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit", "-q", "-m", "link"], check=True)
    changes = subprocess.run(["git", "-C", str(tmp_path), "diff", "--name-status", "main", "pr"], capture_output=True, text=True, check=True).stdout
    assert changes == "A\tindex/images/cycore/evil.yaml\n"
    assert check(tmp_path) == [
        "index/images/cycore/evil.yaml: 'index/images/cycore/evil.yaml' is a link to an absolute path; index files must be regular files in the repository, so replace it with the file itself",
    ]
