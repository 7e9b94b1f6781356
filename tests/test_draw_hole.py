"""The book's "draw a hole" piece (book/_static/pconv_draw_hole.js) against pconv_torch.

The page computes the mask update of the poster's generator in JavaScript, with no kernel. Here
Debian's Chromium (driven by Playwright, as in tests/test_browser.py) runs that script on a blank
page, and every block's new mask, window count sum(M) and sum(1) must equal what
``pconv_torch.mask_trace.mask_trace`` records from the real ``Generator`` for the same hole:
fixed holes first, then a stroke painted with the mouse on the piece itself.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from browser_support import drag_stroke, launch_chromium, playwright_session, require_chromium

from pconv_torch import mask_trace as mt
from pconv_torch.networks import Generator

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent.parent / "book" / "_static" / "pconv_draw_hole.js"
N = 128


def _holes() -> dict[str, torch.Tensor]:
    corner = torch.ones((1, 1, N, N))
    corner[..., 0:30, 100:N] = 0
    two = torch.ones((1, 1, N, N))
    two[..., 10:20, 10:70] = 0
    two[..., 90:125, 60:64] = 0
    return {
        "square 64": mt.make_hole("square", 64, N),
        "square 96 (never closes)": mt.make_hole("square", 96, N),
        "rectangle 100": mt.make_hole("rectangle", 100, N),
        "stroke": mt.make_hole("stroke", 110, N),
        "corner": corner,
        "two holes": two,
        "everything": torch.zeros((1, 1, N, N)),
    }


@pytest.fixture(scope="module")
def generator():
    return Generator()   # the poster's widths; masks depend neither on the weights nor the image


@pytest.fixture(scope="module")
def page():
    require_chromium()
    browser = launch_chromium(playwright_session())
    pg = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_content('<!doctype html><html><body><div class="pconv-draw-hole"></div></body></html>')
    pg.add_script_tag(path=str(SCRIPT))
    pg.errors = errors
    yield pg
    browser.close()


COMPUTE_JS = """
(mask) => window.pconvDrawHole.compute(Uint8Array.from(mask), %d).map(L => ({
  size: L.size, sum1: L.sum1, holes: L.holes, mask: Array.from(L.mask), sumM: Array.from(L.sumM)}))
""" % N


def _compare(js_layers, trace, what):
    assert len(js_layers) == len(trace) == 10, what
    for L, ref in zip(js_layers, trace):
        counts = ref.counts()
        size = ref.mask.shape[-1]
        assert L["size"] == size, (what, ref.name)
        assert L["sum1"] == counts.sum_1, (what, ref.name, L["sum1"], counts.sum_1)
        assert L["mask"] == ref.mask.flatten().int().tolist(), (what, ref.name, "new mask")
        assert L["sumM"] == counts.sum_m.flatten().tolist(), (what, ref.name, "sum(M)")
        assert L["holes"] == int(ref.holes()[0]), (what, ref.name)


@pytest.mark.parametrize("name", list(_holes()))
def test_compute_matches_pconv_torch(name, page, generator):
    mask = _holes()[name]
    js = page.evaluate(COMPUTE_JS, mask.flatten().int().tolist())
    _compare(js, mt.mask_trace(generator, mask), name)
    assert not page.errors, page.errors


def test_kernel_sizes_and_strides_are_the_posters(page, generator):
    blocks = page.evaluate("window.pconvDrawHole.BLOCKS.map(b => [b.k, b.s, b.pad])")
    trace = mt.mask_trace(generator, torch.ones((1, 1, N, N)))
    assert blocks == [[t.kernel, t.stride, t.padding] for t in trace]


def test_painting_a_stroke_shrinks_the_masks(page, generator):
    """Drag the mouse over the piece's canvas: the masks change, and equal the torch masks."""
    page.locator(".pconv-draw-hole button[data-action='clear']").click()
    before = page.get_attribute(".pconv-draw-hole", "data-holes")
    assert before == ",".join(["0"] * 10)
    drag_stroke(page, ".pconv-draw-hole canvas.pconv-dh-paint")
    after = page.get_attribute(".pconv-draw-hole", "data-holes")
    holes = [int(v) for v in after.split(",")]
    assert holes[0] > 0 and after != before
    assert holes == sorted(holes[:4], reverse=True) + holes[4:]   # the encoder only shrinks it
    drawn = page.evaluate("Array.from(window.pconvDrawHole.instances[0].mask)")
    mask = torch.tensor(drawn, dtype=torch.float32).view(1, 1, N, N)
    assert (mask == 0).sum() > 100   # a stroke, not a dot
    js = page.evaluate("window.pconvDrawHole.instances[0].layers.map(L => ({size: L.size, sum1: L.sum1, "
                       "holes: L.holes, mask: Array.from(L.mask), sumM: Array.from(L.sumM)}))")
    _compare(js, mt.mask_trace(generator, mask), "painted stroke")
    assert not page.errors, page.errors


def test_gallery_matches_its_script():
    """The gallery the page loads (scripts/draw_hole_gallery.py) holds make_hole's masks and its
    pictures exist: what the page shows for a gallery hole is that hole's fill."""
    import base64
    import json
    import re

    import numpy as np

    script = SCRIPT.parent / "draw_hole" / "gallery.js"
    text = script.read_text()
    gallery = json.loads(re.search(r"window\.pconvDrawHoleGallery = (\{.*?\n\});", text, re.S).group(1))
    assert gallery["size"] == N and (script.parent / gallery["photo"]).is_file()
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "draw_hole_gallery", SCRIPT.parent.parent.parent / "scripts" / "draw_hole_gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert [h["key"] for h in gallery["holes"]] == list(module.HOLES)
    for hole in gallery["holes"]:
        _, shape, size = module.HOLES[hole["key"]]
        bits = np.unpackbits(np.frombuffer(base64.b64decode(hole["mask"]), np.uint8))[: N * N]
        assert np.array_equal(bits, mt.make_hole(shape, size, N).flatten().numpy().astype(np.uint8)), hole["key"]
        for name in ("full", "harmonic"):
            assert (script.parent / hole["images"][name]).is_file(), hole["images"][name]
            assert np.isfinite(hole["psnr"][name])
