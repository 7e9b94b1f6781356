"""book/_ext/pconv_weight.py, which keeps the book's pages light, on small inputs (no Sphinx,
no browser): what it removes from a style sheet, what it keeps, and that its WebP figures and
font subsets hold what the originals show."""
from __future__ import annotations

import base64
import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "book" / "_ext"))
import pconv_weight as pw  # noqa: E402

needs_webp = pytest.mark.skipif(not features.check("webp"), reason="Pillow without WebP")


def test_purge_keeps_what_a_page_or_script_can_use():
    css = ('@charset "UTF-8";/*! licence */.used{a:1}.unused{b:2}.used .unused,.used>p{c:3}'
           'p:not(.unused){d:4}a[href$=".pdf"]{e:5}.bs-tooltip-top{f:6}'
           '@media (min-width:960px){.unused{g:7}.used{h:8}}@font-face{font-family:X}')
    out = pw.purge_css(css, words={"used", "p", "a"}, prefixes={"bs-"})
    for kept in ("/*! licence */", ".used{a:1}", ".used>p{c:3}", "p:not(.unused){d:4}",
                 'a[href$=".pdf"]{e:5}', ".bs-tooltip-top{f:6}", "{.used{h:8}}", "@font-face",
                 '@charset "UTF-8";'):
        assert kept in out, (kept, out)
    for gone in (".unused{b:2}", ".used .unused", "g:7"):
        assert gone not in out, (gone, out)


def test_selector_with_an_escape_or_inside_brackets_is_kept():
    assert pw.selector_can_match(r".md\:flex", set())
    assert pw.selector_can_match("div:is(.x,.y)", {"div"})
    assert not pw.selector_can_match("div.x", {"div"})


def test_words_and_prefixes_of_a_script():
    script = 'el.classList.add(`bs-${name}-auto`); x = "toggle-" + id; y = "fa-solid";'
    assert pw.prefixes_of(script) == {"bs-", "toggle-"}
    assert {"fa-solid", "classList"} <= pw.words_of(script)


def test_widget_state_goes_and_nothing_else():
    html = ('<p>a</p>\n<script type="application/vnd.jupyter.widget-state+json">{"state": {}}'
            '</script>\n<script type="application/vnd.jupyter.widget-view+json">{}</script>')
    out = pw.drop_widget_state(html)
    assert "widget-state" not in out and "widget-view" in out and "<p>a</p>" in out


def test_css_codepoints_reads_escapes_and_characters():
    assert pw.css_codepoints(r'.fa-bars{--fa:"\f0c9"}.x:before{content:"\f05a  é"}') == {
        0xF0C9, 0xF05A, ord(" "), ord("é")}


def _figure(mode: str) -> Image.Image:
    rng = np.random.default_rng(0)
    pixels = np.zeros((60, 90, 3), np.uint8)
    pixels[10:50, 10:40] = (200, 30, 30)
    pixels[:, 60:] = rng.integers(0, 255, (60, 30, 3))
    return Image.fromarray(pixels).convert(mode)


@needs_webp
def test_png_figure_becomes_a_lossless_webp(tmp_path):
    png = tmp_path / "a.png"
    _figure("RGBA").save(png)
    webp = pw.webp_figure(png)
    assert webp == tmp_path / "a.webp" and webp.stat().st_size < png.stat().st_size
    with Image.open(webp) as out:
        assert out.format == "WEBP" and out.mode == "RGB"   # the alpha was all opaque
        np.testing.assert_array_equal(np.asarray(out), np.asarray(_figure("RGB")))
    html = '<img src="../_images/a.png" /><img src="../_images/b.png" />'
    assert pw.point_images_at(html, {"a.png": "a.webp"}) == (
        '<img src="../_images/a.webp" /><img src="../_images/b.png" />')


@needs_webp
def test_data_uri_frames_become_webp():
    buffer = io.BytesIO()
    _figure("RGB").save(buffer, "PNG")
    b64 = base64.b64encode(buffer.getvalue()).decode()
    split = "\\\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))   # as in matplotlib's JS
    html = f'frames[0] = "data:image/png;base64,{split}";'
    out = pw.webp_data_uris(html, min_chars=100)
    assert out.startswith('frames[0] = "data:image/webp;base64,') and len(out) < len(html)
    decoded = base64.b64decode(out.split(",", 1)[1].rstrip('";'))
    with Image.open(io.BytesIO(decoded)) as im:
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), np.asarray(_figure("RGB")))
    assert pw.webp_data_uris(out, min_chars=100) == out


def test_font_subset_keeps_the_glyphs_asked_for(tmp_path):
    from fontTools.ttLib import TTFont
    from matplotlib import font_manager

    ttf = Path(font_manager.findfont("DejaVu Sans"))
    target = tmp_path / "sub.woff"
    assert pw.subset_font(ttf, target, {ord("A"), ord("b"), 0xF0C9}) == 2
    font = TTFont(target)
    assert font.flavor == "woff" and set(font.getBestCmap()) == {ord("A"), ord("b")}
    assert target.stat().st_size < ttf.stat().st_size / 10


def test_the_books_icon_script_builds_no_class_names():
    """A quoted prefix in book/_ext/pconv_book.py's icon script would keep every Font Awesome
    class of the theme's style sheet (0.1 MB) and every glyph of its font (0.15 MB)."""
    import pconv_book

    assert pw.prefixes_of(pconv_book._FA_JS) == set()
