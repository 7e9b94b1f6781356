"""How the mask shrinks through partial convolutions: traces, receptive fields, hole closure,
and the interactive explorer used by ``notebooks/03_architecture.ipynb``.

Mask convention: **1 = valid (known) pixel, 0 = hole**; masks are (N, 1, H, W) float tensors.

The mask update of a partial convolution depends only on which entries are valid, never on
the image or the weights: ``new_mask = 1[sum_M > 0]``, with ``sum_M`` the number of valid
(channel, pixel) entries in the window. So a generator's masks can be traced with any weights,
any image and any ``width`` (:func:`mask_trace`). Because the update is an OR over the window,
an output is valid exactly when its receptive field (padding counts as hole) contains at least
one valid input pixel; a centred hole therefore closes at about the first layer whose
receptive field (:func:`receptive_fields`) is wider than the hole.

Pieces:

* :func:`window_counts`: ``sum_M``, ``sum_1``, the rescaling ratio ``sum_1 / sum_M`` and the
  new mask for one layer, written out plainly for display (the layer itself computes them in
  :mod:`pconv_torch.partial_conv`).
* :func:`mask_trace`: run a :class:`~pconv_torch.networks.Generator` with forward hooks on
  every block's ``.conv`` and return each block's input and output masks.
* :func:`closing_block`, :func:`hole_sweep`: after which block a hole is fully closed.
* :func:`receptive_field`, :func:`receptive_fields`: receptive field and jump per block from
  kernel sizes and strides.
* :func:`make_hole`: the explorer's holes (centred square, centred rectangle, free-form stroke).
* :class:`MaskExplorer`: ipywidgets controls (hole shape, hole size, kernel size, stride,
  generator layer) that redraw the masks, ``sum_M`` and the ratio; :func:`hole_animation`,
  the same story as pre-rendered frames for a page where no kernel runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .masks import centered_square_mask, stroke_mask
from .partial_conv import PartialConv2d
from .summary import eval_mode

__all__ = [
    "WindowCounts",
    "LayerMask",
    "window_counts",
    "mask_trace",
    "closing_block",
    "hole_sweep",
    "receptive_field",
    "generator_specs",
    "receptive_fields",
    "make_hole",
    "HOLE_SHAPES",
    "MaskExplorer",
    "hole_animation",
]

HOLE_SHAPES = ("square", "rectangle", "stroke")


# --------------------------------------------------------------------------------------
# One layer: window counts
# --------------------------------------------------------------------------------------
@dataclass
class WindowCounts:
    """Window statistics of one partial convolution.

    Attributes:
        sum_m: (N, 1, H_out, W_out) valid (channel, pixel) entries per window.
        sum_1: entries per window without a hole, ``C_in * kh * kw``.
        ratio: (N, 1, H_out, W_out) ``sum_1 / sum_M`` where ``sum_M > 0``, else 0 (as the
            layer scales: an all-hole window outputs 0).
        new_mask: (N, 1, H_out, W_out) ``1[sum_M > 0]``.
    """

    sum_m: torch.Tensor
    sum_1: int
    ratio: torch.Tensor
    new_mask: torch.Tensor


def window_counts(mask: torch.Tensor, kernel_size: int, stride: int = 1,
                  padding: int | None = None, groups: Sequence[int] | None = None,
                  in_channels: int = 1) -> WindowCounts:
    """``sum_M``, ``sum_1``, ``sum_1 / sum_M`` and the new mask of one partial convolution.

    Args:
        mask: (N, 1, H, W) one mask shared by ``in_channels`` channels, or (N, G, H, W) with
            ``groups=(C_1, ..., C_G)`` (a U-Net concatenation). 1 = valid, 0 = hole.
        kernel_size, stride: square kernel and stride.
        padding: zero padding (counts as hole); default ``kernel_size // 2`` ("same").
        groups: channel counts of the concatenated groups, one per mask channel.
        in_channels: channels sharing a one-channel mask (ignored when ``groups`` is given).
    Returns:
        :class:`WindowCounts`; ``H_out = (H + 2 * padding - kernel_size) // stride + 1``.
    """
    k = int(kernel_size)
    pad = k // 2 if padding is None else int(padding)
    m = mask.detach().to(torch.float64)
    if groups is None:
        if m.shape[1] != 1:
            raise ValueError(f"a mask with {m.shape[1]} channels needs groups=(C_1, ..., C_G)")
        groups = (int(in_channels),)
    groups = tuple(int(g) for g in groups)
    if len(groups) != m.shape[1]:
        raise ValueError(f"groups {groups} describe {len(groups)} mask channels, "
                         f"mask has {m.shape[1]}")
    weighted = sum(c * m[:, g : g + 1] for g, c in enumerate(groups))  # (N, 1, H, W)
    ones = torch.ones((1, 1, k, k), dtype=m.dtype)
    sum_m = F.conv2d(weighted, ones, None, int(stride), pad)
    sum_1 = sum(groups) * k * k
    new_mask = (sum_m > 0).to(torch.float32)
    ratio = torch.where(sum_m > 0, sum_1 / sum_m.clamp(min=1), torch.zeros_like(sum_m))
    return WindowCounts(sum_m.round().to(torch.int64), sum_1, ratio.to(torch.float32), new_mask)


# --------------------------------------------------------------------------------------
# A generator: mask trace, hole closure
# --------------------------------------------------------------------------------------
@dataclass
class LayerMask:
    """Masks at one generator block, as recorded by :func:`mask_trace`.

    index: block index i (state-dict prefix ``layers.{i}``); name: ``"layers.{i}"``;
    role: ``"encoder"``, ``"decoder"`` or ``"head"``; kernel, stride, padding, in_channels:
    of the block's partial convolution; groups: channel counts of the concatenated inputs
    (``(C_in,)`` when nothing is concatenated); mask_in: (N, G, H, W) the mask the block's
    convolution received (for a decoder block: the upsampled deeper mask and the skip mask);
    mask: (N, 1, H_out, W_out) the new mask it returned.
    """

    index: int
    name: str
    role: str
    kernel: int
    stride: int
    padding: int
    in_channels: int
    groups: tuple
    mask_in: torch.Tensor
    mask: torch.Tensor

    def counts(self) -> WindowCounts:
        """:func:`window_counts` of this block (its ``new_mask`` equals :attr:`mask`)."""
        return window_counts(self.mask_in, self.kernel, self.stride, self.padding,
                             self.groups if self.mask_in.shape[1] > 1 else None,
                             self.in_channels)

    def holes(self) -> torch.Tensor:
        """Hole pixels left after this block, per image: (N,) int64."""
        return (self.mask < 0.5).flatten(1).sum(1)


def _role(i: int, depth: int) -> str:
    return "encoder" if i < depth else "decoder" if i < 2 * depth else "head"


def mask_trace(generator, mask: torch.Tensor) -> list[LayerMask]:
    """Masks after every block of a partial-convolution ``Generator``.

    Runs one forward pass (zeros as the image: masks depend neither on the image nor on the
    weights) with forward hooks on each block's ``.conv``, which returns ``(out, new_mask)``.

    Args:
        generator: :class:`~pconv_torch.networks.Generator` with ``conv="partial"``.
        mask: (N, 1, H, W) or (1, H, W), 1 = valid, 0 = hole; H, W multiples of 2**depth.
    Returns:
        One :class:`LayerMask` per block, in forward order.
    """
    if getattr(generator, "conv", "partial") != "partial":
        raise ValueError("a plain-convolution generator carries no mask: its convolutions "
                         "treat the mean fill as data from the first layer on")
    if mask.ndim == 3:
        mask = mask[None]
    p = next(generator.parameters())
    mask = mask.to(device=p.device, dtype=p.dtype)
    n, _, h, w = mask.shape
    seen: dict[int, tuple] = {}
    hooks = []
    for i, blk in enumerate(generator.layers):
        def hook(mod, args, out, i=i):
            groups = args[2] if len(args) > 2 and args[2] is not None else None
            seen[i] = (args[1].detach().cpu(), groups, out[1].detach().cpu())
        hooks.append(blk.conv.register_forward_hook(hook))
    try:
        with eval_mode(generator):
            generator(torch.zeros((n, 3, h, w), device=p.device, dtype=p.dtype), mask)
    finally:
        for hk in hooks:
            hk.remove()
    trace = []
    for i, blk in enumerate(generator.layers):
        m_in, groups, m_out = seen[i]
        conv = blk.conv
        trace.append(LayerMask(
            index=i, name=f"layers.{i}", role=_role(i, generator.depth),
            kernel=conv.kernel_size[0], stride=conv.stride[0], padding=conv.padding[0],
            in_channels=conv.in_channels,
            groups=tuple(groups) if groups is not None else (conv.in_channels,),
            mask_in=m_in, mask=m_out))
    return trace


def closing_block(trace: list[LayerMask]) -> list[int | None]:
    """Per image, the index of the first block after which its mask has no hole left
    (the mask update can only grow the valid region, so it then stays closed); None when
    a hole is still there after the last block."""
    holes = torch.stack([t.holes() for t in trace], 1)  # (N, n_blocks)
    out = []
    for row in holes:
        closed = (row == 0).nonzero()
        out.append(int(closed[0]) if len(closed) else None)
    return out


def hole_sweep(generator, sides: Sequence[int], image_size: int = 128,
               shape: str = "square") -> list[dict]:
    """For each hole side, after which block of ``generator`` the hole is fully closed.

    Returns one dict per side: ``side``, ``closes_after`` (block index or None),
    ``holes`` (hole pixels left after each block, a list), ``holes_at_output``.
    """
    masks = torch.cat([make_hole(shape, s, image_size) for s in sides])
    trace = mask_trace(generator, masks)
    closes = closing_block(trace)
    holes = torch.stack([t.holes() for t in trace], 1)
    return [{"side": int(s), "closes_after": c, "holes": [int(v) for v in holes[k]],
             "holes_at_output": int(holes[k, -1])}
            for k, (s, c) in enumerate(zip(sides, closes))]


# --------------------------------------------------------------------------------------
# Receptive fields
# --------------------------------------------------------------------------------------
def receptive_field(specs: Sequence[tuple]) -> list[tuple[float, float]]:
    """Receptive field and jump after each layer of a chain.

    Args:
        specs: ``(K, S)`` or ``(K, S, upsample)`` per layer, in order; ``upsample`` is the
            factor of a nearest upsampling applied *before* the layer (2 in the U-Net
            decoder, default 1).
    Returns:
        ``(rf, jump)`` per layer, in input pixels: ``jump`` is the distance between two
        neighbouring outputs, ``rf`` the side of the input window one output depends on::

            jump_in' = jump_in / upsample          (nearest upsampling: same field, finer grid)
            rf_out   = rf_in + (K - 1) * jump_in'
            jump_out = jump_in' * S
    """
    rf, jump, out = 1.0, 1.0, []
    for spec in specs:
        k, s = spec[0], spec[1]
        up = spec[2] if len(spec) > 2 else 1
        jump = jump / up
        rf = rf + (k - 1) * jump
        jump = jump * s
        out.append((rf, jump))
    return out


def generator_specs(generator) -> list[tuple[int, int, int]]:
    """``(K, S, upsample)`` of each block of a ``Generator`` along its deepest path (through
    the bottleneck, the path with the widest field; skip connections only add narrower ones)."""
    d = generator.depth
    return [(b.conv.kernel_size[0], b.conv.stride[0], 2 if d <= i < 2 * d else 1)
            for i, b in enumerate(generator.layers)]


def receptive_fields(generator) -> list[dict]:
    """Per block of ``generator``: ``index``, ``name``, ``role``, ``K``, ``S``, ``up``
    (upsampling before the block), ``jump`` and ``rf`` in input pixels (integers here)."""
    specs = generator_specs(generator)
    rows = []
    for i, ((k, s, up), (rf, jump)) in enumerate(zip(specs, receptive_field(specs))):
        rows.append({"index": i, "name": f"layers.{i}", "role": _role(i, generator.depth),
                     "K": k, "S": s, "up": up, "jump": int(jump) if jump == int(jump) else jump,
                     "rf": int(rf) if rf == int(rf) else rf})
    return rows


# --------------------------------------------------------------------------------------
# Holes for the explorer
# --------------------------------------------------------------------------------------
def make_hole(shape: str, size: int, image_size: int = 128, seed: int = 0) -> torch.Tensor:
    """A hole of ``shape`` and ``size`` centred in an ``image_size`` square image.

    * ``"square"``: a ``size x size`` square (:func:`~pconv_torch.masks.centered_square_mask`);
    * ``"rectangle"``: ``size`` wide, ``size // 2`` high;
    * ``"stroke"``: a free-form ``medium`` brush stroke (:func:`~pconv_torch.masks.stroke_mask`,
      seeded) drawn in a ``size x size`` box, the box centred.

    Returns: (1, 1, image_size, image_size) float32, 1 = valid, 0 = hole.
    """
    s, n = int(size), int(image_size)
    if not 1 <= s <= n:
        raise ValueError(f"size must lie in 1..{n}, got {size}")
    if shape == "square":
        return centered_square_mask(n, side=s)[None]
    mask = torch.ones((1, 1, n, n))
    if shape == "rectangle":
        h = max(1, s // 2)
        y0, x0 = (n - h) // 2, (n - s) // 2
        mask[..., y0 : y0 + h, x0 : x0 + s] = 0
        return mask
    if shape == "stroke":
        y0 = (n - s) // 2
        mask[0, :, y0 : y0 + s, y0 : y0 + s] = stroke_mask("medium", size=s, rng=seed)
        return mask
    raise ValueError(f"shape must be one of {HOLE_SHAPES}, got {shape!r}")


# --------------------------------------------------------------------------------------
# The interactive explorer
# --------------------------------------------------------------------------------------
def _show(ax, img, title, cmap="gray", vmin=None, vmax=None, bad="black"):
    cm = __import__("matplotlib").colormaps[cmap].with_extremes(bad=bad)
    img = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    im = ax.imshow(np.ma.masked_invalid(img), cmap=cm, vmin=vmin, vmax=vmax,
                   interpolation="nearest")
    ax.set_title(title, fontsize=9)
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

    def draw(self, r: dict, dpi: int = 72):
        """The figure: top row one partial conv, bottom row the chosen generator block."""
        import matplotlib.pyplot as plt

        p, s, at, c = r["params"], r["single"], r["layer"], r["layer_counts"]
        fig, axes = plt.subplots(2, 4, figsize=(11, 5.6), dpi=dpi)
        nan_ratio = lambda wc: torch.where(wc.sum_m > 0, wc.ratio, torch.nan)[0, 0]  # noqa: E731
        k, st = p["kernel"], p["stride"]
        _show(axes[0, 0], r["mask"][0, 0], f"mask before\nhole {r['holes_before']} px",
              vmin=0, vmax=1)
        im = _show(axes[0, 1], s.sum_m[0, 0].float(), f"sum_M per window ({k}x{k}/{st})\n"
                   f"max {r['sum_m_max']} = sum_1", cmap="viridis", vmin=0, vmax=s.sum_1)
        fig.colorbar(im, ax=axes[0, 1], fraction=0.046)
        ratio_max = "-" if r["ratio_max"] is None else f"{r['ratio_max']:.3g}"
        im = _show(axes[0, 2], nan_ratio(s), f"sum_1 / sum_M (black: sum_M = 0)\nmax {ratio_max}",
                   cmap="YlOrRd", vmin=1, vmax=max(2.0, r["ratio_max"] or 2.0))
        fig.colorbar(im, ax=axes[0, 2], fraction=0.046)
        _show(axes[0, 3], s.new_mask[0, 0], f"mask after\nhole {r['holes_after']} px",
              vmin=0, vmax=1)
        frac = (sum(g * at.mask_in[:, i] for i, g in enumerate(at.groups))
                / sum(at.groups) if at.mask_in.shape[1] > 1 else at.mask_in[:, 0])
        what = "valid fraction of channels" if at.mask_in.shape[1] > 1 else "mask in"
        _show(axes[1, 0], frac[0], f"block {at.index} ({at.role}), {'+'.join(map(str, at.groups))}"
              f" ch\n{what}, {frac.shape[-1]}x{frac.shape[-1]}", vmin=0, vmax=1)
        im = _show(axes[1, 1], c.sum_m[0, 0].float(), f"sum_M ({at.kernel}x{at.kernel}/"
                   f"{at.stride})\nsum_1 = {c.sum_1}", cmap="viridis", vmin=0, vmax=c.sum_1)
        fig.colorbar(im, ax=axes[1, 1], fraction=0.046)
        lmax = r["layer_ratio_max"]
        im = _show(axes[1, 2], nan_ratio(c), "sum_1 / sum_M\nmax "
                   + ("-" if lmax is None else f"{lmax:.3g}"), cmap="YlOrRd", vmin=1,
                   vmax=max(2.0, lmax or 2.0))
        fig.colorbar(im, ax=axes[1, 2], fraction=0.046)
        closes = "never" if r["closes_after"] is None else f"after block {r['closes_after']}"
        _show(axes[1, 3], at.mask[0, 0], f"block {at.index} out: hole {r['layer_holes_out']}"
              f" px\n(hole closes {closes})", vmin=0, vmax=1)
        fig.suptitle(f"{p['shape']} hole, size {p['size']}: top, one partial conv "
                     f"{k}x{k} stride {st}; bottom, generator block {at.index}", fontsize=10)
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


def hole_animation(generator, sides: Sequence[int], image_size: int = 128,
                   shape: str = "square", dpi: int = 100, interval: int = 800):
    """A ``matplotlib.animation.FuncAnimation``: one frame per hole side, each showing the
    mask after every block of ``generator`` (hole pixels left in the titles). Call
    :func:`offline_jshtml` on it for pre-rendered frames behind a slider. At the default
    ``dpi`` a frame is about 1,000 pixels wide: the book's column, titles readable.

    Returns ``(animation, sweep)`` with ``sweep`` from :func:`hole_sweep`.
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    masks = torch.cat([make_hole(shape, s, image_size) for s in sides])
    trace = mask_trace(generator, masks)
    closes = closing_block(trace)
    n = len(trace)
    cols = (n + 1 + 1) // 2
    fig, axes = plt.subplots(2, cols, figsize=(1.75 * cols, 4.6), dpi=dpi)
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
