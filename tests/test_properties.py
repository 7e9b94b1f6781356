"""Property tests (hypothesis): invariants of partial convolution, for the reference and torch."""
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
