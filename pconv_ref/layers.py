"""The other layers of the generator and discriminators, forward and backward, in NumPy.

cs231n style: ``out, cache = *_forward(...)``; ``dx = *_backward(dout, cache)`` for layers
without parameters, ``dx, dw, db = linear_backward(dout, cache)``. Arrays are channels-first
(N, C, H, W) like torch; the output dtype is the input's.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "upsample_nearest2x_forward",
    "upsample_nearest2x_backward",
    "concat_forward",
    "concat_backward",
    "relu_forward",
    "relu_backward",
    "leaky_relu_forward",
    "leaky_relu_backward",
    "sigmoid_forward",
    "sigmoid_backward",
    "flatten_forward",
    "flatten_backward",
    "linear_forward",
    "linear_backward",
]


def _check_4d(x, name="x"):
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {x.shape}")
    return x


# ------------------------------------------------------------------- upsample, concat
def upsample_nearest2x_forward(x):
    """Nearest-neighbour upsampling by 2 (torch ``Upsample(scale_factor=2, mode='nearest')``).

    x: (N, C, H, W) -> out: (N, C, 2H, 2W), ``out[n, c, i, j] = x[n, c, i//2, j//2]``.
    Used on feature maps and on masks alike (a binary mask stays binary).
    """
    x = _check_4d(x)
    out = x.repeat(2, axis=2).repeat(2, axis=3)
    return out, x.shape


def upsample_nearest2x_backward(dout, cache):
    """dout: (N, C, 2H, 2W) -> dx: (N, C, H, W), ``dx[n,c,i,j] = sum of the 2x2 block``."""
    N, C, H, W = cache
    return np.asarray(dout).reshape(N, C, H, 2, W, 2).sum(axis=(3, 5))


def concat_forward(xs):
    """Concatenate along the channel axis (U-Net skip connection).

    xs: list of (N, C_k, H, W) -> out: (N, sum_k C_k, H, W); cache = [C_1, ..., C_K].
    """
    xs = [_check_4d(x, f"xs[{k}]") for k, x in enumerate(xs)]
    if not xs:
        raise ValueError("concat_forward needs at least one array")
    ref = xs[0].shape
    for k, x in enumerate(xs):
        if (x.shape[0],) + x.shape[2:] != (ref[0],) + ref[2:]:
            raise ValueError(
                f"concat_forward: xs[{k}] has shape {x.shape}, incompatible with xs[0] {ref} "
                f"(N, H, W must match)"
            )
    return np.concatenate(xs, axis=1), [x.shape[1] for x in xs]


def concat_backward(dout, cache):
    """dout: (N, sum_k C_k, H, W) -> list of dx_k (N, C_k, H, W), the channel slices."""
    splits = np.cumsum(cache)[:-1]
    return list(np.split(np.asarray(dout), splits, axis=1))


# ------------------------------------------------------------------------ activations
def relu_forward(x):
    """``out = max(x, 0)``, any shape. cache = x."""
    x = np.asarray(x)
    return np.maximum(x, 0).astype(x.dtype, copy=False), x


def relu_backward(dout, cache):
    """``dx = dout * [x > 0]`` (the subgradient at 0 is taken as 0, as torch)."""
    x = cache
    return np.where(x > 0, dout, 0).astype(np.result_type(dout, x), copy=False)


def leaky_relu_forward(x, negative_slope=0.2):
    """``out = x if x > 0 else negative_slope * x``, any shape. cache = (x, slope)."""
    x = np.asarray(x)
    out = np.where(x > 0, x, negative_slope * x).astype(x.dtype, copy=False)
    return out, (x, negative_slope)


def leaky_relu_backward(dout, cache):
    """``dx = dout * (1 if x > 0 else negative_slope)``."""
    x, slope = cache
    dout = np.asarray(dout)
    return np.where(x > 0, dout, slope * dout).astype(np.result_type(dout, x), copy=False)


def _sigmoid(x):
    """Numerically stable ``1 / (1 + exp(-x))``: with ``e = exp(-|x|)`` (never overflows),
    ``1/(1 + e)`` for x >= 0 and ``e/(1 + e)`` for x < 0."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_forward(x):
    """``out = sigma(x) = 1 / (1 + exp(-x))``, computed stably; cache = out."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    out = _sigmoid(x).astype(x.dtype, copy=False)
    return out, out


def sigmoid_backward(dout, cache):
    """``dx = dout * sigma(x) * (1 - sigma(x))``."""
    s = cache
    return np.asarray(dout) * s * (1 - s)


# ------------------------------------------------------------------------ flatten, fc
def flatten_forward(x):
    """(N, C, H, W) -> (N, C*H*W), row-major: the same order as torch ``x.flatten(1)``."""
    x = np.asarray(x)
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(dout, cache):
    """(N, C*H*W) -> (N, C, H, W)."""
    return np.asarray(dout).reshape(cache)


def linear_forward(x, w, b):
    """Fully connected layer, as torch ``nn.Linear``.

    x: (N, in_features) (flatten a (N, C, H, W) map first: ``flatten_forward``, same order
    as torch ``.flatten(1)``); w: (out_features, in_features); b: (out_features,) or None.
    out: (N, out_features) ``= x @ w.T + b``.
    """
    x, w = np.asarray(x), np.asarray(w)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (N, in_features), got shape {x.shape}; flatten first")
    if w.ndim != 2 or w.shape[1] != x.shape[1]:
        raise ValueError(
            f"w must have shape (out_features, in_features={x.shape[1]}), got {w.shape}"
        )
    if b is not None:
        b = np.asarray(b)
        if b.shape != (w.shape[0],):
            raise ValueError(f"b must have shape ({w.shape[0]},), got {b.shape}")
    out = x @ w.T
    if b is not None:
        out = out + b
    return out.astype(x.dtype, copy=False), (x, w, b)


def linear_backward(dout, cache):
    """dout: (N, out_features) -> dx = dout @ w (N, in), dw = dout.T @ x (out, in),
    db = dout.sum(0) (out,) or None."""
    x, w, b = cache
    dout = np.asarray(dout)
    dx = (dout @ w).astype(x.dtype, copy=False)
    dw = (dout.T @ x).astype(w.dtype, copy=False)
    db = None if b is None else dout.sum(axis=0).astype(b.dtype, copy=False)
    return dx, dw, db
