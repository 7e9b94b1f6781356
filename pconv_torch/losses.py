"""Losses of the poster, in PyTorch (names match the NumPy reference ``pconv_ref``).

Mask convention: 1 = valid (known) pixel, 0 = hole. ``output`` is the raw generator output
G(I) and ``target`` the ground truth, both (N, C, H, W); ``mask`` is (N, 1, H, W) (broadcast
over channels) or (N, C, H, W). With ``n_I = C*H*W``::

    L+    = mean_n  ||(G(I) - I_gt) * (1 - M)||^2 / n_I        mse_hole
    L-    = mean_n  ||(G(I) - I_gt) * M||^2 / n_I              mse_valid
    L_MSE = L+ + valid_weight * L-     (valid_weight = 1/6)    mse_weighted
    L_MSE balanced: sum_n w_n L_MSE,n / N, w_n ∝ (L_MSE,n + floor)^-balance, mean 1   balance
    L_D   = mean_n [-log D(real) - log(1 - D(G(I)))]           discriminator_loss
    L_G   = L_MSE - adv_weight * mean_n log D(G(I))            generator_loss (adv_weight 1/2000)

The discriminator terms take logits ``z`` (D = sigmoid(z)) and use
``-log sigmoid(z) = softplus(-z)``, ``-log(1 - sigmoid(z)) = softplus(z)``: finite values and
gradients for any logit. Every function returns a 0-d tensor.

``balance`` (0 = the poster's loss) reweights the images of a batch. In the poster's mean
every pixel counts the same, so a crop with a large error (texture, edges) outweighs a smooth
crop whose error is small but plainly visible: a fill that adds faint structure to a sky costs
almost nothing. With ``balance = 1`` each image ``n`` is weighted by ``1 / (L_MSE,n + floor)``
(held constant, no gradient through it), which is the gradient of ``mean_n log(L_MSE,n +
floor)``: every image's PSNR counts the same, as in the evaluation's mean hole PSNR. Values
between interpolate. The weights are scaled to mean 1 over the batch, so the loss keeps the
poster's scale beside the adversarial term. ``ERROR_FLOOR`` (1e-5, the squared error of
50 dB, where the evaluation caps PSNR) keeps a perfectly filled image from taking every weight.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "mse_hole",
    "mse_valid",
    "mse_weighted",
    "image_weights",
    "ERROR_FLOOR",
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


ERROR_FLOOR = 1e-5  # squared error of a 50 dB fill: the evaluation's PSNR cap


def mse_weighted(
    output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, valid_weight: float = 1 / 6,
    balance: float = 0.0,
) -> torch.Tensor:
    """L_MSE = L+ + valid_weight * L-, in one pass over the image; with ``balance`` > 0 the
    images are reweighted by :func:`image_weights` (see the module docstring).

    ``(d(1-M))^2 + w (dM)^2 = d^2 ((1-M)^2 + w M^2)``: the weight map has the mask's (small)
    shape. Shapes as :func:`mse_hole`.
    """
    _check(output, target, mask)
    weight = (1 - mask).square() + valid_weight * mask.square()
    if balance == 0:
        return ((output - target).square() * weight).mean()
    per_image = ((output - target).square() * weight).mean((1, 2, 3))  # (N,)
    return (image_weights(per_image, balance) * per_image).mean()


def image_weights(per_image: torch.Tensor, balance: float, floor: float = ERROR_FLOOR) -> torch.Tensor:
    """Weights (N,) of mean 1, proportional to ``(per_image + floor) ** -balance``, without
    gradient. ``per_image``: (N,) each image's loss; ``balance`` in [0, 1]."""
    if not 0.0 <= balance <= 1.0:
        raise ValueError(f"balance must be in [0, 1], got {balance!r}")
    with torch.no_grad():
        w = (per_image.detach() + floor).pow(-balance)
        return w / w.mean()


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
    balance: float = 0.0,
) -> torch.Tensor:
    """L_G = L_MSE + adv_weight * mean[-log sigmoid(D logits of G(I))] (``balance``: see
    :func:`mse_weighted`)."""
    return mse_weighted(output, target, mask, valid_weight, balance) + adv_weight * \
        generator_adversarial_loss(fake_logits)
