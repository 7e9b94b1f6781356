"""PIL images of any mode flattened to plain 8-bit RGB or gray: the one converter that
:mod:`pconv_torch.data` (photographs, onto white) and :mod:`pconv_torch.masks` (mask images,
onto black) share.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["WHITE", "BLACK", "HIGH_BIT_MODES", "flatten"]

#: Background for photographs: transparent pixels become white.
WHITE = (255, 255, 255)
#: Background for mask images: transparent pixels become black (not a hole).
BLACK = (0, 0, 0)

#: 16-bit and 32-bit integer modes and 32-bit float: one gray channel each.
HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_ALPHA_MODES = ("RGBA", "LA", "La", "RGBa", "PA")


def flatten(img: Image.Image, mode: str = "RGB", background=WHITE) -> Image.Image:
    """Any PIL mode -> an 8-bit ``mode`` image (``"RGB"`` or ``"L"``) without transparency.

    Args:
        img: a PIL image of any mode.
        mode: ``"RGB"`` for colour, ``"L"`` for gray (luminance).
        background: ``(r, g, b)`` that transparency (an alpha channel, a palette's
            transparent entry) is composited onto: :data:`WHITE` for photographs,
            :data:`BLACK` for mask images (transparent = not a hole).
    Returns:
        ``img`` itself when it already has ``mode``, else a new image. 16-bit and 32-bit
        integer images are rescaled, not clipped (0..65535 -> 0..255 when the maximum exceeds
        255); float images are taken as [0, 1] when their maximum is at most 1, else as
        0..255; both are rounded to 8 bits.
    """
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    if img.mode in HIGH_BIT_MODES:
        a = np.asarray(img).astype(np.float64)
        if img.mode == "F":
            a = a * 255.0 if a.max() <= 1.0 else a
        elif a.max() > 255:
            a = a / 257.0  # 0..65535 -> 0..255
        gray = Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), "L")
        return gray.convert("RGB") if mode == "RGB" else gray
    if img.mode == "P":  # a palette without transparency comes out opaque
        img = img.convert("RGBA")
    if img.mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        under = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(under, rgba).convert(mode)
    return img.convert(mode) if img.mode != mode else img
