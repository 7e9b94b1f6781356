"""Inpainting a photograph of any size with a trained generator, in bounded memory.

A generator is trained at one scale (the shipped models: 64x64 crops with holes of up to half
the side, the default ``full`` among them, and ``full_128`` at 128x128). A phone
photograph is 4000x3000 with a hole somewhere in it. :func:`inpaint` does not run the network
on the whole photograph. For each hole (a connected region of the mask,
regions closer than a few pixels merged) it:

1. takes a square *context window* centred on the hole's bounding box, twice the box's larger
   side but at least the model's scale (so the hole covers at most half the window, as in
   training), shifted to lie inside the image (a hole too long for one window, such as a strip
   across a panorama or a frame, gets a row or grid of overlapping windows);
2. resizes the window to the model's scale (area averaging for the image; a pixel of the small
   mask is a hole if any pixel it covers is one), fills it with the generator;
3. brings the fill back to the window's size and pastes it into the hole's pixels only. A
   residual generator (the shipped ones: a correction ``z`` to a smooth base fill, see
   :class:`~pconv_torch.networks.Generator`) has its base computed again at the window's own
   resolution and only its correction enlarged (bilinear, zero outside the small hole):
   ``sigmoid(logit(base_window) + enlarged z)``. The smooth part then meets the hole's border
   at full resolution (enlarging the whole small fill left a faint box at the outline and the
   small fill's blocks doubled in size). Other generators' fills are enlarged bicubic;
4. with ``blend="poisson"`` (the default of :func:`inpaint`), blends the fill into the hole's
   surroundings (:func:`~pconv_torch.blend.poisson_blend`): the post-processing Iizuka et al. apply to their
   completion network's output. Its memory is bounded: holes of more than
   :data:`~pconv_torch.blend.BLEND_MAX_UNKNOWNS` pixels are blended at reduced resolution, exactly near their edge.
5. with ``gate=True`` (the default of :func:`inpaint`), keeps that fill where the hole's
   surroundings are textured and takes the window's biharmonic fill where they are smooth
   (:mod:`~pconv_torch.smooth_gate`): on skies and soft shading the thin-plate fill is near
   exact (it needs no blending) and a learnt correction only adds error and a faint pattern.

Memory and time therefore depend on the number of holes, not on the photograph's size: one
window costs one generator pass at the model's scale plus the window's pixels. A hole larger
than the model's scale is filled at reduced resolution (its fill is smoother than the image
around it); that is a limit of the model's scale, stated, not hidden.

Masks given to :func:`inpaint` follow the editing convention: **non-zero / white = fill**;
inside the package 1 = valid, 0 = hole. A mask is read once, as an (H, W) bool hole map
(:func:`pconv_torch.masks.hole_from_image` for images), and handed on as such.

Known pixels are returned unchanged, bit for bit: the result has the input's layout, dtype and
(for PIL images) mode, so RGBA keeps its alpha channel, 16-bit grayscale its 16 bits; only the
colour of hole pixels is replaced. Inputs whose known pixels could not be kept are refused
(16-bit colour files, which the image reader would truncate to 8 bits; CMYK and other modes).
Files read with :func:`read_image` and ``hole_from_image`` are turned upright by their EXIF
orientation, each by its own; PIL images passed in are used as stored.
"""

from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from .blend import poisson_blend
from .content import LUMA
from .harmonic import bounded_fill
from .smooth_gate import gated_fill

__all__ = ["inpaint", "read_image", "resolve_model", "fill_checked", "fill_holes",
           "context_windows", "poisson_blend", "check_device"]


_LUMA = np.array(LUMA, np.float32)
_SAME_MODES = ("L", "LA", "RGB", "RGBA")  # kept as they are, 8 bits per channel
_EXPANDED_MODES = {"1": "L", "P": "RGB", "PA": "RGBA"}  # expanded losslessly


def _pixels(image) -> np.ndarray:
    """PIL image or array -> the array whose known pixels :func:`inpaint` returns unchanged.

    PIL modes L, LA, RGB, RGBA give uint8 (H, W) / (H, W, 2 | 3 | 4); 16-bit grayscale
    (I;16, or I with values in 0..65535) gives uint16 (H, W); 1, P and PA are expanded
    losslessly to L, RGB (RGBA when the palette has transparency) and RGBA. Other modes
    (CMYK, YCbCr, LAB, HSV, F, ...) raise ValueError: converting them would change the known
    pixels. Arrays are returned as they are (checked by :func:`_rgb01`).
    """
    if not isinstance(image, Image.Image):
        return _array(image, "image")
    mode = image.mode
    if mode in _EXPANDED_MODES:
        target = _EXPANDED_MODES[mode]
        if mode == "P" and "transparency" in image.info:
            target = "RGBA"
        image, mode = image.convert(target), target
    if mode in _SAME_MODES:
        return np.asarray(image)
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(image)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise ValueError(f"a 32-bit integer image (mode I) must hold 16-bit values "
                             f"0..65535, got [{a.min()}, {a.max()}]")
        return a.astype(np.uint16)
    raise ValueError(f"image mode {mode} is not supported (known pixels could not be returned "
                     "unchanged); convert it to RGB first")


def _array(x, what: str) -> np.ndarray:
    """An array, or a torch tensor (detached, on the CPU), as a NumPy array; TypeError naming
    ``what`` for tensor dtypes NumPy has no equivalent of (bfloat16)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype == torch.bfloat16:
            raise TypeError(f"{what} must be uint8, uint16 or float, got a torch.bfloat16 "
                            "tensor; convert it with .float()")
        return x.numpy()
    return np.asarray(x)


def _rgb01(a: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 2 | 3 | 4) uint8, uint16 or float in [0, 1] -> (H, W, 3) float32 in
    [0, 1], the generator's input: grayscale repeated, alpha left out (colours as stored)."""
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"image must be (H, W, 3) (or RGBA, gray + alpha or grayscale), got "
                         f"shape {a.shape}")
    a = a[..., :1] if a.shape[2] <= 2 else a[..., :3]
    if a.dtype == np.uint8 or a.dtype == np.uint16:
        rgb = a.astype(np.float32) / np.float32(np.iinfo(a.dtype).max)
    elif np.issubdtype(a.dtype, np.floating):
        rgb = a.astype(np.float32)
        if not np.isfinite(rgb).all():
            raise ValueError("image contains NaN or infinite values")
        if rgb.size and (rgb.min() < 0 or rgb.max() > 1):
            raise ValueError(f"a float image must lie in [0, 1], got [{rgb.min():.3g}, "
                             f"{rgb.max():.3g}]")
    else:
        raise ValueError(f"image must be uint8, uint16 or float in [0, 1], got dtype {a.dtype}")
    return np.repeat(rgb, 3, axis=2) if rgb.shape[2] == 1 else rgb


def _merge(a: np.ndarray, fill: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``a`` with the colour of its hole pixels replaced by ``fill``; everything else (known
    pixels, alpha everywhere) is a copy of ``a``.

    Args: a (H, W) or (H, W, C) as from :func:`_pixels`; fill (H, W, 3) float in [0, 1] (reduced
        to luminance for grayscale; every fill is clipped to [0, 1] where it is made); hole
        (H, W) bool, True = fill.
    Returns: array of ``a``'s shape and dtype.
    """
    values = np.asarray(fill, np.float32)[hole]  # (K, 3)
    gray = a.ndim == 2 or a.shape[2] <= 2
    if gray:
        values = values @ _LUMA
    if np.issubdtype(a.dtype, np.integer):
        top = np.iinfo(a.dtype).max
        values = np.clip(np.rint(values * top), 0, top)
    out = a.copy()
    if a.ndim == 2:
        out[hole] = values.astype(a.dtype)
    elif gray:
        out[hole, 0] = values.astype(a.dtype)
    else:
        out[hole, :3] = values.astype(a.dtype)
    return out


def read_image(path, with_info: bool = False):
    """One image file as :func:`inpaint` takes and returns it, with its EXIF orientation
    applied (as :func:`pconv_torch.masks.mask_from_image` applies a mask file's).

    Returns: uint8 (H, W) | (H, W, 2 | 3 | 4) or uint16 (H, W) for 16-bit grayscale; see
    :func:`_pixels` for the modes. ``PIL.Image.fromarray`` turns a result back into the
    file's mode. With ``with_info``, ``(pixels, info)``: ``info`` holds the file's
    ``icc_profile`` and ``dpi`` where it has them, for writing the result with.
    Raises ValueError for 16-bit colour images (the image reader keeps only 8 bits of them),
    animated or multi-page files and unsupported modes; PIL's errors for unreadable files.
    """
    with Image.open(path) as im:
        check_single_frame(im)
        raw = im.tile[0][3] if im.tile else ""
        raw = raw if isinstance(raw, str) else str(raw[0]) if raw else ""
        if im.mode in ("RGB", "RGBA", "LA") and "16" in raw:
            raise ValueError(f"16-bit {im.mode} images are not supported (they would be read "
                             "with 8 bits per channel); save it with 8 bits per channel, or "
                             "as 16-bit grayscale")
        info = {k: im.info[k] for k in ("icc_profile", "dpi") if im.info.get(k)}
        if "dpi" in info and im.getexif().get(0x0112) in (5, 6, 7, 8):  # turned a quarter
            info["dpi"] = tuple(info["dpi"])[::-1]
        im.load()
        pixels = _pixels(ImageOps.exif_transpose(im))
    return (pixels, info) if with_info else pixels


def check_single_frame(im: Image.Image) -> None:
    """ValueError unless the opened file holds one image: an animated GIF, PNG or WebP or a
    multi-page TIFF would lose every frame but the first. (An MPO file, a camera JPEG with
    a preview or a second view appended, is read as its first image, the photograph.)"""
    frames = getattr(im, "n_frames", 1)
    if frames > 1 and im.format != "MPO":
        raise ValueError(f"the file holds {frames} frames (an animation or several pages); "
                         "only single images are supported: save the frame to fill as a file "
                         "of its own")


def _hole_array(mask, shape) -> np.ndarray:
    """PIL image or (H, W) array, non-zero / white = fill -> (H, W) bool hole map."""
    if isinstance(mask, Image.Image):  # white = fill, any mode: the package's one reader
        from .masks import hole_from_image

        hole = hole_from_image(mask)
    else:
        m = _array(mask, "mask")
        if m.ndim == 3 and m.shape[0] == 1:
            m = m[0]
        if m.ndim != 2:
            raise ValueError(f"mask must be (H, W), non-zero = fill; got shape {m.shape}")
        if np.issubdtype(m.dtype, np.inexact) and not np.isfinite(m).all():
            raise ValueError("mask contains NaN or infinite values (non-zero = fill, zero = "
                             "keep: a NaN is neither)")
        hole = m != 0
    if hole.shape != tuple(shape):
        raise ValueError(f"mask is {hole.shape[1]}x{hole.shape[0]} but the image is "
                         f"{shape[1]}x{shape[0]} (width x height); they must match")
    if not hole.any():
        raise ValueError("the mask marks nothing to fill (no non-zero pixel)")
    if hole.all():
        raise ValueError("the mask marks the whole image: no known pixels to fill from")
    return hole


def context_windows(hole: np.ndarray, scale: int, merge: int = 4) -> list[tuple[int, int, int]]:
    """Square windows ``(top, left, side)`` that together cover every hole pixel.

    One window per connected hole region (regions within ``merge`` pixels of each other are
    merged): centred on the region's bounding box, ``side = max(scale, 2 * box side)``, capped
    at the image's shorter side and shifted to lie inside the image. A region that such a
    window cannot cover (longer than the image's shorter side: a strip across a panorama, a
    frame, a long scribble) is covered by a row or grid of overlapping tiles instead, each
    ``max(scale, 2 * the box's shorter side)`` (capped likewise), keeping those that hold
    hole pixels of the region.

    Args: hole (H, W) bool, True = fill; scale: the model's training size.
    """
    from scipy import ndimage

    h, w = hole.shape
    grown = ndimage.binary_dilation(hole, iterations=merge) if merge else hole
    labels, _ = ndimage.label(grown)
    out = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
        side = min(max(scale, 2 * max(y1 - y0, x1 - x0)), h, w)
        top = int(np.clip((y0 + y1) / 2 - side / 2, 0, h - side))
        left = int(np.clip((x0 + x1) / 2 - side / 2, 0, w - side))
        region = hole[sl] & (labels[sl] == i)
        ys, xs = np.nonzero(region)
        ys, xs = ys + y0, xs + x0
        if (ys.min() >= top and ys.max() < top + side and xs.min() >= left
                and xs.max() < left + side):
            out.append((top, left, side))
            continue
        out.extend(_tiles(region, y0, x0, scale, h, w))
    return out


def _tiles(region: np.ndarray, y0: int, x0: int, scale: int, h: int, w: int):
    """Overlapping square windows ``(top, left, side)`` covering every True pixel of
    ``region`` (a (bh, bw) bool crop of an (h, w) image at ``(y0, x0)``)."""
    ys, xs = np.nonzero(region)
    by0, by1, bx0, bx1 = ys.min() + y0, ys.max() + y0 + 1, xs.min() + x0, xs.max() + x0 + 1
    side = min(max(scale, 2 * min(by1 - by0, bx1 - bx0)), h, w)

    def starts(lo, hi, size):  # evenly spread windows of `side` covering [lo, hi) in [0, size)
        if hi - lo <= side:
            return [int(np.clip((lo + hi) / 2 - side / 2, 0, size - side))]
        n = -(-(hi - lo) // side)  # steps of at most `side`: no gap
        return sorted({int(round(v)) for v in np.linspace(lo, hi - side, n)})

    tiles = []
    for top in starts(by0, by1, h):
        for left in starts(bx0, bx1, w):
            r = region[max(top - y0, 0):max(top + side - y0, 0),
                       max(left - x0, 0):max(left + side - x0, 0)]
            if r.any():
                tiles.append((top, left, side))
    return tiles


def _resize(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """(N, C, s, s) -> (N, C, size, size)."""
    if x.shape[-1] == size:
        return x
    if mode == "area":
        return F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)


def check_device(device, what: str = "device") -> torch.device:
    """``device`` (a name or ``torch.device``) as a ``torch.device``; ValueError starting
    ``"{what} {device}: "`` when it is unknown or this machine does not have it."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"{what} {device}: unknown device (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{what} {device}: CUDA is not available on this machine "
                             "(use cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{what} {device}: this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"{what} {device}: MPS is not available on this machine")
    elif dev.type != "cpu":
        raise ValueError(f"{what} {device}: device type {dev.type!r} is not supported "
                         "(use cpu or cuda)")
    return dev


@contextlib.contextmanager
def _evaluating(generator, device):
    """The generator in eval mode, float32, on ``device``, leaving the caller's module as it
    was: a module already there in float32 has its modes switched back afterwards; any other
    is copied (a generator is a few MB). Callables that are not modules are used as given."""
    if not isinstance(generator, torch.nn.Module):
        yield generator
        return
    tensors = [*generator.parameters(), *generator.buffers()]
    if any(t.is_meta for t in tensors):
        raise ValueError("model has no weights (its tensors are on the meta device); load "
                         "them before inpainting")
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:  # "cuda": the current CUDA device
        dev = torch.device("cuda", torch.cuda.current_device())
    here = all(t.device.type == dev.type and (dev.index is None or t.device.index == dev.index)
               for t in tensors)
    if not here or any(t.is_floating_point() and t.dtype != torch.float32 for t in tensors):
        generator = copy.deepcopy(generator).to(device=dev, dtype=torch.float32)
    modes = [(m, m.training) for m in generator.modules()]
    generator.eval()
    try:
        yield generator
    finally:
        for m, mode in modes:
            m.training = mode


@torch.no_grad()
def fill_holes(generator, image: np.ndarray, hole: np.ndarray, scale: int, device="cpu",
               blend: str | None = None, gate: bool = False) -> np.ndarray:
    """Fill ``hole`` of ``image`` window by window (see the module docstring).

    Args:
        generator: ``G(image (N,3,S,S), mask (N,1,S,S) 1 = valid) -> (N,3,S,S)``.
        image: (H, W, 3) float32 in [0, 1]; hole: (H, W) bool, True = fill.
        scale: side S at which the generator runs (a multiple of its ``2**depth``).
        blend: None (paste the generator's fill) or ``"poisson"`` (:func:`poisson_blend`).
        gate: then mix each window's fill with its biharmonic fill where the hole's
            surroundings are smooth (:func:`pconv_torch.smooth_gate.gated_fill`).
    Returns: (H, W, 3) float32: ``image`` with its hole pixels replaced.
    """
    if blend not in (None, "poisson"):
        raise ValueError(f"blend must be None or 'poisson', got {blend!r}")
    out = image.copy()
    h, w = hole.shape
    if min(h, w) < scale:  # too small for a window of the model's scale: pad by reflection
        ph, pw = max(0, scale - h), max(0, scale - w)
        big = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
        big_hole = np.pad(hole, ((0, ph), (0, pw)), mode="constant")
        return fill_holes(generator, big, big_hole, scale, device, blend, gate)[:h, :w]
    with _evaluating(generator, device) as generator:
        return _fill_windows(generator, out, hole, scale, device, blend, gate)


def _fill_windows(generator, out, hole, scale, device, blend, gate) -> np.ndarray:
    """The loop of :func:`fill_holes` over the context windows, filling ``out`` in place."""
    for top, left, side in context_windows(hole, scale):
        win = torch.from_numpy(np.ascontiguousarray(
            out[top:top + side, left:left + side].transpose(2, 0, 1)))[None]
        win_hole = torch.from_numpy(hole[top:top + side, left:left + side].astype(np.float32))[None, None]
        small = _resize(win, scale, "area")
        hole_share = _resize(win_hole, scale, "area")  # fraction of hole under each small pixel
        small_valid = (hole_share <= 0).float()  # any hole -> hole
        if bool(small_valid.all()):  # a hole thinner than one small pixel: keep it a hole
            small_valid = (hole_share < 0.5).float()
        g = generator(small.to(device), small_valid.to(device)).float().cpu()
        if not bool(torch.isfinite(g).all()):
            raise ValueError("the generator produced NaN or infinite values: its weights are "
                             "corrupt or diverged; nothing was written")
        if side > scale and getattr(generator, "residual", False):
            fill = _enlarged_correction(generator, g, small, small_valid, win, win_hole, device)
        else:
            fill = _resize(g.clamp(0, 1), side, "bicubic")
        fill = fill.clamp(0, 1)[0].numpy().transpose(1, 2, 0)
        region = hole[top:top + side, left:left + side]
        if blend == "poisson":
            fill = poisson_blend(fill, out[top:top + side, left:left + side], region)
        if gate:
            fill = torch.from_numpy(np.ascontiguousarray(fill.transpose(2, 0, 1)))[None]
            # on the generator's device
            fill = gated_fill(fill.to(device), win.to(device), (1 - win_hole).to(device))
            fill = fill.clamp(0, 1)[0].cpu().numpy().transpose(1, 2, 0)
        out[top:top + side, left:left + side][region] = fill[region]
    return out


def _enlarged_correction(generator, g, small, small_valid, win, win_hole, device):
    """A residual generator's fill of a window larger than its scale: its base fill at the
    window's resolution (at most :data:`~pconv_torch.harmonic.FILL_MAX_SIDE` pixels a side,
    :func:`~pconv_torch.harmonic.bounded_fill`) plus its correction in logit space, enlarged
    (bilinear) from the small window, where it is zero outside the small hole.

    Args: g (1, 3, S, S) the generator's output on ``small`` (1, 3, S, S) with mask
        ``small_valid`` (1, 1, S, S); win (1, 3, L, L) the window, win_hole (1, 1, L, L) its
        hole (1 = hole). Returns (1, 3, L, L) float32 on the CPU.
    """
    def logit_of(x):
        return torch.logit(x.float().clamp(1 / 512, 511 / 512))

    base_small = generator.base_fill(small.to(device), small_valid.to(device)).cpu()
    z = (logit_of(g) - logit_of(base_small)) * (1 - small_valid)
    z = F.interpolate(z, size=win.shape[-2:], mode="bilinear", align_corners=False)
    base = bounded_fill(generator.base_fill, win.to(device), (1 - win_hole).to(device)).cpu()
    return torch.sigmoid(logit_of(base) + z)


def inpaint(image, mask, model=None, device="cpu", blend: str | None = "poisson",
            method: str | None = None, gate: bool = True):
    """Fill the region that ``mask`` marks in ``image`` with a trained generator (or, with
    ``method``, a classical method).

    Args:
        image: any size; an (H, W, 3) array (also (H, W, 4) RGBA, (H, W, 2) gray + alpha or
            (H, W) grayscale) of uint8, uint16 or float in [0, 1], or a PIL image (L, LA, RGB,
            RGBA, 16-bit grayscale; 1, P and PA are expanded to L, RGB(A); other modes are
            refused).
        mask: (H, W) array or PIL image; **non-zero / white = region to fill**. PIL images
            are used as stored: apply ``PIL.ImageOps.exif_transpose`` to both or to neither
            (:func:`read_image` and ``hole_from_image`` apply each file's orientation).
        model: a shipped model's name (see :func:`pconv_torch.pretrained`), a training run
            directory or checkpoint file (:func:`pconv_torch.checkpoint.load_generator`), a
            generator module, or None for the default shipped model
            (:func:`pconv_torch.shipped.default_model_name`: ``full``). A module passed in is
            left as it was (device, dtype, train / eval mode): it runs in eval mode, and on a
            float32 copy where it lives on another device or in another dtype.
        device: where the generator runs (ValueError if this machine does not have it).
        blend: ``"poisson"`` (default) blends each fill into its surroundings
            (:func:`poisson_blend`); None pastes the generator's fill as it is.
        gate: True (default) keeps the generator's fill where the hole's surroundings are
            textured and takes the biharmonic fill where they are smooth
            (:mod:`pconv_torch.smooth_gate`); False keeps the generator's fill everywhere.
        method: None (a generator), or the name of a classical method of
            :data:`pconv_torch.baselines.BASELINES` (``"OpenCV Telea"``, ``"harmonic fill"``,
            ...) to fill the hole with instead, at the image's own size (``model``, ``device``,
            ``blend`` and ``gate`` are then unused).
    Returns:
        the inpainted image as an array of the input's layout and dtype (for a PIL image:
        ``np.asarray`` of it, after the expansions above; ``Image.fromarray`` gives its mode
        back). Known pixels are returned unchanged, bit for bit, and so is the alpha channel
        of every pixel: only the colour of hole pixels is replaced (for grayscale, by the
        fill's luminance). The generator sees the colour channels as stored (alpha is not
        composited) scaled to [0, 1], 16-bit values included.

    Raises ValueError naming the problem for bad shapes, modes or dtypes, an empty or full
    mask, non-finite values (in the image, a float mask or the generator's output), an
    unknown model name, a device this machine does not have, a model without weights (meta
    device) or an unknown method; TypeError for a ``model`` that is not a generator and for
    bfloat16 tensors. Torch tensors are taken as their values (detached, on the CPU).
    """
    pixels = _pixels(image)
    rgb = _rgb01(pixels)
    hole = _hole_array(mask, rgb.shape[:2])
    if method is None:
        check_device(device)
        model = resolve_model(model)
    return fill_checked(pixels, hole, model, device, blend, method, rgb=rgb, gate=gate)


def resolve_model(model=None, *, shipped: str | None = None, checkpoint=None,
                  allow_unverified: bool = False):
    """The generator module to inpaint with: the one place a model's name becomes a module.

    ``checkpoint`` (a training run directory or checkpoint file, ``pconv inpaint
    --checkpoint``) is loaded with :func:`pconv_torch.checkpoint.load_generator`; else
    ``shipped`` (``pconv inpaint --model``) names a shipped model; else ``model`` is what
    :func:`inpaint` takes: None (the default shipped model), a shipped model's name, a run
    directory or checkpoint, or a module (returned as it is).
    Raises ValueError naming an unknown model or a missing path.
    """
    from .shipped import default_model_name, pretrained

    if checkpoint is None and shipped is None:  # what inpaint() takes
        if model is None or (isinstance(model, str) and model in pretrained()):
            shipped = model or default_model_name()
        elif isinstance(model, (str, os.PathLike)):
            if not Path(model).exists():
                raise ValueError(f"model {str(model)!r} is neither a shipped model "
                                 f"({', '.join(pretrained())}) nor a run directory or checkpoint")
            checkpoint = model
        else:
            return model
    if checkpoint is not None:
        from .checkpoint import load_generator

        return load_generator(checkpoint, allow_unverified=allow_unverified)
    return pretrained(shipped)


def fill_checked(pixels: np.ndarray, hole: np.ndarray, generator=None, device="cpu",
                 blend: str | None = "poisson", method: str | None = None, *, rgb=None,
                 gate: bool = True):
    """:func:`inpaint` on inputs already checked, as ``pconv inpaint`` hands them over.

    Args:
        pixels: the image as :func:`read_image` returns it ((H, W[, C]) uint8 / uint16, or a
            float array in [0, 1]); hole: (H, W) bool, True = fill, with at least one hole
            and one known pixel, of the image's size.
        generator: a generator module (:func:`resolve_model`), on a ``device`` this machine
            has; unused with ``method`` (the name of a :data:`pconv_torch.baselines.BASELINES`
            method).
        rgb: ``_rgb01(pixels)`` when the caller has it.
        gate: as :func:`inpaint`.
    Returns: as :func:`inpaint`.
    """
    rgb = _rgb01(pixels) if rgb is None else rgb
    if method is None:
        return _merge(pixels, fill_holes(generator, rgb, hole, _scale(generator), device, blend,
                                         gate), hole)
    from .baselines import BASELINES
    from .masks import valid_of

    if method not in BASELINES:
        raise ValueError(f"unknown method {method!r}; choose one of {list(BASELINES)}")
    valid = valid_of(hole)
    fill = BASELINES[method](torch.from_numpy(rgb).permute(2, 0, 1) * valid, valid)
    fill = fill.permute(1, 2, 0).numpy()
    if not np.isfinite(fill[hole]).all():
        raise ValueError("the fill contains NaN or infinite values (corrupt or diverged "
                         "weights); nothing was written")
    return _merge(pixels, fill, hole)


def _scale(model) -> int:
    """The side a generator module was trained at (shipped models and ``load_generator``
    record it as ``image_size``; else ``2**(depth + 2)``); TypeError naming ``model`` for
    anything that is not a generator."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a shipped model's name, a run directory or checkpoint, "
                        f"or a generator module; got {type(model).__name__}")
    size, depth = getattr(model, "image_size", None), getattr(model, "depth", None)
    if isinstance(size, int) and size > 0:
        return size
    if isinstance(depth, int) and depth >= 0:
        return 2 ** (depth + 2)
    raise TypeError(f"model: a {type(model).__name__} is not an inpainting generator (it has "
                    "neither image_size nor depth); pass a pconv_torch Generator")
