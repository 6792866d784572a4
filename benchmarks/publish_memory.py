"""Measure the memory `publish` needs before it talks to GitHub, on a synthetic registry.

Run from the repository root:

    python benchmarks/publish_memory.py --images 100000 --versions 10 --workdir /dev/shm

`publish` validates the index and gathers, for every version, what an upload
needs. This compares two ways of doing that. The old way loads the whole index
(`load_index`). The new way reads it one image at a time and keeps a few
strings per version (`check_index` with `publishing.uploads_of`). Each runs in
its own process, so that peak RSS is that step's alone, and the process that
starts them loads no index.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY / "benchmarks"))

from options import add_registry_options, make_workdir  # noqa: E402

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
    add_registry_options(
        parser,
        seed_help="seed of the synthetic registry (default 1)",
        workdir_help="folder for the synthetic index (default: the system's temporary folder)",
    )
    arguments = parser.parse_args(argv)
    workdir = make_workdir(parser, arguments, "publish-memory-")
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
