"""The vocabulary of the partial-convolution test cases, shared by every test file.

Mask forms (``MASK_FORMS``), the three mask shapes a partial convolution accepts:
``"one-channel"`` (N, 1, H, W) broadcast over the input channels, ``"per-channel"``
(N, C_in, H, W), ``"groups"`` (N, G, H, W) with ``mask_groups``.

Mask contents (``mask_contents``): ``"all-hole"``, ``"all-valid"``, ``"one-hole-pixel"``
(one hole pixel per image, elsewhere valid), or a number p: each entry valid with
probability p.

Also shared: :data:`X33`, the 3x3 image the hand-computed cases add up, and :func:`seed_of`,
a seed that depends only on a case's parameters (not on the order the cases run in).
"""

import zlib

import numpy as np

MASK_FORMS = ("one-channel", "per-channel", "groups")
NAMED_CONTENTS = ("all-hole", "all-valid", "one-hole-pixel")

# x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]] as (1, 1, 3, 3) float64: small enough to add up by hand
X33 = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)


def seed_of(*parts) -> int:
    """A seed for the case described by ``parts`` (CRC-32 of their repr)."""
    return zlib.crc32(repr(parts).encode())


def mask_groups(form, c_in, splits=2):
    """(number of mask channels G, mask_groups or None) for ``form`` and ``c_in`` channels;
    ``splits`` = 2 or 3 groups for the "groups" form (as far as ``c_in`` allows)."""
    if form == "one-channel":
        return 1, None
    if form == "per-channel":
        return c_in, None
    if form != "groups":
        raise ValueError(f"unknown mask form {form!r}; one of {MASK_FORMS}")
    if c_in == 1:
        groups = (1,)
    elif splits == 3 and c_in > 3:
        groups = (2, 1, c_in - 3)
    else:
        groups = (c_in // 2, c_in - c_in // 2) if splits == 2 else (1, c_in - 1)
    return len(groups), groups


def mask_contents(content, shape, rng):
    """A float64 binary mask of ``shape`` (N, G, H, W) with the given content."""
    n, g, h, w = shape
    if content == "all-hole":
        return np.zeros(shape)
    if content == "all-valid":
        return np.ones(shape)
    if content == "one-hole-pixel":
        m = np.ones(shape)
        m[np.arange(n), :, rng.integers(0, h, n), rng.integers(0, w, n)] = 0
        return m
    if isinstance(content, str):
        raise ValueError(f"unknown mask content {content!r}; one of {NAMED_CONTENTS} or a number")
    return (rng.random(shape) < content).astype(np.float64)


def random_mask(form, content, x_shape, rng, splits=2, dtype=np.float64):
    """A mask of ``form`` and ``content`` for an input of shape ``x_shape`` (N, C_in, H, W),
    and its ``mask_groups``: ((N, G, H, W) array of ``dtype``, mask_groups or None)."""
    n, c_in, h, w = x_shape
    g, groups = mask_groups(form, c_in, splits)
    return mask_contents(content, (n, g, h, w), rng).astype(dtype), groups
