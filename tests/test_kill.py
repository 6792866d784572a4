"""Atomic writes, tested by killing: SIGKILL `build` and `add` at random moments.

After every kill the site folder is the old complete site or the new complete
one, and the image YAML is the old file or the new one, never a mix. The kill
moments come from a fixed seed, as fractions of durations measured in the same
run, so the test adapts to the machine's speed.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from conftest import TENGINE_KI
from registry_index.editing import render_image_yaml
from registry_index.index import load_index
from registry_index.model import Image, Version
from registry_index.site import GENERATION_FILE
from synthetic import write_index

CLI = [sys.executable, "-m", "registry_index", "-q"]
TRIALS = 20
SEED = 20261204
# Kills are aimed at the write phase by watching for the staging folder. So a
# few hundred images give a write phase long enough to hit, and trials stay short.
BUILD_IMAGES = 300
POLL_SECONDS = 0.002


def tree_digest(folder: Path) -> dict[str, str] | None:
    """Return every entry under `folder` (relative path to sha256, or "folder"); None when `folder` is absent."""
    if not folder.exists():
        return None
    digest = {}
    for directory, folders, files in os.walk(folder):
        for name in folders:
            digest[os.path.relpath(os.path.join(directory, name), folder)] = "folder"
        for name in files:
            if name == GENERATION_FILE:
                continue  # a token that differs between any two builds
            path = os.path.join(directory, name)
            with open(path, "rb") as stream:
                digest[os.path.relpath(path, folder)] = hashlib.sha256(stream.read()).hexdigest()
    return digest


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def wait_for_entry(process: subprocess.Popen, folder: Path, pattern: re.Pattern[str], known: set[str]) -> float | None:
    """Poll until an entry matching `pattern` and not in `known` appears in `folder`; return when, or None if the process ended first."""
    while process.poll() is None:
        if any(pattern.fullmatch(name) and name not in known for name in os.listdir(folder)):
            return time.monotonic()
        time.sleep(POLL_SECONDS)
    return None


def kill_after(process: subprocess.Popen, delay: float) -> bool:
    """SIGKILL `process` after `delay` seconds; return True when it was still running at that moment."""
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    running = process.poll() is None
    process.kill()
    process.wait(timeout=60)
    return running


STAGING = re.compile(r"\.site\.staging-.*")


def test_build_killed_leaves_old_or_new_site(tmp_path):
    old_index = write_index(tmp_path / "old", images=BUILD_IMAGES, seed=1)
    new_index = tmp_path / "new"
    shutil.copytree(old_index, new_index)
    write_index(tmp_path / "extra", images=40, seed=2)
    shutil.copytree(tmp_path / "extra" / "images", new_index / "images", dirs_exist_ok=True)

    # Reference builds, timed: start to staging folder (loading), staging to exit (writing).
    references = {}
    loading, writing = {}, {}
    for label, index in (("old", old_index), ("new", new_index)):
        out = tmp_path / f"reference-{label}" / "site"
        out.parent.mkdir()
        started = time.monotonic()
        process = subprocess.Popen([*CLI, "build", "--index", str(index), "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        staged = wait_for_entry(process, out.parent, STAGING, set())
        assert process.wait(timeout=300) == 0, process.stderr.read()
        finished = time.monotonic()
        assert staged is not None, "the build ended before its staging folder was seen"
        loading[label], writing[label] = staged - started, finished - staged
        references[label] = tree_digest(out)
    assert references["old"] != references["new"]

    rng = random.Random(SEED)
    site = tmp_path / "work" / "site"
    shutil.copytree(tmp_path / "reference-old" / "site", site)
    state = "old"
    outcomes = []
    for trial in range(TRIALS):
        target = "new" if state == "old" else "old"
        index = new_index if target == "new" else old_index
        known = set(os.listdir(site.parent))
        started = time.monotonic()
        process = subprocess.Popen([*CLI, "build", "--index", str(index), "--out", str(site)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if rng.random() < 0.2:
            # While the index loads, before anything is written.
            killed_running = kill_after(process, rng.uniform(0, loading[target]))
        else:
            # While the staging folder is written, swapped in, and the old site removed.
            staged = wait_for_entry(process, site.parent, STAGING, known)
            delay = rng.uniform(0, 1.4 * writing[target])
            killed_running = kill_after(process, delay) if staged is not None else False
        found = tree_digest(site)
        matches = [label for label, digest in references.items() if digest == found]
        assert matches, (
            f"trial {trial}: after a kill {time.monotonic() - started:.2f} s into a build of the {target} index, "
            f"the site is neither the old nor the new one ({len(found or {})} entries)"
        )
        state = matches[0]
        outcomes.append((killed_running, state))

    # Enough kills hit a running build for the test to mean something. Whether
    # some also land after the swap depends on the machine's load, so that is
    # not required.
    assert sum(1 for running, _ in outcomes if running) >= TRIALS // 4

    # A complete build afterwards removes what the killed builds left beside
    # the site, and keeps its spare copy and state for the next build.
    assert run_cli("build", "--index", str(new_index), "--out", str(site)).returncode == 0
    assert tree_digest(site) == references["new"]
    # The spare copy may be gone when the last killed build was removing it: a
    # build that finds nothing changed does not make a new one.
    assert sorted(set(os.listdir(site.parent)) - {".site.spare"}) == [".site.lock", ".site.state", "site"]


def canonical_tengine(versions: int) -> Image:
    """Return cycore/tengine with `versions` older versions, so its YAML is large enough to take time to write."""
    entries = [
        Version(
            version=f"2.0.{number}", file=f"cycore-tengine-2.0.{number}.ki", size=2_000_000 + number,
            sha256=hashlib.sha256(str(number).encode()).hexdigest(), buildtime="2026-01-01 00:00:00",
            pusher="cycore", platform="linux", pushed="2026-01-01T00:00:00Z",
        )
        for number in range(versions)
    ]
    return Image("cycore", "tengine", entries)


PUSHED = re.compile(r'pushed: "[0-9T:Z-]+"')
TEMPORARY = re.compile(r"\.tengine\.yaml\..*\.tmp")


def test_add_killed_leaves_old_or_new_yaml(tmp_path):
    index = write_index(tmp_path / "index", images=50, seed=3)
    image_file = index / "images/cycore/tengine.yaml"
    old = render_image_yaml(canonical_tengine(1000)).encode()
    assert len(old) < 1024 * 1024
    image_file.write_bytes(old)

    # The reference run: how long `add` takes, and what it writes.
    started = time.monotonic()
    added = run_cli("add", str(TENGINE_KI), "--index", str(index))
    duration = time.monotonic() - started
    assert added.returncode == 0, added.stderr
    new = image_file.read_bytes()
    assert new.startswith(old)
    assert new.count(b"\n  - version: ") == 1001
    image_file.write_bytes(old)

    rng = random.Random(SEED)
    folder = image_file.parent
    outcomes = []
    for trial in range(TRIALS):
        process = subprocess.Popen([*CLI, "add", str(TENGINE_KI), "--index", str(index)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if trial % 2:
            # Kill as soon as the temporary file beside the YAML appears: during the write.
            known = set(os.listdir(folder))
            written = wait_for_entry(process, folder, TEMPORARY, known)
            killed_running = kill_after(process, rng.uniform(0, 0.005)) if written is not None else False
        else:
            # Up to twice the reference duration, so that some runs finish even on a busier machine.
            killed_running = kill_after(process, rng.uniform(0.3, 2.0) * duration)
        found = image_file.read_bytes()
        if found == old:
            outcomes.append((killed_running, "old"))
            continue
        assert PUSHED.sub("pushed", found.decode()) == PUSHED.sub("pushed", new.decode()), (
            f"trial {trial}: {image_file} is neither the old nor the new file ({len(found)} bytes)"
        )
        outcomes.append((killed_running, "new"))
        image_file.write_bytes(old)

    assert {"old", "new"} <= {state for _, state in outcomes}
    leftovers = [name for name in os.listdir(folder) if name.startswith(".")]
    assert all(TEMPORARY.fullmatch(name) for name in leftovers), leftovers

    # Temporary files that killed runs left behind are dotfiles, which the index ignores.
    assert load_index(index).image("cycore", "tengine").find("2.1.1") is None
    validated = run_cli("validate", "--index", str(index))
    assert (validated.returncode, validated.stdout) == (0, "")
