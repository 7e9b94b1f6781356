"""Masks: conventions, families' hole ratios, the local box, files, fixed evaluation sets."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from pconv_torch import masks as M


def _is_binary(m):
    return bool(torch.all((m == 0) | (m == 1)))


# ---- hand-sized cases -------------------------------------------------------------------
def test_rectangle_small_by_hand():
    m, hole = M.rectangle_mask(8, rng=0, min_side=2, max_side=2)
    assert m.shape == (1, 8, 8) and m.dtype == torch.float32
    y0, x0, h, w = hole.tolist()
    assert (h, w) == (2, 2)
    expected = torch.ones(1, 8, 8)
    expected[:, y0:y0 + 2, x0:x0 + 2] = 0
    assert torch.equal(m, expected)
    assert M.hole_ratio(m) == pytest.approx(4 / 64)


def test_centered_square():
    m = M.centered_square_mask(128)
    assert m.shape == (1, 128, 128)
    assert torch.all(m[:, 32:96, 32:96] == 0)
    assert m.sum() == 128 * 128 - 64 * 64
    assert M.hole_ratio(m) == 0.25
    assert M.centered_square_mask((6, 10), side=2)[0, 2:4, 4:6].sum() == 0


def test_hole_ratio_and_stats_by_hand():
    m = torch.ones(4, 1, 4, 4)
    m[1, 0, 0, :] = 0  # 4/16
    m[2, 0, :2, :] = 0  # 8/16
    m[3] = 0  # 16/16
    r = M.hole_ratio(m)
    np.testing.assert_allclose(r, [0, 0.25, 0.5, 1.0])
    s = M.ratio_stats(m)
    assert s["n"] == 4 and s["mean"] == pytest.approx(0.4375)
    assert s["min"] == 0 and s["max"] == 1 and sum(s["hist"].values()) == 4
    assert M.hole_ratio(m.numpy()[1]) == 0.25


# ---- families ---------------------------------------------------------------------------
def test_rectangles_sides_positions_and_ratios():
    rng = np.random.default_rng(1)
    lo, hi = M.RATIO_RANGES["rect"]
    for _ in range(200):
        m, (y0, x0, h, w) = M.rectangle_mask(128, rng)
        assert 16 <= h <= 64 and 16 <= w <= 64
        assert 0 <= y0 and y0 + h <= 128 and 0 <= x0 and x0 + w <= 128
        assert M.hole_bbox(m) == (y0, x0, y0 + h, x0 + w)
        assert lo <= M.hole_ratio(m) <= hi


@pytest.mark.parametrize("family", ["thin", "medium", "thick"])
def test_stroke_ratios_inside_documented_range(family):
    masks = M.sample_masks(family, 60, 128, seed=3)
    assert masks.shape == (60, 1, 128, 128) and masks.dtype == torch.float32
    assert _is_binary(masks)
    lo, hi = M.RATIO_RANGES[family]
    r = M.hole_ratio(masks)
    assert np.all((r >= lo) & (r <= hi)), (r.min(), r.max())
    assert r.std() > 0.01  # a spread, not one fixed ratio


def test_stroke_families_are_ordered_and_scale_with_size():
    means = [M.hole_ratio(M.sample_masks(f, 20, 128, seed=0)).mean() for f in ("thin", "medium", "thick")]
    assert means[0] < means[1] < means[2]
    big = M.sample_masks("medium", 5, 256, seed=0)
    assert big.shape == (5, 1, 256, 256)
    lo, hi = M.RATIO_RANGES["medium"]
    assert np.all((M.hole_ratio(big) >= lo) & (M.hole_ratio(big) <= hi))


def test_mixed_and_unknown_family():
    r = M.hole_ratio(M.sample_masks("mixed", 40, 64, seed=0))
    assert np.all((r > 0) & (r <= 0.5))
    with pytest.raises(ValueError, match="unknown mask family"):
        M.sample_mask("blobs")
    with pytest.raises(ValueError):
        M.stroke_mask("rect")


def test_determinism_same_seed_and_difference_across_seeds():
    for fam in ("rect", "thin", "thick"):
        a = M.sample_masks(fam, 8, 64, seed=11)
        b = M.sample_masks(fam, 8, 64, seed=11)
        c = M.sample_masks(fam, 8, 64, seed=12)
        assert torch.equal(a, b)
        assert not torch.equal(a, c)


# ---- masks from files (white = hole) ----------------------------------------------------
def _hole_image(mode):
    """16x16, a white 4x4 square at rows/cols 2..5 (hole), black elsewhere."""
    a = np.zeros((16, 16), np.uint8)
    a[2:6, 2:6] = 255
    img = Image.fromarray(a, "L")
    if mode == "I;16":
        return Image.fromarray(a.astype(np.uint16) * 257)
    if mode == "RGBA":
        rgba = img.convert("RGBA")
        # a fully transparent white pixel elsewhere is *not* a hole
        rgba.putpixel((10, 10), (255, 255, 255, 0))
        return rgba
    return img.convert(mode)


@pytest.mark.parametrize("mode", ["L", "1", "RGB", "RGBA", "P", "LA", "I;16"])
def test_mask_from_image_any_mode(tmp_path, mode):
    path = tmp_path / "mask.png"
    _hole_image(mode).save(path)
    m = M.mask_from_image(path)
    assert m.shape == (1, 16, 16) and m.dtype == torch.float32 and _is_binary(m)
    assert torch.all(m[0, 2:6, 2:6] == 0)  # white -> hole -> 0
    assert m.sum() == 256 - 16  # everything else valid, transparent white included


def test_mask_from_image_threshold_resize_and_arrays():
    a = np.zeros((8, 8), np.uint8)
    a[0, 0], a[1, 1] = 100, 200
    assert M.mask_from_image(a).sum() == 63  # 200/255 > 0.5, 100/255 is not
    assert M.mask_from_image(a, threshold=0).sum() == 62  # "non-zero" semantics
    assert M.mask_from_image(Image.fromarray(a)).sum() == 63
    b = np.zeros((8, 8, 3), np.float32)
    b[:4] = 1.0
    m = M.mask_from_image(b, size=16)
    assert m.shape == (1, 16, 16) and torch.all(m[0, :8] == 0) and torch.all(m[0, 8:] == 1)


# ---- local discriminator box -------------------------------------------------------------
def test_local_boxes_contain_rectangular_holes():
    masks = M.sample_masks("rect", 100, 128, seed=5)
    for rng in (None, 7):
        boxes = M.local_boxes(masks, 64, rng=rng)
        assert boxes.shape == (100, 2) and boxes.dtype == torch.int64
        assert boxes.min() >= 0 and boxes.max() <= 64
        patches = M.crop_boxes(masks, boxes)
        assert patches.shape == (100, 1, 64, 64)
        # every hole pixel lies inside the patch
        holes_total = (masks < 0.5).sum(dim=(1, 2, 3))
        holes_in_patch = (patches < 0.5).sum(dim=(1, 2, 3))
        assert torch.equal(holes_total, holes_in_patch)


def test_local_box_centred_clipped_and_empty_by_hand():
    m = torch.ones(3, 1, 128, 128)
    m[0, :, 40:60, 50:70] = 0  # centre (50, 60) -> corner (18, 28)
    m[1, :, 0:10, 120:128] = 0  # near the top-right corner -> clipped to (0, 64)
    # m[2]: no hole -> centred (32, 32)
    assert M.local_boxes(m).tolist() == [[18, 28], [0, 64], [32, 32]]
    big = torch.ones(1, 1, 128, 128)
    big[..., 0:128, 10:20] = 0  # bbox taller than the box: centred and clipped
    assert M.local_boxes(big).tolist() == [[32, 0]]
    with pytest.raises(ValueError):
        M.local_boxes(torch.ones(1, 1, 32, 32), 64)


def test_crop_boxes_torch_numpy_and_gradient():
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    boxes = torch.tensor([[0, 0], [4, 8]])
    p = M.crop_boxes(x, boxes, box=8)
    assert torch.equal(p[1], x[1, :, 4:12, 8:16])
    p.sum().backward()
    assert x.grad.sum() == 2 * 3 * 64
    pn = M.crop_boxes(x.detach().numpy(), boxes.numpy(), box=8)
    np.testing.assert_array_equal(pn, p.detach().numpy())


# ---- fixed evaluation sets ---------------------------------------------------------------
def test_eval_masks_save_load_roundtrip(tmp_path):
    m = M.make_eval_masks("thin", 10, 64, seed=1)
    assert torch.equal(m, M.make_eval_masks("thin", 10, 64, seed=1))
    assert not torch.equal(M.make_eval_masks("rect", 10, 64, seed=1), M.make_eval_masks("rect", 10, 64, seed=2))
    path = M.save_masks(tmp_path / "thin.npz", m, family="thin", seed=1)
    back, meta = M.load_masks(path)
    assert torch.equal(back, m) and back.dtype == torch.float32
    assert meta == {"family": "thin", "seed": "1"}
    odd = (torch.rand(3, 1, 5, 13) > 0.5).float()  # width not a multiple of 8
    assert torch.equal(M.load_masks(M.save_masks(tmp_path / "odd.npz", odd))[0], odd)


def test_eval_mask_set_cached(tmp_path):
    a = M.eval_mask_set("center", 4, 32, seed=0, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    b = M.eval_mask_set("center", 4, 32, seed=0, cache_dir=tmp_path)
    assert torch.equal(a, b) and M.hole_ratio(a).tolist() == [0.25] * 4


def test_eval_masks_identical_in_a_fresh_process(tmp_path):
    """Determinism across runs: a new interpreter generates the same set."""
    out = tmp_path / "fresh.npz"
    code = ("from pconv_torch import masks as M; "
            f"M.save_masks(r'{out}', M.make_eval_masks('medium', 6, 64, seed=9))")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert torch.equal(M.load_masks(out)[0], M.make_eval_masks("medium", 6, 64, seed=9))


def test_hole_of_and_valid_of_are_inverse_conversions():
    hole = np.zeros((5, 7), bool)
    hole[1:3, 2:6] = True
    mask = M.valid_of(hole)
    assert mask.shape == (1, 5, 7) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) == {0.0, 1.0} and mask.sum() == hole.size - hole.sum()
    np.testing.assert_array_equal(M.hole_of(mask)[0], hole)
    np.testing.assert_array_equal(M.hole_of(mask.numpy() * 0.9 + 0.05)[0], hole)  # at 0.5


def test_hole_from_image_is_the_hole_map_that_mask_from_image_inverts():
    a = np.zeros((6, 9), np.uint8)
    a[2:4, 1:5] = 255
    hole = M.hole_from_image(a)
    assert hole.dtype == bool and hole.shape == (6, 9) and hole.sum() == 8
    np.testing.assert_array_equal(M.mask_from_image(a), M.valid_of(hole))
