"""The local server: a built site over HTTP, plus the query-string API.

`serve` reads only the built files. Besides the static paths it answers
`GET /v1/search?q=` and `GET /v1/pull` in both styles that clients send: the API
document's `name`/`author`/`version` parameters and kindo 1.x's
`uniqueName=author/name:version`. Like the kindo hub, the query-string API
answers errors with HTTP 200 and a body `{"code": ..., "msg": ...}`, and its
image objects carry the unique name in `name`, which kindo 1.x splits to pull a
search result.
"""

from __future__ import annotations

import errno
import json
import logging
import mimetypes
import os
import re
import resource
import socket
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import secrets
import sys
import threading
import urllib.request

from . import extraction, names, search
from .api import CODE_NEEDED, anonymous_path, private_path, pull_path, sealed_context
from .errors import SiteError
from .lingering import LingeringCloser
from .site import MARKER

log = logging.getLogger(__name__)

# Hub error codes, as kindo 1.x clients know them.
IMAGE_NOT_FOUND = "040014040"
PARAMETER_INVALID = "010004000"
PARAMETER_EMPTY = "010004003"
PARAMETER_MISSING = "010004001"
# registry-index's own code for a server at its connection limit. The hub's
# code for that case, if it had one, is not known here.
SERVER_BUSY = "050000503"

MAX_TARGET_LENGTH = 4096
# A decrypting download link stays valid this many seconds after the pull that made it.
DOWNLOAD_LINK_SECONDS = 600
# Each scrypt derivation takes about 128 MiB and half a second of one core, so
# only this many run at once and other requests with a code wait their turn.
MAX_CONCURRENT_DERIVATIONS = 2
MAX_QUERY_FIELDS = 32
# Seconds the server waits for each read from a client. A client that sends a
# byte now and then keeps its connection open indefinitely, but every
# connection has its own thread, so it blocks no other client while fewer
# than the maximum number of connections are open.
REQUEST_TIMEOUT = 10
# Connections handled at once unless `serve --max-connections` sets another
# number. Each has its own thread, so this also bounds the handler threads.
MAX_CONNECTIONS = 64
# Connections past the maximum that may wait for a free slot at the same time,
# each in its own thread, and the seconds each waits before it gets HTTP 503.
# Any further connection gets HTTP 503 at once.
MAX_WAITING_CONNECTIONS = 16
SLOT_WAIT_SECONDS = 1.0
# Seconds between two log lines about rejected connections. The rejections in
# between are counted in the next line, so a flood of connections cannot flood the log.
REJECTION_LOG_SECONDS = 10.0
# Bytes of a rejected connection's request read and discarded, once before
# the 503 and again while the connection lingers after it, so that closing the
# socket does not reset the connection before the client reads the response.
MAX_DISCARDED_BYTES = 64 * 1024
# Seconds a rejected connection stays open after its 503 for the client to
# finish sending its request and close its side, and the number of rejected
# connections kept open at once, which bounds the file descriptors they use.
# A rejected connection past that number is closed right after its 503, and a
# client still sending may then see a reset.
LINGER_SECONDS = 2.0
MAX_LINGERING_CONNECTIONS = 256
# File descriptors kept free of connections: standard streams, the listening
# socket, the selectors and the closer's wake-up pair, with room to spare.
RESERVED_DESCRIPTORS = 32


def lingering_limit(max_connections: int) -> int:
    """Return how many rejected connections may linger within the process's open-file limit.

    Each handled connection may use two descriptors (its socket and a file it
    sends) and each waiting one uses one. Past the open-file limit, accept()
    fails with EMFILE and the server loop retries at once, using a whole core.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_LINGERING_CONNECTIONS
    free = soft - 2 * max_connections - MAX_WAITING_CONNECTIONS - RESERVED_DESCRIPTORS
    return max(0, min(MAX_LINGERING_CONNECTIONS, free))
# Bytes of a request line that parse_request percent-encodes: controls other
# than tab, and everything outside ASCII.
_RAW_BYTE = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f-\xff]")
# Query parameters whose values are secrets: kindo clients send the account
# token (a password equivalent) and extraction codes. Logs show them redacted.
# A decrypting download link is a bearer secret for as long as it lives.
_DECRYPT_TOKEN = re.compile(r"/v1/decrypt/[^/?#]+/")
_SECRET_PARAMETER = re.compile(r"(?<=[?&;])(token|code|password)=[^&;]*", re.IGNORECASE)
_SAFE_HOST = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")
_CONTENT_TYPES = {
    ".json": "application/json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".ki": "application/octet-stream",
}


class HubError(Exception):
    """An error the query-string API returns as `{"code": ..., "msg": ...}`."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Target:
    author: str | None
    name: str
    version: str | None
    code: str | None = None


@dataclass(frozen=True)
class DownloadLink:
    """A decrypting download link: the private record, its key, and the plaintext size."""

    record: dict
    key: bytes
    plaintext_size: int
    expires: float


def _single(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[-1] if values else None


def parse_unique_name(value: str) -> Target:
    """Split kindo 1.x's `author/name:version`; `anonymous/` and `:latest` mean not given."""
    author, _, rest = value.rpartition("/")
    name, _, version = rest.partition(":")
    return Target(author or None, name, version or None)


def pull_target(params: dict[str, list[str]]) -> Target:
    """Return the image a pull request names, from either parameter style."""
    unique = _single(params, "uniqueName")
    if unique is not None:
        if unique == "":
            raise HubError(PARAMETER_EMPTY, "parameter uniqueName is empty; send author/name:version")
        target = parse_unique_name(unique)
    else:
        name = _single(params, "name")
        if name is None:
            raise HubError(PARAMETER_MISSING, "missing required parameter name (or uniqueName)")
        if name == "":
            raise HubError(PARAMETER_EMPTY, "parameter name is empty; send the image name")
        target = Target(_single(params, "author") or None, name, _single(params, "version") or None)
    author = target.author
    if author is not None and author.lower() == names.ANONYMOUS:
        author = None
    version = target.version
    if version is not None and version.lower() == names.LATEST:
        version = names.LATEST
    checks = [names.name_problem(target.name)]
    if author is not None:
        checks.append(names.author_problem(author))
    if version is not None:
        checks.append(names.version_problem(version))
    for problem in checks:
        if problem is not None:
            raise HubError(PARAMETER_INVALID, f"parameter invalid: {problem}")
    return Target(author, target.name, version or names.LATEST, _single(params, "code") or None)


class Site:
    """Read access to a built site folder, shared by all request threads."""

    def __init__(self, root: Path, assets: Path | None = None):
        self.root = Path(os.path.realpath(root))
        self.assets = Path(os.path.realpath(assets)) if assets is not None else None
        self.links: dict[str, DownloadLink] = {}
        self.links_lock = threading.Lock()
        self.derivations = threading.BoundedSemaphore(MAX_CONCURRENT_DERIVATIONS)

    def read_json(self, relative: str) -> object | None:
        try:
            return json.loads((self.root / relative).read_bytes())
        except FileNotFoundError:
            return None

    def search(self, query: str) -> list[dict]:
        lowered = search.normalize_query(query)
        if lowered is None:
            return []
        first = self.read_json(search.node_path(lowered[:search.PREFIX_LENGTH]))
        node = first
        second = search.plan_lookup(lowered, first)
        if second is not None:
            node = self.read_json(search.node_path(second))
        images, total, truncated = search.answer(lowered, node)
        unique_names = search.unique_names(images)[:search.SHOWN]
        if len(unique_names) < total:
            log.info("search %r matches %d versions; returning the first %d", query, total, len(unique_names))
        # A node contains what a result list shows. The full objects are in the pull files.
        results = []
        for unique_name in unique_names:
            author, rest = unique_name.split("/", 1)
            name, version = rest.rsplit(":", 1)
            record = self.read_json(pull_path(author, name, version))
            if record is not None:
                results.append(record)
        return results

    def pull(self, target: Target) -> dict:
        author = target.author
        if author is None:
            owners = self.read_json(anonymous_path(target.name))
            if owners is None:
                raise HubError(IMAGE_NOT_FOUND, f"image not found: {target.name}")
            if len(owners["authors"]) > 1:
                listed = ", ".join(f"{owner}/{owners['name']}" for owner in owners["authors"])
                raise HubError(PARAMETER_INVALID, f"image name {target.name!r} is published by several authors ({listed}); give the author")
            author = owners["authors"][0]
        document = self.read_json(pull_path(author, target.name, target.version))
        if document is None:
            raise HubError(IMAGE_NOT_FOUND, f"image not found: {names.unique_name(author, target.name, target.version)}")
        if document.get("code") == CODE_NEEDED:
            return self._unlock(document, target)
        return document

    def _unlock(self, stub: dict, target: Target) -> dict:
        """Return the record of a private version when `target.code` is its extraction code."""
        if not target.code:
            raise HubError(CODE_NEEDED, "extraction code needed")

        protection = stub["protection"]
        try:
            extraction.check_parameters(protection["n"], protection["r"], protection["p"])
            with self.derivations:
                keys = extraction.derive_from_parameters(target.code, protection["salt"], protection["n"], protection["r"], protection["p"])
        except extraction.InvalidCode as error:
            raise HubError(CODE_NEEDED, f"extraction code is invalid: {error}") from None

        record = self.read_json(private_path(keys.lookup_id))
        if record is None:
            log.info("wrong extraction code for %s/%s:%s", target.author, target.name, target.version)
            raise HubError(CODE_NEEDED, "extraction code is wrong")
        context = sealed_context(record["author"], record["name"], record["version"])
        try:
            secret = json.loads(extraction.open_sealed(keys.encryption_key, record["sealed"], context))
        except extraction.WrongCodeOrTampered as error:
            log.error("sealed record of %s does not open: %s", record["unique_name"], error)
            raise HubError(CODE_NEEDED, "extraction code is wrong") from None

        token = secrets.token_urlsafe(24)
        with self.links_lock:
            now = time.monotonic()
            for stale in [key for key, link in self.links.items() if link.expires < now]:
                del self.links[stale]
            self.links[token] = DownloadLink(record, keys.encryption_key, secret["size"], now + DOWNLOAD_LINK_SECONDS)

        unlocked = {key: value for key, value in record.items() if key not in ("encrypted", "sealed")}
        unlocked.update({key: secret[key] for key in ("summary", "license", "homepage", "platform") if key in secret})
        unlocked.update({"sha256": secret["sha256"], "size": str(secret["size"]), "file": secret["file"], "url": f"/v1/decrypt/{token}/{secret['file']}"})
        return unlocked

    def link(self, token: str) -> DownloadLink | None:
        with self.links_lock:
            link = self.links.get(token)
        if link is None or link.expires < time.monotonic():
            return None
        return link

    def open_encrypted(self, record: dict):
        """Open the encrypted file of a private record: from the local assets folder, else from its URL."""
        local = self.asset_file(record["file"])
        if local is not None:
            return open(local, "rb")
        return urllib.request.urlopen(record["url"], timeout=60)  # noqa: S310 - http(s) URL from the built site

    def asset_file(self, name: str) -> Path | None:
        """Return the .ki (or encrypted .ki.enc) file `name` in the assets folder, never one outside it."""
        if self.assets is None or "/" in name or name in ("", ".", "..") or not name.endswith((".ki", ".ki.enc")):
            return None
        path = Path(os.path.realpath(self.assets / name))
        if path.parent != self.assets or not path.is_file():
            return None
        return path


def loggable_target(target: str) -> str:
    """Return a request target fit for the log: secret parameter values and download-link tokens redacted, at most 200 characters."""
    target = _DECRYPT_TOKEN.sub("/v1/decrypt/<redacted>/", target)
    return _SECRET_PARAMETER.sub(lambda match: f"{match[1]}=<redacted>", target)[:200]


def hub_object(record: dict) -> dict:
    """Return a static record in the hub's shape: `name` is the unique name."""
    shaped = dict(record)
    shaped["name"] = record["unique_name"]
    return shaped


class Handler(BaseHTTPRequestHandler):
    server_version = "registry-index"
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT
    # The headers and the body go out in two writes. With Nagle's algorithm the
    # second waits for the client's delayed ACK, which cost about 40 ms per
    # request on a kept-alive connection (Linux loopback, benchmarks/serve_load.py).
    disable_nagle_algorithm = True
    site: Site  # set on the subclass that make_server builds

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class names it so
        log.debug("%s " + format, self.client_address[0], *args)

    def parse_request(self) -> bool:
        """Percent-encode raw bytes of the request line, then parse it as http.server does.

        http.server (Python 3.11) decodes the line as Latin-1 and splits it with
        str.split(), which also splits at bytes 0x1C-0x1F, 0x85 and 0xA0, so a
        raw UTF-8 character could cut the target short. Encoded, such bytes are
        decoded as UTF-8, or rejected as invalid UTF-8, like %XX escapes, and
        control characters never reach the log.
        """
        line = self.raw_requestline
        content = line.rstrip(b"\r\n")
        self.raw_requestline = _RAW_BYTE.sub(lambda match: b"%%%02X" % match[0][0], content) + line[len(content):]
        return super().parse_request()

    def do_HEAD(self) -> None:
        self._handle(send_body=False)

    def do_GET(self) -> None:
        self._handle(send_body=True)

    def _handle(self, send_body: bool) -> None:
        started = time.monotonic()
        status, headers, body = self._route()
        size = body.size if isinstance(body, (_FileBody, _DecryptedBody)) else len(body)
        # Log before the body goes out, so the line exists by the time a client has the response.
        log.info('%s "%s %s" %d %d %.1fms', self.client_address[0], self.command, loggable_target(self.path), status, size, (time.monotonic() - started) * 1000)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if not send_body:
            return
        try:
            if isinstance(body, (_FileBody, _DecryptedBody)):
                body.send(self.wfile)
            else:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            log.info("%s closed the connection during %s", self.client_address[0], loggable_target(self.path))
        except (extraction.ExtractionError, OSError) as error:
            # The status line is out already, so the only signal left is a short body: close the connection.
            log.error("sending %s failed: %s", loggable_target(self.path), error)
            self.close_connection = True

    def _route(self):
        if len(self.path) > MAX_TARGET_LENGTH:
            return _json(HTTPStatus.REQUEST_URI_TOO_LONG, {"code": PARAMETER_INVALID, "msg": f"request target is longer than {MAX_TARGET_LENGTH} characters"})
        parts = urlsplit(self.path)
        if parts.path in ("/v1/search", "/v1/pull"):
            return _json(HTTPStatus.OK, self._query_api(parts.path, parts.query))
        try:
            path = unquote(parts.path, errors="strict")
        except UnicodeDecodeError:
            return _json(HTTPStatus.BAD_REQUEST, {"code": PARAMETER_INVALID, "msg": "request path is not valid UTF-8 after percent-decoding"})
        try:
            return self._static(path)
        except OSError as error:
            if error.errno == errno.ENAMETOOLONG:
                return self._not_found(path)
            log.error("cannot read %s: %s", path[:200], error)
            return _json(HTTPStatus.INTERNAL_SERVER_ERROR, {"code": PARAMETER_INVALID, "msg": "cannot read the file"})

    def _query_api(self, path: str, query: str) -> object:
        """Answer the query-string API; errors become hub error objects with HTTP 200, as kindo 1.x expects."""
        try:
            params = parse_qs(query, keep_blank_values=True, errors="strict", max_num_fields=MAX_QUERY_FIELDS)
        except UnicodeDecodeError:
            return {"code": PARAMETER_INVALID, "msg": "query string is not valid UTF-8 after percent-decoding"}
        except ValueError:
            return {"code": PARAMETER_INVALID, "msg": f"query string has more than {MAX_QUERY_FIELDS} parameters"}
        try:
            return self._search(params) if path == "/v1/search" else self._pull(params)
        except HubError as error:
            return {"code": error.code, "msg": error.message}

    def _search(self, params: dict[str, list[str]]) -> list[dict]:
        query = _single(params, "q")
        if query is None:
            raise HubError(PARAMETER_MISSING, "missing required parameter q")
        if query == "":
            raise HubError(PARAMETER_EMPTY, "parameter q is empty; send the text to search for")
        return [self._localize(hub_object(record)) for record in self.site.search(query)]

    def _pull(self, params: dict[str, list[str]]) -> dict:
        return self._localize(hub_object(self.site.pull(pull_target(params))))

    def _localize(self, document: dict) -> dict:
        """Point `url` at this server when the asset is in the local assets folder, or is a decrypting link."""
        if document.get("url", "").startswith("/v1/decrypt/"):
            document["url"] = f"http://{self._host()}{document['url']}"
            return document
        file_name = unquote(document.get("url", "").rsplit("/", 1)[-1])
        if self.site.asset_file(file_name) is not None:
            document["url"] = f"http://{self._host()}/assets/{file_name}"
        return document

    def _host(self) -> str:
        host = self.headers.get("Host", "")
        if _SAFE_HOST.fullmatch(host):
            return host
        address, port = self.server.server_address[:2]
        return f"{address}:{port}"

    def _static(self, path: str):
        segments = [segment for segment in path.split("/") if segment]
        if any(segment in (".", "..") or "\\" in segment or "\x00" in segment for segment in segments):
            return _json(HTTPStatus.BAD_REQUEST, {"code": PARAMETER_INVALID, "msg": "invalid path"})
        if len(segments) == 4 and segments[:2] == ["v1", "decrypt"]:
            link = self.site.link(segments[2])
            if link is None:
                return _json(HTTPStatus.NOT_FOUND, {"code": IMAGE_NOT_FOUND, "msg": "download link expired or unknown; pull again"})
            return HTTPStatus.OK, {"Content-Type": "application/octet-stream"}, _DecryptedBody(self.site, link)
        if len(segments) == 2 and segments[0] == "assets":
            asset = self.site.asset_file(segments[1])
            if asset is not None:
                return HTTPStatus.OK, {"Content-Type": "application/octet-stream"}, _FileBody(asset)
        file = self.site.root.joinpath(*segments)
        if file.is_dir():
            file = file / "index.html"
        real = Path(os.path.realpath(file))
        if real.is_file() and (real == self.site.root or self.site.root in real.parents) and not real.name.startswith("."):
            content_type = _CONTENT_TYPES.get(real.suffix) or mimetypes.guess_type(real.name)[0] or "application/octet-stream"
            if real.suffix == ".json" and self.site.assets is not None and segments[:2] in (["v1", "pull"], ["v1", "private"]):
                document = json.loads(real.read_bytes())
                if isinstance(document, dict) and "url" in document:
                    return _json(HTTPStatus.OK, self._localize(document))
            return HTTPStatus.OK, {"Content-Type": content_type}, real.read_bytes()
        return self._not_found(path)

    def _not_found(self, path: str):
        if [segment for segment in path.split("/") if segment][:1] == ["v1"]:
            return _json(HTTPStatus.NOT_FOUND, {"code": IMAGE_NOT_FOUND, "msg": f"not found: {path[:200]}"})
        page = self.site.root / "404.html"
        body = page.read_bytes() if page.is_file() else b"not found\n"
        return HTTPStatus.NOT_FOUND, {"Content-Type": "text/html; charset=utf-8"}, body


class _DecryptedBody:
    """A private image decrypted while it is sent, a few chunks in memory at a time."""

    def __init__(self, site: Site, link: DownloadLink):
        self.site = site
        self.link = link
        self.size = link.plaintext_size

    def send(self, stream) -> None:
        with self.site.open_encrypted(self.link.record) as source:
            for chunk in extraction.iter_decrypt(source, self.link.key):
                stream.write(chunk)


class _FileBody:
    """A file sent in chunks, so large downloads use constant memory."""

    def __init__(self, path: Path):
        self.path = path
        self.size = path.stat().st_size

    def send(self, stream) -> None:
        with open(self.path, "rb") as source:
            while chunk := source.read(256 * 1024):
                stream.write(chunk)


def _json(status: HTTPStatus, document: object):
    body = (json.dumps(document, ensure_ascii=False) + "\n").encode("utf-8")
    return status, {"Content-Type": "application/json; charset=utf-8"}, body


class RejectionLog:
    """Logs rejected connections: the first at once, then at most one line per `interval` seconds that counts the rest."""

    def __init__(self, interval: float = REJECTION_LOG_SECONDS):
        self.interval = interval
        self.lock = threading.Lock()
        self.last_logged: float | None = None
        self.unlogged = 0

    def rejected(self, client: str, max_connections: int) -> None:
        with self.lock:
            now = time.monotonic()
            if self.last_logged is not None and now - self.last_logged < self.interval:
                self.unlogged += 1
                return
            unlogged = self.unlogged
            self.unlogged = 0
            self.last_logged = now
        message = "%s: connection rejected with HTTP 503 because the server is at its connection maximum (%d); raise --max-connections if the load is expected"
        if unlogged:
            log.warning(message + " (%d more rejected since the previous message)", client, max_connections, unlogged)
        else:
            log.warning(message, client, max_connections)


class _ReleaseOnce:
    """Releases a semaphore on the first call only, from whichever thread calls first."""

    def __init__(self, semaphore: threading.BoundedSemaphore):
        self.semaphore = semaphore
        self.lock = threading.Lock()
        self.released = False

    def __call__(self) -> None:
        with self.lock:
            if self.released:
                return
            self.released = True
        self.semaphore.release()


class SiteServer(ThreadingHTTPServer):
    """A threading HTTP server that handles at most `max_connections` connections at once.

    A connection past the maximum waits up to SLOT_WAIT_SECONDS for a free
    slot in a thread of its own, while at most MAX_WAITING_CONNECTIONS wait.
    When no slot frees in time, or too many connections already wait, the
    connection gets an HTTP 503 with a hub error body and is closed once the
    client closes its side, or after LINGER_SECONDS.
    """

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, handler, max_connections: int = MAX_CONNECTIONS):
        if max_connections < 1:
            raise ValueError(f"max_connections is {max_connections}; it must be at least 1")
        self.max_connections = max_connections
        self.slots = threading.BoundedSemaphore(max_connections)
        self.waiting = threading.BoundedSemaphore(MAX_WAITING_CONNECTIONS)
        self.rejections = RejectionLog()
        lingering = lingering_limit(max_connections)
        if lingering < MAX_LINGERING_CONNECTIONS:
            log.debug("keeping at most %d rejected connections open, to stay within the open-file limit", lingering)
        self.closer = LingeringCloser(LINGER_SECONDS, lingering, MAX_DISCARDED_BYTES)
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:
        """Start a handler thread in a free slot, else a thread that waits for one, else reject the connection."""
        if self.slots.acquire(blocking=False):
            self._start(self._handle_in_slot, request, client_address, self.slots)
            return
        if self.waiting.acquire(blocking=False):
            self._start(self._wait_for_slot, request, client_address, self.waiting)
            return
        # This thread accepts every connection, so it does not wait for the
        # request: the 503 goes out at once and the closer reads the request.
        self._reject(request, client_address)

    def _start(self, target, request, client_address, semaphore: threading.BoundedSemaphore) -> None:
        """Run `target(request, client_address, release)` in a new thread, where `release` frees the acquired `semaphore` once.

        A signal can raise SystemExit in Thread.start() after the thread has
        started, and then both threads release. A second release would raise
        ValueError, which the server loop logs as a failed request. The
        SystemExit would be lost, and the server would not stop on SIGTERM.
        """
        release = _ReleaseOnce(semaphore)
        try:
            threading.Thread(target=target, args=(request, client_address, release), daemon=True).start()
        except BaseException:
            release()
            raise

    def _handle_in_slot(self, request, client_address, release: _ReleaseOnce) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            release()

    def _wait_for_slot(self, request, client_address, release: _ReleaseOnce) -> None:
        try:
            admitted = self.slots.acquire(timeout=SLOT_WAIT_SECONDS)
        finally:
            release()
        if admitted:
            self._handle_in_slot(request, client_address, _ReleaseOnce(self.slots))
        else:
            self._reject(request, client_address)

    def _reject(self, request: socket.socket, client_address) -> None:
        """Send HTTP 503 without blocking, then leave the connection to the closer."""
        self.rejections.rejected(client_address[0], self.max_connections)
        try:
            request.setblocking(False)
            _discard_received(request)
            request.send(_busy_response(self.max_connections))
            # End of file after the response, so the client reads it whole and closes its side.
            request.shutdown(socket.SHUT_WR)
        except OSError as error:
            log.debug("%s: sending the 503 failed: %s", client_address[0], error)
            self.close_request(request)
            return
        if not self.closer.add(request):
            log.debug("%s: closing the rejected connection at once, because %d rejected connections are open or the server is stopping", client_address[0], self.closer.max_connections)
            self.close_request(request)

    def server_close(self) -> None:
        super().server_close()
        self.closer.close()

    def handle_error(self, request, client_address) -> None:
        """Log a failed connection in one line; the base class prints a traceback to stderr."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.info("%s: connection ended: %s", client_address[0], error)
        else:
            log.exception("%s: request failed", client_address[0])


def _busy_response(max_connections: int) -> bytes:
    """Return the whole HTTP 503 response for a connection past the maximum."""
    document = {"code": SERVER_BUSY, "msg": f"server is busy at its connection maximum ({max_connections}); try again in a few seconds"}
    body = (json.dumps(document) + "\n").encode("utf-8")
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


def _discard_received(connection: socket.socket) -> None:
    """Read and drop what a non-blocking `connection` has received, up to MAX_DISCARDED_BYTES."""
    discarded = 0
    while discarded < MAX_DISCARDED_BYTES:
        try:
            data = connection.recv(MAX_DISCARDED_BYTES - discarded)
        except BlockingIOError:
            return
        if not data:
            return
        discarded += len(data)


def make_server(site_dir: Path | str, host: str = "127.0.0.1", port: int = 8000, assets: Path | str | None = None, max_connections: int = MAX_CONNECTIONS) -> SiteServer:
    """Return a server for the built site at `site_dir`; call serve_forever() to run it."""
    site_dir = Path(site_dir)
    if not (site_dir / MARKER).is_file():
        raise SiteError(f"{site_dir} is not a built site (no {MARKER}); run `registry-index build` first")
    if assets is not None and not Path(assets).is_dir():
        raise SiteError(f"--assets {assets}: folder not found; pass the folder that contains the .ki files")
    handler = type("SiteHandler", (Handler,), {"site": Site(site_dir, Path(assets) if assets else None)})
    return SiteServer((host, port), handler, max_connections)
