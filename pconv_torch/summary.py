"""Architecture tables in the poster's form (Tables 1 and 2), read from the live modules.

:func:`architecture_table` runs one forward pass with forward hooks on every conv / linear
layer to record output shapes, and reads kernel, stride, filters and activation from the
modules themselves, so the table always describes the network as built (any width, depth,
norm, conv type). :func:`format_table` renders the rows as Markdown or plain text.

FLOPs are counted per image as **2 x multiply-adds** of the convolution / matrix product
only (bias, the partial convolution's mask branch and rescaling, batch norm and activations
are left out)::

    conv:   2 * C_in * kh * kw * C_out * H_out * W_out
    linear: 2 * in_features * out_features
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import torch
from torch import nn

from .partial_conv import PartialConv2d
from .tables import render_table

__all__ = ["architecture_table", "format_table", "n_params"]

_ACT_NAMES = {nn.ReLU: "ReLU", nn.LeakyReLU: "Leaky ReLU", nn.Sigmoid: "Sigmoid", nn.Tanh: "Tanh"}
_LAYER_TYPES = (PartialConv2d, nn.Conv2d, nn.Linear)


@contextlib.contextmanager
def eval_mode(module: nn.Module):
    """Run ``module`` in eval mode without gradients, then restore every submodule's
    train/eval flag (so inspecting a model in training leaves it as it was)."""
    modes = {m: m.training for m in module.modules()}
    try:
        module.eval()
        with torch.no_grad():
            yield module
    finally:
        for m, training in modes.items():
            m.training = training


def n_params(module: nn.Module) -> int:
    """Number of parameters of ``module`` (every element of every parameter tensor)."""
    return sum(p.numel() for p in module.parameters())


def _act_name(act) -> str:
    if act is None:
        return "-"
    return _ACT_NAMES.get(type(act), type(act).__name__)


def _default_rows(module: nn.Module):
    """Fallback for modules without ``table_rows()``: every conv / linear leaf, in
    registration order, activation unknown."""
    return [(n, m, m, None) for n, m in module.named_modules() if isinstance(m, _LAYER_TYPES)]


def _example_inputs(module: nn.Module, input_size, device, dtype):
    """Inputs for one forward pass: (image,) plus a mask with a centred hole for a generator,
    centred patch corners for a local discriminator."""
    n, c, h, w = input_size
    image = torch.rand(input_size, device=device, dtype=dtype)
    if hasattr(module, "fill"):  # a generator: forward(image, mask)
        mask = torch.ones((n, 1, h, w), device=device, dtype=dtype)
        mask[..., h // 4 : h - h // 4, w // 4 : w - w // 4] = 0
        return (image, mask)
    if getattr(module, "local", False):  # discriminator: forward(image, boxes)
        p = module.patch_size
        boxes = torch.tensor([[(h - p) // 2, (w - p) // 2]] * n, dtype=torch.int64)
        return (image, boxes)
    return (image,)


def architecture_table(module: nn.Module, input_size: Sequence[int] = (1, 3, 128, 128),
                       inputs: tuple | None = None) -> list[dict]:
    """Rows of the poster's table for ``module`` (a Generator, a Discriminator, or any module
    whose conv / linear layers should be listed).

    Args:
        module: the network; its train/eval state and buffers (batch-norm statistics) are
            left as they were (the pass runs in eval mode, without gradients).
        input_size: (N, C, H, W) of the example image (a Discriminator needs its
            ``image_size``).
        inputs: explicit forward arguments, overriding the generated ones.
    Returns:
        One dict per layer, in forward order, with keys ``name`` (module path, a state-dict
        prefix), ``layer`` ("PConv" / "Conv" / "FC"), ``K``, ``S`` (None for FC), ``F``
        (filters, or output features for FC), ``in`` (input channels; "256+128" for a U-Net
        concatenation), ``activation``, ``output`` (shape without the batch: (C, H, W) or
        (features,)), ``params`` (including the block's batch norm), ``flops`` (per image,
        2 x multiply-adds); then a total row with ``layer == "Total"`` summing params and flops.
    """
    rows_spec = module.table_rows() if hasattr(module, "table_rows") else _default_rows(module)
    shapes: dict[int, tuple] = {}
    hooks = []
    for i, (_, layer, _, _) in enumerate(rows_spec):
        def hook(mod, args, out, i=i):
            out = out[0] if isinstance(out, tuple) else out
            shapes[i] = tuple(out.shape[1:])
        hooks.append(layer.register_forward_hook(hook))
    p = next(module.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    dtype = p.dtype if p is not None else torch.float32
    args = inputs
    if args is None:
        args = _example_inputs(module, tuple(input_size), device, dtype)
    try:
        with eval_mode(module):
            module(*args)
    finally:
        for h in hooks:
            h.remove()

    rows = []
    for i, (name, layer, owner, act) in enumerate(rows_spec):
        out = shapes.get(i)
        if out is None:
            raise RuntimeError(f"layer {name} did not run in the forward pass")
        params = sum(q.numel() for q in owner.parameters())
        if isinstance(layer, nn.Linear):
            kind, k, s, f = "FC", None, None, layer.out_features
            c_in = str(layer.in_features)
            flops = 2 * layer.in_features * layer.out_features
        else:
            kind = "PConv" if isinstance(layer, PartialConv2d) else "Conv"
            (kh, kw), (sh, sw) = tuple(layer.kernel_size), tuple(layer.stride)
            k = kh if kh == kw else f"{kh}x{kw}"
            s = sh if sh == sw else f"{sh}x{sw}"
            f = layer.out_channels
            groups = getattr(owner, "in_groups", (layer.in_channels,))
            c_in = "+".join(str(g) for g in groups)
            flops = 2 * layer.in_channels * kh * kw * layer.out_channels * out[-2] * out[-1]
        rows.append({"name": name, "layer": kind, "K": k, "S": s, "F": f, "in": c_in,
                     "activation": _act_name(act), "output": out, "params": params,
                     "flops": flops})
    rows.append({"name": "", "layer": "Total", "K": None, "S": None, "F": None, "in": "",
                 "activation": "", "output": None,
                 "params": sum(r["params"] for r in rows),
                 "flops": sum(r["flops"] for r in rows)})
    return rows


def _flops_str(v: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= scale:
            return f"{v / scale:.2f} {unit}"
    return str(v)


_COLUMNS = ("name", "layer", "K", "S", "F", "in", "activation", "output", "params", "flops")
_HEADERS = ("Block", "Layer", "K", "S", "F", "In", "Activation", "Output (CxHxW)", "Params",
            "FLOPs")
_RIGHT = {"K", "S", "F", "in", "output", "params", "flops"}


def _cell(key, v) -> str:
    if key == "params":
        return f"{v:,}"
    if key == "flops":
        return _flops_str(v)
    if key == "output":
        return "" if v is None else "x".join(str(d) for d in v)
    return "-" if v is None and key in ("K", "S", "F") else str(v)


def format_table(rows: list[dict], fmt: str = "markdown") -> str:
    """Render :func:`architecture_table` rows as a ``"markdown"`` or ``"text"`` table.

    Params are exact counts; FLOPs per image (2 x multiply-adds) in k / M / G.
    """
    if fmt not in ("markdown", "text"):
        raise ValueError(f"fmt must be 'markdown' or 'text', got {fmt!r}")
    cells = [[_cell(k, r[k]) for k in _COLUMNS] for r in rows]
    for c in cells:  # the total row has no K / S / F
        if c[1] == "Total":
            c[2] = c[3] = c[4] = ""
    right = [j for j, k in enumerate(_COLUMNS) if k in _RIGHT]
    total = [i for i, c in enumerate(cells) if c[1] == "Total" and i == len(cells) - 1]
    return render_table(_HEADERS, cells, right, fmt, rule_before=total) + "\n"
