"""Take the README's picture of the book: docs/book.png (run `make book` first).

    .venv/bin/python scripts/screenshot_book.py [PAGE] [--out docs/book.png]

Serves book/_build/html on 127.0.0.1 and photographs PAGE (default: the partial-convolution
chapter, scrolled to its first figure) with Debian's Chromium, as the browser tests do.
"""
import argparse
import io
import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from browser_support import CHROMIUM, CHROMIUM_ARGS, NetworkGuard, static_server  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", nargs="?", default="notebooks/02_partial_convolution_from_scratch.html")
    parser.add_argument("--out", default=str(REPO / "docs" / "book.png"))
    args = parser.parse_args(argv)
    html = REPO / "book" / "_build" / "html"
    if not (html / args.page).is_file():
        sys.exit(f"{html / args.page} not found: run `make book` first")
    with static_server(html) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 760})
        guard = NetworkGuard(context)
        page = context.new_page()
        page.goto(base + args.page, wait_until="load")
        page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("MathJax.startup.promise")
        figure = page.locator("div.cell_output img").first
        figure.scroll_into_view_if_needed()
        page.evaluate("window.scrollBy(0, -200)")
        png = page.screenshot()
        browser.close()
    if guard.blocked:
        sys.exit(f"the page tried to leave the machine: {guard.blocked}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=128).save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
