"""Numba-accelerated convolution and partial convolution (same API as ``conv``/``partial_conv``).

The heavy part of a convolution is a matrix multiply. Each image is unrolled into columns
(*im2col*), multiplied by the flattened weights with BLAS, and, for the backward pass, the
column gradient is folded back onto the image (*col2im*)::

    cols[(c*kh + i)*kw + j, oh*W_out + ow] = (x*M)[c, oh*s_h - p_h + i, ow*s_w - p_w + j]
    out[n] = W.reshape(C_out, C_in*kh*kw) @ cols                       (C_out, H_out*W_out)
    dW    += dout[n] @ cols.T            dcols = W.T @ dout[n]          dx[n] = M * col2im(dcols)

with ``H_out = (H + 2 p_h - kh) // s_h + 1`` (zero padding, torch's convention). The columns
are built a few output rows at a time (about ``CHUNK_ELEMENTS`` entries), so that they are still
in cache when BLAS reads them and memory stays small; the backward pass recomputes them rather
than caching them. The unrolling, folding and mask counting are Numba kernels parallel over
``prange``; the multiplies are NumPy's BLAS. Every kernel is written as plain Python
(``_im2col``, ...) and compiled from it (``im2col = njit(parallel=True)(_im2col)``), so
``NUMBA_DISABLE_JIT=1`` runs the same code. Results equal the NumPy reference's up to
rounding; arguments are checked by the reference's own validators (same ``ValueError``).

Partial convolution (Liu et al. 2018; mask 1 = valid, 0 = hole)::

    sum_M = sum_g C_g * boxsum(m_g)       over the window, zero padding counting as hole
    out   = (W^T (X*M)) * sum_1/sum_M + b  where sum_M > 0, else 0;  sum_1 = C_in*kh*kw
    new_mask = (sum_M > 0)

A mask is ``(N, G, H, W)`` plus a channel map ``cmap`` (C_in,) saying which mask channel
multiplies each input channel: G = 1 broadcast (cmap = 0), G = C_in per channel
(cmap = arange), or ``mask_groups`` (cmap repeats g C_g times). ``x*M`` is fused into the
im2col kernel, so no C_in-channel mask is ever built.
"""
import os

import numba
import numpy as np
from numba import njit, prange

from .conv import _check_conv_args
from .partial_conv import _channel_weights, _validate

# The kernels and BLAS take turns many times per call. OpenMP workers spin after each parallel
# region and steal the cores the BLAS threads need next (many times slower on a few busy
# cores; benchmarks/bench_reference.py), so unless the user chose a threading layer, use the
# non-spinning "workqueue" one.
# It is chosen once per process, at the first parallel launch; it does not allow parallel
# kernels to be launched from several Python threads at once.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

__all__ = [
    "conv2d_forward_fast",
    "conv2d_backward_fast",
    "partial_conv2d_forward_fast",
    "partial_conv2d_backward_fast",
]


# ----------------------------------------------------------------------------------------------
# Plain Python kernels (loops only) and their compiled versions
# ----------------------------------------------------------------------------------------------
# Performance note: inner loops run over 1-D slices with indices counting up from 0, so that
# LLVM can prove them non-negative, drop Numba's negative-index wraparound and vectorise
# (an index like ``ow + offset`` is ~8x slower).
def _valid_range(n_out, stride, offset, size):
    """Output indices o in [lo, hi) with 0 <= o*stride + offset < size (offset = tap - pad)."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    hi = 0
    if size - 1 - offset >= 0:
        hi = (size - 1 - offset) // stride + 1
    if hi > n_out:
        hi = n_out
    if lo > hi:
        lo = hi
    return lo, hi


def _im2col(x, m, cmap, kh, kw, sh, sw, ph, pw, oh0, oh1, w_out, cols):
    """Unroll output rows [oh0, oh1) of one masked image into columns, in place.

    x (C, H, W), m (G, H, W), cmap (C,) int64 -> cols (C*kh*kw, (oh1-oh0)*w_out) with
    ``cols[(c*kh+i)*kw+j, (oh-oh0)*w_out+ow] = x[c, h, w] * m[cmap[c], h, w]`` at
    ``h = oh*sh - ph + i``, ``w = ow*sw - pw + j``, and 0 in the zero padding.
    """
    n_rows = cols.shape[0]
    height = x.shape[1]
    width = x.shape[2]
    for r in prange(n_rows):
        c = r // (kh * kw)
        i = (r // kw) % kh
        j = r % kw
        g = cmap[c]
        oh_lo, oh_hi = valid_range(oh1, sh, i - ph, height)
        ow_lo, ow_hi = valid_range(w_out, sw, j - pw, width)
        n_valid = ow_hi - ow_lo
        w0 = ow_lo * sw - pw + j  # first input column read
        for oh in range(oh0, oh1):
            seg = cols[r, (oh - oh0) * w_out : (oh - oh0 + 1) * w_out]
            if oh < oh_lo or oh >= oh_hi:
                for k in range(w_out):
                    seg[k] = 0.0
                continue
            h = oh * sh - ph + i
            for k in range(ow_lo):
                seg[k] = 0.0
            dst = seg[ow_lo:ow_hi]
            if n_valid > 0 and sw == 1:
                xs = x[c, h, w0 : w0 + n_valid]
                ms = m[g, h, w0 : w0 + n_valid]
                for k in range(n_valid):
                    dst[k] = xs[k] * ms[k]
            elif n_valid > 0:
                xs = x[c, h, w0 : w0 + (n_valid - 1) * sw + 1 : sw]
                ms = m[g, h, w0 : w0 + (n_valid - 1) * sw + 1 : sw]
                for k in range(n_valid):
                    dst[k] = xs[k] * ms[k]
            tail = seg[ow_hi:]
            for k in range(w_out - ow_hi):
                tail[k] = 0.0


def _col2im(dcols, kh, kw, sh, sw, ph, pw, oh0, oh1, w_out, dx):
    """Add the column gradients of output rows [oh0, oh1) back onto one image, in place.

    dcols (C*kh*kw, (oh1-oh0)*w_out) -> dx (C, H, W): every ``dcols`` entry is added to the
    input entry that ``im2col`` read it from (padding entries are dropped). Each parallel task
    owns one row (c, h) of dx, so there are no write races.
    """
    n_chan, height, width = dx.shape
    h_lo = max(oh0 * sh - ph, 0)
    h_hi = min((oh1 - 1) * sh - ph + kh, height)
    n_h = h_hi - h_lo
    if n_h <= 0:
        return
    for rr in prange(n_chan * n_h):
        c = rr // n_h
        h = h_lo + rr % n_h
        for i in range(kh):
            t = h + ph - i
            if t < 0 or t % sh != 0:
                continue
            oh = t // sh
            if oh < oh0 or oh >= oh1:
                continue
            base = (oh - oh0) * w_out
            for j in range(kw):
                ow_lo, ow_hi = valid_range(w_out, sw, j - pw, width)
                n_valid = ow_hi - ow_lo
                if n_valid <= 0:
                    continue
                src = dcols[(c * kh + i) * kw + j, base + ow_lo : base + ow_hi]
                w0 = ow_lo * sw - pw + j
                if sw == 1:
                    dst = dx[c, h, w0 : w0 + n_valid]
                    for k in range(n_valid):
                        dst[k] += src[k]
                else:
                    dst = dx[c, h, w0 : w0 + (n_valid - 1) * sw + 1 : sw]
                    for k in range(n_valid):
                        dst[k] += src[k]


def _mask_mul(dx, m, cmap):
    """dx (C, H, W) *= m[cmap[c]] channel by channel, in place; m (G, H, W), cmap (C,)."""
    n_chan, height, width = dx.shape
    for rr in prange(n_chan * height):
        c = rr // height
        h = rr % height
        dst = dx[c, h]
        ms = m[cmap[c], h]
        for k in range(width):
            dst[k] *= ms[k]


def _mask_count(mask, weights, kh, kw, sh, sw, ph, pw, sum_m):
    """Weighted window counts of valid mask entries, in place.

    mask (N, G, H, W), weights (G,) float64 -> sum_m (N, H_out, W_out) float64 with
    ``sum_m[n, oh, ow] = sum_g weights[g] * (sum of mask[n, g] over the kh x kw window)``;
    window positions in the zero padding count as holes.
    """
    n_img, n_grp, height, width = mask.shape
    h_out = sum_m.shape[1]
    w_out = sum_m.shape[2]
    for rr in prange(n_img * h_out):
        n = rr // h_out
        oh = rr % h_out
        h0 = oh * sh - ph
        h_lo = max(h0, 0)
        h_hi = min(h0 + kh, height)
        for ow in range(w_out):
            w0 = ow * sw - pw
            w_lo = max(w0, 0)
            w_hi = min(w0 + kw, width)
            acc = 0.0
            for g in range(n_grp):
                s = 0.0
                for h in range(h_lo, h_hi):
                    seg = mask[n, g, h, w_lo:w_hi]
                    for k in range(w_hi - w_lo):
                        s += seg[k]
                acc += weights[g] * s
            sum_m[n, oh, ow] = acc


def _scale_bias(raw, scale, valid, b, l0, out):
    """Epilogue for one chunk of one image, in place.

    raw (C_out, Lc), scale and valid (L,), b (C_out,) -> out (C_out, L) columns [l0, l0+Lc):
    ``out = raw * scale + b * valid`` (scale is already 0 where the window is all hole).
    """
    c_out, n_cols = raw.shape
    sc = scale[l0 : l0 + n_cols]
    va = valid[l0 : l0 + n_cols]
    for co in prange(c_out):
        src = raw[co]
        dst = out[co, l0 : l0 + n_cols]
        bias = b[co]
        for k in range(n_cols):
            dst[k] = src[k] * sc[k] + bias * va[k]


def _scale_grad(dout, scale, valid, l0, g, db):
    """Backward prologue for one chunk of one image, in place.

    dout (C_out, L), scale and valid (L,) -> g (C_out, Lc) = dout * scale on columns
    [l0, l0+Lc); db (C_out,) float64 += row sums of dout * valid there.
    """
    c_out, n_cols = g.shape
    sc = scale[l0 : l0 + n_cols]
    va = valid[l0 : l0 + n_cols]
    for co in prange(c_out):
        src = dout[co, l0 : l0 + n_cols]
        dst = g[co]
        acc = 0.0
        for k in range(n_cols):
            dst[k] = src[k] * sc[k]
            acc += src[k] * va[k]
        db[co] += acc


valid_range = njit(inline="always")(_valid_range)
im2col = njit(parallel=True, cache=True)(_im2col)
col2im = njit(parallel=True, cache=True)(_col2im)
mask_mul = njit(parallel=True, cache=True)(_mask_mul)
mask_count = njit(parallel=True, cache=True)(_mask_count)
scale_bias = njit(parallel=True, cache=True)(_scale_bias)
scale_grad = njit(parallel=True, cache=True)(_scale_grad)


# ----------------------------------------------------------------------------------------------
# Argument checks: the reference's own, so both raise the same ValueErrors
# ----------------------------------------------------------------------------------------------
def _mask_layout(mask, c_in, groups):
    """Channel map cmap (C_in,) int64 and count weights (G,) float64 of a checked mask."""
    n_grp = mask.shape[1]
    if groups is not None:
        cmap = np.repeat(np.arange(n_grp, dtype=np.int64), groups)
    elif n_grp == 1:
        cmap = np.zeros(c_in, dtype=np.int64)
    else:
        cmap = np.arange(c_in, dtype=np.int64)
    return cmap, _channel_weights(n_grp, c_in, groups)


# ----------------------------------------------------------------------------------------------
# Shared drivers: Python loops over images and chunks of output rows, Numba kernels and BLAS
# ----------------------------------------------------------------------------------------------
CHUNK_ELEMENTS = 1 << 21
"""Target size of one column buffer, C_in*kh*kw x (rows * W_out) entries: small enough to stay
in cache between im2col and the multiply, large enough for an efficient BLAS call."""


def _chunks(k, h_out, w_out):
    """Output-row ranges [oh0, oh1) whose columns hold about ``CHUNK_ELEMENTS`` entries."""
    rows = max(1, min(h_out, CHUNK_ELEMENTS // max(1, k * w_out)))
    return [(oh0, min(oh0 + rows, h_out)) for oh0 in range(0, h_out, rows)], rows * w_out


def _chunk_views(k, out_hw, dtype, rows):
    """``[(oh0, oh1, views)]``: the chunks of output rows of a layer whose columns have ``k``
    rows (:func:`_chunks`) and, for each chunk of ``n_cols = (oh1 - oh0) * W_out`` columns, one
    (r, n_cols) view per ``r`` in ``rows`` into a scratch buffer of ``dtype`` that every chunk
    (and every image) reuses."""
    h_out, w_out = out_hw
    chunks, max_cols = _chunks(k, h_out, w_out)
    bufs = [np.empty(r * max_cols, dtype=dtype) for r in rows]
    return [(oh0, oh1, [buf[: r * (oh1 - oh0) * w_out].reshape(r, (oh1 - oh0) * w_out)
                        for buf, r in zip(bufs, rows)]) for oh0, oh1 in chunks]


def _image(i, *arrays):
    """Image ``i``'s entry of each (N or 1, ...) array: a batch of one broadcasts over N."""
    return [a[min(i, a.shape[0] - 1)] for a in arrays]


def _forward(x, mask, cmap, w, b, stride, padding, out_hw, scale, valid):
    """out (N, C_out, H_out, W_out) = conv(x*M, w) * scale + b * valid.

    x (N, C_in, H, W), mask (N or 1, G, H, W), cmap (C_in,), w (C_out, C_in, kh, kw) and
    b (C_out,) in x's dtype; scale, valid (N or 1, H_out*W_out) in x's dtype.
    """
    n = x.shape[0]
    c_out, c_in, kh, kw = w.shape
    (sh, sw), (ph, pw), (h_out, w_out) = stride, padding, out_hw
    k = c_in * kh * kw
    w2 = w.reshape(c_out, k)
    plan = _chunk_views(k, out_hw, x.dtype, (k, c_out))
    out = np.empty((n, c_out, h_out * w_out), dtype=x.dtype)
    for i in range(n):
        m, sc, va = _image(i, mask, scale, valid)
        for oh0, oh1, (cols, raw) in plan:
            im2col(x[i], m, cmap, kh, kw, sh, sw, ph, pw, oh0, oh1, w_out, cols)
            np.dot(w2, cols, out=raw)
            scale_bias(raw, sc, va, b, oh0 * w_out, out[i])
    return out.reshape(n, c_out, h_out, w_out)


def _backward(dout, cache):
    """dx (N, C_in, H, W), dw (C_out, C_in, kh, kw), db (C_out,) or None of ``_forward``.

    dout (N, C_out, H_out, W_out); the columns are recomputed chunk by chunk, not cached.
    """
    x, mask, cmap, w = cache["x"], cache["mask"], cache["cmap"], cache["w"]
    scale, valid = cache["scale"], cache["valid"]
    (sh, sw), (ph, pw), (h_out, w_out) = cache["stride"], cache["padding"], cache["out_hw"]
    n = x.shape[0]
    c_out, c_in, kh, kw = w.shape
    k = c_in * kh * kw
    dout = np.asarray(dout)
    if dout.shape != (n, c_out, h_out, w_out):
        raise ValueError(f"dout must have shape {(n, c_out, h_out, w_out)}, got {dout.shape}")
    dout = np.ascontiguousarray(dout, dtype=x.dtype).reshape(n, c_out, h_out * w_out)
    w2t = w.reshape(c_out, k).T
    plan = _chunk_views(k, (h_out, w_out), x.dtype, (k, k, c_out))
    dx = np.zeros_like(x)
    dw2 = np.zeros((c_out, k), dtype=x.dtype)
    dw_part = np.empty_like(dw2)
    db = np.zeros(c_out, dtype=np.float64)
    for i in range(n):
        m, sc, va = _image(i, mask, scale, valid)
        for oh0, oh1, (cols, dcols, g) in plan:
            scale_grad(dout[i], sc, va, oh0 * w_out, g, db)
            im2col(x[i], m, cmap, kh, kw, sh, sw, ph, pw, oh0, oh1, w_out, cols)
            np.dot(g, cols.T, out=dw_part)
            dw2 += dw_part
            np.dot(w2t, g, out=dcols)
            col2im(dcols, kh, kw, sh, sw, ph, pw, oh0, oh1, w_out, dx[i])
        mask_mul(dx[i], m, cmap)
    dw = dw2.reshape(w.shape).astype(cache["w_dtype"], copy=False)
    db = None if cache["b_dtype"] is None else db.astype(cache["b_dtype"])
    return dx, dw, db


def _new_cache(x, mask, cmap, w, w_x, b, stride, padding, out_hw, scale, valid):
    return dict(
        x=x, mask=mask, cmap=cmap, w=w_x, w_dtype=w.dtype, b_dtype=None if b is None else b.dtype,
        stride=stride, padding=padding, out_hw=out_hw, scale=scale, valid=valid,
    )


# ----------------------------------------------------------------------------------------------
# Public API (signatures and results of pconv_ref.conv / pconv_ref.partial_conv)
# ----------------------------------------------------------------------------------------------
def conv2d_forward_fast(x, w, b, stride=1, padding=0):
    """2-D convolution (cross-correlation, torch's ``F.conv2d``): im2col + BLAS.

    x (N, C_in, H, W), w (C_out, C_in, kh, kw), b (C_out,) or None; stride, padding: int
    or (h, w), zero padding. Returns out (N, C_out, H_out, W_out) in x's dtype, with
    ``H_out = (H + 2*p_h - kh)//s_h + 1``, and a cache for ``conv2d_backward_fast``.
    """
    x, w, b, stride, padding, out_hw = _check_conv_args(x, w, b, stride, padding)
    x = np.ascontiguousarray(x)
    w_x = np.ascontiguousarray(w, dtype=x.dtype)
    b_x = np.zeros(w.shape[0], x.dtype) if b is None else np.asarray(b, dtype=x.dtype)
    # a plain convolution is the masked one with an all-ones mask and scale
    ones = np.ones((1, 1) + x.shape[2:], dtype=x.dtype)
    cmap = np.zeros(x.shape[1], dtype=np.int64)
    ones_out = np.ones((1, out_hw[0] * out_hw[1]), dtype=x.dtype)
    out = _forward(x, ones, cmap, w_x, b_x, stride, padding, out_hw, ones_out, ones_out)
    return out, _new_cache(x, ones, cmap, w, w_x, b, stride, padding, out_hw, ones_out, ones_out)


def conv2d_backward_fast(dout, cache):
    """Gradients of ``conv2d_forward_fast``.

    dout (N, C_out, H_out, W_out) -> dx (N, C_in, H, W), dw (C_out, C_in, kh, kw),
    db (C_out,) = dout summed over (N, H_out, W_out), or None when the forward had no bias.
    """
    return _backward(dout, cache)


def partial_conv2d_forward_fast(x, mask, w, b, stride=1, padding=0, mask_groups=None):
    """Partial convolution (Liu et al. 2018): Numba mask counting, im2col + BLAS.

    x (N, C_in, H, W), finite. mask binary, 1 = valid, 0 = hole: (N, 1, H, W) broadcast over
    C_in, (N, C_in, H, W) per channel, or (N, G, H, W) with ``mask_groups = (C_1, ..., C_G)``
    (sum C_in; mask channel g covers C_g consecutive input channels).
    w (C_out, C_in, kh, kw), b (C_out,) or None; stride, padding as ``conv2d_forward_fast``.

    Returns out (N, C_out, H_out, W_out) ``= conv(x*M, w) * sum_1/sum_M + b`` where
    ``sum_M > 0``, else 0; new_mask (N, 1, H_out, W_out) ``= [sum_M > 0]`` in x's dtype; cache.
    ``sum_1 = C_in*kh*kw``, ``sum_M = sum_g C_g * boxsum(m_g)`` (zero padding counts as hole).
    """
    x, mask, w, b, stride, padding, out_hw, groups = _validate(
        x, mask, w, b, stride, padding, mask_groups
    )
    x = np.ascontiguousarray(x)
    mask = np.ascontiguousarray(mask)
    w_x = np.ascontiguousarray(w, dtype=x.dtype)
    b_x = np.zeros(w.shape[0], x.dtype) if b is None else np.asarray(b, dtype=x.dtype)
    n, c_in = x.shape[:2]
    kh, kw = w.shape[2:]
    (sh, sw), (ph, pw), (h_out, w_out) = stride, padding, out_hw
    cmap, weights = _mask_layout(mask, c_in, groups)

    sum_m = np.empty((n, h_out, w_out), dtype=np.float64)
    mask_count(mask, weights, kh, kw, sh, sw, ph, pw, sum_m)
    valid = sum_m > 0
    ratio = np.zeros(sum_m.shape, dtype=np.float64)
    np.divide(float(c_in * kh * kw), sum_m, out=ratio, where=valid)
    scale = ratio.astype(x.dtype).reshape(n, h_out * w_out)  # 0 in all-hole windows
    new_mask = valid.astype(x.dtype).reshape(n, h_out * w_out)

    out = _forward(x, mask, cmap, w_x, b_x, stride, padding, out_hw, scale, new_mask)
    cache = _new_cache(x, mask, cmap, w, w_x, b, stride, padding, out_hw, scale, new_mask)
    return out, new_mask.reshape(n, 1, h_out, w_out), cache


def partial_conv2d_backward_fast(dout, cache):
    """Gradients of ``partial_conv2d_forward_fast`` (the mask gets none).

    dout (N, C_out, H_out, W_out) -> dx (N, C_in, H, W) ``= M * conv_backward_x(dout*r)``,
    dw (C_out, C_in, kh, kw) ``= conv_backward_w(dout*r)`` on x*M, db (C_out,) ``= sum of
    dout over valid outputs`` (None without bias); ``r = [sum_M > 0] * sum_1/sum_M``.
    """
    return _backward(dout, cache)
