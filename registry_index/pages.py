"""Rendering the HTML pages of the site from the Jinja2 templates in `templates/`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jinja2

from .errors import SiteError
from .index import Index

_PACKAGE = Path(__file__).resolve().parent


def templates_folder() -> Path:
    """Return the templates folder: inside the installed package, or beside it in a source checkout."""
    for folder in (_PACKAGE / "templates", _PACKAGE.parent / "templates"):
        if (folder / "index.html").is_file():
            return folder
    raise SiteError(f"templates not found in {_PACKAGE / 'templates'} or {_PACKAGE.parent / 'templates'}; reinstall registry-index")


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_folder())),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_pages(index: Index, records: list[dict]) -> Iterator[tuple[str, bytes]]:
    """Yield (path, content) of the home page and the 404 page."""
    env = environment()
    latest_rows = []
    for image in index.sorted_images():
        latest = image.latest()
        if latest is None:
            continue
        latest_rows.append({
            "author": image.author,
            "name": image.name,
            "version": latest.version,
            "size": latest.size,
            "buildtime": latest.buildtime,
            "unique_name": f"{image.author}/{image.name}:{latest.version}",
        })
    title = index.settings.title
    yield "index.html", env.get_template("index.html").render(title=title, images=latest_rows).encode("utf-8")
    yield "404.html", env.get_template("404.html").render(title=title, root=index.settings.site_url).encode("utf-8")
