"""The Numba kernels (pconv_ref.fast) against the NumPy reference (pconv_ref.conv/partial_conv).

Seeded random cross-tests over shapes, strides, paddings, kernel sizes, mask forms and
densities (all-hole, all-valid, a single-pixel hole included) in float32 and float64; a
float64 central-difference check of the fast backward; and the plain Python kernels
(``NUMBA_DISABLE_JIT=1``, in a subprocess) giving the same numbers as the compiled ones.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from cases import MASK_FORMS, random_mask, seed_of

from pconv_ref.conv import conv2d_backward, conv2d_forward
from pconv_ref import fast
from pconv_ref.fast import (
    conv2d_backward_fast,
    conv2d_forward_fast,
    partial_conv2d_backward_fast,
    partial_conv2d_forward_fast,
)
from pconv_ref.gradcheck import numerical_gradient, relative_error
from pconv_ref.partial_conv import partial_conv2d_backward, partial_conv2d_forward

# (N, C_in, H, W, C_out, k, stride, padding): odd sizes, k 1/3/5, strides 1/2, paddings 0/1/2
CASES = [
    (2, 3, 9, 7, 4, 3, 1, 1),
    (2, 5, 11, 10, 3, 5, 2, 2),
    (1, 4, 6, 6, 3, 1, 2, 0),
    (3, 4, 8, 9, 2, 3, 2, 0),
    (1, 6, 7, 5, 5, 3, 1, 2),
    (2, 2, 5, 8, 3, 5, 1, 0),
    (1, 3, 10, 12, 2, (3, 1), (2, 1), (1, 0)),  # rectangular kernel, stride and padding pairs
]
DENSITIES = ["all-hole", "all-valid", "one-hole-pixel", 0.2, 0.7]
TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-11)}


def _case_id(case):
    return "N{}C{}x{}x{}-F{}-k{}-s{}-p{}".format(*case).replace(" ", "")


def _kernel_hw(k):
    return k if isinstance(k, tuple) else (k, k)


def _make(case, dtype, rng, bias=True):
    n, c, h, w, f, k, _, _ = case
    kh, kw = _kernel_hw(k)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = (rng.standard_normal((f, c, kh, kw)) / np.sqrt(c * kh * kw)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype) if bias else None
    return x, wt, b


def _assert_close(mine, ref, dtype, name):
    if ref is None:
        assert mine is None, name
        return
    assert mine.shape == ref.shape, name
    assert mine.dtype == ref.dtype, (name, mine.dtype, ref.dtype)
    np.testing.assert_allclose(mine, ref, err_msg=name, **TOL[dtype])


# ---------------------------------------------------------------------- hand-sized case
def test_hand_case_one_hole():
    """3x3 ones kernel on a 3x3 image of ones with the centre a hole: 8 valid of 9."""
    x = np.ones((1, 1, 3, 3))
    m = np.ones((1, 1, 3, 3))
    m[0, 0, 1, 1] = 0
    out, new_mask, cache = partial_conv2d_forward_fast(x, m, np.ones((1, 1, 3, 3)), np.array([0.5]))
    # sum(x*M) = 8, scaled by sum_1/sum_M = 9/8 -> 9, plus the bias
    np.testing.assert_allclose(out, [[[[9.5]]]])
    np.testing.assert_array_equal(new_mask, [[[[1.0]]]])
    dx, dw, db = partial_conv2d_backward_fast(np.ones_like(out), cache)
    np.testing.assert_allclose(dx[0, 0], 9 / 8 * m[0, 0])  # no gradient into the hole
    np.testing.assert_allclose(dw[0, 0], 9 / 8 * m[0, 0])
    np.testing.assert_allclose(db, [1.0])


# ---------------------------------------------------------------------- cross-tests
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_conv_matches_reference(case, dtype):
    rng = np.random.default_rng(seed_of(case, dtype.__name__))
    for bias in (True, False):
        x, w, b = _make(case, dtype, rng, bias)
        stride, padding = case[6], case[7]
        out_r, cache_r = conv2d_forward(x, w, b, stride, padding)
        out_f, cache_f = conv2d_forward_fast(x, w, b, stride, padding)
        _assert_close(out_f, out_r, dtype, "out")
        dout = rng.standard_normal(out_r.shape).astype(dtype)
        for name, mine, ref in zip(
            ("dx", "dw", "db"), conv2d_backward_fast(dout, cache_f), conv2d_backward(dout, cache_r)
        ):
            _assert_close(mine, ref, dtype, name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("form", MASK_FORMS)
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_partial_conv_matches_reference(case, form, dtype):
    rng = np.random.default_rng(seed_of(case, form, dtype.__name__))
    stride, padding = case[6], case[7]
    for density in DENSITIES:
        x, w, b = _make(case, dtype, rng, bias=density != 0.2)
        m, groups = random_mask(form, density, x.shape, rng, 3, dtype)
        out_r, nm_r, cache_r = partial_conv2d_forward(x, m, w, b, stride, padding, groups)
        out_f, nm_f, cache_f = partial_conv2d_forward_fast(x, m, w, b, stride, padding, groups)
        where = f"density={density}"
        _assert_close(out_f, out_r, dtype, f"out {where}")
        np.testing.assert_array_equal(nm_f, nm_r, err_msg=f"new_mask {where}")
        assert nm_f.dtype == nm_r.dtype
        if density == "all-hole":
            assert not out_f.any() and not nm_f.any()  # 0, not b
        dout = rng.standard_normal(out_r.shape).astype(dtype)
        grads_r = partial_conv2d_backward(dout, cache_r)
        grads_f = partial_conv2d_backward_fast(dout, cache_f)
        for name, mine, ref in zip(("dx", "dw", "db"), grads_f, grads_r):
            _assert_close(mine, ref, dtype, f"{name} {where}")


@pytest.mark.parametrize("chunk", [1, 40, 300])
@pytest.mark.parametrize("case", CASES[:5], ids=_case_id)
def test_chunked_columns_match_reference(case, chunk, monkeypatch):
    """Big layers are unrolled a few output rows at a time; force tiny chunks here."""
    monkeypatch.setattr(fast, "CHUNK_ELEMENTS", chunk)
    rng = np.random.default_rng(seed_of(case, chunk))
    x, w, b = _make(case, np.float64, rng)
    m, groups = random_mask("groups", 0.6, x.shape, rng, 3, np.float64)
    stride, padding = case[6], case[7]
    out_r, nm_r, cache_r = partial_conv2d_forward(x, m, w, b, stride, padding, groups)
    out_f, nm_f, cache_f = partial_conv2d_forward_fast(x, m, w, b, stride, padding, groups)
    _assert_close(out_f, out_r, np.float64, "out")
    dout = rng.standard_normal(out_r.shape)
    grads_r = partial_conv2d_backward(dout, cache_r)
    grads_f = partial_conv2d_backward_fast(dout, cache_f)
    for name, mine, ref in zip(("dx", "dw", "db"), grads_f, grads_r):
        _assert_close(mine, ref, np.float64, name)


def test_fast_accepts_views_and_bool_masks():
    """Non-contiguous x, a bool mask and mixed dtypes behave like the reference."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 9, 8, 3)).astype(np.float32).transpose(0, 3, 1, 2)  # (2,3,9,8)
    w = rng.standard_normal((4, 3, 3, 3))  # float64 weights with float32 x
    b = rng.standard_normal(4)
    m = rng.random((2, 1, 9, 8)) < 0.6
    out_r, nm_r, cache_r = partial_conv2d_forward(x, m, w, b, 2, 1)
    out_f, nm_f, cache_f = partial_conv2d_forward_fast(x, m, w, b, 2, 1)
    _assert_close(out_f, out_r, np.float32, "out")
    dout = rng.standard_normal(out_r.shape).astype(np.float32)
    for name, mine, ref in zip(
        ("dx", "dw", "db"), partial_conv2d_backward_fast(dout, cache_f),
        partial_conv2d_backward(dout, cache_r),
    ):
        assert mine.dtype == ref.dtype, name
        np.testing.assert_allclose(mine, ref, rtol=2e-4, atol=2e-5, err_msg=name)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(mask=np.full((1, 1, 5, 5), 0.5)),  # not binary
        dict(mask=np.ones((1, 2, 5, 5))),  # neither 1 nor C_in channels
        dict(mask=np.ones((1, 2, 5, 5)), mask_groups=(1, 1)),  # groups do not sum to C_in
        dict(mask=np.ones((1, 1, 4, 5))),  # H differs
        dict(w=np.ones((2, 2, 3, 3))),  # C_in differs
        dict(stride=0),
        dict(padding=-1),
        dict(w=np.ones((2, 3, 7, 7))),  # kernel larger than the padded input
    ],
)
def test_invalid_arguments_raise_like_reference(kwargs):
    args = dict(x=np.ones((1, 3, 5, 5)), mask=np.ones((1, 1, 5, 5)), w=np.ones((2, 3, 3, 3)),
                b=None, stride=1, padding=0, mask_groups=None)
    args.update(kwargs)
    with pytest.raises(ValueError) as ref_err:
        partial_conv2d_forward(**args)
    with pytest.raises(ValueError) as fast_err:
        partial_conv2d_forward_fast(**args)
    assert str(fast_err.value) == str(ref_err.value)


# ---------------------------------------------------------------------- gradient check
@pytest.mark.parametrize("form", MASK_FORMS)
def test_partial_conv_fast_gradcheck(form):
    """Central differences of sum(out * dout) in float64 against the fast backward."""
    rng = np.random.default_rng(3)
    case = (2, 4, 6, 5, 3, 3, 2, 1)
    x, w, b = _make(case, np.float64, rng)
    m, groups = random_mask(form, 0.5, x.shape, rng, 3, np.float64)
    out, _, cache = partial_conv2d_forward_fast(x, m, w, b, 2, 1, groups)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = partial_conv2d_backward_fast(dout, cache)

    def f_x(v):
        return partial_conv2d_forward_fast(v, m, w, b, 2, 1, groups)[0]

    def f_w(v):
        return partial_conv2d_forward_fast(x, m, v, b, 2, 1, groups)[0]

    def f_b(v):
        return partial_conv2d_forward_fast(x, m, w, v, 2, 1, groups)[0]

    assert relative_error(dx, numerical_gradient(f_x, x.copy(), dout)) < 1e-7
    assert relative_error(dw, numerical_gradient(f_w, w.copy(), dout)) < 1e-7
    assert relative_error(db, numerical_gradient(f_b, b.copy(), dout)) < 1e-7


def test_conv_fast_gradcheck():
    rng = np.random.default_rng(4)
    x, w, b = _make((1, 3, 7, 6, 2, 3, 2, 2), np.float64, rng)
    out, cache = conv2d_forward_fast(x, w, b, 2, 2)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv2d_backward_fast(dout, cache)
    num_dx = numerical_gradient(lambda v: conv2d_forward_fast(v, w, b, 2, 2)[0], x.copy(), dout)
    num_dw = numerical_gradient(lambda v: conv2d_forward_fast(x, v, b, 2, 2)[0], w.copy(), dout)
    assert relative_error(dx, num_dx) < 1e-7
    assert relative_error(dw, num_dw) < 1e-7
    np.testing.assert_allclose(db, dout.sum(axis=(0, 2, 3)))


# ---------------------------------------------------------------------- NUMBA_DISABLE_JIT
_TINY = textwrap.dedent(
    """
    import sys
    import numpy as np
    from pconv_ref import fast

    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 6, 5))
    w = rng.standard_normal((2, 3, 3, 3))
    b = rng.standard_normal(2)
    m = (rng.random((2, 2, 6, 5)) < 0.5).astype(np.float64)
    out, nm, cache = fast.partial_conv2d_forward_fast(x, m, w, b, 2, 1, (1, 2))
    dout = rng.standard_normal(out.shape)
    dx, dw, db = fast.partial_conv2d_backward_fast(dout, cache)
    cout, ccache = fast.conv2d_forward_fast(x, w, b, 1, 2)
    cdx, cdw, cdb = fast.conv2d_backward_fast(np.ones_like(cout), ccache)
    jit = hasattr(fast.im2col, "py_func")
    np.savez(sys.argv[1], out=out, nm=nm, dx=dx, dw=dw, db=db, cout=cout, cdx=cdx, cdw=cdw,
             cdb=cdb, jit=jit)
    """
)


def test_plain_python_kernels_match_compiled(tmp_path):
    """The same script with NUMBA_DISABLE_JIT=1 (plain Python loops) and with Numba."""
    script = tmp_path / "tiny.py"
    script.write_text(_TINY)
    results = {}
    for flag in ("1", "0"):
        env = dict(os.environ, NUMBA_DISABLE_JIT=flag)
        path = tmp_path / f"jit_off_{flag}.npz"
        subprocess.run([sys.executable, str(script), str(path)], env=env, check=True, timeout=120)
        results[flag] = np.load(path)
    assert not results["1"]["jit"] and results["0"]["jit"]
    for key in ("out", "nm", "dx", "dw", "db", "cout", "cdx", "cdw", "cdb"):
        np.testing.assert_allclose(results["1"][key], results["0"][key], rtol=1e-12, atol=1e-13,
                                   err_msg=key)
