"""Building the static site: the one writer of the build output.

The build renders every file in memory-light batches into a staging folder
beside the output folder, then swaps it in, so an interrupted build leaves
the previous site complete. The same index always gives the same bytes.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import api
from .errors import SiteError
from .fileio import replace_folder
from .index import Index
from .pages import render_pages

log = logging.getLogger(__name__)

# Present in every built site; the build replaces only folders that have it,
# so `--out` pointed at a wrong folder never deletes anyone's files.
MARKER = ".registry-index-site"


@dataclass(frozen=True)
class BuildSummary:
    images: int
    versions: int
    files: int
    bytes: int
    seconds: float
    out: Path

    def line(self) -> str:
        return (
            f"built {self.images} images, {self.versions} versions: "
            f"{self.files} files, {self.bytes} bytes in {self.seconds:.2f} s -> {self.out}"
        )


def site_files(index: Index) -> Iterable[tuple[str, bytes]]:
    """Yield (relative path, content) of every file of the site."""
    records = api.search_records(index)
    yield MARKER, b"registry-index site\n"
    yield ".nojekyll", b""
    yield "v1/index.json", api.encode(api.registry_document(index, records))
    yield from api.image_files(index)
    yield from api.search_files(records)
    yield from render_pages(index, records)


def _check_target(out: Path) -> None:
    if not out.exists():
        return
    if out.is_symlink() or not out.is_dir():
        raise SiteError(f"{out} exists and is not a folder; choose another --out")
    if any(out.iterdir()) and not (out / MARKER).is_file():
        raise SiteError(f"{out} is not empty and was not built by registry-index (no {MARKER} file); choose an empty or new --out folder")


def _remove_stale_staging(out: Path) -> None:
    """Remove staging folders that an interrupted build left beside `out`."""
    for entry in out.parent.glob(f".{out.name}.staging-*"):
        log.debug("removing %s left by an interrupted build", entry)
        shutil.rmtree(entry, ignore_errors=True)


def write_site(files: Iterable[tuple[str, bytes]], out: Path) -> tuple[int, int]:
    """Write all files into a staging folder and swap it in at `out`; return (files, bytes)."""
    out = Path(os.path.abspath(out))
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    count = 0
    total = 0
    made: set[str] = set()
    try:
        for relative, content in files:
            path = staging / relative
            parent = os.path.dirname(relative)
            if parent not in made:
                os.makedirs(staging / parent, exist_ok=True)
                made.add(parent)
            with open(path, "xb") as stream:
                stream.write(content)
            count += 1
            total += len(content)
        os.chmod(staging, 0o755)
        replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return count, total


def build_site(index: Index, out: Path | str) -> BuildSummary:
    """Render the whole site of `index` into `out`."""
    started = time.monotonic()
    out = Path(out)
    resolved_out = Path(os.path.realpath(out))
    resolved_index = Path(os.path.realpath(index.root))
    if resolved_index == resolved_out or resolved_out in resolved_index.parents:
        raise SiteError(f"--out {out} contains the index folder {index.root}; the build replaces --out as a whole, so choose a folder outside the index")
    files, size = write_site(site_files(index), out)
    summary = BuildSummary(
        images=len(index.images),
        versions=sum(len(image.versions) for image in index.images.values()),
        files=files,
        bytes=size,
        seconds=time.monotonic() - started,
        out=out,
    )
    log.debug("%s", summary.line())
    return summary
