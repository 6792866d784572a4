"""The `registry-index` command line: each command parses, calls the library and reports.

Data goes to stdout; log messages and errors go to stderr.
"""

from __future__ import annotations

import getpass
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Optional

import typer

from .errors import InvalidIndex, RegistryError

log = logging.getLogger("registry_index")

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Build and serve a static, git-backed kindo image registry.",
)

IndexOption = typer.Option(Path("index"), "--index", help="Index folder (registry.yaml, accounts/, images/).")


def _exit_on_signal(number, frame) -> None:
    raise SystemExit(128 + number)


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
    level = logging.INFO
    if verbose:
        level = logging.DEBUG
    elif quiet:
        level = logging.WARNING
    # Turn SIGTERM into SystemExit, so a terminated build or add cleans up
    # its temporary files the way Ctrl-C does.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # PyGithub 2.10's GithubRetry logs each retry at INFO with a wait that
    # registry_index.ratelimit replaces and logs itself; show its lines with -v only.
    logging.getLogger("github.GithubRetry").setLevel(logging.DEBUG if verbose else logging.WARNING)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def fail(message: str) -> typer.Exit:
    print(f"Error: {message}", file=sys.stderr)
    return typer.Exit(1)


@app.command()
def validate(
    index: Path = IndexOption,
    assets: Optional[Path] = typer.Option(None, "--assets", help="Folder of .ki files to check against their entries (size, sha256, manifest)."),
) -> None:
    """Check the whole index; print each problem as path:line: message."""
    from .index import check_index
    from .verify import verify_assets

    if assets is not None and not assets.is_dir():
        raise fail(f"--assets {assets}: folder not found; pass the folder that contains the .ki files")
    asset_problems: list = []
    checked = 0

    def verify(image) -> None:
        nonlocal checked
        problems, count = verify_assets([image], assets)
        asset_problems.extend(problems)
        checked += count

    try:
        # One image at a time: at 100,000 images, keeping the whole index in memory takes more than a gigabyte.
        totals = check_index(index, None if assets is None else verify)
    except InvalidIndex as error:
        for problem in error.problems:
            print(problem)
        raise fail(f"{_count(len(error.problems), 'problem')} in {index}")
    if asset_problems:
        for problem in asset_problems:
            print(problem)
        raise fail(f"{_count(len(asset_problems), 'problem')} in {index}")
    log.info("%s is valid: %d accounts, %d images, %d versions, %d asset files checked", index, totals.accounts, totals.images, totals.versions, checked)


@app.command()
def add(
    file: Path = typer.Argument(..., help="The .ki file to add."),
    index: Path = IndexOption,
    url: str = typer.Option("", "--url", help="Download URL of the file; default: the registry's release asset URL."),
    pusher: Optional[str] = typer.Option(None, "--pusher", help="Account that pushes the version; default: the author."),
    code: Optional[str] = typer.Option(None, "--code", help="Extraction code: make the version private and encrypt its file."),
    encrypted_out: Optional[Path] = typer.Option(None, "--encrypted-out", help="With --code: folder outside the index to write the encrypted file to, for upload."),
) -> None:
    """Add the version in a .ki file to the index."""
    from .editing import add_image

    try:
        image, version = add_image(index, file, url=url, pusher=pusher, code=code, encrypted_folder=encrypted_out)
    except RegistryError as error:
        raise fail(str(error))
    print(f"added {image.author}/{image.name}:{version.version} size={version.size} sha256={version.sha256} -> {image.path}")


@app.command()
def build(
    index: Path = IndexOption,
    out: Path = typer.Option(Path("site"), "--out", help="Output folder; replaced as a whole when the build succeeds."),
    full: bool = typer.Option(False, "--full", help="Render every file again, even when only some image files changed."),
) -> None:
    """Render the static API and pages into the output folder.

    When the output folder contains a site built from the same settings,
    accounts and templates, only what the changed image files touch is
    rendered again, and the result is the same as a full build.
    """
    from .progress import Progress
    from .site import build_site

    try:
        summary = build_site(index, out, incremental=not full, progress=Progress())
    except InvalidIndex as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        raise fail(f"{_count(len(error.problems), 'problem')} in {index}; nothing was built")
    except RegistryError as error:
        raise fail(str(error))
    print(summary.line())


@app.command()
def serve(
    site: Path = typer.Option(Path("site"), "--site", help="Built site folder to serve."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port; 0 picks a free one."),
    assets: Optional[Path] = typer.Option(None, "--assets", help="Folder of .ki files to serve at /assets/ and to point download URLs at, for offline previews."),
    # 64 is server.MAX_CONNECTIONS, written out so that other commands need not import the server.
    max_connections: int = typer.Option(64, "--max-connections", min=1, help="Maximum number of connections handled at once; a connection past it waits up to 1 second for a free one, then gets HTTP 503."),
) -> None:
    """Serve a built site, with the query-string API of kindo clients."""
    from .server import make_server

    try:
        server = make_server(site, host, port, assets, max_connections)
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


TokenOption = typer.Option("", "--token", envvar="GITHUB_TOKEN", show_envvar=True, help="GitHub token.")
ApiOption = typer.Option("https://api.github.com", "--api-url", envvar="GITHUB_API_URL", show_envvar=True, help="GitHub REST API address.")
WriteIntervalOption = typer.Option(1.0, "--write-interval", help="Seconds between write requests to GitHub; GitHub asks for at least 1.")


def _github(token: str, api_url: str, write_interval: float):
    from .hosting import GitHub

    return GitHub(token, api_url, seconds_between_writes=write_interval)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    second = getpass.getpass("Password again: ")
    if first != second:
        raise fail("the two passwords differ; run register again")
    return first


@app.command()
def register(
    username: str = typer.Argument(..., help="Account name, which is also your author namespace."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from the first line of standard input."),
    index: Path = IndexOption,
    token: str = TokenOption,
    api_url: str = ApiOption,
    write_interval: float = WriteIntervalOption,
) -> None:
    """Open a pull request that registers an account owned by your GitHub user."""
    from .index import load_index
    from .proposals import register as register_account

    password = _read_password(password_stdin)
    try:
        account, url = register_account(load_index(index), _github(token, api_url, write_interval), username, password)
    except RegistryError as error:
        raise fail(str(error))
    log.info("pull request: %s", url)
    print(json.dumps({"uid": account.uid, "username": account.username}))


@app.command()
def push(
    file: Path = typer.Argument(..., help="The .ki file to publish."),
    code: Optional[str] = typer.Option(None, "--code", help="Extraction code: only people who know it can pull this version (6 to 64 characters)."),
    index: Path = IndexOption,
    token: str = TokenOption,
    api_url: str = ApiOption,
    write_interval: float = WriteIntervalOption,
) -> None:
    """Upload a .ki to your fork's release and open a pull request that adds it."""
    from .index import load_index
    from .proposals import push as push_image

    try:
        response, url = push_image(load_index(index), _github(token, api_url, write_interval), file, code=code)
    except RegistryError as error:
        raise fail(str(error))
    log.info("pull request: %s", url)
    print(json.dumps(response))


@app.command("check-pr")
def check_pr(
    base: str = typer.Option(..., "--base", help="Commit the pull request is based on."),
    head: str = typer.Option(..., "--head", help="Head commit of the pull request."),
    pr_author: str = typer.Option(..., "--pr-author", help="GitHub login of the pull request's author."),
    repository: Path = typer.Option(Path("."), "--repository", help="Git repository holding both commits."),
    trusted: bool = typer.Option(False, "--trusted", help="Allow changes outside index/ (for maintainers' pull requests)."),
    summary: Optional[Path] = typer.Option(None, "--summary", envvar="GITHUB_STEP_SUMMARY", help="Markdown file to append the result to."),
) -> None:
    """Validate a pull request: paths, ownership, immutability, schema and the new files."""
    from .review import check_pull_request, step_summary

    try:
        problems = check_pull_request(repository, base, head, pr_author, trusted=trusted)
    except RegistryError as error:
        raise fail(str(error))
    for problem in problems:
        print(problem)
    if summary is not None:
        with open(summary, "a", encoding="utf-8") as stream:
            stream.write(step_summary(problems, base, head))
    if problems:
        raise fail(f"{_count(len(problems), 'problem')} in the pull request")
    log.info("the pull request is valid")


@app.command()
def publish(
    index: Path = IndexOption,
    out: Path = typer.Option(Path("site"), "--out", help="Output folder of the site build."),
    token: str = TokenOption,
    api_url: str = ApiOption,
    write_interval: float = WriteIntervalOption,
) -> None:
    """Copy new .ki files into the registry's releases, then build the site."""
    from .progress import Progress
    from .publishing import mirror_index
    from .site import build_site, check_out

    progress = Progress(label="publish")
    try:
        # Before any upload, so a wrong --out costs no requests to GitHub.
        check_out(index, out)
        report = mirror_index(index, _github(token, api_url, write_interval), progress)
        progress.done()
        # From the folder, not the loaded index: the build reads it in worker processes and keeps state for the next one.
        summary = build_site(index, out, progress=Progress())
    except InvalidIndex as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        raise fail(f"{_count(len(error.problems), 'problem')} in {index}; nothing was published")
    except RegistryError as error:
        raise fail(str(error))
    finally:
        progress.done()
    print(f"published: {len(report.uploaded)} uploaded, {len(report.present)} already present, {len(report.replaced_partial)} half-uploaded replaced, {len(report.external)} hosted elsewhere")
    print(summary.line())


@app.command()
def pull(
    reference: str = typer.Argument(..., help="Image to pull: AUTHOR/NAME[:VERSION]; without a version, the latest."),
    code: Optional[str] = typer.Option(None, "--code", help="Extraction code of a private version."),
    source: str = typer.Option("http://127.0.0.1:8000", "--from", help="Address of the registry site."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="File to write; default: the image's file name in the current folder."),
) -> None:
    """Download an image using only the site's static files, and check its sha256."""
    from .client import pull as pull_image

    try:
        pulled = pull_image(source, reference, code=code, output=output)
    except RegistryError as error:
        raise fail(str(error))
    print(f"pulled {pulled.unique_name} size={pulled.size} sha256={pulled.sha256} -> {pulled.path}")
