"""Losses of the poster, with their gradients, in NumPy.

Mask convention: 1 = valid (known) pixel, 0 = hole. ``output`` is the raw generator output
G(I) (not the composite), ``target`` the ground-truth image, both (N, C, H, W); ``mask`` is
(N, 1, H, W) (broadcast over C) or (N, C, H, W).

Reconstruction, with n_I = C*H*W and averaging over the batch (so: a mean over all
N*C*H*W elements)::

    L+    = 1/N sum_n 1/n_I || (G(I_n) - I_n) * (1 - M_n) ||^2     (hole)
    L-    = 1/N sum_n 1/n_I || (G(I_n) - I_n) * M_n ||^2           (valid region)
    L_MSE = L+ + valid_weight * L-                                 (valid_weight = 1/6)

With ``balance`` b > 0 (0 = the poster's mean), image n's term L_MSE,n is weighted by
``w_n = (L_MSE,n + floor)^-b / mean_k (L_MSE,k + floor)^-b``, a constant for the gradient;
b = 1 gives the gradient of ``mean_n log(L_MSE,n + floor)`` up to a positive factor, so every
image's PSNR counts the same::

    L_MSE = 1/N sum_n w_n L_MSE,n                                  (floor = 1e-5)

Adversarial, from logits ``z`` with ``D = sigma(z)`` and the stable
``-log sigma(z) = softplus(-z) = logaddexp(0, -z)``, ``-log(1 - sigma(z)) = logaddexp(0, z)``::

    L_D = mean_n [ -log sigma(z_real) - log(1 - sigma(z_fake)) ]
    L_adv = mean_n [ -log sigma(z_fake) ]                          (non-saturating)
    L_G = L_MSE + adv_weight * L_adv                               (adv_weight = 1/2000)

Every function returns the loss as a Python float and the gradients w.r.t. its array inputs
(same shapes and dtypes as those inputs).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "mse_hole",
    "mse_valid",
    "mse_weighted",
    "discriminator_loss",
    "generator_adversarial_loss",
    "generator_loss",
]


def _check_images(output, target, mask):
    output, target, mask = np.asarray(output), np.asarray(target), np.asarray(mask)
    if output.ndim != 4:
        raise ValueError(f"output must be 4-D (N, C, H, W), got shape {output.shape}")
    if target.shape != output.shape:
        raise ValueError(f"target shape {target.shape} != output shape {output.shape}")
    N, C, H, W = output.shape
    if mask.shape not in ((N, 1, H, W), (N, C, H, W)):
        raise ValueError(
            f"mask shape {mask.shape} must be (N, 1, H, W) = {(N, 1, H, W)} "
            f"or (N, C, H, W) = {output.shape}"
        )
    return output, target, mask.astype(output.dtype, copy=False)


def _masked_mse(output, target, weight):
    """``mean((o - t)^2 * weight^2)`` over all N*C*H*W elements, and its gradient
    ``2 (o - t) weight^2 / (N*C*H*W)``; weight (N, 1|C, H, W) broadcasts over C."""
    diff = (output - target) * weight
    loss = float(np.sum(diff * diff) / output.size)
    d_output = (2.0 / output.size) * diff * weight
    return loss, d_output.astype(output.dtype, copy=False)


def mse_hole(output, target, mask):
    """L+ = mean(((output - target) * (1 - M))^2); returns (loss, d_output (N, C, H, W))."""
    output, target, mask = _check_images(output, target, mask)
    return _masked_mse(output, target, 1 - mask)


def mse_valid(output, target, mask):
    """L- = mean(((output - target) * M)^2); returns (loss, d_output (N, C, H, W))."""
    output, target, mask = _check_images(output, target, mask)
    return _masked_mse(output, target, mask)


ERROR_FLOOR = 1e-5


def mse_weighted(output, target, mask, valid_weight=1 / 6, balance=0.0):
    """L_MSE = L+ + valid_weight * L-, with the images reweighted by ``balance`` (see the
    module docstring); returns (loss, d_output (N, C, H, W))."""
    output, target, mask = _check_images(output, target, mask)
    if not 0.0 <= balance <= 1.0:
        raise ValueError(f"balance must be in [0, 1], got {balance!r}")
    weight = (1 - mask) ** 2 + valid_weight * mask ** 2  # (N, 1|C, H, W)
    sq = (output - target) ** 2 * weight
    per_image = sq.reshape(len(sq), -1).sum(1) / output[0].size  # L_MSE,n  (N,)
    w = (per_image + ERROR_FLOOR) ** -balance
    w = (w / w.mean()).reshape(-1, 1, 1, 1)
    loss = float(np.sum(w * sq) / output.size)
    d_output = (2.0 / output.size) * w * (output - target) * weight
    return loss, d_output.astype(output.dtype, copy=False)


def _check_logits(z, name):
    z = np.asarray(z)
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float64)
    if not (z.ndim == 1 or (z.ndim == 2 and z.shape[1] == 1)) or z.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N,) or (N, 1) with N > 0, got {z.shape}")
    return z


def _sigmoid(x):
    """Numerically stable ``1 / (1 + exp(-x))``: with ``e = exp(-|x|)`` (never overflows),
    ``1/(1 + e)`` for x >= 0 and ``e/(1 + e)`` for x < 0."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def discriminator_loss(real_logits, fake_logits):
    """L_D = mean(softplus(-z_real)) + mean(softplus(z_fake)).

    Args: real_logits, fake_logits: (N,) or (N, 1) (the batch sizes may differ).
    Returns: (loss, d_real = (sigma(z_real) - 1)/N_real, d_fake = sigma(z_fake)/N_fake),
    gradients shaped like the logits.
    """
    zr = _check_logits(real_logits, "real_logits")
    zf = _check_logits(fake_logits, "fake_logits")
    loss = float(np.mean(np.logaddexp(0, -zr)) + np.mean(np.logaddexp(0, zf)))
    d_real = ((_sigmoid(zr) - 1) / zr.size).astype(zr.dtype, copy=False)
    d_fake = (_sigmoid(zf) / zf.size).astype(zf.dtype, copy=False)
    return loss, d_real, d_fake


def generator_adversarial_loss(fake_logits):
    """L_adv = mean(-log sigma(z_fake)) = mean(softplus(-z_fake)) (non-saturating).

    Returns (loss, d_fake = (sigma(z_fake) - 1)/N), d_fake shaped like fake_logits.
    """
    zf = _check_logits(fake_logits, "fake_logits")
    loss = float(np.mean(np.logaddexp(0, -zf)))
    return loss, ((_sigmoid(zf) - 1) / zf.size).astype(zf.dtype, copy=False)


def generator_loss(output, target, mask, fake_logits, adv_weight=1 / 2000, valid_weight=1 / 6,
                   balance=0.0):
    """L_G = L_MSE + adv_weight * L_adv (``balance``: see :func:`mse_weighted`).

    Args: output, target (N, C, H, W); mask (N, 1|C, H, W), 1 = valid; fake_logits (N,) or
    (N, 1) = D(output) as logits. Returns (loss, d_output (N, C, H, W), d_fake_logits).
    (d_fake_logits is what to backpropagate through D to add D's share to d_output.)
    """
    l_mse, d_output = mse_weighted(output, target, mask, valid_weight, balance)
    l_adv, d_fake = generator_adversarial_loss(fake_logits)
    d_fake = (adv_weight * d_fake).astype(d_fake.dtype, copy=False)
    return l_mse + adv_weight * l_adv, d_output, d_fake
