"""Harmonic and biharmonic fills of a hole, coarse to fine, in NumPy (the bases of
``generator_forward(..., residual=True)``; same algorithms and numbers as
``pconv_torch.harmonic``).

Every hole pixel becomes the mean of its four neighbours, the known pixels held fixed
(Laplace's equation). Solved on a pyramid: *push* halves the image, each pixel the
mask-weighted mean of its 2x2 block with ``w`` the fraction of known pixels under it, until a
side is odd or 1; the coarsest level's empty pixels get the mean of the known ones; *pull*
goes back up: bilinear upsampling, then ``iters`` Jacobi sweeps
``fill = w * known + (1 - w) * mean_of_4_neighbours(fill)`` (image border replicated). Sides
are first padded (border replicated, image and mask) to multiples of ``2**(b - 3)``, ``b`` the
bit length of the shorter side, so that the pyramid halves down to a few pixels.

The biharmonic fill solves ``Laplacian(Laplacian(u)) = 0`` in the hole (13-point stencil,
image border replicated) on the same pyramid: from the coarsest level up, pixels covering any
known pixel are held at those pixels' mean, the others start from the upsampled coarser fill
plus the harmonic fill of its mismatch with the held pixels, and take
``CG_COARSE * min(32, side)`` conjugate-gradient steps (``CG_FINE`` at the finest level), per
image and channel (near texture, short of the exact solution: see
``pconv_torch.harmonic``).

Shapes: image (N, C, H, W), mask (N, 1, H, W), 1 = known, 0 = hole.
"""

import numpy as np

ITERATIONS = 32  # Jacobi sweeps per pyramid level
CG_COARSE, CG_FINE = 6, 16  # biharmonic: conjugate-gradient steps (see the module docstring)
BIHARMONIC_STENCIL = np.array([[0, 0, 1, 0, 0], [0, 2, -8, 2, 0], [1, -8, 20, -8, 1],
                               [0, 2, -8, 2, 0], [0, 0, 1, 0, 0]], dtype=np.float64)
_TINY = 1e-24  # conjugate gradients stop moving once a residual's squared norm is below this


def _pool2(a):
    """Mean of each 2x2 block: (N, C, H, W) -> (N, C, H/2, W/2)."""
    n, c, h, w = a.shape
    return a.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def _up2_axis(a, axis):
    """Bilinear 2x upsampling along one axis (torch's align_corners=False): output 2k takes
    0.75 a[k] + 0.25 a[k-1], output 2k+1 takes 0.75 a[k] + 0.25 a[k+1], indices clamped."""
    n = a.shape[axis]
    prev = np.take(a, np.maximum(np.arange(n) - 1, 0), axis=axis)
    nxt = np.take(a, np.minimum(np.arange(n) + 1, n - 1), axis=axis)
    even, odd = 0.75 * a + 0.25 * prev, 0.75 * a + 0.25 * nxt
    even[(slice(None),) * axis + (0,)] = np.take(a, 0, axis=axis)  # source index clamped at 0
    odd[(slice(None),) * axis + (n - 1,)] = np.take(a, n - 1, axis=axis)
    out = np.stack([even, odd], axis=axis + 1)
    return out.reshape(a.shape[:axis] + (2 * n,) + a.shape[axis + 1:])


def _neighbour_mean(a):
    """Mean of the 4 neighbours of every pixel, the border replicated: (N, C, H, W)."""
    p = np.pad(a, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    return 0.25 * (p[:, :, :-2, 1:-1] + p[:, :, 2:, 1:-1] + p[:, :, 1:-1, :-2] + p[:, :, 1:-1, 2:])


def _pyramid(image, mask):
    """Pad, then push: ([(mean of x*m, coverage)] fine to coarse, the coarsest fill, (H, W))."""
    x = np.asarray(image, dtype=np.float64)
    m = np.asarray(mask, dtype=np.float64)
    height, width = x.shape[-2:]
    step = 2 ** max(0, min(height, width).bit_length() - 3)  # so that the pyramid halves far
    pad = ((0, 0), (0, 0), (0, -height % step), (0, -width % step))
    x, m = np.pad(x, pad, mode="edge"), np.pad(m, pad, mode="edge")
    levels = []
    v, w = x * m, m
    while min(v.shape[-2:]) > 1 and v.shape[-2] % 2 == 0 and v.shape[-1] % 2 == 0:
        levels.append((v, w))
        v, w = _pool2(v), _pool2(w)
    mean = v.sum(axis=(2, 3), keepdims=True) / np.maximum(w.sum(axis=(2, 3), keepdims=True), 1e-12)
    return levels, np.where(w > 0, v / np.maximum(w, 1e-12), mean), (height, width)


def _biharmonic(a):
    """The 13-point stencil at every pixel, the border replicated: (N, C, H, W)."""
    p = np.pad(a, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
    h, w = a.shape[-2:]
    out = np.zeros_like(a)
    for dy, dx in zip(*np.nonzero(BIHARMONIC_STENCIL)):
        out += BIHARMONIC_STENCIL[dy, dx] * p[:, :, dy:dy + h, dx:dx + w]
    return out


def _conjugate_gradients(fill, free, steps):
    """``steps`` conjugate-gradient steps towards ``biharmonic(fill) = 0`` where ``free`` is
    1, the other pixels held; one system per image and channel."""
    def dot(a, b):
        return (a * b).sum(axis=(2, 3), keepdims=True)

    r = -free * _biharmonic(fill)
    p, rr = r, dot(r, r)
    for _ in range(steps):
        ap = free * _biharmonic(p)
        pap = dot(p, ap)
        alpha = np.where(pap > _TINY, rr / np.maximum(pap, _TINY), 0.0)
        fill, r = fill + alpha * p, r - alpha * ap
        rr_next = dot(r, r)
        p = r + np.where(rr > _TINY, rr_next / np.maximum(rr, _TINY), 0.0) * p
        rr = rr_next
    return fill


def biharmonic_fill(image, mask, fine_steps=CG_FINE):
    """The biharmonic fill (module docstring): (N, C, H, W) float, the known pixels unchanged."""
    levels, fill, (height, width) = _pyramid(image, mask)
    for i, (v, w) in enumerate(reversed(levels)):
        fill = _up2_axis(_up2_axis(fill, 2), 3)
        held = (w > 0).astype(np.float64)
        known = v / np.maximum(w, 1e-12)
        fill = fill + harmonic_fill(held * (known - fill), held)
        fill = held * known + (1 - held) * fill
        steps = fine_steps if i == len(levels) - 1 else CG_COARSE * min(32, min(v.shape[-2:]))
        fill = _conjugate_gradients(fill, 1 - held, steps)
    return fill[..., :height, :width]


def base_fill(base, image, mask):
    """The fill named ``base``: "harmonic", "biharmonic" or "mixed" (their mean)."""
    if base == "harmonic":
        return harmonic_fill(image, mask)
    if base == "biharmonic":
        return biharmonic_fill(image, mask)
    if base == "mixed":
        return 0.5 * (harmonic_fill(image, mask) + biharmonic_fill(image, mask))
    raise ValueError(f"base must be 'harmonic', 'biharmonic' or 'mixed', got {base!r}")


def harmonic_fill(image, mask, iters=ITERATIONS):
    """The harmonic fill (module docstring): (N, C, H, W) float, the known pixels unchanged."""
    levels, fill, (height, width) = _pyramid(image, mask)
    for v, w in reversed(levels):
        fill = _up2_axis(_up2_axis(fill, 2), 3)
        known = v / np.maximum(w, 1e-12)
        for _ in range(iters):
            fill = w * known + (1 - w) * _neighbour_mean(fill)
    return fill[..., :height, :width]
