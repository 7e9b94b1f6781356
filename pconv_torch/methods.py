"""Inpainting methods: the one protocol the scorers take, and a generator run as a method.

A *method* fills the holes of a batch: ``method(images (N,3,H,W) with the holes zeroed,
masks (N,1,H,W) 1 = valid) -> (N,3,H,W)`` in [0, 1]. Scorers composite its output with the
known pixels (:func:`composites`) before measuring it. The classical baselines
(:mod:`pconv_torch.baselines`) fill one image at a time; :func:`batched` makes a method of
one. A generator becomes a method through :func:`generator_method` (one network pass over the
batch) or :func:`windowed_method` (through context windows, as :func:`pconv_torch.inpaint`
runs it); :func:`model_method` is the per-image form that :func:`pconv_torch.evaluate.evaluate`
times.
"""

from __future__ import annotations

import torch

from .baselines import Method, _check_one, _composite_np
from .compositing import composite
from .masks import hole_of

__all__ = ["batched", "pad_to_multiple", "generator_method", "model_method", "windowed_method",
           "composites"]


def batched(fn: Method):
    """A per-image method ``(3,H,W), (1,H,W) -> (3,H,W)`` applied to each image of a batch."""
    return lambda x, m: torch.stack([fn(a, b) for a, b in zip(x, m)])


def pad_to_multiple(image: torch.Tensor, mask: torch.Tensor, multiple: int = 16):
    """Pad bottom/right so H and W are multiples of ``multiple`` (edge replication for both
    image and mask, so a hole touching the border stays a hole in the padding).

    Args: image (N, 3, H, W), mask (N, 1, H, W).
    Returns: (image_padded, mask_padded, (H, W)) -- crop back with ``[..., :H, :W]``.
    """
    h, w = image.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return image, mask, (h, w)
    pad = (0, pw, 0, ph)
    f = torch.nn.functional.pad
    return f(image, pad, mode="replicate"), f(mask, pad, mode="replicate"), (h, w)


def generator_method(generator, device="cpu", *, multiple: int = 1, blend: bool = False,
                     gate: bool = False, autocast=None):
    """A generator ``G(image (N,3,H,W), mask (N,1,H,W)) -> (N,3,H,W)`` as a batch method.

    Each call puts ``G`` in eval mode (if it has ``.eval``) and runs it under
    ``torch.no_grad()`` and ``autocast()`` (a context factory; default none) on ``device``,
    the batch padded to a multiple of ``multiple`` by edge replication and cropped back.
    Returns G's output (not composited) as float32 on the CPU, clamped to [0, 1]; with
    ``blend``, each image's output Poisson-blended into its known pixels
    (:func:`pconv_torch.blend.poisson_blend`); with ``gate``, then behind the smoothness gate
    (:func:`pconv_torch.smooth_gate.gated_fill`), as :func:`pconv_torch.inpaint` runs it.
    """
    device = torch.device(device)

    def run(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        if hasattr(generator, "eval"):
            generator.eval()
        xd, md, (h, w) = pad_to_multiple(x.to(device), m.to(device), multiple)
        ctx = autocast() if autocast is not None else torch.autocast("cpu", enabled=False)
        with torch.no_grad(), ctx:
            out = generator(xd, md)[..., :h, :w].float().clamp(0, 1).cpu()  # syncs CUDA
        if blend:
            from .blend import poisson_blend

            out = torch.stack([torch.from_numpy(poisson_blend(
                o.permute(1, 2, 0).numpy(), xi.permute(1, 2, 0).numpy(), hole_of(mi[0]))
            ).permute(2, 0, 1).float() for o, xi, mi in zip(out, x, m)])
        if gate:
            from .smooth_gate import gated_fill

            out = gated_fill(out.to(device), x.to(device), m.to(device)).clamp(0, 1).cpu()
        return out

    return run


def model_method(generator, device="cpu", multiple: int = 16) -> Method:
    """:func:`generator_method` for one image: the returned callable takes an image (3, H, W)
    and its mask (1, H, W) (1 = valid), runs ``G`` on a batch of 1 (any size: padded to a
    multiple of ``multiple``) and returns the composite ``M*I + (1-M)*G(I)`` as a (3, H, W)
    float32 CPU tensor. Calling it puts the generator in eval mode (if it has ``.eval``)."""
    run = generator_method(generator, device, multiple=multiple)

    def one(image, mask) -> torch.Tensor:
        image, mask = _check_one(image, mask)
        g = run(torch.from_numpy(image[None]), torch.from_numpy(mask[None]))[0].numpy()
        return _composite_np(image, mask, g)

    return one


def windowed_method(generator, scale: int, blend: bool = False, gate: bool = False):
    """A batch method running ``generator`` as :func:`pconv_torch.inpaint` runs it on an image
    larger than its training ``scale``: through context windows resized to that scale
    (:func:`pconv_torch.inference.fill_holes`, with ``blend`` and ``gate``)."""
    from .inference import fill_holes

    def run(x, m):
        return torch.stack([torch.from_numpy(fill_holes(
            generator, xi.permute(1, 2, 0).numpy(), hole_of(mi[0]), scale,
            blend="poisson" if blend else None, gate=gate)).permute(2, 0, 1)
            for xi, mi in zip(x, m)])
    return run


def composites(method, images, masks):
    """``M*I + (1-M)*method(I*M, M)`` for a batch ``method``: images (N,3,H,W), masks
    (N,1,H,W) -> (N,3,H,W)."""
    with torch.no_grad():
        return composite(images, method(images * masks, masks), masks)
