"""Harmonic and biharmonic fills: smooth surfaces through the hole's border, solved coarse to fine.

The harmonic (membrane) fill of a hole gives every hole pixel the average of its four
neighbours, with the known pixels held fixed: the solution of Laplace's equation with the
border as boundary condition. It reproduces a flat colour and a linear gradient exactly, and
on photographs it is about as good as OpenCV's inpainting methods. The shipped generators
learn a correction to it (``Generator(residual=True)``), so a network that has learnt nothing
still returns this smooth fill, not a blob.

Plain Jacobi iterations need about ``side**2`` sweeps to carry the border's colour into the
middle of a hole ``side`` pixels wide. A pyramid shortens that to a fixed number per level:

1. *push*: halve the image repeatedly, each pixel the mask-weighted mean of its 2x2 block,
   keeping the fraction ``w`` of known pixels under it (the coverage), until a side is odd or 1;
2. at the coarsest level, pixels that cover nothing get the mean of the known pixels;
3. *pull*: from the coarsest level up, upsample the fill (bilinear), then ``iters`` sweeps of
   ``fill = w * known + (1 - w) * mean_of_4_neighbours(fill)`` (the image border replicated).
   At the finest level ``w`` is the mask itself, so the known pixels are exactly the input's.

Sides that do not halve that far (427 pixels, say) are first padded at the bottom and right by
replicating the border, image and mask alike (:func:`pyramid_padding`), and the fill is cropped
back.

The biharmonic (thin-plate) fill (:func:`biharmonic_fill`) solves ``Laplacian(Laplacian(u)) =
0`` in the hole instead: it continues the border's slopes as well as its values, so it
reproduces a quadratic shading exactly where the harmonic fill leaves a flat plateau. Its
13-point stencil (20 at the centre, -8 at the four neighbours, 2 at the diagonals, 1 two pixels
away) is solved on the same pyramid: at each level, from the coarsest up, the pixels that
cover any known pixel are held at the mean of those known pixels, the others start from the
upsampled coarser fill, corrected by the harmonic fill of its mismatch with the held pixels
(a block mean is not the value at the block's centre: on a curved shading each level is off
by a smooth offset that conjugate gradients would remove only slowly), and are relaxed by
conjugate gradients (per image and channel),
``CG_COARSE`` steps per pixel of the level's shorter side (up to 32 pixels) and
``CG_FINE`` steps at the finest level, where only the hole is free (the image border
replicated, as for the harmonic fill). On smooth shading that is the exact solution (a
quadratic in a centred hole to a few thousandths of an 8-bit level in float32). Beside texture
the exact solution ripples with the border's ups and downs; the default steps stop short of it
and give a smoother fill. Given
enough steps (``fine_steps``) the fill is the exact solution, the one scikit-image's
``inpaint_biharmonic`` computes (which then clips each channel to its known range).

Shapes: image (N, C, H, W), mask (N, 1, H, W) with 1 = known, 0 = hole; values under the hole
are ignored. Every image needs at least one known pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["harmonic_fill", "biharmonic_fill", "mixed_fill", "base_fill", "bounded_fill",
           "pyramid_padding", "ITERATIONS", "BASES", "CG_COARSE", "CG_FINE", "BIHARMONIC_STENCIL",
           "FILL_MAX_SIDE"]

ITERATIONS = 32  # Jacobi sweeps per pyramid level
CG_COARSE = 6  # biharmonic: conjugate-gradient steps per pixel of a coarse level's side (<= 32)
CG_FINE = 16  # biharmonic: conjugate-gradient steps at the finest level
BASES = ("harmonic", "biharmonic", "mixed")  # the fills a residual generator can correct
FILL_MAX_SIDE = 1024  # bounded_fill: larger pictures are filled at reduced resolution

# The discrete biharmonic operator, the 5-point Laplacian applied twice: (5, 5)
BIHARMONIC_STENCIL = ((0, 0, 1, 0, 0), (0, 2, -8, 2, 0), (1, -8, 20, -8, 1), (0, 2, -8, 2, 0),
                      (0, 0, 1, 0, 0))
_TINY = 1e-24  # conjugate gradients stop moving once a residual's squared norm is below this


@torch.no_grad()
def harmonic_fill(image: torch.Tensor, mask: torch.Tensor, iters: int = ITERATIONS) -> torch.Tensor:
    """The harmonic fill of the holes (see the module docstring), in float32.

    Args:
        image: (N, C, H, W); values under the hole are ignored.
        mask: (N, 1, H, W), 1 = known, 0 = hole.
        iters: Jacobi sweeps per pyramid level.
    Returns:
        (N, C, H, W) float32 (float64 for a float64 image): ``image`` where ``mask`` is 1,
        the fill elsewhere.
    """
    return _on_pyramid(image, mask, lambda levels, fill: _pull(levels, fill, iters))


@torch.no_grad()
def biharmonic_fill(image: torch.Tensor, mask: torch.Tensor,
                    fine_steps: int = CG_FINE) -> torch.Tensor:
    """The biharmonic fill of the holes (see the module docstring), in float32.

    Args:
        image: (N, C, H, W); values under the hole are ignored.
        mask: (N, 1, H, W), 1 = known, 0 = hole.
        fine_steps: conjugate-gradient steps at the finest level.
    Returns:
        (N, C, H, W) float32 (float64 for a float64 image): ``image`` where ``mask`` is 1,
        the fill elsewhere.
    """
    return _on_pyramid(image, mask,
                       lambda levels, fill: _pull_biharmonic(levels, fill, fine_steps))


def _on_pyramid(image, mask, pull):
    """``pull(levels, coarsest_fill)`` on the padded pyramid of ``image`` (:func:`_push`), in
    float32 (float64 for a float64 image) even under autocast, cropped back: (N, C, H, W)."""
    dtype = torch.float64 if image.dtype == torch.float64 else torch.float32
    with torch.autocast(image.device.type, enabled=False):  # float32 even under bf16 autocast
        x, m = image.detach().to(dtype), mask.detach().to(dtype)
        h, w = x.shape[-2:]
        ph, pw = pyramid_padding(h, w)
        if ph or pw:  # the border replicated, mask too: a known edge stays known
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
            m = F.pad(m, (0, pw, 0, ph), mode="replicate")
        return pull(*_push(x, m))[..., :h, :w]


def _pull_biharmonic(levels, fill, fine_steps):
    """From the coarsest level up: upsample the fill, correct it by the harmonic fill of its
    mismatch with the pixels that cover a known one, hold those at their known mean, conjugate
    gradients on the others (see the module docstring)."""
    c = fill.shape[1]
    stencil = fill.new_tensor(BIHARMONIC_STENCIL).expand(c, 1, 5, 5)
    for i, (v, w) in enumerate(reversed(levels)):
        held = (w > 0).to(fill.dtype)  # at the finest level: the mask itself
        known = v / w.clamp(min=1e-12)
        fill = F.interpolate(fill, size=v.shape[-2:], mode="bilinear", align_corners=False)
        fill = fill + harmonic_fill(held * (known - fill), held)
        fill = held * known + (1 - held) * fill
        finest = i == len(levels) - 1
        steps = fine_steps if finest else CG_COARSE * min(32, min(v.shape[-2:]))
        fill = _conjugate_gradients(fill, 1 - held, stencil, steps)
    return fill


@torch.no_grad()
def mixed_fill(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of :func:`harmonic_fill` and :func:`biharmonic_fill`: (N, C, H, W), as they."""
    return 0.5 * (harmonic_fill(image, mask) + biharmonic_fill(image, mask))


@torch.no_grad()
def bounded_fill(fill, image: torch.Tensor, mask: torch.Tensor,
                 max_side: int = FILL_MAX_SIDE) -> torch.Tensor:
    """``fill(image, mask)`` (one of the fills above) with its memory bounded: a picture whose
    longer side exceeds ``max_side`` is filled at a resolution reduced by the smallest integer
    factor that brings it under, each reduced pixel the mean of the known pixels under it (known
    if any is), and the fill enlarged back (bilinear). Smooth fills lose little by it; the
    known pixels are returned as given.

    Args: image (N, C, H, W), mask (N, 1, H, W) 1 = known. Returns (N, C, H, W) float32.
    """
    h, w = image.shape[-2:]
    factor = -(-max(h, w) // max_side)
    if factor <= 1:
        return fill(image, mask)
    image, mask = image.float(), mask.float()
    size = (-(-h // factor), -(-w // factor))
    known = F.adaptive_avg_pool2d(mask, size)
    small = F.adaptive_avg_pool2d(image * mask, size) / known.clamp_min(1e-12)
    filled = fill(small, (known > 0).float())
    filled = F.interpolate(filled, size=(h, w), mode="bilinear", align_corners=False)
    return image * mask + filled * (1 - mask)


def base_fill(base: str):
    """The fill function ``(image, mask) -> fill`` named ``base``, one of :data:`BASES`:
    ``"harmonic"``, ``"biharmonic"`` or ``"mixed"`` (their mean)."""
    if base not in BASES:
        raise ValueError(f"base must be one of {', '.join(map(repr, BASES))}, got {base!r}")
    return {"harmonic": harmonic_fill, "biharmonic": biharmonic_fill, "mixed": mixed_fill}[base]


def _conjugate_gradients(fill, free, stencil, steps):
    """``steps`` conjugate-gradient steps towards ``stencil * fill = 0`` on the pixels where
    ``free`` (N, 1, H, W) is 1, the others held; each image and channel its own system."""
    c = fill.shape[1]

    def apply(u):  # the stencil on the free pixels, the image border replicated
        return free * F.conv2d(F.pad(u, (2, 2, 2, 2), mode="replicate"), stencil, groups=c)

    r = -apply(fill)
    p, rr = r, (r * r).sum((2, 3), keepdim=True)
    for _ in range(steps):
        ap = apply(p)
        pap = (p * ap).sum((2, 3), keepdim=True)
        alpha = torch.where(pap > _TINY, rr / pap.clamp(min=_TINY), torch.zeros_like(pap))
        fill, r = fill + alpha * p, r - alpha * ap
        rr_next = (r * r).sum((2, 3), keepdim=True)
        beta = torch.where(rr > _TINY, rr_next / rr.clamp(min=_TINY), torch.zeros_like(rr))
        p, rr = r + beta * p, rr_next
    return fill


def pyramid_padding(h: int, w: int) -> tuple[int, int]:
    """Rows and columns to add (bottom, right) so that both sides are multiples of
    ``2**(b - 3)``, ``b`` the bit length of the shorter side: the pyramid then halves down to a
    few pixels (on odd sides it could not halve at all)."""
    step = 2 ** max(0, min(h, w).bit_length() - 3)
    return -h % step, -w % step


def _push(x, m):
    """The pyramid: [(mean of x*m, coverage)] from fine to coarse, and the coarsest fill."""
    levels = []
    v, w = x * m, m
    while min(v.shape[-2:]) > 1 and v.shape[-2] % 2 == 0 and v.shape[-1] % 2 == 0:
        levels.append((v, w))
        v, w = F.avg_pool2d(v, 2), F.avg_pool2d(w, 2)  # v: mean of x*m, w: coverage
    mean = v.sum((2, 3), keepdim=True) / w.sum((2, 3), keepdim=True).clamp(min=1e-12)
    return levels, torch.where(w > 0, v / w.clamp(min=1e-12), mean)


def _pull(levels, fill, iters):
    """From the coarsest level up: upsample the fill, then Jacobi sweeps with the known held."""
    c = fill.shape[1]
    neighbours = fill.new_tensor([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]]).expand(c, 1, 3, 3)
    for v, w in reversed(levels):
        fill = F.interpolate(fill, size=v.shape[-2:], mode="bilinear", align_corners=False)
        known = v / w.clamp(min=1e-12)  # the mean colour of the known pixels under each pixel
        held, free = w * known, 1 - w  # fixed per level: 4 kernels per sweep, not 6
        for _ in range(iters):
            avg = F.conv2d(F.pad(fill, (1, 1, 1, 1), mode="replicate"), neighbours, groups=c)
            fill = held + free * avg  # w * known + (1 - w) * avg
    return fill
