"""What a training run writes besides its checkpoint: ``log.csv`` rows and sample grids.

``log.csv`` has one row per log interval (:data:`LOG_FIELDS`): the global ``step``, ``phase``
(1..3), ``iteration`` within it, the means over the interval of every loss term the phase
computes (``l_hole``, ``l_valid``, ``l_mse``; ``l_d``, ``d_real``, ``d_fake``; ``l_adv``,
``l_g``; empty where the phase does not compute one), the learning rates, the throughput and
the seconds since the run (or its resumed segment) started. :func:`read_log` reads it back
as arrays. A sample grid (:func:`sample_grid`) is a uint8 (4*(S+pad)+pad, n*(S+pad)+pad, 3)
image: input with the hole mean-filled, G(I), composite, ground truth.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import torch

from . import data as _data
from .fileio import atomic_write

__all__ = ["LOG_FIELDS", "read_log", "sample_grid", "write_samples", "say"]

LOG_FIELDS = ["step", "phase", "iteration", "l_hole", "l_valid", "l_mse", "l_adv", "l_g",
              "l_d", "d_real", "d_fake", "lr_g", "lr_d", "images_per_s", "seconds"]


def read_log(out_dir) -> dict:
    """A run's ``log.csv`` as ``{column: float64 array}``, one entry per logged row (a loss
    that the row's phase does not compute is nan)."""
    with open(Path(out_dir) / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{Path(out_dir) / 'log.csv'} has no rows yet")
    return {k: np.array([float(r[k]) if r[k] != "" else np.nan for r in rows]) for k in rows[0]}


def trim_csv(path: Path, fields, step: int) -> None:
    """Keep the rows of the CSV log ``path`` up to ``step`` (a resumed run rewrites what came
    after its checkpoint). Rewritten atomically: a kill at that moment leaves the old file."""
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    except (KeyError, TypeError, ValueError, csv.Error) as e:
        raise ValueError(f"{path}: unreadable log row ({type(e).__name__}: {e}); move the file "
                         "away to resume without it") from None
    with atomic_write(path, "w", newline="") as f:
        w = csv.DictWriter(f, fields)
        w.writeheader()
        w.writerows(rows)


def sample_grid(images, masks, outputs, fill, pad: int = 2) -> np.ndarray:
    """Rows: input with the hole mean-filled, output G(I), composite, truth; one column per
    sample. images, outputs (n, 3, H, W), masks (n, 1, H, W) in [0, 1]; fill (3,).
    Returns an (4*(H+pad)+pad, n*(W+pad)+pad, 3) uint8 array (white separators)."""
    images, masks, outputs = (t.detach().float().cpu() for t in (images, masks, outputs))
    filled = _data.mean_fill(images, masks, torch.as_tensor(fill).float().cpu())
    rows = [filled, outputs, _data.composite(images, outputs, masks), images]
    n, _, h, w = images.shape
    grid = np.full((4 * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        arr = (row.clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
        for c in range(n):
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            grid[y:y + h, x:x + w] = arr[c]
    return grid


def write_samples(path, generator, preview, fill, device, autocast) -> Path:
    """Save the :func:`sample_grid` of ``generator`` on the ``preview`` batch (images
    (n, 3, S, S), masks (n, 1, S, S)) as the PNG ``path``; the generator runs in eval mode
    under no_grad and ``autocast()`` on ``device``, and is put back in its mode."""
    from PIL import Image

    images, masks = preview
    was = generator.training
    generator.eval()
    with torch.no_grad(), autocast():
        out = generator(images.to(device), masks.to(device)).float()
    generator.train(was)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sample_grid(images, masks, out.cpu(), fill)).save(path)
    return path


def say(message: str) -> None:
    """Print ``message`` on its own line, above any progress bar."""
    try:
        from tqdm.auto import tqdm

        tqdm.write(message)
    except ImportError:  # pragma: no cover
        print(message)


class RunLog:
    """The loss terms of a run: their means over each log interval (kept on every rank),
    written by rank 0 to ``log.csv``, TensorBoard and a progress bar per phase."""

    def __init__(self, trainer, t0: float):
        cfg = trainer.cfg
        self.cfg, self.world, self.t0 = cfg, trainer.world, t0
        self.show_bar = trainer.progress and trainer.main
        self.file = self.csv = self.tb = self.bar = self.bar_phase = None
        if trainer.main:
            if cfg.tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter

                    self.tb = SummaryWriter(str(trainer.out / "tb"), purge_step=trainer.step)
                except ImportError:
                    self.tb = None
            new = not trainer.log_path.exists()
            self.file = open(trainer.log_path, "a", newline="")
            self.csv = csv.DictWriter(self.file, LOG_FIELDS)
            if new:
                self.csv.writeheader()
        self.acc, self.n, self.t_log = {}, 0, time.perf_counter()

    def begin(self, phase: int, it: int) -> None:
        """Iteration ``it`` of ``phase`` starts: a new progress bar when the phase changes."""
        if phase == self.bar_phase:
            return
        if self.bar is not None:
            self.bar.close()
        self.bar, self.bar_phase = None, phase
        if self.show_bar:
            from tqdm.auto import tqdm

            names = {1: "phase 1 (G, L_MSE)", 2: "phase 2 (D, L_D)", 3: "phase 3 (G+D, L_G/L_D)"}
            # at most one refresh a second: in a notebook each refresh is a message to the
            # front end, and a long cell must not queue more than a client buffers
            self.bar = tqdm(total=self.cfg.iterations[phase - 1], initial=it, desc=names[phase],
                            dynamic_ncols=True, leave=True, mininterval=1.0)

    def add(self, terms: dict) -> None:
        for k, v in terms.items():
            self.acc[k] = self.acc.get(k, 0.0) + v
        self.n += 1
        if self.bar is not None:
            self.bar.update(1)

    def write(self, step: int, phase: int, it: int, scale: float) -> dict:
        """End the interval after global ``step`` (iteration ``it`` of ``phase``, learning
        rates scaled by ``scale``): write its row and return ``{term: mean}``."""
        cfg, now = self.cfg, time.perf_counter()
        means = {k: float(v) / self.n for k, v in self.acc.items()}  # floats or 0-dim tensors
        row = dict(means, step=step, phase=phase, iteration=it + 1,
                   lr_g=cfg.lr_g * scale, lr_d=cfg.lr_d * scale, seconds=round(now - self.t0, 3),
                   images_per_s=round(self.n * cfg.batch_size * self.world
                                      / max(now - self.t_log, 1e-9), 2))
        if self.csv is not None:
            self.csv.writerow({k: row.get(k, "") for k in LOG_FIELDS})
            self.file.flush()
        if self.tb is not None:
            for k, v in means.items():
                self.tb.add_scalar(f"phase{phase}/{k}", v, step)
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in means.items()
                                  if k in ("l_mse", "l_d", "l_g")})
        self.acc, self.n, self.t_log = {}, 0, now
        return means

    def close(self) -> None:
        for f in (self.bar, self.file, self.tb):
            if f is not None:
                f.close()
