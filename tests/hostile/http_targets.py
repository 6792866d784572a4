"""Hostile requests to `registry-index serve`: raw request targets and the exact response to each.

The server serves the site built from the sample index (cycore/redis:3.0.4,
cycore/tengine:2.1.1) with the fixture images as local assets. Targets are
bytes, sent as they are, so they may hold what an HTTP library would escape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

INVALID = "010004000"
NOT_FOUND = "040014040"
JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class HttpCase:
    id: str
    target: bytes
    status: int
    content_type: str
    body: object = None  # the exact JSON document; None for HTML responses
    headers: dict[str, str] = field(default_factory=dict)


def invalid_path(target: bytes) -> tuple[bytes, int, str, dict]:
    return target, 400, JSON, {"code": INVALID, "msg": "invalid path"}


def hub_error(code: str, message: str) -> dict:
    return {"code": code, "msg": message}


NOT_UTF8_PATH = hub_error(INVALID, "request path is not valid UTF-8 after percent-decoding")
NOT_UTF8_QUERY = hub_error(INVALID, "query string is not valid UTF-8 after percent-decoding")
CYRILLIC_I = "U+0456 CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I"

CASES = [
    # Paths that climb out of the site folder.
    HttpCase("dot-dot", *invalid_path(b"/v1/../../etc/passwd")),
    HttpCase("encoded-dot-dot", *invalid_path(b"/v1/%2e%2e/%2e%2e/etc/passwd")),
    HttpCase("encoded-dot-dot-slash", *invalid_path(b"/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd")),
    HttpCase("encoded-backslash", *invalid_path(b"/v1/pull/..%5c..%5cetc%5cpasswd")),
    HttpCase("encoded-nul", *invalid_path(b"/v1/pull/cycore/redis/3.0.4.json%00.html")),
    HttpCase("absolute-form-dot-dot", *invalid_path(b"http://127.0.0.1/v1/../../etc/passwd")),
    HttpCase("assets-dot-dot", *invalid_path(b"/assets/..%2f..%2fetc%2fpasswd")),
    HttpCase("dot-file", b"/.registry-index-site", 404, HTML),
    # Bytes that are not UTF-8.
    HttpCase("overlong-utf8-dot", b"/v1/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd", 400, JSON, NOT_UTF8_PATH),
    HttpCase("encoded-invalid-utf8-path", b"/v1/pull/%ff.json", 400, JSON, NOT_UTF8_PATH),
    HttpCase("raw-invalid-utf8-path", b"/v1/pull/\xff.json", 400, JSON, NOT_UTF8_PATH),
    HttpCase("raw-invalid-utf8-query", b"/v1/pull?name=\xff", 200, JSON, NOT_UTF8_QUERY),
    HttpCase("encoded-invalid-utf8-query", b"/v1/search?q=%ed%a0%80", 200, JSON, NOT_UTF8_QUERY),
    # http.server splits the request line with str.split(), which takes bytes 0x85 and 0xA0 for whitespace.
    HttpCase("raw-utf8-with-byte-0x85", b"/v1/pull?name=\xc3\x85", 200, JSON,
             hub_error(INVALID, "parameter invalid: name '\u00c5' has characters outside letters, digits, '_' and '-' "
                                "(U+00C5 LATIN CAPITAL LETTER A WITH RING ABOVE at position 1); rename it")),
    HttpCase("raw-utf8-with-byte-0xa0", b"/v1/pull?name=\xe2\x80\xa0x", 200, JSON,
             hub_error(INVALID, "parameter invalid: name '\u2020x' has characters outside letters, digits, '_' and '-' "
                                "(U+2020 DAGGER at position 1); rename it")),
    HttpCase("raw-escape-character", b"/v1/pull?name=\x1b[31m", 200, JSON,
             hub_error(INVALID, "parameter invalid: name '\\x1b[31m' has characters outside letters, digits, '_' and '-'; rename it")),
    # Lengths and counts past the limits.
    HttpCase("target-4097", b"/v1/search?q=" + b"a" * (4097 - 13), 414, JSON,
             hub_error(INVALID, "request target is longer than 4096 characters")),
    HttpCase("target-4096", b"/v1/search?q=" + b"a" * (4096 - 13), 200, JSON, []),
    HttpCase("segment-300", b"/v1/" + b"a" * 300 + b".json", 404, JSON,
             hub_error(NOT_FOUND, "not found: /v1/" + "a" * 196)),
    HttpCase("parameters-33", b"/v1/pull?" + b"&".join(b"p%d=1" % number for number in range(33)), 200, JSON,
             hub_error(INVALID, "query string has more than 32 parameters")),
    HttpCase("header-line-70000", b"/v1/index.json", 431, "text/html;charset=utf-8", headers={"X-Filler": "y" * 70_000}),
    # Parameters that try to become paths, look like other names, or name devices.
    HttpCase("unique-name-dot-dot", b"/v1/pull?uniqueName=../../etc/passwd:1", 200, JSON,
             hub_error(INVALID, "parameter invalid: author '../../etc' has characters outside letters and digits; rename it")),
    HttpCase("version-encoded-dot-dot", b"/v1/pull?name=redis&version=..%2f..%2fx", 200, JSON,
             hub_error(INVALID, "parameter invalid: version '../../x' has characters outside letters, digits, '.' and '-', "
                                "starting with a letter or digit; rename it")),
    HttpCase("version-nul", b"/v1/pull?uniqueName=cycore/redis:3.0.4%00", 200, JSON,
             hub_error(INVALID, "parameter invalid: version '3.0.4\\x00' has characters outside letters, digits, '.' and '-', "
                                "starting with a letter or digit; rename it")),
    HttpCase("cyrillic-name", b"/v1/pull?uniqueName=cycore/red%D1%96s:3.0.4", 200, JSON,
             hub_error(INVALID, f"parameter invalid: name 'red\u0456s' has characters outside letters, digits, '_' and '-' "
                                f"({CYRILLIC_I} at position 4); rename it")),
    HttpCase("raw-cyrillic-name", b"/v1/pull?name=red\xd1\x96s", 200, JSON,
             hub_error(INVALID, f"parameter invalid: name 'red\u0456s' has characters outside letters, digits, '_' and '-' "
                                f"({CYRILLIC_I} at position 4); rename it")),
    HttpCase("fullwidth-name", b"/v1/pull?name=%EF%BD%92edis", 200, JSON,
             hub_error(INVALID, "parameter invalid: name '\uff52edis' has characters outside letters, digits, '_' and '-' "
                                "(U+FF52 FULLWIDTH LATIN SMALL LETTER R at position 1); rename it")),
    HttpCase("fullwidth-search", b"/v1/search?q=%EF%BD%92edis", 200, JSON, []),
    HttpCase("windows-con-author", b"/v1/pull?uniqueName=CON/redis:3.0.4", 200, JSON,
             hub_error(INVALID, "parameter invalid: author 'CON' is a reserved device name on Windows; choose another author")),
    HttpCase("windows-com1-static", b"/v1/pull/com1/redis/latest.json", 404, JSON,
             hub_error(NOT_FOUND, "not found: /v1/pull/com1/redis/latest.json")),
    HttpCase("search-dot-dot", b"/v1/search?q=%2e%2e%2f%2e%2e", 200, JSON, []),
]
