"""Training in three phases (the poster's schedule), with checkpoints, resume and logs.

The poster trains its GAN in three phases::

    phase 1   G only, on L_MSE = L+ + (1/6) L-                      (poster: 25,000 iterations)
    phase 2   D only, on L_D = -log D(real) - log(1 - D(G(I)))      (poster:  6,000)
    phase 3   both, alternating per iteration:                       (poster: 94,000)
              a D step on L_D, then a G step on L_G = L_MSE - (1/2000) log D(G(I))

``G`` is :class:`pconv_torch.networks.Generator`, ``D`` the global + local
:class:`pconv_torch.networks.Discriminator`; losses come from :mod:`pconv_torch.losses`
(computed from logits). Mask convention: 1 = valid pixel, 0 = hole. Images are
(N, 3, H, W) float32 in [0, 1], masks (N, 1, H, W), local-patch corners (N, 2) int64.

Choices the poster leaves open (documented here, stored in :class:`TrainConfig`):

* **Optimiser**: Adam for each network, ``lr = 2e-4``, ``betas = (0.5, 0.999)``: the
  DCGAN setting that Iizuka et al.'s and most GAN inpainting code bases start from; Liu et
  al. also use 2e-4. One Adam per network for the whole run: G's optimiser continues from
  phase 1 into phase 3, D's from phase 2 into phase 3.
* **Batch size** 16 per process (``paper`` preset); the poster does not give one.
* **Phase 3 order**: one G forward per iteration. D steps on ``(real, G(I).detach())``
  (one D call on the concatenated batch), then G steps on L_G with the *updated* D, whose
  parameters are frozen for that step.
* **Fill value**: the per-channel mean of the training set (the data source's
  ``fill_mean()``), stored in the generator's ``fill`` buffer and so in every checkpoint.
* **Local patch**: ``image_size/2`` square (64 at 128) around the hole, placed uniformly
  among positions that contain the hole's bounding box (:func:`pconv_torch.masks.local_boxes`
  with a per-sample seeded generator).

Determinism and resume
----------------------
The data stream is a pure function of the global step ``t`` (counted over all phases): the
dataset is read as a concatenation of seeded permutations (one per epoch); step ``t`` takes
positions ``[t*B_global, (t+1)*B_global)`` of that stream, every item, mask and local box is
drawn from ``numpy.random.default_rng([seed, ..., epoch/position])``. The only sampler state is the
stream position (samples consumed), stored in the checkpoint: a resumed run sees exactly the
batches an uninterrupted one would (and continues at the next unseen sample if it is resumed
with another number of processes). The checkpoint also holds G, D, both Adam states and
the torch (CPU and CUDA), NumPy and Python RNG states, so on CPU a run stopped at any step and
resumed ends with bit-identical weights (``tests/test_training.py`` checks this with
``torch.equal``, stopping inside phase 3 too).

Several processes (``torchrun``): ``config.batch_size`` is the batch *per process*. Rank
``r`` of ``W`` takes positions ``[t*W*B + r*B, t*W*B + (r+1)*B)``: the union over ranks is the
batch a single process with batch ``W*B`` takes, and since every loss is a batch mean and
DistributedDataParallel averages gradients, W ranks with batch B train like one process with
batch W*B (checked on CPU with gloo in ``tests/test_ddp.py``). Learning rates are not rescaled.

Usage::

    from pconv_torch.training import load_config, train, load_generator
    result = train(load_config("cpu"), out_dir="runs/cpu")   # Ctrl-C saves; rerun resumes
    G = load_generator("runs/cpu")                             # eval mode, on the CPU

    # several GPUs on one machine (each process: cuda:LOCAL_RANK, nccl, env:// init)
    torchrun --standalone --nproc_per_node 4 $(which pconv) train --preset paper --out runs/paper

Under ``torchrun`` the output directory must be visible to every rank (rank 0 writes, all
ranks read it to resume).

Files in ``out_dir``: ``checkpoint.pt`` (atomic: temp file, fsync, ``os.replace``; with a
SHA-256 digest of every tensor, verified on every load), ``.train.lock`` (held with
``flock`` by the run writing the directory, so a second one is refused),
``log.csv`` (one row per ``log_every`` steps: means of every loss term over the interval),
``samples/step_XXXXXXX.png`` (rows: input with the hole mean-filled, output G(I),
composite M*I + (1-M)*G(I), ground truth), ``tb/`` (TensorBoard, only if installed and
``config.tensorboard``).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import difflib
import errno
import hashlib
import math
import os
import pickle
import random
import signal
import threading
import time
import warnings
from fractions import Fraction
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from . import data as _data
from . import losses
from . import masks as _masks
from .fileio import atomic_write
from .monitor import EVAL_FIELDS, GeneralisationMonitor

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: runs are not locked
    fcntl = None

__all__ = [
    "TrainConfig",
    "PRESETS",
    "load_config",
    "read_log",
    "train",
    "TrainingDiverged",
    "CHECKPOINT_NAME",
    "save_checkpoint",
    "load_checkpoint",
    "load_generator",
    "build_models",
    "make_training_data",
    "preview_batch",
    "sample_grid",
]

CHECKPOINT_NAME = "checkpoint.pt"
LOCK_NAME = ".train.lock"
_FORMAT = "pconv-training-checkpoint"
_VERSION = 1


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------
# Sanity bounds on sizes (documented in TrainConfig): values past them are typos that
# would exhaust memory.
_UPPER_BOUNDS = {"image_size": 1024, "width": 4.0, "d_width": 4.0, "batch_size": 1024,
                 "n_samples": 64, "epoch_length": 1_000_000, "num_workers": 64}
_MAX_BATCH_PIXELS = 2 ** 24


@dataclass
class TrainConfig:
    """Everything a training run depends on (stored in every checkpoint as a plain dict).

    Model: ``image_size`` (multiple of 32 and of ``2**depth``), generator ``width`` (scales
    its filter counts), ``depth`` (4 = poster, 5 = one more level), ``norm`` (None or
    ``"batch"``), ``conv`` (``"partial"`` or ``"plain"``, the ablation); discriminator
    ``local`` (global + local, or global only) and ``d_width``.

    Optimisation: ``batch_size`` per process; ``phase1_iters`` / ``phase2_iters`` /
    ``phase3_iters``; Adam ``lr_g``, ``lr_d``, ``betas``; ``lr_decay``: the fraction of all
    steps at the end of the schedule over which both learning rates fall linearly to a tenth
    (0 = constant, the poster's default; a pure function of the step, so resume stays exact);
    loss weights ``adv_weight`` (1/2000)
    and ``valid_weight`` (1/6); ``ema``: decay of an exponential moving average of G's
    weights, updated after every G step (0 = none, the poster's default); when set, the
    averaged generator is the one sampled, scored and loaded by :func:`load_generator`.

    Data: ``data`` = ``"embedded"`` (the embedded photographs),
    ``"places365:ROOT"``, or an image folder path (only used when :func:`train` gets no
    ``data``); ``masks`` = a family of :mod:`pconv_torch.masks` (``"rect"``: the poster's);
    ``epoch_length`` = items per epoch of the embedded source; ``procedural`` = share of
    the embedded source's items that are dead-leaves images (:mod:`pconv_torch.procedural`);
    ``jitter`` = colour-jitter strength of its photograph crops
    (:func:`pconv_torch.data.color_jitter`); ``seed``; ``num_workers``.

    Bookkeeping: ``log_every``, ``sample_every``, ``checkpoint_every`` (steps), ``n_samples``
    (columns of the sample grid), ``tensorboard`` (used only if installed), ``eval_every``
    (steps between scores on held-out and training crops written to ``eval.csv``, see
    :mod:`pconv_torch.monitor`; 0 = never).

    ``amp``: bf16 autocast of the forward passes (losses in float32) on CUDA;
    ``cpu_amp``: the same on the CPU where it is fast (:func:`cpu_has_fast_bf16`: AVX-512 BF16
    or AMX; ignored elsewhere);
    ``channels_last`` (CUDA only): memory format of both networks and their inputs.

    Upper bounds (:meth:`validate` rejects larger values, naming the field and the bound;
    they catch typos that would exhaust memory, they do not promise that a run fits):
    ``image_size`` <= 1024, ``width`` and ``d_width`` <= 4 (G + D: about 140 million
    parameters), ``batch_size`` <= 1024 and ``batch_size * image_size**2`` <= 2**24 pixels
    per batch (e.g. 1024 at 128, 16 at 1024), ``n_samples`` <= 64, ``epoch_length`` <=
    1,000,000, ``num_workers`` <= 64. Every preset is well inside them.
    """

    image_size: int = 128
    width: float = 1.0
    depth: int = 4
    norm: str | None = None
    conv: str = "partial"
    local: bool = True
    d_width: float = 1.0
    batch_size: int = 16
    phase1_iters: int = 25_000
    phase2_iters: int = 6_000
    phase3_iters: int = 94_000
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    lr_decay: float = 0.0
    betas: tuple = (0.5, 0.999)
    adv_weight: float = 1 / 2000
    valid_weight: float = 1 / 6
    ema: float = 0.0
    data: str = "embedded"
    masks: str = "rect"
    epoch_length: int = 1024
    procedural: float = 0.0
    jitter: float = 0.0
    seed: int = 0
    num_workers: int = 0
    log_every: int = 50
    sample_every: int = 1000
    checkpoint_every: int = 1000
    n_samples: int = 6
    tensorboard: bool = True
    eval_every: int = 0
    amp: bool = True
    cpu_amp: bool = False
    channels_last: bool = True

    def __post_init__(self):
        self.validate()

    @property
    def iterations(self) -> tuple[int, int, int]:
        """(phase 1, phase 2, phase 3) iteration counts."""
        return (self.phase1_iters, self.phase2_iters, self.phase3_iters)

    @property
    def total_steps(self) -> int:
        return sum(self.iterations)

    @property
    def patch_size(self) -> int:
        """Side of the local discriminator's patch: half the image (64 at 128)."""
        return self.image_size // 2

    def validate(self) -> "TrainConfig":
        """Raise ValueError naming the first bad field; normalise ``norm`` and ``betas``."""
        if isinstance(self.norm, str) and self.norm.lower() in ("none", ""):
            self.norm = None
        self.betas = tuple(float(b) for b in self.betas)

        def bad(name, why):
            raise ValueError(f"TrainConfig.{name}={getattr(self, name)!r}: {why}")

        for name in ("image_size", "depth", "batch_size", "phase1_iters", "phase2_iters",
                     "phase3_iters", "epoch_length", "seed", "num_workers", "log_every",
                     "sample_every", "checkpoint_every", "n_samples", "eval_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                bad(name, "must be an integer")
            setattr(self, name, int(v))
        for name in ("width", "d_width", "lr_g", "lr_d", "adv_weight", "valid_weight",
                     "procedural", "jitter", "lr_decay", "ema"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                bad(name, "must be a finite number")
            setattr(self, name, float(v))
        if self.depth < 4:
            bad("depth", "must be >= 4 (4 = the poster's generator, 5 = one more level)")
        if self.image_size < 32 or self.image_size % 32 or self.image_size % 2 ** self.depth:
            bad("image_size", f"must be a multiple of 32 and of 2**depth = {2 ** self.depth} "
                "(five stride-2 convolutions in the global discriminator)")
        for name in ("width", "d_width", "lr_g", "lr_d"):
            if getattr(self, name) <= 0:
                bad(name, "must be > 0")
        for name in ("adv_weight", "valid_weight"):
            if getattr(self, name) < 0:
                bad(name, "must be >= 0")
        if self.norm not in (None, "batch"):
            bad("norm", "must be None or 'batch'")
        if self.conv not in ("partial", "plain"):
            bad("conv", "must be 'partial' or 'plain'")
        if self.masks not in _masks.MASK_FAMILIES + ("mixed",):
            bad("masks", f"must be one of {_masks.MASK_FAMILIES + ('mixed',)}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            bad("betas", "must be two numbers in [0, 1)")
        if self.batch_size < 1 or self.epoch_length < 1:
            bad("batch_size" if self.batch_size < 1 else "epoch_length", "must be >= 1")
        for name in ("procedural", "jitter", "lr_decay"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                bad(name, "must be in [0, 1]")
        if not 0.0 <= self.ema < 1.0:
            bad("ema", "must be in [0, 1) (0 = no weight averaging)")
        for name in ("phase1_iters", "phase2_iters", "phase3_iters", "num_workers", "eval_every"):
            if getattr(self, name) < 0:
                bad(name, "must be >= 0")
        for name in ("log_every", "sample_every", "checkpoint_every", "n_samples"):
            if getattr(self, name) < 1:
                bad(name, "must be >= 1")
        for name, bound in _UPPER_BOUNDS.items():
            if getattr(self, name) > bound:
                bad(name, f"must be <= {bound} (a bound on memory use)")
        if self.batch_size * self.image_size ** 2 > _MAX_BATCH_PIXELS:
            bad("batch_size", f"batch_size * image_size**2 = "
                f"{self.batch_size * self.image_size ** 2} pixels per batch must be <= 2**24 = "
                f"{_MAX_BATCH_PIXELS} (a bound on memory use; at image_size "
                f"{self.image_size}: batch_size <= {_MAX_BATCH_PIXELS // self.image_size ** 2})")
        for name in ("local", "tensorboard", "amp", "cpu_amp", "channels_last"):
            if not isinstance(getattr(self, name), bool):
                bad(name, "must be True or False")
        if not isinstance(self.data, str) or not self.data:
            bad("data", "must be 'embedded', 'places365:ROOT' or an image folder path")
        return self

    def to_dict(self) -> dict:
        """Plain types only (lists, not tuples), safe for ``torch.load(weights_only=True)``."""
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


PRESETS: dict[str, TrainConfig] = {
    # Seconds, for tests and notebooks in CI: 32x32, 1/8 width, a handful of iterations.
    "ci": TrainConfig(
        image_size=32, width=0.125, d_width=0.25, batch_size=4,
        phase1_iters=6, phase2_iters=3, phase3_iters=6, lr_g=1e-3, lr_d=1e-3,
        epoch_length=64, log_every=1, sample_every=5, checkpoint_every=5, n_samples=4,
        tensorboard=False),
    # The shipped models (pconv_torch.shipped), with bf16 autocast on the CPU; see the
    # justification in load_config's docstring.
    "cpu": TrainConfig(
        image_size=64, width=0.5, d_width=0.5, batch_size=16,
        phase1_iters=6000, phase2_iters=500, phase3_iters=3000,
        lr_g=5e-4, lr_d=2e-4, betas=(0.9, 0.999), lr_decay=0.3, ema=0.998,
        procedural=0.5, jitter=0.1, cpu_amp=True, eval_every=500,
        log_every=25, sample_every=500, checkpoint_every=500),
    # What the book's notebooks train live (notebooks 5-8: PCONV_PRESET, default "book"): the
    # cpu recipe at a quarter width and a fifth of the steps, about a minute per run on two
    # cores. Enough to show the phases; the book's results come from the shipped cpu models.
    # sample_every=100 puts a sample grid exactly at every phase end (600, 700, 1300).
    "book": TrainConfig(
        image_size=64, width=0.25, d_width=0.25, batch_size=8,
        phase1_iters=600, phase2_iters=100, phase3_iters=600,
        procedural=0.5, jitter=0.1, cpu_amp=True, eval_every=300,
        log_every=10, sample_every=100, checkpoint_every=200, tensorboard=False),
    # The poster's schedule at 128x128 and full width, for a GPU.
    "paper": TrainConfig(),
}


def _coerce(name: str, typ, value):
    """Parse strings from a command line into the field's type."""
    if not isinstance(value, str) or typ in ("str", str):
        return value
    s = value.strip()
    t = str(typ)
    try:
        if t in ("bool", "<class 'bool'>"):
            if s.lower() in ("1", "true", "yes", "on"):
                return True
            if s.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if t in ("int", "<class 'int'>"):
            return int(float(s)) if float(s).is_integer() else int(s)
        if t in ("float", "<class 'float'>"):
            return float(Fraction(s))  # also "1/2000"
        if t in ("tuple", "<class 'tuple'>"):
            return tuple(float(x) for x in s.strip("()[] ").split(","))
        if "None" in t:
            return None if s.lower() in ("none", "") else s
    except (ValueError, TypeError, ZeroDivisionError):
        raise ValueError(f"TrainConfig.{name}: cannot read {value!r} as {t}") from None
    return value


def load_config(preset: str = "ci", **overrides) -> TrainConfig:
    """A copy of ``PRESETS[preset]`` with ``overrides`` applied (strings are parsed, so a
    command line can pass ``lr_g="1e-4"`` or ``betas="0.5,0.9"``).

    Presets:

    ``ci``
        32x32 images, generator width 1/8 (8..32 filters), discriminator width 1/4, batch 4,
        6 / 3 / 6 iterations: the whole pipeline (three phases, checkpoint, log, samples) in
        a couple of seconds on one core. Trains nothing worth looking at.
    ``cpu``
        The shipped models' recipe (:mod:`pconv_torch.shipped`). 64x64 images, width 1/2 for
        both networks, batch 16, 6,000 / 500 / 3,000 iterations; Adam with lr 5e-4 (G) and
        2e-4 (D), betas (0.9, 0.999), both falling linearly to a tenth over the last 30 % of
        the steps (``lr_decay=0.3``); a moving average of G's weights (``ema=0.998``) is the
        generator that is kept; the embedded photographs with half the items dead-leaves
        images (``procedural=0.5``) and colour jitter 0.1 on the rest; bf16 autocast where the
        CPU has native bf16; held-out scores every 500 steps. 64x64 keeps the poster's geometry (rectangular holes of
        1/8..1/2 of the side, a local patch of half the image, four encoder levels) with a
        quarter of the pixels; half width takes the FLOPs per image down another 4x
        (G: 8.65 -> 0.55 GFLOP per forward pass). Wall times are in the README.
    ``paper``
        128x128, full width (3,605,967 + 5,330,305 parameters), batch 16, the poster's
        25,000 / 6,000 / 94,000 iterations, Adam 2e-4 with betas (0.5, 0.999): for a GPU
        (bf16 autocast and channels-last on CUDA).

    Raises ValueError for an unknown preset, an unknown key (with the closest valid ones)
    or a bad value.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    fields = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    unknown = [k for k in overrides if k not in fields]
    if unknown:
        hints = {k: difflib.get_close_matches(k, fields, n=2) for k in unknown}
        hint = "; ".join(f"{k!r}" + (f" (did you mean {', '.join(v)}?)" if v else "")
                         for k, v in hints.items())
        raise ValueError(f"unknown training option(s) {hint}; valid options: "
                         f"{', '.join(sorted(fields))}")
    values = {k: _coerce(k, fields[k], v) for k, v in overrides.items()}
    return dataclasses.replace(PRESETS[preset], **values)


# --------------------------------------------------------------------------------------
# Exceptions
# --------------------------------------------------------------------------------------
class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite. The weights were not updated with it, and the last
    checkpoint written before it (``checkpoint``, possibly None) is kept unchanged."""

    def __init__(self, message: str, *, phase: int, iteration: int, step: int, term: str,
                 checkpoint: str | None):
        super().__init__(message)
        self.phase, self.iteration, self.step = phase, iteration, step
        self.term, self.checkpoint = term, checkpoint


# --------------------------------------------------------------------------------------
# Data: a stream that is a pure function of the step
# --------------------------------------------------------------------------------------
class _TensorImages(Dataset):
    """(N, 3, H, W) tensor as a dataset of (3, H, W) images."""

    def __init__(self, images: torch.Tensor):
        self.images = images.detach().float().cpu().contiguous()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]

    def fill_mean(self):
        return self.images.double().mean(dim=(0, 2, 3)).float()


class _TensorPairs(_TensorImages):
    """Fixed (images (N, 3, H, W), masks (N, 1, H, W)) pairs."""

    def __init__(self, images, masks):
        super().__init__(images)
        if masks.shape != (len(images), 1, *images.shape[2:]):
            raise ValueError(f"masks must be (N, 1, H, W) = ({len(images)}, 1, "
                             f"{images.shape[2]}, {images.shape[3]}), got {tuple(masks.shape)}")
        self.masks = masks.detach().float().cpu().contiguous()

    def __getitem__(self, i):
        return self.images[i], self.masks[i]


class _StepStream(Dataset):
    """Wraps a dataset of ``(image (3,H,W), mask (1,H,W))`` pairs. Indexed by
    ``(epoch, index, position)``; returns ``(image, mask, box (2,))`` with the local patch's
    corner drawn from ``default_rng([seed, 3, position])``."""

    def __init__(self, pairs: Dataset, seed: int, patch: int):
        self.pairs, self.seed, self.patch = pairs, seed, patch

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, key):
        epoch, i, pos = key
        if hasattr(self.pairs, "set_epoch") and getattr(self.pairs, "epoch", None) != epoch:
            self.pairs.set_epoch(epoch)
        image, mask = self.pairs[i]
        box = _masks.local_boxes(mask[None], box=self.patch,
                                 rng=np.random.default_rng([self.seed, 3, pos]))[0]
        return image, mask, box


class _StepBatches:
    """Batch sampler: for steps ``start..stop-1`` yields this rank's list of
    ``(epoch, index, position)``. The stream is the concatenation of one permutation of
    ``range(n)`` per epoch (``default_rng([seed, 4, epoch])``); step ``t`` takes the
    ``batch * world`` positions that follow those of step ``t - 1``, rank ``r`` the r-th
    ``batch`` of them."""

    def __init__(self, n: int, seed: int, batch: int, rank: int, world: int, start: int, stop: int,
                 position: int | None = None):
        self.n, self.seed, self.batch, self.rank, self.world = n, seed, batch, rank, world
        self.start, self.stop = start, stop
        # stream position of step ``start`` (= samples consumed so far, over all ranks)
        self.position = start * batch * world if position is None else position
        self._perm_epoch, self._perm = None, None

    def __len__(self):
        return max(0, self.stop - self.start)

    def _perm_of(self, epoch):
        if self._perm_epoch != epoch:
            self._perm = np.random.default_rng([self.seed, 4, epoch]).permutation(self.n)
            self._perm_epoch = epoch
        return self._perm

    def positions(self, step: int) -> range:
        g = self.batch * self.world
        first = self.position + (step - self.start) * g + self.rank * self.batch
        return range(first, first + self.batch)

    def __iter__(self):
        for t in range(self.start, self.stop):
            out = []
            for p in self.positions(t):
                e, k = divmod(p, self.n)
                out.append((int(e), int(self._perm_of(e)[k]), int(p)))
            yield out


def _fill_mean_of(images: Dataset, limit: int = 256) -> torch.Tensor:
    if hasattr(images, "fill_mean"):
        return torch.as_tensor(images.fill_mean(), dtype=torch.float32).reshape(3)
    n = min(len(images), limit)
    items = [images[i] for i in range(n)]
    items = [x[0] if isinstance(x, (tuple, list)) else x for x in items]
    return torch.stack(items).double().mean(dim=(0, 2, 3)).float()


def make_training_data(config: TrainConfig, data=None):
    """The training pairs and the fill mean.

    Args:
        config: uses ``data``, ``image_size``, ``masks``, ``seed``, ``epoch_length``.
        data: None (use ``config.data``); an (N, 3, H, W) tensor of images; a tuple
            ``(images (N,3,H,W), masks (N,1,H,W))`` of fixed pairs; a Dataset of (3, H, W)
            images (masks of ``config.masks`` are added) or of ``(image, mask)`` pairs.
    Returns:
        ``(pairs, fill)``: a Dataset of ``(image (3,H,W), mask (1,H,W))`` and the (3,)
        per-channel mean of the training images (the source's ``fill_mean()`` if it has one,
        else the mean of up to 256 items).
    """
    s = config.image_size
    if data is None:
        src = config.data
        if src == "embedded":
            images = _data.EmbeddedPhotos("train", size=s, length=config.epoch_length,
                                          seed=config.seed, procedural=config.procedural,
                                          jitter=config.jitter)
        elif src.startswith("places365:"):
            images = _data.Places365(src.split(":", 1)[1], "train", size=s)
        else:
            images = _data.ImageFolder(src, size=s, augment=True, seed=config.seed)
        data = images
    if isinstance(data, torch.Tensor):
        data = _TensorImages(data)
    elif isinstance(data, (tuple, list)) and len(data) == 2 and all(
            isinstance(t, torch.Tensor) for t in data):
        data = _TensorPairs(*data)
    if not isinstance(data, Dataset) and not hasattr(data, "__getitem__"):
        raise TypeError(f"data must be None, a tensor, a (images, masks) pair or a Dataset, "
                        f"got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError("the training data is empty")
    first = data[0]
    if isinstance(first, (tuple, list)):
        pairs, images, img = data, data, first[0]
    else:
        pairs = _data.InpaintingDataset(data, masks=config.masks, seed=config.seed)
        images, img = data, first
    if tuple(img.shape) != (3, s, s):
        raise ValueError(f"training images are {tuple(img.shape)}, expected (3, {s}, {s}) "
                         f"(config.image_size={s})")
    if isinstance(pairs, _TensorPairs):
        fill = pairs.fill_mean()
    elif isinstance(pairs, _data.InpaintingDataset):
        fill = _fill_mean_of(pairs.images)
    else:
        fill = _fill_mean_of(images)
    return pairs, fill


def preview_batch(config: TrainConfig, pairs: Dataset | None = None, n: int | None = None):
    """A fixed batch for sample grids: ``(images (n,3,H,W), masks (n,1,H,W))``.

    With the embedded source: crops of the *held-out* photographs with seeded masks;
    otherwise the first ``n`` items of ``pairs`` at epoch 0.
    """
    n = n or config.n_samples
    s = config.image_size
    if pairs is None or (config.data == "embedded" and not isinstance(pairs, _TensorPairs)
                         and isinstance(pairs, _data.InpaintingDataset)
                         and isinstance(pairs.images, _data.EmbeddedPhotos)):
        try:
            test = _data.EmbeddedPhotos("test", size=s)
            idx = np.linspace(0, len(test) - 1, n).round().astype(int)
            images = torch.stack([test[int(i)] for i in idx])
            masks = _masks.sample_masks(config.masks, n, s, seed=[config.seed, 5])
            return images, masks
        except (RuntimeError, OSError):
            if pairs is None:
                raise
    if hasattr(pairs, "set_epoch"):
        pairs.set_epoch(0)
    items = [pairs[i % len(pairs)] for i in range(n)]
    return torch.stack([x[0] for x in items]), torch.stack([x[1] for x in items])


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------
def build_models(config: TrainConfig, fill=(0.5, 0.5, 0.5)):
    """``(G, D)`` for ``config`` (CPU, float32, torch default initialisation)."""
    from .networks import Discriminator, Generator

    g = Generator(width=config.width, depth=config.depth, norm=config.norm, conv=config.conv,
                  fill=tuple(float(v) for v in fill))
    d = Discriminator(local=config.local, image_size=config.image_size,
                      patch_size=config.patch_size, width=config.d_width)
    return g, d


# --------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------
def _tensors(obj, prefix: str = ""):
    """``(name, tensor)`` for every tensor in a nest of dicts, lists and tuples, in order;
    names join the keys with "/" (``"generator/fill"``, ``"opt_g/state/0/exp_avg"``)."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _tensors(v, f"{prefix}/{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}/{i}" if prefix else str(i))


def _tensor_digest(t: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and raw bytes (any dtype, any device)."""
    t = t.detach().cpu().contiguous()
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _skeleton(obj):
    """``obj`` with every tensor replaced by a placeholder, dicts as plain dicts."""
    if isinstance(obj, torch.Tensor):
        return "<tensor>"
    if isinstance(obj, dict):
        return {k: _skeleton(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(_skeleton(v) for v in obj)
    if isinstance(obj, list):
        return [_skeleton(v) for v in obj]
    return obj


def _fields_digest(body: dict) -> str:
    return hashlib.sha256(repr(_skeleton(body)).encode()).hexdigest()


def _digest_record(body: dict) -> dict:
    return {"algorithm": "sha256",
            "tensors": {name: _tensor_digest(t) for name, t in _tensors(body)},
            "fields": _fields_digest(body)}


def _verify_digests(state: dict, path: Path) -> None:
    """Check every tensor (and the other fields) of a loaded checkpoint against the digests
    stored by :func:`save_checkpoint`; ValueError naming ``path`` and the first bad tensor."""
    record = state.get("digests")
    if record is None:
        warnings.warn(f"{path}: checkpoint without digests (written by an older pconv_torch): "
                      "its tensors cannot be verified; saving it again adds them", stacklevel=3)
        return
    corrupt = f"{path}: corrupt checkpoint (altered or damaged after it was written): "
    if not (isinstance(record, dict) and record.get("algorithm") == "sha256"
            and isinstance(record.get("tensors"), dict)):
        raise ValueError(corrupt + "unreadable digest record")
    want = record["tensors"]
    body = {k: v for k, v in state.items() if k != "digests"}
    seen = set()
    for name, t in _tensors(body):
        seen.add(name)
        if name not in want:
            raise ValueError(corrupt + f"tensor {name!r} has no recorded digest")
        if _tensor_digest(t) != want[name]:
            raise ValueError(corrupt + f"tensor {name!r} does not match its SHA-256 digest")
    missing = [name for name in want if name not in seen]
    if missing:
        raise ValueError(corrupt + f"tensor {missing[0]!r} is missing")
    if record.get("fields") != _fields_digest(body):
        raise ValueError(corrupt + "its configuration, step or optimiser settings do not match "
                         "their digest")


class _WriteErrors:
    """A binary file whose ``write`` remembers the OSError it raised (``torch.save`` reports
    a failed write as a RuntimeError that no longer carries the errno)."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, b):
        try:
            return self.f.write(b)
        except OSError as e:
            self.error = e
            raise

    def flush(self):
        return self.f.flush()


def save_checkpoint(state: dict, path) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same directory,
    flushed and fsync'ed, then ``os.replace`` (readers see the old file or the new one,
    never a partial one; on any error the temporary file is removed and the old file kept).

    A dict ``state`` (such as one returned by :func:`load_checkpoint`) is stored with a
    ``"digests"`` entry: the SHA-256 of every tensor (dtype, shape and bytes, keyed by its
    "/"-joined name) and one of all other fields, which :func:`load_checkpoint` verifies. A failed write raises OSError naming ``path`` (on a
    full disk: "no space left on device").
    """
    path = Path(path)
    if isinstance(state, dict):  # "config_obj" is what load_checkpoint adds to "config"
        body = {k: v for k, v in state.items() if k not in ("digests", "config_obj")}
        state = {**body, "digests": _digest_record(body)}
    writer = None
    try:
        with atomic_write(path) as f:
            writer = _WriteErrors(f)
            torch.save(state, writer)
    except (OSError, RuntimeError) as e:
        cause = writer.error if writer is not None and writer.error is not None else e
        if not isinstance(cause, OSError):
            raise
        why = ("no space left on device" if cause.errno == errno.ENOSPC
               else cause.strerror or str(cause))
        err = OSError(f"{path}: checkpoint not written: {why}; the previous checkpoint (if "
                      "any) is kept")
        err.errno = cause.errno
        raise err from None
    return path


def _resolve(path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return path


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read a training checkpoint (``path`` may be the run's ``out_dir``) with
    ``torch.load(weights_only=True)``.

    Every tensor is checked against the SHA-256 digests stored by :func:`save_checkpoint`
    (a file altered or damaged after it was written is refused, naming the first bad tensor).
    A checkpoint without digests (written before they were stored) loads with a warning.

    Raises FileNotFoundError if missing, and one ValueError naming the file if it is
    truncated, corrupt, refused by ``weights_only`` (it holds code or other objects), or not
    a pconv training checkpoint.
    """
    path = _resolve(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle / zip / EOF / unsupported global: all mean "not ours"
        raise ValueError(f"{path}: {_load_failure(e)}") from None
    if not isinstance(state, dict) or state.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a pconv training checkpoint (no '{_FORMAT}' record)")
    _verify_digests(state, path)
    missing = [k for k in ("config", "generator", "discriminator", "step") if k not in state]
    if missing:
        raise ValueError(f"{path}: incomplete pconv training checkpoint (no {missing[0]!r} entry)")
    if state.get("version", 0) > _VERSION:
        raise ValueError(f"{path}: checkpoint version {state['version']} is newer than this "
                         f"pconv_torch understands ({_VERSION})")
    try:
        state["config_obj"] = TrainConfig.from_dict(state["config"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: checkpoint holds an invalid configuration: {e}") from None
    return state


def _load_failure(e: Exception) -> str:
    """One line saying why ``torch.load`` failed; for a ``weights_only`` refusal, the reason
    (the object it refused) rather than torch's advice on how to load the file anyway."""
    msg = str(e)
    if isinstance(e, pickle.UnpicklingError) and "weights only load failed" in msg.lower():
        body = (msg.split("WeightsUnpickler error:", 1)[1] if "WeightsUnpickler error:" in msg
                else msg.split("\n\n", 1)[-1])
        why = " ".join(body.split("Check the documentation")[0].split()) or " ".join(msg.split())
        return ("refused by torch.load(weights_only=True), which reads only tensors and plain "
                f"data: {why}")
    return ("not a readable pconv checkpoint (truncated, corrupt or a different kind of file): "
            f"{type(e).__name__}: {' '.join(msg.split())[:1000]}")


def _load_part(target, state: dict, key: str, path: Path) -> None:
    """``target.load_state_dict(state[key])`` for a module or an optimiser; a missing entry,
    missing or unexpected keys, or a shape mismatch give one ValueError naming ``path`` and
    ``key``."""
    sd = state.get(key)
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: checkpoint has no usable {key!r} entry")
    if isinstance(target, nn.Module):
        want = target.state_dict()
        missing = [k for k in want if k not in sd]
        extra = [k for k in sd if k not in want]
        if missing or extra:
            parts = ([f"missing {', '.join(map(repr, missing[:5]))}"] if missing else []) + (
                [f"unexpected {', '.join(map(repr, extra[:5]))}"] if extra else [])
            raise ValueError(f"{path}: {key!r} does not match the configuration: "
                             + "; ".join(parts))
    try:
        target.load_state_dict(sd)
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:
        raise ValueError(f"{path}: {key!r} does not match the configuration: "
                         f"{' '.join(str(e).split())[:500]}") from None


def read_log(out_dir) -> dict:
    """A run's ``log.csv`` as ``{column: float64 array}``, one entry per logged row (a loss
    that the row's phase does not compute is nan)."""
    with open(Path(out_dir) / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{Path(out_dir) / 'log.csv'} has no rows yet")
    return {k: np.array([float(r[k]) if r[k] != "" else np.nan for r in rows]) for k in rows[0]}


def load_generator(path, map_location="cpu"):
    """The trained :class:`~pconv_torch.networks.Generator` from a training checkpoint
    (``path`` = file or ``out_dir``), in eval mode, with its ``fill`` buffer (training mean):
    the averaged weights when the run kept them (``ema`` > 0), else the trained ones.
    Errors as :func:`load_checkpoint`."""
    path = _resolve(path)
    state = load_checkpoint(path, map_location)
    cfg = state["config_obj"]
    key = "generator_ema" if "generator_ema" in state else "generator"
    fill = state[key].get("fill") if isinstance(state[key], dict) else None
    fill = fill.tolist() if isinstance(fill, torch.Tensor) and fill.numel() == 3 else (0.5,) * 3
    g, _ = build_models(cfg, fill=fill)
    _load_part(g, state, key, path)
    g.image_size = cfg.image_size  # the scale it was trained at (pconv_torch.inference)
    return g.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu").eval()


def _rng_state() -> dict:
    np_state = np.random.get_state()
    py = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "python": [py[0], list(py[1]), py[2]],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    if "cuda" in state and torch.cuda.is_available():
        cuda = [s.cpu() for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


# Fields that may change when a run is resumed (schedule length, bookkeeping, loader).
_RESUMABLE = {"phase1_iters", "phase2_iters", "phase3_iters", "log_every", "sample_every",
              "checkpoint_every", "n_samples", "num_workers", "tensorboard", "amp", "cpu_amp",
              "channels_last", "eval_every"}


def _check_resumable(old: dict, new: TrainConfig, path: Path) -> None:
    new_d = new.to_dict()
    default = TrainConfig().to_dict()  # a field added after the checkpoint was written
    diff = [f"{k}: {old.get(k, default[k])!r} -> {new_d[k]!r}" for k in new_d
            if k not in _RESUMABLE and old.get(k, default[k]) != new_d[k]]
    if diff:
        raise ValueError(f"{path}: cannot resume, the configuration differs ({'; '.join(diff)}); "
                         "use another output directory or resume=False")


def lr_scale(step: int, total: int, decay: float) -> float:
    """Learning-rate factor at global ``step``: 1 until the last ``decay * total`` steps, then
    falling linearly to 0.1 at the last step."""
    start = total * (1.0 - decay)
    if decay <= 0 or step < start:
        return 1.0
    return 1.0 - 0.9 * (step - start) / max(total - start, 1.0)


def _trim_csv(path: Path, fields, step: int) -> None:
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


def cpu_has_fast_bf16() -> bool:
    """True where the CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX flags in Linux's
    /proc/cpuinfo). Elsewhere bf16 is emulated and slower than float32, so ``cpu_amp`` is
    ignored."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# --------------------------------------------------------------------------------------
# Distributed helpers
# --------------------------------------------------------------------------------------
def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def setup_distributed(device=None):
    """Initialise the process group from torchrun's environment (``env://``) when
    ``WORLD_SIZE > 1`` and none exists: backend nccl on CUDA, gloo on CPU; on CUDA each
    process uses ``cuda:LOCAL_RANK``. Returns ``(rank, world, device, created)``."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    created = False
    if world > 1 and dist.is_available() and not dist.is_initialized():
        want_cuda = torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda")
        if want_cuda:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = torch.device("cuda", local)
        dist.init_process_group("nccl" if want_cuda else "gloo", init_method="env://")
        created = True
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), device, created
    return 0, 1, device, created


# --------------------------------------------------------------------------------------
# Sample grids
# --------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------
_LOG_FIELDS = ["step", "phase", "iteration", "l_hole", "l_valid", "l_mse", "l_adv", "l_g",
               "l_d", "d_real", "d_fake", "lr_g", "lr_d", "images_per_s", "seconds"]


def _phase_of(step: int, iters) -> tuple[int, int]:
    """Phase (1..3) and iteration within it (0-based) of global step ``step``."""
    a, b = iters[0], iters[0] + iters[1]
    if step < a:
        return 1, step
    if step < b:
        return 2, step - a
    return 3, step - b


class _Stop:
    """First SIGINT/SIGTERM: finish the current step, save, return. Second: raise at once."""

    def __init__(self):
        self.flag, self.signame, self._old = False, None, {}

    def _handler(self, sig, frame):
        if self.flag:
            self.restore()
            raise KeyboardInterrupt
        self.flag, self.signame = True, signal.Signals(sig).name

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def restore(self):
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old = {}

    def __exit__(self, *exc):
        self.restore()
        return False


def _say(msg: str, progress: bool):
    try:
        from tqdm.auto import tqdm

        tqdm.write(msg)
    except ImportError:  # pragma: no cover
        print(msg)


def _os_error(cause: OSError, message: str) -> OSError:
    """An OSError of ``cause``'s type and errno whose text is just ``message``."""
    err = type(cause)(message)
    err.errno = cause.errno
    return err


def _make_out_dir(out: Path) -> None:
    """Create the run directory ``out``; ValueError if it is a file, OSError (one line naming
    ``out``) if it cannot be created or written."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: the output directory is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _os_error(e, f"{out}: cannot create the output directory ({e.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise PermissionError(f"{out}: the output directory is not writable")


@contextlib.contextmanager
def _out_dir_lock(out: Path):
    """Hold an exclusive ``flock`` on ``out/.train.lock`` while the body runs: a second
    training writing the same directory gets a ValueError naming it. The kernel drops the
    lock when the process exits, so a killed run never leaves a stale one."""
    _make_out_dir(out)
    try:
        fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise _os_error(e, f"{out}: cannot write to the output directory ({e.strerror})") from None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                who = f" (process {holder})" if holder.isdigit() else ""
                raise ValueError(f"{out}: another training is writing to this directory{who}; "
                                 "wait for it to end or use another output directory") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def _is_main_process() -> bool:
    dist = _dist()
    return dist.get_rank() == 0 if dist is not None else int(os.environ.get("RANK", "0")) == 0


class _Trainer:
    def __init__(self, config, data, out_dir, resume, device, progress, max_steps):
        self.cfg = config.validate()
        self.out = Path(out_dir)
        self.progress, self.max_steps = progress, max_steps
        self.rank, self.world, device, self.created_pg = setup_distributed(device)
        self.dist = _dist()
        self.device = torch.device(device) if device is not None else (
            torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
        self.cuda = self.device.type == "cuda"
        self.amp = (config.amp and torch.cuda.is_bf16_supported()) if self.cuda else (
            config.cpu_amp and cpu_has_fast_bf16())
        self.channels_last = self.cuda and config.channels_last
        self.main = self.rank == 0
        self.ckpt_path = self.out / CHECKPOINT_NAME
        self.log_path = self.out / "log.csv"
        self.eval_path = self.out / "eval.csv"
        self.samples_dir = self.out / "samples"
        if self.main:
            _make_out_dir(self.out)
            for stale in self.out.glob(f".{CHECKPOINT_NAME}.*.tmp"):  # left by a killed save
                stale.unlink(missing_ok=True)

        torch.manual_seed(config.seed)
        np.random.seed(config.seed % 2 ** 32)
        random.seed(config.seed)
        if self.cuda:
            torch.backends.cudnn.benchmark = True

        self.pairs, fill = make_training_data(config, data)
        self.g, self.d = build_models(config, fill)
        self.g.fill.copy_(fill.to(self.g.fill))
        self.g.to(self.device)
        self.d.to(self.device)
        if self.channels_last:
            self.g.to(memory_format=torch.channels_last)
            self.d.to(memory_format=torch.channels_last)
        # the averaged generator (config.ema > 0): a frozen copy that trails G's weights
        self.g_ema = copy.deepcopy(self.g).eval().requires_grad_(False) if config.ema else None
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=config.lr_g, betas=config.betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=config.lr_d, betas=config.betas)
        self.step = 0
        self.position = 0  # samples of the stream consumed, over all ranks
        self.last_saved_step = None
        self.last = {}
        if resume and self.ckpt_path.is_file():
            self._resume()  # load_state_dict copies onto the parameters' device
        elif self.main:
            for p in (self.log_path, self.eval_path):  # a fresh run starts fresh logs
                if p.exists():
                    p.unlink()
        self.g_train, self.d_train = self.g, self.d
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            if self.cuda and config.norm == "batch":
                self.g = nn.SyncBatchNorm.convert_sync_batchnorm(self.g)
            ids = [self.device.index] if self.cuda else None
            self.g_train = DDP(self.g, device_ids=ids)
            self.d_train = DDP(self.d, device_ids=ids)

    # -- checkpoint ---------------------------------------------------------------------
    def _resume(self):
        state = load_checkpoint(self.ckpt_path)
        _check_resumable(state["config"], self.cfg, self.ckpt_path)
        if state.get("world_size", 1) != self.world:
            warnings.warn(f"{self.ckpt_path}: written by {state.get('world_size')} process(es), "
                          f"resumed by {self.world}: the data stream continues where it stopped, "
                          "with a different global batch", stacklevel=3)
        p = self.ckpt_path
        _load_part(self.g, state, "generator", p)
        _load_part(self.d, state, "discriminator", p)
        if self.g_ema is not None:
            _load_part(self.g_ema, state, "generator_ema", p)
        _load_part(self.opt_g, state, "opt_g", p)
        _load_part(self.opt_d, state, "opt_d", p)
        try:
            _set_rng_state(state["rng"])
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError, AttributeError):
            raise ValueError(f"{p}: checkpoint has no usable 'rng' entry") from None
        self.step = int(state["step"])
        self.position = int(state.get("sampler", {}).get("position", self.step * self.cfg.batch_size
                                                         * self.world))
        self.last = dict(state.get("losses", {}))
        self.last_saved_step = self.step
        if self.main:  # drop rows written after the checkpoint
            for path, fields in ((self.log_path, _LOG_FIELDS), (self.eval_path, EVAL_FIELDS)):
                if path.exists():
                    _trim_csv(path, fields, self.step)

    def save(self):
        nets = (self.g, self.d) + ((self.g_ema,) if self.g_ema is not None else ())
        bad = [name for net in nets for name, t in net.state_dict().items()
               if t.is_floating_point() and not bool(torch.isfinite(t).all())]
        if bad:  # never call a checkpoint with diverged weights a good one
            ck = str(self.ckpt_path) if self.last_saved_step is not None else None
            raise TrainingDiverged(
                f"training diverged: non-finite weights ({', '.join(bad[:3])}) at step "
                f"{self.step}; not saved, the last good checkpoint (step "
                f"{self.last_saved_step}) is kept", phase=_phase_of(self.step, self.cfg.iterations)[0],
                iteration=0, step=self.step, term="weights", checkpoint=ck)
        if self.main:
            phase, it = _phase_of(min(self.step, max(self.cfg.total_steps - 1, 0)),
                                  self.cfg.iterations)
            state = {
                "format": _FORMAT, "version": _VERSION, "config": self.cfg.to_dict(),
                "step": self.step, "phase": phase, "iteration": self.step - sum(
                    self.cfg.iterations[:phase - 1]),
                "generator": self.g.state_dict(), "discriminator": self.d.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                "rng": _rng_state(), "world_size": self.world,
                **({"generator_ema": self.g_ema.state_dict()} if self.g_ema is not None else {}),
                "sampler": {"position": self.position, "seed": self.cfg.seed,
                            "global_batch": self.cfg.batch_size * self.world},
                "losses": {k: float(v) for k, v in self.last.items()},
                "torch_version": str(torch.__version__),
            }
            save_checkpoint(state, self.ckpt_path)
        self.last_saved_step = self.step

    # -- steps ----------------------------------------------------------------------------
    def _autocast(self):
        if self.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def g_shown(self):
        """The generator that is sampled, scored and exported: the average if ``ema`` > 0."""
        return self.g_ema if self.g_ema is not None else self.g

    def _update_ema(self):
        """g_ema <- d * g_ema + (1 - d) * g after a G step; d ramps up to ``ema`` over the
        first steps (d = min(ema, (1 + step) / (10 + step))), so the start is not averaged
        with the random initialisation for long."""
        if self.g_ema is None:
            return
        decay = min(self.cfg.ema, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for avg, p in zip(self.g_ema.parameters(), self.g.parameters()):
                avg.lerp_(p, 1.0 - decay)
            for avg, b in zip(self.g_ema.buffers(), self.g.buffers()):
                avg.copy_(b)

    def _evaluate(self, monitor, phase):
        """Score G on held-out and training crops; append the rows to eval.csv (with ``ema``,
        the averaged G as "generator" and the trained weights as "generator (raw)")."""
        rows = [] if self.eval_path.exists() else monitor.reference_rows(self.g.fill.cpu())
        rows += monitor.score(self.g_shown, self.step, phase, self.device, self._autocast)
        if self.g_ema is not None:
            rows += monitor.score(self.g, self.step, phase, self.device, self._autocast,
                                  name="generator (raw)")
        new = not self.eval_path.exists()
        with open(self.eval_path, "a", newline="") as f:
            w = csv.DictWriter(f, EVAL_FIELDS)
            if new:
                w.writeheader()
            w.writerows(rows)

    def _check(self, name, value, phase, it):
        """All ranks agree: raise TrainingDiverged if ``value`` is not finite anywhere."""
        v = value.detach().float().reshape(1)
        if self.dist is not None:
            v = v.clone()
            self.dist.all_reduce(v)
        if not bool(torch.isfinite(v).all()):
            ck = str(self.ckpt_path) if self.last_saved_step is not None else None
            keep = (f"the last good checkpoint {ck} (step {self.last_saved_step}) is kept"
                    if ck else "no checkpoint had been written yet")
            raise TrainingDiverged(
                f"training diverged: {name} = {float(value.detach())} at phase {phase}, iteration {it} "
                f"(step {self.step}); the weights were not updated with it and {keep}. "
                "To train again, start a new run (another out_dir) with a lower lr_g / lr_d "
                "or a different seed: a run resumes only with the configuration it started with.",
                phase=phase, iteration=it, step=self.step, term=name, checkpoint=ck)

    def _d_logits(self, real, fake, boxes):
        n = len(real)
        with self._autocast():
            logits = self.d_train(torch.cat([real, fake]), torch.cat([boxes, boxes])).float()
        return logits[:n], logits[n:]

    def _mse_terms(self, out, x, m):
        with torch.no_grad():
            return {"l_hole": losses.mse_hole(out, x, m), "l_valid": losses.mse_valid(out, x, m)}

    def train_step(self, phase, it, x, m, boxes) -> dict:
        cfg = self.cfg
        terms = {}
        if phase == 1:
            with self._autocast():
                out = self.g_train(x, m)
            out = out.float()
            l_mse = losses.mse_weighted(out, x, m, cfg.valid_weight)
            self._check("L_MSE", l_mse, phase, it)
            self.opt_g.zero_grad(set_to_none=True)
            l_mse.backward()
            self.opt_g.step()
            self._update_ema()
            terms.update(self._mse_terms(out, x, m), l_mse=l_mse)
        elif phase == 2:
            with torch.no_grad(), self._autocast():
                fake = self.g(x, m)
            fake = fake.float()
            real_l, fake_l = self._d_logits(x, fake.to(x.dtype), boxes)
            l_d = losses.discriminator_loss(real_l, fake_l)
            self._check("L_D", l_d, phase, it)
            self.opt_d.zero_grad(set_to_none=True)
            l_d.backward()
            self.opt_d.step()
            terms.update(self._mse_terms(fake, x, m), l_d=l_d,
                         l_mse=losses.mse_weighted(fake, x, m, cfg.valid_weight),
                         d_real=torch.sigmoid(real_l.detach()).mean(),
                         d_fake=torch.sigmoid(fake_l.detach()).mean())
        else:
            with self._autocast():
                out = self.g_train(x, m)
            fake = out.float()
            real_l, fake_l = self._d_logits(x, fake.detach().to(x.dtype), boxes)
            l_d = losses.discriminator_loss(real_l, fake_l)
            self._check("L_D", l_d, phase, it)
            self.opt_d.zero_grad(set_to_none=True)
            l_d.backward()
            self.opt_d.step()
            # G step against the updated D, whose parameters are frozen for it (its forward
            # runs outside DDP: no gradient to synchronise).
            for p in self.d.parameters():
                p.requires_grad_(False)
            try:
                with self._autocast():
                    g_logits = self.d(fake.to(x.dtype), boxes).float()
                l_g = losses.generator_loss(fake, x, m, g_logits, cfg.adv_weight, cfg.valid_weight)
                self._check("L_G", l_g, phase, it)
                self.opt_g.zero_grad(set_to_none=True)
                l_g.backward()
                self.opt_g.step()
                self._update_ema()
            finally:
                for p in self.d.parameters():
                    p.requires_grad_(True)
            with torch.no_grad():
                terms.update(self._mse_terms(fake, x, m), l_d=l_d, l_g=l_g,
                             l_mse=losses.mse_weighted(fake, x, m, cfg.valid_weight),
                             l_adv=losses.generator_adversarial_loss(g_logits),
                             d_real=torch.sigmoid(real_l.detach()).mean(),
                             d_fake=torch.sigmoid(fake_l.detach()).mean())
        names = sorted(terms)
        vals = torch.stack([terms[k].detach().float().reshape(()) for k in names])
        if self.dist is not None:
            self.dist.all_reduce(vals)
            vals /= self.world
        return dict(zip(names, vals.tolist()))

    # -- logging / samples --------------------------------------------------------------
    def _open_log(self):
        new = not self.log_path.exists()
        f = open(self.log_path, "a", newline="")
        w = csv.DictWriter(f, _LOG_FIELDS)
        if new:
            w.writeheader()
        return f, w

    def _samples(self, preview):
        if not self.main:
            return None
        images, masks = preview
        g = self.g_shown
        was = g.training
        g.eval()
        with torch.no_grad(), self._autocast():
            out = g(images.to(self.device), masks.to(self.device)).float()
        g.train(was)
        from PIL import Image

        self.samples_dir.mkdir(parents=True, exist_ok=True)
        path = self.samples_dir / f"step_{self.step:07d}.png"
        Image.fromarray(sample_grid(images, masks, out.cpu(), self.g.fill.cpu())).save(path)
        return path

    # -- main loop ----------------------------------------------------------------------
    def run(self) -> dict:
        cfg = self.cfg
        total = cfg.total_steps
        stop_at = total if self.max_steps is None else min(total, int(self.max_steps))
        t0 = time.perf_counter()
        status, sample_path = "finished", None
        start = self.step
        preview = preview_batch(cfg, self.pairs) if self.main else None
        tb = None
        if self.main and cfg.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                tb = SummaryWriter(str(self.out / "tb"), purge_step=start)
            except ImportError:
                tb = None
        monitor = None
        if self.main and cfg.eval_every:
            monitor = GeneralisationMonitor(cfg.image_size, seed=cfg.seed)
            if not self.eval_path.exists():
                self._evaluate(monitor, _phase_of(self.step, cfg.iterations)[0])
        stream = _StepStream(self.pairs, cfg.seed, cfg.patch_size)
        sampler = _StepBatches(len(self.pairs), cfg.seed, cfg.batch_size, self.rank, self.world,
                               self.step, stop_at, self.position)
        loader = DataLoader(stream, batch_sampler=sampler, collate_fn=_data.collate,
                            num_workers=cfg.num_workers, pin_memory=self.cuda)
        logf, logw = self._open_log() if self.main else (None, None)
        acc, n_acc, t_log = {}, 0, time.perf_counter()
        bar, bar_phase = None, None
        self.g_train.train()
        self.d_train.train()
        try:
            with _Stop() as stopper:
                for x, m, boxes in loader:
                    phase, it = _phase_of(self.step, cfg.iterations)
                    if phase != bar_phase:
                        if bar is not None:
                            bar.close()
                        bar = self._bar(phase, it)
                        bar_phase = phase
                    x = x.to(self.device, non_blocking=True)
                    m = m.to(self.device, non_blocking=True)
                    if self.channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    scale = lr_scale(self.step, cfg.total_steps, cfg.lr_decay)
                    for opt, lr in ((self.opt_g, cfg.lr_g), (self.opt_d, cfg.lr_d)):
                        for group in opt.param_groups:
                            group["lr"] = lr * scale
                    terms = self.train_step(phase, it, x, m, boxes)
                    self.step += 1
                    self.position += cfg.batch_size * self.world
                    for k, v in terms.items():
                        acc[k] = acc.get(k, 0.0) + v
                    n_acc += 1
                    if bar is not None:
                        bar.update(1)
                    end_of_phase = _phase_of(self.step, cfg.iterations)[0] != phase or \
                        self.step == total
                    if self.step % cfg.log_every == 0 or end_of_phase or self.step == stop_at:
                        now = time.perf_counter()
                        self.last = {k: v / n_acc for k, v in acc.items()}
                        row = dict(self.last, step=self.step, phase=phase, iteration=it + 1,
                                   lr_g=cfg.lr_g * scale, lr_d=cfg.lr_d * scale,
                                   seconds=round(now - t0, 3),
                                   images_per_s=round(n_acc * cfg.batch_size * self.world
                                                      / max(now - t_log, 1e-9), 2))
                        if logw is not None:
                            logw.writerow({k: row.get(k, "") for k in _LOG_FIELDS})
                            logf.flush()
                        if tb is not None:
                            for k, v in self.last.items():
                                tb.add_scalar(f"phase{phase}/{k}", v, self.step)
                        if bar is not None:
                            bar.set_postfix({k: f"{v:.4g}" for k, v in self.last.items()
                                             if k in ("l_mse", "l_d", "l_g")})
                        acc, n_acc, t_log = {}, 0, now
                    if self.step % cfg.sample_every == 0 or self.step == total:
                        sample_path = self._samples(preview) or sample_path
                    if monitor is not None and (self.step % cfg.eval_every == 0 or end_of_phase):
                        self._evaluate(monitor, phase)
                    if self.step % cfg.checkpoint_every == 0 or end_of_phase:
                        self.save()
                    if self._stop_requested(stopper):
                        status = "interrupted"
                        break
            if self.step == stop_at and stop_at < total:
                status = "stopped"
            if self.last_saved_step != self.step:
                self.save()
            if status == "interrupted" and self.main:
                _say(f"interrupted ({stopper.signame}): checkpoint saved at phase "
                     f"{_phase_of(min(self.step, total - 1), cfg.iterations)[0]}, step "
                     f"{self.step}; run again with the same out_dir to resume", self.progress)
        except KeyboardInterrupt:
            if self.main:
                _say(f"interrupted during step {self.step}: nothing saved; the last checkpoint "
                     f"(step {self.last_saved_step}) is kept", self.progress)
            raise
        finally:
            if bar is not None:
                bar.close()
            if logf is not None:
                logf.close()
            if tb is not None:
                tb.close()
        if self.step >= total and sample_path is None and self.main and start < total:
            sample_path = self._samples(preview)
        phase, it = _phase_of(min(self.step, max(total - 1, 0)), cfg.iterations)
        return {
            "status": status, "step": self.step, "phase": phase,
            "iteration": self.step - sum(cfg.iterations[:phase - 1]),
            "losses": dict(self.last), "out_dir": str(self.out),
            "checkpoint": str(self.ckpt_path), "log": str(self.log_path),
            "samples": str(self.samples_dir),
            "last_sample": str(sample_path) if sample_path else None,
            "seconds": time.perf_counter() - t0, "world_size": self.world,
            "device": str(self.device),
        }

    def _stop_requested(self, stopper) -> bool:
        flag = stopper.flag
        if self.dist is not None:
            t = torch.tensor([1.0 if flag else 0.0],
                             device=self.device if self.cuda else "cpu")
            self.dist.all_reduce(t, op=self.dist.ReduceOp.MAX)
            flag = bool(t.item() > 0)
        return flag

    def _bar(self, phase, it):
        if not (self.progress and self.main):
            return None
        from tqdm.auto import tqdm

        names = {1: "phase 1 (G, L_MSE)", 2: "phase 2 (D, L_D)", 3: "phase 3 (G+D, L_G/L_D)"}
        return tqdm(total=self.cfg.iterations[phase - 1], initial=it, desc=names[phase],
                    dynamic_ncols=True, leave=True)

    def close(self):
        if self.created_pg and self.dist is not None:
            self.dist.destroy_process_group()


def train(config: TrainConfig | str = "ci", data=None, out_dir="runs/pconv", resume: bool = True,
          device=None, progress: bool = True, *, max_steps: int | None = None) -> dict:
    """Train G and D in the poster's three phases; see the module docstring.

    Args:
        config: a :class:`TrainConfig` or a preset name.
        data: None (``config.data``), an (N, 3, H, W) image tensor, ``(images, masks)``
            tensors, or a Dataset (see :func:`make_training_data`).
        out_dir: where ``checkpoint.pt``, ``log.csv`` and ``samples/`` go.
        resume: continue from ``out_dir/checkpoint.pt`` if it exists (its configuration must
            match except for iteration counts and bookkeeping fields); False starts afresh
            and overwrites.
        device: torch device; default CUDA when available (under torchrun: ``cuda:LOCAL_RANK``).
        progress: tqdm bars per phase (rank 0 only).
        max_steps: stop (with a checkpoint) once this many steps in total have run.

    Returns:
        dict with ``status`` ("finished", "stopped" at ``max_steps``, "interrupted" by
        Ctrl-C / SIGTERM after saving), ``step`` (global), ``phase``, ``iteration`` (within
        the phase), ``losses`` (means over the last log interval: l_hole, l_valid, l_mse,
        and l_d, d_real, d_fake, l_adv, l_g where the phase computes them), paths
        ``checkpoint``, ``log``, ``samples``, ``last_sample``, ``out_dir``, and ``seconds``.

    Raises:
        TrainingDiverged: a loss became NaN/inf (the last good checkpoint is kept).
        ValueError: bad configuration, data, or an incompatible / unreadable / corrupt
            checkpoint; ``out_dir`` is a file, or another training is writing to it (each
            run holds a lock on ``out_dir/.train.lock`` while it runs).
        OSError: ``out_dir`` cannot be created or written; a checkpoint write failed (e.g.
            "no space left on device"; the previous checkpoint is kept).
    """
    if isinstance(config, str):
        config = load_config(config)
    lock = _out_dir_lock(Path(out_dir)) if _is_main_process() else contextlib.nullcontext()
    with lock:
        trainer = _Trainer(config, data, out_dir, resume, device, progress, max_steps)
        try:
            return trainer.run()
        finally:
            trainer.close()
