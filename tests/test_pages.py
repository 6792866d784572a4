"""Browse pages without a browser: rendered HTML, escaping of hostile data, links, size and texts."""

import json
import posixpath
import re
from pathlib import Path

import pytest

from conftest import REDIS_SHA256
from registry_index import api
from registry_index.index import Index, load_index
from registry_index.model import Account, Image, Settings, Version
from registry_index.pages import human_size, is_http_url, load_messages, render_pages, templates_folder
from registry_index.site import build_site

SITE_URL = "https://kindo-hub.github.io/registry-index/"
REDIS_URL = "https://github.com/kindo-hub/registry-index/releases/download/images/cycore-redis-3.0.4.ki"
TENGINE_URL = "https://github.com/kindo-hub/registry-index/releases/download/images/cycore-tengine-2.1.1.ki"
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
    return {path: content.decode("utf-8") for path, content in render_pages(index, api.search_records(index)) if not path.startswith("static/")}


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
    assert '<dt><span data-i18n="image.license">License</span></dt>\n<dd>&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;</dd>' in page
    assert '<dt><span data-i18n="image.homepage">Homepage</span></dt>\n<dd>javascript:alert(1)</dd>' in page
    assert "<img" not in page
    assert "javascript:alert(1)</a>" not in page
    assert 'href="javascript' not in page
    assert page.count("<script") == 1
    assert '<script src="../../static/site.js"></script>' in page


def test_hostile_image_name_escaped(tmp_path):
    pages = rendered(hostile_index(tmp_path))
    page = pages["images/cycore/<svg onload=alert(3)>.html"]
    assert '<h1><a href="../../authors/cycore.html">cycore</a>/&lt;svg onload=alert(3)&gt;</h1>' in page
    assert "<code id=\"pull-latest\">kindo pull cycore/&lt;svg onload=alert(3)&gt;:2.0</code>" in page
    assert "<svg" not in page
    author = pages["authors/cycore.html"]
    assert '<a href="../images/cycore/%3Csvg%20onload%3Dalert%283%29%3E.html">cycore/&lt;svg onload=alert(3)&gt;</a>' in author
    assert '<td>&lt;img src=x onerror=alert(1)&gt;</td>' in author
    assert "<svg" not in author
    assert "<img" not in author


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
    assert "<dd>BSD-3-Clause</dd>" in page


def test_sample_image_page(sample_index, tmp_path):
    page = rendered(load_index(sample_index))["images/cycore/redis.html"]
    assert '<p class="copyable command"><code id="pull-latest">kindo pull cycore/redis:3.0.4</code> <button type="button" class="copy" aria-describedby="pull-latest" hidden><span data-i18n="copy.button">Copy</span></button></p>' in page
    assert '<td class="nowrap"><data value="1367041">1.3 MiB</data></td>' in page
    assert f'<code class="hash" id="sha-v-3.0.4">{REDIS_SHA256}</code>' in page
    assert f'<a href="{REDIS_URL}" rel="nofollow noopener noreferrer">' in page
    assert "<dd>linux</dd>" in page
    assert 'class="yanked"' not in page


def test_yanked_version_marked(index_dir, tmp_path):
    versions = [
        Version("1.0", "cycore-demo-1.0.ki", 10, "c" * 64, "2026-12-04 19:17:10", "cycore"),
        Version("2.0", "cycore-demo-2.0.ki", 20, "d" * 64, "2026-12-04 19:17:11", "cycore", yanked="broken build"),
    ]
    index = load_index(index_dir)
    index.images[("cycore", "demo")] = Image("cycore", "demo", versions)
    page = rendered(index)["images/cycore/demo.html"]
    assert '<tr id="v-2.0" class="yanked">\n<th scope="row">2.0<br><span class="badge"><span data-i18n="versions.yanked">Yanked:</span> broken build</span></th>' in page
    assert '<tr id="v-1.0">\n<th scope="row">1.0</th>' in page
    assert page.index('id="v-2.0"') < page.index('id="v-1.0"')
    assert "<code id=\"pull-latest\">kindo pull cycore/demo:1.0</code>" in page


def test_every_version_yanked(index_dir):
    index = load_index(index_dir)
    version = Version("1.0", "cycore-demo-1.0.ki", 10, "c" * 64, "2026-12-04 19:17:10", "cycore", summary="old", yanked="withdrawn")
    index.images[("cycore", "demo")] = Image("cycore", "demo", [version])
    pages = rendered(index)
    assert '<dd><span data-i18n="image.no_latest">none: every version is yanked</span></dd>' in pages["images/cycore/demo.html"]
    assert 'id="pull-latest"' not in pages["images/cycore/demo.html"]
    assert '<p class="summary">old</p>' in pages["images/cycore/demo.html"]
    assert '<td colspan="3"><span data-i18n="image.no_latest">none: every version is yanked</span></td>' in pages["authors/cycore.html"]
    assert '<span data-i18n="home.intro" data-i18n-args="{&#34;images&#34;: 0, &#34;versions&#34;: 0}">Images: 0 · versions: 0</span>' in pages["index.html"]


def test_author_without_images(index_dir):
    pages = rendered(load_index(index_dir))
    assert '<p><span data-i18n="author.none">This author has published no images yet.</span></p>' in pages["authors/cycore.html"]
    assert '<tr><th scope="row"><a href="authors/cycore.html">cycore</a></th><td>0</td></tr>' in pages["authors.html"]


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
    # Only data from the index: the site URL and the download URLs.
    assert found == {
        "404.html": [SITE_URL],
        "images/cycore/redis.html": [REDIS_URL],
        "images/cycore/tengine.html": [TENGINE_URL],
    }
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
            if link in ("#main", "data:,") or link in (REDIS_URL, TENGINE_URL):
                continue
            assert not link.startswith("/"), (page, link)
            target = posixpath.normpath(posixpath.join(posixpath.dirname(page), link))
            if link.endswith("/") or target == ".":
                target = posixpath.join(target, "index.html")
            assert not target.startswith(".."), (page, link)
            assert (site / target).is_file(), (page, link)
            checked += 1
    assert checked == 34


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
    used = set(re.findall(r'(?:text|attribute|message)\((?:"[\w-]+", )?"([\w.]+)"', templates))
    used |= set(re.findall(r'format\("([\w.]+)"', scripts))
    defined = {re.sub(r"\.(one|other)$", "", key) for key in messages}
    assert used == defined


def test_english_text_matches_messages(sample_index, tmp_path):
    messages = load_messages()["en"]
    site = built_site(sample_index, tmp_path)
    spans = 0
    for path in page_files(site):
        if path.suffix != ".html":
            continue
        for key, arguments, text in re.findall(r'<span data-i18n="([\w.]+)"(?: data-i18n-args="([^"]*)")?>([^<]*)</span>', path.read_text()):
            expected = messages[key]
            if arguments:
                for name, value in json.loads(arguments.replace("&#34;", '"')).items():
                    expected = expected.replace("{" + name + "}", str(value))
            assert text.replace("&#39;", "'") == expected, (path.name, key)
            spans += 1
    assert spans > 60
