"""Torch as the oracle, behind one helper: run the torch code, return NumPy in the reference's layout.

Every function takes and returns NumPy arrays (float64 unless the inputs say otherwise), so a
test can hold `pconv_ref` against torch with nothing but `np.testing.assert_allclose`.
"""
import torch

import pconv_torch
from pconv_torch import losses as torch_losses


def _tensor(array, device, requires_grad=False):
    return torch.tensor(array, device=device, requires_grad=requires_grad)


def _numpy(tensor):
    return None if tensor is None else tensor.detach().cpu().numpy()


def partial_conv(x, mask, w, b, stride, padding, dout, mask_groups=None, device="cpu"):
    """pconv_torch.partial_conv2d forward and backward.

    Shapes: x (N,C_in,H,W), mask (N,1|C_in|G,H,W), w (C_out,C_in,kh,kw), b (C_out,) or None,
    dout (N,C_out,H_out,W_out). Returns out, new_mask (N,1,H_out,W_out), dx, dw, db.
    """
    xt = _tensor(x, device, requires_grad=True)
    wt = _tensor(w, device, requires_grad=True)
    bt = None if b is None else _tensor(b, device, requires_grad=True)
    out, new_mask = pconv_torch.partial_conv2d(
        xt, _tensor(mask, device), wt, bt, stride, padding, mask_groups=mask_groups
    )
    out.backward(_tensor(dout, device))
    return _numpy(out), _numpy(new_mask), _numpy(xt.grad), _numpy(wt.grad), _numpy(None if bt is None else bt.grad)


def partial_conv_forward(x, mask, w, b, stride, padding, mask_groups=None, device="cpu"):
    """pconv_torch.partial_conv2d forward only (no autograd graph).

    Shapes as in partial_conv; returns out (N,C_out,H_out,W_out), new_mask (N,1,H_out,W_out).
    """
    with torch.no_grad():
        out, new_mask = pconv_torch.partial_conv2d(
            _tensor(x, device), _tensor(mask, device), _tensor(w, device),
            None if b is None else _tensor(b, device), stride, padding, mask_groups=mask_groups,
        )
    return _numpy(out), _numpy(new_mask)


def nvidia_partial_conv_forward(x, mask, w, b, stride, padding):
    """The formula of NVIDIA's ``PartialConv2d(multi_channel=True)`` written with torch ops: a
    second implementation that shares no code with ``pconv_torch``.

    Shapes: x and mask (N,C_in,H,W), w (C_out,C_in,kh,kw), b (C_out,). Returns out
    (N,C_out,H_out,W_out) and new_mask (N,1,H_out,W_out).
    The ratio is divided exactly (NVIDIA adds 1e-8 to the denominator).
    """
    F = torch.nn.functional
    xt, mt, wt, bt = (torch.tensor(a) for a in (x, mask, w, b))
    with torch.no_grad():
        ones = torch.ones((1, *wt.shape[1:]), dtype=mt.dtype)  # one filter: C_in x kh x kw
        sum_m = F.conv2d(mt, ones, None, stride, padding)
        update = sum_m.clamp(0, 1)
        ratio = ones.numel() / sum_m.clamp(min=1) * update
        out = (F.conv2d(xt * mt, wt, None, stride, padding) * ratio + bt.view(1, -1, 1, 1)) * update
    return _numpy(out), _numpy(update)


def conv2d(x, w, b, stride, padding, dout, device="cpu"):
    """torch.nn.functional.conv2d forward and backward.

    Shapes: x (N,C_in,H,W), w (C_out,C_in,kh,kw), b (C_out,) or None, dout (N,C_out,H_out,W_out).
    Returns out, dx, dw, db (db None without b).
    """
    xt = _tensor(x, device, requires_grad=True)
    wt = _tensor(w, device, requires_grad=True)
    bt = None if b is None else _tensor(b, device, requires_grad=True)
    out = torch.nn.functional.conv2d(xt, wt, bt, stride, padding)
    out.backward(_tensor(dout, device))
    return _numpy(out), _numpy(xt.grad), _numpy(wt.grad), _numpy(None if bt is None else bt.grad)


def conv2d_forward(x, w, b, stride, padding, device="cpu"):
    """torch.nn.functional.conv2d forward only.

    Shapes as in conv2d; returns out (N,C_out,H_out,W_out).
    """
    with torch.no_grad():
        out = torch.nn.functional.conv2d(
            _tensor(x, device), _tensor(w, device), None if b is None else _tensor(b, device), stride, padding
        )
    return _numpy(out)


def _elementwise(fn, x, device):
    with torch.no_grad():
        return _numpy(fn(_tensor(x, device)))


def upsample_nearest2x(x, device="cpu"):
    """torch.nn.functional.interpolate(scale_factor=2, mode="nearest"): (N,C,H,W) -> (N,C,2H,2W)."""
    return _elementwise(lambda t: torch.nn.functional.interpolate(t, scale_factor=2, mode="nearest"), x, device)


def flatten(x, device="cpu"):
    """torch.flatten(x, 1): (N,C,H,W) -> (N,C*H*W)."""
    return _elementwise(lambda t: t.flatten(1), x, device)


def sigmoid(x, device="cpu"):
    """torch.sigmoid, any shape."""
    return _elementwise(torch.sigmoid, x, device)


def leaky_relu(x, negative_slope=0.2, device="cpu"):
    """torch.nn.functional.leaky_relu(x, negative_slope), any shape."""
    return _elementwise(lambda t: torch.nn.functional.leaky_relu(t, negative_slope), x, device)


def linear(x, w, b, device="cpu"):
    """torch.nn.functional.linear: x (N,in), w (out,in), b (out,) or None -> (N,out)."""
    with torch.no_grad():
        out = torch.nn.functional.linear(
            _tensor(x, device), _tensor(w, device), None if b is None else _tensor(b, device)
        )
    return _numpy(out)


def bce_with_logits(logits, targets, device="cpu"):
    """torch.nn.functional.binary_cross_entropy_with_logits (mean), forward and backward.

    Shapes: logits and targets alike, e.g. (N,). Returns (loss, d logits).
    """
    zt = _tensor(logits, device, requires_grad=True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(zt, _tensor(targets, device))
    loss.backward()
    return float(loss.detach()), _numpy(zt.grad)


def loss_and_grads(name, *arrays, device="cpu", **kwargs):
    """Evaluate pconv_torch.losses.<name>(*arrays, **kwargs); return (loss, [d array_i ...]).

    Every floating-point array gets a gradient; masks come back with a gradient too but tests
    only look at the ones that the reference returns.
    """
    tensors = [_tensor(a, device, requires_grad=True) for a in arrays]
    loss = getattr(torch_losses, name)(*tensors, **kwargs)
    loss.backward()
    return float(loss.detach()), [_numpy(t.grad) for t in tensors]
