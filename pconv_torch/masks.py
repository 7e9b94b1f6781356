"""Hole masks: the poster's rectangles, a centred square, free-form strokes, masks from files.

Convention (fixed project-wide): **1 = valid (known) pixel, 0 = hole**, float32, shape
``(1, H, W)`` per mask and ``(N, 1, H, W)`` for a batch. The only place the opposite
convention appears is :func:`hole_from_image` (and :func:`mask_from_image`, its mask form),
which reads a user's mask *image* where white / non-zero marks the region to fill (OpenCV,
LaMa). Between a mask and a hole map ``(H, W)`` bool, True = fill, the one pair of
converters is :func:`hole_of` and :func:`valid_of`.

Families (``MASK_FAMILIES``) and their hole ratios at 128x128 (fraction of pixels that are
holes; ``RATIO_RANGES`` holds the same numbers, and the tests check that samples fall inside):

==========  ==================================================================  ============
family      what                                                                hole ratio
==========  ==================================================================  ============
``rect``    the poster's rectangle: height and width drawn independently        0.016-0.25
            and uniformly from 16..64 px (``size/8 .. size/2``), position
            uniform with the hole wholly inside the image
``center``  centred square of side ``size/2`` (evaluation; 64x64 at 128)        0.25
``thin``    free-form brush strokes, brush 3..6 px                              0.05-0.20
``medium``  free-form brush strokes, brush 7..14 px                             0.15-0.35
``thick``   free-form brush strokes, brush 15..26 px                            0.30-0.50
==========  ==================================================================  ============

Free-form strokes follow the spirit of DeepFill v2 and LaMa's thin / medium / thick
evaluation masks (random walks drawn with a round brush); the parameters here are our own,
chosen for 128x128 and scaled linearly with ``size``. A target ratio is drawn uniformly in
the family's range and strokes are added until the hole ratio reaches it; a stroke that would
overshoot the upper bound is discarded and redrawn (after 20 misses in a row the mask is
accepted if it is already in range), so every sample lies in its range.

Everything is deterministic given a seed (``numpy.random.Generator``). Fixed evaluation sets
are generated from a seed and saved as ``.npz`` (:func:`make_eval_masks`, :func:`save_masks`,
:func:`load_masks`, :func:`eval_mask_set`), so a file, not a random-number stream, is what
two machines compare against.

The local discriminator sees a ``box x box`` patch (64x64 at 128x128) around the hole:
:func:`local_boxes` gives its top-left corners, :func:`crop_boxes` cuts the patches.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageOps

from . import images as _images

__all__ = [
    "MASK_FAMILIES",
    "MaskFamily",
    "MaskChoice",
    "RATIO_RANGES",
    "rectangle_mask",
    "centered_square_mask",
    "stroke_mask",
    "sample_mask",
    "sample_masks",
    "mask_from_image",
    "hole_from_image",
    "hole_of",
    "valid_of",
    "hole_ratio",
    "ratio_stats",
    "hole_bbox",
    "local_boxes",
    "crop_boxes",
    "make_eval_masks",
    "save_masks",
    "load_masks",
    "eval_mask_set",
]

MaskFamily = Literal["rect", "center", "thin", "medium", "thick"]
MASK_FAMILIES: tuple[str, ...] = get_args(MaskFamily)
# what a training run may draw from: one family, or "mixed" (see sample_mask)
MaskChoice = Literal[MaskFamily, "mixed"]

# Hole-ratio ranges (closed intervals) per family; for ``rect`` they follow from the sides.
RATIO_RANGES = {
    "rect": ((1 / 8) ** 2, (1 / 2) ** 2),
    "center": (0.25, 0.25),
    "thin": (0.05, 0.20),
    "medium": (0.15, 0.35),
    "thick": (0.30, 0.50),
}

# Stroke parameters at 128x128 (lengths in pixels, scaled by size/128).
#   width: brush diameter range; vertices: segments per stroke; length: segment length range;
#   max_turn: largest change of direction between segments (radians).
_STROKES = {
    "thin": dict(width=(3, 6), vertices=(2, 8), length=(8, 32), max_turn=1.5),
    "medium": dict(width=(7, 14), vertices=(2, 6), length=(10, 36), max_turn=1.2),
    "thick": dict(width=(15, 26), vertices=(1, 4), length=(10, 40), max_turn=1.0),
}


def _rng(rng) -> np.random.Generator:
    """A Generator from a Generator, an int/sequence seed, or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _hw(size) -> tuple[int, int]:
    if isinstance(size, (tuple, list)):
        return int(size[0]), int(size[1])
    return int(size), int(size)


# --------------------------------------------------------------------------------------
# Generators (NumPy internally, torch at the public surface)
# --------------------------------------------------------------------------------------
def _rect_np(h: int, w: int, rng: np.random.Generator, min_side, max_side):
    lo = max(1, round(min(h, w) / 8)) if min_side is None else int(min_side)
    hi = max(lo, round(min(h, w) / 2)) if max_side is None else int(max_side)
    hh, ww = (int(v) for v in rng.integers(lo, hi + 1, size=2))
    y0 = int(rng.integers(0, h - hh + 1))
    x0 = int(rng.integers(0, w - ww + 1))
    m = np.ones((1, h, w), np.float32)
    m[:, y0 : y0 + hh, x0 : x0 + ww] = 0.0
    return m, (y0, x0, hh, ww)


def rectangle_mask(size=128, rng=None, min_side=None, max_side=None):
    """The poster's rectangular hole at a random size and position.

    Height and width are drawn independently and uniformly from ``min_side..max_side``
    (defaults ``size/8 .. size/2``: 16..64 at 128) and the top-left corner uniformly so that
    the hole lies wholly inside the image.

    Args:
        size: int or (H, W).
        rng: numpy Generator, seed, or None.
    Returns:
        mask: (1, H, W) float32 tensor, 1 = valid, 0 = hole.
        hole: (4,) int64 tensor ``(y0, x0, h, w)`` of the hole.
    """
    h, w = _hw(size)
    m, hole = _rect_np(h, w, _rng(rng), min_side, max_side)
    return torch.from_numpy(m), torch.tensor(hole, dtype=torch.int64)


def _center_np(h: int, w: int, side=None):
    side = min(h, w) // 2 if side is None else int(side)
    y0, x0 = (h - side) // 2, (w - side) // 2
    m = np.ones((1, h, w), np.float32)
    m[:, y0 : y0 + side, x0 : x0 + side] = 0.0
    return m


def centered_square_mask(size=128, side=None) -> torch.Tensor:
    """Centred square hole of side ``side`` (default ``size/2``: 64 at 128, ratio 0.25).

    Returns: (1, H, W) float32 tensor, 1 = valid, 0 = hole.
    """
    h, w = _hw(size)
    return torch.from_numpy(_center_np(h, w, side))


def _one_stroke(h, w, rng, width, vertices, length, max_turn, scale) -> np.ndarray:
    """Rasterise one random-walk stroke. Returns (H, W) bool, True = hole."""
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    bw = max(1, int(round(rng.uniform(*width) * scale)))
    n = int(rng.integers(vertices[0], vertices[1] + 1))
    pts = [(float(rng.uniform(0, w)), float(rng.uniform(0, h)))]
    angle = rng.uniform(0, 2 * np.pi)
    for _ in range(n):
        angle += rng.uniform(-max_turn, max_turn)
        ln = rng.uniform(*length) * scale
        x = float(np.clip(pts[-1][0] + ln * np.cos(angle), 0, w - 1))
        y = float(np.clip(pts[-1][1] + ln * np.sin(angle), 0, h - 1))
        pts.append((x, y))
    draw.line(pts, fill=255, width=bw, joint="curve")
    r = bw / 2
    for x, y in (pts[0], pts[-1]):  # round caps
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(img) > 0


def _stroke_np(h: int, w: int, family: str, rng: np.random.Generator) -> np.ndarray:
    p = _STROKES[family]
    lo, hi = RATIO_RANGES[family]
    scale = min(h, w) / 128.0
    while True:  # restarts are rare; each pass is bounded
        target = rng.uniform(lo, hi)
        hole, ratio, misses = np.zeros((h, w), bool), 0.0, 0
        for _ in range(400):
            new = hole | _one_stroke(h, w, rng, scale=scale, **p)
            r = float(new.mean())
            if r > hi:  # would overshoot: discard the stroke
                misses += 1
                if misses >= 20 and ratio >= lo:
                    break  # close enough to the target, already in range
                continue
            hole, ratio, misses = new, r, 0
            if ratio >= target:
                break
        if lo <= ratio <= hi:
            return (~hole)[None].astype(np.float32)


def stroke_mask(family: str = "medium", size=128, rng=None) -> torch.Tensor:
    """Free-form brush-stroke mask of family ``thin`` / ``medium`` / ``thick``.

    The hole ratio lies in ``RATIO_RANGES[family]`` (see the module table).
    Returns: (1, H, W) float32 tensor, 1 = valid, 0 = hole.
    """
    if family not in _STROKES:
        raise ValueError(f"stroke family must be one of {tuple(_STROKES)}, got {family!r}")
    h, w = _hw(size)
    return torch.from_numpy(_stroke_np(h, w, family, _rng(rng)))


def _sample_np(family: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    if family == "rect":
        return _rect_np(h, w, rng, None, None)[0]
    if family == "center":
        return _center_np(h, w)
    if family in _STROKES:
        return _stroke_np(h, w, family, rng)
    if family == "mixed":  # one of rect / thin / medium / thick, uniformly
        return _sample_np(("rect", "thin", "medium", "thick")[int(rng.integers(4))], h, w, rng)
    raise ValueError(f"unknown mask family {family!r}; expected one of {MASK_FAMILIES + ('mixed',)}")


def sample_mask(family: str = "rect", size=128, rng=None) -> torch.Tensor:
    """One mask of ``family`` (one of ``MASK_FAMILIES`` or ``"mixed"``).

    ``mixed`` draws rect / thin / medium / thick with equal probability (training on
    irregular holes, the poster's future work). Returns (1, H, W) float32, 1 = valid.
    """
    h, w = _hw(size)
    return torch.from_numpy(_sample_np(family, h, w, _rng(rng)))


def sample_masks(family: str, n: int, size=128, seed=0) -> torch.Tensor:
    """``n`` masks of ``family`` drawn from ``numpy.random.default_rng(seed)``.

    Returns: (N, 1, H, W) float32 tensor, 1 = valid, 0 = hole.
    """
    h, w = _hw(size)
    rng = _rng(seed)
    out = np.empty((n, 1, h, w), np.float32)
    for i in range(n):
        out[i] = _sample_np(family, h, w, rng)
    return torch.from_numpy(out)


# --------------------------------------------------------------------------------------
# Masks from files (the user's edge: white = hole)
# --------------------------------------------------------------------------------------
def _gray01(img: Image.Image) -> np.ndarray:
    """Any PIL image -> (H, W) float array in [0, 1]; transparent pixels count as black.
    16-bit, 32-bit and float images keep their full precision (a threshold sees exact values);
    every other mode goes through :func:`pconv_torch.images.flatten`."""
    if img.mode in _images.HIGH_BIT_MODES:
        a = np.asarray(img).astype(np.float64)
        if img.mode == "F":
            return a / 255.0 if a.max() > 1 else a
        return a / (65535.0 if a.max() > 255 else 255.0)
    gray = _images.flatten(img, "L", background=_images.BLACK)
    return np.asarray(gray).astype(np.float64) / 255.0


def hole_from_image(source, size=None, threshold: float = 0.5) -> np.ndarray:
    """Read a mask image where **white / non-zero = hole** as an (H, W) bool hole map.

    This is the one place the editing convention (OpenCV, LaMa) is read. Any mode is
    accepted (1, L, P, RGB, RGBA, LA, 16-bit); colour is reduced to luminance and transparent
    pixels count as black (not a hole). A pixel is a hole where its value in [0, 1] exceeds
    ``threshold`` (default 0.5, robust to JPEG noise; ``threshold=0`` means "non-zero").
    A file's EXIF orientation is applied, as for the image files it masks (a phone photo and
    a mask saved with it turn alike); a PIL image is used as stored.

    Args:
        source: path, PIL image, or (H, W) / (H, W, C) uint8 / float array in the same
            white = hole convention.
        size: None to keep the size, or int / (H, W) to resize (nearest neighbour,
            after binarising).
    Returns:
        (H, W) bool array, True = hole.
    """
    if isinstance(source, (str, os.PathLike)):
        with Image.open(source) as im:
            im.load()
            gray = _gray01(ImageOps.exif_transpose(im))
    elif isinstance(source, Image.Image):
        gray = _gray01(source)
    else:
        a = np.asarray(source)
        if a.ndim == 3:
            a = a[..., :3].mean(-1) if a.shape[-1] in (3, 4) else a[..., 0]
        gray = a.astype(np.float64) / (255.0 if a.dtype == np.uint8 else 1.0)
    hole = gray > threshold
    if size is not None:
        h, w = _hw(size)
        hole = np.asarray(Image.fromarray(hole).resize((w, h), Image.NEAREST))
    return hole


def mask_from_image(source, size=None, threshold: float = 0.5) -> torch.Tensor:
    """:func:`hole_from_image` as a mask: (1, H, W) float32 tensor, 1 = valid, 0 = hole."""
    return valid_of(hole_from_image(source, size, threshold))


def hole_of(mask) -> np.ndarray:
    """Mask (..., H, W), 1 = valid (tensor or array) -> bool array of the same shape, True =
    hole (``mask < 0.5``)."""
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    return np.asarray(mask) < 0.5


def valid_of(hole) -> torch.Tensor:
    """Hole map (H, W), True = hole -> (1, H, W) float32 tensor mask, 1 = valid."""
    return torch.from_numpy((~np.asarray(hole, bool))[None].astype(np.float32))


# --------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------
def hole_ratio(masks):
    """Fraction of hole pixels (mask < 0.5) per mask.

    Args: masks (1, H, W) or (N, 1, H, W), tensor or array, 1 = valid.
    Returns: float for one mask, (N,) float64 array for a batch.
    """
    m = masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    if m.ndim == 3:
        return float((m < 0.5).mean())
    return (m < 0.5).reshape(len(m), -1).mean(1)


def ratio_stats(masks, bins=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.0)) -> dict:
    """Summary of hole ratios of (N, 1, H, W) masks: mean, std, min, quartiles, max, histogram.

    The histogram counts masks per hole-ratio bin (LaMa/Liu-style buckets; last bin closed).
    """
    r = np.atleast_1d(hole_ratio(masks))
    counts, edges = np.histogram(r, bins=bins)
    q = np.quantile(r, [0.25, 0.5, 0.75])
    return {
        "n": int(r.size),
        "mean": float(r.mean()),
        "std": float(r.std()),
        "min": float(r.min()),
        "q25": float(q[0]),
        "median": float(q[1]),
        "q75": float(q[2]),
        "max": float(r.max()),
        "hist": {f"{a:.1f}-{b:.1f}": int(c) for a, b, c in zip(edges[:-1], edges[1:], counts)},
    }


# --------------------------------------------------------------------------------------
# The local discriminator's box
# --------------------------------------------------------------------------------------
def hole_bbox(mask):
    """Bounding box ``(y0, x0, y1, x1)`` (exclusive ends) of the holes of one (1, H, W) mask,
    or None if it has no hole."""
    m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    hole = m.reshape(m.shape[-2:]) < 0.5
    rows, cols = np.flatnonzero(hole.any(1)), np.flatnonzero(hole.any(0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def local_boxes(masks, box: int = 64, rng=None) -> torch.Tensor:
    """Top-left corners of the local discriminator's ``box x box`` patch for each mask.

    Rule: take the bounding box of all holes in the mask. With ``rng=None`` the patch is
    centred on it; with a Generator / seed the patch is placed uniformly among positions
    that contain the whole bounding box (Iizuka et al.'s random placement). Either way the
    patch is then clipped to the image. When the bounding box fits in ``box`` (always for
    the poster's rectangles, whose sides are at most 64 at 128) the patch contains every
    hole; for larger free-form masks it covers the centre of the holes' bounding box only.
    A mask with no hole gets the centred patch.

    Args:
        masks: (N, 1, H, W) tensor or array, 1 = valid.
        box: patch side (64 at 128x128).
    Returns:
        (N, 2) int64 tensor of ``(y0, x0)``.
    """
    m = masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    n, h, w = m.shape[0], m.shape[-2], m.shape[-1]
    if box > h or box > w:
        raise ValueError(f"box {box} larger than the image {h}x{w}")
    g = None if rng is None else _rng(rng)
    out = np.empty((n, 2), np.int64)
    for i in range(n):
        bb = hole_bbox(m[i])
        y0, x0, y1, x1 = bb if bb is not None else (h // 2, w // 2, h // 2, w // 2)
        corner = []
        for a, b, full in ((y0, y1, h), (x0, x1, w)):
            if g is not None and b - a <= box:
                lo, hi = max(0, b - box), min(a, full - box)
                c = int(g.integers(lo, hi + 1))
            else:
                c = (a + b - box) // 2
            corner.append(min(max(c, 0), full - box))
        out[i] = corner
    return torch.from_numpy(out)


def crop_boxes(x, boxes, box: int = 64):
    """Cut ``box x box`` patches at the given corners.

    Args:
        x: (N, C, H, W) tensor or array.
        boxes: (N, 2) ints ``(y0, x0)``, e.g. from :func:`local_boxes`.
    Returns:
        (N, C, box, box), same type as ``x`` (differentiable for tensors).
    """
    if len(boxes) != len(x):
        raise ValueError(f"{len(x)} images but {len(boxes)} boxes")
    if isinstance(x, torch.Tensor):
        # indices built on x's device: no host read of the corners (no synchronisation)
        b = torch.as_tensor(boxes).to(x.device, torch.long)
        offsets = torch.arange(box, device=x.device)
        rows, cols = b[:, :1] + offsets, b[:, 1:] + offsets  # (N, box) each
        n = torch.arange(len(x), device=x.device)[:, None, None]
        return x[n, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()
    b = np.asarray(boxes).tolist()
    return np.stack([x[i, :, y : y + box, xx : xx + box] for i, (y, xx) in enumerate(b)])


# --------------------------------------------------------------------------------------
# Fixed evaluation sets
# --------------------------------------------------------------------------------------
def make_eval_masks(family: str, n: int = 1000, size=128, seed: int = 2024) -> torch.Tensor:
    """A fixed evaluation set: ``n`` masks of ``family`` from ``default_rng([seed, k])``,
    ``k`` the family's index in ``MASK_FAMILIES`` (so families do not share a stream).

    Returns: (N, 1, H, W) float32 tensor, 1 = valid.
    """
    k = (MASK_FAMILIES + ("mixed",)).index(family)
    return sample_masks(family, n, size, seed=np.random.default_rng([seed, k]))


def save_masks(path, masks, **meta) -> Path:
    """Save (N, 1, H, W) masks (1 = valid) to a compressed ``.npz`` with metadata strings."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    m = masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    valid = np.packbits(m >= 0.5, axis=-1)
    meta_arr = {f"meta_{k}": np.asarray(str(v)) for k, v in meta.items()}
    np.savez_compressed(path, valid_bits=valid, shape=np.asarray(m.shape), **meta_arr)
    return path


def load_masks(path):
    """Load masks saved by :func:`save_masks`.

    Returns: ``(masks, meta)``: (N, 1, H, W) float32 tensor (1 = valid) and a dict of strings.
    """
    with np.load(path) as z:
        shape = tuple(int(s) for s in z["shape"])
        bits = np.unpackbits(z["valid_bits"], axis=-1, count=shape[-1])
        meta = {k[5:]: str(z[k]) for k in z.files if k.startswith("meta_")}
    return torch.from_numpy(bits.reshape(shape).astype(np.float32)), meta


def eval_mask_set(family: str, n: int = 1000, size=128, seed: int = 2024, cache_dir=None):
    """The fixed evaluation set for ``family``: loaded from ``cache_dir`` if saved there,
    else generated with :func:`make_eval_masks` (and saved when ``cache_dir`` is given).

    Returns: (N, 1, H, W) float32 tensor, 1 = valid.
    """
    h, w = _hw(size)
    if cache_dir is not None:
        path = Path(cache_dir) / f"masks_{family}_n{n}_{h}x{w}_seed{seed}.npz"
        if path.exists():
            return load_masks(path)[0]
    masks = make_eval_masks(family, n, (h, w), seed)
    if cache_dir is not None:
        save_masks(path, masks, family=family, n=n, size=f"{h}x{w}", seed=seed)
    return masks
