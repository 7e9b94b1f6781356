"""The smoothness gate in NumPy (same algorithm and numbers as ``pconv_torch.smooth_gate``):
the network's fill where a hole's surroundings are textured, the biharmonic fill where they
are smooth, mixed per hole pixel as ``out = w * fill + (1 - w) * biharmonic``, ``w = e / (e +
TAU)``.

The energy ``e`` of a pixel: the luminance's response to the biharmonic stencil (zero on any
quadratic shading), squared at the known pixels whose whole 5x5 stencil is known, averaged over
those pixels in a ``(2 * RADIUS + 1)``-pixel box, and carried into the hole by the harmonic
fill. It is measured with the shorter side reduced to ``ANALYSIS_SIDE`` pixels (area
averaging; a reduced pixel is known only if every pixel under it is), and the weight enlarged
back (bilinear). An image with no known 5x5 neighbourhood gets ``w = 1``.

Shapes: images (N, 3, H, W) in [0, 1], masks (N, 1, H, W) with 1 = known, 0 = hole. Pictures up
to 1024 pixels a side (``pconv_torch`` fills larger ones at reduced resolution).
"""

import numpy as np

from .harmonic import _biharmonic, biharmonic_fill, harmonic_fill

TAU, RADIUS, ANALYSIS_SIDE = 3e-2, 4, 64  # as pconv_torch.smooth_gate
LUMA = (0.299, 0.587, 0.114)  # luminance weights of R, G, B


def _box_sum(a, radius):
    """Sum over the ``(2 * radius + 1)^2`` box around every pixel, the border replicated:
    (N, C, H, W) -> (N, C, H, W)."""
    p = np.pad(a, ((0, 0), (0, 0), (radius, radius), (radius, radius)), mode="edge")
    h, w = a.shape[-2:]
    side = 2 * radius + 1
    return sum(p[:, :, dy:dy + h, dx:dx + w] for dy in range(side) for dx in range(side))


def texture_energy(image, mask):
    """Fine-structure energy around every pixel: (N, 1, H, W) float64 >= 0, ``inf`` everywhere
    for an image without a known 5x5 neighbourhood. Args: image (N, 3, H, W), mask (N, 1, H, W)."""
    image, mask = np.asarray(image, np.float64), np.asarray(mask, np.float64)
    luma = sum(c * image[:, i:i + 1] for i, c in enumerate(LUMA))
    known5 = (_box_sum(mask, 2) > 24.5).astype(np.float64)
    total = _box_sum(_biharmonic(luma) ** 2 * known5, RADIUS)
    count = _box_sum(known5, RADIUS)
    local, measured = total / np.maximum(count, 1.0), (count > 0.5).astype(np.float64)
    out = np.full(local.shape, np.inf)
    some = measured.reshape(len(measured), -1).max(axis=1) > 0
    if some.any():
        out[some] = harmonic_fill(local[some], measured[some])
    return out


def _area_matrix(n_in, n_out):
    """(n_out, n_in): output ``i`` the mean of inputs ``floor(i n_in / n_out)`` to
    ``ceil((i + 1) n_in / n_out) - 1`` (torch's ``mode="area"``)."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -(-(i + 1) * n_in // n_out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


def _bilinear_matrix(n_in, n_out):
    """(n_out, n_in): linear interpolation at ``(i + 0.5) n_in / n_out - 0.5`` clamped at 0
    (torch's ``mode="bilinear", align_corners=False``)."""
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = min(int(src), n_in - 1)
        i1, lam = min(i0 + 1, n_in - 1), src - i0
        m[i, i0] += 1 - lam
        m[i, i1] += lam
    return m


def _resize(a, size, matrix):
    """(N, C, H, W) -> (N, C, *size) with one matrix per axis."""
    rows, cols = matrix(a.shape[-2], size[0]), matrix(a.shape[-1], size[1])
    return np.einsum("ih,nchw,jw->ncij", rows, a, cols)


def gate_weight(image, mask, tau=TAU):
    """The network's share ``w`` in [0, 1] per pixel: (N, 1, H, W) float64."""
    image, mask = np.asarray(image, np.float64), np.asarray(mask, np.float64)
    h, w = image.shape[-2:]
    factor = min(h, w) / ANALYSIS_SIDE
    if factor > 1:
        size = (max(1, round(h / factor)), max(1, round(w / factor)))
        image = _resize(image, size, _area_matrix)
        mask = (_resize(mask, size, _area_matrix) >= 1 - 1e-6).astype(np.float64)
    energy = texture_energy(image, mask)
    finite = np.where(np.isinf(energy), 0.0, energy)
    weight = np.where(np.isinf(energy), 1.0, finite / (finite + tau))
    if weight.shape[-2:] != (h, w):
        weight = _resize(weight, (h, w), _bilinear_matrix)
    return weight


def gated_fill(fill, image, mask, tau=TAU):
    """``w * fill + (1 - w) * biharmonic_fill(image, mask)``: (N, 3, H, W) float64.
    Args: fill, image (N, 3, H, W); mask (N, 1, H, W) 1 = known."""
    weight = gate_weight(image, mask, tau)
    return np.asarray(fill, np.float64) * weight + biharmonic_fill(image, mask) * (1 - weight)
