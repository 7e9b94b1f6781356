"""Mask traces, receptive fields, hole closure and the interactive mask explorer."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from pconv_torch import Generator, PartialConv2d  # noqa: E402
from pconv_torch import mask_explorer as mx  # noqa: E402
from pconv_torch.partial_conv import mask_update  # noqa: E402


@pytest.fixture(scope="module")
def narrow():
    torch.manual_seed(0)
    return Generator(width=1 / 16)


def test_window_counts_by_hand():
    # 4x4 image, hole in the top-left 2x2, 3x3 kernel, "same" padding (counts as hole)
    mask = torch.ones(1, 1, 4, 4)
    mask[..., :2, :2] = 0
    wc = mx.window_counts(mask, 3)
    expected = torch.tensor([[0, 2, 4, 4], [2, 5, 7, 6], [4, 7, 8, 6], [4, 6, 6, 4]])
    assert torch.equal(wc.sum_m[0, 0], expected)
    assert wc.sum_1 == 9
    assert wc.ratio[0, 0, 0, 0] == 0 and wc.ratio[0, 0, 1, 1] == pytest.approx(9 / 5)
    assert wc.new_mask[0, 0].sum() == 15


@pytest.mark.parametrize("k,s", [(1, 1), (3, 1), (3, 2), (5, 2), (7, 3)])
def test_window_counts_match_the_layer(k, s):
    g = torch.Generator().manual_seed(k * 10 + s)
    mask = (torch.rand(2, 1, 17, 19, generator=g) > 0.6).float()
    wc = mx.window_counts(mask, k, s, in_channels=4)
    scale, new_mask = mask_update(mask, 4, (k, k), (s, s), (k // 2, k // 2), None)
    assert torch.equal(wc.new_mask, new_mask)
    assert torch.allclose(wc.ratio, scale)
    _, layer_mask = PartialConv2d(4, 2, k, s, k // 2)(torch.rand(2, 4, 17, 19), mask)
    assert torch.equal(wc.new_mask, layer_mask)


def test_window_counts_groups_match_the_layer():
    g = torch.Generator().manual_seed(1)
    mask = (torch.rand(1, 2, 9, 9, generator=g) > 0.5).float()
    wc = mx.window_counts(mask, 3, 1, groups=(5, 2))
    scale, new_mask = mask_update(mask, 7, (3, 3), (1, 1), (1, 1), (5, 2))
    assert wc.sum_1 == 63
    assert torch.equal(wc.new_mask, new_mask) and torch.allclose(wc.ratio, scale)
    with pytest.raises(ValueError):
        mx.window_counts(mask, 3)


def test_mask_trace_records_every_block(narrow):
    trace = mx.mask_trace(narrow, mx.make_hole("square", 64))
    assert [t.index for t in trace] == list(range(len(narrow.layers)))
    assert [t.role for t in trace] == ["encoder"] * 4 + ["decoder"] * 4 + ["head"] * 2
    assert [t.mask.shape[-1] for t in trace] == [64, 32, 16, 8, 16, 32, 64, 128, 128, 128]
    assert trace[4].mask_in.shape[1] == 2 and trace[4].groups == narrow.layers[4].in_groups
    for t in trace:  # the recorded new masks are what window_counts computes from the inputs
        assert torch.equal(t.counts().new_mask, t.mask)
    assert mx.closing_block(trace) == [4]


def test_masks_depend_neither_on_weights_nor_width(narrow):
    masks = torch.cat([mx.make_hole(s, 72) for s in mx.HOLE_SHAPES])
    torch.manual_seed(1)
    other = Generator(width=1 / 8)
    for a, b in zip(mx.mask_trace(narrow, masks), mx.mask_trace(other, masks)):
        assert torch.equal(a.mask, b.mask)


def test_mask_trace_rejects_plain_conv():
    with pytest.raises(ValueError, match="plain"):
        mx.mask_trace(Generator(width=1 / 16, conv="plain"), mx.make_hole("square", 8))


def test_receptive_fields():
    # the textbook chain: three 3x3/1 layers see 7 pixels; a 3x3/2 then a 3x3/1 see 7
    assert [r for r, _ in mx.receptive_field([(3, 1)] * 3)] == [3, 5, 7]
    assert mx.receptive_field([(3, 2), (3, 1)]) == [(3, 2), (7, 2)]
    # nearest x2 upsampling halves the jump and keeps the field
    assert mx.receptive_field([(3, 2), (3, 1, 2)]) == [(3, 2), (5, 1)]
    rf = mx.receptive_fields(Generator(width=1 / 16))
    assert [r["rf"] for r in rf] == [5, 13, 21, 37, 53, 61, 65, 67, 69, 69]
    assert [r["jump"] for r in rf] == [2, 4, 8, 16, 8, 4, 2, 1, 1, 1]


def test_hole_sweep_depth_limit(narrow):
    deep = Generator(width=1 / 16, depth=5)
    sides = [16, 64, 72, 120]
    rf4, rf5 = mx.receptive_fields(narrow)[-1]["rf"], mx.receptive_fields(deep)[-1]["rf"]
    for g, out_rf in ((narrow, rf4), (deep, rf5)):
        for row in mx.hole_sweep(g, sides):
            assert (row["closes_after"] is not None) == (row["side"] < out_rf)
            assert (row["holes_at_output"] == 0) == (row["closes_after"] is not None)


@pytest.mark.parametrize("shape", mx.HOLE_SHAPES)
def test_make_hole(shape):
    m = mx.make_hole(shape, 40)
    assert m.shape == (1, 1, 128, 128) and m.dtype == torch.float32
    assert set(m.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(m, mx.make_hole(shape, 40))  # deterministic
    ys, xs = (m[0, 0] == 0).nonzero(as_tuple=True)
    assert ys.min() >= 44 and ys.max() < 84 and xs.min() >= 44 and xs.max() < 84
    with pytest.raises(ValueError):
        mx.make_hole("circle", 40)


def test_widget_redraws_when_a_slider_moves(narrow):
    pytest.importorskip("ipywidgets")
    ex = mx.MaskExplorer(narrow, size=64, kernel=3, stride=1, layer=4)
    assert ex.n_draws == 1 and ex.last["params"]["size"] == 64  # drawn once on creation
    descriptions = {k: c.description for k, c in ex.controls.items()}
    assert descriptions == {"shape": "hole shape", "size": "hole size", "kernel": "kernel size",
                            "stride": "stride", "layer": "layer"}
    assert "pconv-mask-explorer" in ex.widget._dom_classes
    assert all(f"pconv-mask-explorer-{k}" in c._dom_classes for k, c in ex.controls.items())
    first = ex.last
    ex.controls["size"].value = 96
    assert ex.n_draws == 2 and ex.last["params"]["size"] == 96
    assert ex.last["holes_before"] > first["holes_before"]
    assert not torch.equal(ex.last["single"].sum_m, first["single"].sum_m)
    assert ex.last["closes_after"] is None and first["closes_after"] == 4
    assert "closes never" in ex.readout.value
    ex.controls["kernel"].value = 5
    assert ex.n_draws == 3 and ex.last["sum_1"] == 25
    ex.controls["stride"].value = 2
    assert ex.last["single"].sum_m.shape[-1] == 64
    ex.controls["layer"].value = 7
    assert ex.last["layer"].index == 7
    assert ex.last["layer_sum_1"] == 9 * sum(narrow.layers[7].in_groups)
    ex.controls["shape"].value = "stroke"
    assert ex.n_draws == 6 and ex.last["params"]["shape"] == "stroke"


def test_hole_animation_frames(narrow):
    sides = [8, 72]
    anim, sweep = mx.hole_animation(narrow, sides, dpi=30)
    assert [r["closes_after"] for r in sweep] == [1, None]
    html = anim.to_jshtml()
    assert html.count("data:image/png;base64") == len(sides)


def test_offline_jshtml_needs_no_network():
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    fig, ax = plt.subplots()
    line = ax.plot([0, 1], [0, 1])[0]
    animation = FuncAnimation(fig, lambda i: line.set_ydata([0, i]), frames=3)
    for _ in range(2):  # matplotlib adds its stylesheet link on every call
        html = mx.offline_jshtml(animation)
        assert "font-awesome" not in html and "http" not in html
        assert "\u25b6" in html  # the play button kept a visible glyph
        # no media-control symbols from Miscellaneous Technical: common fonts lack them
        assert not any("\u2300" <= ch <= "\u23ff" for ch in html)
        for glyph in mx._FA_GLYPHS.values():  # Basic Latin, minus sign and Geometric Shapes only
            assert all(ch < "\u0080" or ch == "\u2212" or "\u25a0" <= ch <= "\u25ff" for ch in glyph)
    plt.close(fig)
