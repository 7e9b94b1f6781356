"""Partial convolution (Liu et al. 2018) in PyTorch.

Mask convention: **1 = valid (known) pixel, 0 = hole.** (Mask *images* at the user's edge use
the opposite, "white = fill" convention; convert once, there.)

For every output window, with ``sum_M`` the number of valid (channel, pixel) entries that the
window covers (zero padding counts as hole) and ``sum_1 = C_in * kh * kw``::

    out      = conv(X * M, W) * sum_1 / sum_M + b    where sum_M > 0
             = 0                                      where sum_M == 0  (not b)
    new_mask = 1[sum_M > 0]                           shape (N, 1, H_out, W_out)
    H_out    = floor((H + 2 * pad_h - kh) / stride_h) + 1   (same for W)

This is NVIDIA's ``PartialConv2d(multi_channel=True)``; a single-channel mask broadcast over
``C_in`` gives their single-channel mode (``sum_1 / sum_M = kh*kw / boxsum(m)``).

Three mask forms are accepted, all reduced to one channel *before* any window sum, so the mask
branch costs one single-channel box sum, never a ``C_in``-channel convolution:

* ``(N, 1, H, W)``: one mask broadcast over all input channels, ``sum_M = C_in * boxsum(m)``;
* ``(N, C_in, H, W)``: one mask per channel, ``sum_M = boxsum(sum_c m_c)``;
* ``(N, G, H, W)`` with ``mask_groups=(C_1, ..., C_G)``, ``sum_g C_g = C_in``: the input is a
  concatenation of G groups of channels (U-Net skip connection), mask ``m_g`` is shared by the
  ``C_g`` channels of group g, ``sum_M = boxsum(sum_g C_g m_g)``.

The mask carries no gradient. Counts and ratios are computed in float32 (exact integers for
binary masks), so fp16/bf16 autocast is safe: all-hole windows give exactly 0, never inf/NaN.

Input contract
--------------
The mask must be binary (exactly 0 or 1, or bool) and ``x`` finite: a mask value such as 0.5,
2, -1 or 1e-30 has no meaning for a partial convolution, a NaN in the mask makes NaN outputs,
and a NaN or inf in ``x`` (even under the hole, since ``x * 0`` is NaN for them) poisons the
output and the weight gradients. :class:`PartialConv2d` checks this by default
(``check_inputs=True``: ``ValueError`` naming the problem). The check reads the values (one
pass over ``x`` and the mask, and a device synchronisation), so layers that only ever see
masks made by a previous partial convolution (always binary) switch it off; the
:class:`~pconv_torch.networks.Generator` checks its own inputs once and runs its layers
unchecked. The functional :func:`partial_conv2d` never checks values (only shapes and types);
call :func:`check_binary_mask` at the input edge.

Inputs must be torch tensors (``TypeError`` otherwise, e.g. for a NumPy array). A batch of
size 0 works forward and backward, as for ``nn.Conv2d``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["partial_conv2d", "PartialConv2d", "mask_update", "check_binary_mask", "check_finite",
           "partial_conv2d_naive"]


def _pair(v, name: str, minimum: int | None = None) -> tuple[int, int]:
    """int or pair of ints -> (h, w); ValueError if an entry is below ``minimum``."""
    if isinstance(v, int) and not isinstance(v, bool):
        v = (v, v)
    else:
        v = tuple(v)
        if len(v) != 2 or not all(isinstance(i, int) and not isinstance(i, bool) for i in v):
            raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    if minimum is not None and min(v) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v if v[0] != v[1] else v[0]!r}")
    return v


def check_finite(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """Raise ``ValueError`` if ``x`` holds NaN or infinite values (a device synchronisation).

    Returns: ``x`` unchanged.
    """
    if x.is_floating_point() or x.is_complex():
        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            raise ValueError(f"{name} holds {int(bad.sum())} NaN or infinite values of "
                             f"{x.numel()}; a partial convolution needs finite inputs "
                             "(also under the hole, where x * 0 would be NaN)")
    return x


def check_binary_mask(mask: torch.Tensor) -> torch.Tensor:
    """Raise ``ValueError`` unless every entry of ``mask`` is exactly 0 or 1 (NaN fails).

    Meant for input edges (data loaders, ``inpaint()``): it reads the values, which forces a
    device synchronisation, so :func:`partial_conv2d` itself never calls it.

    Args:
        mask: any shape, any dtype; 1 = valid, 0 = hole.
    Returns:
        ``mask`` unchanged, so calls can be chained.
    """
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype == torch.bool:
        return mask
    bad = ~((mask == 0) | (mask == 1))  # NaN compares unequal to both
    if bool(bad.any()):
        n_bad = int(bad.sum())
        raise ValueError(
            f"mask must be binary (1 = valid, 0 = hole); {n_bad} of {mask.numel()} entries "
            "are neither 0 nor 1 (or NaN)"
        )
    return mask


def _validate(x, mask, weight, bias, mask_groups):
    for name, t in (("x", x), ("mask", mask), ("weight", weight)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__module__}."
                            f"{type(t).__name__} (convert with torch.from_numpy / torch.as_tensor)")
    if bias is not None and not isinstance(bias, torch.Tensor):
        raise TypeError(f"bias must be a torch.Tensor or None, got {type(bias).__name__}")
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, C_in, H, W), got shape {tuple(x.shape)}")
    if mask.ndim != 4:
        raise ValueError(f"mask must be 4-D (N, 1|C_in|G, H, W), got shape {tuple(mask.shape)}")
    if weight.ndim != 4:
        raise ValueError(
            f"weight must be 4-D (C_out, C_in, kh, kw), got shape {tuple(weight.shape)}"
        )
    n, c_in, h, w = x.shape
    if weight.shape[1] != c_in:
        raise ValueError(
            f"weight expects {weight.shape[1]} input channels but x has {c_in} "
            f"(x {tuple(x.shape)}, weight {tuple(weight.shape)})"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(
            f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}"
        )
    if mask.shape[0] != n or tuple(mask.shape[2:]) != (h, w):
        raise ValueError(
            f"mask batch and spatial size must match x: mask {tuple(mask.shape)} vs "
            f"x {tuple(x.shape)} (expected ({n}, ., {h}, {w}))"
        )
    mc = mask.shape[1]
    if mask_groups is None:
        if mc not in (1, c_in):
            raise ValueError(
                f"mask has {mc} channels; expected 1 (broadcast) or C_in={c_in} (per channel), "
                "or pass mask_groups=(C_1, ..., C_G) for a (N, G, H, W) group mask"
            )
        return None
    groups = tuple(int(g) for g in mask_groups)
    if any(g <= 0 for g in groups):
        raise ValueError(f"mask_groups must be positive channel counts, got {groups}")
    if sum(groups) != c_in:
        raise ValueError(f"mask_groups {groups} sum to {sum(groups)}, but x has C_in={c_in}")
    if mc != len(groups):
        raise ValueError(
            f"mask has {mc} channels but mask_groups {groups} describes {len(groups)} groups"
        )
    return groups


def _box_sum(s: torch.Tensor, kernel, stride, padding) -> torch.Tensor:
    """Window sums of a one-channel map, zero padded: (N, 1, H, W) -> (N, 1, H_out, W_out)."""
    (kh, kw), (ph, pw) = kernel, padding
    if 2 * ph <= kh and 2 * pw <= kw:
        # avg_pool2d with divisor 1 is a sum pool; padding counts as zeros.
        return F.avg_pool2d(s, (kh, kw), stride, (ph, pw), divisor_override=1)
    ones = torch.ones((1, 1, kh, kw), dtype=s.dtype, device=s.device)
    return F.conv2d(s, ones, None, stride, (ph, pw))


@torch.no_grad()
def mask_update(mask, in_channels, kernel_size, stride=1, padding=0, mask_groups=None,
                dtype=torch.float32):
    """The rescaling ratio and the updated mask of one partial convolution.

    They depend on the mask alone, never on ``x`` or the weights, so a network can compute
    every layer's pair once per batch (:meth:`pconv_torch.Generator.mask_pyramid`) and hand
    it to :func:`partial_conv2d` as ``update``.

    Args:
        mask: (N, 1 | C_in | G, H, W), 1 = valid, 0 = hole (see :func:`partial_conv2d`).
        in_channels: C_in; kernel_size, stride, padding: int or (h, w) pair.
        mask_groups: (C_1, ..., C_G) for a (N, G, H, W) group mask, else None.
        dtype: of the result: float32, or float64 for float64 inputs.
    Returns:
        ratio: (N, 1, H_out, W_out), ``new_mask * sum_1 / sum_M`` (0 in all-hole windows).
        new_mask: (N, 1, H_out, W_out), ``1[sum_M > 0]``.
    """
    kernel = _pair(kernel_size, "kernel_size")
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    kh, kw = kernel
    m = mask.detach().to(dtype)
    groups = None if mask_groups is None else tuple(int(g) for g in mask_groups)
    if groups is not None:
        # sum_M = boxsum(sum_g C_g m_g): a (N,G,H,W) x (G,) contraction, no C_in-channel mask.
        # (Python scalars, not a device tensor of C_g: that would be a host-to-device copy.)
        s = m[:, :1] * groups[0]
        for g in range(1, len(groups)):
            s = s.add_(m[:, g : g + 1], alpha=groups[g])
        sum_1 = float(in_channels * kh * kw)
    elif m.shape[1] == 1:
        s = m  # sum_M = C_in * boxsum(m), sum_1 = C_in * kh * kw: C_in cancels.
        sum_1 = float(kh * kw)
    else:
        s = m.sum(dim=1, keepdim=True)
        sum_1 = float(in_channels * kh * kw)
    sum_m = _box_sum(s, kernel, stride, padding)
    new_mask = (sum_m > 0).to(dtype)
    # Binary masks give integer sum_m >= 1 wherever it is > 0, so the clamp at 1 changes
    # nothing for them; it keeps the ratio <= sum_1 (finite in fp16) for any mask in [0, 1].
    ratio = new_mask * (sum_1 / sum_m.clamp(min=1.0))
    return ratio, new_mask


def _apply_mask(t, m, groups, out=None):
    """t * M for any mask form, t (N, C_in, H, W), m (N, 1|C_in|G, H, W) -> (N, C_in, H, W).

    Groups are multiplied slice by slice into one buffer (``out``; ``t`` itself for in-place),
    so no C_in-channel mask is ever built. Under ``torch.compile`` (which cannot trace ``out=``
    into a slice) it is written as products and a concatenation, which the compiler fuses.
    """
    if torch.compiler.is_compiling():
        if groups is None:
            return t * m
        starts = [sum(groups[:g]) for g in range(len(groups))]
        return torch.cat([t[:, c0 : c0 + cg] * m[:, g : g + 1]
                          for g, (c0, cg) in enumerate(zip(starts, groups))], 1)
    if groups is None:
        return torch.mul(t, m, out=out) if out is not None else t * m
    if out is None:
        out = torch.empty_like(t)
    c0 = 0
    for g, cg in enumerate(groups):
        torch.mul(t[:, c0 : c0 + cg], m[:, g : g + 1], out=out[:, c0 : c0 + cg])
        c0 += cg
    return out


def _masked_channel_sum(g: torch.Tensor, nm: torch.Tensor) -> torch.Tensor:
    """sum over n, h, w of g * nm without a (N, C, H, W) temporary.

    g (N, C, H, W), nm (N, 1, H, W) -> (C,). Contiguous g is read as N matrix-vector products
    (N, C, HW) x (N, HW): on CPU a loop of ``mv`` (MKL's batched gemv was several times slower
    here), elsewhere one ``bmm``.
    """
    n, c = g.shape[:2]
    if g.numel() == 0:  # empty batch (or empty output): nothing to sum
        return g.new_zeros(c)
    if not g.is_contiguous():
        return torch.einsum("nchw,nkhw->c", g, nm)
    g3, nm2 = g.view(n, c, -1), nm.reshape(n, -1)
    if g.device.type != "cpu":
        return torch.bmm(g3, nm2.unsqueeze(2)).sum(0).view(c)
    acc = torch.mv(g3[0], nm2[0])
    for i in range(1, n):
        acc.addmv_(g3[i], nm2[i])
    return acc


class _PartialConv2dFunction(torch.autograd.Function):
    """out = conv(X*M, W) * ratio + b * new_mask, with hand-written backward.

    Compared with composing the same ops under autograd it saves only ``X*M`` (as a plain
    convolution saves X), the mask and the two (N, 1, H_out, W_out) maps, and it spends three
    elementwise passes in forward (mask the input; scale and add the bias in place on the conv
    output) and two in backward (scale the incoming gradient; mask the input gradient in place).
    The bias gradient is a contraction of the incoming gradient with new_mask (no temporary).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, m, ratio, new_mask, stride, padding, groups):
        # x (N,C_in,H,W), weight (C_out,C_in,kh,kw), bias (C_out,) | None, m (N,1|C_in|G,H,W)
        # in x.dtype, ratio/new_mask (N,1,H_out,W_out) in float32 (float64 for float64 x).
        xm = _apply_mask(x, m, groups)
        out = F.conv2d(xm, weight, None, stride, padding)
        out.mul_(ratio)  # computed in ratio's precision, stored in out.dtype
        if bias is not None:
            out.addcmul_(bias.view(1, -1, 1, 1), new_mask)
        ctx.save_for_backward(xm, weight, m, ratio, new_mask)
        ctx.conf = (stride, padding, groups)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        xm, weight, m, ratio, new_mask = ctx.saved_tensors
        stride, padding, groups = ctx.conf
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        if need_b:
            # sum over n, h, w of grad_out * new_mask, as one contraction: (C_out,)
            grad_b = _masked_channel_sum(grad_out, new_mask.to(grad_out.dtype))
        if need_x or need_w:
            grad_y = torch.empty_like(grad_out)
            torch.mul(grad_out, ratio, out=grad_y)
            grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
                grad_y, xm, weight, None, list(stride), list(padding), [1, 1], False, [0, 0], 1,
                [need_x, need_w, False],
            )
            if need_x:
                grad_x = _apply_mask(grad_x, m, groups, out=grad_x)
        return grad_x, grad_w, grad_b, None, None, None, None, None, None


def _autocast_dtype(device_type: str):
    """The autocast dtype active for ``device_type``, or None when autocast is off there."""
    try:
        enabled = torch.is_autocast_enabled(device_type)
        return torch.get_autocast_dtype(device_type) if enabled else None
    except TypeError:  # torch < 2.4
        if device_type == "cpu":
            return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None
        if device_type == "cuda":
            return torch.get_autocast_gpu_dtype() if torch.is_autocast_enabled() else None
        return None


def partial_conv2d(
    x: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride=1,
    padding=0,
    mask_groups: Sequence[int] | None = None,
    update: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Partial convolution, functional form.

    Args:
        x: (N, C_in, H, W) input.
        mask: 1 = valid, 0 = hole. (N, 1, H, W) broadcast over channels, (N, C_in, H, W) per
            channel, or (N, G, H, W) with ``mask_groups``. Binary values expected (see
            :func:`check_binary_mask`); the mask gets no gradient.
        weight: (C_out, C_in, kh, kw).
        bias: (C_out,) or None. Added only where the window saw a valid entry.
        stride, padding: int or (h, w) pair, torch's meaning; padding is zero and counts as hole.
        mask_groups: (C_1, ..., C_G) with sum C_in: channel counts of the concatenated groups
            that share one mask channel each.
        update: ``(ratio, new_mask)`` of this mask, as :func:`mask_update` returns them
            (each (N, 1, H_out, W_out)), computed beforehand; None computes them here.
    Returns:
        out: (N, C_out, H_out, W_out), ``conv(X*M, W) * sum_1/sum_M + b`` where ``sum_M > 0``,
            else 0. Under autocast, in the autocast dtype (like ``F.conv2d``).
        new_mask: (N, 1, H_out, W_out), ``1[sum_M > 0]`` in ``x.dtype``.

    Backward is hand-written and first-order only (``once_differentiable``); for double
    backward use :func:`partial_conv2d_naive`, which gives the same values.
    """
    groups = _validate(x, mask, weight, bias, mask_groups)
    kernel = (weight.shape[2], weight.shape[3])
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    if update is not None:
        _check_update(update, x, kernel, stride, padding)
    dev, x_dtype = x.device.type, x.dtype
    cast = _autocast_dtype(dev) if x_dtype != torch.float64 else None
    if cast is None:
        return _partial_conv2d(x, mask, weight, bias, stride, padding, groups, kernel, x_dtype,
                               update)
    # Under autocast do what it does for F.conv2d: run the convolution in the low-precision
    # dtype (the casts are autograd ops, so gradients come back in the inputs' dtypes), but
    # keep the mask counts and ratios in float32, out of autocast's reach.
    with torch.autocast(dev, enabled=False):
        return _partial_conv2d(
            x.to(cast), mask, weight.to(cast), bias, stride, padding, groups, kernel, x_dtype,
            update
        )


def _check_update(update, x, kernel, stride, padding):
    """ValueError unless ``update`` is a (ratio, new_mask) pair of shape (N, 1, H_out, W_out)."""
    n, _, h, w = x.shape
    out_hw = tuple((size + 2 * p - k) // s + 1
                   for size, p, k, s in zip((h, w), padding, kernel, stride))
    shape = (n, 1, *out_hw)
    ok = isinstance(update, (tuple, list)) and len(update) == 2 and all(
        isinstance(t, torch.Tensor) and tuple(t.shape) == shape for t in update)
    if not ok:
        got = [tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
               for t in update] if isinstance(update, (tuple, list)) else type(update).__name__
        raise ValueError(f"update must be (ratio, new_mask), each of shape {shape} for x "
                         f"{tuple(x.shape)}; got {got}")


def _partial_conv2d(x, mask, weight, bias, stride, padding, groups, kernel, mask_dtype, update):
    if update is None:
        ctype = torch.float64 if x.dtype == torch.float64 else torch.float32
        update = mask_update(mask, x.shape[1], kernel, stride, padding, groups, ctype)
    ratio, new_mask = update
    m = mask.detach().to(x.dtype)
    out = _PartialConv2dFunction.apply(x, weight, bias, m, ratio, new_mask, stride, padding, groups)
    return out, new_mask.to(mask_dtype)


def partial_conv2d_naive(x, mask, weight, bias=None, stride=1, padding=0, mask_groups=None):
    """Textbook partial convolution: expands the mask to (N, C_in, H, W) and convolves it with
    a ones kernel. Same signature and result as :func:`partial_conv2d`; kept to teach and to
    benchmark against (about 1.5x a plain convolution)."""
    groups = _validate(x, mask, weight, bias, mask_groups)
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    c_in, kh, kw = weight.shape[1:]
    with torch.no_grad():
        m = mask.to(x.dtype)
        if groups is not None:
            m = torch.cat([m[:, g : g + 1].expand(-1, c, -1, -1) for g, c in enumerate(groups)], 1)
        m = m.expand(-1, c_in, -1, -1)
        ones = torch.ones((1, c_in, kh, kw), dtype=x.dtype, device=x.device)
        sum_m = F.conv2d(m, ones, None, stride, padding)
        new_mask = (sum_m > 0).to(x.dtype)
        ratio = new_mask * (c_in * kh * kw) / sum_m.clamp(min=1.0)
    out = F.conv2d(x * m, weight, None, stride, padding) * ratio
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1) * new_mask
    return out, new_mask


class PartialConv2d(nn.Module):
    """Partial convolution layer; see :func:`partial_conv2d` for the equations.

    Parameters ``weight`` (C_out, C_in, kh, kw) and ``bias`` (C_out,) are initialised like
    ``nn.Conv2d``. ``forward(x, mask, mask_groups=None)`` takes x (N, C_in, H, W) and a mask
    (1 = valid, 0 = hole) of shape (N, 1 | C_in | G, H, W) and returns
    ``(out (N, C_out, H_out, W_out), new_mask (N, 1, H_out, W_out))``; ``update``, the
    layer's ``(ratio, new_mask)`` from :meth:`mask_update`, skips computing them again.

    ``check_inputs`` (default True): every forward raises ``ValueError`` unless the mask is
    binary (:func:`check_binary_mask`) and ``x`` finite (:func:`check_finite`); set it False
    where the inputs are known to be valid (see the module docstring). Construction raises
    ``ValueError`` for channel counts or kernel sizes below 1, strides below 1 or negative
    padding.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 check_inputs: bool = True):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size", minimum=1)
        self.stride = _pair(stride, "stride", minimum=1)
        self.padding = _pair(padding, "padding", minimum=0)
        self.check_inputs = bool(check_inputs)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Same initialisation as ``nn.Conv2d``."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x, mask, mask_groups=None, update=None):
        if self.check_inputs:
            _validate(x, mask, self.weight, self.bias, mask_groups)  # types and shapes first
            check_binary_mask(mask)
            check_finite(x)
        return partial_conv2d(
            x, mask, self.weight, self.bias, self.stride, self.padding, mask_groups, update
        )

    def mask_update(self, mask, mask_groups=None, dtype=torch.float32):
        """This layer's ``(ratio, new_mask)`` for ``mask``, each (N, 1, H_out, W_out); see
        :func:`mask_update`."""
        return mask_update(mask, self.in_channels, self.kernel_size, self.stride, self.padding,
                           mask_groups, dtype)

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )
        return s + ("" if self.bias is not None else ", bias=False")
