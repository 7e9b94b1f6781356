"""Procedural training images: dead leaves, smooth fields, and the evaluation's synthetic
sanity cases.

**Dead leaves** (Matheron's model, used by Lee, Mumford and Huang 2001 to explain the
statistics of natural images; Baradad et al. 2021 and Achddou et al. 2021 train restoration
networks on it that transfer to photographs). Opaque discs fall on the canvas one after the
other; each new disc hides what lies below it. With radii drawn from a density ``p(r) ~ r^-3``
between ``r_min`` and ``r_max`` the picture is statistically scale invariant, as photographs
are: its power spectrum falls off as ``1/f^2`` and it has flat regions separated by sharp,
curved occlusion edges, objects in front of objects at every scale. What it lacks, texture
and shading, is added lightly: each disc carries a linear shading ramp, the image a random
defocus blur and a little sensor noise. Colours are drawn from the pixels of a training
photograph (:func:`photo_palette`), so that the colour statistics are those of the photographs,
or uniformly from the RGB cube, so that no colour is foreign to the network
(``TrainConfig.uniform_leaves`` mixes the two).

**Smooth fields** (:func:`smooth_field`): a colour plus a few long plane waves, like a sky or
an out-of-focus background; ``TrainConfig.smooth_fields`` puts them in place of a share of the
dead-leaves images.

The discs are drawn *front to back*: a pixel takes the colour of the first disc that covers
it, which is the same picture as painting back to front but stops as soon as every pixel is
covered.

**Sanity cases** (:func:`sanity_images`): a flat colour, a linear gradient and a straight edge
crossing the hole, scenes that any inpainting method should nearly solve without having seen
a photograph. :func:`curved_images` adds a fourth, drawn from its own random stream so that
the three above stay as they were: a smooth radial shading, where the harmonic fill leaves a
plateau and the biharmonic one is near exact.

Arrays are (H, W, 3) float32 in [0, 1] unless a docstring says otherwise.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["dead_leaves", "photo_palette", "smooth_field", "sanity_images", "SANITY_CASES",
           "curved_images", "CURVED_CASE"]


def _radii(rng: np.random.Generator, n: int, r_min: float, r_max: float) -> np.ndarray:
    """``n`` radii with density proportional to r^-3 on [r_min, r_max] (inverse CDF)."""
    u = rng.random(n)
    a, b = r_min ** -2.0, r_max ** -2.0
    return (a - u * (a - b)) ** -0.5


def _with_sensor_noise(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``img`` plus Gaussian noise of a random strength (std up to 0.02), clipped to [0, 1]."""
    img = img + rng.normal(0, rng.uniform(0, 0.02), img.shape).astype(np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


def photo_palette(images, n: int = 4096, seed: int = 0) -> np.ndarray:
    """``n`` colours sampled uniformly from the pixels of ``images`` (a list of (H, W, 3)
    uint8 arrays, each equally likely). Returns (n, 3) float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, 3), np.float32)
    which = rng.integers(len(images), size=n)
    for k, a in enumerate(images):
        idx = np.flatnonzero(which == k)
        flat = a.reshape(-1, 3)
        out[idx] = flat[rng.integers(len(flat), size=len(idx))] / np.float32(255)
    return out


def dead_leaves(size: int, rng: np.random.Generator, palette: np.ndarray | None = None, *,
                r_min: float | None = None, r_max: float | None = None,
                max_discs: int = 4000, supersample: int = 2) -> np.ndarray:
    """One dead-leaves image.

    Args:
        size: side of the square image in pixels.
        rng: NumPy generator (the image is a pure function of its state).
        palette: (K, 3) colours in [0, 1] to draw each disc's colour from (default: uniform
            random colours). A palette taken from one photograph gives the image that
            photograph's colour scheme.
        r_min, r_max: disc radii in output pixels (default ``size/24`` .. ``1.5 * size``, at
            least one pixel). Radii follow ``p(r) ~ r^-3``.
        max_discs: stop after this many discs (the few pixels still uncovered take the
            colour of a last disc that spans the image).
        supersample: render at this factor and average down (antialiased edges).
    Returns: (size, size, 3) float32 in [0, 1].
    """
    s = size * supersample
    r_min = max(1.0, size / 24 if r_min is None else r_min) * supersample
    r_max = (1.5 * size if r_max is None else r_max) * supersample
    canvas = np.zeros((s, s, 3), np.float32)
    free = np.ones((s, s), bool)
    n_free = s * s
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)

    def colour():
        if palette is None:
            return rng.random(3).astype(np.float32)
        return palette[rng.integers(len(palette))]

    radii = _radii(rng, max_discs, r_min, r_max)
    for r in radii:
        cy, cx = rng.uniform(-r / 2, s + r / 2, size=2)
        y0, y1 = max(0, int(cy - r)), min(s, int(cy + r) + 1)
        x0, x1 = max(0, int(cx - r)), min(s, int(cx + r) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        dy, dx = yy[y0:y1, x0:x1] - cy, xx[y0:y1, x0:x1] - cx
        hit = (dy * dy + dx * dx <= r * r) & free[y0:y1, x0:x1]
        if not hit.any():
            continue
        # the disc's colour with a linear shading ramp across it (up to +-15 % of the colour)
        g = rng.normal(0, 0.15 / 2, size=2).astype(np.float32)
        ramp = 1 + (g[0] * dy[hit] + g[1] * dx[hit]) / r
        canvas[y0:y1, x0:x1][hit] = np.clip(colour()[None, :] * ramp[:, None], 0, 1)
        free[y0:y1, x0:x1][hit] = False
        n_free -= int(hit.sum())
        if n_free == 0:
            break
    if n_free:
        canvas[free] = colour()
    img = canvas.reshape(size, supersample, size, supersample, 3).mean(axis=(1, 3))
    sigma = rng.uniform(0, 1.2)  # defocus
    if sigma > 0.3:
        img = ndimage.gaussian_filter(img, (sigma, sigma, 0), mode="reflect")
    return _with_sensor_noise(img, rng)


def smooth_field(size: int, rng: np.random.Generator, palette: np.ndarray | None = None, *,
                 waves: int = 3) -> np.ndarray:
    """A smooth colour field: a sky, a wall, an out-of-focus background.

    A base colour (from ``palette``, default uniform in the RGB cube) plus ``waves`` plane
    waves of random direction and phase, wavelengths 1-4 image sides, amplitude per channel
    ~N(0, 0.1), plus the same sensor noise as :func:`dead_leaves`. Within a hole such a field
    is close to the harmonic interpolation of its border: a network that corrects that
    interpolation should correct almost nothing here.
    Returns: (size, size, 3) float32 in [0, 1].
    """
    base = rng.random(3).astype(np.float32) if palette is None else palette[rng.integers(len(palette))]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.broadcast_to(base, (size, size, 3)).astype(np.float32)
    for _ in range(waves):
        theta, phase = rng.uniform(0, 2 * np.pi, size=2)
        wavelength = rng.uniform(1, 4)
        t = np.cos(2 * np.pi * (np.cos(theta) * xx + np.sin(theta) * yy) / wavelength + phase)
        img = img + t[..., None] * rng.normal(0, 0.1, size=3).astype(np.float32)
    return _with_sensor_noise(img, rng)


SANITY_CASES = ("flat", "gradient", "edge")


def sanity_images(size: int = 64, n: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """Synthetic scenes any inpainting method should nearly solve, ``n`` of each kind:

    * ``flat``: one colour everywhere;
    * ``gradient``: a linear ramp between two colours, in a random direction;
    * ``edge``: two flat colours separated by a straight line through the image centre at a
      random angle (so it crosses a centred hole).

    Colours are uniform in [0.1, 0.9]^3. Returns ``{case: (n, 3, size, size) float32}``.
    """
    rng = np.random.default_rng([seed, 77])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    yy, xx = (yy - (size - 1) / 2) / size, (xx - (size - 1) / 2) / size  # centred, ~[-0.5, 0.5]
    out = {case: np.empty((n, 3, size, size), np.float32) for case in SANITY_CASES}
    for i in range(n):
        a, b = rng.uniform(0.1, 0.9, size=(2, 3)).astype(np.float32)
        out["flat"][i] = a[:, None, None]
        theta = rng.uniform(0, 2 * np.pi)
        t = np.clip(np.cos(theta) * xx + np.sin(theta) * yy + 0.5, 0, 1)  # 0..1 across
        out["gradient"][i] = a[:, None, None] * (1 - t) + b[:, None, None] * t
        theta = rng.uniform(0, np.pi)
        side = (np.cos(theta) * xx + np.sin(theta) * yy) > 0
        out["edge"][i] = np.where(side, a[:, None, None], b[:, None, None])
    return out


CURVED_CASE = "curved"


def curved_images(size: int = 64, n: int = 8, seed: int = 0) -> np.ndarray:
    """The curved sanity scene, ``n`` of them: a radial (quadratic) shading between two colours,
    ``c = a (1 - t) + b t`` with ``t = |p - p0|^2 / R^2``, the centre ``p0`` uniform in the
    image and ``R`` its distance to the farthest corner (so ``t`` spans [0, 1] without
    clipping); colours uniform in [0.1, 0.9]^3. A quadratic has a constant Laplacian, so the
    biharmonic equation holds exactly and the harmonic one does not: a harmonic fill leaves a
    plateau in a centred hole. Drawn from its own stream (``default_rng([seed, 78])``), so
    :func:`sanity_images` is unchanged. Returns (n, 3, size, size) float32.
    """
    rng = np.random.default_rng([seed, 78])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    out = np.empty((n, 3, size, size), np.float32)
    for i in range(n):
        a, b = rng.uniform(0.1, 0.9, size=(2, 3))
        cy, cx = rng.uniform(0, size - 1, size=2)
        r2 = max((cy - y) ** 2 + (cx - x) ** 2 for y in (0, size - 1) for x in (0, size - 1))
        t = ((yy - cy) ** 2 + (xx - cx) ** 2) / r2
        out[i] = a[:, None, None] * (1 - t) + b[:, None, None] * t
    return out
