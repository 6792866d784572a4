"""Browse pages in a real browser: Debian's headless Chromium driven by Playwright.

Every test serves a built site with `make_server` on 127.0.0.1 and aborts any
request that leaves loopback. Screenshots go to `test-artifacts/`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import REPOSITORY, SAMPLE_INDEX

from registry_index import api, names, search
from registry_index.index import Index, load_index
from registry_index.model import Account, Image, Settings, Version
from registry_index.server import make_server
from registry_index.site import build_site

CHROMIUM = Path("/usr/bin/chromium")
# Flags for a sandboxed CI container without a display or network: no
# sandbox (root), and no background traffic to Google services.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = REPOSITORY / "test-artifacts"
HOSTILE_SUMMARY = "<img src=x onerror=alert(1)></script><script>alert(2)</script>"


def _browser_problem() -> str | None:
    if not CHROMIUM.exists():
        return f"Debian's chromium is not installed at {CHROMIUM}; run `apt-get install -y chromium` (.ci/run does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed; run `pip install -e '.[test]'`"
    return None


@pytest.fixture(scope="module")
def browser():
    problem = _browser_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {problem}")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def new_context(browser):
    """Open browser contexts that abort every request leaving 127.0.0.1; fail the test if one was made."""
    contexts = []
    outside: list[str] = []

    def guard(route):
        url = route.request.url
        if url.startswith("data:") or urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    def open_context(**options):
        options.setdefault("locale", "en-US")
        context = browser.new_context(**options)
        context.set_default_timeout(5000)
        context.route("**/*", guard)
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()
    assert outside == []


def serve(site: Path) -> tuple[str, object]:
    server = make_server(site, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/", server


def stop(server) -> None:
    server.shutdown()
    server.server_close()


def version_entry(author: str, name: str, version: str, size: int, buildtime: str, **optional: str) -> dict:
    entry = {
        "version": version,
        "file": f"{author}-{name}-{version}.ki".lower(),
        "size": size,
        "sha256": hashlib.sha256(f"{author}/{name}:{version}".encode()).hexdigest(),
        "buildtime": buildtime,
        "pusher": author,
    }
    entry.update(optional)
    return entry


def write_image(index: Path, author: str, name: str, versions: list[dict]) -> None:
    """Write an image YAML file; JSON strings are valid YAML double-quoted scalars."""
    lines = [f"author: {json.dumps(author)}", f"name: {json.dumps(name)}", "versions:"]
    for entry in versions:
        for position, (key, value) in enumerate(entry.items()):
            prefix = "  - " if position == 0 else "    "
            lines.append(f"{prefix}{key}: {value if isinstance(value, int) else json.dumps(value)}")
    folder = index / "images" / author
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def browse_folder(tmp_path_factory) -> Path:
    """The site of the sample index plus an author `alice` with summaries, several versions, a yanked one and a hostile summary."""
    root = tmp_path_factory.mktemp("browse")
    index = root / "index"
    shutil.copytree(SAMPLE_INDEX, index)
    (index / "accounts/alice.yaml").write_text((index / "accounts/cycore.yaml").read_text().replace('"cycore"', '"alice"'))
    write_image(index, "alice", "webserver", [
        version_entry("alice", "webserver", "1.0.0", 1048576, "2026-11-01 10:00:00", summary="A small static web server", license="MIT"),
        version_entry("alice", "webserver", "1.2.0", 1536000, "2026-11-02 10:00:00", summary="A small static web server", license="MIT", homepage="https://example.org/webserver"),
        version_entry("alice", "webserver", "2.0.0-rc1", 1600000, "2026-11-03 10:00:00", summary="A small static web server", yanked="broken TLS configuration"),
    ])
    write_image(index, "alice", "redis-tools", [
        version_entry("alice", "redis-tools", "0.9", 20480, "2026-10-01 08:30:00", summary="Command line tools for redis"),
    ])
    write_image(index, "alice", "trap", [
        version_entry("alice", "trap", "1.0", 100, "2026-10-02 08:30:00", summary=HOSTILE_SUMMARY),
    ])
    site = root / "site"
    loaded = load_index(index)
    build_site(loaded, site)
    return site


@pytest.fixture(scope="module")
def browse_site(browse_folder) -> str:
    base, server = serve(browse_folder)
    yield base
    stop(server)


def open_home(context, base: str, query: str = ""):
    """Open the home page and type `query` key by key; return once its results are shown."""
    page = context.new_page()
    page.goto(base)
    wait_for_results(page, "")
    if query:
        page.locator("#q").press_sequentially(query)
        wait_for_results(page, query.strip())
    return page


def wait_for_results(page, query: str) -> None:
    """Wait until the results shown are those of `query`, not of an earlier keystroke."""
    from playwright.sync_api import expect

    expect(page.locator("#results")).to_have_attribute("data-query", query)


def expect_status(page, text):
    from playwright.sync_api import expect

    expect(page.locator("#search-status")).to_have_text(text)


def result_names(page) -> list[str]:
    return page.locator("#results .result-name").all_text_contents()


def test_search_as_you_type(browse_site, new_context):
    page = open_home(new_context(), browse_site)
    expect_status(page, "5 images match.")
    assert result_names(page) == ["alice/redis-tools:0.9", "alice/trap:1.0", "alice/webserver:1.2.0", "cycore/redis:3.0.4", "cycore/tengine:2.1.1"]

    page.get_by_label("Search images").press_sequentially("redis")
    wait_for_results(page, "redis")
    expect_status(page, "2 images match.")
    assert result_names(page) == ["alice/redis-tools:0.9", "cycore/redis:3.0.4"]
    assert page.locator("#results .result-summary").all_text_contents() == ["Command line tools for redis", "No summary."]
    assert page.locator("#results .result-meta").all_text_contents() == [
        "Latest 0.9 · Size 20.0 KiB · Built 2026-10-01 08:30:00",
        "Latest 3.0.4 · Size 1.3 MiB · Built 2026-12-04 19:17:10",
    ]
    assert page.url == browse_site + "?q=redis"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "home.png"), full_page=True)


@pytest.mark.parametrize("query, status, names, metas", [
    ("webserver", "1 image matches.", ["alice/webserver:1.2.0"], ["Latest 1.2.0 · Size 1.5 MiB · Built 2026-11-02 10:00:00 · 2 matching versions"]),
    # The name is that of the matching version; size and build time are the latest version's.
    ("WebServer:1.0", "1 image matches.", ["alice/webserver:1.0.0"], ["Latest 1.2.0 · Size 1.5 MiB · Built 2026-11-02 10:00:00"]),
    ("s", "3 images match.", ["alice/redis-tools:0.9", "alice/webserver:1.2.0", "cycore/redis:3.0.4"], [
        "Latest 0.9 · Size 20.0 KiB · Built 2026-10-01 08:30:00",
        "Latest 1.2.0 · Size 1.5 MiB · Built 2026-11-02 10:00:00 · 2 matching versions",
        "Latest 3.0.4 · Size 1.3 MiB · Built 2026-12-04 19:17:10",
    ]),
    ("rc1", "No images match.", [], []),
    ("zzz", "No images match.", [], []),
    ("redis tools", "No images match: names contain only letters, digits and - _ . / :", [], []),
    ("é", "No images match: names contain only letters, digits and - _ . / :", [], []),
])
def test_search_results_table(browse_site, new_context, query, status, names, metas):
    page = open_home(new_context(), browse_site, query)
    expect_status(page, status)
    assert result_names(page) == names
    assert page.locator("#results .result-meta").all_text_contents() == metas


def test_result_opens_image_page(browse_site, new_context):
    page = open_home(new_context(), browse_site, "webserver")
    expect_status(page, "1 image matches.")
    page.locator("#results a.result").first.click()
    page.wait_for_url(browse_site + "images/alice/webserver.html")
    assert page.locator("h1").text_content() == "alice/webserver"
    assert page.locator("#pull-latest").text_content() == "kindo pull alice/webserver:1.2.0"
    assert page.locator("p.summary").text_content() == "A small static web server"
    homepage = page.get_by_role("link", name="https://example.org/webserver")
    assert homepage.get_attribute("href") == "https://example.org/webserver"
    rows = page.locator("table.versions tbody tr")
    assert rows.count() == 3
    assert rows.nth(0).locator("th").text_content() == "2.0.0-rc1Yanked: broken TLS configuration"
    assert rows.nth(0).get_attribute("class") == "yanked"
    assert rows.nth(1).locator("td").all_text_contents()[:4] == ["1.5 MiB", "2026-11-02 10:00:00", "alice", "MIT"]
    assert rows.nth(2).locator("code").all_text_contents() == [hashlib.sha256(b"alice/webserver:1.0.0").hexdigest()]
    assert rows.nth(2).locator("button.copy").text_content() == "Copy"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "image.png"), full_page=True)

    page.get_by_role("link", name="alice").first.click()
    page.wait_for_url(browse_site + "authors/alice.html")
    assert page.locator("table.images tbody th").all_text_contents() == ["alice/redis-tools", "alice/trap", "alice/webserver"]


def test_keyboard_navigation(browse_site, new_context):
    page = open_home(new_context(), browse_site, "alice")
    expect_status(page, "3 images match.")
    search_box = page.get_by_label("Search images")

    def focused() -> str:
        return page.evaluate("document.activeElement.id || document.activeElement.querySelector('.result-name').textContent")

    search_box.press("ArrowDown")
    assert focused() == "alice/redis-tools:0.9"
    page.keyboard.press("ArrowDown")
    assert focused() == "alice/trap:1.0"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert focused() == "alice/webserver:1.2.0"
    page.keyboard.press("Home")
    assert focused() == "alice/redis-tools:0.9"
    page.keyboard.press("ArrowUp")
    assert focused() == "q"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("End")
    assert focused() == "alice/webserver:1.2.0"
    page.keyboard.press("Escape")
    assert focused() == "q"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_url(browse_site + "images/alice/trap.html")

    page.go_back()
    page.locator("h1").click()
    page.keyboard.press("/")
    assert focused() == "q"
    search_box.fill("tengine")
    wait_for_results(page, "tengine")
    expect_status(page, "1 image matches.")
    search_box.press("Enter")
    page.wait_for_url(browse_site + "images/cycore/tengine.html")


def test_language_from_browser_and_switch(browse_site, new_context):
    context = new_context(locale="zh-CN")
    page = open_home(context, browse_site, "redis")
    expect_status(page, "2 个镜像匹配。")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert page.locator("label[for=q]").text_content() == "搜索镜像"
    assert page.locator("#q").get_attribute("placeholder") == "作者/名称:版本"
    assert page.locator("#results .result-meta").first.text_content() == "最新 0.9 · 大小 20.0 KiB · 构建于 2026-10-01 08:30:00"
    switch = page.locator("#language")
    assert (switch.text_content(), switch.get_attribute("lang")) == ("English", "en")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "home-zh-CN.png"), full_page=True)

    switch.click()
    expect_status(page, "2 images match.")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.locator("label[for=q]").text_content() == "Search images"
    assert (switch.text_content(), switch.get_attribute("lang")) == ("中文", "zh-CN")

    # The choice outlives the page and beats the browser's language.
    page.goto(browse_site + "images/cycore/redis.html")
    assert page.locator("table.versions thead th").all_text_contents()[:3] == ["Version", "Size", "Build time"]
    page.locator("#language").click()
    assert page.locator("table.versions thead th").all_text_contents()[:3] == ["版本", "大小", "构建时间"]
    assert page.locator("button.copy").first.text_content() == "复制"
    page.goto(browse_site)
    expect_status(page, "5 个镜像匹配。")
    assert page.evaluate("localStorage.getItem('registry-index.language')") == "zh-CN"


def test_language_defaults_to_english(browse_site, new_context):
    page = open_home(new_context(locale="fr-FR"), browse_site)
    expect_status(page, "5 images match.")
    assert page.evaluate("document.documentElement.lang") == "en"


def test_copy_buttons(browse_site, new_context):
    from playwright.sync_api import expect

    context = new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(browse_site + "images/alice/webserver.html")
    button = page.locator("dd.command button.copy")
    button.click()
    # The label changes once the clipboard write has finished.
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "kindo pull alice/webserver:1.2.0"
    assert page.locator("#copy-status").text_content() == "Copied"
    assert page.locator("button.copy").count() == 4
    hash_button = page.locator("table.versions tbody tr").nth(2).locator("button.copy")
    hash_button.click()
    expect(hash_button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == hashlib.sha256(b"alice/webserver:1.0.0").hexdigest()


def test_hostile_summary_stays_text(browse_site, new_context):
    page = open_home(new_context(), browse_site, "trap")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    expect_status(page, "1 image matches.")
    assert page.locator("#results .result-summary").text_content() == HOSTILE_SUMMARY
    assert page.locator("img").count() == 0
    page.locator("#results a.result").click()
    page.wait_for_url(browse_site + "images/alice/trap.html")
    assert page.locator("p.summary").text_content() == HOSTILE_SUMMARY
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 1
    assert dialogs == []


def test_pages_work_without_javascript(browse_site, new_context):
    page = new_context(java_script_enabled=False).new_page()
    page.goto(browse_site + "images/alice/webserver.html")
    assert page.locator("#pull-latest").text_content() == "kindo pull alice/webserver:1.2.0"
    assert page.locator("table.versions tbody tr").count() == 3
    # The last cell ends with the newline after the row, because cells and rows have no end tags.
    cells = page.locator("table.versions tbody tr").nth(1).locator("td").all_text_contents()
    assert [cell.strip() for cell in cells] == [
        "1.5 MiB", "2026-11-02 10:00:00", "alice", "MIT", hashlib.sha256(b"alice/webserver:1.2.0").hexdigest(),
    ]
    # The copy buttons and the language switch need JavaScript, which adds them.
    assert page.locator("button").count() == 0
    page.goto(browse_site)
    noscript = page.locator("noscript p")
    assert noscript.text_content() == "Search as you type needs JavaScript. Without it, browse the images by author: Authors"
    page.get_by_role("link", name="Authors").last.click()
    page.wait_for_url(browse_site + "authors.html")
    assert page.locator("table.authors tbody th").all_text_contents() == ["alice", "cycore"]


def test_missing_page_answers_404(browse_site, new_context):
    page = new_context().new_page()
    response = page.goto(browse_site + "images/nobody/nothing.html")
    assert response.status == 404
    assert page.locator("h1").text_content() == "Not found · 未找到"
    assert page.evaluate("getComputedStyle(document.body).maxWidth") == "1152px"


CONTRAST_SCRIPT = """
() => {
  function parse(color) {
    const parts = color.match(/[\\d.]+/g).map(Number);
    return { r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1 };
  }
  function luminance(color) {
    const channel = (value) => {
      value /= 255;
      return value <= 0.03928 ? value / 12.92 : Math.pow((value + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * channel(color.r) + 0.7152 * channel(color.g) + 0.0722 * channel(color.b);
  }
  function background(element) {
    for (let current = element; current; current = current.parentElement) {
      const color = parse(getComputedStyle(current).backgroundColor);
      if (color.a > 0) {
        return color;
      }
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  }
  const measured = [];
  for (const element of document.body.querySelectorAll("*")) {
    const ownText = Array.from(element.childNodes).some((node) => node.nodeType === 3 && node.textContent.trim());
    const box = element.getBoundingClientRect();
    if (!ownText || element.getClientRects().length === 0 || box.right <= 0 || box.width <= 1) {
      continue;
    }
    const first = luminance(parse(getComputedStyle(element).color));
    const second = luminance(background(element));
    const ratio = (Math.max(first, second) + 0.05) / (Math.min(first, second) + 0.05);
    measured.push([element.tagName + "." + element.className + " " + element.textContent.trim().slice(0, 30), Math.round(ratio * 100) / 100]);
  }
  return measured;
}
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrast(browse_site, new_context, scheme):
    context = new_context(color_scheme=scheme)
    home = open_home(context, browse_site, "webserver")
    expect_status(home, "1 image matches.")
    image = context.new_page()
    image.goto(browse_site + "images/alice/webserver.html")
    for page in (home, image):
        measured = page.evaluate(CONTRAST_SCRIPT)
        assert len(measured) > 10
        low = [(text, ratio) for text, ratio in measured if ratio < 4.5]
        assert low == []


def test_site_served_from_sub_path(browse_folder, new_context, tmp_path):
    """Serve the site below /registry/ with a plain static file server, as GitHub Pages serves a project site."""
    shutil.copytree(browse_folder, tmp_path / "registry")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *arguments: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/registry/"
    try:
        page = new_context().new_page()
        failed = []
        page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
        page.goto(base)
        expect_status(page, "5 images match.")
        page.get_by_label("Search images").fill("tengine")
        wait_for_results(page, "tengine")
        expect_status(page, "1 image matches.")
        page.locator("#results a.result").click()
        page.wait_for_url(base + "images/cycore/tengine.html")
        assert page.evaluate("getComputedStyle(document.body).maxWidth") == "1152px"
        page.get_by_role("link", name="cycore").first.click()
        page.wait_for_url(base + "authors/cycore.html")
        page.get_by_role("link", name="Authors").click()
        page.wait_for_url(base + "authors.html")
        page.locator("a.brand").click()
        page.wait_for_url(base)
        expect_status(page, "5 images match.")
        assert failed == []
    finally:
        server.shutdown()
        server.server_close()


def bulk_index(root: Path) -> Index:
    """Build an index in memory whose search has truncated nodes: 1,040 versions contain `app-`, more than `search.LIMIT`."""
    settings = Settings("bulk registry", "kindo-hub/registry-index", "images", "https://kindo-hub.github.io/registry-index/")
    account = Account("bulk", "bulk-1", "bulk", "$2b$12$" + "a" * 53, "2026-12-04T19:00:00Z")
    images = {}
    for number in range(520):
        name = f"app-{number:03d}"
        versions = [
            Version(version, f"bulk-{name}-{version}.ki", 1000 + number, "e" * 64, f"2026-12-04 19:17:1{minor}", "bulk", summary=f"{name} {version}")
            for minor, version in enumerate(("1.0", "1.1"))
        ]
        images[("bulk", name)] = Image("bulk", name, versions)
    images[("bulk", "tool")] = Image("bulk", "tool", [Version("2.0", "bulk-tool-2.0.ki", 5, "f" * 64, "2026-12-04 19:17:10", "bulk")])
    return Index(root, settings, {"bulk": account}, images)


@pytest.fixture(scope="module")
def bulk_site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bulk") / "site"
    # The index exists only in memory, so its root only has to lie outside the site.
    index = bulk_index(folder.parent / "index")
    build_site(index, folder)
    base, server = serve(folder)
    yield base, index
    stop(server)


def substring_match(index: Index, query: str) -> dict:
    """Return what the page's lookup must return for `query`, by brute force over every searchable version of `index`.

    Every matching version when there are at most `search.LIMIT`, else the
    first `search.SHOWN` in search order, grouped by image; `total` counts
    every matching version.
    """
    lowered = query.lower()
    matches = []
    for image in index.sorted_images():
        for version in api.sorted_versions(image):
            if not version.yanked and not version.is_private and lowered in names.unique_name(image.author, image.name, version.version).lower():
                matches.append((image, version.version))
    results: list[dict] = []
    truncated = len(matches) > search.LIMIT
    for image, version in matches[:search.SHOWN] if truncated else matches:
        image_name = f"{image.author}/{image.name}"
        if not results or results[-1]["image"] != image_name:
            latest = image.latest()
            results.append({
                "image": image_name, "versions": [], "latest": latest.version, "summary": latest.summary,
                "size": str(latest.size), "buildtime": latest.buildtime,
            })
        results[-1]["versions"].append(version)
    return {"results": results, "total": len(matches), "truncated": truncated}


def open_bulk_home(context, base: str, requested: list[str]):
    """Open the home page with a query that needs no read, so no search node is cached; record search reads."""
    page = context.new_page()
    page.on("request", lambda request: requested.append(request.url) if "/v1/search/" in request.url else None)
    page.goto(base + "?q=%C3%A9")
    expect_status(page, "No images match: names contain only letters, digits and - _ . / :")
    return page


# (query, search files the page reads): never more than two.
BULK_QUERIES = [
    ("", 1),
    ("a", 1),
    ("ap", 1),
    ("app", 1),
    ("app-", 2),
    ("APP-05", 2),
    ("app-1", 2),
    ("app-12", 2),
    ("app-129:1.1", 2),
    ("bulk/app", 2),
    ("bulk/app-0", 2),
    (":1.1", 2),
    ("tool", 1),
    ("1.0", 1),
    ("zzz", 1),
    ("app-999", 2),
]


@pytest.mark.parametrize("query, reads", BULK_QUERIES)
def test_page_search_equals_substring_match(bulk_site, new_context, query, reads):
    base, index = bulk_site
    requested = []
    page = open_bulk_home(new_context(), base, requested)

    answer = page.evaluate("(query) => window.RegistryIndex.lookup(query)", query)

    assert len(requested) == reads
    assert answer == substring_match(index, query)


def test_page_search_groups_by_image(bulk_site, new_context):
    base, _ = bulk_site
    page = open_bulk_home(new_context(), base, [])
    answer = page.evaluate("window.RegistryIndex.lookup('app-12')")
    assert answer["total"] == 20
    assert answer["truncated"] is False
    assert answer["results"][0] == {
        "image": "bulk/app-120", "versions": ["1.1", "1.0"], "latest": "1.1", "summary": "app-120 1.1", "size": "1120", "buildtime": "2026-12-04 19:17:11",
    }
    assert [result["image"] for result in answer["results"]] == [f"bulk/app-{number}" for number in range(120, 130)]

    answer = page.evaluate("window.RegistryIndex.lookup('app-120:1.0')")
    assert answer["total"] == 1
    assert answer["results"][0]["versions"] == ["1.0"]
    assert answer["results"][0]["summary"] == "app-120 1.1"


def test_page_search_non_ascii_query(bulk_site, new_context):
    base, index = bulk_site
    requested = []
    page = open_bulk_home(new_context(), base, requested)
    assert page.evaluate("window.RegistryIndex.lookup('app \u00e9')") is None
    assert requested == []

    # The Kelvin sign lowercases to `k` in JavaScript as in Python, so both read node `k`.
    kelvin = page.evaluate("window.RegistryIndex.lookup('\u212a')")
    assert requested == [base + "v1/search/k.json"]
    assert kelvin == substring_match(index, "k")
    assert (kelvin["total"], kelvin["truncated"]) == (1041, True)
    assert sum(len(result["versions"]) for result in kelvin["results"]) == 100
