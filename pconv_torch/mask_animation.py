"""The mask trace as an animation for a page where no kernel runs: :func:`hole_animation`
draws, for a series of hole sizes, the mask after every block of a generator
(:mod:`pconv_torch.mask_trace`); :func:`offline_jshtml` turns any matplotlib animation into
HTML with pre-rendered frames behind a slider that needs no network.

matplotlib is imported on first use.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .mask_trace import closing_block, make_hole, mask_trace

__all__ = ["hole_animation", "offline_jshtml", "WIDTH"]

# The widest frame, inches: the book's text column at 100 dpi.
WIDTH = 7.5


def hole_animation(generator, sides: Sequence[int], image_size: int = 128,
                   shape: str = "square", dpi: int = 100, interval: int = 800):
    """A ``matplotlib.animation.FuncAnimation``: one frame per hole side, each showing the
    mask after every block of ``generator`` (hole pixels left in the titles). Call
    :func:`offline_jshtml` on it for pre-rendered frames behind a slider. A frame is at most
    7.5 inches wide: at the default ``dpi``, 750 pixels, the book's text column at a 1280-pixel
    window, with panel titles of 8 points (11 pixels).

    Returns ``(animation, sweep)`` with ``sweep`` as from
    :func:`pconv_torch.mask_trace.hole_sweep`.
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    masks = torch.cat([make_hole(shape, s, image_size) for s in sides])
    trace = mask_trace(generator, masks)
    closes = closing_block(trace)
    n = len(trace)
    cols = (n + 1 + 1) // 2
    fig, axes = plt.subplots(2, cols, figsize=(min(WIDTH, 1.25 * cols), 3.5), dpi=dpi)
    axes = axes.ravel()
    panels = [m.numpy() for m in [masks] + [t.mask for t in trace]]
    ims = []
    for j, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if j >= len(panels):
            ax.axis("off")
            continue
        ims.append(ax.imshow(panels[j][0, 0], cmap="gray", vmin=0, vmax=1,
                             interpolation="nearest"))
    title = fig.suptitle("", fontsize=11)

    def frame(f):
        for j, im in enumerate(ims):
            m = panels[j][f, 0]
            im.set_data(m)
            holes = int((m < 0.5).sum())
            name = "input" if j == 0 else f"block {j - 1}"
            axes[j].set_title(f"{name}, {m.shape[-1]}x{m.shape[-1]}\n{holes} hole px", fontsize=8)
        c = closes[f]
        title.set_text(f"{shape} hole {sides[f]}x{sides[f]}: "
                       + ("never closes" if c is None else f"closed after block {c}"))
        return ims

    frame(0)
    fig.tight_layout()
    anim = FuncAnimation(fig, frame, frames=len(sides), interval=interval, blit=False)
    plt.close(fig)
    sweep = [{"side": int(s), "closes_after": c} for s, c in zip(sides, closes)]
    return anim, sweep


# matplotlib's animation controls use Font Awesome icons from a CDN; the book is offline.
# Their replacements are built from glyphs of Basic Latin and Geometric Shapes (bars, black
# triangles), which common fonts such as DejaVu Sans have; the media-control symbols of
# Miscellaneous Technical (U+23ED..U+23F8) are missing from many and render as empty boxes.
_FA_GLYPHS = {
    "fa-minus": "\u2212", "fa-plus": "+", "fa-fast-backward": "|\u25c0\u25c0",
    "fa-step-backward": "\u25c0|", "fa-play fa-flip-horizontal": "\u25c0",
    "fa-pause": "\u25ae\u25ae", "fa-play": "\u25b6", "fa-step-forward": "|\u25b6",
    "fa-fast-forward": "\u25b6\u25b6|",
}


def offline_jshtml(animation, **kwargs) -> str:
    """``animation.to_jshtml(**kwargs)`` that needs no network: the Font Awesome stylesheet
    link matplotlib adds is removed and its button icons become plain Unicode glyphs."""
    import re

    html = animation.to_jshtml(**kwargs)
    html = re.sub(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">', "", html)
    for icon, glyph in _FA_GLYPHS.items():
        html = html.replace(f'<i class="fa {icon}"></i>', glyph)
    if "class=\"fa " in html or "://" in html:
        raise RuntimeError("matplotlib's animation HTML changed: it still refers to icons or URLs")
    return html
