"""Lighter pages for the pconv book (listed under sphinx.local_extensions in _config.yml).

Each page should load at most 2 MB in all (tests/test_browser.py::test_book_page_weight). After
the HTML build this extension, with nothing lost from what a page shows:

* re-encodes the notebook figures in ``_images``: a JPEG as a WebP of quality 85 (about 40 % of
  its bytes, same pixels per inch), a PNG as a lossless WebP where that is smaller, and points the
  pages' ``<img>`` at the new files; the same for the images a page holds as ``data:`` URIs (the
  frames of a matplotlib animation: chapter 3's from 0.25 MB to 0.07 MB);
* drops the ``application/vnd.jupyter.widget-state+json`` scripts that myst-nb copies from the
  notebooks: the static book loads no widget manager (``nb_ipywidgets_js: {}``), so nothing reads
  them (35-70 kB on a page with a widget);
* removes from the theme's style sheets the rules none of whose selectors can match: a selector
  is kept unless it names a class that no built page and no script in ``_static`` contains
  (``pydata-sphinx-theme.css`` goes from 0.40 MB, most of it Bootstrap and Font Awesome's class
  list, to about 0.1 MB). A class is also kept when a script builds class names from a string
  that starts it (``"bs-"`` + name + placement), and so is a selector with an escape;
* replaces each Font Awesome web font the style sheets use by a WOFF with only the glyphs their
  ``content`` strings name (the solid one: 0.16 MB to about 5 kB); fontTools writes WOFF (zlib),
  WOFF2 would need brotli.

Files in the book's own ``_static`` folder are left as they are.
"""
from __future__ import annotations

import re
from pathlib import Path

#: WebP quality of a re-encoded JPEG figure.
WEBP_QUALITY = 85

_WIDGET_STATE = re.compile(
    r'\s*<script type="application/vnd\.jupyter\.widget-state\+json">.*?</script>', re.S)
_DATA_URI = re.compile(r"data:image/(png|jpeg);base64,((?:[A-Za-z0-9+/=]|\\\n)+)")
_WORD = re.compile(r"-?[_a-zA-Z][\w-]*")
_CLASS = re.compile(r"\.(-?[_a-zA-Z][\w-]*)")
_FONT_URL = re.compile(
    r'url\(([^)]*/)?(fa-[a-z]+-\d+)\.woff2\)\s*format\("woff2"\)(?:\s*,\s*url\([^)]*\.ttf\)\s*format\("truetype"\))?')
_PREFIX = re.compile(r"[\"'`]([A-Za-z][\w-]*-)(?:[\"'`]|\$\{)")
_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})\s?")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'", re.S)


def drop_widget_state(html: str) -> str:
    """``html`` without its ``<script type="application/vnd.jupyter.widget-state+json">``."""
    return _WIDGET_STATE.sub("", html)


def _webp_bytes(im, lossless: bool, quality: int) -> bytes:
    """``im`` (a PIL image) encoded as WebP: lossless, or lossy at ``quality``."""
    import io

    if im.mode not in ("RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in im.getbands() or "transparency" in im.info else "RGB")
    if im.mode == "RGBA" and im.getchannel("A").getextrema() == (255, 255):
        im = im.convert("RGB")
    out = io.BytesIO()
    im.save(out, "WEBP", lossless=lossless, quality=100 if lossless else quality, method=4)
    return out.getvalue()


def webp_data_uris(html: str, quality: int = WEBP_QUALITY, min_chars: int = 2000) -> str:
    """``html`` with each PNG or JPEG ``data:`` URI of at least ``min_chars`` characters (also
    one split over lines with ``\\``, as in a matplotlib animation's script) replaced by a WebP
    one where that is shorter: lossless for a PNG, ``quality`` for a JPEG."""
    import base64
    import io

    from PIL import Image, features

    if not features.check("webp"):
        return html

    def swap(m):
        if len(m.group(0)) < min_chars:
            return m.group(0)
        raw = base64.b64decode(m.group(2).replace("\\\n", "").replace("\n", ""))
        with Image.open(io.BytesIO(raw)) as im:
            im.load()
            encoded = base64.b64encode(_webp_bytes(im, m.group(1) == "png", quality)).decode("ascii")
        return "data:image/webp;base64," + encoded if len(encoded) < len(m.group(2)) else m.group(0)

    return _DATA_URI.sub(swap, html)


def webp_figure(path: Path, quality: int = WEBP_QUALITY) -> Path | None:
    """Write ``path`` (a .jpg/.jpeg or .png) as a .webp beside it and return the new path: lossy
    at ``quality`` for a JPEG, lossless for a PNG. None (and nothing written) when the WebP would
    not be smaller or Pillow cannot write WebP. An existing .webp is reused: the names in
    ``_images`` are hashes of the content."""
    from PIL import Image, features

    target = path.with_suffix(".webp")
    if target.exists():
        return target
    if not features.check("webp"):
        return None
    with Image.open(path) as im:
        im.load()
        data = _webp_bytes(im, im.format == "PNG", quality)
    if len(data) >= path.stat().st_size:
        return None
    target.write_bytes(data)
    return target


def point_images_at(html: str, renamed: dict[str, str]) -> str:
    """``html`` with each ``_images/<old>`` reference of ``renamed`` ({old: new} file names)
    replaced by ``_images/<new>``."""
    if not renamed:
        return html
    names = "|".join(re.escape(n) for n in sorted(renamed, key=len, reverse=True))
    return re.sub(r'(_images/)(' + names + r')(?=["\'\s)])', lambda m: m.group(1) + renamed[m.group(2)], html)


def words_of(text: str) -> set[str]:
    """Every word that could be a class name (``[-_a-zA-Z][-_a-zA-Z0-9]*``) in ``text``."""
    return set(_WORD.findall(text))


def _top_level(text: str):
    """(index, character) of each character of ``text`` outside (), [] and strings (brackets
    and quotes themselves left out)."""
    depth, quote = 0, ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0:
            yield i, ch


def _split_top(text: str, sep: str = ",") -> list[str]:
    """``text`` split at each ``sep`` outside (), [] and strings."""
    cuts = [i for i, ch in _top_level(text) if ch == sep]
    return [text[start + 1:end] for start, end in zip([-1] + cuts, cuts + [len(text)])]


def _outside_brackets(selector: str) -> str:
    """``selector`` with what is inside (), [] and strings removed (``:not(.x)`` matches more
    when ``.x`` is absent, and ``[href$=".pdf"]`` names no class)."""
    return "".join(ch for _, ch in _top_level(selector))


def prefixes_of(script: str) -> set[str]:
    """The string literals of ``script`` that end in ``-`` where a class name is built from them
    (``"bs-"``, `` `thebe-status-${...}` ``)."""
    return set(_PREFIX.findall(script))


def _class_used(name: str, words: set[str], prefixes) -> bool:
    return name in words or any(name.startswith(p) for p in prefixes)


def selector_can_match(selector: str, words: set[str], prefixes=()) -> bool:
    """False when ``selector`` names a class (outside ``:not()``, ``:is()``, ...) that is not in
    ``words`` and starts with none of ``prefixes``; True otherwise."""
    if "\\" in selector:
        return True
    return all(_class_used(c, words, prefixes) for c in _CLASS.findall(_outside_brackets(selector)))


def purge_css(css: str, words: set[str], prefixes=()) -> str:
    """``css`` without the rules none of whose selectors can match (:func:`selector_can_match`);
    empty ``@media``/``@supports``/``@layer``/``@container`` blocks go too, other at-rules
    (``@font-face``, ``@keyframes``, ``@charset``) and ``/*!`` licence comments stay."""
    import tinycss2

    def rules(nodes) -> list[str]:
        out = []
        for node in nodes:
            if node.type == "comment":
                if node.value.startswith("!"):
                    out.append(f"/*{node.value}*/")
            elif node.type == "qualified-rule":
                kept = [s.strip() for s in _split_top(tinycss2.serialize(node.prelude))
                        if selector_can_match(s, words, prefixes)]
                if kept:
                    out.append(",".join(kept) + "{" + tinycss2.serialize(node.content) + "}")
            elif node.type == "at-rule":
                if (node.lower_at_keyword in ("media", "supports", "layer", "container")
                        and node.content is not None):
                    inner = rules(tinycss2.parse_blocks_contents(node.content))
                    if inner:
                        out.append(f"@{node.at_keyword}{tinycss2.serialize(node.prelude)}"
                                   "{" + "".join(inner) + "}")
                else:
                    out.append(tinycss2.serialize([node]))
        return out

    return "".join(rules(tinycss2.parse_stylesheet(css, skip_whitespace=True)))


def css_codepoints(css: str) -> set[int]:
    """The characters of every string in ``css`` (``"\\f0c9"`` gives 0xf0c9), as code points."""
    points = set()
    for s in _STRING.findall(css):
        body = _ESCAPE.sub(lambda m: chr(min(int(m.group(1), 16), 0x10FFFF)), s[1:-1])
        points |= {ord(ch) for ch in body.replace("\\", "")}
    return points


def subset_font(source: Path, target: Path, codepoints: set[int]) -> int:
    """Write the glyphs of ``codepoints`` that ``source`` (a TTF) has as the WOFF ``target``;
    returns how many of them it has."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.flavor = "woff"
    options.layout_features = ["*"]
    options.notdef_outline = True
    font = TTFont(source)
    present = set(font.getBestCmap()) & codepoints
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(present))
    subsetter.subset(font)
    font.flavor = "woff"
    font.save(target)
    return len(present)


def small_fonts(css: str, css_dir: Path, codepoints: set[int]) -> str:
    """``css`` with each Font Awesome ``fa-*.woff2`` (and its ``.ttf`` fallback) replaced by a
    ``fa-*-used.woff`` subset (:func:`subset_font`) written beside the TTF."""
    def swap(m):
        prefix, stem = m.group(1) or "", m.group(2)
        ttf = (css_dir / prefix / f"{stem}.ttf").resolve()
        if not ttf.exists():
            return m.group(0)
        subset_font(ttf, ttf.with_name(f"{stem}-used.woff"), codepoints)
        return f'url({prefix}{stem}-used.woff) format("woff")'

    return _FONT_URL.sub(swap, css)


def slim_build(outdir: Path, own_static: Path | None = None) -> dict[str, int]:
    """Apply all of the above to the HTML build in ``outdir``; files whose name is in
    ``own_static`` (the book's _static) are not purged. Returns {what: bytes saved} (the
    figures counted only when converted in this call)."""
    saved = {"figures": 0, "pages": 0, "style sheets": 0}
    own = {p.relative_to(own_static).as_posix() for p in own_static.rglob("*")} if own_static else set()
    images = outdir / "_images"
    renamed = {}
    for path in sorted(images.glob("*")) if images.exists() else []:
        if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
            webp = webp_figure(path)
            if webp is not None:
                saved["figures"] += path.stat().st_size - webp.stat().st_size
                renamed[path.name] = webp.name
                path.unlink()
    pages = sorted(outdir.rglob("*.html"))
    words: set[str] = set()
    prefixes: set[str] = set()
    for page in pages:
        text = page.read_text(encoding="utf-8")
        slim = webp_data_uris(point_images_at(drop_widget_state(text), renamed))
        saved["pages"] += len(text) - len(slim)
        if slim != text:
            page.write_text(slim, encoding="utf-8")
        words |= words_of(slim)
    static = outdir / "_static"
    for script in sorted(static.rglob("*.js")):
        text = script.read_text(encoding="utf-8", errors="replace")
        words |= words_of(text)
        if "mathjax" not in script.relative_to(static).parts:   # MathJax styles what it builds
            prefixes |= prefixes_of(text)
    sheets = [p for p in sorted(static.rglob("*.css")) if p.relative_to(static).as_posix() not in own]
    purged = {}
    for sheet in sheets:
        text = sheet.read_text(encoding="utf-8")
        purged[sheet] = purge_css(text, words, prefixes)
        saved["style sheets"] += len(text) - len(purged[sheet])
    points = set()
    for text in purged.values():
        points |= css_codepoints(text)
    for sheet, text in purged.items():
        sheet.write_text(small_fonts(text, sheet.parent, points), encoding="utf-8")
    return saved


def _slim(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    saved = slim_build(Path(app.outdir), Path(app.srcdir) / "_static")
    from sphinx.util import logging

    logging.getLogger(__name__).info(
        "pconv_weight: saved " + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in saved.items()))


def setup(app):
    # After pconv_book's own build-finished steps (default priority 500), which rewrite pages.
    app.connect("build-finished", _slim, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
