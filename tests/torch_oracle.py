"""Torch as the oracle, behind one helper: run the torch code, return NumPy in the reference's layout.

Every function takes and returns NumPy arrays (float64 unless the inputs say otherwise), so a
test can hold `pconv_ref` against torch with nothing but `np.testing.assert_allclose`.
"""
import numpy as np
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


def loss_and_grads(name, *arrays, device="cpu", **kwargs):
    """Evaluate pconv_torch.losses.<name>(*arrays, **kwargs); return (loss, [d array_i ...]).

    Every floating-point array gets a gradient; masks come back with a gradient too but tests
    only look at the ones that the reference returns.
    """
    tensors = [_tensor(a, device, requires_grad=True) for a in arrays]
    loss = getattr(torch_losses, name)(*tensors, **kwargs)
    loss.backward()
    return float(loss.detach()), [_numpy(t.grad) for t in tensors]
