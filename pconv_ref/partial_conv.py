"""Partial convolution (Liu et al. 2018) in NumPy: forward, backward, mask update.

Mask convention: **1 = valid (known) pixel, 0 = hole**. (At the user's edge a mask *image*
marks the region to fill in white; it is converted before it reaches this module.)

For one output window with inputs ``X`` and mask ``M`` (per channel, per pixel; zero padding
counts as hole)::

    sum_M = number of valid (channel, pixel) entries in the window
    sum_1 = C_in * kh * kw
    out   = W^T (X * M) * (sum_1 / sum_M) + b      where sum_M > 0
    out   = 0                                      where sum_M = 0   (not b)
    m'    = 1 if sum_M > 0 else 0                  (one channel, shape (N, 1, H_out, W_out))

Three mask forms, all exactly the same arithmetic on the expanded per-channel mask:

* ``(N, 1, H, W)``: one mask broadcast over the C_in channels, so
  ``sum_M = C_in * boxsum(m)`` and ``sum_1/sum_M = kh*kw / boxsum(m)`` (NVIDIA's
  single-channel ``PartialConv2d``);
* ``(N, C_in, H, W)``: a mask per channel, ``sum_M = sum_c boxsum(m_c)``
  (NVIDIA's ``multi_channel=True``);
* ``(N, G, H, W)`` with ``mask_groups=(C_1, ..., C_G)``, ``sum C_g = C_in``: group ``g``'s
  single mask channel applies to its ``C_g`` consecutive input channels (a U-Net
  concatenation of feature maps, each with its own one-channel mask), and
  ``sum_M = sum_g C_g * boxsum(m_g)``: G box sums, never a C_in-channel mask convolution.

``boxsum(m)[n, i, j]`` is the sum of ``m`` over window (i, j), i.e. a convolution with a ones
kernel of the same size/stride/padding. The output size is that of the convolution:
``H_out = (H + 2p_h - kh)//s_h + 1``.

Gradients (the mask gets none), writing ``v = [sum_M > 0]`` and ``r = v * sum_1/sum_M``::

    db = sum_{n,i,j} dout * v
    dw, d(XM) = conv2d_backward(dout * r)        (the plain convolution of X*M)
    dx = d(XM) * M

Reference: G. Liu et al., "Image Inpainting for Irregular Holes Using Partial
Convolutions", ECCV 2018; NVIDIA/partialconv ``PartialConv2d``.
"""

from __future__ import annotations

import numpy as np

from .conv import _box_sum, _check_conv_args, _pad, _pair, conv2d_backward, conv2d_forward

__all__ = [
    "partial_conv2d_forward",
    "partial_conv2d_backward",
    "partial_conv2d_forward_naive",
    "partial_conv2d_backward_naive",
    "expand_mask",
    "mask_update",
]


# ----------------------------------------------------------------------------- checks
def _check_groups(mask_groups, c_in: int) -> tuple[int, ...] | None:
    if mask_groups is None:
        return None
    try:
        groups = tuple(int(g) for g in mask_groups)
    except TypeError:
        raise ValueError(f"mask_groups must be a sequence of ints, got {mask_groups!r}") from None
    if len(groups) == 0 or any(g < 1 for g in groups):
        raise ValueError(f"mask_groups must be positive channel counts, got {groups}")
    if sum(groups) != c_in:
        raise ValueError(
            f"mask_groups {groups} sum to {sum(groups)}, but x has C_in={c_in} channels"
        )
    return groups


def _check_mask(mask, x_shape, groups, dtype) -> np.ndarray:
    """Check shape and binariness of ``mask``; return it as an array of ``dtype``."""
    mask = np.asarray(mask)
    N, C, H, W = x_shape
    if mask.ndim != 4:
        raise ValueError(f"mask must be 4-D (N, 1|C_in|G, H, W), got shape {mask.shape}")
    if (mask.shape[0], mask.shape[2], mask.shape[3]) != (N, H, W):
        raise ValueError(
            f"mask shape {mask.shape} is incompatible with x shape {tuple(x_shape)}: "
            f"N, H, W must match"
        )
    if groups is None:
        if mask.shape[1] not in (1, C):
            raise ValueError(
                f"mask shape {mask.shape} is incompatible with x shape {tuple(x_shape)}: "
                f"mask must have 1 or C_in={C} channels (or pass mask_groups)"
            )
    elif mask.shape[1] != len(groups):
        raise ValueError(
            f"mask shape {mask.shape} is incompatible with mask_groups {groups}: "
            f"expected {len(groups)} mask channels, one per group"
        )
    if not np.all((mask == 0) | (mask == 1)):
        bad = mask[~((mask == 0) | (mask == 1))].ravel()[:3]
        raise ValueError(f"mask must be binary (0 = hole, 1 = valid); found values such as {bad}")
    return mask.astype(dtype, copy=False)


def _validate(x, mask, w, b, stride, padding, mask_groups):
    x, w, b, stride, padding, out_hw = _check_conv_args(x, w, b, stride, padding)
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or inf; fill holes with finite values before masking")
    groups = _check_groups(mask_groups, x.shape[1])
    mask = _check_mask(mask, x.shape, groups, x.dtype)
    return x, mask, w, b, stride, padding, out_hw, groups


def _apply_mask(a: np.ndarray, mask: np.ndarray, groups) -> np.ndarray:
    """``a * M`` with M the per-channel mask, without materialising M when it is grouped.

    a: (N, C_in, H, W); mask: (N, 1 | C_in | G, H, W). Returns (N, C_in, H, W), a new array.
    """
    if groups is None:
        return a * mask
    out = np.empty(a.shape, dtype=np.result_type(a.dtype, mask.dtype))
    start = 0
    for g, cg in enumerate(groups):
        out[:, start : start + cg] = a[:, start : start + cg] * mask[:, g : g + 1]
        start += cg
    return out


def _channel_weights(mask_channels: int, c_in: int, groups) -> np.ndarray:
    """How many input channels each mask channel stands for: (1|C_in|G,) -> counts."""
    if groups is not None:
        return np.asarray(groups, dtype=np.float64)
    if mask_channels == 1:
        return np.asarray([c_in], dtype=np.float64)
    return np.ones(c_in, dtype=np.float64)


# ----------------------------------------------------------------------------- public
def expand_mask(mask, c_in: int, mask_groups=None) -> np.ndarray:
    """Expand any of the three mask forms to the per-channel form (N, C_in, H, W).

    (N, 1, H, W) is repeated over the C_in channels; (N, C_in, H, W) is copied; with
    ``mask_groups=(C_1..C_G)`` the (N, G, H, W) mask's channel g is repeated C_g times.
    Used for teaching and tests; the fast path never builds this array for counting.
    """
    mask = np.asarray(mask)
    if mask.ndim != 4:
        raise ValueError(f"mask must be 4-D (N, 1|C_in|G, H, W), got shape {mask.shape}")
    groups = _check_groups(mask_groups, int(c_in))
    if groups is not None:
        if mask.shape[1] != len(groups):
            raise ValueError(
                f"mask shape {mask.shape} is incompatible with mask_groups {groups}: "
                f"expected {len(groups)} mask channels, one per group"
            )
        return np.repeat(mask, groups, axis=1)
    if mask.shape[1] == 1:
        return np.repeat(mask, c_in, axis=1)
    if mask.shape[1] == c_in:
        return mask.copy()
    raise ValueError(f"mask shape {mask.shape} has neither 1 nor C_in={c_in} channels")


def mask_update(mask, c_in, kh, kw, stride=1, padding=0, mask_groups=None, dtype=np.float64):
    """The rescaling ratio and the new mask of a partial convolution: they depend on the
    mask alone (never on x or the weights), so a network can compute them for all its
    layers before it runs (:func:`pconv_ref.networks.generator_mask_pyramid`).

    Args:
        mask: (N, 1 | C_in | G, H, W) binary, 1 = valid; c_in: C_in; kh, kw: kernel size;
        stride, padding: int or (h, w); mask_groups: None or (C_1, ..., C_G).
    Returns:
        ratio: (N, 1, H_out, W_out), ``sum_1 / sum_M`` where ``sum_M > 0``, else 0.
        new_mask: (N, 1, H_out, W_out), ``[sum_M > 0]``; both in ``dtype``.
    """
    mask = np.asarray(mask)
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    groups = _check_groups(mask_groups, int(c_in))
    out_hw = tuple((size + 2 * p - k) // s + 1
                   for size, p, k, s in zip(mask.shape[2:], padding, (kh, kw), stride))
    # sum_M[n, i, j] = sum_g C_g * boxsum(m_g)[n, i, j]   (G = 1, C_in or len(groups))
    counts = _channel_weights(mask.shape[1], c_in, groups)
    box = _box_sum(mask, kh, kw, stride, padding, out_hw)  # (N, G, Ho, Wo)
    sum_M = np.tensordot(counts, box.astype(np.float64), axes=([0], [1]))  # (N, Ho, Wo)
    valid = sum_M > 0
    ratio = np.zeros(sum_M.shape, dtype=np.float64)
    np.divide(c_in * kh * kw, sum_M, out=ratio, where=valid)
    return ratio.astype(dtype)[:, None], valid[:, None].astype(dtype)


def partial_conv2d_forward(x, mask, w, b, stride=1, padding=0, mask_groups=None, update=None):
    """Partial convolution forward, vectorised.

    Args:
        x: (N, C_in, H, W), finite. Values under holes are ignored (multiplied by 0).
        mask: (N, 1, H, W), (N, C_in, H, W), or (N, G, H, W) with ``mask_groups``;
            binary, 1 = valid, 0 = hole. All-hole is allowed.
        w: (C_out, C_in, kh, kw). b: (C_out,) or None.
        stride, padding: int or (h, w), torch's meaning; padding counts as hole.
        mask_groups: None or (C_1, ..., C_G) with sum C_in (see module docstring).
        update: ``(ratio, new_mask)`` from :func:`mask_update` for this mask, computed
            beforehand; None computes them here.

    Returns:
        out: (N, C_out, H_out, W_out), ``H_out = (H + 2p_h - kh)//s_h + 1``;
            ``out = conv(x*M, w) * sum_1/sum_M + b`` where ``sum_M > 0``, else 0.
        new_mask: (N, 1, H_out, W_out), ``[sum_M > 0]``, dtype of x.
        cache: for ``partial_conv2d_backward``.
    """
    x, mask, w, b, stride, padding, out_hw, groups = _validate(
        x, mask, w, b, stride, padding, mask_groups
    )
    kh, kw = w.shape[2:]
    if update is None:
        update = mask_update(mask, x.shape[1], kh, kw, stride, padding, groups, x.dtype)
    ratio, new_mask = (np.asarray(a, dtype=x.dtype) for a in update)
    if ratio.shape != new_mask.shape or ratio.shape != (x.shape[0], 1, *out_hw):
        raise ValueError(f"update must be (ratio, new_mask) of shape "
                         f"{(x.shape[0], 1, *out_hw)}, got {ratio.shape} and {new_mask.shape}")

    xm = _apply_mask(x, mask, groups)
    raw, conv_cache = conv2d_forward(xm, w, None, stride, padding)
    out = raw * ratio
    if b is not None:
        out = out + b.astype(x.dtype)[None, :, None, None] * new_mask
    out = out.astype(x.dtype, copy=False)
    cache = (conv_cache, mask, groups, ratio, new_mask, b)
    return out, new_mask, cache


def partial_conv2d_backward(dout, cache):
    """Partial convolution backward, vectorised.

    Args:
        dout: (N, C_out, H_out, W_out), dL/dout. cache: from ``partial_conv2d_forward``.

    Returns:
        dx: (N, C_in, H, W) ``= conv2d_backward(dout * r)_x * M`` with
            ``r = [sum_M > 0] * sum_1/sum_M``; zero under holes.
        dw: (C_out, C_in, kh, kw) ``= conv2d_backward(dout * r)_w`` (input X*M).
        db: (C_out,) ``= sum_{n,i,j} dout * [sum_M > 0]``, or None when b was None.
    """
    conv_cache, mask, groups, ratio, new_mask, b = cache
    dout = np.asarray(dout)
    db = None
    if b is not None:
        db = (dout * new_mask).sum(axis=(0, 2, 3)).astype(b.dtype, copy=False)
    dxm, dw, _ = conv2d_backward(dout * ratio, conv_cache)
    dx = _apply_mask(dxm, mask, groups).astype(dxm.dtype, copy=False)
    return dx, dw, db


# ------------------------------------------------------------------------- naive loops
def partial_conv2d_forward_naive(x, mask, w, b, stride=1, padding=0, mask_groups=None):
    """Partial convolution forward as explicit loops over (n, f, i, j) (teaching; slow).

    Same signature, shapes and results as ``partial_conv2d_forward``. The mask is first
    expanded to (N, C_in, H, W) (``expand_mask``) and zero-padded; then for each window::

        sum_M = M_win.sum();  out = sum(W[f] * X_win * M_win) * sum_1/sum_M + b[f]  if sum_M > 0
    """
    x, mask, w, b, (sh, sw), (ph, pw), (H_out, W_out), groups = _validate(
        x, mask, w, b, stride, padding, mask_groups
    )
    N, C_in = x.shape[:2]
    F, _, kh, kw = w.shape
    M = expand_mask(mask, C_in, groups)
    xp, Mp = _pad(x, ph, pw), _pad(M, ph, pw)
    sum_1 = C_in * kh * kw
    out = np.zeros((N, F, H_out, W_out), dtype=x.dtype)
    new_mask = np.zeros((N, 1, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for i in range(H_out):
            for j in range(W_out):
                rows = slice(i * sh, i * sh + kh)
                cols = slice(j * sw, j * sw + kw)
                x_win, m_win = xp[n, :, rows, cols], Mp[n, :, rows, cols]
                sum_M = m_win.sum()
                if sum_M == 0:
                    continue  # all-hole window: output 0 (not b), new mask 0
                new_mask[n, 0, i, j] = 1
                for f in range(F):
                    val = np.sum(w[f] * x_win * m_win) * (sum_1 / sum_M)
                    out[n, f, i, j] = val + (0 if b is None else b[f])
    cache = (x, M, w, b, (sh, sw), (ph, pw))
    return out, new_mask, cache


def partial_conv2d_backward_naive(dout, cache):
    """Partial convolution backward as explicit loops (teaching; slow).

    For each valid window (sum_M > 0) with ``r = sum_1/sum_M``::

        dxp[n, :, win] += dout[n,f,i,j] * r * W[f] * M_win
        dw[f]          += dout[n,f,i,j] * r * X_win * M_win
        db[f]          += dout[n,f,i,j]

    Returns dx (N, C_in, H, W), dw (C_out, C_in, kh, kw), db (C_out,) or None.
    """
    x, M, w, b, (sh, sw), (ph, pw) = cache
    dout = np.asarray(dout)
    N, C_in, H, W = x.shape
    F, _, kh, kw = w.shape
    H_out, W_out = dout.shape[2:]
    xp, Mp = _pad(x, ph, pw), _pad(M, ph, pw)
    sum_1 = C_in * kh * kw
    dxp = np.zeros(xp.shape, dtype=x.dtype)
    dw = np.zeros(w.shape, dtype=w.dtype)
    db = None if b is None else np.zeros(b.shape, dtype=b.dtype)
    for n in range(N):
        for i in range(H_out):
            for j in range(W_out):
                rows = slice(i * sh, i * sh + kh)
                cols = slice(j * sw, j * sw + kw)
                x_win, m_win = xp[n, :, rows, cols], Mp[n, :, rows, cols]
                sum_M = m_win.sum()
                if sum_M == 0:
                    continue
                r = sum_1 / sum_M
                for f in range(F):
                    g = dout[n, f, i, j]
                    dxp[n, :, rows, cols] += g * r * w[f] * m_win
                    dw[f] += g * r * x_win * m_win
                    if db is not None:
                        db[f] += g
    dx = dxp[:, :, ph : ph + H, pw : pw + W]
    return dx, dw, db
