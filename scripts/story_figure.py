"""The whole story in one picture, for the book's first page.

Top row: a held-out photograph with a hole, then the hole shrinking through the generator's
encoder (the masks after its first three partial convolutions, from
:func:`pconv_torch.mask_trace.mask_trace`). Bottom row: the harmonic fill the shipped
generator starts from, the generator's fill, what the two discriminators look at (the whole
image and the local patch around the hole, red), and the truth.

Usage (``make book`` runs it before building)::

    python scripts/story_figure.py book/_static/story.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from pconv_torch import evaluate, masks, pretrained  # noqa: E402
from pconv_torch.figures import show  # noqa: E402
from pconv_torch.harmonic import harmonic_fill  # noqa: E402
from pconv_torch.mask_trace import mask_trace  # noqa: E402
from pconv_torch.shipped import default_model_name, model_scale  # noqa: E402

CROP = 52  # a held-out crop with a clear structure through the centre (boats on a lake)


def story(path: Path) -> None:
    name = default_model_name()
    size = model_scale(name)
    images, holes = evaluate.default_test_set(mask_family="center", size=size)
    x, m = images[CROP:CROP + 1], holes[CROP:CROP + 1]
    g = pretrained(name)
    with torch.no_grad():
        fill = g(x * m, m)
    h = harmonic_fill(x * m, m)
    trace = mask_trace(g, m)
    box = masks.local_boxes(m, box=size // 2)[0].tolist()  # (y0, x0) of the local patch

    fig, axes = plt.subplots(2, 4, figsize=(10, 6.2))
    show(axes[0, 0], x[0] * m[0], f"1. the input: a {size}×{size} photograph\n"
         "never trained on, hole in black", fontsize=10)
    for ax, layer in zip(axes[0, 1:], trace[:3]):
        side = layer.mask.shape[-1]
        left = int(layer.holes()[0])
        show(ax, layer.mask[0], f"{layer.index + 2}. mask after partial conv {layer.index + 1}\n"
             f"({side}×{side}, {left} hole pixel{'s' if left != 1 else ''} left)", fontsize=10)
    show(axes[1, 0], h[0], "5. the harmonic fill h:\nthe border, smoothed inwards", fontsize=10)
    composite = x[0] * m[0] + (1 - m[0]) * fill[0]
    show(axes[1, 1], composite, "6. the generator's fill,\nσ(z + logit h) in the hole", fontsize=10)
    show(axes[1, 2], composite, "7. the discriminators: the whole\nimage and the local patch",
         fontsize=10)
    y0, x0 = box
    axes[1, 2].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), size // 2, size // 2, fill=False,
                                   edgecolor="red", linewidth=2))
    show(axes[1, 3], x[0], "8. the truth", fontsize=10)
    fig.tight_layout(h_pad=2.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="the PNG file to write")
    story(p.parse_args(argv).out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
