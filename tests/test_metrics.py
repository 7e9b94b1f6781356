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


def _blocky_scene(seed=0, size=64):
    """A smooth ramp with fine texture (the truth), the ramp with 8x8 squares of random levels
    as strong as the texture (a blocky fill, squares enlarged from a coarse grid), and the bare
    ramp (a smooth fill); the centred hole."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.3, 0.7, size)[None, None, :] * np.ones((3, size, 1))
    truth = ramp + rng.normal(0, 0.02, (3, size, size))
    blocky = ramp + np.kron(rng.normal(0, 0.02, (3, size // 8, size // 8)), np.ones((8, 8)))
    mask = np.ones((1, size, size))
    mask[:, size // 4:3 * size // 4, size // 4:3 * size // 4] = 0
    return truth, blocky, ramp, mask


def test_period_energy_scores_blocks_high_a_smooth_fill_zero_and_needs_long_runs():
    truth, blocky, smooth, mask = _blocky_scene()
    e_truth = E.period_energy(truth, mask)
    e_blocky, e_smooth = E.period_energy(blocky, mask), E.period_energy(smooth, mask)
    assert e_blocky > 10 * e_truth > 0           # 8 px squares on one grid: steps every 8 px
    assert e_smooth < 1e-20                      # a ramp's steps are constant: nothing left
    # a staircase (a step every 16 px) scores about the same wherever its grid starts, and
    # steps at random places (the truth's texture) far less than steps on one grid
    big = np.ones((1, 128, 128))
    big[:, 32:96, 32:96] = 0  # four steps in every run, wherever the grid starts
    stairs = [E.period_energy(((np.arange(128) + shift) // 16 * 0.1)[None, None, :]
                              * np.ones((3, 128, 1)), big) for shift in (3, 7, 11)]
    assert max(stairs) < 1.2 * min(stairs) and min(stairs) > 100 * e_truth
    # a batch gives one value per image; a hole narrower than the longest period gives nan
    both = E.period_energy(np.stack([truth, blocky]), np.stack([mask, mask]))
    assert both.shape == (2,) and both[1] == pytest.approx(e_blocky)
    small = np.ones((1, 64, 64))
    small[:, 30:36, 30:36] = 0
    assert np.isnan(E.period_energy(truth, small))
