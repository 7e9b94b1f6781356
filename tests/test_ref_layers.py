"""Tests of pconv_ref.layers: hand-computed values, gradient checks, torch agreement."""

import numpy as np
import pytest

from pconv_ref import (
    concat_backward,
    concat_forward,
    flatten_backward,
    flatten_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    linear_backward,
    linear_forward,
    numerical_gradient,
    relative_error,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    upsample_nearest2x_backward,
    upsample_nearest2x_forward,
)


def _away_from_zero(rng, shape):
    """Random values with |v| >= 0.1, so kinks at 0 are not straddled by h = 1e-6."""
    v = rng.standard_normal(shape)
    return v + 0.1 * np.sign(v)


def _check_unary(fwd, bwd, x, rng, **kw):
    out, cache = fwd(x, **kw)
    dout = rng.standard_normal(out.shape)
    dx = bwd(dout, cache)
    dx_num = numerical_gradient(lambda v: fwd(v, **kw)[0], x, dout)
    assert dx.shape == x.shape
    assert relative_error(dx, dx_num) < 1e-7


# --------------------------------------------------------------------- hand-computed
def test_hand_values():
    x = np.array([[[[-2.0, 0.0], [0.5, 3.0]]]])
    np.testing.assert_array_equal(relu_forward(x)[0], [[[[0, 0], [0.5, 3]]]])
    np.testing.assert_allclose(leaky_relu_forward(x)[0], [[[[-0.4, 0], [0.5, 3]]]])
    np.testing.assert_allclose(leaky_relu_forward(x, 0.1)[0], [[[[-0.2, 0], [0.5, 3]]]])
    # sigma(0) = 1/2; sigma(-2) = 1/(1+e^2)
    s = sigmoid_forward(x)[0]
    np.testing.assert_allclose(s[0, 0, 0], [1 / (1 + np.e**2), 0.5])
    # relu's gradient at exactly 0 is 0 (as torch)
    dx = relu_backward(np.ones_like(x), relu_forward(x)[1])
    np.testing.assert_array_equal(dx, [[[[0, 0], [1, 1]]]])
    up, cache = upsample_nearest2x_forward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    np.testing.assert_array_equal(
        up[0, 0], [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    )
    # each input pixel receives the sum of its 2x2 block of the upstream gradient
    dx = upsample_nearest2x_backward(np.arange(16.0).reshape(1, 1, 4, 4), cache)
    expected = [[0 + 1 + 4 + 5, 2 + 3 + 6 + 7], [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]]
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_sigmoid_is_stable_for_large_logits():
    with np.errstate(over="raise", invalid="raise"):  # no overflow, no inf/inf
        s, _ = sigmoid_forward(np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0]))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5
    assert np.all(np.isfinite(s))


# ------------------------------------------------------------------ gradient checks
@pytest.mark.parametrize(
    "fwd, bwd, kw",
    [
        (relu_forward, relu_backward, {}),
        (leaky_relu_forward, leaky_relu_backward, {}),
        (leaky_relu_forward, leaky_relu_backward, {"negative_slope": 0.01}),
        (sigmoid_forward, sigmoid_backward, {}),
        (upsample_nearest2x_forward, upsample_nearest2x_backward, {}),
        (flatten_forward, flatten_backward, {}),
    ],
)
def test_unary_gradients(fwd, bwd, kw):
    rng = np.random.default_rng(0)
    _check_unary(fwd, bwd, _away_from_zero(rng, (2, 3, 3, 5)), rng, **kw)


def test_concat_gradients():
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((2, c, 3, 4)) for c in (1, 3, 2)]
    out, cache = concat_forward(xs)
    assert out.shape == (2, 6, 3, 4)
    np.testing.assert_array_equal(out[:, 1:4], xs[1])
    dout = rng.standard_normal(out.shape)
    dxs = concat_backward(dout, cache)
    assert len(dxs) == 3
    for k, x in enumerate(xs):
        num = numerical_gradient(lambda v: concat_forward(xs[:k] + [v] + xs[k + 1 :])[0], x, dout)
        assert relative_error(dxs[k], num) < 1e-7


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradients(bias):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 7))
    w = rng.standard_normal((3, 7))
    b = rng.standard_normal(3) if bias else None
    out, cache = linear_forward(x, w, b)
    assert out.shape == (4, 3)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = linear_backward(dout, cache)
    num_dx = numerical_gradient(lambda v: linear_forward(v, w, b)[0], x, dout)
    num_dw = numerical_gradient(lambda v: linear_forward(x, v, b)[0], w, dout)
    assert relative_error(dx, num_dx) < 1e-7
    assert relative_error(dw, num_dw) < 1e-7
    if bias:
        num_db = numerical_gradient(lambda v: linear_forward(x, w, v)[0], b, dout)
        assert relative_error(db, num_db) < 1e-7
    else:
        assert db is None


# --------------------------------------------------------------------- torch agreement
def test_matches_torch():
    pytest.importorskip("torch")
    import torch_oracle

    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4, 4))
    np.testing.assert_array_equal(upsample_nearest2x_forward(x)[0], torch_oracle.upsample_nearest2x(x))
    np.testing.assert_array_equal(flatten_forward(x)[0], torch_oracle.flatten(x))
    np.testing.assert_allclose(sigmoid_forward(x)[0], torch_oracle.sigmoid(x), rtol=1e-14)
    np.testing.assert_allclose(leaky_relu_forward(x)[0], torch_oracle.leaky_relu(x, 0.2), rtol=1e-15)
    w, b = rng.standard_normal((5, 48)), rng.standard_normal(5)
    ref = torch_oracle.linear(torch_oracle.flatten(x), w, b)
    np.testing.assert_allclose(linear_forward(flatten_forward(x)[0], w, b)[0], ref, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(dtype):
    x = np.linspace(-2, 2, 16, dtype=dtype).reshape(1, 1, 4, 4)
    for fwd in (relu_forward, leaky_relu_forward, sigmoid_forward, upsample_nearest2x_forward):
        out, cache = fwd(x)
        assert out.dtype == dtype
    out, _ = linear_forward(x.reshape(1, 16), np.ones((2, 16), dtype), np.zeros(2, dtype))
    assert out.dtype == dtype


# --------------------------------------------------------------------- validation
def test_validation():
    with pytest.raises(ValueError, match="must be 4-D"):
        upsample_nearest2x_forward(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="N, H, W must match"):
        concat_forward([np.zeros((1, 2, 4, 4)), np.zeros((1, 2, 4, 5))])
    with pytest.raises(ValueError, match="flatten first"):
        linear_forward(np.zeros((2, 3, 4, 4)), np.zeros((5, 48)), None)
    with pytest.raises(ValueError, match="in_features=48"):
        linear_forward(np.zeros((2, 48)), np.zeros((5, 47)), None)
    with pytest.raises(ValueError, match=r"b must have shape \(5,\)"):
        linear_forward(np.zeros((2, 48)), np.zeros((5, 48)), np.zeros(4))
