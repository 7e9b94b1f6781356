"""Cross-tests: the NumPy reference, the naive loops, Numba and torch (CPU, CUDA) agree.

The float64 NumPy reference is the anchor (its backward is gradient-checked in
test_ref_partial_conv.py); every other implementation is compared with it on seeded random
cases over shapes, strides, paddings, odd sizes, mask densities and all three mask forms.
"""
import numpy as np
import pytest

import pconv_ref
from pconv_ref import fast
import torch_oracle
from cases import MASK_FORMS, random_mask, seed_of
from conftest import TORCH_DEVICES

# (N, C_in, H, W, C_out, k, stride, padding)
SHAPES = [
    (2, 3, 7, 9, 4, 3, 1, 1),
    (1, 5, 8, 8, 2, 5, 2, 2),
    (2, 4, 6, 5, 3, 1, 1, 0),
    (1, 2, 9, 7, 3, 3, 2, 0),
    (3, 6, 5, 5, 2, 2, 1, 0),
    (1, 4, 11, 10, 3, 3, 2, 1),
]
DENSITIES = ["all-hole", "all-valid", 0.5, 0.15, "one-hole-pixel"]


def make_case(shape, density, form, seed=0):
    """Seeded inputs for one cross-test case; returns a dict of arrays and options."""
    n, c_in, h, w, c_out, k, stride, padding = shape
    rng = np.random.default_rng(seed)
    mask, groups = random_mask(form, density, (n, c_in, h, w), rng)
    x = rng.standard_normal((n, c_in, h, w))
    weight = rng.standard_normal((c_out, c_in, k, k))
    bias = rng.standard_normal(c_out)
    h_out = (h + 2 * padding - k) // stride + 1
    w_out = (w + 2 * padding - k) // stride + 1
    dout = rng.standard_normal((n, c_out, h_out, w_out))
    return dict(x=x, mask=mask, w=weight, b=bias, stride=stride, padding=padding, dout=dout, mask_groups=groups)


def run_reference(case, forward, backward):
    """Run a pconv_ref-style forward/backward pair; returns out, new_mask, dx, dw, db."""
    out, new_mask, cache = forward(
        case["x"], case["mask"], case["w"], case["b"], case["stride"], case["padding"],
        mask_groups=case["mask_groups"],
    )
    return (out, new_mask, *backward(case["dout"], cache))


def run_torch(case, device):
    return torch_oracle.partial_conv(
        case["x"], case["mask"], case["w"], case["b"], case["stride"], case["padding"], case["dout"],
        mask_groups=case["mask_groups"], device=device,
    )


IMPLEMENTATIONS = [
    pytest.param(
        lambda c: run_reference(c, pconv_ref.partial_conv2d_forward_naive, pconv_ref.partial_conv2d_backward_naive),
        id="naive",
    ),
    pytest.param(
        lambda c: run_reference(c, fast.partial_conv2d_forward_fast, fast.partial_conv2d_backward_fast),
        id="numba",
    ),
] + [
    pytest.param(lambda c, d=p.values[0]: run_torch(c, d), id=p.id, marks=p.marks) for p in TORCH_DEVICES
]
NAMES = ["out", "new_mask", "dx", "dw", "db"]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("form", MASK_FORMS)
@pytest.mark.parametrize("density", DENSITIES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "N{}C{}H{}W{}-O{}k{}s{}p{}".format(*s))
def test_partial_conv_matches_numpy_reference(shape, density, form, implementation):
    case = make_case(shape, density, form, seed=seed_of(shape, density, form))
    expected = run_reference(case, pconv_ref.partial_conv2d_forward, pconv_ref.partial_conv2d_backward)
    got = implementation(case)
    for name, mine, ref in zip(NAMES, got, expected):
        assert mine.shape == ref.shape, name
        np.testing.assert_allclose(mine, ref, rtol=1e-9, atol=1e-10, err_msg=name)


def test_all_hole_mask_gives_zero_everywhere_in_every_implementation():
    case = make_case(SHAPES[0], 0.0, "one-channel")
    for implementation in IMPLEMENTATIONS[:2]:
        out, new_mask, *_ = implementation.values[0](case)
        assert not out.any() and not new_mask.any()
    out, new_mask, dx, dw, db = run_torch(case, "cpu")
    assert not out.any() and not new_mask.any() and not dx.any() and not dw.any() and not db.any()


LOSS_CASES = ["mse_hole", "mse_valid", "mse_weighted", "generator_loss", "discriminator_loss",
              "mse_weighted_balanced", "generator_loss_balanced"]


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("case", LOSS_CASES)
def test_losses_match_torch(case, device):
    name = case.removesuffix("_balanced")
    balance = {"balance": 0.7} if case.endswith("_balanced") else {}
    rng = np.random.default_rng(7)
    output, target = rng.random((2, 3, 3, 6, 5))
    output[1] = target[1] + 1e-3 * (output[1] - target[1])  # a nearly exact image: weights differ
    mask = (rng.random((3, 1, 6, 5)) < 0.6).astype(np.float64)
    real_logits, fake_logits = rng.standard_normal((2, 3, 1)) * 4
    if name == "discriminator_loss":
        loss, d_real, d_fake = pconv_ref.discriminator_loss(real_logits, fake_logits)
        t_loss, (t_real, t_fake) = torch_oracle.loss_and_grads(name, real_logits, fake_logits, device=device)
        pairs = [(d_real, t_real), (d_fake, t_fake)]
    elif name == "generator_loss":
        loss, d_output, d_fake = pconv_ref.generator_loss(output, target, mask, fake_logits, **balance)
        t_loss, (t_output, _, _, t_fake) = torch_oracle.loss_and_grads(
            name, output, target, mask, fake_logits, device=device, **balance
        )
        pairs = [(d_output, t_output), (d_fake, t_fake)]
    else:
        loss, d_output = getattr(pconv_ref, name)(output, target, mask, **balance)
        t_loss, (t_output, _, _) = torch_oracle.loss_and_grads(name, output, target, mask,
                                                               device=device, **balance)
        pairs = [(d_output, t_output)]
    np.testing.assert_allclose(float(loss), t_loss, rtol=1e-12)
    for mine, theirs in pairs:
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-14)
