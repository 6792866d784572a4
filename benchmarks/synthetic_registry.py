"""Write a synthetic registry index: many authors, shared name words, prefixes and numbers.

The same (images, versions, seed) always writes the same files, so two runs
of the benchmark measure the same registry. Image files are written in the
canonical form of `registry-index add`, so the loader reads them as it reads
a real index.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from registry_index.editing import render_image_yaml  # noqa: E402
from registry_index.model import Image, Version  # noqa: E402

# Words that image names on container and package hubs are made of. Names
# share them, so search keys such as "redis" or "-exp" match many images.
WORDS = """
redis nginx tengine mysql postgres mongo mariadb sqlite kafka zookeeper rabbitmq
etcd consul vault nomad envoy traefik haproxy caddy apache tomcat jetty node
python golang java rust ruby php perl dotnet alpine debian ubuntu centos fedora
busybox base runtime sdk builder runner agent exporter operator proxy gateway
cache queue worker scheduler cron backup restore sync mirror registry index
search logger metrics tracing grafana prometheus loki tempo jaeger elastic
kibana logstash fluentd vector minio ceph nfs samba ftp ssh vpn wireguard dns
bind unbound coredns dhcp mail smtp imap web api server client cli tools utils
admin dashboard portal auth oauth ldap keycloak sso cert acme ssl tls crypto
ml ai torch tensor jupyter notebook spark flink hadoop hive presto trino
airflow dagster etl stream batch edge iot mqtt modbus camera media video audio
ffmpeg stream game chat bot wiki blog cms shop pay crm erp hr docs office
""".split()
AUTHOR_STEMS = """
cycore acme devlab cloudops bytefarm nimbus orbit quantum pixel stack forge
hub ops lab net data core sys infra build ship dock crate box nest hive
north south east west blue red green gold iron steel stone river lake
""".split()
SEPARATORS = ["-", "-", "-", "_", ""]
PLATFORMS = ["linux", "linux", "linux", "linux/arm64", ""]
LICENSES = ["MIT", "Apache-2.0", "GPL-3.0", "BSD-3-Clause", ""]


@dataclass(frozen=True)
class Registry:
    """What `write_registry` wrote: the index folder and every unique name in it."""

    root: Path
    images: list[Image]


def _authors(rng: random.Random, count: int) -> list[str]:
    authors: set[str] = set()
    while len(authors) < count:
        stem = rng.choice(AUTHOR_STEMS)
        form = rng.random()
        if form < 0.3:
            author = stem + rng.choice(AUTHOR_STEMS)
        elif form < 0.6:
            author = stem + str(rng.randint(1, 999))
        elif form < 0.8:
            author = rng.choice(WORDS).replace("-", "") + stem
        else:
            author = stem + rng.choice(WORDS) + str(rng.randint(0, 99))
        author = "".join(char for char in author if char.isalnum())[:32]
        if author.lower() != "anonymous":
            authors.add(author)
    return sorted(authors)


def _image_name(rng: random.Random, author: str) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.choice([1, 2, 2, 2, 3]))]
    name = rng.choice(SEPARATORS[:4]).join(words)
    form = rng.random()
    if form < 0.15:
        name = f"{author.lower()[:8]}-{name}"
    elif form < 0.35:
        name = f"{name}{rng.choice(SEPARATORS)}{rng.randint(1, 99)}"
    elif form < 0.45:
        name = f"{name}-v{rng.randint(1, 5)}"
    return name[:64]


def _versions(rng: random.Random, count: int) -> list[str]:
    major, minor, patch = rng.randint(0, 5), rng.randint(0, 20), rng.randint(0, 9)
    style = rng.random()
    versions: list[str] = []
    while len(versions) < count:
        step = rng.random()
        if step < 0.6:
            patch += 1
        elif step < 0.9:
            minor, patch = minor + 1, 0
        else:
            major, minor, patch = major + 1, 0, 0
        if style < 0.7:
            version = f"{major}.{minor}.{patch}"
        elif style < 0.85:
            version = f"v{major}.{minor}"
        else:
            version = f"{2020 + major}.{minor + 1:02d}.{patch}"
        if rng.random() < 0.05:
            version += f"-rc{rng.randint(1, 4)}"
        if version not in versions:
            versions.append(version)
    return versions


def make_images(images: int, versions: int, seed: int) -> list[Image]:
    """Return `images` synthetic images of `versions` versions each, the same for the same seed."""
    rng = random.Random(seed)
    authors = _authors(rng, max(3, images // 40))
    # Zipf-like weights: a few authors publish many images, most publish few.
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(authors))]
    rng.shuffle(weights)
    cumulative = list(itertools.accumulate(weights))
    made: dict[tuple[str, str], Image] = {}
    while len(made) < images:
        author = rng.choices(authors, cum_weights=cumulative)[0]
        name = _image_name(rng, author)
        key = (author.lower(), name.lower().replace("_", "-"))
        if key in made:
            continue
        summary = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 7)))
        image_versions = []
        for number, version in enumerate(_versions(rng, versions)):
            unique = f"{author}/{name}:{version}"
            image_versions.append(Version(
                version=version,
                file=f"{author}-{name}-{version}.ki".lower(),
                size=rng.randint(10_000, 900_000_000),
                sha256=hashlib.sha256(unique.encode()).hexdigest(),
                buildtime=f"20{rng.randint(18, 26)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
                pusher=author,
                summary=f"{summary} {number}",
                license=rng.choice(LICENSES),
                platform=rng.choice(PLATFORMS),
                pushed="2026-12-04T19:36:44Z",
            ))
        made[key] = Image(author, name, image_versions)
    return [made[key] for key in sorted(made)]


def account_yaml(author: str) -> str:
    return (
        f'username: "{author}"\nuid: "{hashlib.md5(author.encode()).hexdigest()}"\ngithub: "{author}"\n'
        'token_bcrypt: "$2b$12$abcdefghijklmnopqrstuuN0eKyJ8O2F7NxW5g0Wm6t3Fz3m4ZbQ2"\n'
        'created: "2026-12-04T19:17:10Z"\n'
    )


def write_registry(root: Path, images: int, versions: int, seed: int) -> Registry:
    """Write a synthetic index at `root` (which must not exist) and return what it holds."""
    made = make_images(images, versions, seed)
    (root / "accounts").mkdir(parents=True)
    (root / "registry.yaml").write_text(
        'title: "Synthetic registry"\nrepository: "kindo-hub/registry-index"\n'
        f'asset_release: "images"\nsite_url: "https://kindo-hub.github.io/registry-index/"\n'
    )
    for author in sorted({image.author for image in made}):
        (root / "accounts" / f"{author.lower()}.yaml").write_text(account_yaml(author))
        (root / "images" / author.lower()).mkdir(parents=True)
    for image in made:
        write_image(root, image)
    return Registry(root, made)


def write_image(root: Path, image: Image) -> Path:
    path = root / "images" / image.author.lower() / f"{image.name.lower()}.yaml"
    path.write_text(render_image_yaml(image))
    return path
