"""The `registry-index` command line: each command parses, calls the library and reports.

Data goes to stdout; log messages and errors go to stderr.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer

from .editing import add_image
from .errors import InvalidIndex, RegistryError
from .index import load_index
from .verify import verify_assets

log = logging.getLogger("registry_index")

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Build and serve a static, git-backed kindo image registry.",
)

IndexOption = typer.Option(Path("index"), "--index", help="Index folder (registry.yaml, accounts/, images/).")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time, so tests that swap it see the messages."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail to stderr."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Log only warnings and errors."),
) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def fail(message: str) -> typer.Exit:
    print(f"Error: {message}", file=sys.stderr)
    return typer.Exit(1)


@app.command()
def validate(
    index: Path = IndexOption,
    assets: Optional[Path] = typer.Option(None, "--assets", help="Folder of .ki files to check against their entries (size, sha256, manifest)."),
) -> None:
    """Check the whole index; print each problem as path:line: message."""
    try:
        loaded = load_index(index)
    except InvalidIndex as error:
        for problem in error.problems:
            print(problem)
        raise fail(f"{len(error.problems)} problems in {index}")
    checked = 0
    if assets is not None:
        if not assets.is_dir():
            raise fail(f"--assets {assets}: folder not found")
        problems, checked = verify_assets(loaded, assets)
        if problems:
            for problem in problems:
                print(problem)
            raise fail(f"{len(problems)} problems in {index}")
    versions = sum(len(image.versions) for image in loaded.images.values())
    log.info("%s is valid: %d accounts, %d images, %d versions, %d asset files checked", index, len(loaded.accounts), len(loaded.images), versions, checked)


@app.command()
def add(
    file: Path = typer.Argument(..., help="The .ki file to add."),
    index: Path = IndexOption,
    url: str = typer.Option("", "--url", help="Download URL of the file; default: the registry's release asset URL."),
    pusher: Optional[str] = typer.Option(None, "--pusher", help="Account that pushes the version; default: the author."),
) -> None:
    """Add the version in a .ki file to the index."""
    try:
        image, version = add_image(index, file, url=url, pusher=pusher)
    except RegistryError as error:
        raise fail(str(error))
    print(f"added {image.author}/{image.name}:{version.version} size={version.size} sha256={version.sha256} -> {image.path}")


@app.command()
def build(
    index: Path = IndexOption,
    out: Path = typer.Option(Path("site"), "--out", help="Output folder; replaced as a whole when the build succeeds."),
) -> None:
    """Render the static API and pages into the output folder."""
    from .site import build_site

    try:
        summary = build_site(load_index(index), out)
    except InvalidIndex as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        raise fail(f"{len(error.problems)} problems in {index}; nothing was built")
    except RegistryError as error:
        raise fail(str(error))
    print(summary.line())


@app.command()
def serve(
    site: Path = typer.Option(Path("site"), "--site", help="Built site folder to serve."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="TCP port; 0 picks a free one."),
    assets: Optional[Path] = typer.Option(None, "--assets", help="Folder of .ki files to serve at /assets/ and to point download URLs at, for offline previews."),
) -> None:
    """Serve a built site, with the query-string API of kindo clients."""
    from .server import make_server

    try:
        server = make_server(site, host, port, assets)
    except RegistryError as error:
        raise fail(str(error))
    except OSError as error:
        raise fail(f"cannot listen on {host}:{port}: {error.strerror}")
    bound_host, bound_port = server.server_address[:2]
    print(f"serving {site} at http://{bound_host}:{bound_port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopped")
    finally:
        server.server_close()
