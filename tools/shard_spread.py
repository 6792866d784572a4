"""Count how evenly `asset_shards` spreads synthetic .ki file names over releases.

Run from the repository root: `python tools/shard_spread.py`.

The names come from --authors authors (default 1,000) with --images images
each (default 100) and --versions versions per image (default 10): author
`author<i>` (i from 0), image `image<n>` (n from 0) and version `<v>.0` (v from
1). So the defaults give 1,000,000 names, from `author0-image0-1.0.ki` to
`author999-image99-10.0.ki`. `asset_file_name` makes each name and
`Settings.release_tag` picks its release: `add` and `push` name files by the
first rule, and the build and `publish` place them by the second.

After a line with the number of names, it prints one row for each
`asset_shards` value from 0 to 4:

- releases: the number of release tags that the setting allows, 16^k;
- used: how many of those tags contain at least one name;
- mean: the number of names divided by releases;
- fullest and emptiest: the most and the fewest names in one release. The
  emptiest counts every allowed tag, so it is 0 when some tag contains no name.

With the defaults it ran in about 10 seconds on one core of a 2-core Intel
Xeon virtual machine.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry_index.editing import asset_file_name  # noqa: E402
from registry_index.model import MAX_ASSET_SHARDS, Settings  # noqa: E402


def file_names(authors: int, images: int, versions: int) -> list[str]:
    """Return the synthetic asset names in author, image, version order."""
    return [
        asset_file_name(f"author{author}", f"image{image}", f"{version}.0")
        for author in range(authors)
        for image in range(images)
        for version in range(1, versions + 1)
    ]


def spread_rows(names: list[str], release: str) -> list[tuple[int, int, int, float, int, int]]:
    """Return (asset_shards, releases, used, mean, fullest, emptiest) for each asset_shards value from 0 to MAX_ASSET_SHARDS."""
    base = Settings(title="", repository="owner/registry", asset_release=release, site_url="")
    rows = []
    for shards in range(MAX_ASSET_SHARDS + 1):
        settings = replace(base, asset_shards=shards)
        counts = Counter(settings.release_tag(name) for name in names)
        releases = 16**shards
        emptiest = min(counts.values()) if len(counts) == releases else 0
        rows.append((shards, releases, len(counts), len(names) / releases, max(counts.values()), emptiest))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors", type=int, default=1000, help="number of authors (default 1000)")
    parser.add_argument("--images", type=int, default=100, help="number of images per author (default 100)")
    parser.add_argument("--versions", type=int, default=10, help="number of versions per image (default 10)")
    parser.add_argument("--release", default="images", help="asset_release: the release tag, and the start of every sharded tag (default images)")
    arguments = parser.parse_args()
    for option in ("authors", "images", "versions"):
        if getattr(arguments, option) < 1:
            parser.error(f"--{option} is {getattr(arguments, option)}; it must be at least 1")

    names = file_names(arguments.authors, arguments.images, arguments.versions)
    print(f"{len(names):,} names: {arguments.authors:,} authors x {arguments.images:,} images x {arguments.versions:,} versions")
    print(f"{'asset_shards':>12} {'releases':>9} {'used':>7} {'mean':>12} {'fullest':>10} {'emptiest':>10}")
    for shards, releases, used, mean, fullest, emptiest in spread_rows(names, arguments.release):
        print(f"{shards:>12} {releases:>9,} {used:>7,} {mean:>12,.2f} {fullest:>10,} {emptiest:>10,}")


if __name__ == "__main__":
    main()
