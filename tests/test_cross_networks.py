"""The whole networks, from scratch vs torch: pconv_ref.networks against pconv_torch.networks.

Each test builds the torch module with a fixed seed in float64, loads its state_dict into the
NumPy reference, runs both on the same random image and rectangular-hole mask, and compares
the output and, for a random upstream gradient, every parameter's gradient (and the
discriminator's d_image) with torch autograd. Torch runs on each ``torch_device``; the
reference on the CPU.
"""
import numpy as np
import pytest
import torch

from pconv_ref.networks import (
    discriminator_backward,
    discriminator_forward,
    discriminator_loss_and_grads,
    generator_backward,
    generator_forward,
    generator_loss_and_grads,
    generator_mask_pyramid,
)
from pconv_torch import losses as torch_losses
from pconv_torch.masks import local_boxes
from pconv_torch.networks import Discriminator, Generator

RTOL = 1e-9


# ------------------------------------------------------------------------------ helpers
def params_of(module):
    """The module's state_dict as float64 NumPy arrays (what the reference loads)."""
    return {k: v.detach().double().cpu().numpy() for k, v in module.state_dict().items()}


def grads_of(module):
    """The module's parameter gradients as NumPy arrays, keyed like its state_dict."""
    return {k: p.grad.detach().cpu().numpy() for k, p in module.named_parameters()}


def assert_close(name, mine, ref):
    """allclose with rtol=1e-9 and an absolute floor of 1e-9 of the array's scale (entries
    that cancel to ~0 cannot keep a relative error)."""
    atol = RTOL * max(np.abs(ref).max(), 1e-30)
    np.testing.assert_allclose(mine, ref, rtol=RTOL, atol=atol, err_msg=name)


def assert_grads_close(mine, ref):
    assert sorted(mine) == sorted(ref), "gradient keys differ from named_parameters()"
    for k in ref:
        assert_close(k, mine[k], ref[k])


def rect_masks(n, size, rng, min_side=None, max_side=None):
    """(n, 1, size, size) float64 masks with one random rectangular hole each (1 = valid)."""
    min_side = min_side or size // 8
    max_side = max_side or size // 2
    masks = np.ones((n, 1, size, size))
    for m in masks:
        h, w = rng.integers(min_side, max_side + 1, size=2)
        y, x = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
        m[0, y : y + h, x : x + w] = 0
    return masks


def torch_forward_backward(module, inputs, dout, device):
    """Run ``module(*inputs)`` in float64 on ``device`` and backpropagate ``dout``.

    inputs: NumPy arrays (the first gets a gradient) or other arguments passed as they are.
    Returns (output, d first input, parameter gradients), all NumPy.
    """
    module = module.to(device)
    module.zero_grad()
    x = torch.tensor(inputs[0], device=device, requires_grad=True)
    rest = [torch.tensor(a, device=device) if isinstance(a, np.ndarray) else a for a in inputs[1:]]
    out = module(x, *rest)
    out.backward(torch.tensor(dout, device=device))
    return out.detach().cpu().numpy(), x.grad.cpu().numpy(), grads_of(module)


def make(cls, seed=0, **kwargs):
    torch.manual_seed(seed)
    return cls(**kwargs).double()


# ---------------------------------------------------------------------------- generator
@pytest.mark.parametrize(
    "conv, depth, width, size, residual, standardise, base",
    [
        ("partial", 4, 1.0, 32, False, False, "harmonic"),  # the poster's network
        ("plain", 4, 1.0, 32, False, False, "harmonic"),  # the plain-convolution ablation
        ("partial", 5, 0.25, 32, False, False, "harmonic"),  # another depth and width
        ("partial", 4, 0.25, 32, True, False, "harmonic"),  # a correction to the harmonic fill
        ("plain", 4, 0.25, 32, True, False, "harmonic"),
        ("partial", 4, 0.25, 32, True, True, "harmonic"),  # ... on standardised input
        ("plain", 4, 0.25, 32, True, True, "harmonic"),
        ("partial", 4, 0.25, 32, True, True, "biharmonic"),  # ... of the biharmonic fill
        ("partial", 4, 0.25, 32, True, True, "mixed"),
    ],
)
def test_generator_matches_torch(torch_device, conv, depth, width, size, residual, standardise,
                                 base):
    rng = np.random.default_rng(1)
    g = make(Generator, width=width, depth=depth, conv=conv, fill=(0.4, 0.5, 0.6),
             residual=residual, standardise=standardise, base=base)
    if residual:  # its last layer starts at zero; give it weights so every gradient is exercised
        with torch.no_grad():
            g.layers[-1].conv.weight.normal_(0, 0.3)
            g.layers[-1].conv.bias.normal_(0, 0.3)
    params = params_of(g)
    image = rng.random((2, 3, size, size))
    mask = rect_masks(2, size, rng)
    dout = rng.standard_normal((2, 3, size, size))

    out_t, d_image_t, grads_t = torch_forward_backward(g, (image, mask), dout, torch_device)
    out, cache = generator_forward(params, image, mask, depth=depth, conv=conv, residual=residual,
                                   standardise=standardise, base=base)
    grads, d_image = generator_backward(dout, cache)

    assert_close("output", out, out_t)
    assert_close("d_image", d_image, d_image_t)
    assert_grads_close(grads, grads_t)
    assert len(grads) == 2 * (2 * depth + 2)


@pytest.mark.parametrize("depth, width, size", [(4, 0.25, 32), (4, 0.5, 64), (5, 0.25, 64)])
def test_mask_pyramid_matches_reference(torch_device, depth, width, size):
    """Every block's input mask, ratio and new mask, computed before the forward pass, equal
    the reference's (independent box sums in float64), holes touching the border included."""
    rng = np.random.default_rng(4)
    g = make(Generator, width=width, depth=depth).to(torch_device)
    mask = rect_masks(3, size, rng, max_side=size)
    mask[2] = 0
    mask[2, 0, :2, :3] = 1  # almost all hole: the masks close late
    pyramid = g.mask_pyramid(torch.from_numpy(mask).to(torch_device))
    ref = generator_mask_pyramid(params_of(g), mask, depth)
    assert len(pyramid) == len(ref) == 2 * depth + 2
    for i, ((m_t, groups_t, upd_t), (m_r, groups_r, upd_r)) in enumerate(zip(pyramid, ref)):
        assert groups_t == groups_r, f"block {i}"
        for name, a, b in (("mask_in", m_t, m_r), ("ratio", upd_t[0], upd_r[0]),
                           ("new_mask", upd_t[1], upd_r[1])):
            assert_close(f"block {i} {name}", a.cpu().numpy(), b)


def test_mask_pyramid_depends_on_the_mask_alone():
    """Two generators with different weights give the same pyramid, and a forward pass with
    the pyramid computed beforehand gives the same output and gradients, bit for bit."""
    rng = np.random.default_rng(5)
    g, other = make(Generator, width=0.25, seed=1), make(Generator, width=0.25, seed=2)
    image = torch.from_numpy(rng.random((2, 3, 32, 32)))
    mask = torch.from_numpy(rect_masks(2, 32, rng))
    pyramid = g.mask_pyramid(mask)
    for (m_a, _, (r_a, n_a)), (m_b, _, (r_b, n_b)) in zip(pyramid, other.mask_pyramid(mask)):
        assert torch.equal(m_a, m_b) and torch.equal(r_a, r_b) and torch.equal(n_a, n_b)
    outs = []
    for given in (None, pyramid):
        x = image.clone().requires_grad_(True)
        g.zero_grad()
        out = g(x, mask, pyramid=given)
        out.square().sum().backward()
        outs.append([out.detach(), x.grad] + [p.grad for p in g.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*outs))
    assert make(Generator, width=0.25, conv="plain").mask_pyramid(mask) is None


def test_generator_holes_do_not_leak():
    """Values under the holes never reach the output (they are mean-filled first)."""
    rng = np.random.default_rng(2)
    params = params_of(make(Generator, width=0.25))
    image, mask = rng.random((1, 3, 32, 32)), rect_masks(1, 32, rng)
    other = np.where(mask == 1, image, rng.random(image.shape))
    out_a, _ = generator_forward(params, image, mask)
    out_b, _ = generator_forward(params, other, mask)
    np.testing.assert_array_equal(out_a, out_b)


def test_generator_rejects_bad_inputs():
    params = params_of(make(Generator, width=0.25))
    image, mask = np.zeros((1, 3, 32, 32)), np.ones((1, 1, 32, 32))
    with pytest.raises(ValueError, match="divisible"):
        generator_forward(params, image[..., :24], mask[..., :24])
    with pytest.raises(ValueError, match="depth"):
        generator_forward(params, image, mask, depth=3)
    with pytest.raises(ValueError, match="batch norm"):
        generator_forward(params_of(make(Generator, width=0.25, norm="batch")), image, mask)
    with pytest.raises(ValueError, match="conv"):
        generator_forward(params, image, mask, conv="gated")


# ------------------------------------------------------------------------ discriminator
@pytest.mark.parametrize(
    "local, image_size, patch_size, width",
    [
        (True, 128, 64, 0.25),  # the poster's sizes (narrow, to stay quick)
        (True, 64, 32, 1.0),  # full width, small images
        (False, 64, 32, 1.0),  # the global-only ablation
    ],
)
def test_discriminator_matches_torch(torch_device, local, image_size, patch_size, width):
    rng = np.random.default_rng(3)
    d = make(Discriminator, local=local, image_size=image_size, patch_size=patch_size,
             width=width)
    params = params_of(d)
    image = rng.random((2, 3, image_size, image_size))
    masks = rect_masks(2, image_size, rng, max_side=patch_size)
    boxes = local_boxes(masks, box=patch_size, rng=4).numpy() if local else None
    dout = rng.standard_normal(2)

    inputs = (image, torch.from_numpy(boxes)) if local else (image,)
    out_t, d_image_t, grads_t = torch_forward_backward(d, inputs, dout, torch_device)
    logits, cache = discriminator_forward(params, image, boxes, local=local)
    grads, d_image = discriminator_backward(dout, cache)

    assert logits.shape == (2,)
    assert_close("logits", logits, out_t)
    assert_close("d_image", d_image, d_image_t)
    assert_grads_close(grads, grads_t)


def test_discriminator_rejects_bad_inputs():
    params = params_of(make(Discriminator, image_size=64, patch_size=32, width=0.25))
    image = np.zeros((1, 3, 64, 64))
    with pytest.raises(ValueError, match="boxes"):
        discriminator_forward(params, image)
    with pytest.raises(ValueError, match="leaves"):
        discriminator_forward(params, image, np.array([[40, 0]]))
    g_only = params_of(make(Discriminator, local=False, image_size=64, width=0.25))
    with pytest.raises(ValueError, match="local_branch"):
        discriminator_forward(g_only, image, np.array([[0, 0]]), local=True)


# ------------------------------------------------------------------------ training steps
def test_training_step_losses_match_torch(torch_device):
    """One G step (L_G through D into G) and one D step (L_D), against torch autograd."""
    rng = np.random.default_rng(5)
    g = make(Generator, seed=0, width=0.25).to(torch_device)
    d = make(Discriminator, seed=1, image_size=32, patch_size=16, width=0.25).to(torch_device)
    g_params, d_params = params_of(g), params_of(d)
    image, mask = rng.random((2, 3, 32, 32)), rect_masks(2, 32, rng, max_side=16)
    boxes = local_boxes(mask, box=16).numpy()
    t = {k: torch.tensor(v, device=torch_device) for k, v in
         dict(image=image, mask=mask, boxes=boxes).items()}

    # G step; adv_weight large so that D's share of the gradient is well above rounding
    out_t = g(t["image"], t["mask"])
    loss_t = torch_losses.generator_loss(out_t, t["image"], t["mask"], d(out_t, t["boxes"]),
                                         adv_weight=0.5)
    loss_t.backward()
    loss, grads, out = generator_loss_and_grads(g_params, d_params, image, mask, boxes,
                                                adv_weight=0.5)
    assert_close("L_G", loss, loss_t.item())
    assert_close("G(I)", out, out_t.detach().cpu().numpy())
    assert_grads_close(grads, grads_of(g))

    # D step on real images and the (detached) generator output
    d.zero_grad()
    fake = out_t.detach()
    loss_t = torch_losses.discriminator_loss(d(t["image"], t["boxes"]), d(fake, t["boxes"]))
    loss_t.backward()
    loss, grads = discriminator_loss_and_grads(d_params, image, out, boxes, boxes)
    assert_close("L_D", loss, loss_t.item())
    assert_grads_close(grads, grads_of(d))
