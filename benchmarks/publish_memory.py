"""Measure the memory `publish` needs before it talks to GitHub, on a synthetic registry.

Run from the repository root:

    python benchmarks/publish_memory.py --images 100000 --versions 10 --workdir /dev/shm

`publish` validates the index and gathers, for every version, what an upload
needs. This compares two ways of doing that, each in its own process so that
peak RSS is that step's alone: loading the whole index (`load_index`, what
`publish` did before) and reading it one image at a time while keeping a few
strings per version (`check_index` with `publishing.uploads_of`, what
`publish` does now). The process that starts them loads neither.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent

_WRITE_CODE = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
import synthetic_registry
synthetic_registry.write_registry(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
"""

# Both ways import what `publish` imports (PyGithub and requests, about
# 27 MiB) before the clock starts, so the figures differ only by the reading.
_STEP_CODE = """
import json, resource, sys, time
from pathlib import Path
from registry_index.index import check_index, load_index
from registry_index.publishing import uploads_of
root, way = Path(sys.argv[1]), sys.argv[2]
started = time.monotonic()
if way == "whole index":
    index = load_index(root)
    versions = sum(len(image.versions) for image in index.images.values())
else:
    uploads = []
    check_index(root, lambda image: uploads.extend(uploads_of(image)))
    versions = len(uploads)
print(json.dumps({"seconds": time.monotonic() - started, "versions": versions,
                  "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

WAYS = ["whole index", "one image at a time"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000, help="number of images (default 10000)")
    parser.add_argument("--versions", type=int, default=10, help="versions per image (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic registry (default 1)")
    parser.add_argument("--workdir", type=Path, default=None, help="folder for the synthetic index (default: the system's temporary folder)")
    arguments = parser.parse_args(argv)
    if arguments.images < 1 or arguments.versions < 1:
        parser.error(f"--images and --versions must be at least 1, not {arguments.images} and {arguments.versions}")
    if arguments.workdir is not None:
        try:
            arguments.workdir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            parser.error(f"cannot create --workdir {arguments.workdir}: {error.strerror}; give a writable folder")
    try:
        workdir = Path(tempfile.mkdtemp(prefix="publish-memory-", dir=arguments.workdir))
    except OSError as error:
        parser.error(f"cannot create a folder in --workdir {arguments.workdir}: {error.strerror}; give a writable folder")
    try:
        index = workdir / "index"
        subprocess.run(
            [sys.executable, "-c", _WRITE_CODE, str(REPOSITORY / "benchmarks"), str(index),
             str(arguments.images), str(arguments.versions), str(arguments.seed)],
            check=True,
        )
        print(f"registry: {arguments.images:,} images x {arguments.versions} versions, seed {arguments.seed}")
        print(f"machine: {platform.processor() or platform.machine()}; Python {platform.python_version()}; work folder {workdir}")
        print()
        print(f"| {'way':<20} | {'versions':>10} | {'wall s':>7} | {'peak RSS MiB':>12} |")
        print(f"|{'-' * 22}|{'-' * 12}|{'-' * 9}|{'-' * 14}|")
        for way in WAYS:
            result = subprocess.run([sys.executable, "-c", _STEP_CODE, str(index), way], check=True, capture_output=True, text=True, cwd=REPOSITORY)
            step = json.loads(result.stdout)
            print(f"| {way:<20} | {step['versions']:>10,} | {step['seconds']:>7.1f} | {step['peak_kib'] / 1024:>12.1f} |")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
