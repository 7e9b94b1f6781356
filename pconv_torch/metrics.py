"""Image-quality metrics for inpainting, on composited outputs.

Conventions (project-wide): images are ``(3, H, W)`` or ``(N, 3, H, W)`` float in [0, 1],
channels-first, torch tensors or NumPy arrays (computed in float64 NumPy); masks are
``(1, H, W)`` / ``(N, 1, H, W)``, **1 = valid (known) pixel, 0 = hole** (a pixel is a hole
where ``mask < 0.5``). What is scored is the composite ``M*I + (1-M)*G``. Every metric
works per image: a batch gives an ``(N,)`` float64 array (``colour_bias``: ``(N, 3)``), one
image a float. :mod:`pconv_torch.evaluate` scores methods with these functions (and
re-exports them, so ``evaluate.psnr`` and the like keep working).

Metrics
-------
``psnr(output, target)``
    ``10 * log10(1 / MSE)`` with data range 1, the MSE taken over all ``3*H*W`` values.
``psnr(output, target, mask)``
    The same over the hole only: the MSE over the ``3 * (#hole pixels)`` values where
    ``mask < 0.5``. The valid region does not enter at all (a composite is exact there, so
    whole-image PSNR grows with the valid fraction; the hole PSNR does not). ``nan`` for a
    mask without a hole.
    **Zero error**: the PSNR of identical images is ``inf`` (mathematically right, and what
    ``skimage.metrics.peak_signal_noise_ratio`` returns). ``max_db`` caps it instead;
    :func:`pconv_torch.evaluate.evaluate` averages per-image PSNRs capped at
    ``PSNR_CAP = 100`` dB so that one exact image cannot turn a mean
    into ``inf``. (8-bit quantisation alone already limits a real method to about 59 dB, so
    the cap never touches a meaningful value.)
``ssim(output, target)``
    ``skimage.metrics.structural_similarity(..., channel_axis=0, data_range=1)`` over the
    whole image: skimage's defaults, a 7x7 uniform window, the mean over the three channels.
``l1(output, target)`` / ``l1(output, target, mask)``
    Mean absolute error over the whole image (``3*H*W`` values) / over the hole only.
``detail(images, mask)``
    Mean absolute difference between neighbouring pixels (right and down neighbours, all
    channels) over the pairs wholly inside the hole: how busy a fill is (a blur scores low).
    Compare a fill's value with the truth's.
``seam(output, target, mask)``
    Mean ``|a - b|`` over the neighbour pairs that cross the hole's border (one pixel in the
    hole, one valid), for ``output`` minus the same for ``target``: a visible rim scores
    above 0.
``colour_bias(output, target, mask)``
    Mean signed error ``output - target`` per channel in the hole, ``(N, 3)``: a systematic
    colour cast.
``checkerboard(images, mask)``
    Mean over hole pixels (x 3 channels) of ``|x[i,j] - x[i,j+1] - x[i+1,j] + x[i+1,j+1]| / 4``
    (0 on the last row and column): the strength of the 2-pixel checkerboard pattern.
``period_energy(images, mask, periods=(8, 16))``
    Blockiness: how strongly the steps between neighbouring pixels inside the hole repeat
    every 8 and 16 px *on one grid*, as the edges of squares enlarged from a coarse grid do.
    Along every horizontal and vertical run of hole pixels at least ``max(periods) + 1`` long,
    the steps ``d[n] = mean over channels |x[n+1] - x[n]|`` have their best quadratic (least
    squares) removed. For each direction and period ``p``, ``c = sum d[n] exp(-2 pi i k / p)
    / L`` over all runs' steps, ``k`` the step's column (row) in the image and ``L`` the number
    of steps, so that steps lining up from row to row add up and steps at random places (the
    texture of a photograph) mostly cancel; the energy is ``2 |c|^2``, summed over ``periods``
    and averaged over the two directions (weighted by ``L``). A step of height ``h`` every
    ``p`` px on one grid gives about ``2 (h/p)^2``; a smooth fill almost 0. Compare a fill's
    value with the truth's (the results tables report the mean over the crops of the fill's
    over the truth's mean: the truth scores 1, a smooth fill near 0, a grid of squares above).

Paired comparison
-----------------
``paired_difference(with_idea, without)``
    Per-image differences ``d = with_idea - without`` of one metric's ``(N,)`` scores on the
    same images, as a :class:`PairedDifference`: ``mean`` of ``d``, its standard error
    ``se = sd(d, ddof=1) / sqrt(N)`` and ``wins`` (images on which ``with_idea`` is better).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "psnr",
    "ssim",
    "l1",
    "detail",
    "seam",
    "colour_bias",
    "checkerboard",
    "period_energy",
    "PairedDifference",
    "paired_difference",
    "PSNR_CAP",
    "per_image_scores",
    "mean_and_two_se",
]


# Per-image PSNRs are capped at this many dB before averaging (module docstring).
PSNR_CAP = 100.0


# --------------------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------------------
def _np64(x) -> np.ndarray:
    """Tensor or array -> float64 NumPy array (a copy only where needed)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _batched(output, target, mask=None):
    """Returns (out (N,3,H,W), tgt (N,3,H,W), hole (N,1,H,W) bool or None, single: bool)."""
    out, tgt = _np64(output), _np64(target)
    if out.shape != tgt.shape:
        raise ValueError(f"output {out.shape} and target {tgt.shape} differ in shape")
    if out.ndim not in (3, 4):
        raise ValueError(f"expected (3, H, W) or (N, 3, H, W), got {out.shape}")
    single = out.ndim == 3
    if single:
        out, tgt = out[None], tgt[None]
    hole = None
    if mask is not None:
        m = _np64(mask)
        if m.ndim == 3 and single:
            m = m[None]
        if m.ndim != 4 or m.shape[1] != 1 or m.shape[0] != out.shape[0] or m.shape[2:] != out.shape[2:]:
            raise ValueError(f"mask {m.shape} does not match images {out.shape} (need (N, 1, H, W))")
        hole = m < 0.5
    return out, tgt, hole, single


def _per_image(err: np.ndarray, hole) -> np.ndarray:
    """Mean of ``err`` (N,3,H,W) per image, over everything or over hole pixels x 3 channels.
    Images without a hole give nan."""
    n = err.shape[0]
    if hole is None:
        return err.reshape(n, -1).mean(1)
    w = np.broadcast_to(hole, err.shape).reshape(n, -1)
    count = w.sum(1)
    total = np.where(w, err.reshape(n, -1), 0.0).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _ret(v: np.ndarray, single: bool):
    return float(v[0]) if single else v


# --------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------
def psnr(output, target, mask=None, max_db: float | None = None):
    """Peak signal-to-noise ratio in dB, data range 1, per image.

    Args:
        output, target: (3, H, W) or (N, 3, H, W) in [0, 1], tensors or arrays.
        mask: None for the whole image, or (1, H, W) / (N, 1, H, W), 1 = valid, 0 = hole:
            then the MSE is over the hole only (hole pixels x 3 channels).
        max_db: None to return ``inf`` for zero error, or a cap in dB.
    Returns:
        float for one image, (N,) float64 array for a batch; ``nan`` where the mask has no hole.
    """
    out, tgt, hole, single = _batched(output, target, mask)
    mse = _per_image((out - tgt) ** 2, hole)
    with np.errstate(divide="ignore", invalid="ignore"):
        db = np.where(mse > 0, -10.0 * np.log10(np.where(mse > 0, mse, 1.0)), np.inf)
    db = np.where(np.isnan(mse), np.nan, db)
    if max_db is not None:
        db = np.minimum(db, max_db)
    return _ret(db, single)


def ssim(output, target):
    """Structural similarity over the whole image, per image:
    ``skimage.metrics.structural_similarity(o, t, channel_axis=0, data_range=1.0)``
    (7x7 uniform window, mean over channels and pixels).

    Args:
        output, target: (3, H, W) or (N, 3, H, W) in [0, 1]; H, W >= 7.
    Returns: float for one image, (N,) float64 array for a batch.
    """
    from skimage.metrics import structural_similarity

    out, tgt, _, single = _batched(output, target)
    v = np.array([structural_similarity(o, t, channel_axis=0, data_range=1.0)
                  for o, t in zip(out, tgt)])
    return _ret(v, single)


def l1(output, target, mask=None):
    """Mean absolute error per image: over all 3*H*W values, or with ``mask`` (1 = valid,
    0 = hole) over the hole pixels x 3 channels only (``nan`` for a mask without a hole).

    Args:
        output, target: (3, H, W) or (N, 3, H, W); mask (1, H, W) / (N, 1, H, W) or None.
    Returns: float for one image, (N,) float64 array for a batch.
    """
    out, tgt, hole, single = _batched(output, target, mask)
    return _ret(_per_image(np.abs(out - tgt), hole), single)


def _pairs(x: np.ndarray, hole: np.ndarray):
    """Horizontal and vertical neighbour pairs of (N, C, H, W) ``x``: yields
    ``(x_a, x_b, hole_a, hole_b)`` for (right, down) neighbours, hole (N, 1, H, W) bool."""
    yield x[..., :, 1:], x[..., :, :-1], hole[..., :, 1:], hole[..., :, :-1]
    yield x[..., 1:, :], x[..., :-1, :], hole[..., 1:, :], hole[..., :-1, :]


def detail(images, masks):
    """How much is going on inside the hole: the mean absolute difference between
    neighbouring pixels (right and down neighbours, all channels) over the pairs that lie
    wholly inside the hole. A blur scores low; the truth's value is the target.

    Args: images (N, 3, H, W) or (3, H, W); masks (N, 1, H, W) / (1, H, W), 1 = valid.
    Returns: (N,) float64 (float for one image); nan where no pair lies inside a hole.
    """
    x, _, hole, single = _batched(images, images, masks)
    total, count = np.zeros(len(x)), np.zeros(len(x))
    for a, b, ha, hb in _pairs(x, hole):
        both = np.broadcast_to(ha & hb, a.shape)
        total += np.where(both, np.abs(a - b), 0).reshape(len(x), -1).sum(1)
        count += both.reshape(len(x), -1).sum(1)
    with np.errstate(invalid="ignore"):
        return _ret(np.where(count > 0, total / np.maximum(count, 1), np.nan), single)


def seam(output, target, masks):
    """Visibility of the hole's border: the mean absolute step between each hole pixel and its
    valid neighbour (pairs that cross the border), for ``output`` minus the same for
    ``target``. 0 = the border is as (in)visible as in the truth; a rim or a tinted patch
    gives a positive value (a fill smoother across the border than the truth, negative).

    Args: output, target (N, 3, H, W); masks (N, 1, H, W), 1 = valid.
    Returns: (N,) float64 in units of the data range (x 255 for 8-bit levels).
    """
    out, tgt, hole, single = _batched(output, target, masks)
    total, count = np.zeros(len(out)), np.zeros(len(out))
    for (a, b, ha, hb), (ta, tb, _, _) in zip(_pairs(out, hole), _pairs(tgt, hole)):
        cross = np.broadcast_to(ha != hb, a.shape)
        step = np.abs(a - b) - np.abs(ta - tb)
        total += np.where(cross, step, 0).reshape(len(out), -1).sum(1)
        count += cross.reshape(len(out), -1).sum(1)
    with np.errstate(invalid="ignore"):
        return _ret(np.where(count > 0, total / np.maximum(count, 1), np.nan), single)


def colour_bias(output, target, masks):
    """Colour cast of a fill: per image and channel, the mean of ``output - target`` over the
    hole. Averaged over many images, a channel that stays away from 0 is a systematic cast
    (e.g. fills too pink: green below 0).

    Args: output, target (N, 3, H, W); masks (N, 1, H, W), 1 = valid.
    Returns: (N, 3) float64 (nan rows for images without a hole).
    """
    out, tgt, hole, _ = _batched(output, target, masks)
    n = len(out)
    w = np.broadcast_to(hole, out.shape).reshape(n, 3, -1)
    d = (out - tgt).reshape(n, 3, -1)
    count = w.sum(2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(w, d, 0).sum(2) / np.maximum(count, 1), np.nan)


def checkerboard(images, masks):
    """Strength of the 2-pixel checkerboard pattern in the hole: per image, the mean over hole
    pixels (x 3 channels) of ``|x[i,j] - x[i,j+1] - x[i+1,j] + x[i+1,j+1]| / 4`` (0 on the last
    row and column). Real texture has some of it; a generator's checkerboard artefacts add more.

    Args: images (N, 3, H, W) or (3, H, W); masks (N, 1, H, W) / (1, H, W), 1 = valid.
    Returns: (N,) float64 (float for one image); nan for images without a hole.
    """
    x, _, hole, single = _batched(images, images, masks)
    if hole is None:
        raise ValueError("checkerboard needs masks (it measures inside the hole)")
    pattern = np.zeros_like(x)
    pattern[:, :, :-1, :-1] = np.abs(x[:, :, :-1, :-1] - x[:, :, :-1, 1:]
                                     - x[:, :, 1:, :-1] + x[:, :, 1:, 1:]) / 4
    return _ret(_per_image(pattern, hole), single)


_DETREND: dict = {}


def _detrend_matrix(n: int) -> np.ndarray:
    """(n, n) matrix removing the least-squares quadratic from a length-n signal."""
    if n not in _DETREND:
        t = np.linspace(-1, 1, n)
        v = np.stack([np.ones(n), t, t * t], 1)
        _DETREND[n] = np.eye(n) - v @ np.linalg.pinv(v)
    return _DETREND[n]


def _runs(line: np.ndarray, min_len: int):
    """(start, stop) of the runs of True in a 1-D bool array at least ``min_len`` long."""
    d = np.diff(np.concatenate([[0], line.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [(a, b) for a, b in zip(starts, stops) if b - a >= min_len]


def period_energy(images, masks, periods=(8, 16)):
    """Blockiness of ``images`` inside the hole, per image: the energy at the given periods
    (px) of the steps between neighbouring hole pixels, in phase with the image's grid (the
    module docstring has the definition).

    Args: images (N, 3, H, W) or (3, H, W); masks (N, 1, H, W) / (1, H, W), 1 = valid.
    Returns: (N,) float64 (float for one image); nan where no run is long enough.
    """
    x, _, hole, single = _batched(images, images, masks)
    if hole is None:
        raise ValueError("period_energy needs masks (it measures inside the hole)")
    min_len = int(max(periods)) + 1
    out = np.full(len(x), np.nan)
    for i in range(len(x)):
        total, count = 0.0, 0
        for img, h in ((x[i], hole[i, 0]), (x[i].transpose(0, 2, 1), hole[i, 0].T)):
            sums, n_steps = np.zeros(len(periods), complex), 0
            for r in range(h.shape[0]):
                for a, b in _runs(h[r], min_len):
                    steps = np.abs(np.diff(img[:, r, a:b], axis=1)).mean(0)  # (b - a - 1,)
                    d = _detrend_matrix(len(steps)) @ steps
                    k = np.arange(a, a + len(steps))
                    sums += [(d * np.exp(-2j * np.pi * k / p)).sum() for p in periods]
                    n_steps += len(steps)
            if n_steps:
                total += float((2 * np.abs(sums / n_steps) ** 2).sum()) * n_steps
                count += n_steps
        if count:
            out[i] = total / count
    return _ret(out, single)


@dataclass(frozen=True)
class PairedDifference:
    """Per-image differences ``d = with_idea - without`` of one metric on the same images."""

    differences: np.ndarray  # (N,) float64

    @property
    def n(self) -> int:
        return len(self.differences)

    @property
    def mean(self) -> float:
        """Mean difference over the images."""
        return float(np.mean(self.differences))

    @property
    def se(self) -> float:
        """Standard error of the mean: sd(d, ddof=1) / sqrt(n) (spread over images only)."""
        return float(np.std(self.differences, ddof=1) / math.sqrt(self.n))

    @property
    def two_se(self) -> float:
        """Two standard errors: the half-width of the mean's rough 95% interval."""
        return 2 * self.se

    def wins(self, higher_is_better: bool = True) -> int:
        """Images on which ``with_idea`` scores better."""
        d = self.differences
        return int((d > 0).sum() if higher_is_better else (d < 0).sum())

    def verdict(self, higher_is_better: bool = True) -> str:
        """Whether the idea helps on these images: ``"holds here"`` when the mean difference
        is more than two standard errors in the better direction, ``"opposite here"`` when
        it is that far in the worse one, else ``"not seen at this scale"``."""
        signed = self.mean if higher_is_better else -self.mean
        if signed > self.two_se:
            return "holds here"
        return "opposite here" if signed < -self.two_se else "not seen at this scale"


def mean_and_two_se(values) -> tuple[float, float]:
    """Mean of (N,) values (N >= 2) and two standard errors of it, ``2 sd(ddof=1) / sqrt(N)``."""
    v = np.asarray(values, np.float64)
    return float(v.mean()), float(2 * v.std(ddof=1) / np.sqrt(len(v)))


def paired_difference(with_idea, without) -> PairedDifference:
    """Pair two methods' per-image scores of one metric: ``with_idea``, ``without`` (N,)
    arrays on the same N images (e.g. :func:`psnr` of two models). Raises ValueError for
    different lengths, fewer than 2 images or non-finite scores."""
    a, b = np.asarray(with_idea, np.float64), np.asarray(without, np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"need two (N,) score arrays with N >= 2, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("scores must be finite (an image without a hole gives nan)")
    return PairedDifference(a - b)


def per_image_scores(output, target, masks) -> dict:
    """The scores every comparison reports, per image, of composites ``output`` against
    ``target`` ((N, 3, H, W) in [0, 1]; ``masks`` (N, 1, H, W), 1 = valid): ``psnr`` and
    ``psnr_hole`` (dB, capped at :data:`PSNR_CAP`), ``ssim`` (whole image), ``l1`` and
    ``l1_hole``; each an (N,) float64 array (nan in the hole scores of an image without
    hole)."""
    return {
        "psnr": psnr(output, target, max_db=PSNR_CAP),
        "psnr_hole": psnr(output, target, masks, max_db=PSNR_CAP),
        "ssim": ssim(output, target),
        "l1": l1(output, target),
        "l1_hole": l1(output, target, masks),
    }
