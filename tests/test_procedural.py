"""Procedural training images: dead leaves, photo palettes, smooth fields and the sanity
scenes (pconv_torch.procedural)."""

import numpy as np
import pytest
import torch

from pconv_torch import procedural


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


def test_curved_scene_is_a_radial_quadratic_that_leaves_the_other_cases_unchanged():
    before = procedural.sanity_images(32, n=3, seed=0)
    c = procedural.curved_images(32, n=3, seed=0)
    assert c.shape == (3, 3, 32, 32) and c.dtype == np.float32
    assert 0.1 <= c.min() and c.max() <= 0.9
    np.testing.assert_array_equal(c, procedural.curved_images(32, n=3, seed=0))
    # a quadratic: the discrete Laplacian is the same constant everywhere, and not zero
    lap = (c[..., :-2, 1:-1] + c[..., 2:, 1:-1] + c[..., 1:-1, :-2] + c[..., 1:-1, 2:]
           - 4 * c[..., 1:-1, 1:-1])
    assert np.allclose(lap, lap[..., :1, :1], atol=1e-5) and np.abs(lap).max() > 1e-4
    after = procedural.sanity_images(32, n=3, seed=0)
    for case in procedural.SANITY_CASES:
        np.testing.assert_array_equal(before[case], after[case])
