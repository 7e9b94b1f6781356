"""Tests of pconv_ref.conv: hand-computed cases, gradient checks, naive == vectorised,
torch as the oracle, argument validation."""

import numpy as np
import pytest
from cases import X33

from pconv_ref import (
    compare,
    conv2d_backward,
    conv2d_backward_naive,
    conv2d_forward,
    conv2d_forward_naive,
    numerical_gradient,
    relative_error,
)

IMPLS = {
    "naive": (conv2d_forward_naive, conv2d_backward_naive),
    "vectorised": (conv2d_forward, conv2d_backward),
}



@pytest.mark.parametrize("impl", IMPLS)
def test_hand_computed_ones_kernel(impl):
    fwd, _ = IMPLS[impl]
    w = np.ones((1, 1, 2, 2))
    # stride 1, no padding: each output is the sum of a 2x2 block of X33, plus b = 0.5:
    #   1+2+4+5 = 12, 2+3+5+6 = 16, 4+5+7+8 = 24, 5+6+8+9 = 28.
    out, _ = fwd(X33, w, np.array([0.5]))
    np.testing.assert_array_equal(out, [[[[12.5, 16.5], [24.5, 28.5]]]])
    # stride 2, padding 1: padded input is 5x5, H_out = (3 + 2 - 2)//2 + 1 = 2; the windows
    # start at padded rows/cols 0 and 2, i.e. original rows/cols -1..0 and 1..2:
    #   (-1..0, -1..0) -> only x[0,0] = 1;  (-1..0, 1..2) -> 2+3 = 5;
    #   (1..2, -1..0)  -> 4+7 = 11;         (1..2, 1..2)  -> 5+6+8+9 = 28.
    out, _ = fwd(X33, w, None, stride=2, padding=1)
    np.testing.assert_array_equal(out, [[[[1.0, 5.0], [11.0, 28.0]]]])


@pytest.mark.parametrize("impl", IMPLS)
def test_hand_computed_backward(impl):
    fwd, bwd = IMPLS[impl]
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    out, cache = fwd(X33, w, np.zeros(1))
    # out[0,0] = 1*1 + 2*2 + 3*4 + 4*5 = 37 (cross-correlation, no kernel flip as in torch)
    assert out[0, 0, 0, 0] == 37.0
    dout = np.zeros_like(out)
    dout[0, 0, 0, 0] = 1.0  # only the top-left output matters
    dx, dw, db = bwd(dout, cache)
    # dL/dx = w placed on the top-left window; dL/dw = that window of x; dL/db = 1
    np.testing.assert_array_equal(dx[0, 0], [[1, 2, 0], [3, 4, 0], [0, 0, 0]])
    np.testing.assert_array_equal(dw[0, 0], [[1, 2], [4, 5]])
    np.testing.assert_array_equal(db, [1.0])


CASES = [
    # (N, C_in, H, W, C_out, kh, kw, stride, padding)
    (1, 1, 3, 3, 1, 2, 2, 1, 0),
    (2, 3, 5, 5, 2, 3, 3, 1, 1),
    (2, 2, 7, 6, 3, 3, 3, 2, 1),
    (1, 2, 7, 7, 2, 5, 5, 2, 2),
    (2, 3, 5, 6, 2, 1, 1, 1, 0),
    (1, 2, 6, 7, 2, 3, 2, (2, 1), (0, 1)),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES)
def test_gradients_central_difference(impl, case):
    fwd, bwd = IMPLS[impl]
    N, C, H, W, F, kh, kw, s, p = case
    rng = np.random.default_rng(CASES.index(case))
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((F, C, kh, kw))
    b = rng.standard_normal(F)
    out, cache = fwd(x, w, b, s, p)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = bwd(dout, cache)
    dx_num = numerical_gradient(lambda v: fwd(v, w, b, s, p)[0], x, dout)
    dw_num = numerical_gradient(lambda v: fwd(x, v, b, s, p)[0], w, dout)
    db_num = numerical_gradient(lambda v: fwd(x, w, v, s, p)[0], b, dout)
    assert relative_error(dx, dx_num) < 1e-7
    assert relative_error(dw, dw_num) < 1e-7
    assert relative_error(db, db_num) < 1e-7


def test_no_bias_gives_db_none():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((3, 2, 3, 3))
    for fwd, bwd in IMPLS.values():
        out, cache = fwd(x, w, None, 1, 1)
        assert bwd(np.ones_like(out), cache)[2] is None


@pytest.mark.parametrize("case", CASES)
def test_naive_equals_vectorised(case):
    N, C, H, W, F, kh, kw, s, p = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((F, C, kh, kw))
    b = rng.standard_normal(F)
    out_n, cache_n = conv2d_forward_naive(x, w, b, s, p)
    out_v, cache_v = conv2d_forward(x, w, b, s, p)
    np.testing.assert_allclose(out_v, out_n, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out_n.shape)
    for g_v, g_n in zip(conv2d_backward(dout, cache_v), conv2d_backward_naive(dout, cache_n)):
        np.testing.assert_allclose(g_v, g_n, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES[1:4])
def test_matches_torch(case):
    pytest.importorskip("torch")
    import torch_oracle

    N, C, H, W, F, kh, kw, s, p = case
    rng = np.random.default_rng(2)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((F, C, kh, kw))
    b = rng.standard_normal(F)
    out, cache = conv2d_forward(x, w, b, s, p)
    dout = rng.standard_normal(out.shape)
    ot, *t_grads = torch_oracle.conv2d(x, w, b, s, p, dout)
    assert compare("conv2d out", out, ot, rtol=1e-10)
    for name, mine, t in zip(("dx", "dw", "db"), conv2d_backward(dout, cache), t_grads):
        assert compare(name, mine, t, rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 5, 5)).astype(dtype)
    w = rng.standard_normal((2, 2, 3, 3)).astype(dtype)
    b = rng.standard_normal(2).astype(dtype)
    for fwd, bwd in IMPLS.values():
        out, cache = fwd(x, w, b, 2, 1)
        assert out.dtype == dtype and out.shape == (1, 2, 3, 3)  # (5 + 2 - 3)//2 + 1 = 3
        dx, dw, db = bwd(np.ones_like(out), cache)
        assert dx.dtype == dw.dtype == db.dtype == dtype


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x=np.zeros((2, 3, 4))), "x must be 4-D"),
        (dict(w=np.zeros((2, 3, 3))), "w must be 4-D"),
        (dict(w=np.zeros((2, 4, 3, 3))), "C_in mismatch"),
        (dict(b=np.zeros(3)), "b must have shape"),
        (dict(stride=0), "stride must be >= 1"),
        (dict(padding=-1), "padding must be >= 0"),
        (dict(stride=(1, 2, 3)), "stride must be an int or a pair"),
        (dict(w=np.zeros((2, 3, 7, 7))), "does not fit"),
    ],
)
def test_validation(kwargs, match):
    args = dict(x=np.zeros((1, 3, 4, 4)), w=np.zeros((2, 3, 3, 3)), b=np.zeros(2))
    args.update({k: v for k, v in kwargs.items() if k in args})
    extra = {k: v for k, v in kwargs.items() if k not in args}
    for fwd, _ in IMPLS.values():
        with pytest.raises(ValueError, match=match):
            fwd(args["x"], args["w"], args["b"], **extra)


# ------------------------------------------------------------- the gradcheck helpers
def test_numerical_gradient_and_relative_error():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4))
    x0 = x.copy()
    dout = rng.standard_normal((3, 4))
    g = numerical_gradient(lambda v: v**3, x, dout)  # d/dx sum(x^3 * dout) = 3 x^2 dout
    np.testing.assert_array_equal(x, x0)  # x restored after the in-place perturbations
    assert relative_error(g, 3 * x0**2 * dout) < 1e-8
    # scalar-valued f and dout=None: the gradient of sum(x^2) is 2x
    assert relative_error(numerical_gradient(lambda v: float(np.sum(v**2)), x), 2 * x0) < 1e-8
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.ones(3), -np.ones(3)) == 1.0
    with pytest.raises(ValueError, match="floating NumPy array"):
        numerical_gradient(lambda v: v, np.arange(3))


def test_compare_prints_one_line(capsys):
    assert compare("partial_conv2d out", np.ones(3), np.ones(3) + 1e-12) is True
    assert compare("dx", np.ones(3), np.ones(3) + 1e-3) is False
    assert compare("db", None, None) is True
    assert compare("dw", np.ones(3), np.ones(4)) is False
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "partial_conv2d out: max abs err 1.0e-12, allclose True"
    assert lines[1] == "dx: max abs err 1.0e-03, allclose False"
    assert len(lines) == 4
