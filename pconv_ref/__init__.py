"""From-scratch NumPy/Numba reference for partial-convolution inpainting.

Channels-first (N, C, H, W) arrays, weights (C_out, C_in, kh, kw), torch's stride/padding;
mask 1 = valid, 0 = hole. cs231n style: ``out, cache = *_forward(...)``,
``grads = *_backward(dout, cache)``.
"""

from .conv import (
    conv2d_backward,
    conv2d_backward_naive,
    conv2d_forward,
    conv2d_forward_naive,
    conv_output_size,
)
from .fast import (
    conv2d_backward_fast,
    conv2d_forward_fast,
    partial_conv2d_backward_fast,
    partial_conv2d_forward_fast,
)
from .gradcheck import compare, numerical_gradient, relative_error
from .layers import (
    concat_backward,
    concat_forward,
    flatten_backward,
    flatten_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    linear_backward,
    linear_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    upsample_nearest2x_backward,
    upsample_nearest2x_forward,
)
from .losses import (
    discriminator_loss,
    generator_adversarial_loss,
    generator_loss,
    mse_hole,
    mse_valid,
    mse_weighted,
)
from .networks import (
    discriminator_backward,
    discriminator_forward,
    discriminator_loss_and_grads,
    generator_backward,
    generator_forward,
    generator_loss_and_grads,
    generator_mask_pyramid,
)
from .partial_conv import (
    expand_mask,
    mask_update,
    partial_conv2d_backward,
    partial_conv2d_backward_naive,
    partial_conv2d_forward,
    partial_conv2d_forward_naive,
)

__all__ = [
    # conv.py
    "conv2d_forward_naive",
    "conv2d_backward_naive",
    "conv2d_forward",
    "conv2d_backward",
    "conv_output_size",
    # fast.py: Numba kernels, same signatures and results as the NumPy functions
    "conv2d_forward_fast",
    "conv2d_backward_fast",
    "partial_conv2d_forward_fast",
    "partial_conv2d_backward_fast",
    # partial_conv.py
    "partial_conv2d_forward",
    "partial_conv2d_backward",
    "partial_conv2d_forward_naive",
    "partial_conv2d_backward_naive",
    "expand_mask",
    "mask_update",
    # layers.py
    "upsample_nearest2x_forward",
    "upsample_nearest2x_backward",
    "concat_forward",
    "concat_backward",
    "relu_forward",
    "relu_backward",
    "leaky_relu_forward",
    "leaky_relu_backward",
    "sigmoid_forward",
    "sigmoid_backward",
    "flatten_forward",
    "flatten_backward",
    "linear_forward",
    "linear_backward",
    # losses.py
    "mse_hole",
    "mse_valid",
    "mse_weighted",
    "discriminator_loss",
    "generator_adversarial_loss",
    "generator_loss",
    # networks.py
    "generator_forward",
    "generator_backward",
    "generator_mask_pyramid",
    "discriminator_forward",
    "discriminator_backward",
    "generator_loss_and_grads",
    "discriminator_loss_and_grads",
    # gradcheck.py
    "numerical_gradient",
    "relative_error",
    "compare",
]
