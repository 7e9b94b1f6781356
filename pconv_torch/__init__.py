"""PyTorch implementation of partial-convolution GAN inpainting.

Mask convention inside the package: 1 = valid (known) pixel, 0 = hole.

``import pconv_torch`` loads no submodule: each name below, and each submodule
(``pconv_torch.shipped``...), is imported on first use (PEP 562), so ``pconv_torch.inpaint``
does not load the trainer, OpenCV or SciPy.
"""

from __future__ import annotations

import importlib
import importlib.util

# name -> the submodule that defines it (the submodules themselves map to None)
_LAZY: dict[str, str | None] = {
    "inpaint": "inference",
    "PartialConv2d": "partial_conv",
    "partial_conv2d": "partial_conv",
    "partial_conv2d_naive": "partial_conv",
    "check_binary_mask": "partial_conv",
    "Generator": "networks",
    "Discriminator": "networks",
    "architecture_table": "summary",
    "format_table": "summary",
    "TrainConfig": "config",
    "PRESETS": "config",
    "load_config": "config",
    "train": "training",
    "TrainingDiverged": "training",
    "load_generator": "checkpoint",
    "mse_hole": "losses",
    "mse_valid": "losses",
    "mse_weighted": "losses",
    "discriminator_loss": "losses",
    "generator_adversarial_loss": "losses",
    "generator_loss": "losses",
    **{module: None for module in ("data", "evaluate", "losses", "masks", "networks", "summary",
                                   "training")},
}


def pretrained(name: str | None = None, weights_dir=None):
    """The shipped generators: ``pretrained()`` lists their names, ``pretrained(name)``
    returns one in eval mode, its file checked against the manifest's SHA-256 (see
    :func:`pconv_torch.shipped.pretrained`)."""
    from .shipped import pretrained as _pretrained

    return _pretrained(name, weights_dir)


def __getattr__(name: str):
    if name not in _LAZY:  # any other submodule, as ``pconv_torch.shipped``
        if name.startswith("_") or importlib.util.find_spec(f".{name}", __name__) is None:
            raise AttributeError(f"module 'pconv_torch' has no attribute {name!r}")
        return importlib.import_module(f".{name}", __name__)
    module = _LAZY[name]
    value = importlib.import_module(f".{module or name}", __name__)
    if module is not None:
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["inpaint", "pretrained", *(name for name in _LAZY if name != "inpaint")]
