"""Measure build, rebuild, validate and search transfer on a synthetic registry, beside dumb-pypi.

Run from the repository root, with dumb-pypi installed (`pip install -e '.[bench]'`):

    python benchmarks/scale.py --images 10000 --versions 10

It writes a synthetic index (see benchmarks/synthetic_registry.py), then times each
step as a separate process so that peak RSS is that step's alone, and prints
one table. dumb-pypi gets the same number of packages and versions, as wheel
file names, in the same run. `--workdir` sets where the index and the sites
go. Every version is one file or more, so the file system there decides much
of the result.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import json
import os
import platform
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))
sys.path.insert(0, str(REPOSITORY / "benchmarks"))

from registry_index import names, search  # noqa: E402
from registry_index.model import Version  # noqa: E402
from options import add_registry_options, make_workdir  # noqa: E402
from synthetic_registry import write_image, write_registry  # noqa: E402

# Static hosts compress JSON on the fly; level 6 is zlib's default. GitHub
# Pages does not document its level.
GZIP_LEVEL = 6
SAMPLED_NAMES = 500


@dataclass
class Step:
    """One timed command: wall time, peak RSS, and what it changed in its output folder."""

    label: str
    seconds: float
    peak_rss: int  # bytes
    files_written: int | None = None
    bytes_written: int | None = None
    note: str = ""


@dataclass
class Transfer:
    """Search cost over a set of queries, as a static client fetches the nodes."""

    label: str
    queries: int
    gets: list[int] = field(default_factory=list)
    transfer: list[int] = field(default_factory=list)  # gzip bytes per query
    mismatches: list[str] = field(default_factory=list)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Linux carries a process's peak RSS across fork and exec, so a command
# started from this process, which contains the whole synthetic registry, would
# report at least this process's RSS. Commands are started from a small
# launcher process instead, started before anything large is loaded. Its own
# RSS (about 10 MiB in the runs here) is the floor of every figure.
_LAUNCHER_CODE = """
import json, os, subprocess, sys, time
for line in sys.stdin:
    command, cwd = json.loads(line)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd)
    errors = process.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    print(json.dumps([seconds, usage.ru_maxrss, os.waitstatus_to_exitcode(status), errors[-2000:]]), flush=True)
"""


class Launcher:
    """A small process that runs commands and reports their wall time and peak RSS."""

    def __init__(self):
        # Commands run as an installed package does, with its compiled .pyc
        # files: PYTHONDONTWRITEBYTECODE, set on some machines, would make every
        # step compile the package again.
        environment = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
        self.process = subprocess.Popen([sys.executable, "-c", _LAUNCHER_CODE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environment)

    def run(self, label: str, command: list[str], note: str = "") -> Step:
        """Run `command`, raise if it fails, and return its wall time and peak RSS."""
        print(f"running: {label}", file=sys.stderr, flush=True)
        self.process.stdin.write(json.dumps([command, str(REPOSITORY)]) + "\n")
        self.process.stdin.flush()
        seconds, max_rss_kib, code, errors = json.loads(self.process.stdout.readline())
        if code != 0:
            raise RuntimeError(f"{label} failed with exit code {code}: {' '.join(command)}\n{errors}")
        print(f"  {seconds:.2f} s, peak RSS {max_rss_kib / 1024:,.1f} MiB", file=sys.stderr, flush=True)
        return Step(label, seconds, max_rss_kib * 1024, note=note)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def age(index: Path) -> None:
    """Date every index file an hour back, as a checkout is between two builds that are not seconds apart."""
    past = time.time() - 3600
    for directory, _, file_names in os.walk(index):
        for file_name in file_names:
            os.utime(os.path.join(directory, file_name), (past, past))


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Return relative path -> (inode, size) of every file under `folder`."""
    files = {}
    if not folder.exists():
        return files
    root = str(folder)
    for directory, _, file_names in os.walk(root):
        for file_name in file_names:
            path = os.path.join(directory, file_name)
            status = os.stat(path)
            files[os.path.relpath(path, root)] = (status.st_ino, status.st_size)
    return files


def with_changes(step: Step, before: dict, after: dict) -> Step:
    """Fill in the files a build wrote: those that are new files (new inodes) in its output."""
    written = [size for path, (inode, size) in after.items() if before.get(path, (None, 0))[0] != inode]
    return replace(step, files_written=len(written), bytes_written=sum(written))


def registry_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "registry_index", "-q", *arguments]


def add_one_version(index: Path, images: list) -> str:
    """Append a new version to one image file; return its unique name."""
    image = images[len(images) // 2]
    base = image.versions[-1]
    version = Version(**{**base.__dict__, "version": "99.0.0", "file": f"{image.author}-{image.name}-99.0.0.ki".lower(), "line": 0})
    image.versions.append(version)
    write_image(index, image)
    return names.unique_name(image.author, image.name, version.version)


# dumb-pypi side -------------------------------------------------------------

def wheel_version(version: str) -> str:
    """Turn a synthetic version into a PEP 440 one: `v1.2` -> `1.2`, `2.0.0-rc1` -> `2.0.0rc1`."""
    return version.lstrip("v").replace("-", "")


def package_lines(images: list) -> list[str]:
    """Return one wheel file name per version: the same packages and versions as the registry."""
    lines = []
    for image in images:
        distribution = f"{image.author}_{image.name}".replace("-", "_").lower()
        for version in image.versions:
            lines.append(f"{distribution}-{wheel_version(version.version)}-py3-none-any.whl")
    return lines


def dumb_pypi_command(package_list: Path, output: Path, previous: Path | None = None) -> list[str]:
    command = [
        sys.executable, "-m", "dumb_pypi.main", "--package-list", str(package_list),
        "--output-dir", str(output), "--packages-url", "https://files.example/packages/",
        "--no-generate-timestamp",
    ]
    if previous is not None:
        command += ["--previous-package-list", str(previous)]
    return command


# search ----------------------------------------------------------------------

class StaticClient:
    """Reads search nodes from a built site as a browser would from a static host: one GET per file."""

    def __init__(self, site: Path):
        self.site = site
        self.not_found = len(gzip.compress((site / "404.html").read_bytes(), GZIP_LEVEL))
        self.cache: dict[str, tuple[dict | None, int]] = {}

    def get(self, key: str) -> tuple[dict | None, int]:
        if key not in self.cache:
            path = self.site / search.node_path(key)
            try:
                body = path.read_bytes()
            except FileNotFoundError:
                self.cache[key] = (None, self.not_found)
            else:
                self.cache[key] = (json.loads(body), len(gzip.compress(body, GZIP_LEVEL)))
        return self.cache[key]

    def search(self, query: str) -> tuple[list[str], int, int, int]:
        """Return (unique names shown, total, GETs, gzip bytes) for `query`."""
        lowered = search.normalize_query(query)
        if lowered is None:
            return [], 0, 0, 0
        first, size = self.get(lowered[:search.PREFIX_LENGTH])
        gets, transfer, node = 1, size, first
        second = search.plan_lookup(lowered, first)
        if second is not None:
            node, size = self.get(second)
            gets, transfer = 2, transfer + size
        images, total, _ = search.answer(lowered, node)
        return search.unique_names(images), total, gets, transfer


def query_set(unique_names: list[str], seed: int) -> dict[str, list[str]]:
    """Return the benchmark's queries by kind.

    Every prefix of 3 or more characters of SAMPLED_NAMES unique names drawn
    with `seed`; their 2-character prefixes; and every 1-character query of
    the search alphabet.
    """
    rng = random.Random(seed)
    sampled = rng.sample(unique_names, min(SAMPLED_NAMES, len(unique_names)))
    three = sorted({name[:3].lower() for name in sampled})
    longer = sorted({name[:length].lower() for name in sampled for length in range(4, len(name) + 1)})
    return {
        "1 character": sorted(search.ALPHABET),
        "2 characters": sorted({name[:2].lower() for name in sampled}),
        "3-character prefixes": three,
        "longer prefixes": longer,
    }


def measure_search(site: Path, ordered_names: list[str], queries: dict[str, list[str]]) -> list[Transfer]:
    """Run every query through the static client and compare it with a brute-force substring match."""
    client = StaticClient(site)
    matcher = BruteForce(ordered_names)
    rows = []
    for label, texts in queries.items():
        row = Transfer(label, len(texts))
        for query in texts:
            shown, total, gets, transfer = client.search(query)
            row.gets.append(gets)
            row.transfer.append(transfer)
            expected = matcher.matches(query)
            listed = expected[:search.SHOWN] if len(expected) > search.LIMIT else expected
            if total != len(expected) or shown != [ordered_names[number] for number in listed]:
                row.mismatches.append(query)
        rows.append(row)
    return rows


class BruteForce:
    """Finds the names that contain a query by scanning all of them, with no index."""

    def __init__(self, ordered_names: list[str]):
        self.joined = "\n".join(name.lower() for name in ordered_names)
        self.starts = [0]
        for name in ordered_names:
            self.starts.append(self.starts[-1] + len(name) + 1)

    def matches(self, query: str) -> list[int]:
        """Return the numbers of the names that contain `query`, in search order."""
        found: list[int] = []
        # Matches never span two names, since no query contains a newline, so
        # every name that contains the query has a match of its own.
        for match in re.finditer(re.escape(query.lower()), self.joined):
            number = bisect.bisect_right(self.starts, match.start()) - 1
            if not found or found[-1] != number:
                found.append(number)
        return found


def percentile(values: list[int], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# table -----------------------------------------------------------------------

def mib(value: int | None) -> str:
    return "" if value is None else f"{value / 2**20:,.1f}"


def print_table(meta: list[str], steps: list[Step], site: tuple[int, int, int | None, int | None], transfers: list[Transfer], ratios: list[str]) -> None:
    for line in meta:
        print(line)
    print()
    print(f"| {'step':<44} | {'wall s':>8} | {'peak RSS MiB':>12} | {'files written':>13} | {'MiB written':>11} |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 14}|{'-' * 15}|{'-' * 13}|")
    for step in steps:
        files = "" if step.files_written is None else f"{step.files_written:,}"
        label = step.label + (f" ({step.note})" if step.note else "")
        print(f"| {label:<44} | {step.seconds:>8.2f} | {mib(step.peak_rss):>12} | {files:>13} | {mib(step.bytes_written):>11} |")
    print()
    files, size, tar, gzip_tar = site
    archive = "" if tar is None else f"; its tar: {tar / 2**20:,.1f} MiB, gzip-compressed: {gzip_tar / 2**20:,.1f} MiB"
    print(f"site: {files:,} files, {size / 2**20:,.1f} MiB of file content{archive}")
    for line in ratios:
        print(line)
    print()
    print(f"| {'search queries':<22} | {'count':>6} | {'GETs max':>8} | {'gzip KiB median':>15} | {'p99':>7} | {'max':>7} | {'not equal to brute force':>24} |")
    print(f"|{'-' * 24}|{'-' * 8}|{'-' * 10}|{'-' * 17}|{'-' * 9}|{'-' * 9}|{'-' * 26}|")
    every = Transfer("all", 0)
    for row in transfers:
        every.queries += row.queries
        every.gets += row.gets
        every.transfer += row.transfer
        every.mismatches += row.mismatches
    for row in [*transfers, every]:
        print(
            f"| {row.label:<22} | {row.queries:>6,} | {max(row.gets):>8} | {statistics.median(row.transfer) / 1024:>15.1f} "
            f"| {percentile(row.transfer, 0.99) / 1024:>7.1f} | {max(row.transfer) / 1024:>7.1f} | {len(row.mismatches):>24} |"
        )
    if every.mismatches:
        print(f"queries whose answer differs from the brute-force match: {', '.join(every.mismatches[:20])}")


def site_totals(site: Path, archive: bool) -> tuple[int, int, int | None, int | None]:
    """Return (files, bytes of file content, bytes of its tar, bytes of its gzip-compressed tar); both tar sizes are None without `archive`.

    The tar is made as GitHub's upload-pages-artifact action makes it
    (`tar --dereference --hard-dereference -cf`), uncompressed: a 512-byte
    header per file and folder, and content padded to 512 bytes.
    """
    files = snapshot(site)
    content = sum(size for _, size in files.values())
    if not archive:
        return len(files), content, None, None
    tar = f"tar --dereference --hard-dereference -C {shlex.quote(str(site))} -cf - ."
    plain = subprocess.run(f"{tar} | wc -c", shell=True, check=True, capture_output=True, text=True)
    compressed = subprocess.run(f"{tar} | gzip -{GZIP_LEVEL} | wc -c", shell=True, check=True, capture_output=True, text=True)
    return len(files), content, int(plain.stdout), int(compressed.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_registry_options(
        parser,
        seed_help="seed of the synthetic registry and the query sample (default 1)",
        workdir_help="folder for the index and the sites (default: a new temporary folder, removed at the end)",
    )
    parser.add_argument("--no-dumb-pypi", action="store_true", help="skip dumb-pypi")
    parser.add_argument("--no-archive", action="store_true", help="skip measuring the tar and gzip-compressed tar of the site, which takes minutes for large sites")
    arguments = parser.parse_args(argv)
    workdir = make_workdir(parser, arguments, "registry-bench-")
    launcher = Launcher()
    try:
        return benchmark(arguments, workdir, launcher.run)
    finally:
        launcher.close()
        shutil.rmtree(workdir, ignore_errors=True)


def benchmark(arguments: argparse.Namespace, workdir: Path, run) -> int:
    index, out = workdir / "index", workdir / "site"
    started = time.perf_counter()
    registry = write_registry(index, arguments.images, arguments.versions, arguments.seed)
    age(index)
    generated = time.perf_counter() - started
    versions = sum(len(image.versions) for image in registry.images)
    meta = [
        f"registry: {arguments.images:,} images x {arguments.versions} versions = {versions:,} versions, seed {arguments.seed} (written in {generated:.1f} s)",
        f"machine: {cpu_model()}, {os.cpu_count()} logical cores; Python {platform.python_version()}; work folder {workdir}",
        f"load average at the start (1, 5, 15 min): {', '.join(f'{value:.2f}' for value in os.getloadavg())}",
    ]

    # Interpreter start and imports, which every step below also pays.
    steps = [run("start-up only: registry-index --help", registry_command("--help"))]
    build = registry_command("build", "--index", str(index), "--out", str(out))
    steps.append(with_changes(run("full build, clean output folder", build), {}, snapshot(out)))
    before = snapshot(out)
    steps.append(with_changes(run("rebuild, nothing changed", build), before, snapshot(out)))
    previous_packages = package_lines(registry.images)
    add_one_version(index, registry.images)
    before = snapshot(out)
    steps.append(with_changes(run("rebuild after one added version", build), before, snapshot(out)))
    steps.append(run("validate the whole index", registry_command("validate", "--index", str(index))))

    ratios = []
    if not arguments.no_dumb_pypi:
        ratios = compare_with_dumb_pypi(workdir, previous_packages, package_lines(registry.images), steps, run)

    ordered = [names.unique_name(image.author, image.name, version.version) for image in sorted(registry.images, key=lambda image: (image.author.lower(), image.name.lower())) for version in sorted(image.versions, key=lambda version: names.version_key(version.version), reverse=True)]
    transfers = measure_search(out, ordered, query_set(ordered, arguments.seed))
    print_table(meta, steps, site_totals(out, not arguments.no_archive), transfers, ratios)
    return 1 if any(row.mismatches for row in transfers) else 0


def compare_with_dumb_pypi(workdir: Path, previous_lines: list[str], current_lines: list[str], steps: list[Step], run) -> list[str]:
    """Time dumb-pypi's full build of `previous_lines` and its rebuild to `current_lines`; return our time over its time."""
    current, previous = workdir / "packages.txt", workdir / "packages-previous.txt"
    previous.write_text("\n".join(previous_lines) + "\n")
    current.write_text("\n".join(current_lines) + "\n")
    output = workdir / "dumb-pypi"
    full = run("dumb-pypi full build", dumb_pypi_command(previous, output))
    steps.append(with_changes(full, {}, snapshot(output)))
    before = snapshot(output)
    incremental = run("dumb-pypi rebuild after one added version", dumb_pypi_command(current, output, previous))
    steps.append(with_changes(incremental, before, snapshot(output)))
    by_label = {step.label: step.seconds for step in steps}
    ours_full, ours_incremental = by_label["full build, clean output folder"], by_label["rebuild after one added version"]
    return [
        f"ours / dumb-pypi, full build: {ours_full:.2f} s / {full.seconds:.2f} s = {ours_full / full.seconds:.3f}",
        f"ours / dumb-pypi, rebuild after one added version: {ours_incremental:.2f} s / {incremental.seconds:.2f} s = {ours_incremental / incremental.seconds:.3f}",
    ]


if __name__ == "__main__":
    sys.exit(main())
