"""PyTorch implementation of partial-convolution GAN inpainting.

Mask convention inside the package: 1 = valid (known) pixel, 0 = hole.
"""

from . import losses
from .losses import (
    discriminator_loss,
    generator_adversarial_loss,
    generator_loss,
    mse_hole,
    mse_valid,
    mse_weighted,
)
from .partial_conv import PartialConv2d, check_binary_mask, partial_conv2d, partial_conv2d_naive

__all__ = [
    "PartialConv2d",
    "partial_conv2d",
    "partial_conv2d_naive",
    "check_binary_mask",
    "losses",
    "mse_hole",
    "mse_valid",
    "mse_weighted",
    "discriminator_loss",
    "generator_adversarial_loss",
    "generator_loss",
]
