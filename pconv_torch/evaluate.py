"""Evaluation: one comparison table of metrics on composited outputs, timed per image.

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

Baselines and methods
---------------------
The classical baselines (``BASELINES``, :func:`make_baselines`: mean fill, OpenCV Telea and
Navier-Stokes, scikit-image biharmonic, the harmonic fill) are defined in
:mod:`pconv_torch.baselines`, a generator as a method (:func:`model_method`,
:func:`pad_to_multiple`) in :mod:`pconv_torch.methods`; both are re-exported here.

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

import numpy as np
import torch

from .baselines import (
    BASELINES,
    OPENCV_RADIUS,
    Method,
    biharmonic,
    make_baselines,
    mean_fill_method,
    navier_stokes,
    opencv_method,
    telea,
)
from .methods import model_method, pad_to_multiple
from .metrics import (
    PSNR_CAP,
    PairedDifference,
    _np64,
    checkerboard,
    colour_bias,
    detail,
    l1,
    paired_difference,
    per_image_scores,
    psnr,
    seam,
    ssim,
)
from .tables import render_table

__all__ = [
    "PSNR_CAP",
    "OPENCV_RADIUS",
    # re-exported from pconv_torch.metrics, pconv_torch.baselines and pconv_torch.methods
    "psnr",
    "ssim",
    "l1",
    "detail",
    "seam",
    "colour_bias",
    "checkerboard",
    "PairedDifference",
    "paired_difference",
    "mean_fill_method",
    "opencv_method",
    "telea",
    "navier_stokes",
    "biharmonic",
    "make_baselines",
    "BASELINES",
    "pad_to_multiple",
    "model_method",
    # defined here
    "evaluate",
    "paired_rows",
    "format_results",
    "default_test_set",
    "evaluate_default",
]

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
        per = {**per_image_scores(out, images, masks), "ms": np.asarray(times)}
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


def paired_rows(rows: list[dict], metric: str, with_idea: str, without: str) -> PairedDifference:
    """:func:`paired_difference` of two methods' per-image ``metric`` (``"psnr_hole"``,
    ``"ssim"``, ...) in :func:`evaluate`'s ``rows``; ValueError naming a method not there."""
    by = {r["method"]: r for r in rows}
    for name in (with_idea, without):
        if name not in by:
            raise ValueError(f"no row for method {name!r}; the rows hold {list(by)}")
    return paired_difference(by[with_idea]["per_image"][metric], by[without]["per_image"][metric])


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
    ``baselines``: True for all of them, False for none, or a list of ``BASELINES`` names.

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
