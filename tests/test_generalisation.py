"""Training data that generalises and the measurements around it: dead leaves, colour jitter,
the embedded photographs' split, held-out scores written while training, the measures of a
fill (detail, seam, colour bias), the results tables. No network, CPU only, a few seconds."""

import numpy as np
import pytest
import torch

from pconv_torch import data as D
from pconv_torch import evaluate as E
from pconv_torch import monitor, procedural, results, training


# ---- dead leaves ---------------------------------------------------------------------------
def test_dead_leaves_is_a_deterministic_image_in_range():
    a = procedural.dead_leaves(48, np.random.default_rng(3))
    b = procedural.dead_leaves(48, np.random.default_rng(3))
    c = procedural.dead_leaves(48, np.random.default_rng(4))
    assert a.shape == (48, 48, 3) and a.dtype == np.float32
    assert 0 <= a.min() and a.max() <= 1
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dead_leaves_uses_the_palette_colours():
    palette = np.array([[1.0, 0.0, 0.0]], np.float32)  # every disc red (shading only scales it)
    img = procedural.dead_leaves(32, np.random.default_rng(0), palette)
    assert img[..., 0].mean() > 0.6 and img[..., 1:].mean() < 0.05


def test_dead_leaves_radii_follow_the_power_law():
    r = procedural._radii(np.random.default_rng(0), 200_000, 2.0, 64.0)
    assert r.min() >= 2.0 and r.max() <= 64.0
    # p(r) ~ r^-3 on [2, 64]: P(r < 4) = (2^-2 - 4^-2) / (2^-2 - 64^-2)
    expect = (2.0 ** -2 - 4.0 ** -2) / (2.0 ** -2 - 64.0 ** -2)
    assert np.mean(r < 4) == pytest.approx(expect, abs=0.01)


def test_photo_palette_samples_pixels_of_the_images():
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((4, 4, 3), np.uint8)
    blue[..., 2] = 255
    pal = procedural.photo_palette([red, blue], n=1000, seed=1)
    assert pal.shape == (1000, 3)
    is_red = (pal == [1, 0, 0]).all(1)
    is_blue = (pal == [0, 0, 1]).all(1)
    assert (is_red | is_blue).all() and 0.4 < is_red.mean() < 0.6


def test_sanity_images_are_flat_gradient_and_edge():
    s = procedural.sanity_images(32, n=3, seed=0)
    assert set(s) == set(procedural.SANITY_CASES)
    flat, grad, edge = s["flat"], s["gradient"], s["edge"]
    assert flat.shape == (3, 3, 32, 32)
    assert np.ptp(flat.reshape(3, 3, -1), axis=2).max() == 0  # one colour per image
    # a linear ramp: second differences vanish away from the clipped ends
    d2 = np.diff(grad[..., 8:24, 8:24], n=2, axis=-1)
    assert np.abs(d2).max() < 1e-5
    for img in edge:  # exactly two colours, on both sides of the centre
        assert len(np.unique(img.reshape(3, -1), axis=1)[0]) <= 2


# ---- the embedded source ---------------------------------------------------------------------
def test_shipped_photographs_are_split_by_photograph_and_all_present():
    train_found, missing = D.embedded_photographs("train")
    test_found, missing_t = D.embedded_photographs("test")
    assert not missing and not missing_t
    assert len(train_found) == 13 and len(test_found) == 6
    assert not {n for n, _ in train_found} & {n for n, _ in test_found}
    assert len(D.EmbeddedPhotos("test", size=32)) == 138


def test_procedural_share_and_jitter_are_deterministic():
    ds = D.EmbeddedPhotos("train", size=32, length=64, seed=5, procedural=0.5, jitter=0.2)
    again = D.EmbeddedPhotos("train", size=32, length=64, seed=5, procedural=0.5, jitter=0.2)
    for i in (0, 7, 63):
        assert torch.equal(ds[i], again[i])
        assert ds[i].shape == (3, 32, 32) and 0 <= ds[i].min() and ds[i].max() <= 1
    plain = D.EmbeddedPhotos("train", size=32, length=64, seed=5)
    differs = sum(not torch.equal(ds[i], plain[i]) for i in range(64))
    assert differs == 64  # half replaced by dead leaves, the rest colour-jittered
    with pytest.raises(ValueError, match="procedural"):
        D.EmbeddedPhotos("train", procedural=1.5)


def test_uniform_leaves_widen_the_colours_of_the_dead_leaves():
    """With ``uniform_leaves`` the discs take colours from the whole RGB cube: saturated
    colours, rare in the photographs' palettes, become common. The share 0 keeps the old stream."""
    def saturated_share(ds):
        x = torch.stack([ds[i] for i in range(24)])
        return float(((x.amax(1) - x.amin(1)) > 0.6).float().mean())

    kw = dict(split="train", size=32, length=24, seed=2, procedural=1.0)
    palettes, uniform = D.EmbeddedPhotos(**kw), D.EmbeddedPhotos(**kw, uniform_leaves=1.0)
    assert saturated_share(uniform) > 0.15 and saturated_share(palettes) < 0.08
    # share 0 draws nothing extra: item i is the dead-leaves image of the old stream
    for i in (0, 5, 23):
        rng = np.random.default_rng([2, 0, i])
        rng.random()  # the procedural draw
        palette = palettes._palettes()[int(rng.integers(len(palettes.paths)))]
        old = torch.from_numpy(procedural.dead_leaves(32, rng, palette).transpose(2, 0, 1).copy())
        assert torch.equal(palettes[i], old)
    with pytest.raises(ValueError, match="uniform_leaves"):
        D.EmbeddedPhotos("train", uniform_leaves=-0.1)


def test_smooth_fields_are_smooth_enough_for_the_harmonic_fill():
    """A smooth field is what the harmonic fill nearly solves (a dead-leaves image is not), in
    range and a pure function of the generator's state."""
    from pconv_torch.harmonic import harmonic_fill
    from pconv_torch.masks import centered_square_mask

    a = procedural.smooth_field(48, np.random.default_rng(3))
    assert a.shape == (48, 48, 3) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    np.testing.assert_array_equal(a, procedural.smooth_field(48, np.random.default_rng(3)))
    hole = centered_square_mask(48)[None]

    def hole_error(make):
        x = torch.from_numpy(np.stack([make(48, np.random.default_rng(k)) for k in range(8)]))
        x = x.permute(0, 3, 1, 2).contiguous()
        filled = harmonic_fill(x, hole.expand(8, -1, -1, -1))
        return float(((filled - x) ** 2 * (1 - hole)).sum() / ((1 - hole).sum() * 24))

    smooth, leaves = hole_error(procedural.smooth_field), hole_error(procedural.dead_leaves)
    assert smooth < 0.002 and leaves > 5 * smooth


def test_smooth_fields_replace_a_share_of_the_dead_leaves():
    kw = dict(split="train", size=32, length=24, seed=2, procedural=1.0)
    leaves, smooth = D.EmbeddedPhotos(**kw), D.EmbeddedPhotos(**kw, smooth_fields=1.0)
    for i in (0, 5, 23):  # share 1: item i is the smooth field of its generator's state
        rng = np.random.default_rng([2, 0, i])
        rng.random()  # the procedural draw
        palette = leaves._palettes()[int(rng.integers(len(leaves.paths)))]
        rng.random()  # the smooth-field draw
        expect = torch.from_numpy(procedural.smooth_field(32, rng, palette).transpose(2, 0, 1).copy())
        assert torch.equal(smooth[i], expect) and not torch.equal(leaves[i], expect)
    with pytest.raises(ValueError, match="smooth_fields"):
        D.EmbeddedPhotos("train", smooth_fields=1.5)
    with pytest.raises(ValueError, match="smooth_fields"):
        _tiny(smooth_fields=-0.5)


def test_colour_jitter_keeps_range_and_changes_colour():
    x = torch.rand(3, 16, 16)
    y = D.color_jitter(x, np.random.default_rng(0), 0.3)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1 and not torch.equal(x, y)
    assert torch.allclose(D.color_jitter(x, np.random.default_rng(0), 0.0), x, atol=1e-6)


# ---- measures of a fill ----------------------------------------------------------------------
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


# ---- held-out scores during training ---------------------------------------------------------
def _tiny(**kw):
    base = dict(image_size=32, width=0.125, d_width=0.25, batch_size=2, phase1_iters=4,
                phase2_iters=1, phase3_iters=2, lr_g=1e-3, lr_d=1e-3, log_every=1,
                sample_every=1000, checkpoint_every=1000, n_samples=2, tensorboard=False,
                eval_every=2, procedural=0.5, jitter=0.1)
    base.update(kw)
    return training.load_config("ci", **base)


def test_training_writes_heldout_and_train_scores_with_reference_lines(tmp_path):
    training.train(_tiny(), out_dir=tmp_path, progress=False)
    rows = monitor.read_eval_log(tmp_path)
    refs = {r["method"] for r in rows if r["step"] == 0 and r["method"] != "generator"}
    assert refs == set(monitor.REFERENCE_METHODS)
    gen = [r for r in rows if r["method"] == "generator"]
    # step 0, every 2 steps, and each phase end (4, 5, 7)
    assert sorted({r["step"] for r in gen}) == [0, 2, 4, 5, 6, 7]
    for r in gen:
        assert {r["split"] for r in gen} == {"heldout", "train"}
        assert np.isfinite(r["psnr_hole"]) and 0 < r["ssim"] <= 1 and r["l1_hole"] > 0
    # each (step, split, family) is scored once
    keys = [(r["step"], r["split"], r["masks"]) for r in gen]
    assert len(keys) == len(set(keys))


def test_resume_drops_eval_rows_after_the_checkpoint(tmp_path):
    cfg = _tiny(checkpoint_every=2)
    training.train(cfg, out_dir=tmp_path, progress=False, max_steps=3)  # saves at 2 and 3
    before = monitor.read_eval_log(tmp_path)
    with open(tmp_path / "eval.csv", "a") as f:  # as if killed after scoring, before saving
        f.write("5,2,generator,heldout,center,99.0,0.5,0.1\n")
    training.train(cfg, out_dir=tmp_path, progress=False)
    rows = monitor.read_eval_log(tmp_path)
    assert not any(r["psnr_hole"] == 99.0 for r in rows)  # the unsaved row was dropped
    gen_steps = [r["step"] for r in rows if r["method"] == "generator" and r["split"] == "heldout"
                 and r["masks"] == "center"]
    assert gen_steps == sorted(set(gen_steps)) and gen_steps[-1] == cfg.total_steps
    assert len(rows) > len(before)
    assert sum(r["step"] == 0 and r["method"] == "mean fill" for r in rows) == 4  # written once


def test_bad_training_options_are_named():
    with pytest.raises(ValueError, match="procedural"):
        _tiny(procedural=2)
    with pytest.raises(ValueError, match="eval_every"):
        _tiny(eval_every=-1)
    with pytest.raises(ValueError, match="uniform_leaves"):
        _tiny(uniform_leaves=1.5)


# ---- the results tables ----------------------------------------------------------------------
def test_results_sanity_table_separates_exact_and_poor_methods():
    images, masks = E.default_test_set(None, "center", size=32)
    assert images.shape == (138, 3, 32, 32) and masks.shape == (138, 1, 32, 32)
    methods = results.methods_for(classical=True)
    rows = results.sanity_table({"mean fill": methods["mean fill"],
                                 "biharmonic": methods["scikit-image biharmonic"]}, 32, n=2)
    by = {(r["case"], r["method"]): r for r in rows}
    # biharmonic solves a flat field exactly (up to 8-bit rounding); mean fill does not
    assert by[("flat", "biharmonic")]["max_error"] < 1.0
    assert by[("flat", "mean fill")]["max_error"] > 5.0
    table = results.format_rows(rows, results.SANITY_COLUMNS)
    assert table.count("\n") == len(rows) + 1 and "biharmonic" in table


def test_native_table_scores_inpaint_on_the_heldout_photographs_at_their_size():
    rows = results.native_table(names=("full",), classical=("mean fill", "harmonic fill"),
                                sides=(24, 48), per_side=1)
    by = {(r["side"], r["method"]): r for r in rows}
    assert set(by) == {(s, m) for s in (24, 48, None) for m in ("full", "mean fill", "harmonic fill")}
    assert by[(24, "full")]["n"] == 6 and by[(None, "full")]["n"] == 12  # six photographs
    # on photographs the harmonic fill (at their own, odd, sizes) is far ahead of a flat colour
    assert by[(None, "harmonic fill")]["psnr_hole"] > by[(None, "mean fill")]["psnr_hole"] + 3
    table = results.format_native(rows)
    assert table.splitlines()[0].split("|")[2:5] == [" 24x24 holes ", " 48x48 holes ", "   all "]
