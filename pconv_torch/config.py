"""The training configuration: :class:`TrainConfig`, its presets, and parsing of overrides.

A :class:`TrainConfig` is everything a run depends on; it is stored in every checkpoint as a
plain dict (:meth:`TrainConfig.to_dict`). :func:`load_config` copies a preset and applies
overrides, reading strings (from ``pconv train --set KEY=VALUE``) as the field's annotated
type. The networks a configuration describes are built by
:func:`pconv_torch.networks.build_models` (re-exported here).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
import typing
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .masks import MaskChoice
from .networks import (GENERATOR_FIELDS, ConvKind, NormKind, build_models, generator_settings,
                       standardise_error, base_error)

# How a training step runs (pconv_torch.static_step): "eager" checks every loss on the host as
# it goes; the others read nothing on the host inside a step.
StepMode = typing.Literal["eager", "static", "compile", "cuda_graph"]

__all__ = ["TrainConfig", "PRESETS", "ABLATIONS", "load_config", "ablation_config", "build_models",
           "GENERATOR_FIELDS", "generator_settings"]

# Sanity bounds on sizes (documented in TrainConfig): values past them are typos that
# would exhaust memory.
_UPPER_BOUNDS = {"image_size": 1024, "width": 4.0, "d_width": 4.0, "batch_size": 1024,
                 "n_samples": 64, "epoch_length": 1_000_000, "num_workers": 64}
_MAX_BATCH_PIXELS = 2 ** 24


def _choices(hint) -> tuple | None:
    """The values a ``Literal`` hint (optionally ``| None``) allows, else None."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        return args
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1 and typing.get_origin(inner[0]) is typing.Literal:
            return (*typing.get_args(inner[0]), None)
    return None


@dataclass
class TrainConfig:
    """Everything a training run depends on (stored in every checkpoint as a plain dict).

    Model: ``image_size`` (multiple of 32 and of ``2**depth``), generator ``width`` (scales
    its filter counts), ``depth`` (4 = poster, 5 = one more level), ``norm`` (None or
    ``"batch"``), ``conv`` (``"partial"`` or ``"plain"``, the ablation), ``residual`` (a
    correction to the harmonic fill instead of the poster's sigmoid output),
    ``standardise`` (with ``residual``: standardised input, correction scaled by the known
    pixels' contrast) and ``base`` (with ``residual``: the fill corrected, ``"harmonic"``,
    ``"biharmonic"`` or ``"mixed"``; see :class:`~pconv_torch.networks.Generator`);
    discriminator ``local``
    (global + local, or global only) and ``d_width``.

    Optimisation: ``batch_size`` per process; ``phase1_iters`` / ``phase2_iters`` /
    ``phase3_iters``; Adam ``lr_g``, ``lr_d``, ``betas``; ``lr_decay``: the fraction of all
    steps at the end of the schedule over which both learning rates fall linearly to a tenth
    (0 = constant, the poster's default; a pure function of the step, so resume stays exact);
    loss weights ``adv_weight`` (1/2000)
    and ``valid_weight`` (1/6); ``balance`` in [0, 1]: 0 = the poster's L_MSE, where every pixel
    counts the same; 1 = each image weighted so that every image's PSNR counts the same
    (:func:`pconv_torch.losses.mse_weighted`), applied in phase 1, and in phase 3 too when
    ``balance_in_phase3`` (by default phase 3 trains on the poster's L_MSE: kept there, the
    balance lets the adversarial term push structure into smooth holes); ``ema``: decay of an
    exponential moving average of G's weights, updated after every G step (0 = none, the
    poster's default); when set, the
    averaged generator is the one sampled, scored and loaded by
    :func:`~pconv_torch.checkpoint.load_generator`.

    Data: ``data`` = ``"embedded"`` (the embedded photographs),
    ``"places365:ROOT"``, or an image folder path (only used when
    :func:`~pconv_torch.training.train` gets no ``data``); ``masks`` = a family of
    :mod:`pconv_torch.masks` (``"rect"``: the poster's);
    ``epoch_length`` = items per epoch of the embedded source; ``procedural`` = share of
    the embedded source's items that are dead-leaves images (:mod:`pconv_torch.procedural`);
    ``uniform_leaves`` = share of those whose disc colours are uniform in the RGB cube
    instead of a training photograph's palette; ``smooth_fields`` = share of them replaced by
    smooth colour fields (:func:`pconv_torch.procedural.smooth_field`);
    ``jitter`` = colour-jitter strength of its photograph crops
    (:func:`pconv_torch.data.color_jitter`); ``seed``; ``num_workers``.

    Bookkeeping: ``log_every``, ``sample_every``, ``checkpoint_every`` (steps), ``n_samples``
    (columns of the sample grid), ``tensorboard`` (used only if installed), ``eval_every``
    (steps between scores on held-out and training crops written to ``eval.csv``, see
    :mod:`pconv_torch.monitor`; 0 = never).

    ``amp``: bf16 autocast of the forward passes (losses in float32) on CUDA;
    ``cpu_amp``: the same on the CPU where bf16 is native
    (:func:`~pconv_torch.runtime.cpu_has_fast_bf16`: AVX-512 BF16 or AMX; ignored elsewhere);
    ``channels_last`` (CUDA only): memory format of both networks and their inputs.
    ``step_mode``: ``"eager"`` (default: each loss checked on the host as it is computed),
    ``"static"`` (the same step without any host read: fused Adam skips a step whose loss is
    not finite, and the run stops at the end of that log interval), ``"compile"`` (that step
    compiled with ``torch.compile``) or ``"cuda_graph"`` (captured once per phase and
    replayed; CUDA only); see :mod:`pconv_torch.static_step`. It may change when a run resumes.

    Construction normalises (``norm="none"`` -> None, ``betas`` -> a tuple of floats, ints
    in float fields -> float, NumPy integers -> int), then :meth:`validate` checks.

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
    norm: NormKind | None = None
    conv: ConvKind = "partial"
    residual: bool = False
    standardise: bool = False
    base: str = "harmonic"
    local: bool = True
    d_width: float = 1.0
    batch_size: int = 16
    phase1_iters: int = 25_000
    phase2_iters: int = 6_000
    phase3_iters: int = 94_000
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    lr_decay: float = 0.0
    betas: tuple[float, float] = (0.5, 0.999)
    adv_weight: float = 1 / 2000
    valid_weight: float = 1 / 6
    balance: float = 0.0
    balance_in_phase3: bool = False
    ema: float = 0.0
    data: str = "embedded"
    masks: MaskChoice = "rect"
    epoch_length: int = 1024
    procedural: float = 0.0
    uniform_leaves: float = 0.0
    smooth_fields: float = 0.0
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
    step_mode: StepMode = "eager"

    def __post_init__(self):
        if isinstance(self.norm, str) and self.norm.lower() in ("none", ""):
            self.norm = None
        try:
            self.betas = tuple(float(b) for b in self.betas)
        except (TypeError, ValueError):
            pass  # validate() names the field
        for name, hint in _hints().items():
            v = getattr(self, name)
            if hint is int and _is_int(v):
                setattr(self, name, int(v))
            elif hint is float and _is_number(v):
                setattr(self, name, float(v))
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
        """Raise ValueError naming the first bad field; return ``self`` unchanged."""

        def bad(name, why):
            raise ValueError(f"TrainConfig.{name}={getattr(self, name)!r}: {why}")

        for name, hint in _hints().items():  # the annotated type of every scalar field
            v = getattr(self, name)
            if hint is int and not _is_int(v):
                bad(name, "must be an integer")
            if hint is float and not _is_number(v):
                bad(name, "must be a finite number")
            if hint is bool and not isinstance(v, bool):
                bad(name, "must be True or False")
            allowed = _choices(hint)
            if allowed is not None and v not in allowed:
                bad(name, "must be one of " + ", ".join(repr(a) for a in allowed))
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
        if not (isinstance(self.betas, tuple) and len(self.betas) == 2
                and all(_is_number(b) and 0.0 <= b < 1.0 for b in self.betas)):
            bad("betas", "must be two numbers in [0, 1)")
        if self.batch_size < 1 or self.epoch_length < 1:
            bad("batch_size" if self.batch_size < 1 else "epoch_length", "must be >= 1")
        for name in ("procedural", "uniform_leaves", "smooth_fields", "jitter", "lr_decay",
                     "balance"):
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
        if not 0 <= self.seed < 2 ** 32:
            bad("seed", "must be in [0, 2**32) (the range NumPy's random generators accept)")
        for name, bound in _UPPER_BOUNDS.items():
            if getattr(self, name) > bound:
                bad(name, f"must be <= {bound} (a bound on memory use)")
        if self.batch_size * self.image_size ** 2 > _MAX_BATCH_PIXELS:
            bad("batch_size", f"batch_size * image_size**2 = "
                f"{self.batch_size * self.image_size ** 2} pixels per batch must be <= 2**24 = "
                f"{_MAX_BATCH_PIXELS} (a bound on memory use; at image_size "
                f"{self.image_size}: batch_size <= {_MAX_BATCH_PIXELS // self.image_size ** 2})")
        why = standardise_error(self.residual, self.standardise)
        if why:
            bad("standardise", f"{why}; with residual=False set standardise=False too")
        why = base_error(self.residual, self.base)
        if why:
            bad("base", why)
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


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@functools.cache
def _hints() -> dict:
    """``{field name: annotated type}`` of :class:`TrainConfig`, in field order."""
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig)}


_CPU = TrainConfig(
    image_size=64, width=0.5, d_width=0.5, batch_size=16,
    phase1_iters=6000, phase2_iters=500, phase3_iters=1500,
    lr_g=5e-4, lr_d=2e-4, betas=(0.9, 0.999), lr_decay=0.3, ema=0.998, residual=True,
    standardise=True, procedural=0.5, uniform_leaves=0.5, jitter=0.1, cpu_amp=True, eval_every=500,
    log_every=25, sample_every=500, checkpoint_every=500, balance=0.5)

PRESETS: dict[str, TrainConfig] = {
    # For tests and notebooks in CI: 32x32, 1/8 width, a handful of iterations.
    "ci": TrainConfig(
        image_size=32, width=0.125, d_width=0.25, batch_size=4,
        phase1_iters=6, phase2_iters=3, phase3_iters=6, lr_g=1e-3, lr_d=1e-3,
        epoch_length=64, log_every=1, sample_every=5, checkpoint_every=5, n_samples=4,
        tensorboard=False),
    # The shipped models (pconv_torch.shipped), with bf16 autocast on the CPU; see the
    # justification in load_config's docstring.
    "cpu": _CPU,
    # What the book's notebooks train live (notebooks 5-8: PCONV_PRESET, default "book"): the
    # poster's generator on the cpu data, at a quarter width and a fifth of the steps. Enough to
    # show the phases; the book's results come from the shipped cpu models.
    # sample_every=100 puts a sample grid exactly at every phase end (600, 700, 1300).
    "book": TrainConfig(
        image_size=64, width=0.25, d_width=0.25, batch_size=8,
        phase1_iters=600, phase2_iters=100, phase3_iters=600,
        procedural=0.5, uniform_leaves=0.5, jitter=0.1, cpu_amp=True, eval_every=300,
        log_every=10, sample_every=100, checkpoint_every=200, tensorboard=False),
    # The 128x128 shipped model (pconv_torch.shipped, "full_128"), for a CUDA GPU: the cpu
    # recipe at twice the side, batch 32, data prepared by 6 worker processes.
    # (cpu_amp off: on CUDA ``amp`` applies; trained before standardise and balance were
    # measured)
    "gpu": dataclasses.replace(
        _CPU, standardise=False, balance=0.0, image_size=128, batch_size=32, phase1_iters=3000,
        phase2_iters=250, phase3_iters=750, cpu_amp=False, num_workers=6, eval_every=1000,
        log_every=50, sample_every=1000, checkpoint_every=1000, tensorboard=False),
    # The poster's schedule at 128x128 and full width, for a GPU; 8 loader processes keep the
    # crops off the step's critical path (one core makes a batch of 16 in about 10 ms).
    "paper": TrainConfig(num_workers=8),
}


def _type_name(hint) -> str:
    allowed = _choices(hint)
    if allowed is not None:
        return "one of " + ", ".join(repr(a) for a in allowed)
    return hint.__name__ if isinstance(hint, type) else str(hint)


def _parse(hint, text: str):
    """``text`` read as a value of the annotated type ``hint`` (bool, int, float, str, an
    optional one, or a tuple of one of them); ValueError if it cannot be."""
    if hint is str:
        return text
    s = text.strip()
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        if s.lower() in ("none", ""):
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _parse(inner, s)
    if typing.get_origin(hint) is tuple:
        return tuple(_parse(args[0], part) for part in s.strip("()[] ").split(","))
    if typing.get_origin(hint) is typing.Literal:
        if s not in args:
            raise ValueError(s)
        return s
    if hint is bool:
        if s.lower() in ("1", "true", "yes", "on"):
            return True
        if s.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(s)
    if hint is int:
        try:
            return int(s)
        except ValueError:
            f = float(s)  # "1e3" is 1000
            if not f.is_integer():
                raise
            return int(f)
    if hint is float:
        return float(Fraction(s))  # also "1/2000"
    raise TypeError(f"no parser for {hint!r}")


def load_config(preset: str = "ci", **overrides) -> TrainConfig:
    """A copy of ``PRESETS[preset]`` with ``overrides`` applied (strings are read as the
    field's annotated type, so a command line can pass ``lr_g="1e-4"``, ``adv_weight="1/2000"``,
    ``betas="0.5,0.9"``, ``local="false"`` or ``norm="none"``).

    Presets:

    ``ci``
        32x32 images, generator width 1/8 (8..32 filters), discriminator width 1/4, batch 4,
        6 / 3 / 6 iterations: the whole pipeline (three phases, checkpoint, log, samples) at
        the smallest size. Trains nothing worth looking at.
    ``cpu``
        The shipped models' recipe (:mod:`pconv_torch.shipped`). 64x64 images, width 1/2 for
        both networks, batch 16, 6,000 / 500 / 1,500 iterations (phase 3 kept short: longer, it
        lowered the held-out scores, see the README); Adam with lr 5e-4 (G) and
        2e-4 (D), betas (0.9, 0.999), both falling linearly to a tenth over the last 30 % of
        the steps (``lr_decay=0.3``); a moving average of G's weights (``ema=0.998``) is the
        generator that is kept; the generator corrects the harmonic fill of the hole
        (``residual=True``), seeing the image standardised by its known pixels' mean and
        contrast and scaling its correction by that contrast (``standardise=True``); the
        embedded photographs with half the items dead-leaves
        images (``procedural=0.5``; half of those in colours from the whole RGB cube,
        ``uniform_leaves=0.5``) and colour jitter 0.1 on the rest; bf16 autocast where the
        CPU has native bf16; held-out scores every 500 steps. 64x64 keeps the poster's
        geometry (rectangular holes of 1/8..1/2 of the side, a local patch of half the image,
        four encoder levels) with a quarter of the pixels; half width takes the FLOPs per
        image down another 4x (G: 8.65 -> 0.55 GFLOP per forward pass). Wall times are in the
        README.
    ``book``
        What notebooks 5-8 train live: the ``cpu`` data at a quarter width, batch 8 and
        600 / 100 / 600 iterations, with the poster's optimiser and output layer (no weight
        averaging, no learning-rate decay, no harmonic fill), so that the three phases show
        from scratch.
    ``gpu``
        The 128x128 shipped model (``full_128`` in :mod:`pconv_torch.shipped`), for a CUDA
        GPU: the ``cpu`` recipe and data at 128x128, batch 32 (images prepared by 6 worker
        processes), 3,000 / 250 / 750 iterations, held-out scores every 1,000 steps. The
        width stays 1/2, which keeps the shipped weights small; the step count is what fitted
        the few minutes of GPU time it was trained in (README).
    ``paper``
        128x128, full width (3,605,967 + 5,330,305 parameters), batch 16, the poster's
        25,000 / 6,000 / 94,000 iterations, Adam 2e-4 with betas (0.5, 0.999): for a GPU
        (bf16 autocast and channels-last on CUDA), with 8 data-loading processes. On a GPU,
        ``step_mode="cuda_graph"`` (or ``"compile"``) takes the launch overhead out of the
        step (:mod:`pconv_torch.static_step`).

    Raises ValueError for an unknown preset, an unknown key (with the closest valid ones)
    or a bad value.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    hints = _hints()
    unknown = [k for k in overrides if k not in hints]
    if unknown:
        close = {k: difflib.get_close_matches(k, hints, n=2) for k in unknown}
        hint = "; ".join(f"{k!r}" + (f" (did you mean {', '.join(v)}?)" if v else "")
                         for k, v in close.items())
        raise ValueError(f"unknown training option(s) {hint}; valid options: "
                         f"{', '.join(sorted(hints))}")
    values = {}
    for k, v in overrides.items():
        try:
            values[k] = _parse(hints[k], v) if isinstance(v, str) else v
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"TrainConfig.{k}: cannot read {v!r} as "
                             f"{_type_name(hints[k])}") from None
    return dataclasses.replace(PRESETS[preset], **values)


# The poster's ablations: name -> (what it is, overrides of a preset). ``mse_only`` also
# gets phase 3's steps in phase 1 (see ablation_config).
ABLATIONS: dict[str, tuple[str, dict]] = {
    "full": ("partial convolutions, global + local discriminators, three phases", {}),
    "mse_only": ("the same generator on L_MSE only, for phases 1 + 3's steps",
                 {"phase2_iters": 0, "phase3_iters": 0}),
    "plain_conv": ("plain convolutions on the mean-filled input (ablation)", {"conv": "plain"}),
    "global_only": ("global discriminator only (ablation)", {"local": False}),
}


def ablation_config(name: str, preset: str = "cpu") -> TrainConfig:
    """The configuration of ablation ``name`` (a key of :data:`ABLATIONS`) at ``preset``.

    ``full`` is the preset itself; ``plain_conv`` and ``global_only`` change one field.
    ``mse_only`` trains G on L_MSE alone for ``phase1_iters + phase3_iters`` steps (phases 2
    and 3 emptied), as many G steps as the full model takes, so that comparing the two is
    not a comparison of training lengths.
    """
    if name not in ABLATIONS:
        raise ValueError(f"unknown ablation {name!r}; choose one of {list(ABLATIONS)}")
    overrides = dict(ABLATIONS[name][1])
    if name == "mse_only":
        base = load_config(preset)
        overrides["phase1_iters"] = base.phase1_iters + base.phase3_iters
    return load_config(preset, **overrides)
