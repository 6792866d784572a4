"""Shaping the static API: pure functions from the index to JSON documents.

Paths use each author, name and version's identity spelling (lowercase, with
`_` written as `-`), so a client finds `My_App` at `my-app`. See docs/api.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from . import names, search
from .index import Index
from .model import Image, Settings, Version

API_VERSION = "v1"
# The kindo hub's error code for "extraction code needed".
CODE_NEEDED = "040014000"


def encode(document: object) -> bytes:
    """Return the canonical JSON bytes of a document: compact, key order as built, newline at the end."""
    return (json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def pull_path(author: str, name: str, version: str) -> str:
    return f"v1/pull/{names.identity(author)}/{names.identity(name)}/{names.identity(version)}.json"


def anonymous_path(name: str) -> str:
    return f"v1/pull/{names.ANONYMOUS}/{names.identity(name)}.json"


def image_document_path(author: str, name: str) -> str:
    return f"v1/images/{names.identity(author)}/{names.identity(name)}.json"


def private_path(lookup_id: str) -> str:
    return f"v1/private/{lookup_id}.json"


def sealed_context(author: str, name: str, version: str) -> bytes:
    """Return the associated data that binds a sealed record to its version, so it cannot be moved to another."""
    return names.unique_name(names.identity(author), names.identity(name), names.identity(version)).encode()


def code_needed(version: Version) -> dict:
    """Return the public pull document of a private version: the hub's "code needed" error and how to derive keys."""
    protection = version.protection.to_dict()
    protection.pop("lookup_id")
    return {"code": CODE_NEEDED, "msg": "extraction code needed", "protection": protection}


def private_record(settings: Settings, image: Image, version: Version) -> dict:
    """Return the document at a private version's lookup path: its encrypted file and the sealed plaintext details."""
    document = pull_object(settings, image, version)
    document["encrypted"] = True
    document["sealed"] = version.sealed
    return document


def search_record(settings: Settings, image: Image, version: Version) -> dict:
    """Return the search object of a version: the API document's fields plus pusher and unique name."""
    return {
        "name": image.name,
        "version": version.version,
        "unique_name": names.unique_name(image.author, image.name, version.version),
        "author": image.author,
        "pusher": version.pusher,
        "size": str(version.size),
        "buildtime": version.buildtime,
        "url": version.download_url(settings),
        "summary": version.summary,
    }


def pull_object(settings: Settings, image: Image, version: Version) -> dict:
    """Return the pull object of a version: the search fields plus what a client verifies and shows."""
    document = search_record(settings, image, version)
    document.update({
        "sha256": version.sha256,
        "file": version.file,
        "license": version.license,
        "homepage": version.homepage,
        "platform": version.platform,
    })
    if version.yanked:
        document["yanked"] = version.yanked
    return document


def sorted_versions(image: Image) -> list[Version]:
    """Return an image's versions newest first."""
    return sorted(image.versions, key=lambda version: names.version_key(version.version), reverse=True)


def search_records(index: Index) -> list[dict]:
    """Return every searchable version in search order: by author and name, newest version first.

    Yanked versions are left out of search; their pull paths stay. Private
    versions are left out of everything that lists versions.
    """
    records = []
    for image in index.sorted_images():
        for version in sorted_versions(image):
            if not version.yanked and not version.is_private:
                records.append(search_record(index.settings, image, version))
    return records


def image_files(index: Index) -> Iterator[tuple[str, bytes]]:
    """Yield (path, content) of every pull file, latest file and image document."""
    authors_by_name: dict[str, list[Image]] = {}
    for image in index.sorted_images():
        versions = sorted_versions(image)
        for version in versions:
            if version.is_private:
                yield pull_path(image.author, image.name, version.version), encode(code_needed(version))
                yield private_path(version.protection.lookup_id), encode(private_record(index.settings, image, version))
            else:
                yield pull_path(image.author, image.name, version.version), encode(pull_object(index.settings, image, version))
        public = [version for version in versions if not version.is_private]
        if not public:
            continue
        latest = image.latest()
        if latest is not None and image.find(names.LATEST) is None:
            yield pull_path(image.author, image.name, names.LATEST), encode(pull_object(index.settings, image, latest))
        authors_by_name.setdefault(names.identity(image.name), []).append(image)
        yield image_document_path(image.author, image.name), encode({
            "author": image.author,
            "name": image.name,
            "latest": latest.version if latest is not None else None,
            "versions": [pull_object(index.settings, image, version) for version in public],
        })
    for key, images in sorted(authors_by_name.items()):
        yield anonymous_path(key), encode({
            "name": images[0].name,
            "authors": [image.author for image in images],
        })


def search_files(records: list[dict]) -> Iterator[tuple[str, bytes]]:
    """Yield (path, content) of every search node."""
    nodes = search.build_nodes([record["unique_name"].lower() for record in records])
    for key in sorted(nodes):
        node = nodes[key]
        document = {
            "key": key,
            "complete": node.complete,
            "total": node.total,
            "results": [records[number] for number in node.members],
        }
        if node.splits:
            document["splits"] = node.splits
        yield search.node_path(key), encode(document)


def registry_document(index: Index, records: list[dict]) -> dict:
    """Return `v1/index.json`: what a client needs to know before its first request."""
    return {
        "api": API_VERSION,
        "title": index.settings.title,
        "images": sum(1 for image in index.images.values() if any(not v.is_private for v in image.versions)),
        "versions": sum(1 for image in index.images.values() for v in image.versions if not v.is_private),
        "search": {
            "prefix_length": search.PREFIX_LENGTH,
            "limit": search.LIMIT,
            "max_key_length": search.MAX_KEY_LENGTH,
            "searchable": len(records),
        },
    }
