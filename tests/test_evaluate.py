"""Evaluation: hand-checkable metric values, the classical baselines, the comparison table."""
import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from pconv_torch import evaluate as ev
from pconv_torch.masks import centered_square_mask


def gradient_image(h=64, w=64):
    """(3, H, W) smooth image: a different linear ramp per channel, in [0.1, 0.9]."""
    y = torch.linspace(0, 1, h)[:, None].expand(h, w)
    x = torch.linspace(0, 1, w)[None, :].expand(h, w)
    return torch.stack([0.1 + 0.8 * x, 0.1 + 0.8 * y, 0.1 + 0.4 * (x + y)]).float()


# --------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------
def test_psnr_identical_is_inf_and_cap_applies():
    x = torch.rand(3, 16, 16)
    assert ev.psnr(x, x) == math.inf
    assert ev.psnr(x, x, max_db=100.0) == 100.0
    m = centered_square_mask(16)
    assert ev.psnr(x, x, m) == math.inf


def test_psnr_constant_offset_is_20db():
    t = torch.full((2, 3, 8, 8), 0.3)
    v = ev.psnr(t + 0.1, t)  # MSE = 0.01 -> 10 log10(1/0.01) = 20 dB
    assert v.shape == (2,)
    np.testing.assert_allclose(v, 20.0, atol=1e-5)
    # single image -> float; NumPy input accepted; offset 0.01 -> 40 dB
    assert ev.psnr(t[0].numpy() + 0.01, t[0].numpy()) == pytest.approx(40.0, abs=1e-4)


def test_hole_metrics_ignore_valid_region():
    t = torch.full((3, 8, 8), 0.5)
    m = torch.ones(1, 8, 8)
    m[:, 2:6, 2:6] = 0  # 16 hole pixels
    out = t.clone()
    out[:, 2:6, 2:6] += 0.1  # error 0.1 in the hole
    out_bad_valid = out.clone()
    out_bad_valid[:, :2] = 1.0  # large error in the valid region only
    for o in (out, out_bad_valid):
        assert ev.psnr(o, t, m) == pytest.approx(20.0, abs=1e-4)
        assert ev.l1(o, t, m) == pytest.approx(0.1, abs=1e-6)
    # whole image: 16 of 64 pixels off by 0.1
    assert ev.l1(out, t) == pytest.approx(0.1 * 16 / 64, abs=1e-6)
    assert ev.psnr(out, t) == pytest.approx(10 * math.log10(64 / (16 * 0.01)), abs=1e-4)
    assert ev.l1(out_bad_valid, t) > ev.l1(out, t)


def test_hole_metrics_without_hole_are_nan():
    t = torch.rand(3, 8, 8)
    assert math.isnan(ev.psnr(t + 0.1, t, torch.ones(1, 8, 8)))
    assert math.isnan(ev.l1(t + 0.1, t, torch.ones(1, 8, 8)))


def test_ssim_matches_skimage():
    rng = np.random.default_rng(0)
    t = torch.from_numpy(rng.random((2, 3, 32, 32)).astype(np.float32))
    o = (t + 0.1 * torch.from_numpy(rng.standard_normal((2, 3, 32, 32)).astype(np.float32))).clamp(0, 1)
    v = ev.ssim(o, t)
    assert v.shape == (2,)
    for i in range(2):
        ref = structural_similarity(o[i].double().numpy(), t[i].double().numpy(), channel_axis=0,
                                    data_range=1.0)
        assert v[i] == pytest.approx(ref, abs=1e-12)
    assert ev.ssim(t[0], t[0]) == pytest.approx(1.0)
    assert (v < 0.99).all()


def test_metrics_reject_mismatched_shapes():
    with pytest.raises(ValueError):
        ev.psnr(torch.zeros(3, 8, 8), torch.zeros(3, 8, 9))
    with pytest.raises(ValueError):
        ev.l1(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8), torch.ones(1, 4, 4))


# --------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------
MEAN = (0.5, 0.5, 0.5)


@pytest.fixture(scope="module")
def baselines():
    return ev.make_baselines(mean=MEAN)


@pytest.mark.parametrize("name", list(ev.BASELINES))
def test_baseline_keeps_valid_fills_hole_beats_garbage(baselines, name):
    img = gradient_image()
    m = centered_square_mask(64, side=16)
    inp = img * m  # holes zeroed, as evaluate() passes them
    out = baselines[name](inp, m)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == img.shape
    valid = m.expand_as(img) > 0.5
    assert torch.equal(out[valid], inp[valid])  # known pixels exactly unchanged
    hole = out[~valid]
    assert torch.isfinite(hole).all() and hole.min() >= 0 and hole.max() <= 1
    garbage = torch.rand(img.shape, generator=torch.Generator().manual_seed(0))
    err = ev.l1(out, img, m)
    assert err < ev.l1(garbage, img, m)
    if name != "mean fill":  # the three interpolators continue a smooth ramp well
        assert err < 0.03, err
    # the content under the hole is never read
    noisy = torch.where(valid, img, garbage)
    assert torch.equal(baselines[name](noisy, m), out)


def test_opencv_mask_convention_fills_the_hole():
    img = torch.full((3, 32, 32), 0.8)
    m = centered_square_mask(32)
    for name in ("OpenCV Telea", "OpenCV Navier-Stokes"):
        out = ev.BASELINES[name](img * m, m)
        # an inverted mask would leave the zeroed hole at 0
        assert ev.l1(out, img, m) < 1 / 255 + 1e-6, name


def test_mean_fill_uses_given_mean_and_default_mean():
    m = centered_square_mask(16)
    out = ev.mean_fill_method((0.1, 0.2, 0.3))(torch.zeros(3, 16, 16), m)
    np.testing.assert_allclose(out[:, 8, 8].numpy(), [0.1, 0.2, 0.3], atol=1e-7)
    mean = ev.BASELINES["mean fill"].mean  # embedded training photographs' mean
    assert mean.shape == (3,) and ((mean > 0.2) & (mean < 0.8)).all()


# --------------------------------------------------------------------------------------
# Model wrapper
# --------------------------------------------------------------------------------------
class SpyGenerator(torch.nn.Module):
    """Returns 0.25 everywhere and records what it was called with."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
        self.register_buffer("fill", torch.tensor([0.1, 0.2, 0.3]))
        self.calls = []

    def forward(self, image, mask):
        self.calls.append((tuple(image.shape), tuple(mask.shape), self.training,
                           torch.is_grad_enabled()))
        return torch.full_like(image, 0.25) * self.w


def test_model_method_pads_composites_and_uses_eval_no_grad():
    g = SpyGenerator().train()
    run = ev.model_method(g)
    img = torch.rand(3, 50, 70)
    m = torch.ones(1, 50, 70)
    m[:, 10:20, 60:70] = 0  # touches the right border
    out = run(img * m, m)
    assert out.shape == (3, 50, 70)
    assert g.calls[-1] == ((1, 3, 64, 80), (1, 1, 64, 80), False, False)
    valid = m.expand_as(img) > 0.5
    assert torch.equal(out[valid], img[valid])
    assert torch.allclose(out[~valid], torch.tensor(0.25))


def test_pad_to_multiple_replicates_the_mask():
    x, m = torch.rand(1, 3, 20, 20), torch.ones(1, 1, 20, 20)
    m[..., -1] = 0
    xp, mp, (h, w) = ev.pad_to_multiple(x, m, 16)
    assert xp.shape == (1, 3, 32, 32) and (h, w) == (20, 20)
    assert (mp[0, 0, :20, 20:] == 0).all()  # the hole at the border extends into the padding
    assert torch.equal(xp[..., :20, :20], x)


# --------------------------------------------------------------------------------------
# evaluate / format_results / evaluate_default
# --------------------------------------------------------------------------------------
COLS = ("method", "n", "psnr", "psnr_hole", "ssim", "l1", "l1_hole", "ms_per_image", "timing")


def test_evaluate_rows_hides_truth_and_caps_psnr():
    images = torch.stack([gradient_image(32, 32), gradient_image(32, 32).flip(-1)])
    masks = torch.stack([centered_square_mask(32, 8), centered_square_mask(32, 12)])
    seen = []

    def spy(image, mask):
        seen.append(image.clone())
        return image

    methods = {"spy": spy, "OpenCV Telea": ev.BASELINES["OpenCV Telea"]}
    rows = ev.evaluate(methods, images, masks)
    assert [r["method"] for r in rows] == ["spy", "OpenCV Telea"]
    for r in rows:
        for c in COLS:
            assert c in r
        for c in ("psnr", "psnr_hole", "ssim", "l1", "l1_hole", "ms_per_image"):
            assert math.isfinite(r[c]), (r["method"], c)
        assert r["n"] == 2 and r["per_image"]["psnr"].shape == (2,)
    for x in seen:  # the method only ever sees zeros under the hole
        assert (x[:, 12:20, 12:20] == 0).all()
    assert rows[1]["psnr_hole"] > rows[0]["psnr_hole"]
    # truth that is zero in the hole: the spy is then exact; PSNR capped, not inf
    rows = ev.evaluate({"spy": spy}, images * masks, masks)
    assert rows[0]["psnr"] == ev.PSNR_CAP and rows[0]["psnr_hole"] == ev.PSNR_CAP
    assert rows[0]["l1"] == 0 and rows[0]["ssim"] == pytest.approx(1.0)


def test_evaluate_rejects_bad_shapes():
    with pytest.raises(ValueError):
        ev.evaluate({"m": ev.biharmonic}, torch.rand(2, 3, 8, 8), torch.ones(3, 1, 8, 8))
    with pytest.raises(ValueError, match="returned"):
        ev.evaluate({"m": lambda i, m: i[:, :4]}, torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 8))


def test_format_results_table():
    rows = ev.evaluate(ev.make_baselines(mean=MEAN), gradient_image(32, 32)[None],
                       centered_square_mask(32)[None])
    table = ev.format_results(rows, title="tiny")
    lines = table.splitlines()
    assert lines[0] == "**tiny**"
    header = lines[2]
    for h in ("method", "PSNR (dB)", "hole PSNR (dB)", "SSIM", "L1", "hole L1", "ms / image"):
        assert h in header
    for name in ev.BASELINES:
        assert sum(line.startswith(f"| {name} ") for line in lines) == 1
    assert "wall clock" in table


def test_default_set_and_evaluation_are_deterministic():
    a_img, a_m = ev.default_test_set(n=4, seed=7)
    b_img, b_m = ev.default_test_set(n=4, seed=7)
    assert a_img.shape == (4, 3, 128, 128) and a_m.shape == (4, 1, 128, 128)
    assert torch.equal(a_img, b_img) and torch.equal(a_m, b_m)
    assert not torch.equal(ev.default_test_set(n=4, seed=8)[1], a_m)
    assert ((a_m == 0).flatten(1).any(1)).all()  # every mask has a hole

    g = SpyGenerator()
    runs = [ev.evaluate_default(g, n=3, seed=7, baselines=["mean fill", "OpenCV Telea"])
            for _ in range(2)]
    (rows1, table), (rows2, _) = runs
    assert [r["method"] for r in rows1] == ["PConv GAN", "mean fill", "OpenCV Telea"]
    for r1, r2 in zip(rows1, rows2):
        for c in ("psnr", "psnr_hole", "ssim", "l1", "l1_hole"):
            assert r1[c] == r2[c]
    assert "PConv GAN" in table and "'rect'" in table
    # mean fill uses the generator's own fill buffer
    g.fill.fill_(0.25)
    rows3, _ = ev.evaluate_default(g, n=3, seed=7, baselines=["mean fill"])
    assert rows3[0]["psnr_hole"] == pytest.approx(rows3[1]["psnr_hole"], abs=1e-4)
    with pytest.raises(ValueError, match="unknown baseline"):
        ev.evaluate_default(n=2, baselines=["nope"])


def test_checkerboard_sees_the_two_pixel_pattern_inside_the_hole_only():
    """A +-1 checkerboard of amplitude a gives |a + a + a + a| / 4 = a at every pixel but the
    last row and column; a flat image gives 0; the pattern outside the hole is not counted."""
    from pconv_torch import evaluate as ev

    a = 0.1
    yy, xx = np.mgrid[:16, :16]
    board = 0.5 + a * np.where((yy + xx) % 2 == 0, 1.0, -1.0)
    image = np.repeat(board[None], 3, 0)[None]            # (1, 3, 16, 16)
    mask = np.ones((1, 1, 16, 16))
    mask[..., 4:12, 4:12] = 0                              # hole away from the last row/column
    assert ev.checkerboard(image, mask)[0] == pytest.approx(a)
    assert ev.checkerboard(np.full_like(image, 0.5), mask)[0] == 0
    outside_only = np.full_like(image, 0.5)
    outside_only[..., :4, :] = image[..., :4, :]
    assert ev.checkerboard(outside_only, mask)[0] == 0
    with pytest.raises(ValueError, match="needs masks"):
        ev.checkerboard(image, None)


def test_paired_difference_summarises_per_image_differences():
    from pconv_torch import evaluate as ev

    d = ev.paired_difference([3.0, 2.0, 5.0, 1.0], [1.0, 2.0, 4.0, 2.0])
    assert d.differences.tolist() == [2.0, 0.0, 1.0, -1.0]
    assert d.n == 4 and d.mean == pytest.approx(0.5)
    assert d.se == pytest.approx(np.std([2, 0, 1, -1], ddof=1) / 2)
    assert d.wins() == 2 and d.wins(higher_is_better=False) == 1
    for bad in (([1.0], [2.0]), ([1.0, 2.0], [1.0]), ([1.0, np.nan], [1.0, 2.0])):
        with pytest.raises(ValueError):
            ev.paired_difference(*bad)


def test_paired_rows_pairs_two_methods_of_the_evaluation_and_gives_a_verdict():
    images, masks = torch.rand(6, 3, 16, 16), centered_square_mask(16)[None].repeat(6, 1, 1, 1)
    baselines = ev.make_baselines(mean=MEAN)
    rows = ev.evaluate({"harmonic": baselines["harmonic fill"], "mean": baselines["mean fill"]},
                       images, masks)
    d = ev.paired_rows(rows, "l1_hole", "harmonic", "mean")
    by = {r["method"]: r["per_image"]["l1_hole"] for r in rows}
    np.testing.assert_array_equal(d.differences, by["harmonic"] - by["mean"])
    assert d.two_se == 2 * d.se
    assert d.verdict(higher_is_better=False) in ("holds here", "opposite here",
                                                 "not seen at this scale")
    with pytest.raises(ValueError, match="no row for method 'nope'"):
        ev.paired_rows(rows, "l1_hole", "nope", "mean")


@pytest.mark.parametrize("differences, higher, expect", [
    ([1.0, 1.1, 0.9, 1.0], True, "holds here"),
    ([1.0, 1.1, 0.9, 1.0], False, "opposite here"),
    ([1.0, -1.0, 0.5, -0.5], True, "not seen at this scale"),
])
def test_a_verdict_needs_two_standard_errors(differences, higher, expect):
    assert ev.PairedDifference(np.array(differences)).verdict(higher) == expect


def test_mean_and_two_se():
    from pconv_torch.metrics import mean_and_two_se

    mean, two_se = mean_and_two_se([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and two_se == pytest.approx(2 * np.std([1, 2, 3, 4], ddof=1) / 2)
