"""PyTorch implementation of partial-convolution GAN inpainting.

Mask convention inside the package: 1 = valid (known) pixel, 0 = hole.
"""

from . import data, evaluate, losses, masks, networks, summary, training
from .losses import (
    discriminator_loss,
    generator_adversarial_loss,
    generator_loss,
    mse_hole,
    mse_valid,
    mse_weighted,
)
from .networks import Discriminator, Generator
from .partial_conv import PartialConv2d, check_binary_mask, partial_conv2d, partial_conv2d_naive
from .summary import architecture_table, format_table
from .checkpoint import load_generator
from .config import PRESETS, TrainConfig, load_config
from .training import TrainingDiverged, train
from .inference import inpaint


def pretrained(name: str | None = None, weights_dir=None):
    """The shipped generators: ``pretrained()`` lists their names, ``pretrained(name)``
    returns one in eval mode, its file checked against the manifest's SHA-256 (see
    :func:`pconv_torch.shipped.pretrained`, imported on first use so that
    ``python -m pconv_torch.shipped`` runs cleanly)."""
    from .shipped import pretrained as _pretrained

    return _pretrained(name, weights_dir)

__all__ = [
    "inpaint",
    "pretrained",
    "PartialConv2d",
    "partial_conv2d",
    "partial_conv2d_naive",
    "check_binary_mask",
    "Generator",
    "Discriminator",
    "architecture_table",
    "format_table",
    "TrainConfig",
    "PRESETS",
    "load_config",
    "train",
    "load_generator",
    "TrainingDiverged",
    "data",
    "evaluate",
    "losses",
    "masks",
    "networks",
    "summary",
    "training",
    "mse_hole",
    "mse_valid",
    "mse_weighted",
    "discriminator_loss",
    "generator_adversarial_loss",
    "generator_loss",
]
