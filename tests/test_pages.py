"""Browse pages without a browser: rendered HTML, escaping of hostile data, links, size and texts."""

import json
import posixpath
import re
from pathlib import Path

import pytest
from conftest import REDIS_SHA256, REPOSITORY

from registry_index import api
from registry_index.extraction import Protection
from registry_index.index import Index, load_index
from registry_index.model import Account, Image, Settings, Version
from registry_index.pages import (
    Listing,
    author_listings,
    author_page_path,
    environment,
    human_size,
    image_page_path,
    is_http_url,
    latest_version,
    listed_versions,
    listing,
    load_messages,
    render_author_page,
    render_common_pages,
    render_image_page,
    templates_folder,
)
from registry_index.site import build_site

SITE_URL = "https://kindo-hub.github.io/registry-index/"
HOSTILE_SUMMARY = "<img src=x onerror=alert(1)>"
HOSTILE_SCRIPT = "</script><script>alert(2)</script>"
HOSTILE_NAME = "<svg onload=alert(3)>"
ACCOUNT = Account("cycore", "6f1c2a94", "cycore", "$2b$12$" + "a" * 53, "2026-12-04T19:00:00Z")


def hostile_index(tmp_path: Path) -> Index:
    """Build an index in memory with values the loader would reject (a `javascript:` homepage, markup in names)."""
    settings = Settings("<b>Registry</b>", "kindo-hub/registry-index", "images", SITE_URL)
    evil = Version(
        "1.0", "cycore-evil-1.0.ki", 1280, "a" * 64, "2026-12-04 19:17:10", "cycore",
        summary=HOSTILE_SUMMARY, license=HOSTILE_SCRIPT, homepage="javascript:alert(1)",
    )
    named = Version("2.0", "cycore-named-2.0.ki", 5, "b" * 64, "2026-12-04 19:17:11", "cycore", summary="plain")
    images = {
        ("cycore", "evil"): Image("cycore", "evil", [evil]),
        ("cycore", HOSTILE_NAME): Image("cycore", HOSTILE_NAME, [named]),
    }
    return Index(tmp_path, settings, {"cycore": ACCOUNT}, images)


def rendered(index: Index) -> dict[str, str]:
    """Render every page of `index` through the functions a build calls. The home page counts what search lists."""
    env = environment()
    settings = index.settings
    authors = author_listings(index)
    entries = [entry for entry in map(api.search_entry, index.sorted_images()) if entry is not None]
    pages = dict(render_common_pages(env, settings, [(author, len(listings)) for author, listings in authors], len(entries), sum(len(entry.versions) for entry in entries)))
    for image in index.sorted_images():
        page = render_image_page(env, settings, image)
        if page is not None:
            pages[image_page_path(image.author, image.name)] = page
    for author, listings in authors:
        pages[author_page_path(author)] = render_author_page(env, settings, author, listings)
    return {path: content.decode("utf-8") for path, content in pages.items() if not path.startswith("static/")}


PROTECTION = Protection(1, "scrypt", 2 ** 17, 8, 1, "c2FsdA", "lookup-id")


def public(version: str, **optional: str) -> Version:
    return Version(version, f"cycore-demo-{version}.ki", 10, "c" * 64, "2026-12-04 19:17:10", "cycore", **optional)


def private(version: str) -> Version:
    return Version(version, f"cycore-demo-{version}.ki.enc", 10, "9" * 64, "2026-12-04 19:17:10", "cycore", protection=PROTECTION, sealed="sealed")


@pytest.mark.parametrize("size, expected", [
    (0, "0 B"),
    (1, "1 B"),
    (1023, "1023 B"),
    (1024, "1.0 KiB"),
    (1075, "1.0 KiB"),
    (1076, "1.1 KiB"),
    (1280, "1.3 KiB"),
    (1048575, "1.0 MiB"),
    (1367041, "1.3 MiB"),
    (2386753, "2.3 MiB"),
    (5 * 1024 ** 3 + 1, "5.0 GiB"),
    (3 * 1024 ** 5, "3072.0 TiB"),
])
def test_human_size(size, expected):
    assert human_size(size) == expected


@pytest.mark.parametrize("value, expected", [
    ("https://example.org/redis", True),
    ("http://example.org", True),
    ("", False),
    ("javascript:alert(1)", False),
    ("JavaScript:alert(1)", False),
    (" https://example.org", False),
    ("data:text/html,<script>alert(1)</script>", False),
    ("//example.org/x", False),
    ('https://example.org/"onmouseover=alert(1)', False),
    ("ftp://example.org/x", False),
])
def test_is_http_url(value, expected):
    assert is_http_url(value) is expected


def test_hostile_summary_and_homepage_escaped(tmp_path):
    page = rendered(hostile_index(tmp_path))["images/cycore/evil.html"]
    assert "<title>cycore/evil · &lt;b&gt;Registry&lt;/b&gt;</title>" in page
    assert '<p class="summary">&lt;img src=x onerror=alert(1)&gt;</p>' in page
    assert '<td>&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;<td><code>' in page
    assert '<dt data-i18n="image.homepage">Homepage</dt>\n<dd>javascript:alert(1)</dd>' in page
    assert "<img" not in page
    assert "javascript:alert(1)</a>" not in page
    assert 'href="javascript' not in page
    assert page.count("<script") == 1
    assert '<script src="../../static/site.js"></script>' in page


def test_hostile_image_name_escaped(tmp_path):
    pages = rendered(hostile_index(tmp_path))
    page = pages["images/cycore/<svg onload=alert(3)>.html"]
    assert '<h1><a href="../../authors/cycore.html">cycore</a>/&lt;svg onload=alert(3)&gt;</h1>' in page
    assert '<code id="pull-latest">kindo pull cycore/&lt;svg onload=alert(3)&gt;:2.0</code>' in page
    assert "<svg" not in page
    author = pages["authors/cycore.html"]
    assert '<a href="../images/cycore/%3Csvg%20onload%3Dalert%283%29%3E.html">cycore/&lt;svg onload=alert(3)&gt;</a>' in author
    assert "<td>&lt;img src=x onerror=alert(1)&gt;\n" in author
    assert "<svg" not in author
    assert "<img" not in author


def test_hostile_version_fields_escaped(index_dir):
    index = load_index(index_dir)
    version = Version(
        "1.0", "cycore-demo-1.0.ki", 10, "c" * 64, "2026-12-04 19:17:10", "<i>pusher</i>",
        license="<b>MIT</b>", yanked="<script>alert(4)</script>",
    )
    index.images[("cycore", "demo")] = Image("cycore", "demo", [version])
    page = rendered(index)["images/cycore/demo.html"]
    assert (
        '<tr class="yanked"><th>1.0<br><span class="badge"><span data-i18n="versions.yanked">Yanked:</span> &lt;script&gt;alert(4)&lt;/script&gt;</span>'
        f'<td>10 B<td>2026-12-04 19:17:10<td>&lt;i&gt;pusher&lt;/i&gt;<td>&lt;b&gt;MIT&lt;/b&gt;<td><code>{"c" * 64}</code>\n'
    ) in page
    assert "<i>" not in page
    assert page.count("<script") == 1

def test_hostile_title_escaped_on_every_page(tmp_path):
    for path, page in rendered(hostile_index(tmp_path)).items():
        assert "<b>Registry</b>" not in page, path
        assert "&lt;b&gt;Registry&lt;/b&gt;" in page, path


def test_homepage_link_only_for_http(sample_index, tmp_path):
    index = load_index(sample_index)
    image = index.images[("cycore", "redis")]
    image.versions[0] = Version(**{**image.versions[0].__dict__, "homepage": "https://redis.io/", "license": "BSD-3-Clause"})
    page = rendered(index)["images/cycore/redis.html"]
    assert '<dd><a href="https://redis.io/" rel="nofollow noopener noreferrer">https://redis.io/</a></dd>' in page
    assert "<td>cycore<td>BSD-3-Clause<td>" in page


def test_sample_image_page(sample_index, tmp_path):
    page = rendered(load_index(sample_index))["images/cycore/redis.html"]
    assert '<dt data-i18n="image.pull">Pull the latest version</dt>\n<dd class="command copyable"><code id="pull-latest">kindo pull cycore/redis:3.0.4</code></dd>' in page
    assert '<dt data-i18n="image.platform">Platform</dt>\n<dd>linux</dd>' in page
    assert '<table class="versions copyable">' in page
    assert (
        '<tr><th data-i18n="versions.version">Version</th><th data-i18n="versions.size">Size</th>'
        '<th data-i18n="versions.buildtime">Build time</th><th data-i18n="versions.pusher">Pusher</th>'
        '<th data-i18n="versions.license">License</th><th data-i18n="versions.sha256">SHA-256</th></tr>'
    ) in page
    assert f"<tbody>\n<tr><th>3.0.4<td>1.3 MiB<td>2026-12-04 19:17:10<td>cycore<td><td><code>{REDIS_SHA256}</code>\n</tbody>" in page
    assert "<button" not in page
    assert 'class="yanked"' not in page


def test_image_page_of_ten_versions_under_3000_bytes(index_dir):
    """An image like those of benchmarks/synthetic_registry.py: most of a registry's pages are image pages, so their size sets the site's."""
    index = load_index(index_dir)
    versions = [
        Version(f"4.8.{patch}", f"acme316-airflow-java-4.8.{patch}.ki", 570193478, f"{patch:x}" * 64, "2018-06-08 07:19:06", "acme316",
                summary="erp search runner consul 9", license="Apache-2.0", platform="linux")
        for patch in range(10)
    ]
    image = Image("acme316", "acme316-airflow-java", versions)
    page = render_image_page(environment(), index.settings, image)
    assert page.count(b"<tr><th>4.8.") == 10
    assert len(page) < 3000


def test_yanked_version_marked(index_dir, tmp_path):
    versions = [
        Version("1.0", "cycore-demo-1.0.ki", 10, "c" * 64, "2026-12-04 19:17:10", "cycore"),
        Version("2.0", "cycore-demo-2.0.ki", 20, "d" * 64, "2026-12-04 19:17:11", "cycore", yanked="broken build"),
    ]
    index = load_index(index_dir)
    index.images[("cycore", "demo")] = Image("cycore", "demo", versions)
    page = rendered(index)["images/cycore/demo.html"]
    assert (
        '<tbody>\n<tr class="yanked"><th>2.0<br><span class="badge"><span data-i18n="versions.yanked">Yanked:</span> broken build</span>'
        f'<td>20 B<td>2026-12-04 19:17:11<td>cycore<td><td><code>{"d" * 64}</code>\n'
        f'<tr><th>1.0<td>10 B<td>2026-12-04 19:17:10<td>cycore<td><td><code>{"c" * 64}</code>\n</tbody>'
    ) in page
    assert '<code id="pull-latest">kindo pull cycore/demo:1.0</code>' in page


def test_every_version_yanked(index_dir):
    index = load_index(index_dir)
    version = Version("1.0", "cycore-demo-1.0.ki", 10, "c" * 64, "2026-12-04 19:17:10", "cycore", summary="old", yanked="withdrawn")
    index.images[("cycore", "demo")] = Image("cycore", "demo", [version])
    pages = rendered(index)
    assert '<dt data-i18n="image.latest">Latest version</dt>\n<dd><span data-i18n="image.no_latest">none: every version is yanked</span></dd>' in pages["images/cycore/demo.html"]
    assert 'id="pull-latest"' not in pages["images/cycore/demo.html"]
    assert '<p class="summary">old</p>' in pages["images/cycore/demo.html"]
    assert '<td><span data-i18n="image.no_latest">none: every version is yanked</span><td>1<td>\n' in pages["authors/cycore.html"]
    assert '<span data-i18n="home.intro" data-i18n-args="{&#34;images&#34;: 0, &#34;versions&#34;: 0}">Images: 0 · versions: 0</span>' in pages["index.html"]


def test_private_versions_absent_from_pages(index_dir):
    index = load_index(index_dir)
    index.images[("cycore", "demo")] = Image("cycore", "demo", [public("1.0", summary="public one"), private("2.0")])
    index.images[("cycore", "secret")] = Image("cycore", "secret", [private("1.0")])
    pages = rendered(index)
    page = pages["images/cycore/demo.html"]
    assert page.count("<tr><th>") == 1
    assert "<tr><th>1.0<td>" in page
    assert "2.0" not in page
    assert "9" * 64 not in page
    assert '<code id="pull-latest">kindo pull cycore/demo:1.0</code>' in page
    assert "images/cycore/secret.html" not in pages
    assert "secret" not in pages["authors/cycore.html"]
    assert '<td>1.0<td>1<td>public one\n' in pages["authors/cycore.html"]
    assert render_image_page(environment(), index.settings, index.images[("cycore", "secret")]) is None


@pytest.mark.parametrize("versions, expected", [
    ([public("1.0", summary="one"), public("1.10", summary="ten"), public("1.9")], Listing("cycore", "demo", "1.10", "ten", 3)),
    ([public("1.0", summary="one"), public("2.0", summary="two", yanked="broken")], Listing("cycore", "demo", "1.0", "one", 2)),
    ([public("1.0", summary="one", yanked="broken")], Listing("cycore", "demo", "", "", 1)),
    ([public("1.0", summary="one"), private("2.0")], Listing("cycore", "demo", "1.0", "one", 1)),
    ([public("9.0", summary="nine"), public("latest", summary="pinned")], Listing("cycore", "demo", "latest", "pinned", 2)),
    ([public("latest", summary="pinned", yanked="old"), public("1.0")], Listing("cycore", "demo", "latest", "pinned", 2)),
    ([private("1.0"), private("2.0")], None),
])
def test_listing(versions, expected):
    assert listing(Image("cycore", "demo", versions)) == expected


@pytest.mark.parametrize("versions", [
    [public("1.0"), public("1.10"), public("1.9")],
    [public("1.0"), public("2.0", yanked="broken")],
    [public("1.0", yanked="broken")],
    [public("1.0"), private("2.0"), public("1.5-rc1")],
    [public("9.0"), public("latest")],
    [public("latest", yanked="old"), public("1.0")],
    [public("V1.0"), public("v1.0.1"), public("1.0a")],
])
def test_latest_version_equals_image_latest(versions):
    image = Image("cycore", "demo", versions)
    assert latest_version(image) is image.latest()
    assert latest_version(image, listed_versions(image)) is image.latest()
    assert listed_versions(image) == [version for version in api.sorted_versions(image) if not version.is_private]


def test_common_pages(index_dir):
    index = load_index(index_dir)
    pages = dict(render_common_pages(environment(), index.settings, [("alice", 1), ("cycore", 0)], 7, 12))
    assert list(pages) == ["index.html", "404.html", "authors.html", "static/site.css", "static/site.js", "static/search.js"]
    authors_page = pages["authors.html"].decode()
    assert '<tbody>\n<tr><th><a href="authors/alice.html">alice</a><td>1\n<tr><th><a href="authors/cycore.html">cycore</a><td>0\n</tbody>' in authors_page
    assert 'data-i18n-args="{&#34;images&#34;: 7, &#34;versions&#34;: 12}">Images: 7 · versions: 12</span>' in pages["index.html"].decode()


def test_author_page_lists_in_order_given(index_dir):
    index = load_index(index_dir)
    listings = [Listing("Alice", "Zeta_App", "2.0", "last <one>", 3), Listing("Alice", "alpha", "", "", 1)]
    page = render_author_page(environment(), index.settings, "Alice", listings).decode()
    assert (
        '<tbody>\n<tr><th><a href="../images/alice/zeta-app.html">Alice/Zeta_App</a><td>2.0<td>3<td>last &lt;one&gt;\n'
        '<tr><th><a href="../images/alice/alpha.html">Alice/alpha</a><td><span data-i18n="image.no_latest">none: every version is yanked</span><td>1<td>\n</tbody>'
    ) in page
    assert "<title>Alice · kindo sample registry</title>" in page


def test_constant_texts_compiled_into_templates():
    """The UI texts are evaluated when a template compiles, not on every page: the compiled code contains them as strings."""
    env = environment()
    source = env.loader.get_source(env, "image.html")[0]
    code = env.compile(source, "image.html", raw=True)
    assert """yield '</dl>\\n<h2 data-i18n="image.versions">Versions</h2>""" in code
    # A filter call at run time would pass the key as a Python string literal.
    assert "'image.versions'" not in code
    assert "'versions.size'" not in code


def test_author_without_images(index_dir):
    pages = rendered(load_index(index_dir))
    assert '<p><span data-i18n="author.none">This author has published no images yet.</span></p>' in pages["authors/cycore.html"]
    assert '<tr><th><a href="authors/cycore.html">cycore</a><td>0\n' in pages["authors.html"]


def built_site(sample_index: Path, tmp_path: Path) -> Path:
    site = tmp_path / "site"
    build_site(load_index(sample_index), site)
    return site


def page_files(site: Path) -> list[Path]:
    return sorted((path for path in site.rglob("*") if path.is_file() and path.suffix in (".html", ".css", ".js")), key=str)


def test_page_files_of_sample_site(sample_index, tmp_path):
    site = built_site(sample_index, tmp_path)
    assert [str(path.relative_to(site)) for path in page_files(site)] == [
        "404.html", "authors.html", "authors/cycore.html",
        "images/cycore/redis.html", "images/cycore/tengine.html", "index.html",
        "static/search.js", "static/site.css", "static/site.js",
    ]


def test_home_page_under_50_kb(sample_index, tmp_path):
    site = built_site(sample_index, tmp_path)
    home = (site / "index.html").read_text()
    linked = re.findall(r'(?:href|src)="([^"#]*)"', home)
    assert sorted(linked) == ["./", "authors.html", "authors.html", "data:,", "static/search.js", "static/site.css", "static/site.js", "v1/index.json"]
    weight = sum((site / name).stat().st_size for name in ["index.html", "static/site.css", "static/site.js", "static/search.js"])
    assert weight < 50 * 1024


def test_no_external_host(sample_index, tmp_path):
    site = built_site(sample_index, tmp_path)
    found = {}
    for path in page_files(site):
        text = path.read_text()
        urls = re.findall(r"(?:https?:)?//[^\s\"'<>)]+", text)
        if urls:
            found[str(path.relative_to(site))] = sorted(set(urls))
    # Only data from the index: the site URL. The sample images have no homepage.
    assert found == {"404.html": [SITE_URL]}
    css = (site / "static/site.css").read_text()
    assert "url(" not in css
    assert "@import" not in css


def test_relative_links_resolve(sample_index, tmp_path):
    site = built_site(sample_index, tmp_path)
    checked = 0
    for path in page_files(site):
        if path.suffix != ".html" or path.name == "404.html":
            continue
        page = str(path.relative_to(site))
        for link in re.findall(r'(?:href|src)="([^"]*)"', path.read_text()):
            if link in ("#main", "data:,"):
                continue
            assert not link.startswith("/"), (page, link)
            target = posixpath.normpath(posixpath.join(posixpath.dirname(page), link))
            if link.endswith("/") or target == ".":
                target = posixpath.join(target, "index.html")
            assert not target.startswith(".."), (page, link)
            assert (site / target).is_file(), (page, link)
            checked += 1
    assert checked == 28


def test_404_page_is_self_contained(sample_index, tmp_path):
    site = built_site(sample_index, tmp_path)
    page = (site / "404.html").read_text()
    css = (templates_folder() / "static/site.css").read_text()
    assert f"<style>\n{css}</style>" in page
    assert re.findall(r'(?:href|src)="([^"]*)"', page) == ["data:,", SITE_URL, SITE_URL]
    assert "<h1>Not found · <span lang=\"zh-CN\">未找到</span></h1>" in page


def test_message_languages_have_same_keys():
    messages = load_messages()
    assert list(messages) == ["en", "zh-CN"]
    assert set(messages["en"]) == set(messages["zh-CN"])
    for language, table in messages.items():
        for key, text in table.items():
            assert text != "", (language, key)
            assert text.strip() == text, (language, key)
            assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", messages["en"][key])), (language, key)


def test_every_message_used_and_defined():
    messages = load_messages()["en"]
    folder = templates_folder()
    templates = "".join(path.read_text() for path in folder.glob("*.html"))
    scripts = "".join(path.read_text() for path in (folder / "static").glob("*.js"))
    used = set(re.findall(r'"([\w.]+)" \| (?:text|element|attribute|message)\b', templates))
    used |= set(re.findall(r'(?:format|translatedSpan)\("([\w.]+)"', scripts))
    used |= set(re.findall(r'\.i18n\w* = "([\w.]+)"', scripts))
    used |= set(re.findall(r'translated\("([\w.]+)"', (REPOSITORY / "registry_index/pages.py").read_text()))
    defined = {re.sub(r"\.(one|other)$", "", key) for key in messages}
    assert used == defined


def test_english_text_matches_messages(sample_index, tmp_path):
    messages = load_messages()["en"]
    site = built_site(sample_index, tmp_path)
    texts = 0
    marked = 0
    for path in page_files(site):
        if path.suffix != ".html":
            continue
        marked += path.read_text().count(' data-i18n="')
        for _, key, arguments, text in re.findall(r'<(\w+)[^>]*? data-i18n="([\w.]+)"(?: data-i18n-args="([^"]*)")?>([^<]*)</\1>', path.read_text()):
            expected = messages[key]
            if arguments:
                for name, value in json.loads(arguments.replace("&#34;", '"')).items():
                    expected = expected.replace("{" + name + "}", str(value))
            assert text.replace("&#39;", "'") == expected, (path.name, key)
            texts += 1
    # Five pages of the sample site; 404.html has both languages and no data-i18n.
    assert texts == 42
    assert marked == texts
