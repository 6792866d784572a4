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
from functools import cache, lru_cache
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from markupsafe import Markup

from . import names, search
from .errors import SiteError
from .index import Index
from .model import Image, Ordered, Settings, Version, url_problem

if TYPE_CHECKING:
    import jinja2

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
    if not values:
        return text
    return _PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), text)


def translated(key: str, **values: object) -> Markup:
    """Return a span with the English text of `key`, marked so `static/site.js` can translate it."""
    if not values:
        return translated_element(key, "span")
    arguments = Markup(' data-i18n-args="{}"').format(json.dumps(values, sort_keys=True))
    return Markup('<span data-i18n="{}"{}>{}</span>').format(key, arguments, message(DEFAULT_LANGUAGE, key, **values))


@cache
def translated_element(key: str, tag: str) -> Markup:
    """Return a `tag` element whose only content is the English text of `key`, marked so `static/site.js` can translate it."""
    return Markup('<{0} data-i18n="{1}">{2}</{0}>').format(tag, key, message(DEFAULT_LANGUAGE, key))


def translated_attribute(key: str, attribute: str) -> Markup:
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
    import jinja2  # here, so that commands that render no page do not load it

    # auto_reload=False: the templates do not change during a build, and the
    # reload check costs a stat() per page.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_folder())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    # The UI texts are filters rather than functions because Jinja2 3.1
    # evaluates a filter whose arguments are all constants when it compiles a
    # template (jinja2.nodes.Filter.as_const): `{{ "nav.skip" | text }}` becomes
    # a string in the compiled template, and no page pays for the lookup.
    env.filters.update(
        text=translated,
        element=translated_element,
        attribute=translated_attribute,
        message=lambda key, language=DEFAULT_LANGUAGE: message(language, key),
    )
    env.globals.update(
        human_size=human_size,
        is_http_url=is_http_url,
        image_href=_image_href,
        author_href=_author_href,
    )
    return env


@dataclass(frozen=True)
class Listing:
    """One image as author pages list it."""

    author: str
    name: str
    latest: str  # latest version, "" when every listed version is yanked
    summary: str  # summary of the latest version, "" when there is none
    versions: int  # number of listed versions


# Version strings repeat across images ("1.0.0"), and looking a sort key up
# costs less than computing it again with a regular expression.
_version_key = lru_cache(maxsize=1 << 16)(names.version_key)


def _sort_key(version: Version) -> tuple:
    return _version_key(version.version)


def listed_versions(image: Image) -> list[Version]:
    """Return the versions that the pages list, newest first: private versions are never listed.

    The order is that of `api.sorted_versions`.
    """
    return sorted((version for version in image.versions if not version.is_private), key=_sort_key, reverse=True)


def latest_version(image: Image, listed: list[Version] | None = None) -> Version | None:
    """Return the same version as `image.latest()`, with the cached sort keys.

    `listed`, when given, is `listed_versions(image)`. Its first version that
    is not yanked is then the latest, with no sort key compared again.
    """
    explicit = image.find(names.LATEST)
    if explicit is not None:
        return explicit
    if listed is not None:
        return next((version for version in listed if not version.yanked), None)
    live = [version for version in image.versions if not version.yanked and not version.is_private]
    return max(live, key=_sort_key, default=None)


def listing(image: Image, ordered: Ordered | None = None) -> Listing | None:
    """Return how author pages list `image`, or None when it has no listed version; `ordered` is `image.ordered()` when known."""
    count = sum(1 for version in image.versions if not version.is_private)
    if count == 0:
        return None
    latest = ordered.latest if ordered is not None else latest_version(image)
    if latest is None:
        return Listing(image.author, image.name, "", "", count)
    return Listing(image.author, image.name, latest.version, latest.summary, count)


def render_image_page(env: jinja2.Environment, settings: Settings, image: Image, ordered: Ordered | None = None) -> bytes | None:
    """Render the page of one image, or return None when it has no listed version; `ordered` is `image.ordered()` when known.

    The header shows the summary, platform and homepage of the latest
    version, or of the newest version when every version is yanked.
    """
    if ordered is not None:
        listed = [version for version in ordered.versions if not version.is_private]
    else:
        listed = listed_versions(image)
    if not listed:
        return None
    latest = ordered.latest if ordered is not None else latest_version(image, listed)
    details = latest if latest is not None else listed[0]
    return env.get_template("image.html").render(
        root="../../",
        title=settings.title,
        image=image,
        rows=version_rows(listed),
        latest=latest,
        details=details,
    ).encode("utf-8")


def version_rows(versions: list[Version]) -> Markup:
    """Return the rows of the versions table: version, size, build time, pusher, license and sha256.

    Built with f-strings rather than in the template because the rows are
    most of an image page's bytes and time. Every value is escaped. The end
    tags of cells and rows are left out, as HTML allows: with 10 versions they
    would add about a tenth to the page.
    """
    yanked_label = translated("versions.yanked")
    rows = []
    for version in versions:
        if version.yanked:
            head = f'<tr class="yanked"><th>{escape(version.version, quote=False)}<br><span class="badge">{yanked_label} {escape(version.yanked, quote=False)}</span>'
        else:
            head = f"<tr><th>{escape(version.version, quote=False)}"
        rows.append(
            f"{head}<td>{human_size(version.size)}<td>{escape(version.buildtime, quote=False)}"
            f"<td>{escape(version.pusher, quote=False)}<td>{escape(version.license, quote=False)}"
            f"<td><code>{escape(version.sha256, quote=False)}</code>\n"
        )
    return Markup("".join(rows))


def render_author_page(env: jinja2.Environment, settings: Settings, author: str, listings: list[Listing]) -> bytes:
    """Render the page that lists an author's images, in the order given."""
    return _render(env, "author.html", root="../", title=settings.title, author=author, rows=listing_rows(listings))


def listing_rows(listings: list[Listing]) -> Markup:
    """Return the rows of an author page's table: image, latest version, number of versions and summary.

    Built in Python for the same reasons as `version_rows`, because every
    image of the registry is a row of some author page.
    """
    no_latest = translated("image.no_latest")
    rows = []
    for entry in listings:
        latest = escape(entry.latest, quote=False) if entry.latest else no_latest
        rows.append(
            f'<tr><th><a href="../{escape(_image_href(entry.author, entry.name))}">{escape(entry.author, quote=False)}/{escape(entry.name, quote=False)}</a>'
            f"<td>{latest}<td>{entry.versions}<td>{escape(entry.summary, quote=False)}\n"
        )
    return Markup("".join(rows))


def render_common_pages(
    env: jinja2.Environment,
    settings: Settings,
    authors: list[tuple[str, int]],
    image_count: int,
    version_count: int,
) -> Iterator[tuple[str, bytes]]:
    """Yield (path, content) of the home page, the 404 page, the list of authors and the CSS and JavaScript files.

    `authors` is every author with the number of their listed images, in the
    order the list of authors shows them. The home page states `image_count`
    and `version_count`.
    """
    title = settings.title
    yield "index.html", _render(env, "index.html", root="", title=title, image_count=image_count, version_count=version_count)

    # 404.html is shown at any depth of the site, so it cannot link files by a
    # relative path: its CSS is inline and its home link is the site URL.
    home_url = settings.site_url if is_http_url(settings.site_url) else ""
    yield "404.html", _render(env, "404.html", title=title, home_url=home_url, css=_inline_css())

    yield "authors.html", _render(env, "authors.html", root="", title=title, authors=authors)
    yield from static_files()


def author_listings(index: Index) -> list[tuple[str, list[Listing]]]:
    """Return every author with the listings of their images, in identity order.

    Every account is an author, with or without images, and so is every author
    of an image with a listed version.
    """
    by_author: dict[str, tuple[str, list[Listing]]] = {}
    for account in index.accounts.values():
        by_author.setdefault(names.identity(account.username), (account.username, []))
    for image in index.sorted_images():
        entry = listing(image)
        if entry is not None:
            by_author.setdefault(names.identity(image.author), (image.author, []))[1].append(entry)
    return [by_author[key] for key in sorted(by_author)]


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


def _render(env: jinja2.Environment, name: str, **context: object) -> bytes:
    return env.get_template(name).render(**context).encode("utf-8")
