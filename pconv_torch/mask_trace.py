"""How the mask shrinks through partial convolutions: window counts, traces through a
generator, hole closure and receptive fields.

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
* :func:`make_hole`: centred holes of three shapes (square, rectangle, free-form stroke).

:mod:`pconv_torch.mask_widget` draws these interactively, :mod:`pconv_torch.mask_animation` as
pre-rendered frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from .masks import centered_square_mask, stroke_mask
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
# Holes
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
