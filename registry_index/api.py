"""Shaping the static API: pure functions from the index to JSON documents.

Paths use each author, name and version's identity spelling (lowercase, with
`_` written as `-`), so a client finds `My_App` at `my-app`. See docs/api.md.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring
from . import names, search
from .model import Image, Ordered, Settings, Version

API_VERSION = "v1"
# The kindo hub's error code for "extraction code needed".
CODE_NEEDED = "040014000"


# One encoder for every document: json.dumps with options builds a new one on each call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# The encoder's string writer (ensure_ascii=False): quotes, and escapes '"', '\\' and control characters.
_string = encode_basestring


def encode(document: object) -> bytes:
    """Return the canonical JSON bytes of a document: compact, key order as built, newline at the end."""
    return (_ENCODER.encode(document) + "\n").encode("utf-8")


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


def encode_pull_object(settings: Settings, image: Image, version: Version) -> bytes:
    """Return encode(pull_object(...)), the same bytes, built from one template.

    A build encodes a million of these at 100,000 images, and the template
    with the JSON encoder's own string escaping is three times faster than
    encoding the dictionary. tests/test_build.py compares the two.
    """
    text = (
        f'{{"name":{_string(image.name)},"version":{_string(version.version)},'
        f'"unique_name":{_string(names.unique_name(image.author, image.name, version.version))},'
        f'"author":{_string(image.author)},"pusher":{_string(version.pusher)},"size":"{version.size:d}",'
        f'"buildtime":{_string(version.buildtime)},"url":{_string(version.download_url(settings))},'
        f'"summary":{_string(version.summary)},"sha256":{_string(version.sha256)},"file":{_string(version.file)},'
        f'"license":{_string(version.license)},"homepage":{_string(version.homepage)},"platform":{_string(version.platform)}'
    )
    if version.yanked:
        text += f',"yanked":{_string(version.yanked)}'
    return (text + "}\n").encode("utf-8")


def sorted_versions(image: Image) -> list[Version]:
    """Return an image's versions newest first."""
    return sorted(image.versions, key=lambda version: names.version_key(version.version), reverse=True)


def search_entry(image: Image, ordered: Ordered | None = None) -> search.Entry | None:
    """Return the search entry of an image: its versions that search lists (neither yanked nor private), or None when there is none.

    `ordered`, when given, is `image.ordered()`, worked out once for the image's other outputs too.
    """
    all_versions, latest = ordered if ordered is not None else (sorted_versions(image), image.latest())
    versions = [version for version in all_versions if not version.yanked and not version.is_private]
    if not versions or latest is None:
        return None
    return search.Entry(
        base=f"{image.author}/{image.name}",
        versions=tuple(version.version for version in versions),
        latest=latest.version,
        summary=latest.summary,
        size=str(latest.size),
        buildtime=latest.buildtime,
    )


def image_files(settings: Settings, image: Image, ordered: Ordered | None = None) -> list[tuple[str, bytes]]:
    """Return (path, content) of an image's pull files, latest file, image document and private records; `ordered` as for search_entry."""
    files = []
    versions, latest = ordered if ordered is not None else (sorted_versions(image), image.latest())
    folder = pull_path(image.author, image.name, "")[:-len(".json")]
    latest_content = None
    for version in versions:
        path = f"{folder}{names.identity(version.version)}.json"
        if version.is_private:
            files.append((path, encode(code_needed(version))))
            files.append((private_path(version.protection.lookup_id), encode(private_record(settings, image, version))))
        else:
            content = encode_pull_object(settings, image, version)
            files.append((path, content))
            if version is latest:
                latest_content = content
    public = [version for version in versions if not version.is_private]
    if not public:
        return files
    if latest_content is not None and image.find(names.LATEST) is None:
        # The latest file contains the same object as the latest version's own file.
        files.append((f"{folder}{names.LATEST}.json", latest_content))
    document = {
        "author": image.author,
        "name": image.name,
        "latest": latest.version if latest is not None else None,
        "versions": [version.version for version in public],
    }
    yanked = {version.version: version.yanked for version in public if version.yanked}
    if yanked:
        document["yanked"] = yanked
    files.append((image_document_path(image.author, image.name), encode(document)))
    return files


def anonymous_file(name: str, authors: list[str]) -> tuple[str, bytes]:
    """Return (path, content) of the file that names every author of an image name; `name` as the first author writes it."""
    return anonymous_path(name), encode({"name": name, "authors": authors})


def registry_document(settings: Settings, images: int, versions: int, searchable: int) -> dict:
    """Return `v1/index.json`: what a client needs to know before its first request."""
    return {
        "api": API_VERSION,
        "title": settings.title,
        "images": images,
        "versions": versions,
        "search": {
            "prefix_length": search.PREFIX_LENGTH,
            "limit": search.LIMIT,
            "shown": search.SHOWN,
            "max_key_length": search.MAX_KEY_LENGTH,
            "searchable": searchable,
        },
    }
