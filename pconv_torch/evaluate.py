"""Evaluation: classical baselines, a model as a method, and one comparison table of
metrics on composited outputs.

Conventions (project-wide): images are ``(3, H, W)`` or ``(N, 3, H, W)`` float32 in [0, 1],
channels-first, torch tensors (NumPy arrays are accepted wherever it costs nothing); masks
are ``(1, H, W)`` / ``(N, 1, H, W)``, **1 = valid (known) pixel, 0 = hole** (a pixel is a
hole where ``mask < 0.5``). What is scored is always the composite ``M*I + (1-M)*G``.

Metrics
-------
The metrics (``psnr``, ``ssim``, ``l1``, ``detail``, ``seam``, ``colour_bias``,
``checkerboard``, ``PairedDifference``, ``paired_difference``) are defined, with their
formulas, in :mod:`pconv_torch.metrics`; they are re-exported here, so ``evaluate.psnr`` and
the like keep working. :func:`evaluate` scores each method with ``psnr`` and ``l1`` over the
whole composite and over the hole only, and ``ssim`` over the whole image. Per-image PSNRs are
capped at ``PSNR_CAP = 100`` dB before averaging, so that one exact image (PSNR ``inf``) cannot
turn a mean into ``inf`` (8-bit quantisation alone already limits a real method to about
59 dB, so the cap never touches a meaningful value).

Baselines (``BASELINES``; each ``(image (3,H,W), mask (1,H,W)) -> (3,H,W)``, composited)
----------------------------------------------------------------------------------------
``"mean fill"``
    Holes set to the training set's per-channel mean (the generator's own input;
    :func:`make_baselines` takes the mean, ``BASELINES`` uses the embedded training
    photographs' mean, computed on first use).
``"OpenCV Telea"`` / ``"OpenCV Navier-Stokes"``
    ``cv2.inpaint(..., cv2.INPAINT_TELEA / cv2.INPAINT_NS)`` with ``inpaintRadius = 3`` px
    (``OPENCV_RADIUS``; the value in OpenCV's own examples: the neighbourhood each filled
    pixel is estimated from). OpenCV works on 8-bit images with an 8-bit mask where
    **255 = fill**; conversion happens at that edge only (``round(255*x)``, back ``/255``).
``"scikit-image biharmonic"``
    ``skimage.restoration.inpaint_biharmonic(image, hole, channel_axis=-1)`` in float64,
    clipped to [0, 1].
``"harmonic fill"``
    :func:`pconv_torch.harmonic.harmonic_fill`: every hole pixel the mean of its four
    neighbours (Laplace's equation), solved coarse to fine; the fill that the shipped
    generators correct (``Generator(residual=True)``).

Fairness: :func:`evaluate` hands every method the image with its holes **zeroed**, so no
method can see the ground truth it is scored against, and every method's output is
composited with the known pixels (baselines return valid pixels unchanged by construction).

Timing: wall clock (``time.perf_counter``) around each method call, one image at a time
(batch of 1, for every method alike), including the method's own conversions (to uint8 for
OpenCV, to the device and back for a model) but not the metric computation. One untimed
warm-up call per method comes first (first-call costs: allocator, oneDNN primitive
creation, CUDA context). A model runs in ``eval()`` mode under ``torch.no_grad()``.
The thread counts of torch and OpenCV are part of every row's ``timing`` note.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import torch

from .metrics import (
    PairedDifference,
    _np64,
    checkerboard,
    colour_bias,
    detail,
    l1,
    paired_difference,
    psnr,
    seam,
    ssim,
)
from .tables import render_table

__all__ = [
    "PSNR_CAP",
    "OPENCV_RADIUS",
    # re-exported from pconv_torch.metrics
    "psnr",
    "ssim",
    "l1",
    "detail",
    "seam",
    "colour_bias",
    "checkerboard",
    "PairedDifference",
    "paired_difference",
    # defined here
    "mean_fill_method",
    "opencv_method",
    "telea",
    "navier_stokes",
    "biharmonic",
    "make_baselines",
    "BASELINES",
    "pad_to_multiple",
    "model_method",
    "evaluate",
    "format_results",
    "default_test_set",
    "evaluate_default",
]

PSNR_CAP = 100.0
OPENCV_RADIUS = 3

Method = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------------------
# Classical baselines
# --------------------------------------------------------------------------------------
def _check_one(image, mask):
    """One image and mask as float32 NumPy arrays (3, H, W) and binary (1, H, W).

    The baselines work in NumPy: on a busy two-core machine torch's intra-op thread pool
    turns a 128x128 elementwise op into milliseconds (see ``pconv_torch.data.collate``),
    which would swamp the timings of the fast methods.
    """
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    image, mask = np.asarray(image, np.float32), np.asarray(mask)
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected one image (3, H, W), got {image.shape}")
    if mask.shape != (1, *image.shape[1:]):
        raise ValueError(f"mask {mask.shape} does not match image {image.shape}")
    return image, (mask >= 0.5).astype(np.float32)


def _composite_np(image: np.ndarray, mask: np.ndarray, fill: np.ndarray) -> torch.Tensor:
    """``M*I + (1-M)*fill`` of (3,H,W) / (1,H,W) arrays as a (3,H,W) float32 tensor; valid
    pixels are exactly ``image``'s (``where``, not arithmetic)."""
    return torch.from_numpy(np.where(mask >= 0.5, image, fill).astype(np.float32))


def _finish(image: np.ndarray, mask: np.ndarray, filled_hwc: np.ndarray) -> torch.Tensor:
    """(H, W, 3) fill -> clipped to [0, 1], composited (3, H, W) float32 tensor."""
    return _composite_np(image, mask, np.clip(filled_hwc, 0.0, 1.0).transpose(2, 0, 1))


class mean_fill_method:
    """Baseline: holes set to the training set's per-channel mean.

    ``mean``: (3,) values, or None for the embedded training photographs' mean
    (:meth:`pconv_torch.data.EmbeddedPhotos.fill_mean`, computed on first call).
    Call: ``(image (3,H,W), mask (1,H,W) 1 = valid) -> (3,H,W)`` float32 tensor.
    """

    def __init__(self, mean=None):
        self._mean = None if mean is None else np.asarray(mean, np.float32).reshape(3)

    @property
    def mean(self) -> np.ndarray:
        """(3,) float32."""
        if self._mean is None:
            from .data import EmbeddedPhotos

            self._mean = EmbeddedPhotos("train").fill_mean().numpy().astype(np.float32).reshape(3)
        return self._mean

    def __call__(self, image, mask) -> torch.Tensor:
        image, mask = _check_one(image, mask)
        return _composite_np(image, mask, self.mean.reshape(3, 1, 1))

    def __repr__(self) -> str:
        return f"mean_fill_method(mean={None if self._mean is None else self._mean.tolist()})"


def opencv_method(flag: int | str, radius: float = OPENCV_RADIUS) -> Method:
    """Baseline wrapping ``cv2.inpaint(src_u8, mask_u8, radius, flag)``.

    ``flag``: OpenCV's constant, or its name in ``cv2`` (``"INPAINT_TELEA"``), looked up on
    the first call, so that building the method does not import OpenCV.
    Our float image (3,H,W) in [0, 1] becomes (H, W, 3) uint8 ``round(255*x)`` (channel
    order does not matter to either algorithm: channels are filled independently with the
    same weights); our mask (1 = valid) becomes OpenCV's (H, W) uint8 with **255 = fill**.
    The result comes back ``/255`` and is composited, so valid pixels are exactly the input's.
    """

    def inpaint(image, mask) -> torch.Tensor:
        import cv2

        image, mask = _check_one(image, mask)
        src = np.clip(np.rint(image.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
        hole = np.where(mask[0] < 0.5, 255, 0).astype(np.uint8)
        code = getattr(cv2, flag) if isinstance(flag, str) else flag
        out = cv2.inpaint(np.ascontiguousarray(src), hole, float(radius), code)
        return _finish(image, mask, out.astype(np.float32) / 255.0)

    return inpaint


def telea(radius: float = OPENCV_RADIUS) -> Method:
    """OpenCV's fast-marching method (Telea 2004), ``cv2.INPAINT_TELEA``."""
    return opencv_method("INPAINT_TELEA", radius)


def navier_stokes(radius: float = OPENCV_RADIUS) -> Method:
    """OpenCV's Navier-Stokes method (Bertalmio et al. 2001), ``cv2.INPAINT_NS``."""
    return opencv_method("INPAINT_NS", radius)


def biharmonic(image, mask) -> torch.Tensor:
    """Baseline: ``skimage.restoration.inpaint_biharmonic(hwc, hole, channel_axis=-1)``
    (float64, clipped to [0, 1], composited).

    Args: image (3, H, W) in [0, 1]; mask (1, H, W), 1 = valid, 0 = hole.
    Returns: (3, H, W) float32 tensor.
    """
    from skimage.restoration import inpaint_biharmonic

    image, mask = _check_one(image, mask)
    hole = mask[0] < 0.5
    if not hole.any():
        return torch.from_numpy(image.copy())
    hwc = image.transpose(1, 2, 0).astype(np.float64)
    return _finish(image, mask, inpaint_biharmonic(hwc, hole, channel_axis=-1))


def harmonic(image, mask) -> torch.Tensor:
    """Baseline: the harmonic fill (:func:`pconv_torch.harmonic.harmonic_fill`), the smooth
    fill that ``Generator(residual=True)`` corrects (composited).

    Args: image (3, H, W) in [0, 1]; mask (1, H, W), 1 = valid, 0 = hole.
    Returns: (3, H, W) float32 tensor.
    """
    from .harmonic import harmonic_fill

    image, mask = _check_one(image, mask)
    x, m = torch.from_numpy(image)[None], torch.from_numpy(mask.astype(np.float32))[None]
    return (m * x + (1 - m) * harmonic_fill(x, m).clamp(0, 1))[0].float()


def make_baselines(mean=None, radius: float = OPENCV_RADIUS) -> dict[str, Method]:
    """The five classical baselines, by display name. ``mean``: (3,) training-set mean for
    mean fill (None: the embedded training photographs' mean); ``radius``: OpenCV's
    ``inpaintRadius`` in pixels."""
    return {
        "mean fill": mean_fill_method(mean),
        "OpenCV Telea": telea(radius),
        "OpenCV Navier-Stokes": navier_stokes(radius),
        "scikit-image biharmonic": biharmonic,
        "harmonic fill": harmonic,
    }


BASELINES: dict[str, Method] = make_baselines()


# --------------------------------------------------------------------------------------
# A model as a method
# --------------------------------------------------------------------------------------
def pad_to_multiple(image: torch.Tensor, mask: torch.Tensor, multiple: int = 16):
    """Pad bottom/right so H and W are multiples of ``multiple`` (edge replication for both
    image and mask, so a hole touching the border stays a hole in the padding).

    Args: image (N, 3, H, W), mask (N, 1, H, W).
    Returns: (image_padded, mask_padded, (H, W)) -- crop back with ``[..., :H, :W]``.
    """
    h, w = image.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return image, mask, (h, w)
    pad = (0, pw, 0, ph)
    f = torch.nn.functional.pad
    return f(image, pad, mode="replicate"), f(mask, pad, mode="replicate"), (h, w)


def model_method(generator, device="cpu", multiple: int = 16) -> Method:
    """Wrap a generator ``G(image (N,3,H,W), mask (N,1,H,W)) -> (N,3,H,W)`` as a method.

    The returned callable takes one image (3, H, W) and its mask (1, H, W) (1 = valid),
    runs ``G`` on a batch of 1 on ``device`` in eval mode under ``torch.no_grad()`` (any size:
    padded to a multiple of ``multiple`` by edge replication and cropped back), and returns
    the composite ``M*I + (1-M)*G(I)`` as a (3, H, W) float32 CPU tensor. Calling it puts
    the generator in eval mode (if it has ``.eval``).
    """
    device = torch.device(device)

    def run(image, mask) -> torch.Tensor:
        image, mask = _check_one(image, mask)
        if hasattr(generator, "eval"):
            generator.eval()
        x, m = torch.from_numpy(image[None]).to(device), torch.from_numpy(mask[None]).to(device)
        x, m, (h, w) = pad_to_multiple(x, m, multiple)
        with torch.no_grad():
            g = generator(x, m)[0, :, :h, :w].float().cpu().numpy()  # .cpu() synchronises CUDA
        return _composite_np(image, mask, np.clip(g, 0.0, 1.0))

    return run


# --------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------
COLUMNS = (  # (row key, header, format)
    ("psnr", "PSNR (dB)", "{:.2f}"),
    ("psnr_hole", "hole PSNR (dB)", "{:.2f}"),
    ("ssim", "SSIM", "{:.4f}"),
    ("l1", "L1", "{:.4f}"),
    ("l1_hole", "hole L1", "{:.4f}"),
    ("ms_per_image", "ms / image", "{:.1f}"),
)


def _nanmean(v: np.ndarray) -> float:
    """Mean over images that have a hole (nan entries skipped); nan if none has."""
    return float(np.nanmean(v)) if (~np.isnan(v)).any() else math.nan


def _timing_note() -> str:
    try:
        import cv2

        cv = f", OpenCV threads {cv2.getNumThreads()}"
    except ImportError:  # pragma: no cover
        cv = ""
    return ("wall clock per image (batch of 1, after one warm-up call; model in eval mode "
            f"under no_grad); torch threads {torch.get_num_threads()}{cv}")


def evaluate(methods: dict[str, Method], images, masks, progress: bool = False) -> list[dict]:
    """Score each method on every (image, mask) pair; one row per method.

    Each method is called as ``method(image * mask, mask)`` (holes zeroed: the ground truth
    under the hole is never shown), one image at a time; its output is composited with the
    known pixels and scored against ``images``.

    Args:
        methods: name -> callable ``(image (3,H,W), mask (1,H,W)) -> (3,H,W)``
            (see ``BASELINES``, :func:`model_method`).
        images: (N, 3, H, W) ground truth in [0, 1]; masks: (N, 1, H, W), 1 = valid, 0 = hole.
        progress: show a tqdm bar per method.
    Returns:
        list of dicts, in ``methods`` order, with keys ``method``, ``n``, ``psnr``,
        ``psnr_hole`` (means of per-image values capped at ``PSNR_CAP``), ``ssim``, ``l1``,
        ``l1_hole``, ``ms_per_image`` (mean), ``ms_median``, ``timing`` (how it was timed)
        and ``per_image`` (dict of (N,) arrays, times included, in ms).
    """
    images = np.asarray(_np64(images), np.float32)
    masks = (_np64(masks) >= 0.5).astype(np.float32)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W), got {images.shape}")
    if masks.shape != (images.shape[0], 1, *images.shape[2:]):
        raise ValueError(f"masks {masks.shape} do not match images {images.shape}")
    if len(images) == 0:
        raise ValueError("no images to evaluate")
    inputs = torch.from_numpy(images * masks)
    tmasks = torch.from_numpy(masks)
    note = _timing_note()
    rows = []
    for name, method in methods.items():
        method(inputs[0], tmasks[0])  # warm-up, untimed
        outs, times = [], []
        idx = range(len(images))
        if progress:
            from tqdm.auto import tqdm

            idx = tqdm(idx, desc=name, leave=False)
        for i in idx:
            t0 = time.perf_counter()
            out = method(inputs[i], tmasks[i])
            times.append((time.perf_counter() - t0) * 1e3)
            out = out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
            if out.shape != images[i].shape:
                raise ValueError(f"method {name!r} returned {out.shape}, expected {images[i].shape}")
            outs.append(np.where(masks[i] >= 0.5, images[i], out))
        out = np.stack(outs)
        per = {
            "psnr": psnr(out, images, max_db=PSNR_CAP),
            "psnr_hole": psnr(out, images, masks, max_db=PSNR_CAP),
            "ssim": ssim(out, images),
            "l1": l1(out, images),
            "l1_hole": l1(out, images, masks),
            "ms": np.asarray(times),
        }
        rows.append({
            "method": name,
            "n": len(images),
            "psnr": float(np.nanmean(per["psnr"])),
            "psnr_hole": _nanmean(per["psnr_hole"]),
            "ssim": float(per["ssim"].mean()),
            "l1": float(per["l1"].mean()),
            "l1_hole": _nanmean(per["l1_hole"]),
            "ms_per_image": float(np.mean(times)),
            "ms_median": float(np.median(times)),
            "timing": note,
            "per_image": per,
        })
    return rows


def format_results(rows: list[dict], title: str | None = None) -> str:
    """A Markdown table of :func:`evaluate`'s rows (readable as plain text too), with the
    number of images and how times were measured underneath."""
    header = ["method"] + [h for _, h, _ in COLUMNS]
    body = [[r["method"]] + [f.format(r[k]) for k, _, f in COLUMNS] for r in rows]
    out = ([f"**{title}**", ""] if title else []) + [render_table(header, body)]
    if rows:
        out += ["", f"{rows[0]['n']} images; PSNR / L1 over the whole composite and over the "
                f"hole only (data range 1; per-image PSNR capped at {PSNR_CAP:g} dB); SSIM: "
                "scikit-image, 7x7 window. Time: " + rows[0]["timing"] + "."]
    return "\n".join(out)


def default_test_set(n: int | None = None, mask_family: str = "rect", seed: int = 2024,
                     size: int = 128, cache_dir=None):
    """The fixed, seeded evaluation set: the embedded test split and a fixed mask set.

    Images: :class:`pconv_torch.data.EmbeddedPhotos` ``("test", size)`` (138 fixed crops of
    the six held-out photographs); with ``n`` < 138, ``n`` crops evenly spaced over the split
    (all photographs and all crop scales). Masks:
    :func:`pconv_torch.masks.eval_mask_set` ``(mask_family, n, size, seed, cache_dir)``;
    image ``i`` gets mask ``i``.

    Returns: images (N, 3, size, size), masks (N, 1, size, size) float32 tensors.
    """
    from .data import EmbeddedPhotos
    from .masks import eval_mask_set

    ds = EmbeddedPhotos("test", size=size)
    total = len(ds)
    n = total if n is None else int(n)
    if not 1 <= n <= total:
        raise ValueError(f"n must be in 1..{total} (the embedded test split), got {n}")
    idx = np.unique(np.linspace(0, total - 1, n).round().astype(int))
    images = torch.stack([ds[int(i)] for i in idx])
    masks = eval_mask_set(mask_family, n=len(idx), size=size, seed=seed, cache_dir=cache_dir)
    return images, masks


def evaluate_default(generator=None, n: int | None = None, mask_family: str = "rect",
                     seed: int = 2024, *, size: int = 128, device="cpu", model_name: str = "PConv GAN",
                     baselines: bool | list[str] = True, cache_dir=None, progress: bool = False):
    """The project's fixed evaluation: :func:`default_test_set` scored with
    :func:`evaluate` for the generator (if given) and the classical baselines.

    Mean fill uses ``generator.fill`` (the training mean the model itself fills with) when the
    generator has that buffer, else the embedded training photographs' mean.
    ``baselines``: True for all four, False for none, or a list of ``BASELINES`` names.

    Returns: ``(rows, table)``: :func:`evaluate`'s rows and :func:`format_results`' table.
    """
    images, masks = default_test_set(n, mask_family, seed, size, cache_dir)
    methods: dict[str, Method] = {}
    if generator is not None:
        methods[model_name] = model_method(generator, device)
    fill = getattr(generator, "fill", None)
    pool = make_baselines(mean=None if fill is None else _np64(fill).reshape(3))
    names = list(pool) if baselines is True else ([] if baselines is False else list(baselines))
    for name in names:
        if name not in pool:
            raise ValueError(f"unknown baseline {name!r}; choose from {list(pool)}")
        methods[name] = pool[name]
    if not methods:
        raise ValueError("nothing to evaluate: give a generator or baselines")
    rows = evaluate(methods, images, masks, progress=progress)
    title = (f"{len(images)} embedded test crops, {size}x{size}, mask family "
             f"{mask_family!r}, seed {seed}")
    return rows, format_results(rows, title=title)
