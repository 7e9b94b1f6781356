"""Tests of pconv_torch.losses (mask: 1 = valid, 0 = hole)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pconv_torch.losses import (
    ERROR_FLOOR,
    discriminator_loss,
    generator_adversarial_loss,
    generator_loss,
    image_weights,
    mse_hole,
    mse_valid,
    mse_weighted,
)


def hand_case():
    # One 1-channel 2x2 image: output - target = [[1, 2], [3, 4]], top row valid, bottom hole.
    # n_I = 4. L+ = (3^2 + 4^2) / 4 = 25/4; L- = (1^2 + 2^2) / 4 = 5/4.
    target = torch.zeros(1, 1, 2, 2)
    output = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    mask = torch.tensor([[1.0, 1.0], [0.0, 0.0]]).view(1, 1, 2, 2)
    return output, target, mask


def test_mse_hand_values():
    o, t, m = hand_case()
    assert mse_hole(o, t, m).item() == pytest.approx(25 / 4)
    assert mse_valid(o, t, m).item() == pytest.approx(5 / 4)
    # L_MSE = 25/4 + (1/6) * 5/4 = 6.25 + 0.208333...
    assert mse_weighted(o, t, m).item() == pytest.approx(25 / 4 + 5 / 24)
    assert mse_weighted(o, t, m, valid_weight=1.0).item() == pytest.approx(30 / 4)


def test_mse_batch_mean_and_channel_broadcast():
    # Two images, 3 channels: per image sum / n_I (n_I = 3*2*2 = 12), then the batch mean.
    # Image 0 is the hand case in every channel: L+ = 3*25/12; image 1 is all zero error.
    o, t, m = hand_case()
    o2 = torch.cat([o.expand(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)])
    t2, m2 = torch.zeros(2, 3, 2, 2), torch.cat([m, m])
    assert mse_hole(o2, t2, m2).item() == pytest.approx((3 * 25 / 12 + 0) / 2)
    # (N, 1) mask equals the expanded (N, C) mask
    torch.testing.assert_close(mse_weighted(o2, t2, m2), mse_weighted(o2, t2, m2.expand(2, 3, 2, 2)))


def test_mse_match_direct_formulas():
    gen = torch.Generator().manual_seed(0)
    o, t = torch.rand(4, 3, 5, 6, generator=gen), torch.rand(4, 3, 5, 6, generator=gen)
    m = (torch.rand(4, 1, 5, 6, generator=gen) > 0.4).float()
    n_i = 3 * 5 * 6
    plus = torch.stack([(((o - t) * (1 - m))[i] ** 2).sum() / n_i for i in range(4)]).mean()
    minus = torch.stack([(((o - t) * m)[i] ** 2).sum() / n_i for i in range(4)]).mean()
    torch.testing.assert_close(mse_hole(o, t, m), plus)
    torch.testing.assert_close(mse_valid(o, t, m), minus)
    torch.testing.assert_close(mse_weighted(o, t, m), plus + minus / 6)
    logits = torch.randn(4, 1, generator=gen)
    torch.testing.assert_close(
        generator_loss(o, t, m, logits),
        plus + minus / 6 - torch.log(torch.sigmoid(logits)).mean() / 2000,
    )
    # soft masks: weighted form is still exactly L+ + w L-
    ms = torch.rand(4, 1, 5, 6, generator=gen)
    torch.testing.assert_close(
        mse_weighted(o, t, ms, 0.3), mse_hole(o, t, ms) + 0.3 * mse_valid(o, t, ms)
    )


def test_adversarial_hand_values():
    # logit 0 -> D = 1/2: -log(1/2) - log(1 - 1/2) = 2 log 2; G term: log 2.
    z = torch.zeros(3)
    assert discriminator_loss(z, z).item() == pytest.approx(2 * math.log(2))
    assert generator_adversarial_loss(z).item() == pytest.approx(math.log(2))
    # real logit log(3) -> D = 3/4; fake logit -log(3) -> D = 1/4, 1 - D = 3/4:
    # L_D = 2 * -log(3/4);  G term on fake: -log(1/4) = log 4.
    r, f = torch.tensor([math.log(3.0)]), torch.tensor([-math.log(3.0)])
    assert discriminator_loss(r, f).item() == pytest.approx(-2 * math.log(0.75))
    assert generator_adversarial_loss(f).item() == pytest.approx(math.log(4))


def test_adversarial_match_direct_formulas():
    gen = torch.Generator().manual_seed(1)
    r, f = torch.randn(8, 1, generator=gen), torch.randn(8, 1, generator=gen)
    ref_d = (-torch.log(torch.sigmoid(r)) - torch.log(1 - torch.sigmoid(f))).mean()
    torch.testing.assert_close(discriminator_loss(r, f), ref_d)
    torch.testing.assert_close(
        generator_adversarial_loss(f), -torch.log(torch.sigmoid(f)).mean()
    )
    torch.testing.assert_close(
        discriminator_loss(r, f), F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
        + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
    )


def test_extreme_logits_finite_values_and_grads():
    r = torch.tensor([-100.0, 100.0, 0.0], requires_grad=True)
    f = torch.tensor([100.0, -100.0, 0.0], requires_grad=True)
    d = discriminator_loss(r, f)
    g = generator_adversarial_loss(f)
    assert torch.isfinite(d) and torch.isfinite(g)
    # -log sigmoid(-100) = 100 (+ log1p(e^-100)): worst real gives 100, worst fake gives 100.
    assert d.item() == pytest.approx((100 + 0 + math.log(2)) / 3 + (100 + 0 + math.log(2)) / 3)
    (d + g).backward()
    assert bool(torch.isfinite(r.grad).all()) and bool(torch.isfinite(f.grad).all())
    # d/dr softplus(-r) = -sigmoid(-r): -1 at r = -100 (saturating, not vanishing), /3 for mean
    assert r.grad[0].item() == pytest.approx(-1 / 3)


def test_scalar_outputs_and_grads():
    gen = torch.Generator().manual_seed(2)
    o = torch.rand(2, 3, 4, 4, generator=gen, requires_grad=True)
    t = torch.rand(2, 3, 4, 4, generator=gen)
    m = (torch.rand(2, 1, 4, 4, generator=gen) > 0.5).float()
    z = torch.randn(2, generator=gen, requires_grad=True)
    loss = generator_loss(o, t, m, z)
    assert loss.ndim == 0
    loss.backward()
    assert o.grad is not None and z.grad is not None
    for fn in (mse_hole, mse_valid, mse_weighted):
        assert fn(o, t, m).ndim == 0


def test_mask_shape_errors():
    o = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match="mask"):
        mse_hole(o, o, torch.ones(2, 2, 4, 4))
    with pytest.raises(ValueError, match="mask"):
        mse_valid(o, o, torch.ones(2, 1, 4, 5))
    with pytest.raises(ValueError, match="output and target"):
        mse_weighted(o, torch.zeros(2, 3, 4, 5), torch.ones(2, 1, 4, 4))


def test_balance_zero_is_the_posters_loss_and_one_follows_the_mean_log_error():
    """balance=0 gives the poster's L_MSE bit for bit; balance=1 has the gradient of
    mean_n log(L_MSE,n + floor), scaled by 1 / mean_n 1/(L_MSE,n + floor)."""
    gen = torch.Generator().manual_seed(3)
    t = torch.rand(4, 3, 6, 6, generator=gen)
    o0 = t + torch.randn(4, 3, 6, 6, generator=gen) * torch.tensor([0.3, 0.1, 0.01, 0.001]).view(4, 1, 1, 1)
    m = (torch.rand(4, 1, 6, 6, generator=gen) > 0.5).float()
    assert torch.equal(mse_weighted(o0, t, m, balance=0.0), mse_weighted(o0, t, m))

    o = o0.clone().requires_grad_(True)
    mse_weighted(o, t, m, balance=1.0).backward()
    o_log = o0.clone().requires_grad_(True)
    per = ((o_log - t).square() * ((1 - m) + m / 6)).mean((1, 2, 3))
    torch.log(per + ERROR_FLOOR).mean().backward()
    scale = (1 / (per.detach() + ERROR_FLOOR)).mean()
    torch.testing.assert_close(o.grad, o_log.grad / scale)


def test_image_weights_favour_small_errors_and_have_mean_one():
    errors = torch.tensor([1e-1, 1e-2, 1e-3, 1e-4])
    for balance in (0.0, 0.5, 1.0):
        w = image_weights(errors, balance)
        torch.testing.assert_close(w.mean(), torch.tensor(1.0))
        assert torch.all(w[1:] >= w[:-1]) and (balance == 0) == bool(torch.all(w == 1))
    with pytest.raises(ValueError, match="balance must be in"):
        image_weights(errors, 1.5)
