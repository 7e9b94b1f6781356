"""The classical inpainting baselines the generators are compared with.

Each is a per-image method ``(image (3,H,W), mask (1,H,W) 1 = valid) -> (3,H,W)`` float32
tensor, composited (known pixels returned unchanged); :data:`BASELINES` holds them by name
(:func:`make_baselines` builds them with another training mean or OpenCV radius). Building
them imports neither OpenCV nor scikit-image: each imports its library on its first call.

``"mean fill"``
    Holes set to the training set's per-channel mean (the generator's own input;
    :func:`make_baselines` takes the mean, ``BASELINES`` uses the embedded training
    photographs' mean, computed on first use).
``"OpenCV Telea"`` / ``"OpenCV Navier-Stokes"``
    ``cv2.inpaint(..., cv2.INPAINT_TELEA / cv2.INPAINT_NS)`` with ``inpaintRadius = 3`` px
    (``OPENCV_RADIUS``; the value in OpenCV's own examples: the neighbourhood each filled
    pixel is estimated from). OpenCV works on 8-bit images with an 8-bit mask where
    **255 = fill**; conversion happens at that edge only (``round(255*x)``, back ``/255``).
``"scikit-image biharmonic"``
    ``skimage.restoration.inpaint_biharmonic(image, hole, channel_axis=-1)`` in float64,
    clipped to [0, 1].
``"harmonic fill"``
    :func:`pconv_torch.harmonic.harmonic_fill`: every hole pixel the mean of its four
    neighbours (Laplace's equation), solved coarse to fine; the fill that the shipped
    generators correct (``Generator(residual=True)``).

:func:`mixed` (not among them: ``python -m pconv_torch.results`` scores it beside them) is the
mean of the harmonic fill and the project's own biharmonic fill
(:func:`pconv_torch.harmonic.mixed_fill`), the fill ``Generator(residual=True, base="mixed")``
corrects.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

__all__ = ["OPENCV_RADIUS", "Method", "mean_fill_method", "opencv_method", "telea",
           "navier_stokes", "biharmonic", "harmonic", "mixed", "make_baselines", "BASELINES"]

OPENCV_RADIUS = 3

# A per-image method: (image (3,H,W), mask (1,H,W) 1 = valid) -> (3,H,W) float32 tensor.
Method = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_one(image, mask):
    """One image and mask as float32 NumPy arrays (3, H, W) and binary (1, H, W).

    The baselines work in NumPy: on a busy two-core machine torch's intra-op thread pool
    turns a 128x128 elementwise op into milliseconds (see ``pconv_torch.data.collate``),
    which would swamp the timings of the fast methods.
    """
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    image, mask = np.asarray(image, np.float32), np.asarray(mask)
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected one image (3, H, W), got {image.shape}")
    if mask.shape != (1, *image.shape[1:]):
        raise ValueError(f"mask {mask.shape} does not match image {image.shape}")
    return image, (mask >= 0.5).astype(np.float32)


def _composite_np(image: np.ndarray, mask: np.ndarray, fill: np.ndarray) -> torch.Tensor:
    """``M*I + (1-M)*fill`` of (3,H,W) / (1,H,W) arrays as a (3,H,W) float32 tensor; valid
    pixels are exactly ``image``'s (``where``, not arithmetic)."""
    return torch.from_numpy(np.where(mask >= 0.5, image, fill).astype(np.float32))


def _finish(image: np.ndarray, mask: np.ndarray, filled_hwc: np.ndarray) -> torch.Tensor:
    """(H, W, 3) fill -> clipped to [0, 1], composited (3, H, W) float32 tensor."""
    return _composite_np(image, mask, np.clip(filled_hwc, 0.0, 1.0).transpose(2, 0, 1))


class mean_fill_method:
    """Baseline: holes set to the training set's per-channel mean.

    ``mean``: (3,) values, or None for the embedded training photographs' mean
    (:meth:`pconv_torch.data.EmbeddedPhotos.fill_mean`, computed on first call).
    Call: ``(image (3,H,W), mask (1,H,W) 1 = valid) -> (3,H,W)`` float32 tensor.
    """

    def __init__(self, mean=None):
        self._mean = None if mean is None else np.asarray(mean, np.float32).reshape(3)

    @property
    def mean(self) -> np.ndarray:
        """(3,) float32."""
        if self._mean is None:
            from .data import EmbeddedPhotos

            self._mean = EmbeddedPhotos("train").fill_mean().numpy().astype(np.float32).reshape(3)
        return self._mean

    def __call__(self, image, mask) -> torch.Tensor:
        image, mask = _check_one(image, mask)
        return _composite_np(image, mask, self.mean.reshape(3, 1, 1))

    def __repr__(self) -> str:
        return f"mean_fill_method(mean={None if self._mean is None else self._mean.tolist()})"


def opencv_method(flag: int | str, radius: float = OPENCV_RADIUS) -> Method:
    """Baseline wrapping ``cv2.inpaint(src_u8, mask_u8, radius, flag)``.

    ``flag``: OpenCV's constant, or its name in ``cv2`` (``"INPAINT_TELEA"``), looked up on
    the first call, so that building the method does not import OpenCV.
    Our float image (3,H,W) in [0, 1] becomes (H, W, 3) uint8 ``round(255*x)`` (channel
    order does not matter to either algorithm: channels are filled independently with the
    same weights); our mask (1 = valid) becomes OpenCV's (H, W) uint8 with **255 = fill**.
    The result comes back ``/255`` and is composited, so valid pixels are exactly the input's.
    """

    def inpaint(image, mask) -> torch.Tensor:
        import cv2

        image, mask = _check_one(image, mask)
        src = np.clip(np.rint(image.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
        hole = np.where(mask[0] < 0.5, 255, 0).astype(np.uint8)
        code = getattr(cv2, flag) if isinstance(flag, str) else flag
        out = cv2.inpaint(np.ascontiguousarray(src), hole, float(radius), code)
        return _finish(image, mask, out.astype(np.float32) / 255.0)

    return inpaint


def telea(radius: float = OPENCV_RADIUS) -> Method:
    """OpenCV's fast-marching method (Telea 2004), ``cv2.INPAINT_TELEA``."""
    return opencv_method("INPAINT_TELEA", radius)


def navier_stokes(radius: float = OPENCV_RADIUS) -> Method:
    """OpenCV's Navier-Stokes method (Bertalmio et al. 2001), ``cv2.INPAINT_NS``."""
    return opencv_method("INPAINT_NS", radius)


def biharmonic(image, mask) -> torch.Tensor:
    """Baseline: ``skimage.restoration.inpaint_biharmonic(hwc, hole, channel_axis=-1)``
    (float64, clipped to [0, 1], composited).

    Args: image (3, H, W) in [0, 1]; mask (1, H, W), 1 = valid, 0 = hole.
    Returns: (3, H, W) float32 tensor.
    """
    from skimage.restoration import inpaint_biharmonic

    image, mask = _check_one(image, mask)
    hole = mask[0] < 0.5
    if not hole.any():
        return torch.from_numpy(image.copy())
    hwc = image.transpose(1, 2, 0).astype(np.float64)
    return _finish(image, mask, inpaint_biharmonic(hwc, hole, channel_axis=-1))


def harmonic(image, mask) -> torch.Tensor:
    """Baseline: the harmonic fill (:func:`pconv_torch.harmonic.harmonic_fill`), the smooth
    fill that ``Generator(residual=True)`` corrects by default (composited).

    Args: image (3, H, W) in [0, 1]; mask (1, H, W), 1 = valid, 0 = hole.
    Returns: (3, H, W) float32 tensor.
    """
    return _smooth_fill("harmonic", image, mask)


def mixed(image, mask) -> torch.Tensor:
    """The mean of the harmonic and biharmonic fills (:func:`pconv_torch.harmonic.mixed_fill`),
    the fill ``Generator(residual=True, base="mixed")`` corrects (composited). Shapes as
    :func:`harmonic`."""
    return _smooth_fill("mixed", image, mask)


def _smooth_fill(base, image, mask) -> torch.Tensor:
    """The fill :func:`pconv_torch.harmonic.base_fill` names ``base``, composited: (3, H, W)."""
    from .harmonic import base_fill

    image, mask = _check_one(image, mask)
    x, m = torch.from_numpy(image)[None], torch.from_numpy(mask.astype(np.float32))[None]
    return (m * x + (1 - m) * base_fill(base)(x, m).clamp(0, 1))[0].float()


def make_baselines(mean=None, radius: float = OPENCV_RADIUS) -> dict[str, Method]:
    """The five classical baselines, by display name. ``mean``: (3,) training-set mean for
    mean fill (None: the embedded training photographs' mean); ``radius``: OpenCV's
    ``inpaintRadius`` in pixels."""
    return {
        "mean fill": mean_fill_method(mean),
        "OpenCV Telea": telea(radius),
        "OpenCV Navier-Stokes": navier_stokes(radius),
        "scikit-image biharmonic": biharmonic,
        "harmonic fill": harmonic,
    }


BASELINES: dict[str, Method] = make_baselines()
