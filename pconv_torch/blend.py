"""Poisson blending: a fill blended into the known pixels around its hole, in bounded memory.

:func:`poisson_blend` is the post-processing Iizuka et al. apply to their completion
network's output, and what :func:`pconv_torch.inpaint` does to each window's fill by default.
Arrays are (H, W, C) float with a (H, W) bool hole map, True = fill.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["poisson_blend", "BLEND_MAX_UNKNOWNS", "BLEND_BAND"]


# Largest number of hole pixels blended by one exact sparse solve (a 256x256 hole); larger
# holes are blended at reduced resolution with an exact band along their edge, so the blend's
# memory is bounded whatever the hole's size (README, "Inpaint a photograph").
BLEND_MAX_UNKNOWNS = 1 << 16
BLEND_BAND = 8  # width in pixels of the exact band along a large hole's edge


def poisson_blend(fill: np.ndarray, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Blend a fill into its surroundings by solving Poisson's equation in the hole.

    Inside the hole the result keeps the *differences between neighbouring pixels* of ``fill``
    (its texture, its edges) but not its absolute level: it solves, for every hole pixel p with
    neighbours q (4-neighbourhood, inside the image),

        sum_q (f_p - f_q) = sum_{q in hole} (fill_p - fill_q)

    with f_q = image_q for neighbours outside the hole. Only differences between two hole pixels
    are kept, so a step between the fill and the known pixels (a rim) or a constant offset (a
    colour cast) is removed: the result meets the known pixels continuously. Outside the hole
    the result is ``image``. One sparse solve per picture (all channels at once).

    A hole of more than :data:`BLEND_MAX_UNKNOWNS` pixels is solved in two bounded steps
    instead: the correction ``f - fill`` (a smooth, harmonic function) at a resolution reduced
    by the smallest integer factor that brings the hole under that size, enlarged bilinearly;
    then the exact equation again in the band of hole pixels within :data:`BLEND_BAND` pixels
    of the known ones (at most :data:`BLEND_MAX_UNKNOWNS` of them at a time), with the
    enlarged solution as the band's inner boundary.

    Args:
        fill, image: (H, W, C) float arrays; hole: (H, W) bool, True = fill.
    Returns: (H, W, C) float array, clipped to [0, 1].
    """
    hole = np.asarray(hole, bool)
    n = int(np.count_nonzero(hole))
    if n <= BLEND_MAX_UNKNOWNS:
        out = np.array(image, dtype=np.float64, copy=True)
        if n:
            out[hole] = _poisson_solve(np.asarray(fill, np.float64), out, hole, hole)
        return np.clip(out, 0.0, 1.0, out=out)
    out = np.array(image, dtype=np.result_type(image, np.float32), copy=True)
    _blend_large(fill, out, hole)
    return np.clip(out, 0.0, 1.0, out=out)


def _poisson_solve(fill, image, unknown, guided) -> np.ndarray:
    """Values at the ``unknown`` pixels (row-major order), (K, C) float64, solving
    sum_q (f_p - f_q) = sum_{q in guided} (fill_p - fill_q) for every unknown p (4-neighbours
    inside the array), with f_q = image_q at neighbours that are not unknown.

    A connected part of ``unknown`` with no neighbour outside it (a window that is all hole)
    has no level to meet: it gets ``fill``'s values.

    Args: fill, image (H, W, C); unknown, guided (H, W) bool, unknown within guided.
    """
    import scipy.sparse as sparse
    from scipy import ndimage
    from scipy.sparse.linalg import splu

    labels, parts = ndimage.label(unknown)
    anchored = np.unique(labels[ndimage.binary_dilation(~unknown) & unknown])
    if len(anchored) < parts:  # solve the parts that meet known pixels, keep fill elsewhere
        values = np.array(fill[unknown], np.float64)
        solvable = np.isin(labels, anchored) & unknown
        if solvable.any():
            values[solvable[unknown]] = _poisson_solve(fill, image, solvable, guided)
        return values
    del labels
    h, w = unknown.shape
    ys, xs = np.nonzero(unknown)
    n = len(ys)
    index = np.full((h, w), -1, np.int64)
    index[ys, xs] = np.arange(n)
    diag = np.zeros(n)
    rhs = np.zeros((n, image.shape[2]))
    rows, cols = [np.arange(n)], [np.arange(n)]
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        qy, qx = ys + dy, xs + dx
        inside = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
        p, qy, qx = np.nonzero(inside)[0], qy[inside], qx[inside]
        diag[p] += 1
        in_u, in_g = unknown[qy, qx], guided[qy, qx]
        pg, pk = p[in_g], p[~in_u]
        rows.append(p[in_u])
        cols.append(index[qy[in_u], qx[in_u]])
        rhs[pg] += (np.asarray(fill[ys[pg], xs[pg]], np.float64)
                    - fill[qy[in_g], qx[in_g]])
        rhs[pk] += image[qy[~in_u], qx[~in_u]]
    data = np.concatenate([diag] + [-np.ones(len(r)) for r in rows[1:]])
    a = sparse.csc_matrix((data, (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    return splu(a).solve(rhs)


def _blend_large(fill, out, hole) -> None:
    """:func:`poisson_blend` of a hole larger than :data:`BLEND_MAX_UNKNOWNS`, unclipped, in
    place: ``out`` (H, W, C) float, the image, gets the blended hole; fill (H, W, C); hole
    (H, W) bool."""
    from scipy import ndimage

    k = int(np.ceil(np.sqrt(np.count_nonzero(hole) / BLEND_MAX_UNKNOWNS)))
    while True:  # the coarse hole also counts the blocks the hole only touches
        ys, xs = np.nonzero(hole)  # the hole's box with a margin of known blocks around it
        top, left = max(ys.min() - 2 * k, 0), max(xs.min() - 2 * k, 0)
        box = np.s_[top:ys.max() + 2 * k + 1, left:xs.max() + 2 * k + 1]
        del ys, xs
        h, w = hole[box].shape
        hs, ws = -(-h // k), -(-w // k)
        coarse_hole = np.zeros((hs * k, ws * k), bool)
        coarse_hole[:h, :w] = hole[box]
        coarse_hole = coarse_hole.reshape(hs, k, ws, k).any(axis=(1, 3))
        if np.count_nonzero(coarse_hole) <= BLEND_MAX_UNKNOWNS:
            break
        k += 1
    image, region, fill = out[box], hole[box], np.asarray(fill[box], out.dtype)
    c = out.shape[2]
    # the mismatch image - fill, averaged over the known pixels of each fully known block
    known = np.zeros((hs * k, ws * k), np.float32)
    known[:h, :w] = ~region
    d = np.zeros((hs * k, ws * k, c), np.float32)
    d[:h, :w] = (image - fill) * known[:h, :w, None]
    count = known.reshape(hs, k, ws, k).sum(axis=(1, 3))
    coarse = d.reshape(hs, k, ws, k, c).sum(axis=(1, 3)) / np.maximum(count, 1)[..., None]
    del d, known
    coarse = coarse.astype(np.float64)
    coarse[coarse_hole] = _poisson_solve(np.zeros_like(coarse), coarse, coarse_hole, coarse_hole)
    # enlarged bilinearly (sample i of the coarse grid sits at the centre of its block)
    t = torch.from_numpy(coarse.astype(np.float32)).permute(2, 0, 1)[None]
    correction = F.interpolate(t, scale_factor=k, mode="bilinear", align_corners=False)
    image[region] = fill[region] + correction[0].permute(1, 2, 0).numpy()[:h, :w][region]
    del t, correction, coarse
    # the exact equation in the band along the edge, tile by tile of bounded size
    band = region & ndimage.binary_dilation(~region, iterations=BLEND_BAND)
    step = max(BLEND_BAND * 4, int(np.sqrt(BLEND_MAX_UNKNOWNS)))
    for ty in range(0, h, step):
        for tx in range(0, w, step):
            u = band[ty:ty + step, tx:tx + step]
            if not u.any():
                continue
            m = np.s_[max(ty - 1, 0):ty + step + 1, max(tx - 1, 0):tx + step + 1]
            unknown = np.zeros(region[m].shape, bool)
            iy, ix = ty - m[0].start, tx - m[1].start
            unknown[iy:iy + u.shape[0], ix:ix + u.shape[1]] = u
            image[m][unknown] = _poisson_solve(fill[m], image[m], unknown, region[m])
