"""Command-line options and the work folder that the benchmarks share."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def add_registry_options(parser: argparse.ArgumentParser, seed_help: str, workdir_help: str) -> None:
    """Add --images, --versions, --seed and --workdir, the options of the synthetic registry."""
    parser.add_argument("--images", type=int, default=10_000, help="number of images (default 10000)")
    parser.add_argument("--versions", type=int, default=10, help="versions per image (default 10)")
    parser.add_argument("--seed", type=int, default=1, help=seed_help)
    parser.add_argument("--workdir", type=Path, default=None, help=workdir_help)


def make_workdir(parser: argparse.ArgumentParser, arguments: argparse.Namespace, prefix: str) -> Path:
    """Check the registry options and return a new folder inside --workdir; exit through `parser.error` when either fails."""
    if arguments.images < 1 or arguments.versions < 1:
        parser.error(f"--images and --versions must be at least 1, not {arguments.images} and {arguments.versions}")
    if arguments.workdir is not None:
        try:
            arguments.workdir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            parser.error(f"cannot create --workdir {arguments.workdir}: {error.strerror}; choose a writable folder")
    try:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=arguments.workdir))
    except OSError as error:
        parser.error(f"cannot create a folder in --workdir {arguments.workdir}: {error.strerror}; choose a writable folder")
