"""Generalisation measured while training: fixed crops scored at fixed steps.

A network that learns its training photographs by heart can look good on its own crops and
fail on every other photograph. :class:`GeneralisationMonitor` makes that visible: at every
``eval_every`` steps (and at the end of each phase) the trainer scores the generator on

* ``heldout``: crops of the held-out photographs, which no training crop comes from, and
* ``train``: the same number of fixed crops of the *training* photographs,

each with two fixed mask sets, ``center`` (the 32x32 hole at 64x64: a quarter of the image)
and ``rect`` (the poster's random rectangles). Rows go to ``eval.csv`` in the run directory;
the classical methods' scores on the same crops and masks are written once, at step 0, as
reference lines. The gap between the ``train`` and ``heldout`` curves is the overfitting.

Scores are those of :func:`pconv_torch.metrics.per_image_scores` on composites ``M*I + (1-M)*G(I)``: hole PSNR
(dB), SSIM (whole image) and hole L1. Masks: 1 = valid, 0 = hole.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from . import data as _data
from . import evaluate as _evaluate
from .baselines import make_baselines
from .methods import batched, composites, generator_method
from .metrics import per_image_scores

__all__ = ["GeneralisationMonitor", "EVAL_FIELDS", "read_eval_log", "REFERENCE_METHODS", "plot_curves"]

EVAL_FIELDS = ["step", "phase", "method", "split", "masks", "psnr_hole", "ssim", "l1_hole"]
REFERENCE_METHODS = ("mean fill", "OpenCV Telea", "OpenCV Navier-Stokes",
                     "scikit-image biharmonic", "harmonic fill")


def train_crops(size: int, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` fixed crops of the training photographs (no jitter, no procedural images).
    Returns (n, 3, size, size)."""
    ds = _data.EmbeddedPhotos("train", size=size, length=n, seed=seed + 1000)
    return torch.stack([ds[i] for i in range(n)])


class GeneralisationMonitor:
    """Scores a generator on fixed held-out and training crops (see the module docstring).

    Args:
        size: image side (the training ``image_size``).
        n: crops per split (default 48).
        families: mask families to score (default ``("center", "rect")``).
        seed: seed of the training crops and of the rectangle masks.
    """

    def __init__(self, size: int, n: int = 48, families=("center", "rect"), seed: int = 0):
        self.size, self.families = size, tuple(families)
        # the project's fixed evaluation set (evaluate.default_test_set), n crops of it
        held = {f: _evaluate.default_test_set(n, f, size=size) for f in self.families}
        images = next(iter(held.values()))[0]
        self.sets = {"heldout": images, "train": train_crops(size, len(images), seed)}
        self.masks = {f: m for f, (_, m) in held.items()}

    def _rows(self, method_name, run, step, phase) -> list[dict]:
        rows = []
        for split, images in self.sets.items():
            for family, masks in self.masks.items():
                per = per_image_scores(composites(run, images, masks), images, masks)
                rows.append({
                    "step": step, "phase": phase, "method": method_name, "split": split,
                    "masks": family, "psnr_hole": float(np.nanmean(per["psnr_hole"])),
                    "ssim": float(np.mean(per["ssim"])),
                    "l1_hole": float(np.nanmean(per["l1_hole"])),
                })
        return rows

    def score(self, generator, step: int, phase: int, device="cpu", autocast=None,
              name: str = "generator") -> list[dict]:
        """Rows (dicts with :data:`EVAL_FIELDS`, method ``name``) for ``generator`` at
        ``step``; the generator runs in eval mode under no_grad and is put back in the mode
        it was in."""
        was = generator.training
        try:
            return self._rows(name, generator_method(generator, device, autocast=autocast),
                              step, phase)
        finally:
            generator.train(was)

    def reference_rows(self, fill) -> list[dict]:
        """Rows of the classical methods (step 0, phase 0); ``fill`` is the (3,) mean for
        mean fill."""
        pool = make_baselines(mean=np.asarray(fill, np.float32).reshape(3))
        rows = []
        for name in REFERENCE_METHODS:
            rows += self._rows(name, batched(pool[name]), 0, 0)
        return rows

    def record(self, path, generators: dict, step: int, phase: int, device="cpu", autocast=None,
               fill=None) -> None:
        """Append to the eval log ``path`` the rows of every generator of ``generators``
        (method name -> generator) at ``step`` (:meth:`score`); a new file starts with its
        header and :meth:`reference_rows` of ``fill``."""
        path = Path(path)
        new = not path.exists()
        rows = self.reference_rows(fill) if new else []
        for name, generator in generators.items():
            rows += self.score(generator, step, phase, device, autocast, name=name)
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, EVAL_FIELDS)
            if new:
                w.writeheader()
            w.writerows(rows)


def read_eval_log(path) -> list[dict]:
    """The rows of an ``eval.csv`` (``path``: the file or the run directory holding it),
    with numbers parsed (step and phase as int)."""
    path = Path(path)
    if path.is_dir():
        path = path / "eval.csv"
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            try:
                rows.append({**r, "step": int(r["step"]), "phase": int(r["phase"]),
                             **{k: float(r[k]) for k in ("psnr_hole", "ssim", "l1_hole")}})
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{path}: bad row {r!r} ({e})") from None
    return rows


REFERENCE_STYLES = {"mean fill": ":", "OpenCV Telea": "--", "OpenCV Navier-Stokes": "-.",
                    "scikit-image biharmonic": (0, (1, 1)), "harmonic fill": (0, (5, 1, 1, 1))}
REFERENCE_COLOURS = {"mean fill": "tab:red", "OpenCV Telea": "tab:blue",
                     "OpenCV Navier-Stokes": "tab:purple", "scikit-image biharmonic": "tab:orange",
                     "harmonic fill": "tab:olive"}


def plot_curves(rows: list[dict], phase_ends=None, title: str | None = None, metric="psnr_hole"):
    """Held-out and training scores against the step, one panel per mask family (stacked,
    7.5 in wide), with the classical methods' held-out scores as horizontal reference lines.

    Args:
        rows: :func:`read_eval_log`'s rows.
        phase_ends: global steps at which phases 1, 2, 3 end (shades phase 3 when given).
        metric: ``"psnr_hole"`` (dB, higher is better), ``"ssim"`` or ``"l1_hole"``.
    Returns: the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    families = sorted({r["masks"] for r in rows}, key=lambda f: (f != "center", f))
    # one panel per family, stacked, at the width of a book's text column (7.5 in)
    fig, axes = plt.subplots(len(families), 1, figsize=(7.5, 4.2 * len(families)), squeeze=False)
    for ax, family in zip(axes[:, 0], families):
        for split, style in (("heldout", "-o"), ("train", "--s")):
            pts = sorted((r["step"], r[metric]) for r in rows if r["method"] == "generator"
                         and r["split"] == split and r["masks"] == family)
            if pts:
                ax.plot(*zip(*pts), style, ms=3, color="k" if split == "heldout" else "tab:gray",
                        label=f"generator, {'held-out' if split == 'heldout' else 'training'} crops")
        raw = sorted((r["step"], r[metric]) for r in rows if r["method"] == "generator (raw)"
                     and r["split"] == "heldout" and r["masks"] == family)
        if raw:  # a run with weight averaging: the trained weights themselves
            ax.plot(*zip(*raw), "-", lw=1, color="tab:brown", alpha=0.7,
                    label="trained weights before averaging, held-out crops")
        for name, ls in REFERENCE_STYLES.items():
            ref = [r[metric] for r in rows if r["method"] == name and r["split"] == "heldout"
                   and r["masks"] == family]
            if ref:
                ax.axhline(ref[0], ls=ls, lw=1.3, color=REFERENCE_COLOURS[name],
                           label=f"{name}: {ref[0]:.2f}" if metric != "ssim" else f"{name}: {ref[0]:.3f}")
        if phase_ends is not None:
            ax.axvspan(phase_ends[1], phase_ends[2], color="tab:green", alpha=0.08, lw=0)
            ax.axvline(phase_ends[0], color="tab:green", lw=0.8, alpha=0.5)
        ax.set_xlabel("training step", fontsize=11)
        ax.set_ylabel({"psnr_hole": "hole PSNR (dB)", "ssim": "SSIM",
                       "l1_hole": "hole L1"}.get(metric, metric), fontsize=11)
        ax.set_title(f"holes: {family}", fontsize=12)
        ax.tick_params(labelsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig
