"""Synthetic indexes for tests that need many images: YAML written directly in the documented format."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

SAMPLE_INDEX = Path(__file__).resolve().parent.parent / "index"

WORDS = ["redis", "nginx", "tengine", "mysql", "node", "python", "golang", "kafka", "zookeeper", "postgres"]


def version_entry(author: str, name: str, version: str, rng: random.Random) -> str:
    return (
        f'  - version: "{version}"\n'
        f'    file: "{author}-{name}-{version}.ki"\n'
        f"    size: {rng.randint(1_000, 100_000_000)}\n"
        f'    sha256: "{rng.getrandbits(256):064x}"\n'
        f'    buildtime: "2026-12-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:17:10"\n'
        f'    pusher: "{author}"\n'
    )


def write_index(root: Path, images: int, authors: int = 20, seed: int = 1, versions: tuple[int, int] = (1, 1)) -> Path:
    """Write an index at `root`: the sample settings and accounts, plus `images` generated images.

    Names share words and numbers, so search nodes overlap as in a real registry.
    """
    shutil.copytree(SAMPLE_INDEX, root)
    account = (root / "accounts/cycore.yaml").read_text()
    author_names = [f"author{number}" for number in range(authors)]
    for author in author_names:
        (root / "accounts" / f"{author}.yaml").write_text(account.replace('"cycore"', f'"{author}"'))
    rng = random.Random(seed)
    for number in range(images):
        author = author_names[number % authors]
        name = f"{rng.choice(WORDS)}-{number}"
        entries = [
            version_entry(author, name, f"{major}.{rng.randint(0, 20)}.{number % 7}", rng)
            for major in range(rng.randint(*versions))
        ]
        folder = root / "images" / author
        folder.mkdir(exist_ok=True)
        (folder / f"{name}.yaml").write_text(f'author: "{author}"\nname: "{name}"\nversions:\n' + "".join(entries))
    return root
