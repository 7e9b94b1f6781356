"""Generators this package ships, verified on load, and the command that reproduces them.

``pconv_torch.pretrained()`` lists the names; ``pconv_torch.pretrained(name)`` returns that
generator in eval mode on the CPU. The files live in ``pconv_torch/weights/``:
``<name>.safetensors`` (the generator's ``state_dict``, including its ``fill`` buffer), the
run's training curves ``<name>.log.csv`` and ``<name>.eval.csv`` (see
:mod:`pconv_torch.monitor`), and one ``manifest.json`` that gives, per model, the file's SHA-256, the generator's configuration,
the training configuration and how long training took. Every load recomputes the SHA-256 and
refuses a file that does not match, naming it.

The four models of the comparison are the full GAN and the poster's three ablations at 64x64,
all trained with the same data, seeds and schedule on the CPU (:data:`SHIPPED`):

=============== =============================================================================
``full``        partial convolutions, global + local discriminators, three phases (default)
``mse_only``    the same generator trained on L_MSE alone for as many steps as the full
                model's phases 1 + 3 (so the comparison is not one of training lengths)
``plain_conv``  ``nn.Conv2d`` instead of partial convolutions, on the mean-filled input
``global_only`` only the global discriminator
=============== =============================================================================

A fifth, ``full_128``, is the full model at 128x128 (the ``gpu`` preset), trained on a CUDA
GPU, without the standardised input and the balance of the other four; it is used when named
(``pretrained("full_128")``, ``inpaint(..., model="full_128")``).

Loading needs neither the trainer nor the exporter: those live in :mod:`pconv_torch.reproduce`,
which the command below runs. Reproduce every file from scratch (``runs/shipped/<name>/`` hold
the training runs; a killed run resumes)::

    python -m pconv_torch.shipped --out runs/shipped

or, on two cores, two models at a time with one thread each (as the shipped files were made)::

    OMP_NUM_THREADS=1 python -m pconv_torch.shipped --only full mse_only &
    OMP_NUM_THREADS=1 python -m pconv_torch.shipped --only global_only plain_conv

and the 128x128 model, on a GPU::

    python -m pconv_torch.shipped --only full_128 --device cuda
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .config import ABLATIONS, ablation_config
from .networks import GENERATOR_FIELDS

__all__ = ["pretrained", "default_model_name", "model_scale", "manifest", "SHIPPED", "SOURCES",
           "LABELS", "shipped_config", "reproduce_command", "training_curves", "WEIGHTS_DIR"]

WEIGHTS_DIR = Path(__file__).parent / "weights"
MANIFEST = "manifest.json"
DEFAULT_MODEL = "full"

# The models of the comparison: one per ablation of :data:`pconv_torch.config.ABLATIONS`, at
# the ``cpu`` preset.
SHIPPED: tuple[str, ...] = tuple(ABLATIONS)

# Every shipped model: name -> (ablation, preset) that trains it.
SOURCES: dict[str, tuple[str, str]] = {**{name: (name, "cpu") for name in SHIPPED},
                                       "full_128": ("full", "gpu")}

# name -> the label the book's tables and figures give the model
LABELS: dict[str, str] = {"full": "PConv GAN (full)", "mse_only": "MSE only",
                          "plain_conv": "plain conv GAN", "global_only": "global D only",
                          "full_128": "PConv GAN (full, 128x128)"}


def shipped_config(name: str):
    """The :class:`~pconv_torch.config.TrainConfig` that trains shipped model ``name``."""
    if name not in SOURCES:
        raise ValueError(f"unknown shipped model {name!r}; choose one of {sorted(SOURCES)}")
    return ablation_config(*SOURCES[name])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest(weights_dir=None) -> dict:
    """The parsed ``manifest.json`` (``{"models": {name: entry}, ...}``)."""
    path = Path(weights_dir or WEIGHTS_DIR) / MANIFEST
    if not path.is_file():
        return {"models": {}}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: unreadable manifest ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ValueError(f"{path}: not a pconv weights manifest (no 'models' table)")
    return data


def training_curves(name: str, weights_dir=None) -> tuple[Path, Path]:
    """Paths of the shipped run's ``log.csv`` (losses) and ``eval.csv`` (held-out scores)."""
    d = Path(weights_dir or WEIGHTS_DIR)
    return d / f"{name}.log.csv", d / f"{name}.eval.csv"


def default_model_name() -> str:
    """The model :func:`pconv_torch.inpaint` and ``pconv inpaint`` use when none is given:
    ``full`` (64x64) at every image size. Through ``inpaint`` it scores above ``full_128`` on
    the held-out photographs at their own size, at every hole size (README, Results)."""
    if DEFAULT_MODEL not in manifest()["models"]:
        raise ValueError(f"no shipped weights in {WEIGHTS_DIR} (expected '{DEFAULT_MODEL}'); "
                         "reproduce them with: python -m pconv_torch.shipped --out runs/shipped")
    return DEFAULT_MODEL


def model_scale(name: str) -> int:
    """The image side the shipped model ``name`` was trained at."""
    return int(_entry(name, manifest())["image_size"])


def _entry(name: str, man: dict) -> dict:
    models = man["models"]
    if name not in models:
        raise ValueError(f"unknown pretrained model {name!r}; available: {sorted(models) or 'none'}")
    return models[name]


def _check_entry(name: str, entry, where: Path) -> None:
    """ValueError naming the manifest ``where`` and model ``name`` unless ``entry`` has the
    fields :func:`pretrained` reads, of the right types, and a generator configuration of
    :data:`~pconv_torch.networks.GENERATOR_FIELDS` only."""
    bad = f"{where}: model {name!r}: "
    if not isinstance(entry, dict):
        raise ValueError(bad + "entry is not a table")
    for key, kind in (("file", str), ("sha256", str), ("image_size", int), ("generator", dict)):
        if not isinstance(entry.get(key), kind):
            raise ValueError(bad + (f"no {key!r} field" if key not in entry else
                                    f"{key!r} must be a {kind.__name__}"))
    known = set(GENERATOR_FIELDS)
    unknown = sorted(set(entry["generator"]) - known)
    if unknown:
        raise ValueError(bad + f"unknown generator option {unknown[0]!r} (known: "
                         f"{', '.join(sorted(known))})")


def pretrained(name: str | None = None, weights_dir=None):
    """``pretrained()``: the sorted list of shipped model names.
    ``pretrained(name)``: that :class:`~pconv_torch.networks.Generator`, in eval mode on the
    CPU, after checking the file's SHA-256 against the manifest.

    Raises ValueError naming the file if it is missing, altered or unreadable.
    """
    from safetensors.torch import load_file

    from .networks import Generator

    man = manifest(weights_dir)
    if name is None:
        return sorted(man["models"])
    entry = _entry(name, man)
    _check_entry(name, entry, Path(weights_dir or WEIGHTS_DIR) / MANIFEST)
    path = Path(weights_dir or WEIGHTS_DIR) / entry["file"]
    if not path.is_file():
        raise ValueError(f"{path}: weights file of pretrained model {name!r} is missing")
    digest = _sha256(path)
    if digest != entry["sha256"]:
        raise ValueError(f"{path}: SHA-256 {digest[:16]}... does not match the manifest's "
                         f"{entry['sha256'][:16]}...: the file is corrupt or was altered")
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types
        raise ValueError(f"{path}: unreadable safetensors file ({e})") from None
    try:
        g = Generator(**entry["generator"], image_size=int(entry["image_size"]),
                      fill=state["fill"].tolist())
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: cannot build the manifest's generator {entry['generator']} "
                         f"({type(e).__name__}: {e})") from None
    try:
        g.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not match the manifest's generator "
                         f"{entry['generator']}: {str(e)[:200]}") from None
    return g.eval()


def reproduce_command(name: str) -> str:
    """The command that trains shipped model ``name`` from scratch and exports it."""
    gpu = name in SOURCES and SOURCES[name][1] == "gpu"
    return f"python -m pconv_torch.shipped --only {name}" + (" --device cuda" if gpu else "")


if __name__ == "__main__":  # the documented command; the trainer is imported only here
    from .reproduce import main

    raise SystemExit(main())
