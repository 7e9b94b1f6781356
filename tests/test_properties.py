"""Property tests (hypothesis): invariants of partial convolution (the reference and torch),
of compositing, and of the standardised generator."""
import numpy as np
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

import pconv_ref
import torch_oracle


@st.composite
def layer_inputs(draw, odd_kernel=False):
    """A random partial-conv problem: x (N,C,H,W), binary mask (N,1,H,W), w, b, stride."""
    n = draw(st.integers(1, 2))
    c_in = draw(st.integers(1, 3))
    c_out = draw(st.integers(1, 3))
    k = draw(st.sampled_from([1, 3, 5] if odd_kernel else [1, 2, 3, 4, 5]))
    h = draw(st.integers(k, 9))
    w = draw(st.integers(k, 9))
    stride = draw(st.sampled_from([1, 2]))
    seed = draw(st.integers(0, 2**32 - 1))
    mask = draw(arrays(np.float64, (n, 1, h, w), elements=st.sampled_from([0.0, 1.0])))
    rng = np.random.default_rng(seed)
    return dict(
        x=rng.standard_normal((n, c_in, h, w)),
        mask=mask,
        w=rng.standard_normal((c_out, c_in, k, k)),
        b=rng.standard_normal(c_out),
        stride=stride,
        k=k,
    )


def both_implementations(p, padding):
    """(out, new_mask) from the NumPy reference and from torch on the CPU, both float64."""
    out, new_mask, _ = pconv_ref.partial_conv2d_forward(p["x"], p["mask"], p["w"], p["b"], p["stride"], padding)
    t_out, t_mask = torch_oracle.partial_conv_forward(
        p["x"], p["mask"], p["w"], p["b"], p["stride"], padding
    )
    return [(out, new_mask), (t_out, t_mask)]


@given(layer_inputs(odd_kernel=True))
def test_holes_only_shrink(p):
    # With "same" padding the window of output (i, j) is centred on input (s*i, s*j): if that
    # pixel was valid the output is valid, so a hole can only get smaller.
    padding = p["k"] // 2
    s = p["stride"]
    for _, new_mask in both_implementations(p, padding):
        assert np.all(new_mask >= p["mask"][:, :, ::s, ::s])


@given(layer_inputs())
def test_all_valid_mask_without_border_is_a_plain_convolution(p):
    p["mask"] = np.ones_like(p["mask"])
    plain = torch_oracle.conv2d_forward(p["x"], p["w"], p["b"], p["stride"], 0)
    for out, new_mask in both_implementations(p, padding=0):
        np.testing.assert_allclose(out, plain, rtol=1e-10, atol=1e-10)
        assert np.all(new_mask == 1)


@given(layer_inputs(), st.integers(0, 2))
def test_output_never_depends_on_pixels_under_the_hole(p, padding):
    padding = min(padding, p["k"] - 1)
    before = both_implementations(p, padding)
    rng = np.random.default_rng(0)
    p["x"] = np.where(p["mask"] == 1, p["x"], 1e3 * rng.standard_normal(p["x"].shape))
    after = both_implementations(p, padding)
    for (out_a, mask_a), (out_b, mask_b) in zip(before, after):
        np.testing.assert_array_equal(mask_a, mask_b)
        np.testing.assert_allclose(out_a, out_b, rtol=0, atol=1e-12)


# ---- the torch package: compositing and the standardised generator -------------------------
@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.integers(1, 12), st.integers(1, 12))
def test_a_composite_keeps_every_known_pixel_exactly(seed, n, h, w):
    import torch

    from pconv_torch.compositing import composite

    rng = np.random.default_rng(seed)
    image = rng.random((n, 3, h, w)).astype(np.float32)
    output = (rng.standard_normal((n, 3, h, w)) * 10).astype(np.float32)  # any finite values
    mask = (rng.random((n, 1, h, w)) < 0.5).astype(np.float32)
    for kind in (np.asarray, torch.from_numpy):
        out = np.asarray(composite(kind(image), kind(output), kind(mask)))
        known = np.broadcast_to(mask > 0.5, image.shape)
        np.testing.assert_array_equal(out[known], image[known])
        np.testing.assert_array_equal(out[~known], output[~known])


_STANDARDISED = {}


def _standardised_generator():
    """A small standardised residual generator (float64) whose last layer is not zero."""
    if not _STANDARDISED:
        import torch

        from pconv_torch.networks import Generator

        torch.manual_seed(0)
        g = Generator(width=0.125, depth=2, residual=True, standardise=True).double().eval()
        torch.nn.init.normal_(g.layers[-1].conv.weight, std=0.3)
        torch.nn.init.normal_(g.layers[-1].conv.bias, std=0.3)
        _STANDARDISED["g"] = g
    return _STANDARDISED["g"]


@given(st.integers(0, 2**32 - 1), st.floats(0.5, 2.0),
       st.lists(st.floats(-0.05, 0.05), min_size=3, max_size=3))
def test_the_standardised_generator_scales_its_correction_with_the_contrast(seed, a, offsets):
    """x -> 0.5 + b_c + a (x - 0.5) (a contrast a, a per-channel shift b) leaves what the
    network sees unchanged (up to the 1e-3 that keeps a flat image finite), so its correction
    to the harmonic fill h, logit(G) - logit(h) in the hole, is multiplied by a."""
    import torch

    from pconv_torch.masks import centered_square_mask

    g = _standardised_generator()
    gen = torch.Generator().manual_seed(seed)
    x = 0.3 + 0.4 * torch.rand(1, 3, 16, 16, generator=gen, dtype=torch.float64)
    m = centered_square_mask(16)[None].double()
    hole = (m < 0.5).expand_as(x)

    def correction(image):
        with torch.no_grad():
            base = g.base_fill(image, m).clamp(1 / 512, 511 / 512)
            return (torch.logit(g(image, m)) - torch.logit(base))[hole]

    shifted = 0.5 + torch.tensor(offsets, dtype=torch.float64).view(1, 3, 1, 1) + a * (x - 0.5)
    np.testing.assert_allclose(correction(shifted), a * correction(x), atol=1e-3)
