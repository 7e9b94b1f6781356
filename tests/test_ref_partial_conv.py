"""Tests of pconv_ref.partial_conv: hand-computed cases, gradient checks for every mask form,
naive == vectorised, the three mask forms agree, validation errors."""

import itertools

import numpy as np
import pytest
from cases import MASK_FORMS, X33, mask_contents, mask_groups

from pconv_ref import (
    compare,
    expand_mask,
    numerical_gradient,
    partial_conv2d_backward,
    partial_conv2d_backward_naive,
    partial_conv2d_forward,
    partial_conv2d_forward_naive,
    relative_error,
)

IMPLS = {
    "naive": (partial_conv2d_forward_naive, partial_conv2d_backward_naive),
    "vectorised": (partial_conv2d_forward, partial_conv2d_backward),
}

ONES22 = np.ones((1, 1, 2, 2))


# ------------------------------------------------------------------- hand-computed
@pytest.mark.parametrize("impl", IMPLS)
def test_hand_one_hole(impl):
    fwd, _ = IMPLS[impl]
    mask = np.ones((1, 1, 3, 3))
    mask[0, 0, 0, 0] = 0  # hole at the top-left pixel (value 1)
    out, new_mask, _ = fwd(X33, mask, ONES22, np.array([0.5]))
    # 2x2 ones kernel, stride 1, b = 0.5; sum_1 = 1*2*2 = 4.
    # window (0,0): pixels 1(hole) 2 4 5 -> (2+4+5) * 4/3 + 0.5 = 11*4/3 + 0.5 = 15.1666...
    # window (0,1): 2 3 5 6, all valid   -> 16 * 4/4 + 0.5 = 16.5
    # window (1,0): 4 5 7 8              -> 24 + 0.5 = 24.5
    # window (1,1): 5 6 8 9              -> 28 + 0.5 = 28.5
    expected = [[[[11 * 4 / 3 + 0.5, 16.5], [24.5, 28.5]]]]
    np.testing.assert_allclose(out, expected, rtol=1e-15)
    np.testing.assert_array_equal(new_mask, np.ones((1, 1, 2, 2)))


@pytest.mark.parametrize("impl", IMPLS)
def test_hand_all_hole_window_gives_zero_not_bias(impl):
    fwd, _ = IMPLS[impl]
    mask = np.ones((1, 1, 3, 3))
    mask[0, 0, :2, :2] = 0  # holes at 1 2 / 4 5: the top-left 2x2 window is all hole
    out, new_mask, _ = fwd(X33, mask, ONES22, np.array([0.5]))
    # window (0,0): 1 2 4 5 all hole        -> 0 (NOT b = 0.5), new mask 0
    # window (0,1): 2(h) 3 5(h) 6           -> (3+6) * 4/2 + 0.5 = 18.5
    # window (1,0): 4(h) 5(h) 7 8           -> (7+8) * 4/2 + 0.5 = 30.5
    # window (1,1): 5(h) 6 8 9              -> (6+8+9) * 4/3 + 0.5 = 23*4/3 + 0.5
    expected = [[[[0.0, 18.5], [30.5, 23 * 4 / 3 + 0.5]]]]
    np.testing.assert_allclose(out, expected, rtol=1e-15)
    np.testing.assert_array_equal(new_mask, [[[[0.0, 1.0], [1.0, 1.0]]]])


@pytest.mark.parametrize("impl", IMPLS)
def test_hand_padding_counts_as_hole(impl):
    fwd, _ = IMPLS[impl]
    # all-valid mask, 3x3 ones kernel, padding 1: sum_1 = 9, and each window's sum_M is the
    # number of its pixels inside the image (4 at corners, 6 on edges, 9 in the centre), so
    # each output is (sum of the in-image pixels) * 9/sum_M:
    #   (0,0): (1+2+4+5) * 9/4 = 27       (0,1): (1+2+3+4+5+6) * 9/6 = 31.5   (0,2): 16 * 9/4 = 36
    #   (1,0): (1+2+4+5+7+8) * 9/6 = 40.5 (1,1): 45 * 9/9 = 45               (1,2): 33 * 9/6 = 49.5
    #   (2,0): (4+5+7+8) * 9/4 = 54       (2,1): 39 * 9/6 = 58.5              (2,2): 28 * 9/4 = 63
    # (a plain convolution would give 12, 21, 16, ... at the border instead).
    out, new_mask, _ = fwd(X33, np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)), None, padding=1)
    expected = [[[[27.0, 31.5, 36.0], [40.5, 45.0, 49.5], [54.0, 58.5, 63.0]]]]
    np.testing.assert_allclose(out, expected, rtol=1e-15)
    np.testing.assert_array_equal(new_mask, np.ones((1, 1, 3, 3)))


@pytest.mark.parametrize("impl", IMPLS)
def test_hand_mask_groups(impl):
    fwd, _ = IMPLS[impl]
    # 1x1 kernel of ones over C_in = 3 channels holding 1, 2, 3; groups (2, 1): mask channel 0
    # (valid) covers input channels 0-1, mask channel 1 (hole) covers channel 2.
    # sum_M = 2*1 + 1*0 = 2, sum_1 = 3  ->  out = (1 + 2) * 3/2 = 4.5
    x = np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1)
    mask = np.array([1.0, 0.0]).reshape(1, 2, 1, 1)
    out, new_mask, _ = fwd(x, mask, np.ones((1, 3, 1, 1)), None, mask_groups=(2, 1))
    np.testing.assert_allclose(out.ravel(), [4.5], rtol=1e-15)
    assert new_mask.ravel().tolist() == [1.0]
    # one-channel mask broadcast: ratio = kh*kw/boxsum(m), here 1/1, bias added
    out, _, _ = fwd(x, np.ones((1, 1, 1, 1)), np.ones((1, 3, 1, 1)), np.array([1.0]))
    assert out.ravel().tolist() == [7.0]


def test_hand_backward():
    # one hole at the top-left, 2x2 ones kernel; upstream gradient 1 on output (0,0) only:
    # out(0,0) = (x01 + x10 + x11) * 4/3 + b, so dx = 4/3 at those three pixels, 0 at the hole
    # and elsewhere; dw = 4/3 * masked window [[0, 2], [4, 5]]; db = 1.
    mask = np.ones((1, 1, 3, 3))
    mask[0, 0, 0, 0] = 0
    for fwd, bwd in IMPLS.values():
        out, _, cache = fwd(X33, mask, ONES22, np.zeros(1))
        dout = np.zeros_like(out)
        dout[0, 0, 0, 0] = 1.0
        dx, dw, db = bwd(dout, cache)
        np.testing.assert_allclose(dx[0, 0], [[0, 4 / 3, 0], [4 / 3, 4 / 3, 0], [0, 0, 0]])
        np.testing.assert_allclose(dw[0, 0], [[0, 2 * 4 / 3], [4 * 4 / 3, 5 * 4 / 3]])
        np.testing.assert_allclose(db, [1.0])
        # all-hole output windows pass no gradient to b either
        mask_h = mask.copy()
        mask_h[0, 0, :2, :2] = 0
        out, _, cache = fwd(X33, mask_h, ONES22, np.zeros(1))
        assert bwd(np.ones_like(out), cache)[2][0] == 3.0  # 4 windows, one all-hole


# ----------------------------------------------------------------- random problems
def _problem(rng, form, N=2, C=3, H=5, W=5, F=2, k=(3, 3), density=0.6):
    """Random x, mask in the given form, w, b, and the mask_groups argument."""
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((F, C) + tuple(k))
    b = rng.standard_normal(F)
    G, groups = mask_groups(form, C)
    return x, mask_contents(density, (N, G, H, W), rng), w, b, groups




@pytest.mark.parametrize("form", MASK_FORMS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_gradients_central_difference(form, stride, padding):
    rng = np.random.default_rng([MASK_FORMS.index(form), stride, padding])
    x, mask, w, b, groups = _problem(rng, form, H=5, W=7)
    kw = dict(stride=stride, padding=padding, mask_groups=groups)
    out, new_mask, cache = partial_conv2d_forward(x, mask, w, b, **kw)
    assert 0 < new_mask.sum()  # the check must see valid windows
    dout = rng.standard_normal(out.shape)
    dx, dw, db = partial_conv2d_backward(dout, cache)
    dx_num = numerical_gradient(lambda v: partial_conv2d_forward(v, mask, w, b, **kw)[0], x, dout)
    dw_num = numerical_gradient(lambda v: partial_conv2d_forward(x, mask, v, b, **kw)[0], w, dout)
    db_num = numerical_gradient(lambda v: partial_conv2d_forward(x, mask, w, v, **kw)[0], b, dout)
    assert relative_error(dx, dx_num) < 1e-7
    assert relative_error(dw, dw_num) < 1e-7
    assert relative_error(db, db_num) < 1e-7


def test_gradients_naive_backward():
    rng = np.random.default_rng(7)
    x, mask, w, b, groups = _problem(rng, "groups", N=1, H=4, W=5, k=(2, 3))
    kw = dict(stride=(1, 2), padding=(1, 0), mask_groups=groups)
    out, _, cache = partial_conv2d_forward_naive(x, mask, w, b, **kw)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = partial_conv2d_backward_naive(dout, cache)
    f = partial_conv2d_forward_naive
    num_dx = numerical_gradient(lambda v: f(v, mask, w, b, **kw)[0], x, dout)
    num_dw = numerical_gradient(lambda v: f(x, mask, v, b, **kw)[0], w, dout)
    num_db = numerical_gradient(lambda v: f(x, mask, w, v, **kw)[0], b, dout)
    assert relative_error(dx, num_dx) < 1e-7
    assert relative_error(dw, num_dw) < 1e-7
    assert relative_error(db, num_db) < 1e-7


@pytest.mark.parametrize(
    "form, kind, stride, padding, k",
    [
        (f, kind, s, p, k)
        for f, kind, (s, p, k) in itertools.product(
            MASK_FORMS,
            ["all-hole", "all-valid", "one-hole-pixel", 0.1, 0.5, 0.9],
            [(1, 1, (3, 3)), (2, 2, (5, 5)), (2, 0, (2, 3))],
        )
    ],
)
def test_naive_equals_vectorised(form, kind, stride, padding, k):
    rng = np.random.default_rng(11)
    x, mask, w, b, groups = _problem(rng, form, H=6, W=5, k=k)
    mask = mask_contents(kind, mask.shape, rng)
    kw = dict(stride=stride, padding=padding, mask_groups=groups)
    out_n, nm_n, cache_n = partial_conv2d_forward_naive(x, mask, w, b, **kw)
    out_v, nm_v, cache_v = partial_conv2d_forward(x, mask, w, b, **kw)
    np.testing.assert_allclose(out_v, out_n, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(nm_v, nm_n)
    if kind == "all-hole":
        assert not out_v.any() and not nm_v.any()
    if kind == "all-valid" and padding == 0:
        assert nm_v.all()
    dout = rng.standard_normal(out_n.shape)
    grads_n = partial_conv2d_backward_naive(dout, cache_n)
    grads_v = partial_conv2d_backward(dout, cache_v)
    for g_v, g_n in zip(grads_v, grads_n):
        np.testing.assert_allclose(g_v, g_n, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------- the mask forms agree
@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 2)])
def test_single_channel_mask_equals_its_expansion(stride, padding):
    rng = np.random.default_rng(5)
    x, mask, w, b, _ = _problem(rng, "one-channel", density=0.4)
    full = expand_mask(mask, x.shape[1])
    assert full.shape == x.shape
    o1, m1, c1 = partial_conv2d_forward(x, mask, w, b, stride, padding)
    o2, m2, c2 = partial_conv2d_forward(x, full, w, b, stride, padding)
    np.testing.assert_allclose(o1, o2, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(m1, m2)
    dout = rng.standard_normal(o1.shape)
    for g1, g2 in zip(partial_conv2d_backward(dout, c1), partial_conv2d_backward(dout, c2)):
        np.testing.assert_allclose(g1, g2, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("groups", [(1, 2, 1), (3, 1), (4,)])
def test_grouped_mask_equals_its_expansion(groups):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 4, 6, 6))
    w = rng.standard_normal((3, 4, 3, 3))
    b = rng.standard_normal(3)
    mask = (rng.random((2, len(groups), 6, 6)) < 0.5).astype(np.float64)
    mask[0, 0] = 0  # one group entirely hole in the first image
    full = expand_mask(mask, 4, groups)
    for start, (g, cg) in zip(np.cumsum((0,) + groups), enumerate(groups)):
        repeated = np.repeat(mask[:, g : g + 1], cg, axis=1)
        np.testing.assert_array_equal(full[:, start : start + cg], repeated)
    o1, m1, c1 = partial_conv2d_forward(x, mask, w, b, 2, 1, mask_groups=groups)
    o2, m2, c2 = partial_conv2d_forward(x, full, w, b, 2, 1)
    np.testing.assert_allclose(o1, o2, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(m1, m2)
    dout = rng.standard_normal(o1.shape)
    for g1, g2 in zip(partial_conv2d_backward(dout, c1), partial_conv2d_backward(dout, c2)):
        np.testing.assert_allclose(g1, g2, rtol=1e-13, atol=1e-13)


def test_matches_nvidia_formula_in_torch():
    """NVIDIA PartialConv2d(multi_channel=True), its formula written with torch ops."""
    pytest.importorskip("torch")
    import torch_oracle

    rng = np.random.default_rng(8)
    x, mask, w, b, _ = _problem(rng, "per-channel", H=7, W=6, density=0.3)
    out, new_mask, _ = partial_conv2d_forward(x, mask, w, b, 2, 1)
    ref_out, ref_mask = torch_oracle.nvidia_partial_conv_forward(x, mask, w, b, 2, 1)
    assert compare("partial_conv2d out", out, ref_out, rtol=1e-12, atol=1e-12)
    assert compare("new_mask", new_mask, ref_mask, rtol=0, atol=0)


# --------------------------------------------------------------------- properties
def test_values_under_holes_are_ignored():
    rng = np.random.default_rng(9)
    x, mask, w, b, groups = _problem(rng, "groups", density=0.5)
    full = expand_mask(mask, x.shape[1], groups)
    x2 = np.where(full == 1, x, 1e6 * rng.standard_normal(x.shape))
    o1, _, cache = partial_conv2d_forward(x, mask, w, b, 1, 1, mask_groups=groups)
    o2, _, _ = partial_conv2d_forward(x2, mask, w, b, 1, 1, mask_groups=groups)
    np.testing.assert_array_equal(o1, o2)
    dx = partial_conv2d_backward(rng.standard_normal(o1.shape), cache)[0]
    assert np.all(dx[full == 0] == 0)


@pytest.mark.parametrize("impl", IMPLS)
def test_float32_and_bool_mask(impl):
    fwd, bwd = IMPLS[impl]
    rng = np.random.default_rng(10)
    x, mask, w, b, _ = _problem(rng, "one-channel")
    o64, _, _ = fwd(x, mask, w, b, 2, 1)
    o32, m32, cache = fwd(x.astype(np.float32), mask.astype(bool), w.astype(np.float32),
                          b.astype(np.float32), 2, 1)
    assert o32.dtype == m32.dtype == np.float32 and m32.shape == (2, 1, 3, 3)
    np.testing.assert_allclose(o32, o64, rtol=1e-4, atol=1e-4)
    dx, dw, db = bwd(np.ones_like(o32), cache)
    assert dx.dtype == dw.dtype == db.dtype == np.float32


def test_no_bias():
    rng = np.random.default_rng(12)
    x, mask, w, _, _ = _problem(rng, "per-channel")
    for fwd, bwd in IMPLS.values():
        out, _, cache = fwd(x, mask, w, None, 1, 1)
        assert bwd(np.ones_like(out), cache)[2] is None


# --------------------------------------------------------------------- validation
X = np.zeros((2, 3, 5, 5))
W = np.zeros((4, 3, 3, 3))
M1 = np.ones((2, 1, 5, 5))


@pytest.mark.parametrize(
    "x, mask, w, groups, match",
    [
        (np.zeros((3, 5, 5)), M1, W, None, "x must be 4-D"),
        (X, np.ones((2, 5, 5)), W, None, "mask must be 4-D"),
        (X, np.ones((1, 1, 5, 5)), W, None, "incompatible with x shape"),
        (X, np.ones((2, 1, 5, 4)), W, None, "incompatible with x shape"),
        (X, np.ones((2, 2, 5, 5)), W, None, "1 or C_in=3 channels"),
        (X, np.ones((2, 2, 5, 5)), W, (2, 2), r"sum to 4, but x has C_in=3"),
        (X, np.ones((2, 3, 5, 5)), W, (2, 1), "incompatible with mask_groups"),
        (X, np.ones((2, 2, 5, 5)), W, (3, 0), "positive channel counts"),
        (X, np.full((2, 1, 5, 5), 0.5), W, None, "mask must be binary"),
        (X, np.full((2, 1, 5, 5), np.nan), W, None, "mask must be binary"),
        (np.full((2, 3, 5, 5), np.nan), M1, W, None, "NaN or inf"),
        (np.full((2, 3, 5, 5), np.inf), M1, W, None, "NaN or inf"),
        (X, M1, np.zeros((4, 2, 3, 3)), None, "C_in mismatch"),
    ],
)
def test_validation(x, mask, w, groups, match):
    for fwd, _ in IMPLS.values():
        with pytest.raises(ValueError, match=match):
            fwd(x, mask, w, None, mask_groups=groups)


def test_all_hole_mask_is_valid_input():
    for fwd, _ in IMPLS.values():
        out, new_mask, _ = fwd(X + 1, np.zeros((2, 1, 5, 5)), W + 1, np.ones(4), padding=1)
        assert out.shape == (2, 4, 5, 5) and not out.any() and not new_mask.any()


def test_expand_mask_validation():
    with pytest.raises(ValueError, match="neither 1 nor C_in=3"):
        expand_mask(np.ones((1, 2, 4, 4)), 3)
    with pytest.raises(ValueError, match="sum to 2"):
        expand_mask(np.ones((1, 2, 4, 4)), 3, (1, 1))


def test_precomputed_update_gives_the_same_result_and_is_checked():
    from pconv_ref.partial_conv import mask_update

    rng = np.random.default_rng(0)
    x, w, b = rng.random((2, 6, 7, 7)), rng.standard_normal((3, 6, 3, 3)), rng.random(3)
    mask = (rng.random((2, 2, 7, 7)) > 0.4).astype(float)
    update = mask_update(mask, 6, 3, 3, 2, 1, (4, 2))
    out, new_mask, _ = partial_conv2d_forward(x, mask, w, b, 2, 1, (4, 2))
    out_u, new_mask_u, _ = partial_conv2d_forward(x, mask, w, b, 2, 1, (4, 2), update=update)
    np.testing.assert_array_equal(out, out_u)
    np.testing.assert_array_equal(new_mask, new_mask_u)
    with pytest.raises(ValueError, match="update must be"):
        partial_conv2d_forward(x, mask, w, b, 1, 1, (4, 2), update=update)  # stride 1: 7x7
