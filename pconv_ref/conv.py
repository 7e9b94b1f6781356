"""Plain 2-D convolution (cross-correlation, as in torch) in NumPy: forward and backward.

Conventions (the same as ``torch.nn.functional.conv2d``):

* ``x``: input, shape ``(N, C_in, H, W)``;
* ``w``: weights, shape ``(C_out, C_in, kh, kw)``;
* ``b``: bias, shape ``(C_out,)`` or ``None``;
* ``stride`` and ``padding``: an int or an ``(h, w)`` pair; padding adds zeros;
* output, shape ``(N, C_out, H_out, W_out)`` with::

      H_out = (H + 2*p_h - kh) // s_h + 1,    W_out = (W + 2*p_w - kw) // s_w + 1

  and, writing ``xp`` for the zero-padded input,::

      out[n, f, i, j] = sum_{c, a, d} w[f, c, a, d] * xp[n, c, i*s_h + a, j*s_w + d] + b[f]

Two versions with the same signatures (cs231n style, ``out, cache = forward(...)``,
``dx, dw, db = backward(dout, cache)``): ``*_naive`` spells the sums out as Python loops
(for reading, slow); ``conv2d_forward``/``conv2d_backward`` are vectorised (im2col through
``sliding_window_view`` and one ``tensordot``; col2im as a loop over the ``kh*kw`` kernel
offsets adding strided slices). Output dtype = dtype of ``x``; ``dw``/``db`` take the dtypes
of ``w``/``b``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "conv2d_forward_naive",
    "conv2d_backward_naive",
    "conv2d_forward",
    "conv2d_backward",
    "conv_output_size",
]


# ----------------------------------------------------------------------------- helpers
def _pair(v, name: str) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(2, 1) -> (2, 1)``; rejects anything else."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v), int(v)
    if (
        isinstance(v, (tuple, list))
        and len(v) == 2
        and all(isinstance(e, (int, np.integer)) and not isinstance(e, bool) for e in v)
    ):
        return int(v[0]), int(v[1])
    raise ValueError(f"{name} must be an int or a pair of ints (h, w), got {v!r}")


def _float_dtype(a: np.ndarray) -> np.dtype:
    """Floating arrays keep their dtype; anything else is computed in float64."""
    return a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float64)


def conv_output_size(size: int, k: int, stride: int, padding: int) -> int:
    """``(size + 2*padding - k) // stride + 1`` (torch's formula, dilation 1)."""
    return (size + 2 * padding - k) // stride + 1


def _check_conv_args(x, w, b, stride, padding):
    """Validate and normalise the arguments shared by every convolution here.

    Returns ``x, w, b, (sh, sw), (ph, pw), (H_out, W_out)`` with ``x`` and ``w`` as float
    arrays. Raises ``ValueError`` naming the problem.
    """
    x = np.asarray(x)
    w = np.asarray(w)
    x = x.astype(_float_dtype(x), copy=False)
    w = w.astype(_float_dtype(w), copy=False)
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, C_in, H, W), got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"w must be 4-D (C_out, C_in, kh, kw), got shape {w.shape}")
    if w.shape[1] != x.shape[1]:
        raise ValueError(
            f"weight C_in mismatch: w has C_in={w.shape[1]} (shape {w.shape}) "
            f"but x has C_in={x.shape[1]} (shape {x.shape})"
        )
    if b is not None:
        b = np.asarray(b)
        b = b.astype(_float_dtype(b), copy=False)
        if b.shape != (w.shape[0],):
            raise ValueError(f"b must have shape (C_out,) = ({w.shape[0]},), got {b.shape}")
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    if sh < 1 or sw < 1:
        raise ValueError(f"stride must be >= 1, got {(sh, sw)}")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be >= 0, got {(ph, pw)}")
    kh, kw = w.shape[2:]
    H, W = x.shape[2:]
    H_out = conv_output_size(H, kh, sh, ph)
    W_out = conv_output_size(W, kw, sw, pw)
    if H_out < 1 or W_out < 1:
        raise ValueError(
            f"kernel {kh}x{kw} does not fit the padded input {H + 2 * ph}x{W + 2 * pw} "
            f"(output would be {H_out}x{W_out})"
        )
    return x, w, b, (sh, sw), (ph, pw), (H_out, W_out)


def _pad(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """Zero-pad the last two axes: ``(..., H, W) -> (..., H + 2ph, W + 2pw)``."""
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)])


def _windows(xp: np.ndarray, kh: int, kw: int, stride, out_hw) -> np.ndarray:
    """im2col as a view: ``(N, C, Hp, Wp) -> (N, C, H_out, W_out, kh, kw)``.

    ``windows[n, c, i, j, a, d] = xp[n, c, i*s_h + a, j*s_w + d]``; no data is copied.
    """
    sh, sw = stride
    H_out, W_out = out_hw
    v = sliding_window_view(xp, (kh, kw), axis=(2, 3))
    return v[:, :, : (H_out - 1) * sh + 1 : sh, : (W_out - 1) * sw + 1 : sw]


def _box_sum(m: np.ndarray, kh: int, kw: int, stride, padding, out_hw) -> np.ndarray:
    """Window sums of every channel (a convolution with a ones kernel, per channel).

    ``m`` (N, G, H, W) -> (N, G, H_out, W_out); padding counts as zeros.
    """
    mp = _pad(m, *padding)
    return _windows(mp, kh, kw, stride, out_hw).sum(axis=(4, 5))


# ------------------------------------------------------------------------- naive loops
def conv2d_forward_naive(x, w, b, stride=1, padding=0):
    """Convolution forward written as explicit loops (for teaching; slow).

    Args:
        x: (N, C_in, H, W). w: (C_out, C_in, kh, kw). b: (C_out,) or None.
        stride, padding: int or (h, w); zero padding.

    Returns:
        out: (N, C_out, H_out, W_out), ``H_out = (H + 2p_h - kh)//s_h + 1``, with
        ``out[n,f,i,j] = sum(xp[n, :, i*s_h : i*s_h+kh, j*s_w : j*s_w+kw] * w[f]) + b[f]``.
        cache: what ``conv2d_backward_naive`` needs.
    """
    x, w, b, (sh, sw), (ph, pw), (H_out, W_out) = _check_conv_args(x, w, b, stride, padding)
    N = x.shape[0]
    F, _, kh, kw = w.shape
    xp = _pad(x, ph, pw)
    out = np.zeros((N, F, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    window = xp[n, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    out[n, f, i, j] = np.sum(window * w[f]) + (0 if b is None else b[f])
    cache = (x, w, b, (sh, sw), (ph, pw))
    return out, cache


def conv2d_backward_naive(dout, cache):
    """Convolution backward written as explicit loops (for teaching; slow).

    Args:
        dout: (N, C_out, H_out, W_out), upstream gradient dL/dout.
        cache: from ``conv2d_forward_naive``.

    Returns:
        dx: (N, C_in, H, W); ``dxp[n, :, window(i,j)] += dout[n,f,i,j] * w[f]``, then cropped.
        dw: (C_out, C_in, kh, kw); ``dw[f] += dout[n,f,i,j] * xp[n, :, window(i,j)]``.
        db: (C_out,) ``= sum_{n,i,j} dout[n,f,i,j]``, or None when b was None.
    """
    x, w, b, (sh, sw), (ph, pw) = cache
    N, C, H, W = x.shape
    F, _, kh, kw = w.shape
    dout = np.asarray(dout)
    _, _, H_out, W_out = dout.shape
    xp = _pad(x, ph, pw)
    dxp = np.zeros(xp.shape, dtype=x.dtype)
    dw = np.zeros(w.shape, dtype=w.dtype)
    db = None if b is None else np.zeros(b.shape, dtype=b.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    g = dout[n, f, i, j]
                    rows = slice(i * sh, i * sh + kh)
                    cols = slice(j * sw, j * sw + kw)
                    dxp[n, :, rows, cols] += g * w[f]
                    dw[f] += g * xp[n, :, rows, cols]
                    if db is not None:
                        db[f] += g
    dx = dxp[:, :, ph : ph + H, pw : pw + W]
    return dx, dw, db


# ------------------------------------------------------------------------- vectorised
def conv2d_forward(x, w, b, stride=1, padding=0):
    """Vectorised convolution forward (im2col view + ``tensordot``).

    Args:
        x: (N, C_in, H, W). w: (C_out, C_in, kh, kw). b: (C_out,) or None.
        stride, padding: int or (h, w); zero padding, as torch.

    Returns:
        out: (N, C_out, H_out, W_out), ``H_out = (H + 2p_h - kh)//s_h + 1`` (same for W),
        ``out[n,f,i,j] = sum_{c,a,d} w[f,c,a,d] * xp[n, c, i*s_h+a, j*s_w+d] + b[f]``;
        dtype of x.
        cache: (xp, x_shape, w, b, stride, padding) for ``conv2d_backward``.
    """
    x, w, b, stride, padding, out_hw = _check_conv_args(x, w, b, stride, padding)
    kh, kw = w.shape[2:]
    xp = _pad(x, *padding)
    cols = _windows(xp, kh, kw, stride, out_hw)  # (N, C, Ho, Wo, kh, kw), a view
    out = np.tensordot(cols, w, axes=([1, 4, 5], [1, 2, 3]))  # (N, Ho, Wo, F)
    out = out.transpose(0, 3, 1, 2)
    if b is not None:
        out = out + b[None, :, None, None]
    out = np.ascontiguousarray(out, dtype=x.dtype)
    cache = (xp, x.shape, w, b, stride, padding)
    return out, cache


def conv2d_backward(dout, cache):
    """Vectorised convolution backward.

    Args:
        dout: (N, C_out, H_out, W_out). cache: from ``conv2d_forward``.

    Returns:
        dx: (N, C_in, H, W). With ``dcols[n,i,j,c,a,d] = sum_f dout[n,f,i,j] w[f,c,a,d]``,
            col2im adds, for each kernel offset (a, d), the slice
            ``dxp[:, :, a::s_h, d::s_w] += dcols[..., a, d]``; padding is then cropped.
        dw: (C_out, C_in, kh, kw) ``= sum_{n,i,j} dout[n,f,i,j] * xp[n, c, i*s_h+a, j*s_w+d]``.
        db: (C_out,) ``= dout.sum(axis=(0, 2, 3))``, or None when b was None.
    """
    xp, x_shape, w, b, (sh, sw), (ph, pw) = cache
    dout = np.asarray(dout)
    N, C, H, W = x_shape
    kh, kw = w.shape[2:]
    H_out, W_out = dout.shape[2:]
    cols = _windows(xp, kh, kw, (sh, sw), (H_out, W_out))
    dw = np.tensordot(dout, cols, axes=([0, 2, 3], [0, 2, 3])).astype(w.dtype, copy=False)
    db = None if b is None else dout.sum(axis=(0, 2, 3)).astype(b.dtype, copy=False)
    dcols = np.tensordot(dout, w, axes=([1], [0]))  # (N, Ho, Wo, C, kh, kw)
    dcols = dcols.transpose(0, 3, 1, 2, 4, 5)  # (N, C, Ho, Wo, kh, kw)
    dxp = np.zeros(xp.shape, dtype=np.result_type(xp.dtype, dcols.dtype))
    for a in range(kh):
        for d in range(kw):
            rows = slice(a, a + (H_out - 1) * sh + 1, sh)
            cols_ = slice(d, d + (W_out - 1) * sw + 1, sw)
            dxp[:, :, rows, cols_] += dcols[:, :, :, :, a, d]
    dx = dxp[:, :, ph : ph + H, pw : pw + W].astype(xp.dtype, copy=False)
    return np.ascontiguousarray(dx), dw, db
