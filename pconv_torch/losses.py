"""Losses of the poster, in PyTorch (names match the NumPy reference ``pconv_ref``).

Mask convention: 1 = valid (known) pixel, 0 = hole. ``output`` is the raw generator output
G(I) and ``target`` the ground truth, both (N, C, H, W); ``mask`` is (N, 1, H, W) (broadcast
over channels) or (N, C, H, W). With ``n_I = C*H*W``::

    L+    = mean_n  ||(G(I) - I_gt) * (1 - M)||^2 / n_I        mse_hole
    L-    = mean_n  ||(G(I) - I_gt) * M||^2 / n_I              mse_valid
    L_MSE = L+ + valid_weight * L-     (valid_weight = 1/6)    mse_weighted
    L_D   = mean_n [-log D(real) - log(1 - D(G(I)))]           discriminator_loss
    L_G   = L_MSE - adv_weight * mean_n log D(G(I))            generator_loss (adv_weight 1/2000)

The discriminator terms take logits ``z`` (D = sigmoid(z)) and use
``-log sigmoid(z) = softplus(-z)``, ``-log(1 - sigmoid(z)) = softplus(z)``: finite values and
gradients for any logit. Every function returns a 0-d tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "mse_hole",
    "mse_valid",
    "mse_weighted",
    "discriminator_loss",
    "generator_adversarial_loss",
    "generator_loss",
]


def _check(output, target, mask):
    if output.shape != target.shape or output.ndim != 4:
        raise ValueError(
            f"output and target must be equal (N, C, H, W) shapes, got "
            f"{tuple(output.shape)} and {tuple(target.shape)}"
        )
    n, c, h, w = output.shape
    if mask.ndim != 4 or mask.shape[0] != n or mask.shape[1] not in (1, c) \
            or tuple(mask.shape[2:]) != (h, w):
        raise ValueError(
            f"mask must be (N, 1, H, W) or (N, C, H, W) = ({n}, 1|{c}, {h}, {w}), "
            f"got {tuple(mask.shape)}"
        )


def mse_hole(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L+ : squared error over the hole, / n_I, batch mean. Shapes (N,C,H,W), mask (N,1|C,H,W)."""
    _check(output, target, mask)
    return ((output - target) * (1 - mask)).square().mean()


def mse_valid(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L- : squared error over the valid region, / n_I, batch mean. Shapes as :func:`mse_hole`."""
    _check(output, target, mask)
    return ((output - target) * mask).square().mean()


def mse_weighted(
    output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, valid_weight: float = 1 / 6
) -> torch.Tensor:
    """L_MSE = L+ + valid_weight * L-, in one pass over the image.

    ``(d(1-M))^2 + w (dM)^2 = d^2 ((1-M)^2 + w M^2)``: the weight map has the mask's (small)
    shape. Shapes as :func:`mse_hole`.
    """
    _check(output, target, mask)
    weight = (1 - mask).square() + valid_weight * mask.square()
    return ((output - target).square() * weight).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """L_D = mean[-log sigmoid(real) - log(1 - sigmoid(fake))]; logits of any shape, e.g. (N,)
    or (N, 1); each term is averaged over its own elements."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator term mean[-log sigmoid(fake)]; logits (N,) or (N, 1)."""
    return F.softplus(-fake_logits).mean()


def generator_loss(
    output: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    fake_logits: torch.Tensor,
    adv_weight: float = 1 / 2000,
    valid_weight: float = 1 / 6,
) -> torch.Tensor:
    """L_G = L_MSE + adv_weight * mean[-log sigmoid(D logits of G(I))]."""
    return mse_weighted(output, target, mask, valid_weight) + adv_weight * \
        generator_adversarial_loss(fake_logits)
