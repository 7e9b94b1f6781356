"""The interactive mask explorer of ``notebooks/03_architecture.ipynb``: ipywidgets controls
(hole shape, hole size, kernel size, stride, generator layer) that redraw the masks, ``sum_M``
and the rescaling ratio of one partial convolution and of a generator block, computed by
:mod:`pconv_torch.mask_trace`.

Mask convention: **1 = valid (known) pixel, 0 = hole**; masks are (N, 1, H, W) float tensors.
ipywidgets, matplotlib and IPython are imported when an explorer is made or drawn.
"""

from __future__ import annotations

import numpy as np
import torch

from .mask_trace import (
    HOLE_SHAPES,
    LayerMask,
    closing_block,
    make_hole,
    mask_trace,
    window_counts,
)
from .partial_conv import PartialConv2d

__all__ = ["MaskExplorer"]


def _show(ax, img, title, cmap="gray", vmin=None, vmax=None, bad="black"):
    cm = __import__("matplotlib").colormaps[cmap].with_extremes(bad=bad)
    img = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    im = ax.imshow(np.ma.masked_invalid(img), cmap=cm, vmin=vmin, vmax=vmax,
                   interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


class MaskExplorer:
    """Interactive mask update: pick a hole, a kernel, a stride and a generator layer.

    Controls (``self.controls``; each carries the CSS class ``pconv-mask-explorer-<key>`` and
    the ``description`` in brackets): ``shape`` ("hole shape": square / rectangle / stroke),
    ``size`` ("hole size", pixels), ``kernel`` ("kernel size") and ``stride`` ("stride") of
    one partial convolution applied to the mask, ``layer`` ("layer": a generator block).
    ``self.widget`` (class ``pconv-mask-explorer``) holds the controls, a one-line readout
    (class ``pconv-mask-explorer-readout``) and the figure, an ``ipywidgets.Output`` made by
    ``ipywidgets.interactive_output`` (class ``pconv-mask-explorer-output``).

    Each change calls :meth:`redraw`, which computes :meth:`compute` (numbers only),
    stores them in ``self.last``, counts ``self.n_draws``, updates the readout and displays
    :meth:`draw`'s figure. Masks do not depend on the weights, so the generator may be
    untrained; they do not depend on ``width`` either, but ``sum_M`` and the ratio of a
    decoder block do (they count channels), so the default is the poster's ``Generator()``.
    """

    def __init__(self, generator=None, image_size: int = 128, seed: int = 0,
                 shape: str = "square", size: int = 64, kernel: int = 3, stride: int = 1,
                 layer: int = 0):
        import ipywidgets as W

        if generator is None:
            from .networks import Generator

            generator = Generator()
        self.generator, self.image_size, self.seed = generator, int(image_size), seed
        self.n_blocks = len(generator.layers)
        self._traces: dict = {}
        self.last: dict | None = None
        self.n_draws = 0
        style = {"description_width": "initial"}
        self.controls = {
            "shape": W.ToggleButtons(options=list(HOLE_SHAPES), value=shape,
                                     description="hole shape", style=style),
            "size": W.IntSlider(value=size, min=8, max=self.image_size - 8, step=8,
                                description="hole size", continuous_update=False, style=style),
            "kernel": W.IntSlider(value=kernel, min=1, max=7, step=2, description="kernel size",
                                  continuous_update=False, style=style),
            "stride": W.IntSlider(value=stride, min=1, max=3, description="stride",
                                  continuous_update=False, style=style),
            "layer": W.IntSlider(value=layer, min=0, max=self.n_blocks - 1, description="layer",
                                 continuous_update=False, style=style),
        }
        for key, c in self.controls.items():
            c.add_class(f"pconv-mask-explorer-{key}")
        self.readout = W.HTML(value="")
        self.readout.add_class("pconv-mask-explorer-readout")
        self.output = W.interactive_output(self.redraw, self.controls)
        self.output.add_class("pconv-mask-explorer-output")
        self.widget = W.VBox([
            self.controls["shape"],
            W.HBox([self.controls["size"], self.controls["kernel"], self.controls["stride"]]),
            self.controls["layer"], self.readout, self.output])
        self.widget.add_class("pconv-mask-explorer")

    def trace(self, shape: str, size: int) -> list[LayerMask]:
        """:func:`mask_trace` of the generator for this hole (cached)."""
        key = (shape, int(size))
        if key not in self._traces:
            self._traces[key] = mask_trace(self.generator,
                                           make_hole(shape, size, self.image_size, self.seed))
        return self._traces[key]

    def compute(self, shape: str, size: int, kernel: int, stride: int, layer: int) -> dict:
        """Everything the figure shows, as tensors and numbers (no drawing)."""
        mask = make_hole(shape, size, self.image_size, self.seed)
        single = window_counts(mask, kernel, stride)
        pconv = PartialConv2d(1, 1, kernel, stride, kernel // 2)
        with torch.no_grad():
            _, single_mask = pconv(torch.zeros_like(mask), mask)
        if not torch.equal(single_mask, single.new_mask):
            raise AssertionError("window_counts disagrees with PartialConv2d's mask update")
        trace = self.trace(shape, size)
        at = trace[int(layer)]
        counts = at.counts()
        closes = closing_block(trace)[0]
        valid = single.sum_m > 0
        gvalid = counts.sum_m > 0
        return {
            "params": dict(shape=shape, size=int(size), kernel=int(kernel), stride=int(stride),
                           layer=int(layer)),
            "mask": mask, "single": single, "layer": at, "layer_counts": counts,
            "holes_before": int((mask < 0.5).sum()),
            "holes_after": int((single.new_mask < 0.5).sum()),
            "sum_1": single.sum_1,
            "sum_m_max": int(single.sum_m.max()),
            "ratio_max": float(single.ratio[valid].max()) if bool(valid.any()) else None,
            "layer_holes_in": int((at.mask_in[:, :1] < 0.5).sum()),
            "layer_holes_out": int(at.holes()[0]),
            "layer_sum_1": counts.sum_1,
            "layer_ratio_max": float(counts.ratio[gvalid].max()) if bool(gvalid.any()) else None,
            "closes_after": closes,
        }

    def summary(self, r: dict) -> str:
        """One line of numbers for the readout."""
        p, at = r["params"], r["layer"]
        closes = "never" if r["closes_after"] is None else f"after block {r['closes_after']}"
        return (f"single PConv {p['kernel']}x{p['kernel']}/{p['stride']}: hole "
                f"{r['holes_before']} -> {r['holes_after']} px, sum_1 = {r['sum_1']}; "
                f"block {at.index} ({at.role}, {at.kernel}x{at.kernel}/{at.stride}): hole "
                f"{r['layer_holes_in']} -> {r['layer_holes_out']} px; "
                f"hole closes {closes}")

    def draw(self, r: dict, dpi: int = 100):
        """The figure: top row one partial conv, bottom row the chosen generator block.

        10 x 5.4 inches: at the default ``dpi`` about 1000 pixels wide, shown at three
        quarters of that in the book's text column, where its 10-point titles are 10 pixels
        tall."""
        import matplotlib.pyplot as plt

        p, s, at, c = r["params"], r["single"], r["layer"], r["layer_counts"]
        fig, axes = plt.subplots(2, 4, figsize=(10, 5.4), dpi=dpi)
        nan_ratio = lambda wc: torch.where(wc.sum_m > 0, wc.ratio, torch.nan)[0, 0]  # noqa: E731
        k, st = p["kernel"], p["stride"]
        _show(axes[0, 0], r["mask"][0, 0], f"mask before\nhole {r['holes_before']} px",
              vmin=0, vmax=1)
        im = _show(axes[0, 1], s.sum_m[0, 0].float(), f"sum_M per window ({k}x{k}/{st})\n"
                   f"max {r['sum_m_max']} = sum_1", cmap="viridis", vmin=0, vmax=s.sum_1)
        fig.colorbar(im, ax=axes[0, 1], fraction=0.046).ax.tick_params(labelsize=10)
        ratio_max = "-" if r["ratio_max"] is None else f"{r['ratio_max']:.3g}"
        im = _show(axes[0, 2], nan_ratio(s), f"sum_1 / sum_M\n(black: sum_M = 0), max {ratio_max}",
                   cmap="YlOrRd", vmin=1, vmax=max(2.0, r["ratio_max"] or 2.0))
        fig.colorbar(im, ax=axes[0, 2], fraction=0.046).ax.tick_params(labelsize=10)
        _show(axes[0, 3], s.new_mask[0, 0], f"mask after\nhole {r['holes_after']} px",
              vmin=0, vmax=1)
        frac = (sum(g * at.mask_in[:, i] for i, g in enumerate(at.groups))
                / sum(at.groups) if at.mask_in.shape[1] > 1 else at.mask_in[:, 0])
        what = "valid fraction of channels" if at.mask_in.shape[1] > 1 else "mask in"
        _show(axes[1, 0], frac[0], f"block {at.index} ({at.role})\n{'+'.join(map(str, at.groups))}"
              f" ch, {frac.shape[-1]}x{frac.shape[-1]}\n{what}", vmin=0, vmax=1)
        im = _show(axes[1, 1], c.sum_m[0, 0].float(), f"sum_M ({at.kernel}x{at.kernel}/"
                   f"{at.stride})\nsum_1 = {c.sum_1}", cmap="viridis", vmin=0, vmax=c.sum_1)
        fig.colorbar(im, ax=axes[1, 1], fraction=0.046).ax.tick_params(labelsize=10)
        lmax = r["layer_ratio_max"]
        im = _show(axes[1, 2], nan_ratio(c), "sum_1 / sum_M\nmax "
                   + ("-" if lmax is None else f"{lmax:.3g}"), cmap="YlOrRd", vmin=1,
                   vmax=max(2.0, lmax or 2.0))
        fig.colorbar(im, ax=axes[1, 2], fraction=0.046).ax.tick_params(labelsize=10)
        closes = "never" if r["closes_after"] is None else f"after block {r['closes_after']}"
        _show(axes[1, 3], at.mask[0, 0], f"block {at.index} out: hole {r['layer_holes_out']}"
              f" px\n(hole closes {closes})", vmin=0, vmax=1)
        fig.suptitle(f"{p['shape']} hole, size {p['size']}: top, one partial conv "
                     f"{k}x{k} stride {st}; bottom, generator block {at.index}", fontsize=11)
        fig.tight_layout()
        return fig

    def redraw(self, shape, size, kernel, stride, layer) -> None:
        """Called by ``interactive_output`` on every change: compute, record, draw."""
        import matplotlib.pyplot as plt
        from IPython.display import display

        r = self.compute(shape, size, kernel, stride, layer)
        self.last = r
        self.n_draws += 1
        self.readout.value = f"<code>{self.summary(r)}</code>"
        fig = self.draw(r)
        display(fig)
        plt.close(fig)
