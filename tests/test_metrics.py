"""The measures of a fill beyond PSNR, SSIM and L1: detail, seam and colour bias
(pconv_torch.metrics)."""

import numpy as np
import pytest
import torch

from pconv_torch import metrics as E


def _hole_mask(n=2, size=16):
    m = torch.ones(n, 1, size, size)
    m[..., 4:12, 4:12] = 0
    return m


def test_detail_seam_and_colour_bias_by_hand():
    m = _hole_mask()
    truth = torch.rand(2, 3, 16, 16)
    # a perfect fill: no seam, no bias, the truth's detail
    assert np.allclose(E.seam(truth, truth, m), 0)
    assert np.allclose(E.colour_bias(truth, truth, m), 0)
    flat = truth * m + (1 - m) * 0.5
    assert np.allclose(E.detail(flat, m), 0)  # a flat fill has no detail inside the hole
    assert (E.detail(truth, m) > 0.2).all()
    # a fill 0.1 too red everywhere: bias (+0.1, 0, 0)
    red = truth.clone()
    red[:, 0] += 0.1 * (1 - m[:, 0])
    np.testing.assert_allclose(E.colour_bias(red, truth, m), [[0.1, 0, 0]] * 2, atol=1e-6)
    # a smooth image whose fill is a constant offset: a seam of exactly that step
    smooth = torch.full((2, 3, 16, 16), 0.4)
    shifted = smooth + 0.2 * (1 - m)
    np.testing.assert_allclose(E.seam(shifted, smooth, m), 0.2, atol=1e-6)


def test_measures_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="mask"):
        E.detail(torch.rand(2, 3, 8, 8), torch.ones(2, 1, 4, 4))
