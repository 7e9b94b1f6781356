"""Figures for the notebooks: :func:`book_style` sets the text sizes and resolution every
chapter's figures share, :func:`show` draws one image tensor on a matplotlib axes (every
notebook's picture panels), :func:`example_grid` the data notebook's example crops of each data
source and the generator input under each mask family, :func:`draw_unet` and
:func:`draw_discriminator` the networks as block diagrams read from the live modules.

matplotlib is imported on first use, not with the package.
"""

from __future__ import annotations

import numpy as np

from . import masks as _masks
from .data import EmbeddedPhotos, mean_fill

__all__ = ["book_style", "show", "example_grid", "draw_unet", "draw_discriminator"]

# The book's text column: 750 pixels in a 1280-pixel window, 7.5 inches at DPI. A figure at
# most COLUMN_INCHES wide is shown at its own size; a wider one is scaled down, its labels too.
DPI = 100
COLUMN_INCHES = 7.5


def book_style():
    """Set matplotlib's defaults for the chapters' figures (each notebook's setup cell calls it).

    Figures at :data:`DPI` (100) dots per inch, and text sizes (points) that stay at least
    10 pixels tall on the page for a figure no wider than the text column
    (:data:`COLUMN_INCHES`): 9 pt is 12.5 pixels there. ``scripts/figure_report.py`` measures
    the stored figures against these targets.
    """
    import matplotlib as mpl

    mpl.rcParams.update({
        "figure.dpi": DPI,
        "font.size": 10, "axes.titlesize": 10.5, "axes.labelsize": 10,
        "xtick.labelsize": 9, "ytick.labelsize": 9, "legend.fontsize": 9,
        "legend.title_fontsize": 9.5, "figure.titlesize": 11,
    })


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


def example_grid(sources: dict | None = None, families=_masks.MASK_FAMILIES, n: int = 5,
                 seed: int = 0, size: int = 128, path=None):
    """A grid of examples: one row per data source (plain crops), then one row per mask
    family (the mean-filled generator input on held-out embedded crops, hole ratio in
    each title).

    ``n`` crops a row, each 1.5 inches: at the default 5, the figure is the book's text column
    wide and each 128-pixel crop about 140 pixels on the page, pixels as squares.

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
    fig, axes = plt.subplots(rows, n, figsize=(1.5 * n, 1.72 * rows), squeeze=False, dpi=DPI)
    rng = np.random.default_rng(seed)

    def show(ax, x, title):
        ax.imshow(x.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
        ax.set_title(title, fontsize=8.5)
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


# --------------------------------------------------------------------------------------
# The networks as block diagrams
# --------------------------------------------------------------------------------------
BLUE, GREEN, RED, SAND = "#cfe2f3", "#d9ead3", "#f4cccc", "#fde9c9"  # box colours
MASK_TAB = "0.82"  # the grey of the mask tab beside a generator block


def _draw_box(ax, x, y, lines, mask_text, color, w=1.9, h=0.66, mw=0.42):
    """A feature box (text ``lines``) with, if ``mask_text``, a grey mask tab beside it;
    ``(x, y)``: its left edge and vertical centre."""
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y - h / 2), w, h, boxstyle="round,pad=0.02", fc=color,
                                ec="black", lw=0.8))
    ax.text(x + w / 2, y, "\n".join(lines), ha="center", va="center", fontsize=9.5)
    if mask_text:
        ax.add_patch(FancyBboxPatch((x + w + 0.05, y - h / 2), mw, h, boxstyle="round,pad=0.02",
                                    fc=MASK_TAB, ec="0.45", lw=0.8))
        ax.text(x + w + 0.05 + mw / 2, y, mask_text, ha="center", va="center", fontsize=9.5)


def _draw_arrow(ax, start, end, color="black", ls="-"):
    ax.annotate("", end, start, arrowprops=dict(arrowstyle="-|>", color=color, lw=1.3, ls=ls,
                                                shrinkA=0, shrinkB=0))


def draw_unet(generator, image_size: int = 128):
    """The generator as a U, one box per block: the encoder going down on the left, the
    decoder coming back up in the middle, the head on the right, the skips as dashed arrows.

    Everything written is read from the live module: each block's kernel, stride, channels,
    output size and activation from :func:`pconv_torch.summary.architecture_table` (on a
    ``(1, 3, image_size, image_size)`` input), the mask channels each partial convolution
    receives from a mask trace (the grey tab: ``M 1→1``, or ``M 2→1`` where a decoder block
    also gets its skip's mask).

    Returns: matplotlib Figure, 9.5 x 5.3 inches.
    """
    import matplotlib.pyplot as plt
    import torch

    from .mask_trace import mask_trace
    from .summary import architecture_table

    rows = [r for r in architecture_table(generator, (1, 3, image_size, image_size))
            if r["layer"] != "Total"]
    trace = mask_trace(generator, torch.ones(1, 1, image_size, image_size))
    d = generator.depth
    w, h, mw, dy = 1.9, 0.66, 0.42, 1.0
    x_enc, x_dec = 0.0, w + mw + 1.45
    x_head = x_dec + w + mw + 0.55

    def row_of(side):  # y of a resolution's row
        return -np.log2(image_size // side) * dy

    def label(r, t, middle):
        return [f"block {t.index}: {r['layer']} {r['K']}×{r['K']}/{r['S']}", middle,
                f"{r['output'][1]}×{r['output'][2]}, {r['activation']}"]

    fig, ax = plt.subplots(figsize=(9.5, 5.3), dpi=100)
    # left column: the mean-filled input, then the encoder, one row per resolution
    _draw_box(ax, x_enc, 0, ["input I_in (mean-filled)", "3 ch", f"{image_size}×{image_size}"],
              "M\n1", SAND)
    for r, t in zip(rows[:d], trace[:d]):
        y = row_of(r["output"][1])
        _draw_box(ax, x_enc, y, label(r, t, f"{r['in']} → {r['F']} ch"),
                  f"M\n{t.mask_in.shape[1]}→1", BLUE)
        _draw_arrow(ax, (x_enc + w / 2, y + dy - h / 2), (x_enc + w / 2, y + h / 2))
    # middle column: the decoder, bottom-up; input = upsampled deeper map ++ skip
    for j, (r, t) in enumerate(zip(rows[d:2 * d], trace[d:2 * d])):
        y = row_of(r["output"][1])
        up, skip = t.groups
        _draw_box(ax, x_dec, y, label(r, t, f"{up}+{skip} → {r['F']} ch"),
                  f"M\n{t.mask_in.shape[1]}→1", GREEN)
        x_from = x_enc + w + mw + 0.1
        _draw_arrow(ax, (x_from, y), (x_dec - 0.05, y), color="tab:purple", ls="--")
        ax.text((x_from + x_dec) / 2, y + 0.05, f"skip: {skip} ch\n+ its mask", ha="center",
                va="bottom", fontsize=9.5, color="tab:purple")
        start = (x_enc + w + mw + 0.1, y - dy) if j == 0 else (x_dec + w / 2, y - dy + h / 2)
        _draw_arrow(ax, start, (x_dec + w / 2, y - h / 2))
        ax.text(x_dec + w / 2 + 0.08, y - dy / 2, f"up ×2: {up} ch + mask", fontsize=9.5,
                va="center")
    # the head: the blocks at full resolution, then the output G(I)
    _draw_arrow(ax, (x_dec + w + mw + 0.1, 0), (x_head - 0.05, 0))
    head = list(zip(rows[2 * d:], trace[2 * d:]))
    for k, (r, t) in enumerate(head):
        _draw_box(ax, x_head, -k * dy, label(r, t, f"{r['in']} → {r['F']} ch"), "M\n1→1", RED)
        _draw_arrow(ax, (x_head + w / 2, -k * dy - h / 2), (x_head + w / 2, -(k + 1) * dy + 0.2))
    ax.text(x_head + w / 2, -len(head) * dy + 0.1,
            f"output G(I_in)\n3 ch, {image_size}×{image_size}", ha="center", va="top",
            fontsize=9.5)
    ax.set_xlim(-0.05, x_head + w + mw + 0.1)
    ax.set_ylim(row_of(image_size >> d) - h / 2 - 0.05, h / 2 + 0.05)
    ax.axis("off")
    fig.tight_layout(pad=0.2)
    return fig


def draw_discriminator(discriminator):
    """The discriminator's branches (global: the whole image; local, if it has one: the patch
    around the hole), one box per layer, joined by the head into one logit; read from the live
    module with :func:`pconv_torch.summary.architecture_table`.

    Returns: matplotlib Figure, 9.5 x 3.9 inches.
    """
    import matplotlib.pyplot as plt

    from .summary import architecture_table

    s, p = discriminator.image_size, discriminator.patch_size
    rows = [r for r in architecture_table(discriminator, (1, 3, s, s)) if r["layer"] != "Total"]
    w, h, gap, dy = 1.02, 1.0, 0.22, 1.45
    fig, ax = plt.subplots(figsize=(9.5, 3.9), dpi=100)
    branches = [("global_branch", f"whole image\n3 ch\n{s}×{s}", 0.0)]
    if discriminator.local:
        branches.append(("local_branch", f"{p}×{p} patch\naround the\nhole, 3 ch", -dy))
    ends = []
    for prefix, first, y in branches:
        _draw_box(ax, 0, y, [first], None, SAND, w=w, h=h)
        x = 0
        for r in (r for r in rows if r["name"].startswith(prefix)):
            x_new = x + w + gap
            _draw_arrow(ax, (x + w + 0.02, y), (x_new - 0.02, y))
            if r["layer"] == "Conv":
                c, hh, ww = r["output"]
                lines = [f"conv {r['K']}×{r['K']}/{r['S']}", f"{c} ch", f"{hh}×{ww}"]
            else:
                lines = ["flatten, FC", f"{r['in']} →", f"{r['F']}, ReLU"]
            _draw_box(ax, x_new, y, lines, None, BLUE if r["layer"] == "Conv" else GREEN,
                      w=w, h=h)
            x = x_new
        ax.text(0.0, y + h / 2 + 0.06, prefix.replace("_", " "), fontsize=9.5, va="bottom",
                style="italic")
        ends.append((x + w, y))
    # the joint head: concatenate the branch features, one linear layer to one logit
    head = next(r for r in rows if r["name"] == "head")
    x_head = max(x for x, _ in ends) + 0.55
    y_head = sum(y for _, y in ends) / len(ends)
    for x, y in ends:
        offset = 0.15 if y > y_head else -0.15 if y < y_head else 0
        _draw_arrow(ax, (x + 0.02, y), (x_head - 0.02, y_head + offset))
    _draw_box(ax, x_head, y_head,
              ["joint head", f"concat {head['in']}", f"FC → {head['F']} logit"], None, RED,
              w=1.35, h=h)
    ax.set_xlim(-0.05, x_head + 1.4)
    ax.set_ylim(min(y for _, y in ends) - h / 2 - 0.05, h / 2 + 0.35)
    ax.axis("off")
    fig.tight_layout(pad=0.2)
    return fig
