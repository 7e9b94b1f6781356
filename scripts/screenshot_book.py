"""Take the README's picture of the book: docs/book.png (run `make book` first).

    .venv/bin/python scripts/screenshot_book.py [PAGE] [--out docs/book.png] [--near TEXT]

Serves book/_build/html on 127.0.0.1 and photographs PAGE (default: the partial-convolution
chapter, scrolled to its first figure; with ``--near``, to the first figure after the heading
that contains TEXT) with Debian's Chromium, as the browser tests do. The README's second picture:

    .venv/bin/python scripts/screenshot_book.py notebooks/05_training_phases.html \
        --near "fills, large" --out docs/results.jpg
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
    parser.add_argument("--near", help="photograph the first figure after the heading with this text")
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
        # pages without maths load no MathJax; on the others, wait until it has typeset
        page.wait_for_function("!document.querySelector('script[src*=\"mathjax\"]') || "
                               "(window.MathJax && MathJax.startup && MathJax.startup.promise)")
        page.evaluate("window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
        if args.near:
            found = page.evaluate("""(t) => {
                const heads = [...document.querySelectorAll('article h1, article h2, article h3')];
                const h = heads.find(e => e.textContent.includes(t));
                if (!h) return false;
                const imgs = [...document.querySelectorAll('article div.cell_output img')];
                const img = imgs.find(i => h.compareDocumentPosition(i) & Node.DOCUMENT_POSITION_FOLLOWING);
                (img || h).scrollIntoView(); window.scrollBy(0, -40); return true; }""", args.near)
            if not found:
                sys.exit(f"no heading containing {args.near!r} on {args.page}")
            page.wait_for_timeout(300)
        else:
            figure = page.locator("div.cell_output img").first
            figure.scroll_into_view_if_needed()
            page.evaluate("window.scrollBy(0, -200)")
        png = page.screenshot()
        browser.close()
    if guard.blocked:
        sys.exit(f"the page tried to leave the machine: {guard.blocked}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shot = Image.open(io.BytesIO(png)).convert("RGB")
    if out.suffix.lower() in (".jpg", ".jpeg"):  # photographs: no palette banding
        shot.save(out, quality=88, optimize=True)
    else:
        shot.quantize(colors=128).save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
