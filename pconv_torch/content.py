"""What a hole holds: smooth shading, texture or edges, and held-out smooth crops.

Results per content kind (:func:`pconv_torch.results.kind_table`) split the held-out crops by
what the ground truth holds *inside the hole*, with one fixed rule, computed from the truth
alone (no method's output enters it):

1. The truth and its mask are brought to the analysis scale, 64x64 (a 2x2 mean for 128x128
   crops, and so on; a pixel is a hole pixel where the pooled mask is below 0.5), so that a
   crop gets the same kind at 64x64 and at 128x128.
2. Luminance ``Y = 0.299 R + 0.587 G + 0.114 B``; its gradient magnitude ``g`` per pixel
   (central differences, ``numpy.gradient``), in levels of [0, 1] per pixel of the 64x64 crop.
3. Over the hole pixels: ``p95`` = the 95th percentile of ``g`` (how strong the strongest
   structure is) and ``p50`` = its median (how busy the hole is everywhere).
4. **smooth** if ``p95 < SMOOTH_P95`` (0.02: no step of more than about 5 levels per pixel in
   nine tenths of the hole: skies, walls, out-of-focus backgrounds, soft gradients);
   **textured** if not smooth and ``p50 >= TEXTURE_RATIO * p95`` (0.25: the gradient is spread
   evenly over the hole: foliage, fur, gravel, undergrowth); **edges** otherwise (a few strong
   edges or outlines in an otherwise quiet hole: the cups' rims, roofs, horizons, a cloud's
   border).

The two thresholds were set once, as round numbers, from the distribution of ``p95`` and
``p50 / p95`` over the held-out crops (0.25 is about the median ratio of the crops that are not
smooth) and a look at the crops of each kind, before any method was scored per kind; they are
not tuned to favour a method. (An absolute threshold on ``p50`` was tried first and put the
dark forest and gravel crops among the edges.)

The six held-out photographs have few smooth holes, so :func:`soft_crops` adds held-out smooth
content kept apart from training by photograph: small crops (a fifth of the short side) on a
fixed grid over the same six held-out photographs whose centred hole the rule calls smooth.
They are crops of held-out photographs only, never of a training photograph
(``soft_crops(split="val")`` takes the same grid over the calibration photographs, for
calibrating the smooth fill, :func:`pconv_torch.smooth_gate.calibrate_fill`; ``"train"``
over the training photographs).

Images are (N, 3, H, W) float in [0, 1], masks (N, 1, H, W), 1 = valid, 0 = hole.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["LUMA", "KINDS", "SMOOTH_P95", "TEXTURE_RATIO", "ANALYSIS_SIZE", "hole_gradients",
           "content_kinds", "soft_crops"]

LUMA = (0.299, 0.587, 0.114)  # luminance weights of R, G, B (ITU-R 601, as PIL's convert("L"))
KINDS = ("smooth", "textured", "edges")
SMOOTH_P95 = 0.02
TEXTURE_RATIO = 0.25
ANALYSIS_SIZE = 64
# soft_crops: side of the crops as a fraction of a photograph's short side, and grid step
SOFT_FRACTION = 0.2
SOFT_STEP = 1.0  # of the crop's side: crops do not overlap


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, np.float64)


def _pool(x: np.ndarray, size: int) -> np.ndarray:
    """Mean-pool (N, C, H, W) to (N, C, size, size); H = W a multiple of ``size``."""
    n, c, h, w = x.shape
    if h != w or h % size:
        raise ValueError(f"crops must be square with a side that is a multiple of {size}, got {h}x{w}")
    f = h // size
    return x.reshape(n, c, size, f, size, f).mean(axis=(3, 5))


def hole_gradients(images, masks) -> dict:
    """The rule's two statistics per crop (see the module docstring): ``p95`` and ``p50`` of the
    truth's luminance gradient over the hole at the 64x64 analysis scale, (N,) float64 arrays
    (nan for a crop without a hole)."""
    x, m = _np(images), _np(masks)
    if x.ndim != 4 or x.shape[1] != 3 or m.shape != (x.shape[0], 1, *x.shape[2:]):
        raise ValueError(f"need images (N, 3, H, W) and masks (N, 1, H, W), got {x.shape}, {m.shape}")
    if x.shape[-1] != ANALYSIS_SIZE:
        x, m = _pool(x, ANALYSIS_SIZE), _pool(m, ANALYSIS_SIZE)
    y = sum(c * x[:, i] for i, c in enumerate(LUMA))
    gy, gx = np.gradient(y, axis=(1, 2))
    g = np.hypot(gx, gy)
    hole = m[:, 0] < 0.5
    p95, p50 = np.full(len(x), np.nan), np.full(len(x), np.nan)
    for i in range(len(x)):
        if hole[i].any():
            v = g[i][hole[i]]
            p95[i], p50[i] = np.percentile(v, 95), np.median(v)
    return {"p95": p95, "p50": p50}


def content_kinds(images, masks) -> np.ndarray:
    """Each crop's kind, ``"smooth"``, ``"textured"`` or ``"edges"``, by the rule of the module
    docstring, from the ground truth ``images`` inside the holes of ``masks``.
    Returns an (N,) array of str (``""`` for a crop without a hole)."""
    s = hole_gradients(images, masks)
    out = np.full(len(s["p95"]), "", dtype=object)
    out[s["p95"] < SMOOTH_P95] = "smooth"
    busy = s["p50"] >= TEXTURE_RATIO * s["p95"]
    out[(s["p95"] >= SMOOTH_P95) & busy] = "textured"
    out[(s["p95"] >= SMOOTH_P95) & ~busy] = "edges"
    return out.astype(str)


def _soft_grid(w: int, h: int):
    """(left, top, side) of the candidate crops of a w x h photograph."""
    side = int(round(min(w, h) * SOFT_FRACTION))
    step = max(1, int(round(side * SOFT_STEP)))
    return [(left, top, side) for top in range(0, h - side + 1, step)
            for left in range(0, w - side + 1, step)]


def soft_crops(size: int = 64, split: str = "test") -> tuple[torch.Tensor, list]:
    """Held-out smooth content: crops of the six held-out photographs
    (:data:`pconv_torch.data.EMBEDDED_TEST`; with ``split="train"`` or ``"val"`` of the
    training or the calibration photographs instead) on a fixed grid (side a fifth of the
    photograph's short side, side by side, not overlapping), kept where the rule calls the
    truth inside the centred hole of half the side smooth (judged at 64x64, so the same crops
    at every ``size``).

    Returns: images (N, 3, size, size) float32 in [0, 1], and for each
    ``(photograph name, left, top, side)`` in the photograph's pixels.
    """
    from .data import _photo, embedded_photographs
    from .imagefiles import _crop_to_tensor
    from .masks import centered_square_mask

    hole = centered_square_mask(ANALYSIS_SIZE)[None]
    picked, where = [], []
    for name, path in embedded_photographs(split)[0]:
        photo = _photo(path)
        boxes = _soft_grid(*photo.size)
        small = torch.stack([_crop_to_tensor(photo, *b, ANALYSIS_SIZE) for b in boxes])
        kinds = content_kinds(small, hole.expand(len(boxes), -1, -1, -1))
        for b, kind in zip(boxes, kinds):
            if kind == "smooth":
                picked.append(_crop_to_tensor(photo, *b, size))
                where.append((name, *b))
    if not picked:
        return torch.zeros((0, 3, size, size)), []
    return torch.stack(picked), where
