"""PyTorch implementation of partial-convolution GAN inpainting.

Mask convention inside the package: 1 = valid (known) pixel, 0 = hole.
"""

from . import data, losses, masks, networks, summary
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

__all__ = [
    "PartialConv2d",
    "partial_conv2d",
    "partial_conv2d_naive",
    "check_binary_mask",
    "Generator",
    "Discriminator",
    "architecture_table",
    "format_table",
    "data",
    "losses",
    "masks",
    "networks",
    "summary",
    "mse_hole",
    "mse_valid",
    "mse_weighted",
    "discriminator_loss",
    "generator_adversarial_loss",
    "generator_loss",
]
