"""Where holes meet known pixels: the mean-filled input and the composited output.

Images (3, H, W) or (N, 3, H, W) and masks (1, H, W) or (N, 1, H, W), **1 = valid, 0 = hole**,
as torch tensors or NumPy arrays alike.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["mean_fill", "composite"]


def _channel_view(mean, like):
    """``mean`` (3,) as something that broadcasts over (3, H, W) / (N, 3, H, W) ``like``."""
    if isinstance(like, torch.Tensor):
        return torch.as_tensor(np.asarray(mean) if not isinstance(mean, torch.Tensor) else mean,
                               dtype=like.dtype, device=like.device).reshape(-1, 1, 1)
    return np.asarray(mean, dtype=like.dtype).reshape(-1, 1, 1)


def mean_fill(image, mask, mean):
    """Replace holes by the per-channel training mean: ``M*I + (1-M)*mean``.

    Args:
        image: (3, H, W) or (N, 3, H, W), tensor or array, in [0, 1].
        mask: (1, H, W) or (N, 1, H, W), 1 = valid, 0 = hole.
        mean: (3,) per-channel mean of the training set.
    Returns: same shape and type as ``image``.
    """
    return mask * image + (1 - mask) * _channel_view(mean, image)


def composite(image, output, mask):
    """What a user gets back: known pixels from ``image``, holes from ``output``:
    ``M*I + (1-M)*G``.

    Args:
        image, output: (3, H, W) or (N, 3, H, W), tensor or array.
        mask: (1, H, W) or (N, 1, H, W), 1 = valid, 0 = hole.
    """
    return mask * image + (1 - mask) * output
