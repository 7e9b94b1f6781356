"""The book and the notebooks in a real browser: Debian's Chromium driven by Playwright.

1. Every page of the built book (the pages of book/_toc.yml), served on 127.0.0.1, loads with no
   console error, with its figures, with its math typeset by the MathJax copy in _static (no CDN),
   with no broken internal link, and without one request leaving the machine. At 1280 px, the
   width of a laptop or a projector, no code block, printed output or display equation is wider
   than the text column (it would scroll sideways), no paragraph is a Markdown table that was not
   rendered (text starting with '|'), every chapter shows at least one figure, and the
   "On this page" contents are shown beside the text. No page loads more than 2 MB in all. Nothing that
   is there for nbval shows (NBVAL markers, "what must hold" checks, sha256 fingerprints, rows of
   "agree: True"), and no output cell is empty. At 390 px, a phone, no page scrolls sideways.
   In chapter 3 the "draw a hole" piece (book/_static/pconv_draw_hole.js) redraws its masks
   when a stroke is painted with the mouse.
2. In JupyterLab started on 127.0.0.1, the mask-update explorer of notebooks/03_architecture.ipynb
   renders and redraws its figure when its "hole size" slider moves.

Chromium comes from Debian (scripts/install-browser.sh); Playwright never downloads a browser.
Without Chromium these tests are skipped, except under CI (CI=true), where they fail.
Screenshots (intro, a notebook page, the explorer in JupyterLab) go to $PCONV_BROWSER_ARTIFACTS,
or to pytest's temporary folder (the path is printed with -s).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from browser_support import (
    LOOPBACK,
    NetworkGuard,
    ServerProcess,
    drag_stroke,
    free_port,
    launch_chromium,
    playwright_session,
    require_chromium,
    static_server,
)

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

REPO = Path(__file__).resolve().parent.parent
BOOK = REPO / "book"
HTML = BOOK / "_build" / "html"
SOURCE_SUFFIXES = (".md", ".ipynb", ".rst", ".myst")

# PCONV_EXPLORER_NOTEBOOK points the JupyterLab test at another notebook (while developing one).
EXPLORER_NOTEBOOK = Path(
    os.environ.get("PCONV_EXPLORER_NOTEBOOK", REPO / "notebooks" / "03_architecture.ipynb"))
SLIDER_DESCRIPTION = "hole size"

PAGE_TIMEOUT_MS = 30_000

#: The reader's window: a laptop or a projector.
VIEWPORT = {"width": 1280, "height": 900}
#: How many pixels a block may be wider than its box before it counts as scrolling sideways
#: (sub-pixel rounding of fonts and MathJax's measurements).
OVERFLOW_TOLERANCE_PX = 4

pytestmark = pytest.mark.slow


# --------------------------------------------------------------------------------------------
# The book's pages, read from its table of contents


def _toc_files(node) -> list[str]:
    """Every ``file:`` entry of a jupyter-book _toc.yml, in reading order."""
    found: list[str] = []
    if isinstance(node, dict):
        for key in ("root", "file"):
            if isinstance(node.get(key), str):
                found.append(node[key])
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key, None) or []:
                found.extend(_toc_files(child))
    elif isinstance(node, list):
        for child in node:
            found.extend(_toc_files(child))
    return found


def _source_of(entry: str) -> Path | None:
    stem = BOOK / entry
    if stem.suffix in SOURCE_SUFFIXES and stem.exists():
        return stem
    for suffix in SOURCE_SUFFIXES:
        candidate = stem.with_name(stem.name + suffix)
        if candidate.exists():
            return candidate
    return None


def _html_of(entry: str) -> str:
    """The page's path relative to _build/html (posix)."""
    stem = entry[: -len(Path(entry).suffix)] if Path(entry).suffix in SOURCE_SUFFIXES else entry
    return stem + ".html"


def book_pages() -> list[str]:
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    seen: list[str] = []
    for entry in _toc_files(toc):
        if entry not in seen:
            seen.append(entry)
    return seen


BOOK_PAGES = book_pages()


def _book_is_stale() -> str | None:
    """Why the book must be (re)built, or None when every toc page is newer than its source."""
    newest_config = max((BOOK / name).stat().st_mtime for name in ("_toc.yml", "_config.yml"))
    if not (HTML / "index.html").exists():
        return "book/_build/html/index.html is missing"
    for entry in BOOK_PAGES:
        source, page = _source_of(entry), HTML / _html_of(entry)
        if not page.exists():
            return f"{page.relative_to(REPO)} is missing"
        built = page.stat().st_mtime
        if source is not None and source.stat().st_mtime > built:
            return f"{source.relative_to(REPO)} is newer than its page"
        if newest_config > built:
            return "book/_toc.yml or book/_config.yml is newer than the pages"
    return None


def _jupyter_book_command() -> list[str]:
    local = Path(sys.executable).parent / "jupyter-book"
    exe = str(local) if local.exists() else shutil.which("jupyter-book")
    if exe is None:
        pytest.fail("jupyter-book is not installed in this environment", pytrace=False)
    return [exe, "build", "book"]


@pytest.fixture(scope="session")
def built_book() -> Path:
    """book/_build/html, built with `jupyter-book build book` when missing or out of date."""
    reason = _book_is_stale()
    if reason is not None:
        print(f"\nbuilding the book ({reason}) ...", flush=True)
        done = subprocess.run(
            _jupyter_book_command(), cwd=REPO, capture_output=True, text=True, timeout=1800
        )
        if done.returncode != 0:
            pytest.fail(
                f"`jupyter-book build book` failed ({done.returncode}):\n"
                + (done.stdout + done.stderr)[-6000:],
                pytrace=False,
            )
    still = _book_is_stale()
    assert still is None, f"the book is still incomplete after building: {still}"
    return HTML


@pytest.fixture(scope="session")
def book_url(built_book):
    """Base URL of the built book, served by a loopback HTTP server for the whole session."""
    with static_server(built_book) as url:
        yield url


# --------------------------------------------------------------------------------------------
# The browser


@pytest.fixture(scope="session")
def playwright_instance():
    require_chromium()
    return playwright_session()


@pytest.fixture(scope="session")
def browser(playwright_instance):
    browser = launch_chromium(playwright_instance)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory) -> Path:
    """Where screenshots go: $PCONV_BROWSER_ARTIFACTS, or a session temporary folder."""
    chosen = os.environ.get("PCONV_BROWSER_ARTIFACTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("browser-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


# Console errors that come from the book's theme stack, not from the book, each matched exactly
# (sphinx-thebe's inline script, which it adds twice, is deduplicated by book/_ext/pconv_book.py,
# so "Identifier 'THEBE_JS_URL' has already been declared" is an error like any other):
# - sphinx-book-theme seeds the colour mode from an empty localStorage as "", which
#   pydata-sphinx-theme reports once before falling back to "auto" (every first visit).
KNOWN_THEME_ERRORS = (
    re.compile(r"^console: Got invalid theme mode: \. Resetting to auto\. \(\S*/_static/scripts/pydata-sphinx-theme\.js\S*\)$"),
)


class PageWatch:
    """Console errors and uncaught exceptions of one page (known theme noise left out)."""

    def __init__(self, page, ignore=()):
        self.errors: list[str] = []
        self.ignored: list[str] = []
        self._ignore = ignore
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self._add(f"uncaught: {exc}"))

    def _add(self, text: str):
        if any(p.match(text) for p in self._ignore):
            self.ignored.append(text)
        else:
            self.errors.append(text)

    def _console(self, message):
        if message.type == "error":
            where = message.location or {}
            self._add(f"console: {message.text} ({where.get('url', '?')}:{where.get('lineNumber', '?')})")


# --------------------------------------------------------------------------------------------
# What the sources say a page must show


IMAGE_MIME = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
REMOVED_TAGS = {"remove-cell", "remove-output", "remove_cell", "remove_output"}
# Inline math that dollarmath should have turned into a math node.
INLINE_MATH = re.compile(r"(?<![\\$])\$(?=\S)[^$\n]+?(?<=\S)\$(?!\$)")


def _expected_from_source(source: Path | None) -> dict:
    """How many figures the notebook draws, and whether its prose contains math."""
    expected = {"figures": 0, "math": False}
    if source is None:
        return expected
    if source.suffix == ".ipynb":
        nb = json.loads(source.read_text())
        for cell in nb.get("cells", []):
            text = "".join(cell.get("source", []))
            if cell["cell_type"] == "markdown":
                expected["math"] |= "$$" in text or bool(INLINE_MATH.search(text))
            elif cell["cell_type"] == "code":
                tags = set(cell.get("metadata", {}).get("tags", []))
                if tags & REMOVED_TAGS:
                    continue
                for output in cell.get("outputs", []):
                    if any(m in output.get("data", {}) for m in IMAGE_MIME):
                        expected["figures"] += 1
    else:
        text = re.sub(r"```.*?```", "", source.read_text(), flags=re.S)  # leave code blocks out
        text = re.sub(r"`[^`\n]*`", "", text)
        expected["math"] = "$$" in text or bool(INLINE_MATH.search(text))
    return expected


# --------------------------------------------------------------------------------------------
# Link targets


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "id" or (tag == "a" and name == "name"):
                if value:
                    self.ids.add(value)


_ANCHOR_CACHE: dict[Path, set[str]] = {}


def anchors_of(path: Path) -> set[str]:
    if path not in _ANCHOR_CACHE:
        parser = _Anchors()
        parser.feed(path.read_text(errors="replace"))
        _ANCHOR_CACHE[path] = parser.ids
    return _ANCHOR_CACHE[path]


def broken_internal_links(hrefs: list[str], base_url: str, root: Path) -> list[str]:
    """The links (absolute URLs) into the book that name a missing file or a missing anchor."""
    broken = []
    for href in sorted(set(hrefs)):
        if not href.startswith(base_url):
            continue  # another site: not followed, and never requested (see NetworkGuard)
        parts = urlsplit(href)
        relative = unquote(parts.path)[len(urlsplit(base_url).path):]
        target = root / relative
        if relative == "" or relative.endswith("/"):
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"{href} -> no file {target.relative_to(root)}")
            continue
        fragment = unquote(parts.fragment)
        if fragment and target.suffix == ".html" and fragment not in anchors_of(target):
            broken.append(f"{href} -> no element with id '{fragment}' in {target.relative_to(root)}")
    return broken


# --------------------------------------------------------------------------------------------
# 1. Every page of the book


# Runs in the page once it has loaded: waits for images, MathJax and fonts, then reports.
PAGE_REPORT_JS = """
async (tolerance) => {
  const imgs = [...document.images];
  await Promise.all(imgs.map(img => img.complete ? null :
      new Promise(done => { img.addEventListener('load', done); img.addEventListener('error', done); })));
  const mathNodes = [...document.querySelectorAll('.math')];
  let mathjax = 'absent';
  if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) {
    await window.MathJax.startup.promise;
    mathjax = window.MathJax.version || 'loaded';
  }
  await document.fonts.ready;
  const article = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const describe = el => (el.textContent || '').replace(/\\s+/g, ' ').trim().slice(0, 70);
  // Code, printed output and display equations wider than their box: they scroll sideways.
  const blocks = [...article.querySelectorAll('pre, div.math, mjx-container[display="true"]')];
  const tooWide = blocks.filter(el => el.scrollWidth > el.clientWidth + tolerance)
    .map(el => `${el.tagName.toLowerCase()} ${el.scrollWidth} px in ${el.clientWidth} px: ${describe(el)}`);
  // ... or wider than the text column itself.
  const column = article.getBoundingClientRect();
  const pastColumn = blocks.filter(el => el.getBoundingClientRect().right > column.right + tolerance)
    .map(el => `${el.tagName.toLowerCase()} reaches ${Math.round(el.getBoundingClientRect().right)} px, `
               + `the column ends at ${Math.round(column.right)} px: ${describe(el)}`);
  // A Markdown table that was not parsed is a paragraph of "| a | b |\\n|---|---|" text: it starts
  // with '|' and holds the separator row (a norm like "||a - b||" in a docstring does not).
  const rawTables = [...article.querySelectorAll('p')]
    .filter(p => p.textContent.trim().startsWith('|') && /\\|\\s*:?-{3,}/.test(p.textContent))
    .map(describe);
  // Figures: pictures in the text, not the icons of buttons and links.
  const figures = [...article.querySelectorAll('img, svg')]
    .filter(el => !el.closest('button, a.headerlink, .headerlink, .copybtn, .toggle-button, summary'))
    .filter(el => el.getBoundingClientRect().width >= 32).length;
  // What is visible (innerText skips folded <details> and hidden cells): nothing meant for nbval.
  const visible = article.innerText;
  const noise = [];
  for (const [what, re] of [['an NBVAL marker', /NBVAL/], ['a "what must hold" check', /what must hold/i],
                            ['a sha256 fingerprint', /sha256/i], ['"agree: True" rows', /agree: True[\\s\\S]*agree: True/]]) {
    const m = visible.match(re);
    if (m) noise.push(`${what}: ...${visible.slice(Math.max(0, m.index - 40), m.index + 60).replace(/\\s+/g, ' ')}...`);
  }
  // An output cell that shows nothing (a widget without its JavaScript, an empty stream).
  const emptyOutputs = [...article.querySelectorAll('.cell_output')]
    .filter(o => !o.closest('details:not([open])'))
    .filter(o => o.getBoundingClientRect().height < 4 || (!o.innerText.trim() && !o.querySelector('img, svg, canvas, table, iframe, video')))
    .map(o => describe(o.closest('.cell') || o) || '(no text)');
  // The page's text, code, outputs and typeset math left out.
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll('pre, code, mjx-container, script, style, .cell_input, .cell_output').forEach(n => n.remove());
  return {
    title: document.title,
    mathjax,
    mathTotal: mathNodes.length,
    mathTypeset: mathNodes.filter(n => n.querySelector('mjx-container')).length,
    mathUntypeset: mathNodes.filter(n => !n.querySelector('mjx-container')).map(n => n.textContent.trim().slice(0, 80)),
    mathErrors: [...document.querySelectorAll('mjx-merror')].map(n => (n.getAttribute('data-mjx-error') || n.textContent).slice(0, 120)),
    images: imgs.map(img => ({src: img.currentSrc || img.src, ok: img.complete && img.naturalWidth > 0})),
    outputImages: article.querySelectorAll('.cell_output img').length,
    figures,
    tooWide: [...tooWide, ...pastColumn],
    noise,
    emptyOutputs,
    rawTables,
    columnWidth: Math.round(column.width),
    // The "On this page" column: shown beside the text whenever the page has sections to list.
    tocLinks: document.querySelectorAll('#pst-secondary-sidebar nav.page-toc a').length,
    tocShown: (() => { const s = document.querySelector('#pst-secondary-sidebar');
      if (!s) return false; const r = s.getBoundingClientRect(), st = getComputedStyle(s);
      return st.display !== 'none' && st.visibility !== 'hidden' && r.width >= 150 && r.left >= column.right - 1
             && r.right <= window.innerWidth + 1; })(),
    prose: clone.innerText,
    hrefs: [...document.querySelectorAll('a[href]')].map(a => a.href).filter(h => !h.startsWith('javascript:')),
  };
}
"""




def _screenshot_name(entry: str) -> str | None:
    if entry == BOOK_PAGES[0]:
        return "intro.png"
    notebooks = [e for e in BOOK_PAGES if (_source_of(e) or Path()).suffix == ".ipynb"
                 and _expected_from_source(_source_of(e))["figures"] > 0]
    if notebooks and entry == notebooks[0]:
        return "notebook.png"
    return None


@pytest.fixture(scope="session")
def book_context(browser, book_url):
    port = urlsplit(book_url).port
    context = browser.new_context(viewport=VIEWPORT, service_workers="block")
    guard = NetworkGuard(context, allowed_ports={port})
    yield context, guard
    context.close()


@pytest.mark.parametrize("entry", BOOK_PAGES)
def test_book_page(entry, book_context, book_url, built_book, artifacts_dir):
    context, guard = book_context
    guard.reset()
    page_path = _html_of(entry)
    url = book_url + page_path
    expected = _expected_from_source(_source_of(entry))

    page = context.new_page()
    watch = PageWatch(page, ignore=KNOWN_THEME_ERRORS)
    try:
        response = page.goto(url, wait_until="load", timeout=PAGE_TIMEOUT_MS)
        assert response is not None and response.ok, f"{page_path}: HTTP {response and response.status}"
        report = page.evaluate(PAGE_REPORT_JS, OVERFLOW_TOLERANCE_PX)
        page.wait_for_timeout(200)  # let late console messages arrive
        shot = _screenshot_name(entry)
        if shot:
            figure = page.locator(".cell_output img")
            if figure.count():
                figure.first.scroll_into_view_if_needed()
            page.screenshot(path=str(artifacts_dir / shot), full_page=False)
            print(f"\nscreenshot of {page_path}: {artifacts_dir / shot}")
    finally:
        page.close()

    problems: list[str] = []
    problems += [f"left the machine (blocked): {u}" for u in guard.blocked]
    problems += [f"failed request: {u}" for u in guard.failed]
    # A blocked request also logs a console error; it is reported once, above.
    problems += [e for e in watch.errors
                 if not ("ERR_BLOCKED_BY_CLIENT" in e and any(u in e for u in guard.blocked))]
    problems += [f"image did not load: {img['src'][:120]}" for img in report["images"] if not img["ok"]]
    if expected["figures"] and report["outputImages"] == 0:
        problems.append(f"the notebook draws {expected['figures']} figure(s) but the page shows none")
    elif report["outputImages"] < expected["figures"]:
        problems.append(
            f"the notebook draws {expected['figures']} figure(s) but the page shows {report['outputImages']}"
        )
    if expected["math"] and report["mathTotal"] == 0:
        problems.append("the source has $...$ math but the page has no math element (dollarmath?)")
    if report["mathTotal"]:
        if report["mathjax"] == "absent":
            problems.append("the page has math but MathJax did not load")
        problems += [f"math not typeset: {t}" for t in report["mathUntypeset"]]
    problems += [f"MathJax error: {e}" for e in report["mathErrors"]]
    if "$$" in report["prose"]:
        problems.append("raw '$$' left in the page's text")
    raw_inline = INLINE_MATH.findall(report["prose"])
    raw_tex = [m for m in raw_inline if re.search(r"[\\^_{}]", m)]
    problems += [f"raw TeX left in the page's text: {m[:80]}" for m in raw_tex]
    problems += [f"broken link: {b}" for b in broken_internal_links(report["hrefs"], book_url, built_book)]
    problems += [f"a Markdown table printed as text: {t}" for t in report["rawTables"]]
    problems += [f"wider than the text column ({report['columnWidth']} px) at {VIEWPORT['width']} px: {w}"
                 for w in report["tooWide"]]
    if report["tocLinks"] and not report["tocShown"]:
        problems.append(f"the 'On this page' contents ({report['tocLinks']} links) are not shown "
                        f"beside the text at {VIEWPORT['width']} px")
    if _is_chapter(entry) and report["figures"] == 0:
        problems.append("a chapter without a single figure (<img> or <svg>)")
    problems += [f"meant for nbval, visible on the page: {n}" for n in report["noise"]]
    problems += [f"an output cell that shows nothing, under: {e}" for e in report["emptyOutputs"]]

    assert not problems, f"{page_path} ({report['title']}):\n  " + "\n  ".join(problems)


#: The most a page may weigh: its HTML and every script, style sheet, font and image it loads.
MAX_PAGE_BYTES = 2_000_000


@pytest.mark.parametrize("entry", BOOK_PAGES)
def test_book_page_weight(entry, book_context, book_url):
    """No page needs more than 2 MB (MAX_PAGE_BYTES) in all, counted over every request it makes
    until its figures, maths and fonts are in (routing every request keeps the browser's cache
    out, so each page counts the shared scripts too). book/_ext/pconv_weight.py keeps the
    chapters under it: their figures as WebP, the theme's style sheets and icon font cut to
    what the pages use."""
    context, guard = book_context
    guard.reset()
    page = context.new_page()
    finished = []
    page.on("requestfinished", lambda request: finished.append(request))
    try:
        page.goto(book_url + _html_of(entry), wait_until="load", timeout=PAGE_TIMEOUT_MS)
        page.evaluate(PAGE_REPORT_JS, OVERFLOW_TOLERANCE_PX)
        page.wait_for_load_state("networkidle", timeout=PAGE_TIMEOUT_MS)
        sizes = {}
        for request in finished:
            response = request.response()
            if response is not None and not request.url.startswith("data:"):
                sizes[request.url] = len(response.body())
    finally:
        page.close()
    total = sum(sizes.values())
    heaviest = ", ".join(f"{urlsplit(u).path.rsplit('/', 1)[-1]} {n / 1e6:.2f} MB"
                         for u, n in sorted(sizes.items(), key=lambda kv: -kv[1])[:5])
    print(f"\n{_html_of(entry)}: {total / 1e6:.2f} MB in {len(sizes)} files ({heaviest})")
    assert total <= MAX_PAGE_BYTES, (
        f"{_html_of(entry)} loads {total / 1e6:.2f} MB (limit {MAX_PAGE_BYTES / 1e6:.1f} MB) in "
        f"{len(sizes)} files; the heaviest: {heaviest}")


#: A phone held upright.
PHONE_VIEWPORT = {"width": 390, "height": 844}

PHONE_REPORT_JS = """
async (tolerance) => {
  const imgs = [...document.images];
  await Promise.all(imgs.map(img => img.complete ? null :
      new Promise(done => { img.addEventListener('load', done); img.addEventListener('error', done); })));
  if (window.MathJax && window.MathJax.startup && window.MathJax.startup.promise) await window.MathJax.startup.promise;
  await document.fonts.ready;
  const width = document.documentElement.clientWidth;
  const describe = el => `${el.tagName.toLowerCase()}${el.className && typeof el.className === 'string' ? '.' + el.className.split(' ')[0] : ''}: `
      + (el.textContent || '').replace(/\\s+/g, ' ').trim().slice(0, 60);
  // Elements that reach past the right edge of the screen and are not inside a box that scrolls.
  const scrolls = el => { for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; }
    return false; };
  const culprits = [...document.querySelectorAll('article *')]
    .filter(el => el.getBoundingClientRect().right > width + tolerance && !scrolls(el))
    .slice(0, 5).map(describe);
  return {scrollWidth: document.documentElement.scrollWidth, width, culprits};
}
"""


@pytest.fixture(scope="session")
def phone_context(browser, book_url):
    port = urlsplit(book_url).port
    context = browser.new_context(viewport=PHONE_VIEWPORT, service_workers="block", is_mobile=True,
                                  has_touch=True, device_scale_factor=2)
    guard = NetworkGuard(context, allowed_ports={port})
    yield context
    context.close()


@pytest.mark.parametrize("entry", BOOK_PAGES)
def test_book_page_on_a_phone(entry, phone_context, book_url, built_book):
    """At 390 px no page scrolls sideways (wide tables and code scroll inside their own box)."""
    page = phone_context.new_page()
    try:
        page.goto(book_url + _html_of(entry), wait_until="load", timeout=PAGE_TIMEOUT_MS)
        report = page.evaluate(PHONE_REPORT_JS, OVERFLOW_TOLERANCE_PX)
    finally:
        page.close()
    assert report["scrollWidth"] <= report["width"] + OVERFLOW_TOLERANCE_PX, (
        f"{_html_of(entry)} scrolls sideways at {PHONE_VIEWPORT['width']} px: the page is "
        f"{report['scrollWidth']} px wide; past the edge: {report['culprits']}")


DRAW_HOLE_PAGE = "notebooks/03_architecture.html"


def test_draw_hole_reacts_to_a_drag(book_context, book_url, built_book, artifacts_dir):
    """Chapter 3's piece runs in the static page: painting a stroke changes every encoder mask."""
    context, guard = book_context
    guard.reset()
    page = context.new_page()
    watch = PageWatch(page, ignore=KNOWN_THEME_ERRORS)
    try:
        page.goto(book_url + DRAW_HOLE_PAGE, wait_until="load", timeout=PAGE_TIMEOUT_MS)
        piece = page.locator(".pconv-draw-hole")
        assert piece.count() == 1, "chapter 3 has no draw-hole piece"
        page.wait_for_function("document.querySelector('.pconv-draw-hole').dataset.holes !== undefined",
                               timeout=PAGE_TIMEOUT_MS)
        assert page.locator(".pconv-draw-hole canvas.pconv-dh-layer").count() == 10
        page.locator(".pconv-draw-hole button[data-action='clear']").click()
        assert piece.get_attribute("data-holes") == ",".join(["0"] * 10)
        page.locator(".pconv-draw-hole canvas.pconv-dh-paint").scroll_into_view_if_needed()
        drag_stroke(page, ".pconv-draw-hole canvas.pconv-dh-paint", (0.15, 0.5), (0.025, 0.01), 30)
        holes = [int(v) for v in piece.get_attribute("data-holes").split(",")]
        page.locator(".pconv-draw-hole button[data-action='square 96']").click()
        square = [int(v) for v in piece.get_attribute("data-holes").split(",")]
        # a gallery hole shows the shipped model's and the harmonic fill, precomputed
        page.wait_for_function(
            "[...document.querySelectorAll('.pconv-draw-hole img[data-fill]')]"
            ".every(i => i.complete && i.naturalWidth > 0)", timeout=PAGE_TIMEOUT_MS)
        fills = page.locator(".pconv-draw-hole img[data-fill]").count()
        piece.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts_dir / "draw_hole.png"), full_page=False)
    finally:
        page.close()
    assert holes[0] > 0, f"a painted stroke left no hole after block 0: {holes}"
    assert square[:4] == sorted(square[:4], reverse=True) and square[-1] > 0, square  # 96 never closes
    assert square != holes
    assert fills == 2, "the gallery's fills are missing (scripts/draw_hole_gallery.py)"
    assert not watch.errors, watch.errors


def _is_chapter(entry: str) -> bool:
    """A chapter of the book: one of the notebooks (book/notebooks links to notebooks/)."""
    return entry.startswith("notebooks/")


def test_book_pages_found():
    """The toc lists the intro and the notebooks (guards against an empty parametrisation)."""
    assert len(BOOK_PAGES) >= 2, BOOK_PAGES
    missing = [e for e in BOOK_PAGES if _source_of(e) is None]
    assert not missing, f"toc entries without a source file under book/: {missing}"


# --------------------------------------------------------------------------------------------
# 2. The mask-update explorer, live in JupyterLab

LAB_READY_TIMEOUT_S = 60
RUN_ALL_TIMEOUT_MS = 60_000
REDRAW_TIMEOUT_MS = 20_000


def _explorer_notebook(directory: Path) -> Path:
    """A copy of notebooks/03_architecture.ipynb in ``directory``, set to the kernel 'python3'
    (this environment's Python, see ``jupyter_lab``)."""
    if not EXPLORER_NOTEBOOK.exists():
        message = f"{EXPLORER_NOTEBOOK} is missing"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    nb = json.loads(EXPLORER_NOTEBOOK.read_text())
    nb.setdefault("metadata", {})["kernelspec"] = {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    target = directory / EXPLORER_NOTEBOOK.name
    target.write_text(json.dumps(nb))
    return target


def _hole_canvas_notebook(directory: Path) -> Path:
    """A one-cell notebook in ``directory`` that shows ``pconv_torch.hole_canvas.HoleCanvas``."""
    nb = {"nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                      "language": "python"}},
          "cells": [{"cell_type": "code", "id": "hole-canvas", "metadata": {}, "outputs": [],
                     "execution_count": None,
                     "source": "from pconv_torch.hole_canvas import HoleCanvas\n\n"
                               "canvas = HoleCanvas()\ncanvas"}]}
    target = directory / "hole_canvas.ipynb"
    target.write_text(json.dumps(nb))
    return target


def _lab_server(tmp_path, write_notebook):
    """JupyterLab on 127.0.0.1 (a free port, a random token) over a folder holding the notebook
    that ``write_notebook(folder)`` writes, with its own config, data, settings and a 'python3'
    kernel that is this environment's Python. Yields (base_url, token, notebook_name, server);
    stops the server, and the kernels it started, at the end."""
    root = tmp_path / "root"
    root.mkdir()
    notebook = write_notebook(root)

    share = tmp_path / "share"
    kernel_dir = share / "kernels" / "python3"
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)", "language": "python",
        "metadata": {"debugger": False}}))
    settings = tmp_path / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No news or update check: the frontend would try to reach jupyter.org.
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))

    env = dict(os.environ)
    env.update({
        "JUPYTER_PATH": str(share),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    })
    env.pop("MPLBACKEND", None)
    port, token = free_port(), secrets.token_hex(16)
    argv = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser", f"--ip={LOOPBACK}", f"--port={port}", "--port-retries=0",
        f"--IdentityProvider.token={token}", "--allow-root",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={tmp_path / 'lab-settings'}",
        f"--LabApp.workspaces_dir={tmp_path / 'lab-workspaces'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    server = ServerProcess(argv, tmp_path / "jupyter-lab.log", env=env, cwd=root)
    base = f"http://{LOOPBACK}:{port}/"
    try:
        server.wait_for_http(f"{base}api/status?token={token}", timeout=LAB_READY_TIMEOUT_S)
        yield base, token, notebook.name, server
    finally:
        server.stop()


@pytest.fixture
def jupyter_lab(tmp_path):
    """:func:`_lab_server` over a copy of the explorer notebook."""
    yield from _lab_server(tmp_path, _explorer_notebook)


@pytest.fixture
def hole_canvas_lab(tmp_path):
    """:func:`_lab_server` over a notebook that shows the draw-a-hole widget."""
    yield from _lab_server(tmp_path, _hole_canvas_notebook)


def _kernel_python(base: str, token: str) -> list[str]:
    import urllib.request

    with urllib.request.urlopen(f"{base}api/kernelspecs?token={token}", timeout=10) as r:
        specs = json.load(r)
    return specs["kernelspecs"]["python3"]["spec"]["argv"]


# Finds the "hole size" slider, and the images of the output area of the cell that holds it.
EXPLORER_STATE_JS = """
(description) => {
  const sliders = [...document.querySelectorAll('.jupyter-widgets.widget-slider')]
    .filter(s => [...s.querySelectorAll('.widget-label')].some(l => l.textContent.trim() === description));
  if (sliders.length === 0) return null;
  const slider = sliders[0];
  const cell = slider.closest('.jp-Cell');
  const scope = slider.closest('.pconv-mask-explorer') || cell || document;
  const out = scope.querySelector('.pconv-mask-explorer-output') || scope;
  const readout = slider.querySelector('.widget-readout');
  return {
    value: readout ? readout.textContent.trim() : null,
    images: [...out.querySelectorAll('img')].filter(i => i.src).map(i => i.src),
  };
}
"""


def _accept_kernel_dialog(page, wait_ms: int = 1500) -> bool:
    """Accept JupyterLab's "Select Kernel" dialog (its default is 'python3') if it is shown."""
    dialog = page.locator(".jp-Dialog")
    try:
        dialog.first.wait_for(state="visible", timeout=wait_ms)
    except sync_api.TimeoutError:
        return False
    dialog.locator(".jp-Dialog-button.jp-mod-accept").first.click()
    dialog.first.wait_for(state="hidden", timeout=10_000)
    return True


def _wait_for_idle_kernel(page, timeout_s: float = 45.0) -> None:
    """Wait until the notebook's kernel is idle, accepting the kernel dialog on the way."""
    idle = page.locator('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status="idle"]')
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _accept_kernel_dialog(page, wait_ms=500) and idle.count() > 0:
            return
    raise AssertionError(f"the notebook's kernel was not idle within {timeout_s:.0f} s")


# Progress of "Run All": prompts of the code cells and the kernel's status.
RUN_STATE_JS = """
() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)') || document;
  const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent.trim());
  const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  return {
    prompts,
    status: indicator ? indicator.getAttribute('data-status') : null,
    done: prompts.filter(p => /^\\[\\d+\\]:?$/.test(p)).length,
    queued: prompts.filter(p => p.includes('*')).length,
    errors: [...panel.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
      .map(e => e.textContent).filter(t => /Error|Traceback/.test(t)).map(t => t.slice(-400)),
  };
}
"""


def _run_all_cells(page) -> None:
    """Run > Run All Cells, through the menu as a reader would."""
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator(".lm-Menu-item").filter(
        has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$"))).first.click()
    _accept_kernel_dialog(page, wait_ms=1000)


def _wait_for_run_all(page, timeout_s: float) -> dict:
    """Wait until every code cell has run and the kernel is idle; retry "Run All" once if the
    first request did not start (the kernel was still connecting). Returns the last state."""
    deadline = time.monotonic() + timeout_s
    retried = False
    first_seen = time.monotonic()
    while True:
        state = page.evaluate(RUN_STATE_JS)
        if state["errors"]:
            raise AssertionError("a cell failed while running all cells:\n" + "\n---\n".join(state["errors"]))
        if state["prompts"] and state["done"] == len(state["prompts"]) and state["status"] == "idle":
            return state
        started = state["done"] or state["queued"] or state["status"] == "busy"
        if not started and not retried and time.monotonic() - first_seen > 10:
            retried = True
            _run_all_cells(page)
        if time.monotonic() > deadline:
            raise AssertionError(
                f"Run All did not finish within {timeout_s:.0f} s: {state['done']} of "
                f"{len(state['prompts'])} code cells ran, {state['queued']} queued, kernel "
                f"{state['status']}")
        page.wait_for_timeout(250)


@contextlib.contextmanager
def _lab_page(browser, base: str, artifacts_dir: Path, name: str):
    """A page of a fresh 1400x1000 context whose requests may reach only the port of ``base``.
    On an exception: a screenshot ``<name>-failure.png``. At the end: no request left the
    machine and no console error was logged."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, service_workers="block")
    guard = NetworkGuard(context, allowed_ports={urlsplit(base).port})
    page = context.new_page()
    watch = PageWatch(page)
    try:
        yield page
    except Exception:
        with contextlib.suppress(Exception):
            shot = artifacts_dir / f"{name}-failure.png"
            page.screenshot(path=str(shot))
            print(f"\nscreenshot of the failure: {shot}")
        raise
    finally:
        context.close()
    assert not guard.blocked, f"JupyterLab tried to leave the machine: {guard.blocked}"
    errors = [e for e in watch.errors
              if not ("ERR_BLOCKED_BY_CLIENT" in e and any(u in e for u in guard.blocked))]
    assert not errors, "console errors in JupyterLab:\n  " + "\n  ".join(errors)


def test_mask_explorer_redraws_in_jupyterlab(jupyter_lab, browser, artifacts_dir):
    base, token, name, server = jupyter_lab
    argv = _kernel_python(base, token)
    assert argv[0] == sys.executable, f"kernel 'python3' runs {argv[0]}, not {sys.executable}"

    started = time.monotonic()
    state_js = f"() => ({EXPLORER_STATE_JS})({json.dumps(SLIDER_DESCRIPTION)})"
    with _lab_page(browser, base, artifacts_dir, "jupyterlab") as page:
        page.goto(f"{base}lab/tree/{name}?token={token}", wait_until="load", timeout=PAGE_TIMEOUT_MS)
        page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(timeout=PAGE_TIMEOUT_MS)
        _wait_for_idle_kernel(page)

        _run_all_cells(page)
        run = _wait_for_run_all(page, timeout_s=RUN_ALL_TIMEOUT_MS / 1000)
        ran_after = time.monotonic() - started

        slider = page.locator(".jupyter-widgets.widget-slider").filter(
            has=page.locator(".widget-label", has_text=SLIDER_DESCRIPTION)).first
        try:
            slider.wait_for(state="visible", timeout=10_000)
            page.wait_for_function(f"() => {{ const s = ({state_js})(); return s && s.images.length > 0; }}",
                                   timeout=10_000)
        except sync_api.TimeoutError:
            raise AssertionError(
                f"all {len(run['prompts'])} code cells ran, but no '{SLIDER_DESCRIPTION}' slider "
                f"with a figure is shown; server log:\n{server.log_tail(2000)}") from None
        before = page.evaluate(state_js)

        handle = slider.locator(".noUi-handle").first
        handle.scroll_into_view_if_needed()
        handle.focus()
        for _ in range(3):
            handle.press("ArrowRight")
        try:
            page.wait_for_function(
                f"(old) => {{ const s = ({state_js})();"
                " return s && s.images.length > 0 && s.value !== old.value"
                " && s.images.join('|') !== old.images.join('|'); }",
                arg=before, timeout=REDRAW_TIMEOUT_MS)
        except sync_api.TimeoutError:
            after = page.evaluate(state_js)
            raise AssertionError(
                f"the figure did not change within {REDRAW_TIMEOUT_MS / 1000:.0f} s of moving the "
                f"slider: value {before['value']} -> {after and after['value']}, "
                f"{len(before['images'])} image(s) before, "
                f"{after and len(after['images'])} after; same images: "
                f"{after is not None and after['images'] == before['images']}") from None
        # Let the redraws queued by the key presses finish, then look at the last figure.
        idle = page.locator('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status="idle"]')
        idle.first.wait_for(state="attached", timeout=REDRAW_TIMEOUT_MS)
        page.wait_for_timeout(300)
        after = page.evaluate(state_js)
        assert after and after["images"] and after["images"] != before["images"], (
            f"after the redraws settled the figure is {'the same' if after and after['images'] else 'gone'}")
        print(f"\nRun All: {len(run['prompts'])} code cells in {ran_after:.1f} s; "
              f"'{SLIDER_DESCRIPTION}' {before['value']} -> {after['value']}: figure redrawn "
              f"({time.monotonic() - started:.1f} s after opening the notebook)")
        handle.scroll_into_view_if_needed()
        page.screenshot(path=str(artifacts_dir / "jupyterlab.png"))


# The draw-a-hole widget's state: updates shown, hole pixels, the block masks and the fill.
HOLE_CANVAS_STATE_JS = """
() => {
  const root = document.querySelector('.pconv-hole-canvas');
  if (!root || !root.querySelector('canvas.phc-canvas')) return null;
  return {
    updates: Number(root.dataset.updates || 0),
    status: (root.querySelector('.phc-status') || {}).textContent || '',
    blocks: [...root.querySelectorAll('.phc-block img')].map(i => i.src),
    fill: (root.querySelector('img.phc-fill') || {}).src || '',
  };
}
"""


def test_hole_canvas_paints_a_hole_in_jupyterlab(hole_canvas_lab, browser, artifacts_dir):
    """A stroke painted with the mouse on pconv_torch.hole_canvas.HoleCanvas makes the kernel
    redraw every block's mask and the model's fill."""
    base, token, name, server = hole_canvas_lab
    with _lab_page(browser, base, artifacts_dir, "jupyterlab-hole-canvas") as page:
        page.goto(f"{base}lab/tree/{name}?token={token}", wait_until="load", timeout=PAGE_TIMEOUT_MS)
        page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(timeout=PAGE_TIMEOUT_MS)
        _wait_for_idle_kernel(page)
        _run_all_cells(page)
        _wait_for_run_all(page, timeout_s=RUN_ALL_TIMEOUT_MS / 1000)
        try:
            page.wait_for_function(f"() => {{ const s = ({HOLE_CANVAS_STATE_JS})(); "
                                   "return s && s.blocks.length > 0 && s.fill; }",
                                   timeout=REDRAW_TIMEOUT_MS)
        except sync_api.TimeoutError:
            raise AssertionError("the cell ran, but no draw-a-hole widget with its masks is shown; "
                                 f"server log:\n{server.log_tail(2000)}") from None
        before = page.evaluate(HOLE_CANVAS_STATE_JS)
        assert before["status"].startswith("0 hole pixels"), before["status"]

        page.locator(".pconv-hole-canvas canvas.phc-canvas").scroll_into_view_if_needed()
        drag_stroke(page, ".pconv-hole-canvas canvas.phc-canvas", start=(0.25, 0.4), step=(0.025, 0.01))
        try:
            page.wait_for_function(f"(old) => {{ const s = ({HOLE_CANVAS_STATE_JS})(); "
                                   "return s && s.updates > old.updates; }",
                                   arg=before, timeout=REDRAW_TIMEOUT_MS)
        except sync_api.TimeoutError:
            raise AssertionError(f"no redraw within {REDRAW_TIMEOUT_MS / 1000:.0f} s of the stroke; "
                                 f"server log:\n{server.log_tail(2000)}") from None
        after = page.evaluate(HOLE_CANVAS_STATE_JS)
        holes = int(after["status"].split()[0])
        assert holes > 0, after["status"]
        assert len(after["blocks"]) == len(before["blocks"])
        assert after["blocks"][0] != before["blocks"][0], "the first block's mask did not change"
        assert after["fill"] != before["fill"], "the model's fill did not change"
        print(f"\ndraw a hole in JupyterLab: {after['status']}; "
              f"{sum(a != b for a, b in zip(after['blocks'], before['blocks']))} of "
              f"{len(after['blocks'])} block masks changed")
        page.screenshot(path=str(artifacts_dir / "jupyterlab-hole-canvas.png"))
