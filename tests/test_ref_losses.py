"""Tests of pconv_ref.losses: hand-computed values, gradient checks, stability, torch."""

import numpy as np
import pytest

from pconv_ref import (
    discriminator_loss,
    generator_adversarial_loss,
    generator_loss,
    mse_hole,
    mse_valid,
    mse_weighted,
    numerical_gradient,
    relative_error,
)


def _images(rng, mask_channels, N=2, C=3, H=4, W=5):
    output = rng.standard_normal((N, C, H, W))
    target = rng.standard_normal((N, C, H, W))
    mask = (rng.random((N, mask_channels, H, W)) < 0.5).astype(np.float64)
    return output, target, mask


# --------------------------------------------------------------------- hand-computed
def test_hand_mse():
    # two pixels, one channel: output [1, 3], target [0, 0], mask [0 (hole), 1 (valid)];
    # n_I = C*H*W = 2, N = 1.
    o = np.array([[[[1.0, 3.0]]]])
    t = np.zeros_like(o)
    m = np.array([[[[0.0, 1.0]]]])
    # L+ = (1^2 + 0) / 2 = 0.5; dL+/do = 2 (o - t) (1 - M) / 2 = [1, 0]
    loss, d = mse_hole(o, t, m)
    assert loss == 0.5
    np.testing.assert_array_equal(d, [[[[1.0, 0.0]]]])
    # L- = (0 + 3^2) / 2 = 4.5; dL-/do = [0, 3]
    loss, d = mse_valid(o, t, m)
    assert loss == 4.5
    np.testing.assert_array_equal(d, [[[[0.0, 3.0]]]])
    # L_MSE = 0.5 + 4.5/6 = 1.25; gradient [1, 3/6]
    loss, d = mse_weighted(o, t, m)
    assert loss == pytest.approx(1.25, rel=1e-15)
    np.testing.assert_allclose(d, [[[[1.0, 0.5]]]], rtol=1e-15)


def test_hand_adversarial():
    # all logits 0: sigma = 1/2, so -log sigma = -log(1 - sigma) = log 2
    z = np.zeros(4)
    loss, d_real, d_fake = discriminator_loss(z, z)
    assert loss == pytest.approx(2 * np.log(2), rel=1e-15)
    np.testing.assert_allclose(d_real, -0.5 / 4)  # (sigma - 1)/N
    np.testing.assert_allclose(d_fake, 0.5 / 4)  # sigma/N
    loss, d = generator_adversarial_loss(z[:, None])
    assert loss == pytest.approx(np.log(2), rel=1e-15)
    assert d.shape == (4, 1)
    np.testing.assert_allclose(d, -0.5 / 4)


def test_generator_loss_is_the_weighted_sum():
    rng = np.random.default_rng(0)
    o, t, m = _images(rng, 1)
    z = rng.standard_normal(2)
    loss, d_o, d_z = generator_loss(o, t, m, z, adv_weight=0.1, valid_weight=0.25)
    l_h, d_h = mse_hole(o, t, m)
    l_v, d_v = mse_valid(o, t, m)
    l_a, d_a = generator_adversarial_loss(z)
    assert loss == pytest.approx(l_h + 0.25 * l_v + 0.1 * l_a, rel=1e-14)
    np.testing.assert_allclose(d_o, d_h + 0.25 * d_v, rtol=1e-14)
    np.testing.assert_allclose(d_z, 0.1 * d_a, rtol=1e-14)
    # the defaults are the poster's 1/6 and 1/2000
    loss, _, _ = generator_loss(o, t, m, z)
    assert loss == pytest.approx(l_h + l_v / 6 + l_a / 2000, rel=1e-14)


@pytest.mark.parametrize("mask_channels", [1, 3])
def test_hole_plus_valid_is_plain_mse(mask_channels):
    rng = np.random.default_rng(1)
    o, t, m = _images(rng, mask_channels)
    total = mse_hole(o, t, m)[0] + mse_valid(o, t, m)[0]
    assert total == pytest.approx(np.mean((o - t) ** 2), rel=1e-13)
    # a single-channel mask means the same as that mask repeated over C
    if mask_channels == 1:
        expanded = mse_hole(o, t, np.repeat(m, 3, 1))[0]
        assert mse_hole(o, t, m)[0] == pytest.approx(expanded, rel=1e-14)


def test_stable_for_large_logits():
    with np.errstate(over="raise", invalid="raise"):
        loss, d_r, d_f = discriminator_loss(np.array([1000.0, 50.0]), np.array([-1000.0, -50.0]))
        # each mean is (softplus(-1000) + softplus(-50)) / 2 = (0 + ~e^-50) / 2; their sum ~ e^-50
        assert loss == pytest.approx(np.exp(-50.0), rel=1e-12)
        assert np.all(np.isfinite(d_r)) and np.all(np.isfinite(d_f))
        loss, d = generator_adversarial_loss(np.array([-1000.0]))
        assert loss == 1000.0  # -log sigma(-1000) = 1000 + log(1 + e^-1000)
        np.testing.assert_array_equal(d, [-1.0])


# ------------------------------------------------------------------ gradient checks
@pytest.mark.parametrize("fn", [mse_hole, mse_valid, mse_weighted])
@pytest.mark.parametrize("mask_channels", [1, 3])
def test_mse_gradients(fn, mask_channels):
    rng = np.random.default_rng([mask_channels, len(fn.__name__)])
    o, t, m = _images(rng, mask_channels)
    _, d = fn(o, t, m)
    num = numerical_gradient(lambda v: fn(v, t, m)[0], o)
    assert relative_error(d, num) < 1e-7


@pytest.mark.parametrize("shape", [(5,), (5, 1)])
def test_adversarial_gradients(shape):
    rng = np.random.default_rng(2)
    zr, zf = 3 * rng.standard_normal(shape), 3 * rng.standard_normal(shape)
    _, d_r, d_f = discriminator_loss(zr, zf)
    assert d_r.shape == d_f.shape == shape
    num_r = numerical_gradient(lambda v: discriminator_loss(v, zf)[0], zr)
    num_f = numerical_gradient(lambda v: discriminator_loss(zr, v)[0], zf)
    assert relative_error(d_r, num_r) < 1e-7
    assert relative_error(d_f, num_f) < 1e-7
    _, d = generator_adversarial_loss(zf)
    num = numerical_gradient(lambda v: generator_adversarial_loss(v)[0], zf)
    assert relative_error(d, num) < 1e-7


def test_generator_loss_gradients():
    rng = np.random.default_rng(3)
    o, t, m = _images(rng, 1)
    z = rng.standard_normal((2, 1))
    _, d_o, d_z = generator_loss(o, t, m, z, adv_weight=0.3)
    f_o = lambda v: generator_loss(v, t, m, z, adv_weight=0.3)[0]  # noqa: E731
    f_z = lambda v: generator_loss(o, t, m, v, adv_weight=0.3)[0]  # noqa: E731
    assert relative_error(d_o, numerical_gradient(f_o, o)) < 1e-7
    assert relative_error(d_z, numerical_gradient(f_z, z)) < 1e-7


def test_matches_torch_bce_with_logits():
    pytest.importorskip("torch")
    from torch_oracle import bce_with_logits

    rng = np.random.default_rng(4)
    zr, zf = 4 * rng.standard_normal(6), 4 * rng.standard_normal(6)
    # d/dzr of the sum is d/dzr of its first term alone (and likewise for zf).
    ref_r, t_r = bce_with_logits(zr, np.ones(6))
    ref_f, t_f = bce_with_logits(zf, np.zeros(6))
    loss, d_r, d_f = discriminator_loss(zr, zf)
    assert loss == pytest.approx(ref_r + ref_f, rel=1e-13)
    np.testing.assert_allclose(d_r, t_r, rtol=1e-12)
    np.testing.assert_allclose(d_f, t_f, rtol=1e-12)
    assert generator_adversarial_loss(zf)[0] == pytest.approx(bce_with_logits(zf, np.ones(6))[0], rel=1e-13)


def test_float32_gradients_keep_dtype():
    rng = np.random.default_rng(5)
    o, t, m = (a.astype(np.float32) for a in _images(rng, 1))
    _, d_o, d_z = generator_loss(o, t, m, np.zeros(2, np.float32))
    assert d_o.dtype == d_z.dtype == np.float32


# --------------------------------------------------------------------- validation
def test_validation():
    o = np.zeros((2, 3, 4, 4))
    with pytest.raises(ValueError, match="target shape"):
        mse_hole(o, np.zeros((2, 3, 4, 5)), np.ones((2, 1, 4, 4)))
    with pytest.raises(ValueError, match="mask shape"):
        mse_valid(o, o, np.ones((2, 2, 4, 4)))
    with pytest.raises(ValueError, match="output must be 4-D"):
        mse_weighted(o[0], o[0], np.ones((1, 4, 4)))
    with pytest.raises(ValueError, match=r"real_logits must have shape \(N,\) or \(N, 1\)"):
        discriminator_loss(np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="fake_logits"):
        generator_adversarial_loss(np.zeros((2, 1, 1)))
