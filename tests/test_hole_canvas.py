"""pconv_torch.hole_canvas without a browser: a stroke becomes a hole, the hole every block's
mask (the same as the package's mask trace) and the shipped model's fill; the widget does the
same on the message its JavaScript sends. (tests/test_browser.py paints with the mouse in
JupyterLab.)"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pconv_torch import hole_canvas as hc
from pconv_torch.mask_trace import mask_trace
from pconv_torch.networks import Generator


@pytest.fixture(scope="module")
def model():
    import pconv_torch

    return pconv_torch.pretrained("full")


@pytest.fixture(scope="module")
def photo():
    return hc.default_photo()


def test_a_point_paints_a_disc_and_a_line_joins_its_ends():
    hole = np.zeros((40, 60), bool)
    disc = hc.paint_stroke(hole, [(20, 20)], radius=5)
    assert not hole.any(), "the input is not modified"
    assert abs(int(disc.sum()) - np.pi * 25) < 10 and disc[19, 19] and not disc[19, 30]
    line = hc.paint_stroke(hole, [(5, 5), (50, 30)], radius=2)
    assert line[4, 4] and line[29, 49] and line[17, 27] and not line[30, 5]
    assert (hc.paint_stroke(line, [(5, 5)], radius=2) == line).all()
    with pytest.raises(ValueError, match="radius"):
        hc.paint_stroke(hole, [(1, 1)], radius=0)


def test_block_masks_are_the_mask_trace(model):
    hole = hc.paint_stroke(np.zeros((128, 128), bool), [(20, 30), (100, 90)], radius=9)
    blocks = hc.block_masks(model, hole)
    trace = mask_trace(model, torch.from_numpy(~hole).float()[None, None])
    assert len(blocks) == len(trace) == len(model.layers)
    for b, t in zip(blocks, trace):
        np.testing.assert_array_equal(b.mask, t.mask[0, 0].numpy() > 0.5, err_msg=b.label)
        assert (b.kernel, b.stride, b.holes) == (t.kernel, t.stride, int(t.holes()[0]))
        assert b.label.startswith(f"block {b.index} · ") and b.label.endswith(
            f"{b.mask.shape[0]}×{b.mask.shape[1]}")
    assert [b.up for b in blocks] == [t.role == "decoder" for t in trace]
    assert blocks[0].holes > 0
    # Masks depend neither on the weights nor on the widths.
    other = hc.block_masks(Generator(width=8), hole)
    assert all((a.mask == b.mask).all() for a, b in zip(blocks, other))


def test_each_stroke_changes_the_masks_and_the_fill(model, photo):
    empty = np.zeros(photo.shape[:2], bool)
    first = hc.stroke_update(photo, empty, [(20, 60), (60, 64)], 6, model)
    assert first.hole.sum() > 400 and first.fill.dtype == np.uint8
    assert [b.holes for b in hc.block_masks(model, empty)] == [0] * len(model.layers)
    assert first.blocks[0].holes > 0
    changed = (first.fill != photo).any(axis=2)
    assert changed.any() and not changed[~first.hole].any(), "only hole pixels are filled"
    second = hc.stroke_update(photo, first.hole, [(100, 20), (100, 110)], 8, model)
    assert (second.hole >= first.hole).all() and second.hole.sum() > first.hole.sum()
    assert any((a.mask != b.mask).any() for a, b in zip(first.blocks, second.blocks))
    assert (second.fill[second.hole & ~first.hole] != first.fill[second.hole & ~first.hole]).any()
    # A stroke over everything leaves nothing to fill from: the picture is shown as it is.
    full = hc.stroke_update(photo, empty, [(0, 0), (127, 127), (0, 127), (127, 0)], 200, model)
    assert full.hole.all() and (full.fill == photo).all()


def test_the_widget_redraws_on_the_message_of_a_stroke(model, photo):
    pytest.importorskip("anywidget")
    widget = hc.HoleCanvas(photo=photo, model=model, brush=5)
    assert widget.updates == 1 and len(widget.blocks) == len(model.layers)
    assert widget.size == [128, 128] and widget.hole_pixels == 0
    before = (list(widget.blocks), widget.fill)
    widget._message(widget, {"kind": "stroke", "points": [[30, 30], [90, 40]]}, [])
    assert widget.updates == 2 and widget.hole_pixels == int(widget.last.hole.sum()) > 0
    assert widget.fill != before[1] and widget.blocks[0]["png"] != before[0][0]["png"]
    assert widget.blocks[0]["holes"] == widget.last.blocks[0].holes > 0
    widget._message(widget, {"kind": "clear"}, [])
    assert widget.updates == 3 and widget.hole_pixels == 0 and widget.fill == before[1]
    with pytest.raises(ValueError, match="uint8"):
        hc.HoleCanvas(photo=photo.astype(np.float32), model=model)
