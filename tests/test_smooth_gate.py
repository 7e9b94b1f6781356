"""The smoothness gate (pconv_torch.smooth_gate): biharmonic on smooth shading, the network's
fill beside texture, the same weight at every size, and how its constant was chosen."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pconv_torch import smooth_gate
from pconv_torch.harmonic import biharmonic_fill
from pconv_torch.masks import centered_square_mask
from pconv_torch.procedural import curved_images


def _centre_mask(n, size):
    return centered_square_mask(size)[None].repeat(n, 1, 1, 1)


def _textured(n, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def test_smooth_shading_gets_the_biharmonic_fill():
    """On radial (curved) shading the energy is zero up to float rounding, so the gated fill is
    the biharmonic fill, whatever the network returned."""
    images = torch.from_numpy(curved_images(64, 4))
    masks = _centre_mask(4, 64)
    x = images * masks
    wrong = torch.full_like(images, 0.5)  # a network fill far from the truth
    out = smooth_gate.gated_fill(wrong, x, masks)
    want = biharmonic_fill(x, masks)
    hole = (1 - masks).bool().expand_as(out)
    assert smooth_gate.gate_weight(x, masks)[(1 - masks).bool()].max() < 1e-6
    torch.testing.assert_close(out[hole], want[hole], atol=1e-5, rtol=0)
    assert (out - images).abs()[hole].max() * 255 < 0.5  # within half an 8-bit level


def test_texture_keeps_the_network_fill():
    images, masks = _textured(3, 64), _centre_mask(3, 64)
    x = images * masks
    fill = torch.rand(3, 3, 64, 64)
    weight = smooth_gate.gate_weight(x, masks)
    assert weight[(1 - masks).bool()].min() > 0.99
    out = smooth_gate.gated_fill(fill, x, masks)
    hole = (1 - masks).bool().expand_as(out)
    assert (out - fill).abs()[hole].max() < 0.02


def test_a_hole_half_in_texture_leans_to_the_network_on_that_side():
    """Left half noise, right half a smooth gradient, a hole across the middle: the network's
    share is high at the hole's left end and low at its right end."""
    size = 64
    image = torch.linspace(0, 1, size).expand(1, 3, size, size).clone()
    image[..., : size // 2] = _textured(1, size)[..., : size // 2]
    mask = torch.ones(1, 1, size, size)
    mask[..., 24:40, 8:56] = 0
    w = smooth_gate.gate_weight(image * mask, mask)[0, 0, 32]
    assert w[9] > 0.9 and w[54] < 0.1
    assert w[9] > w[32] > w[54]


def test_no_known_neighbourhood_keeps_the_network_fill():
    """Holes everywhere but a thin grid: no whole 5x5 stencil is known, so the weight is 1."""
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., ::4, :] = 1
    energy = smooth_gate.texture_energy(_textured(1, 32), mask)
    assert torch.isinf(energy).all()
    assert (smooth_gate.gate_weight(_textured(1, 32) * mask, mask) == 1).all()


def test_the_weight_is_measured_at_the_analysis_side():
    """A picture twice the analysis side gets (nearly) the weight of its half-size copy,
    enlarged: the same content is gated the same way at 64 and 128 pixels."""
    half = F.avg_pool2d(_textured(2, 128, seed=3), 2) * 0.3 + torch.linspace(0, 0.7, 64)
    half[1, :, :, 32:] = torch.linspace(0.2, 0.6, 64)[:, None]  # one smooth half
    big = F.interpolate(half, scale_factor=2, mode="bilinear", align_corners=False)
    small_mask, big_mask = _centre_mask(2, 64), _centre_mask(2, 128)
    tau = 3e-3  # this texture's weight is then near 1 and the smooth half's near 0
    w_small = smooth_gate.gate_weight(half * small_mask, small_mask, tau)
    w_big = smooth_gate.gate_weight(big * big_mask, big_mask, tau)
    want = F.interpolate(w_small, size=128, mode="bilinear", align_corners=False)
    hole = (1 - big_mask).bool()
    assert (w_big - want).abs()[hole].mean() < 0.1
    # measured at 128 px instead, the enlarged picture's slopes and curvature look four to
    # sixteen times smaller, and the weight would drop far below the half-size copy's
    energy = smooth_gate.texture_energy(big * big_mask, big_mask)
    at_own_size = energy / (energy + tau)
    assert (at_own_size - want).abs()[hole].mean() > 0.3


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan")])
def test_tau_must_be_positive(tau):
    with pytest.raises(ValueError, match="tau must be positive"):
        smooth_gate.gate_weight(torch.rand(1, 3, 16, 16), torch.ones(1, 1, 16, 16), tau)


def test_calibration_reproduces_tau():
    """TAU is the best value of the calibration grid on the calibration photographs, which
    no network trained on; on the training photographs the network looks better and the
    grid's best trusts it more."""
    rows = smooth_gate.calibrate()
    best = max((r for r in rows if r["tau"] is not None), key=lambda r: r["mean"])
    assert best["tau"] == smooth_gate.TAU
    others = [r for r in rows if r["tau"] is None]  # the model alone and constant mixes
    assert len(others) == 1 + len(smooth_gate.CONSTANT_SHARES)
    assert all(best["mean"] > r["mean"] for r in others)
    on_training = smooth_gate.calibrate(split="train")
    best_training = max((r for r in on_training if r["tau"] is not None), key=lambda r: r["mean"])
    assert best_training["tau"] < smooth_gate.TAU
    assert {r["n"] for r in rows} == {135} and {r["n"] for r in on_training} == {160}


def test_fill_calibration_scores_each_setting_and_converges_to_the_exact_solve():
    """calibrate_fill scores every number of fine steps on the calibration photographs' smooth
    crops; given enough steps the fill is scikit-image's exact solve on them."""
    rows = smooth_gate.calibrate_fill(steps=(16, 600), sizes=(64,), limit=8)
    assert [r["steps"] for r in rows] == [16, 600, None]
    assert all(set(r) == {"steps", "64 center", "64 rect", "mean"} for r in rows)
    assert all(np.isfinite(v) for r in rows for k, v in r.items() if k != "steps")
    converged, exact = rows[1], rows[2]
    for key in ("64 center", "64 rect"):
        assert converged[key] == pytest.approx(exact[key], abs=0.02)
    assert abs(rows[0]["mean"] - exact["mean"]) > 0.1  # 16 steps stop short of it


def test_fill_calibration_scores_only_the_families_asked_for():
    rows = smooth_gate.calibrate_fill(steps=(16,), sizes=(64,), limit=4, families=("center",),
                                      split="test")
    assert [set(r) for r in rows] == [{"steps", "64 center", "mean"}] * 2
    assert all(r["mean"] == r["64 center"] for r in rows)


def test_fill_calibration_command_prints_the_table_and_the_best_steps(monkeypatch, capsys):
    real = smooth_gate.calibrate_fill
    monkeypatch.setattr(smooth_gate, "calibrate_fill",
                        lambda split: real(steps=(4, 16), sizes=(64,), limit=6, split=split))
    assert smooth_gate.main(["--fill"]) == 0
    out = capsys.readouterr().out
    assert "| fine steps | 64 center | 64 rect | mean |" in out
    assert "| 4 |" in out and "| 16 |" in out and "| scikit-image (exact) |" in out
    assert "best fine steps: " in out and "(CG_FINE = 16)" in out
    assert "on the calibration photographs' smooth crops" in out


def test_tau_command_names_its_photographs_and_reports_without_choosing_on_held_out(
        monkeypatch, capsys):
    """The tau search's header names the photographs it scored, and on the held-out ones the
    best value is reported, not chosen."""
    real = smooth_gate.calibrate
    monkeypatch.setattr(smooth_gate, "calibrate",
                        lambda model, split: real(model, taus=(smooth_gate.TAU,), shares=(),
                                                  split=split))
    assert smooth_gate.main(["--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "hole PSNR (dB) on the 138 crops of the held-out photographs (64x64)" in out
    assert "best tau here (reported only" in out and "| gate, tau = 0.03 |" in out
    assert smooth_gate.main(["--split", "train"]) == 0
    assert "on the 160 random crops of the training photographs" in capsys.readouterr().out


def test_fill_command_on_the_held_out_photographs_reports_without_choosing(monkeypatch, capsys):
    """``--split test`` scores the held-out photographs' smooth crops and says that nothing is
    chosen on them."""
    real = smooth_gate.calibrate_fill
    monkeypatch.setattr(smooth_gate, "calibrate_fill",
                        lambda split: real(steps=(16,), sizes=(64,), limit=4, split=split))
    assert smooth_gate.main(["--fill", "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "on the held-out photographs' smooth crops (soft_crops(split='test'))" in out
    assert "best fine steps here (reported only" in out


def test_inpaint_gates_by_default_and_not_with_gate_false():
    """On a smooth curved photograph-sized picture the default (gated) fill is far closer to
    the truth than the network's own, and ``gate=False`` returns the network's own."""
    from pconv_torch import inpaint

    truth = curved_images(96, 1)[0].transpose(1, 2, 0)
    image = (truth * 255).round().astype(np.uint8)
    hole = np.zeros((96, 96), bool)
    hole[30:60, 36:66] = True
    err = {}
    for gate in (True, False):
        out = inpaint(image, hole, gate=gate, blend=None)
        err[gate] = np.abs(out.astype(float) - image)[hole].mean()
    assert err[True] < 0.6 and err[True] < err[False] / 3
    assert np.array_equal(inpaint(image, hole, blend=None), inpaint(image, hole, gate=True,
                                                                     blend=None))


def test_numpy_reference_uses_the_same_constants():
    from pconv_ref import smooth_gate as ref
    from pconv_torch.content import LUMA

    assert (ref.TAU, ref.RADIUS, ref.ANALYSIS_SIDE) == (
        smooth_gate.TAU, smooth_gate.RADIUS, smooth_gate.ANALYSIS_SIDE)
    assert ref.LUMA == LUMA


@pytest.mark.parametrize("shape", [(64, 64), (96, 80), (40, 52), (128, 128), (150, 97)])
def test_numpy_reference_computes_the_same_gate(shape, torch_device):
    """pconv_ref.smooth_gate (float64) gives pconv_torch.smooth_gate's weights and gated fill
    (float32, on the CPU and on CUDA) on held-out photographs with rectangular holes, at the
    analysis side, below it and reduced to it (whole and fractional factors); the second
    image's mask leaves no known 5x5 neighbourhood, so its weight is 1 everywhere."""
    from pconv_ref import smooth_gate as ref
    from pconv_torch.evaluate import default_test_set

    images, _ = default_test_set(None, "center", size=128)
    images = F.interpolate(images[[3, 40, 77]], size=shape, mode="bilinear", align_corners=False)
    h, w = shape
    masks = torch.ones(3, 1, h, w)
    masks[0, :, h // 5:h // 2, w // 4:3 * w // 4] = 0
    masks[1] = 0
    masks[1, :, ::3, ::3] = 1  # single known pixels: no known 5x5 neighbourhood
    masks[2, :, h // 3:, :w // 3] = 0  # a hole at the image's border
    x = images.clamp(0, 1) * masks
    fill = torch.rand(images.shape, generator=torch.Generator().manual_seed(1))
    want_w = ref.gate_weight(x.double().numpy(), masks.double().numpy())
    on = {"device": torch_device}
    got_w = smooth_gate.gate_weight(x.to(**on), masks.to(**on)).cpu().numpy()
    np.testing.assert_allclose(got_w, want_w, rtol=0, atol=2e-4)
    assert np.allclose(want_w[1], 1.0) and want_w[[0, 2]].min() < 0.5  # both branches taken
    want = ref.gated_fill(fill.double().numpy(), x.double().numpy(), masks.double().numpy())
    got = smooth_gate.gated_fill(fill.to(**on), x.to(**on), masks.to(**on)).cpu().numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-4)
