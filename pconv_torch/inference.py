"""Inpainting a photograph of any size with a trained generator, in bounded memory.

A generator is trained at one scale (the shipped models: 64x64 crops with holes of up to half
the side). A phone photograph is 4000x3000 with a hole somewhere in it. :func:`inpaint` does
not run the network on the whole photograph. For each hole (a connected region of the mask,
regions closer than a few pixels merged) it:

1. takes a square *context window* centred on the hole's bounding box, twice the box's larger
   side but at least the model's scale (so the hole covers at most half the window, as in
   training), shifted to lie inside the image;
2. resizes the window to the model's scale (area averaging for the image; a pixel of the small
   mask is a hole if any pixel it covers is one), fills it with the generator;
3. resizes the fill back to the window (bicubic) and pastes it into the hole's pixels only;
4. with ``blend="poisson"`` (the default of :func:`inpaint`), blends the fill into the hole's
   surroundings (:func:`poisson_blend`): the post-processing Iizuka et al. apply to their
   completion network's output.

Memory and time therefore depend on the number of holes, not on the photograph's size: one
window costs one generator pass at the model's scale plus the window's pixels. A hole larger
than the model's scale is filled at reduced resolution (its fill is smoother than the image
around it); that is a limit of the model's scale, stated, not hidden.

Masks given to :func:`inpaint` follow the editing convention: **non-zero / white = fill**;
inside the package 1 = valid, 0 = hole (converted once, here).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

__all__ = ["inpaint", "fill_holes", "context_windows", "poisson_blend"]


def _image_array(image) -> tuple[np.ndarray, str]:
    """PIL image or (H, W, 3) / (H, W) uint8 or float array -> ((H, W, 3) float32 in [0, 1],
    the input's kind "uint8" | "float")."""
    if isinstance(image, Image.Image):
        from .data import _to_rgb

        return np.asarray(_to_rgb(image), np.float32) / 255.0, "uint8"
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"image must be (H, W, 3) (or RGBA / grayscale), got shape {a.shape}")
    a = a[..., :3]
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0, "uint8"
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"image must be uint8 or float in [0, 1], got dtype {a.dtype}")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise ValueError("image contains NaN or infinite values")
    if a.min() < 0 or a.max() > 1:
        raise ValueError(f"a float image must lie in [0, 1], got [{a.min():.3g}, {a.max():.3g}]")
    return a, "float"


def _hole_array(mask, shape) -> np.ndarray:
    """PIL image or (H, W) array, non-zero / white = fill -> (H, W) bool hole map."""
    if isinstance(mask, Image.Image):  # white = fill, any mode: the package's one converter
        from .masks import mask_from_image

        hole = mask_from_image(mask)[0].numpy() < 0.5
    else:
        m = np.asarray(mask)
        if m.ndim == 3 and m.shape[0] == 1:
            m = m[0]
        if m.ndim != 2:
            raise ValueError(f"mask must be (H, W), non-zero = fill; got shape {m.shape}")
        hole = m != 0
    if hole.shape != tuple(shape):
        raise ValueError(f"mask is {hole.shape[1]}x{hole.shape[0]} but the image is "
                         f"{shape[1]}x{shape[0]} (width x height); they must match")
    if not hole.any():
        raise ValueError("the mask marks nothing to fill (no non-zero pixel)")
    if hole.all():
        raise ValueError("the mask marks the whole image: no known pixels to fill from")
    return hole


def context_windows(hole: np.ndarray, scale: int, merge: int = 4) -> list[tuple[int, int, int]]:
    """Square windows ``(top, left, side)`` that together cover every hole pixel.

    One window per connected hole region (regions within ``merge`` pixels of each other are
    merged): centred on the region's bounding box, ``side = max(scale, 2 * box side)``, capped
    at the image's shorter side and shifted to lie inside the image.

    Args: hole (H, W) bool, True = fill; scale: the model's training size.
    """
    h, w = hole.shape
    grown = ndimage.binary_dilation(hole, iterations=merge) if merge else hole
    labels, _ = ndimage.label(grown)
    out = []
    for sl in ndimage.find_objects(labels):
        y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
        side = min(max(scale, 2 * max(y1 - y0, x1 - x0)), h, w)
        top = int(np.clip((y0 + y1) / 2 - side / 2, 0, h - side))
        left = int(np.clip((x0 + x1) / 2 - side / 2, 0, w - side))
        out.append((top, left, side))
    return out


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

    Args:
        fill, image: (H, W, C) float arrays; hole: (H, W) bool, True = fill.
    Returns: (H, W, C) float array, clipped to [0, 1].
    """
    import scipy.sparse as sparse
    from scipy.sparse.linalg import splu

    h, w = hole.shape
    ys, xs = np.nonzero(hole)
    n = len(ys)
    out = np.array(image, dtype=np.float64, copy=True)
    if n == 0:
        return out
    index = np.full((h, w), -1, np.int64)
    index[ys, xs] = np.arange(n)
    fill = np.asarray(fill, np.float64)
    diag = np.zeros(n)
    rhs = np.zeros((n, out.shape[2]))
    rows, cols = [np.arange(n)], [np.arange(n)]
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        qy, qx = ys + dy, xs + dx
        inside = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
        p, qy, qx = np.nonzero(inside)[0], qy[inside], qx[inside]
        diag[p] += 1
        in_hole = hole[qy, qx]
        ph, pk = p[in_hole], p[~in_hole]
        rows.append(ph)
        cols.append(index[qy[in_hole], qx[in_hole]])
        rhs[ph] += fill[ys[ph], xs[ph]] - fill[qy[in_hole], qx[in_hole]]
        rhs[pk] += out[qy[~in_hole], qx[~in_hole]]
    data = np.concatenate([diag] + [-np.ones(len(r)) for r in rows[1:]])
    a = sparse.csc_matrix((data, (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    out[ys, xs] = splu(a).solve(rhs)
    return np.clip(out, 0.0, 1.0)


def _resize(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """(N, C, s, s) -> (N, C, size, size)."""
    if x.shape[-1] == size:
        return x
    if mode == "area":
        return F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)


@torch.no_grad()
def fill_holes(generator, image: np.ndarray, hole: np.ndarray, scale: int, device="cpu",
               blend: str | None = None) -> np.ndarray:
    """Fill ``hole`` of ``image`` window by window (see the module docstring).

    Args:
        generator: ``G(image (N,3,S,S), mask (N,1,S,S) 1 = valid) -> (N,3,S,S)``.
        image: (H, W, 3) float32 in [0, 1]; hole: (H, W) bool, True = fill.
        scale: side S at which the generator runs (a multiple of its ``2**depth``).
        blend: None (paste the generator's fill) or ``"poisson"`` (:func:`poisson_blend`).
    Returns: (H, W, 3) float32: ``image`` with its hole pixels replaced.
    """
    if blend not in (None, "poisson"):
        raise ValueError(f"blend must be None or 'poisson', got {blend!r}")
    out = image.copy()
    h, w = hole.shape
    if min(h, w) < scale:  # too small for a window of the model's scale: pad by reflection
        ph, pw = max(0, scale - h), max(0, scale - w)
        big = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
        big_hole = np.pad(hole, ((0, ph), (0, pw)), mode="constant")
        return fill_holes(generator, big, big_hole, scale, device, blend)[:h, :w]
    generator.eval()
    for top, left, side in context_windows(hole, scale):
        win = torch.from_numpy(np.ascontiguousarray(
            out[top:top + side, left:left + side].transpose(2, 0, 1)))[None]
        win_hole = torch.from_numpy(hole[top:top + side, left:left + side].astype(np.float32))[None, None]
        small = _resize(win, scale, "area")
        hole_share = _resize(win_hole, scale, "area")  # fraction of hole under each small pixel
        small_valid = (hole_share <= 0).float()  # any hole -> hole
        if bool(small_valid.all()):  # a hole thinner than one small pixel: keep it a hole
            small_valid = (hole_share < 0.5).float()
        g = generator(small.to(device), small_valid.to(device)).float().cpu()
        if not bool(torch.isfinite(g).all()):
            raise ValueError("the generator produced NaN or infinite values: its weights are "
                             "corrupt or diverged; nothing was written")
        g = g.clamp(0, 1)
        fill = _resize(g, side, "bicubic").clamp(0, 1)[0].numpy().transpose(1, 2, 0)
        region = hole[top:top + side, left:left + side]
        if blend == "poisson":
            fill = poisson_blend(fill, out[top:top + side, left:left + side], region)
        out[top:top + side, left:left + side][region] = fill[region]
    return out


def inpaint(image, mask, model=None, device="cpu", blend: str | None = "poisson"):
    """Fill the region that ``mask`` marks in ``image`` with a trained generator.

    Args:
        image: (H, W, 3) uint8 or float in [0, 1] array, or a PIL image (any mode), any size.
        mask: (H, W) array or PIL image; **non-zero / white = region to fill**.
        model: a shipped model's name (see :func:`pconv_torch.pretrained`), a generator
            module, or None for the default shipped model.
        device: where the generator runs.
        blend: ``"poisson"`` (default) blends each fill into its surroundings
            (:func:`poisson_blend`); None pastes the generator's fill as it is.
    Returns:
        the inpainted image, same size; a (H, W, 3) uint8 array for uint8 or PIL input, else
        float32 in [0, 1]. Known pixels are returned unchanged.

    Raises ValueError naming the problem for bad shapes, an empty or full mask, non-finite
    values or an unknown model name.
    """
    from .shipped import default_model_name, pretrained

    arr, kind = _image_array(image)
    hole = _hole_array(mask, arr.shape[:2])
    if model is None or isinstance(model, str):
        model = pretrained(model or default_model_name())
    # the scale it was trained at (shipped models and load_generator record it)
    scale = int(getattr(model, "image_size", 0)) or 2 ** (model.depth + 2)
    filled = fill_holes(model.to(device), arr, hole, scale, device, blend)
    filled = np.where(hole[..., None], filled, arr)
    if kind == "uint8":  # known pixels: rint(255 * (v / 255)) == v exactly
        return np.clip(np.rint(filled * 255.0), 0, 255).astype(np.uint8)
    return filled.astype(np.float32)
