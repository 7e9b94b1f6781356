"""Inpainting a photograph of any size with a trained generator, in bounded memory.

A generator is trained at one scale (the shipped models: 64x64 crops with holes of up to half
the side, the default ``full`` among them, and ``full_128`` at 128x128). A phone
photograph is 4000x3000 with a hole somewhere in it. :func:`inpaint` does not run the network
on the whole photograph. For each hole (a connected region of the mask,
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

Known pixels are returned unchanged, bit for bit: the result has the input's layout, dtype and
(for PIL images) mode, so RGBA keeps its alpha channel, 16-bit grayscale its 16 bits; only the
colour of hole pixels is replaced. Inputs whose known pixels could not be kept are refused
(16-bit colour files, which the image reader would truncate to 8 bits; CMYK and other modes).
Files read with :func:`read_image` and ``mask_from_image`` are turned upright by their EXIF
orientation, each by its own; PIL images passed in are used as stored.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from scipy import ndimage

__all__ = ["inpaint", "read_image", "fill_holes", "context_windows", "poisson_blend"]


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601, as PIL's convert("L")
_SAME_MODES = ("L", "LA", "RGB", "RGBA")  # kept as they are, 8 bits per channel
_EXPANDED_MODES = {"1": "L", "P": "RGB", "PA": "RGBA"}  # expanded losslessly


def _pixels(image) -> np.ndarray:
    """PIL image or array -> the array whose known pixels :func:`inpaint` returns unchanged.

    PIL modes L, LA, RGB, RGBA give uint8 (H, W) / (H, W, 2 | 3 | 4); 16-bit grayscale
    (I;16, or I with values in 0..65535) gives uint16 (H, W); 1, P and PA are expanded
    losslessly to L, RGB (RGBA when the palette has transparency) and RGBA. Other modes
    (CMYK, YCbCr, LAB, HSV, F, ...) raise ValueError: converting them would change the known
    pixels. Arrays are returned as they are (checked by :func:`_rgb01`).
    """
    if not isinstance(image, Image.Image):
        return np.asarray(image)
    mode = image.mode
    if mode in _EXPANDED_MODES:
        target = _EXPANDED_MODES[mode]
        if mode == "P" and "transparency" in image.info:
            target = "RGBA"
        image, mode = image.convert(target), target
    if mode in _SAME_MODES:
        return np.asarray(image)
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(image)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise ValueError(f"a 32-bit integer image (mode I) must hold 16-bit values "
                             f"0..65535, got [{a.min()}, {a.max()}]")
        return a.astype(np.uint16)
    raise ValueError(f"image mode {mode} is not supported (known pixels could not be returned "
                     "unchanged); convert it to RGB first")


def _rgb01(a: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 2 | 3 | 4) uint8, uint16 or float in [0, 1] -> (H, W, 3) float32 in
    [0, 1], the generator's input: grayscale repeated, alpha left out (colours as stored)."""
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"image must be (H, W, 3) (or RGBA, gray + alpha or grayscale), got "
                         f"shape {a.shape}")
    a = a[..., :1] if a.shape[2] <= 2 else a[..., :3]
    if a.dtype == np.uint8 or a.dtype == np.uint16:
        rgb = a.astype(np.float32) / np.float32(np.iinfo(a.dtype).max)
    elif np.issubdtype(a.dtype, np.floating):
        rgb = a.astype(np.float32)
        if not np.isfinite(rgb).all():
            raise ValueError("image contains NaN or infinite values")
        if rgb.size and (rgb.min() < 0 or rgb.max() > 1):
            raise ValueError(f"a float image must lie in [0, 1], got [{rgb.min():.3g}, "
                             f"{rgb.max():.3g}]")
    else:
        raise ValueError(f"image must be uint8, uint16 or float in [0, 1], got dtype {a.dtype}")
    return np.repeat(rgb, 3, axis=2) if rgb.shape[2] == 1 else rgb


def _merge(a: np.ndarray, fill: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``a`` with the colour of its hole pixels replaced by ``fill``; everything else (known
    pixels, alpha everywhere) is a copy of ``a``.

    Args: a (H, W) or (H, W, C) as from :func:`_pixels`; fill (H, W, 3) float in [0, 1] (reduced
        to luminance for grayscale); hole (H, W) bool, True = fill.
    Returns: array of ``a``'s shape and dtype.
    """
    values = np.asarray(fill, np.float32)[hole]  # (K, 3)
    if not np.isfinite(values).all():
        raise ValueError("the fill contains NaN or infinite values (corrupt or diverged "
                         "weights); nothing was written")
    values = np.clip(values, 0.0, 1.0)
    gray = a.ndim == 2 or a.shape[2] <= 2
    if gray:
        values = values @ _LUMA
    if np.issubdtype(a.dtype, np.integer):
        top = np.iinfo(a.dtype).max
        values = np.clip(np.rint(values * top), 0, top)
    out = a.copy()
    if a.ndim == 2:
        out[hole] = values.astype(a.dtype)
    elif gray:
        out[hole, 0] = values.astype(a.dtype)
    else:
        out[hole, :3] = values.astype(a.dtype)
    return out


def read_image(path) -> np.ndarray:
    """One image file as :func:`inpaint` takes and returns it, with its EXIF orientation
    applied (as :func:`pconv_torch.masks.mask_from_image` applies a mask file's).

    Returns: uint8 (H, W) | (H, W, 2 | 3 | 4) or uint16 (H, W) for 16-bit grayscale; see
    :func:`_pixels` for the modes. ``PIL.Image.fromarray`` turns a result back into the
    file's mode.
    Raises ValueError for 16-bit colour images (the image reader keeps only 8 bits of them)
    and unsupported modes; PIL's errors for unreadable files.
    """
    with Image.open(path) as im:
        raw = im.tile[0][3] if im.tile else ""
        raw = raw if isinstance(raw, str) else str(raw[0]) if raw else ""
        if im.mode in ("RGB", "RGBA", "LA") and "16" in raw:
            raise ValueError(f"16-bit {im.mode} images are not supported (they would be read "
                             "with 8 bits per channel); save it with 8 bits per channel, or "
                             "as 16-bit grayscale")
        im.load()
        return _pixels(ImageOps.exif_transpose(im))


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


def inpaint(image, mask, model=None, device="cpu", blend: str | None = "poisson",
            method: str | None = None):
    """Fill the region that ``mask`` marks in ``image`` with a trained generator (or, with
    ``method``, a classical method).

    Args:
        image: any size; an (H, W, 3) array (also (H, W, 4) RGBA, (H, W, 2) gray + alpha or
            (H, W) grayscale) of uint8, uint16 or float in [0, 1], or a PIL image (L, LA, RGB,
            RGBA, 16-bit grayscale; 1, P and PA are expanded to L, RGB(A); other modes are
            refused).
        mask: (H, W) array or PIL image; **non-zero / white = region to fill**. PIL images
            are used as stored: apply ``PIL.ImageOps.exif_transpose`` to both or to neither
            (:func:`read_image` and ``mask_from_image`` apply each file's orientation).
        model: a shipped model's name (see :func:`pconv_torch.pretrained`), a training run
            directory or checkpoint file (:func:`pconv_torch.checkpoint.load_generator`), a
            generator module, or None for the default shipped model
            (:func:`pconv_torch.shipped.default_model_name`: ``full``).
        device: where the generator runs.
        blend: ``"poisson"`` (default) blends each fill into its surroundings
            (:func:`poisson_blend`); None pastes the generator's fill as it is.
        method: None (a generator), or the name of a classical method of
            :data:`pconv_torch.evaluate.BASELINES` (``"OpenCV Telea"``, ``"harmonic fill"``,
            ...) to fill the hole with instead, at the image's own size (``model``, ``device``
            and ``blend`` are then unused).
    Returns:
        the inpainted image as an array of the input's layout and dtype (for a PIL image:
        ``np.asarray`` of it, after the expansions above; ``Image.fromarray`` gives its mode
        back). Known pixels are returned unchanged, bit for bit, and so is the alpha channel
        of every pixel: only the colour of hole pixels is replaced (for grayscale, by the
        fill's luminance). The generator sees the colour channels as stored (alpha is not
        composited) scaled to [0, 1], 16-bit values included.

    Raises ValueError naming the problem for bad shapes, modes or dtypes, an empty or full
    mask, non-finite values (in the image or the generator's output), an unknown model name
    or an unknown method.
    """
    from .shipped import default_model_name, pretrained

    pixels = _pixels(image)
    arr = _rgb01(pixels)
    hole = _hole_array(mask, arr.shape[:2])
    if method is not None:
        from .evaluate import BASELINES

        if method not in BASELINES:
            raise ValueError(f"unknown method {method!r}; choose one of {list(BASELINES)}")
        valid = torch.from_numpy((~hole).astype(np.float32))[None]
        fill = BASELINES[method](torch.from_numpy(arr).permute(2, 0, 1) * valid, valid)
        return _merge(pixels, fill.permute(1, 2, 0).numpy(), hole)
    if model is None or (isinstance(model, str) and model in pretrained()):
        model = pretrained(model or default_model_name())
    elif isinstance(model, (str, os.PathLike)):
        if not Path(model).exists():
            raise ValueError(f"model {str(model)!r} is neither a shipped model "
                             f"({', '.join(pretrained())}) nor a run directory or checkpoint")
        from .checkpoint import load_generator

        model = load_generator(model)
    # the scale it was trained at (shipped models and load_generator record it)
    scale = int(getattr(model, "image_size", 0)) or 2 ** (model.depth + 2)
    filled = fill_holes(model.to(device), arr, hole, scale, device, blend)
    return _merge(pixels, filled, hole)
