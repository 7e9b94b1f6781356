"""Window counts, mask traces, receptive fields and hole closure (pconv_torch.mask_trace)."""

import pytest
import torch

from pconv_torch import Generator, PartialConv2d
from pconv_torch import mask_trace as mt
from pconv_torch.partial_conv import mask_update


def test_window_counts_by_hand():
    # 4x4 image, hole in the top-left 2x2, 3x3 kernel, "same" padding (counts as hole)
    mask = torch.ones(1, 1, 4, 4)
    mask[..., :2, :2] = 0
    wc = mt.window_counts(mask, 3)
    expected = torch.tensor([[0, 2, 4, 4], [2, 5, 7, 6], [4, 7, 8, 6], [4, 6, 6, 4]])
    assert torch.equal(wc.sum_m[0, 0], expected)
    assert wc.sum_1 == 9
    assert wc.ratio[0, 0, 0, 0] == 0 and wc.ratio[0, 0, 1, 1] == pytest.approx(9 / 5)
    assert wc.new_mask[0, 0].sum() == 15


@pytest.mark.parametrize("k,s", [(1, 1), (3, 1), (3, 2), (5, 2), (7, 3)])
def test_window_counts_match_the_layer(k, s):
    g = torch.Generator().manual_seed(k * 10 + s)
    mask = (torch.rand(2, 1, 17, 19, generator=g) > 0.6).float()
    wc = mt.window_counts(mask, k, s, in_channels=4)
    scale, new_mask = mask_update(mask, 4, (k, k), (s, s), (k // 2, k // 2), None)
    assert torch.equal(wc.new_mask, new_mask)
    assert torch.allclose(wc.ratio, scale)
    _, layer_mask = PartialConv2d(4, 2, k, s, k // 2)(torch.rand(2, 4, 17, 19), mask)
    assert torch.equal(wc.new_mask, layer_mask)


def test_window_counts_groups_match_the_layer():
    g = torch.Generator().manual_seed(1)
    mask = (torch.rand(1, 2, 9, 9, generator=g) > 0.5).float()
    wc = mt.window_counts(mask, 3, 1, groups=(5, 2))
    scale, new_mask = mask_update(mask, 7, (3, 3), (1, 1), (1, 1), (5, 2))
    assert wc.sum_1 == 63
    assert torch.equal(wc.new_mask, new_mask) and torch.allclose(wc.ratio, scale)
    with pytest.raises(ValueError):
        mt.window_counts(mask, 3)


def test_mask_trace_records_every_block(narrow_generator):
    trace = mt.mask_trace(narrow_generator, mt.make_hole("square", 64))
    assert [t.index for t in trace] == list(range(len(narrow_generator.layers)))
    assert [t.role for t in trace] == ["encoder"] * 4 + ["decoder"] * 4 + ["head"] * 2
    assert [t.mask.shape[-1] for t in trace] == [64, 32, 16, 8, 16, 32, 64, 128, 128, 128]
    assert trace[4].mask_in.shape[1] == 2
    assert trace[4].groups == narrow_generator.layers[4].in_groups
    for t in trace:  # the recorded new masks are what window_counts computes from the inputs
        assert torch.equal(t.counts().new_mask, t.mask)
    assert mt.closing_block(trace) == [4]


def test_masks_depend_neither_on_weights_nor_width(narrow_generator):
    masks = torch.cat([mt.make_hole(s, 72) for s in mt.HOLE_SHAPES])
    torch.manual_seed(1)
    other = Generator(width=1 / 8)
    for a, b in zip(mt.mask_trace(narrow_generator, masks), mt.mask_trace(other, masks)):
        assert torch.equal(a.mask, b.mask)


def test_mask_trace_rejects_plain_conv():
    with pytest.raises(ValueError, match="plain"):
        mt.mask_trace(Generator(width=1 / 16, conv="plain"), mt.make_hole("square", 8))


def test_receptive_fields():
    # the textbook chain: three 3x3/1 layers see 7 pixels; a 3x3/2 then a 3x3/1 see 7
    assert [r for r, _ in mt.receptive_field([(3, 1)] * 3)] == [3, 5, 7]
    assert mt.receptive_field([(3, 2), (3, 1)]) == [(3, 2), (7, 2)]
    # nearest x2 upsampling halves the jump and keeps the field
    assert mt.receptive_field([(3, 2), (3, 1, 2)]) == [(3, 2), (5, 1)]
    rf = mt.receptive_fields(Generator(width=1 / 16))
    assert [r["rf"] for r in rf] == [5, 13, 21, 37, 53, 61, 65, 67, 69, 69]
    assert [r["jump"] for r in rf] == [2, 4, 8, 16, 8, 4, 2, 1, 1, 1]


def test_hole_sweep_depth_limit(narrow_generator):
    deep = Generator(width=1 / 16, depth=5)
    sides = [16, 64, 72, 120]
    rf4, rf5 = mt.receptive_fields(narrow_generator)[-1]["rf"], mt.receptive_fields(deep)[-1]["rf"]
    for g, out_rf in ((narrow_generator, rf4), (deep, rf5)):
        for row in mt.hole_sweep(g, sides):
            assert (row["closes_after"] is not None) == (row["side"] < out_rf)
            assert (row["holes_at_output"] == 0) == (row["closes_after"] is not None)


@pytest.mark.parametrize("shape", mt.HOLE_SHAPES)
def test_make_hole(shape):
    m = mt.make_hole(shape, 40)
    assert m.shape == (1, 1, 128, 128) and m.dtype == torch.float32
    assert set(m.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(m, mt.make_hole(shape, 40))  # deterministic
    ys, xs = (m[0, 0] == 0).nonzero(as_tuple=True)
    assert ys.min() >= 44 and ys.max() < 84 and xs.min() >= 44 and xs.max() < 84
    with pytest.raises(ValueError):
        mt.make_hole("circle", 40)
