"""Rendering the browse pages of the site from the Jinja2 templates in `templates/`.

The site has a home page that searches the static search nodes in the
browser, a page per image, a page per author, a list of authors and a 404
page. Image and author pages are complete HTML without JavaScript: the scripts
only search, switch the language and copy text. Every link is relative, so the
site works from a sub-path such as a GitHub Pages project site.

The English text of `templates/messages.json` is rendered into the pages and
marked with `data-i18n` keys; `static/site.js` swaps in another language.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from . import api, names, search
from .errors import SiteError
from .index import Index
from .model import Image, Settings, Version, url_problem

_PACKAGE = Path(__file__).resolve().parent

# The output folder of the CSS and JavaScript. Not `assets/`, because
# `serve --assets` serves local .ki files at `/assets/<file>`.
STATIC_FOLDER = "static"
STATIC_FILES = ("site.css", "site.js", "search.js")
DEFAULT_LANGUAGE = "en"
# Attributes that `static/site.js` translates through `data-i18n-<attribute>`.
TRANSLATED_ATTRIBUTES = ("placeholder", "title")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def templates_folder() -> Path:
    """Return the templates folder: inside the installed package, or beside it in a source checkout."""
    for folder in (_PACKAGE / "templates", _PACKAGE.parent / "templates"):
        if (folder / "index.html").is_file():
            return folder
    raise SiteError(f"templates not found in {_PACKAGE / 'templates'} or {_PACKAGE.parent / 'templates'}; reinstall registry-index")


@lru_cache(maxsize=1)
def load_messages() -> dict[str, dict[str, str]]:
    """Return the UI text of every language, by language tag and message key."""
    path = templates_folder() / "messages.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SiteError(f"cannot read UI messages from {path}: {error}; reinstall registry-index") from error


def message(language: str, key: str, **values: object) -> str:
    """Return the UI text `key` in `language` with its `{name}` placeholders filled in."""
    text = load_messages()[language][key]
    return _PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), text)


def translated(key: str, **values: object) -> Markup:
    """Return a span with the English text of `key`, marked so `static/site.js` can translate it."""
    arguments = ""
    if values:
        arguments = Markup(' data-i18n-args="{}"').format(json.dumps(values, sort_keys=True))
    return Markup('<span data-i18n="{}"{}>{}</span>').format(key, arguments, message(DEFAULT_LANGUAGE, key, **values))


def translated_attribute(attribute: str, key: str) -> Markup:
    """Return `attribute="English text" data-i18n-attribute="key"` for an element's attribute."""
    if attribute not in TRANSLATED_ATTRIBUTES:
        raise ValueError(f"attribute {attribute!r} is not translated by static/site.js; use one of {TRANSLATED_ATTRIBUTES}")
    return Markup('{0}="{1}" data-i18n-{0}="{2}"').format(attribute, message(DEFAULT_LANGUAGE, key), key)


def human_size(size: int) -> str:
    """Return a byte count in binary units with one decimal, such as `1.3 MiB`.

    Rounds half up with integers, as `humanSize` in static/site.js does, so the
    image pages and the search results show the same text.
    """
    if size < 1024:
        return f"{size} B"
    unit = 1024
    for suffix in ("KiB", "MiB", "GiB", "TiB"):
        tenths = (size * 20 + unit) // (2 * unit)
        if tenths < 10240 or suffix == "TiB":
            return f"{tenths // 10}.{tenths % 10} {suffix}"
        unit *= 1024
    raise AssertionError("unreachable: the loop returns at TiB")


def is_http_url(value: str) -> bool:
    """Return whether `value` is an http:// or https:// URL, the only kind the pages link to."""
    return value != "" and url_problem(value) is None


def image_page_path(author: str, name: str) -> str:
    return f"images/{names.identity(author)}/{names.identity(name)}.html"


def author_page_path(author: str) -> str:
    return f"authors/{names.identity(author)}.html"


def _image_href(author: str, name: str) -> str:
    """Return the link to an image page from the site root. The quoting only changes names that the index rejects."""
    return f"images/{quote(names.identity(author), safe='')}/{quote(names.identity(name), safe='')}.html"


def _author_href(author: str) -> str:
    return f"authors/{quote(names.identity(author), safe='')}.html"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_folder())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        text=translated,
        attribute=translated_attribute,
        message=message,
        human_size=human_size,
        is_http_url=is_http_url,
        image_href=_image_href,
        author_href=_author_href,
    )
    return env


def listed_versions(image: Image) -> list[Version]:
    """Return the versions that the pages list, newest first: private versions are never listed."""
    return [version for version in api.sorted_versions(image) if not version.is_private]


def version_rows(settings: Settings, image: Image) -> list[dict]:
    """Return the versions an image page lists, newest first: the API's pull objects plus display fields."""
    rows = []
    for version in listed_versions(image):
        row = api.pull_object(settings, image, version)
        row.setdefault("yanked", "")
        row["size_text"] = human_size(version.size)
        row["pull_command"] = f"kindo pull {row['unique_name']}"
        row["anchor"] = f"v-{names.identity(version.version)}"
        rows.append(row)
    return rows


def _latest_object(settings: Settings, image: Image) -> dict | None:
    """Return the pull object of an image's latest version, or None when every version is yanked."""
    latest = image.latest()
    if latest is None:
        return None
    return api.pull_object(settings, image, latest)


def static_files() -> Iterator[tuple[str, bytes]]:
    """Yield (path, content) of the CSS and JavaScript files.

    The scripts get their data as a first line: the UI messages for site.js and
    the search prefix length for search.js. The messages are written with
    `\\u` escapes, so the scripts are ASCII and need no charset header.
    """
    source = templates_folder() / STATIC_FOLDER
    headers = {
        "site.js": f"const MESSAGES = {json.dumps(load_messages(), ensure_ascii=True, sort_keys=True)};\n",
        "search.js": f"const PREFIX_LENGTH = {search.PREFIX_LENGTH};\n",
    }
    for name in STATIC_FILES:
        content = (source / name).read_bytes()
        yield f"{STATIC_FOLDER}/{name}", headers.get(name, "").encode("ascii") + content


def _inline_css() -> Markup:
    """Return site.css for a `<style>` element of a page that cannot link files by a relative path."""
    css = (templates_folder() / STATIC_FOLDER / "site.css").read_text(encoding="utf-8")
    if "</" in css:
        raise SiteError(f"{templates_folder() / STATIC_FOLDER / 'site.css'} contains '</', which would end the inline <style> element of 404.html; remove it")
    return Markup(css)


def render_pages(index: Index, records: list[dict]) -> Iterator[tuple[str, bytes]]:
    """Yield (path, content) of every page and of the CSS and JavaScript files.

    `records` are the search records: the home page counts what search finds.
    """
    env = environment()
    settings = index.settings
    title = settings.title

    image_count = len({(record["author"], record["name"]) for record in records})
    yield "index.html", _render(env, "index.html", root="", title=title, image_count=image_count, version_count=len(records))

    # 404.html is shown at any depth of the site, so it cannot link files by a
    # relative path: its CSS is inline and its home link is the site URL.
    home_url = settings.site_url if is_http_url(settings.site_url) else ""
    yield "404.html", _render(env, "404.html", title=title, home_url=home_url, css=_inline_css())
    yield from static_files()

    template = env.get_template("image.html")
    for image in index.sorted_images():
        if not listed_versions(image):
            continue
        yield image_page_path(image.author, image.name), template.render(root="../../", title=title, **_image_context(settings, image)).encode("utf-8")

    authors = _authors(index)
    template = env.get_template("author.html")
    for author, author_images in authors:
        entries = [(image, _latest_object(settings, image), len(listed_versions(image))) for image in author_images]
        yield author_page_path(author), template.render(root="../", title=title, author=author, entries=entries).encode("utf-8")

    yield "authors.html", _render(env, "authors.html", root="", title=title, authors=[(author, len(author_images)) for author, author_images in authors])


def _authors(index: Index) -> list[tuple[str, list[Image]]]:
    """Return every author with their images, in identity order. Every account is an author, with or without images."""
    by_author: dict[str, tuple[str, list[Image]]] = {}
    for account in index.accounts.values():
        by_author.setdefault(names.identity(account.username), (account.username, []))
    for image in index.sorted_images():
        if listed_versions(image):
            by_author.setdefault(names.identity(image.author), (image.author, []))[1].append(image)
    return [by_author[key] for key in sorted(by_author)]


def _image_context(settings: Settings, image: Image) -> dict:
    """Return the template values of an image page.

    `details` is the version whose summary, license, platform and homepage
    the page header shows: the latest version, or the newest one when every
    version is yanked.
    """
    rows = version_rows(settings, image)
    latest = image.latest()
    latest_row = None
    if latest is not None:
        latest_row = next(row for row in rows if row["version"] == latest.version)
    details = latest_row
    if details is None and rows:
        details = rows[0]
    return {"image": image, "rows": rows, "latest": latest_row, "details": details}


def _render(env: jinja2.Environment, name: str, **context: object) -> bytes:
    return env.get_template(name).render(**context).encode("utf-8")


@dataclass(frozen=True)
class Listing:
    """One image as author pages list it."""

    author: str
    name: str
    latest: str  # "" when every listed version is yanked
    summary: str
    size: int
    buildtime: str
    versions: int  # listed versions


def listing(image: Image) -> Listing | None:
    """Return how author pages list `image`, or None when it has no listed version."""
    listed = listed_versions(image)
    if not listed:
        return None
    latest = image.latest()
    if latest is None:
        return Listing(image.author, image.name, "", "", 0, "", len(listed))
    return Listing(image.author, image.name, latest.version, latest.summary, latest.size, latest.buildtime, len(listed))


def render_image_page(env: jinja2.Environment, settings: Settings, image: Image) -> bytes | None:
    """Return the page of `image`, or None when it lists no version."""
    if not listed_versions(image):
        return None
    return env.get_template("image.html").render(root="../../", title=settings.title, **_image_context(settings, image)).encode("utf-8")


def render_author_page(env: jinja2.Environment, settings: Settings, author: str, listings: list[Listing]) -> bytes:
    entries = [
        (listed, {"version": listed.latest, "size": listed.size, "buildtime": listed.buildtime, "summary": listed.summary} if listed.latest else None, listed.versions)
        for listed in listings
    ]
    return env.get_template("author.html").render(root="../", title=settings.title, author=author, entries=entries).encode("utf-8")


def render_common_pages(
    env: jinja2.Environment, settings: Settings, authors: list[tuple[str, list[Listing]]], image_count: int, version_count: int,
) -> Iterator[tuple[str, bytes]]:
    """Yield (path, content) of the home page, the 404 page, the list of authors and the CSS and JavaScript files."""
    title = settings.title
    yield "index.html", _render(env, "index.html", root="", title=title, image_count=image_count, version_count=version_count)
    home_url = settings.site_url if is_http_url(settings.site_url) else ""
    yield "404.html", _render(env, "404.html", title=title, home_url=home_url, css=_inline_css())
    yield from static_files()
    yield "authors.html", _render(env, "authors.html", root="", title=title, authors=[(author, len(listings)) for author, listings in authors])
