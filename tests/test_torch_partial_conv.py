"""Tests of pconv_torch.partial_conv2d / PartialConv2d (mask: 1 = valid, 0 = hole)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from pconv_torch import PartialConv2d, check_binary_mask, partial_conv2d, partial_conv2d_naive

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


# ---------------------------------------------------------------- helpers
def expand_mask(mask, c_in, groups=None):
    """(N, 1|G, H, W) mask -> (N, C_in, H, W) per-channel mask."""
    if groups is None:
        return mask.expand(-1, c_in, -1, -1).contiguous()
    return torch.cat([mask[:, g : g + 1].expand(-1, c, -1, -1) for g, c in enumerate(groups)], 1)


def oracle(x, mask_c, weight, bias, stride, padding):
    """Partial convolution straight from the definition, via unfold (independent of the
    package's one-channel shortcuts). mask_c: (N, C_in, H, W)."""
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    cols_x = F.unfold(x * mask_c, (kh, kw), padding=padding, stride=stride)  # (N, C_in*kh*kw, L)
    cols_m = F.unfold(mask_c, (kh, kw), padding=padding, stride=stride)
    sum_m = cols_m.sum(1, keepdim=True)  # (N, 1, L)
    y = torch.einsum("ok,nkl->nol", weight.reshape(c_out, -1), cols_x)
    valid = sum_m > 0
    out = torch.where(valid, y * (c_in * kh * kw) / sum_m.clamp(min=1), torch.zeros_like(y))
    if bias is not None:
        out = out + torch.where(valid, bias.view(1, -1, 1), torch.zeros_like(y))
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (w + 2 * padding - kw) // stride + 1
    return out.reshape(n, c_out, ho, wo), valid.to(x.dtype).reshape(n, 1, ho, wo)


def rand_mask(shape, density, gen, dtype=torch.float64):
    return (torch.rand(shape, generator=gen, dtype=torch.float64) < density).to(dtype)


# ---------------------------------------------------------------- hand-computed cases
def test_hand_center_hole():
    # x = 1..9 in a 3x3 image, centre pixel (value 5) is a hole, 3x3 ones kernel, no padding:
    # conv(X*M) = 45 - 5 = 40, sum_M = 8, sum_1 = 9, so out = 40 * 9/8 + 0.5 = 45.5.
    x = torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    m = torch.ones(1, 1, 3, 3)
    m[0, 0, 1, 1] = 0
    out, new = partial_conv2d(x, m, torch.ones(1, 1, 3, 3), torch.tensor([0.5]))
    assert out.shape == (1, 1, 1, 1) and new.shape == (1, 1, 1, 1)
    assert out.item() == pytest.approx(45.5)
    assert new.item() == 1.0


def test_hand_all_hole_gives_zero_not_bias():
    # No valid entry in the window: output is exactly 0 (not the bias 0.5), new mask 0.
    x = torch.arange(1.0, 10.0).view(1, 1, 3, 3)
    out, new = partial_conv2d(x, torch.zeros(1, 1, 3, 3), torch.ones(1, 1, 3, 3), torch.tensor([0.5]))
    assert out.item() == 0.0 and new.item() == 0.0


def test_hand_border_rescaling_with_padding():
    # 2x2 image of ones, all valid, 3x3 ones kernel, padding 1: every window sees 4 valid
    # pixels out of 9 (the rest is padding = hole): conv = 4, ratio 9/4, out = 9 + bias 1 = 10
    # everywhere. A plain convolution would give 4 + 1 = 5.
    x = torch.ones(1, 1, 2, 2)
    out, new = partial_conv2d(x, torch.ones(1, 1, 2, 2), torch.ones(1, 1, 3, 3), torch.ones(1),
                              padding=1)
    torch.testing.assert_close(out, torch.full((1, 1, 2, 2), 10.0))
    torch.testing.assert_close(new, torch.ones(1, 1, 2, 2))
    # Now only the top-left pixel valid (value 1): each window contains it (1 valid of 9):
    # conv = 1, ratio 9/1, out = 9 + 1 = 10 again, new mask all ones.
    m = torch.zeros(1, 1, 2, 2)
    m[0, 0, 0, 0] = 1
    out, new = partial_conv2d(x * 7 * (1 - m) + x * m, m, torch.ones(1, 1, 3, 3), torch.ones(1),
                              padding=1)
    torch.testing.assert_close(out, torch.full((1, 1, 2, 2), 10.0))


def test_hand_per_channel_mask():
    # x = [2, 3] in two channels of one pixel, weights [1, 1], channel 1 is a hole:
    # sum_M = 1, sum_1 = 2, out = 2 * 2/1 = 4.
    x = torch.tensor([2.0, 3.0]).view(1, 2, 1, 1)
    m = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    out, new = partial_conv2d(x, m, torch.ones(1, 2, 1, 1), None)
    assert out.item() == pytest.approx(4.0) and new.item() == 1.0


def test_hand_groups_mask():
    # x = [1, 2, 3] as groups (1, 2); group 0 (value 1) is a hole, group 1 valid:
    # conv = 2 + 3 = 5, sum_M = 2, sum_1 = 3, out = 5 * 3/2 = 7.5.
    x = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    m = torch.tensor([0.0, 1.0]).view(1, 2, 1, 1)
    out, _ = partial_conv2d(x, m, torch.ones(1, 3, 1, 1), None, mask_groups=(1, 2))
    assert out.item() == pytest.approx(7.5)


# ---------------------------------------------------------------- equivalences
CONFIGS = [  # (N, groups, C_out, H, W, k, stride, padding)
    (2, (3,), 4, 9, 11, 5, 2, 2),
    (1, (4,), 3, 8, 8, 3, 1, 1),
    (2, (3, 2), 5, 7, 6, 3, 1, 1),
    (1, (2, 1, 3), 2, 5, 9, 3, 2, 0),
    (2, (1,), 2, 6, 5, 4, 3, 2),  # even kernel, stride 3
    (1, (2, 2), 3, 6, 7, 1, 1, 0),
    (1, (3,), 2, 5, 5, 3, 1, 3),  # padding > k/2: box sum falls back to a conv
]


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("density", [0.0, 0.3, 0.8, 1.0])
def test_all_forms_match_oracle(cfg, density):
    n, groups, c_out, h, w, k, s, p = cfg
    c_in = sum(groups)
    gen = torch.Generator().manual_seed(hash((cfg, density)) % 2**31)
    x = torch.randn(n, c_in, h, w, generator=gen, dtype=torch.float64)
    wgt = torch.randn(c_out, c_in, k, k, generator=gen, dtype=torch.float64)
    b = torch.randn(c_out, generator=gen, dtype=torch.float64)
    m1 = rand_mask((n, 1, h, w), density, gen)
    mg = rand_mask((n, len(groups), h, w), density, gen)
    mc = rand_mask((n, c_in, h, w), density, gen)
    cases = [(m1, None, expand_mask(m1, c_in)), (mc, None, mc)]
    if len(groups) > 1:
        cases.append((mg, groups, expand_mask(mg, c_in, groups)))
    for mask, mgroups, mask_c in cases:
        ref_out, ref_new = oracle(x, mask_c, wgt, b, s, p)
        for fn in (partial_conv2d, partial_conv2d_naive):
            out, new = fn(x, mask, wgt, b, s, p, mask_groups=mgroups)
            torch.testing.assert_close(out, ref_out)
            torch.testing.assert_close(new, ref_new, rtol=0, atol=0)
        # the compact forms equal the expanded per-channel mask
        out_c, new_c = partial_conv2d(x, mask_c, wgt, b, s, p)
        torch.testing.assert_close(out, out_c)
        torch.testing.assert_close(new, new_c, rtol=0, atol=0)


@settings(max_examples=30, deadline=None)
@given(
    groups=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    c_out=st.integers(1, 3),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    k=st.integers(1, 4),
    s=st.integers(1, 3),
    p=st.integers(0, 2),
    density=st.sampled_from([0.0, 0.2, 0.6, 1.0]),
    form=st.sampled_from(["one", "channel", "groups"]),
    seed=st.integers(0, 2**16),
)
def test_random_shapes_match_oracle(groups, c_out, h, w, k, s, p, density, form, seed):
    c_in = sum(groups)
    if h + 2 * p < k or w + 2 * p < k:
        return  # empty output
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, c_in, h, w, generator=gen, dtype=torch.float64)
    wgt = torch.randn(c_out, c_in, k, k, generator=gen, dtype=torch.float64)
    b = torch.randn(c_out, generator=gen, dtype=torch.float64)
    mch = {"one": 1, "channel": c_in, "groups": len(groups)}[form]
    mask = rand_mask((2, mch, h, w), density, gen)
    mg = tuple(groups) if form == "groups" else None
    mask_c = mask if form == "channel" else expand_mask(mask, c_in, mg)
    out, new = partial_conv2d(x, mask, wgt, b, s, p, mg)
    ref_out, ref_new = oracle(x, mask_c, wgt, b, s, p)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(new, ref_new, rtol=0, atol=0)


def test_all_valid_interior_equals_conv2d():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 10, 10, generator=gen)
    wgt = torch.randn(4, 3, 3, 3, generator=gen)
    b = torch.randn(4, generator=gen)
    out, new = partial_conv2d(x, torch.ones(2, 1, 10, 10), wgt, b, padding=1)
    ref = F.conv2d(x, wgt, b, padding=1)
    torch.testing.assert_close(out[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1])
    assert not torch.allclose(out[..., 0, :], ref[..., 0, :])  # border is rescaled
    assert bool((new == 1).all())
    out, _ = partial_conv2d(x, torch.ones(2, 1, 10, 10), wgt, b)  # no padding: equal everywhere
    torch.testing.assert_close(out, F.conv2d(x, wgt, b))


@pytest.mark.parametrize("form", ["one", "channel", "groups"])
def test_independent_of_hole_values_and_zero_grad_there(form):
    gen = torch.Generator().manual_seed(2)
    n, c_in, h, w = 2, 5, 8, 7
    groups = (2, 3) if form == "groups" else None
    mshape = {"one": (n, 1, h, w), "channel": (n, c_in, h, w), "groups": (n, 2, h, w)}[form]
    mask = rand_mask(mshape, 0.5, gen, torch.float32)
    mask_c = expand_mask(mask, c_in, groups) if form != "channel" else mask
    layer = PartialConv2d(c_in, 3, 3, stride=1, padding=1)
    x1 = torch.randn(n, c_in, h, w, generator=gen)
    x2 = x1 + (1 - mask_c) * 100 * torch.randn(n, c_in, h, w, generator=gen)
    x1.requires_grad_(True)
    x2.requires_grad_(True)
    o1, m1 = layer(x1, mask, groups)
    o2, m2 = layer(x2, mask, groups)
    torch.testing.assert_close(o1, o2)
    torch.testing.assert_close(m1, m2)
    o1.square().sum().backward()
    assert bool((x1.grad[mask_c == 0] == 0).all())
    assert x1.grad[mask_c == 1].abs().sum() > 0


def test_mask_gets_no_grad_and_mask_dtypes():
    x = torch.randn(1, 2, 5, 5)
    m = (torch.rand(1, 1, 5, 5) > 0.5).float().requires_grad_(True)
    layer = PartialConv2d(2, 3, 3, padding=1)
    out, new = layer(x, m)
    assert not new.requires_grad
    out.sum().backward()
    assert m.grad is None
    out_b, new_b = layer(x, m.detach().bool())
    torch.testing.assert_close(out_b, out)
    assert new_b.dtype == x.dtype


# ---------------------------------------------------------------- gradients
GRAD_CASES = [  # (form, groups, H, W, k, stride, padding)
    ("one", (3,), 5, 7, 3, 1, 1),
    ("one", (3,), 7, 5, 5, 2, 2),
    ("channel", (3,), 6, 5, 3, 2, 1),
    ("groups", (2, 1), 5, 5, 3, 1, 1),
    ("groups", (1, 2, 2), 7, 6, 3, 2, 0),
]


@pytest.mark.parametrize("case", GRAD_CASES)
def test_gradcheck(case):
    form, groups, h, w, k, s, p = case
    gen = torch.Generator().manual_seed(3)
    c_in, c_out, n = sum(groups), 2, 2
    mshape = {"one": (n, 1, h, w), "channel": (n, c_in, h, w), "groups": (n, len(groups), h, w)}
    mask = rand_mask(mshape[form], 0.6, gen)
    mask[0, :, : h // 2 + 1, : w // 2 + 1] = 0  # an all-hole region too
    mg = groups if form == "groups" else None
    x = torch.randn(n, c_in, h, w, generator=gen, dtype=torch.float64, requires_grad=True)
    wgt = torch.randn(c_out, c_in, k, k, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(c_out, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, wgt, b: partial_conv2d(x, mask, wgt, b, s, p, mg)[0], (x, wgt, b)
    )
    layer = PartialConv2d(c_in, c_out, k, s, p).double()
    assert torch.autograd.gradcheck(lambda x: layer(x, mask, mg)[0], (x,))


def test_gradcheck_no_bias():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(1, 2, 5, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    wgt = torch.randn(3, 2, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    mask = rand_mask((1, 1, 5, 5), 0.5, gen)
    assert torch.autograd.gradcheck(
        lambda x, wgt: partial_conv2d(x, mask, wgt, None, 2, 1)[0], (x, wgt)
    )


@pytest.mark.parametrize("upstream", ["dense", "expanded", "channels_last"])
@pytest.mark.parametrize("needs", [(True, True, True), (False, True, True), (True, False, False)])
def test_grads_match_autograd_naive(upstream, needs):
    # The hand-written backward against plain autograd through the naive form, including
    # non-contiguous upstream gradients and inputs that need no gradient.
    gen = torch.Generator().manual_seed(8)
    groups = (3, 2)
    mask = rand_mask((2, 2, 9, 8), 0.5, gen)
    base = [torch.randn(2, 5, 9, 8, generator=gen, dtype=torch.float64),
            torch.randn(4, 5, 3, 3, generator=gen, dtype=torch.float64),
            torch.randn(4, generator=gen, dtype=torch.float64)]
    if upstream == "channels_last":
        base[0] = base[0].contiguous(memory_format=torch.channels_last)
    grads = []
    for fn in (partial_conv2d, partial_conv2d_naive):
        args = [t.clone().requires_grad_(r) for t, r in zip(base, needs)]
        out, _ = fn(args[0], mask, args[1], args[2], 2, 1, groups)
        if upstream == "expanded":
            out.sum().backward()
        else:
            out.backward(torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out))
        grads.append([a.grad for a in args])
    for g_fast, g_ref, r in zip(*grads, needs):
        if r:
            torch.testing.assert_close(g_fast, g_ref)
        else:
            assert g_fast is None


# ---------------------------------------------------------------- mixed precision
@pytest.mark.parametrize("form", ["one", "groups"])
def test_bf16_autocast_cpu_finite(form):
    gen = torch.Generator().manual_seed(5)
    layer = PartialConv2d(5, 4, 3, padding=1)
    x = torch.randn(2, 5, 12, 12, generator=gen, requires_grad=True)
    groups = (3, 2) if form == "groups" else None
    mask = torch.ones(2, 2 if groups else 1, 12, 12)
    mask[:, :, 2:9, 3:10] = 0  # an all-hole region larger than the kernel
    ref, ref_new = layer(x, mask, groups)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, new = layer(x, mask, groups)
    assert bool(torch.isfinite(out).all())
    torch.testing.assert_close(new, ref_new)
    assert bool((out.float()[new.expand_as(out) == 0] == 0).all())
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.05)
    out.float().sum().backward()
    assert bool(torch.isfinite(x.grad).all()) and bool(torch.isfinite(layer.weight.grad).all())
    assert layer.weight.grad.dtype == layer.bias.grad.dtype == x.grad.dtype == torch.float32


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "xs, ms, groups, match",
    [
        ((2, 3, 8), (2, 1, 8, 8), None, "x must be 4-D"),
        ((2, 3, 8, 8), (2, 8, 8), None, "mask must be 4-D"),
        ((2, 3, 8, 8), (2, 1, 8, 7), None, "spatial size"),
        ((2, 3, 8, 8), (1, 1, 8, 8), None, "batch"),
        ((2, 3, 8, 8), (2, 2, 8, 8), None, "mask has 2 channels"),
        ((2, 3, 8, 8), (2, 2, 8, 8), (1, 1), "sum to 2"),
        ((2, 3, 8, 8), (2, 3, 8, 8), (1, 2), "describes 2 groups"),
        ((2, 3, 8, 8), (2, 2, 8, 8), (3, 0), "positive"),
    ],
)
def test_shape_errors(xs, ms, groups, match):
    layer = PartialConv2d(3, 2, 3, padding=1)
    with pytest.raises(ValueError, match=match):
        layer(torch.zeros(xs), torch.ones(ms), groups)


def test_weight_errors():
    x, m = torch.zeros(1, 3, 5, 5), torch.ones(1, 1, 5, 5)
    with pytest.raises(ValueError, match="input channels"):
        partial_conv2d(x, m, torch.zeros(2, 4, 3, 3), None)
    with pytest.raises(ValueError, match="weight must be 4-D"):
        partial_conv2d(x, m, torch.zeros(2, 3, 3), None)
    with pytest.raises(ValueError, match="bias"):
        partial_conv2d(x, m, torch.zeros(2, 3, 3, 3), torch.zeros(3))
    with pytest.raises(ValueError, match="stride"):
        partial_conv2d(x, m, torch.zeros(2, 3, 3, 3), None, stride=(1, 2, 3))


def test_check_binary_mask():
    ok = torch.tensor([[0.0, 1.0]])
    assert check_binary_mask(ok) is ok
    check_binary_mask(ok.bool())
    with pytest.raises(ValueError, match="binary"):
        check_binary_mask(torch.tensor([0.0, 0.5]))
    with pytest.raises(ValueError, match="binary"):
        check_binary_mask(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError):
        check_binary_mask([0, 1])


# ---------------------------------------------------------------- module
def test_module_init_like_conv2d():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 4, 3)
    torch.manual_seed(0)
    layer = PartialConv2d(6, 4, 3)
    torch.testing.assert_close(layer.weight, conv.weight)
    torch.testing.assert_close(layer.bias, conv.bias)
    assert PartialConv2d(6, 4, (3, 5), bias=False).bias is None
    assert "kernel_size=(3, 5)" in repr(PartialConv2d(6, 4, (3, 5)))


@pytest.mark.parametrize("device", DEVICES)
def test_module_on_device_chain(device):
    # Two layers chained, new mask feeds the next layer, like the generator's encoder.
    gen = torch.Generator().manual_seed(6)
    l1 = PartialConv2d(3, 8, 5, 2, 2).to(device)
    l2 = PartialConv2d(8 + 3, 4, 3, 1, 1).to(device)
    x = torch.rand(2, 3, 16, 16, generator=gen).to(device)
    m = torch.ones(2, 1, 16, 16)
    m[:, :, 4:12, 4:12] = 0
    m = m.to(device)
    h, hm = l1(x, m)
    assert h.shape == (2, 8, 8, 8) and hm.shape == (2, 1, 8, 8)
    up, upm = F.interpolate(h, scale_factor=2.0), F.interpolate(hm, scale_factor=2.0)
    out, om = l2(torch.cat([up, x], 1), torch.cat([upm, m], 1), (8, 3))
    out.sum().backward()
    assert out.device.type == device and l1.weight.grad is not None
    assert bool(torch.isfinite(out).all())


@pytest.mark.cuda
@pytest.mark.parametrize("form", ["one", "channel", "groups"])
def test_cuda_matches_cpu(form):
    gen = torch.Generator().manual_seed(7)
    groups = (3, 2) if form == "groups" else None
    mshape = {"one": (2, 1, 9, 9), "channel": (2, 5, 9, 9), "groups": (2, 2, 9, 9)}[form]
    mask = rand_mask(mshape, 0.4, gen, torch.float32)
    x = torch.randn(2, 5, 9, 9, generator=gen)
    # check_inputs=False: the input checks read the mask's values, which synchronises by
    # design; the partial convolution itself must not
    layer = PartialConv2d(5, 4, 3, 2, 1, check_inputs=False)
    ref, ref_new = layer(x, mask, groups)
    layer, xc, mc = layer.cuda(), x.cuda().requires_grad_(True), mask.cuda()
    layer(xc, mc, groups)  # warm up (cuDNN setup may synchronise)
    torch.cuda.set_sync_debug_mode("error")  # forward must not wait for the device
    try:
        out, new = layer(xc, mc, groups)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    out.sum().backward()
    assert bool(torch.isfinite(xc.grad).all())
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-3, atol=1e-3)  # TF32 tolerance
    torch.testing.assert_close(new.cpu(), ref_new)
    with torch.autocast("cuda", dtype=torch.float16):
        out16, _ = layer(x.cuda(), mask.cuda(), groups)
    assert bool(torch.isfinite(out16).all())


def test_precomputed_update_gives_the_same_result_and_is_checked():
    """``update=mask_update(...)`` computed beforehand changes nothing; a pair of the wrong
    shape is refused with a message naming ``update``."""
    from pconv_torch.partial_conv import mask_update

    torch.manual_seed(0)
    layer = PartialConv2d(5, 4, 3, stride=2, padding=1)
    x = torch.randn(2, 5, 9, 9)
    mask = (torch.rand(2, 1, 9, 9) > 0.5).float()
    update = layer.mask_update(mask)
    assert all(torch.equal(a, b) for a, b in zip(update, mask_update(mask, 5, 3, 2, 1)))
    out, new_mask = layer(x, mask)
    out_u, new_mask_u = layer(x, mask, update=update)
    assert torch.equal(out, out_u) and torch.equal(new_mask, new_mask_u)
    with pytest.raises(ValueError, match="update must be"):
        layer(x, mask, update=(update[0][..., :-1], update[1]))
    with pytest.raises(ValueError, match="update must be"):
        layer(x, mask, update=update[0])
