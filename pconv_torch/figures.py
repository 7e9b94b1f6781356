"""Figures for the notebooks: :func:`show` draws one image tensor on a matplotlib axes (every
notebook's picture panels), :func:`example_grid` the data notebook's example crops of each data
source and the generator input under each mask family.

matplotlib is imported on first use, not with the package.
"""

from __future__ import annotations

import numpy as np

from . import masks as _masks
from .data import EmbeddedPhotos, mean_fill

__all__ = ["show", "example_grid"]


def show(ax, image, title: str = "", zoom=None, fontsize: int = 9):
    """Draw ``image`` on ``ax`` without ticks, pixels as squares (no smoothing).

    Args:
        ax: a matplotlib axes.
        image: (3, H, W) colour or (1, H, W) grey tensor (or array) in [0, 1]; values outside
            are clipped. Grey is drawn with black = 0, white = 1.
        title: the panel title.
        zoom: optional box ``(y0, x0, y1, x1)``: only ``image[:, y0:y1, x0:x1]`` is drawn.
    """
    if hasattr(image, "detach"):  # a torch tensor
        image = image.detach().cpu()
    a = np.asarray(image, dtype=np.float32).transpose(1, 2, 0).clip(0, 1)
    if zoom is not None:
        y0, x0, y1, x1 = zoom
        a = a[y0:y1, x0:x1]
    if a.shape[-1] == 1:
        ax.imshow(a[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(a, interpolation="nearest")
    ax.set_title(title, fontsize=fontsize)
    ax.set_xticks([])
    ax.set_yticks([])


def example_grid(sources: dict | None = None, families=_masks.MASK_FAMILIES, n: int = 6,
                 seed: int = 0, size: int = 128, path=None):
    """A grid of examples: one row per data source (plain crops), then one row per mask
    family (the mean-filled generator input on held-out embedded crops, hole ratio in
    each title).

    Args:
        sources: ``{title: dataset}``; default: embedded train and test.
        families: mask families to show.
        path: save the figure there if given (default: not saved).
    Returns: matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    if sources is None:
        sources = {"embedded train": EmbeddedPhotos("train", size, seed=seed),
                   "embedded test": EmbeddedPhotos("test", size)}
    test = EmbeddedPhotos("test", size)
    mean = test.fill_mean()
    rows = len(sources) + len(families)
    fig, axes = plt.subplots(rows, n, figsize=(1.6 * n, 1.75 * rows), squeeze=False)
    rng = np.random.default_rng(seed)

    def show(ax, x, title):
        ax.imshow(x.permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set_title(title, fontsize=7)
        ax.axis("off")

    for r, (name, ds) in enumerate(sources.items()):
        picks = rng.choice(len(ds), size=min(n, len(ds)), replace=False)
        for c in range(n):
            if c < len(picks):
                show(axes[r, c], ds[int(picks[c])], f"{name} #{int(picks[c])}")
            else:
                axes[r, c].axis("off")
    for k, fam in enumerate(families):
        r = len(sources) + k
        for c in range(n):
            x = test[(7 * c + 3 * k) % len(test)]
            m = _masks.sample_mask(fam, size, np.random.default_rng([seed, k, c]))
            show(axes[r, c], mean_fill(x, m, mean), f"{fam}: hole {_masks.hole_ratio(m):.2f}")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
