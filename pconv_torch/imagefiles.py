"""Image files read robustly, as tensors: the reading that every data source shares.

:func:`load_image` reads one file as a (3, H, W) float32 tensor in [0, 1]. Underneath, for
:mod:`pconv_torch.data` and :mod:`pconv_torch.places365`: opening a file as 8-bit RGB with
bad files raised as :class:`BadImageError` naming the path (corrupt, truncated, non-image,
too small; any PIL mode converted by :func:`pconv_torch.images.flatten`), square crops with
scale jitter and flips as (3, size, size) tensors, a folder scan that sorts files into good
and skipped, and the report of the skipped ones.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from PIL import Image, ImageOps

from . import images as _images

__all__ = ["IMAGE_EXTENSIONS", "BadImageError", "load_image"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class BadImageError(ValueError):
    """An image file that cannot be used (corrupt, truncated, not an image, too small)."""


def _open_rgb(path, draft_size: int | None = None, min_size: int = 1) -> Image.Image:
    """Open, fully decode and convert one file to RGB (EXIF orientation applied).

    Raises BadImageError for anything unusable, including truncated files.
    """
    try:
        with Image.open(path) as im:
            if draft_size and im.format == "JPEG":
                im.draft("RGB", (draft_size, draft_size))  # decode at reduced scale (fast)
            im.load()
            im = ImageOps.exif_transpose(im)
            rgb = _images.flatten(im, "RGB", background=_images.WHITE)
    except BadImageError:
        raise
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, ValueError...)
        raise BadImageError(f"{path}: {type(e).__name__}: {e}") from e
    if min(rgb.size) < min_size:
        raise BadImageError(f"{path}: too small ({rgb.size[0]}x{rgb.size[1]} < {min_size} px)")
    return rgb


def _check_header(path, min_size: int) -> None:
    """Cheap check: the file opens as an image of sufficient size (truncation not detected)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except Exception as e:
        raise BadImageError(f"{path}: {type(e).__name__}: {e}") from e
    if min(w, h) < min_size:
        raise BadImageError(f"{path}: too small ({w}x{h} < {min_size} px)")


def _crop_to_tensor(img: Image.Image, left, top, side, size: int, flip: bool = False) -> torch.Tensor:
    """Square crop ``(left, top, side)`` of ``img`` resized to ``size`` (antialiased bilinear).

    Returns: (3, size, size) float32 tensor in [0, 1].
    """
    box = (float(left), float(top), float(left + side), float(top + side))
    a = np.asarray(img.resize((size, size), Image.BILINEAR, box=box))
    if flip:
        a = a[:, ::-1]
    return _u8_to_tensor(a)


def _u8_to_tensor(a: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 tensor in [0, 1]. Converted in NumPy: torch's
    intra-op thread pool makes tiny ops cost milliseconds on a busy small CPU machine."""
    return torch.from_numpy(a.transpose(2, 0, 1).astype(np.float32) * np.float32(1 / 255))


def _center_tensor(img: Image.Image, size: int) -> torch.Tensor:
    """Largest centred square, resized to (3, size, size)."""
    w, h = img.size
    s = min(w, h)
    return _crop_to_tensor(img, (w - s) / 2, (h - s) / 2, s, size)


def _random_tensor(img: Image.Image, size: int, rng, scale=(0.35, 1.0), flip=True) -> torch.Tensor:
    """Random square crop whose side is ``short_side * s``, ``s`` log-uniform in ``scale``
    (scale jitter), at a uniform position, resized to ``size``, flipped left-right with p=1/2."""
    w, h = img.size
    short = min(w, h)
    s = float(np.exp(rng.uniform(np.log(scale[0]), np.log(scale[1]))))
    side = max(1.0, short * s)
    left = rng.uniform(0, w - side)
    top = rng.uniform(0, h - side)
    return _crop_to_tensor(img, left, top, side, size, flip=bool(flip and rng.random() < 0.5))


def load_image(path, size: int | None = 128) -> torch.Tensor:
    """One image file as a (3, size, size) float32 tensor in [0, 1] (largest centred square,
    resized), or (3, H, W) at full size with ``size=None``. Any mode is converted to RGB."""
    img = _open_rgb(path, draft_size=size)
    if size is None:
        return _u8_to_tensor(np.asarray(img))
    return _center_tensor(img, size)


def _channel_mean(images) -> np.ndarray:
    """Per-channel mean of an iterable of (3, H, W) tensors, pixel-weighted. Returns (3,)."""
    total, count = np.zeros(3), 0
    for x in images:
        total += x.double().sum(dim=(1, 2)).numpy()
        count += x.shape[1] * x.shape[2]
    return (total / max(count, 1)).astype(np.float32)


class _SkipReport:
    """Bookkeeping shared by the file-backed datasets: which files were skipped and why."""

    skipped: list

    def _report_skipped(self, what: str) -> None:
        if self.skipped:
            listed = "\n  ".join(f"{p}: {why}" for p, why in self.skipped[:10])
            more = f"\n  ... and {len(self.skipped) - 10} more" if len(self.skipped) > 10 else ""
            warnings.warn(f"{what}: skipped {len(self.skipped)} unusable file(s):\n  {listed}{more}",
                          stacklevel=3)

    def _load_or_substitute(self, index: int, load) -> torch.Tensor:
        """Load item ``index``; if its file has gone bad since the scan, record it, warn once,
        and return the next loadable item instead (deterministic), so an epoch never crashes."""
        n = len(self.files)
        for k in range(n):
            j = (index + k) % n
            path = self.files[j]
            if path in self._bad_at_runtime:
                continue
            try:
                return load(path, j)
            except BadImageError as e:
                self._bad_at_runtime.add(path)
                self.skipped.append((str(path), str(e).split(": ", 1)[-1]))
                warnings.warn(f"skipping unreadable image {e}", stacklevel=2)
        raise RuntimeError(f"no readable image left in {type(self).__name__}")

    def report(self) -> str:
        """A readable summary: number of usable images, skipped files and why."""
        lines = [f"{type(self).__name__}: {len(self)} images, {len(self.skipped)} skipped"]
        lines += [f"  {p}: {why}" for p, why in self.skipped]
        return "\n".join(lines)


def _scan(files, check: str, min_size: int, draft: int):
    """Check each file (``"full"`` decode, ``"header"`` only, or ``"none"``).
    Returns (good_files, skipped [(path, reason)])."""
    good, skipped = [], []
    for f in files:
        try:
            if check == "full":
                _open_rgb(f, draft_size=draft, min_size=min_size)
            elif check == "header":
                _check_header(f, min_size)
            elif check != "none":
                raise ValueError(f"check must be 'full', 'header' or 'none', got {check!r}")
            good.append(f)
        except BadImageError as e:
            skipped.append((str(f), str(e).split(": ", 1)[-1]))
    return good, skipped
