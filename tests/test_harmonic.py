"""The harmonic and biharmonic fills (pconv_torch.harmonic, pconv_ref.harmonic) and the
residual generator that corrects them."""

import numpy as np
import pytest
import torch

from pconv_ref.harmonic import base_fill as base_fill_ref
from pconv_torch import Generator
from pconv_torch.harmonic import BASES, base_fill, biharmonic_fill, harmonic_fill
from pconv_torch.masks import centered_square_mask
from pconv_torch.procedural import curved_images


def _scene(kind, size=64, seed=0):
    """(1, 3, size, size) float64: a flat colour or a linear gradient with random colours."""
    rng = np.random.default_rng(seed)
    a, b = rng.random(3), rng.random(3)
    if kind == "flat":
        img = np.broadcast_to(a[:, None, None], (3, size, size))
    else:
        t = (np.arange(size)[None, :] * 0.6 + np.arange(size)[:, None] * 0.8) / (1.4 * (size - 1))
        img = a[:, None, None] + (b - a)[:, None, None] * t[None]
    return torch.from_numpy(np.ascontiguousarray(img))[None]


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("kind", ["flat", "gradient"])
def test_flat_colours_and_linear_gradients_are_filled_exactly(kind, base):
    image = _scene(kind)
    mask = centered_square_mask(64)[None].double()
    out = base_fill(base)(image * mask, mask)  # the hole's values are not given
    assert (out - image).abs().max() < 0.5 / 255  # within half an 8-bit level


def test_only_the_biharmonic_fill_follows_a_curved_shading():
    """A quadratic shading solves the biharmonic equation, not the harmonic one: the
    biharmonic fill reproduces it, the harmonic fill leaves a plateau, the mix is between.
    Exactly: each pyramid level's start is corrected for the offset of block means on a curved
    shading (without that correction 16 fine steps leave 0.14 of a level)."""
    image = torch.from_numpy(curved_images(64, 4)).double()
    mask = centered_square_mask(64)[None].double().expand(4, -1, -1, -1)
    worst = {b: (base_fill(b)(image * mask, mask) - image).abs().max().item() * 255 for b in BASES}
    assert worst["biharmonic"] < 1e-3  # 8-bit levels
    assert worst["harmonic"] > 10
    assert worst["biharmonic"] < worst["mixed"] < worst["harmonic"]


def test_biharmonic_fill_solves_scikit_images_equation_given_enough_steps():
    """Converged (many conjugate-gradient steps at the finest level), the fill of a photograph
    is ``skimage.restoration.inpaint_biharmonic``'s exact solve, once clipped as it clips (to
    each channel's known range); the default 16 steps stop short of it on texture."""
    from skimage.restoration import inpaint_biharmonic

    from pconv_torch.evaluate import default_test_set

    images, _ = default_test_set(None, "center", size=64)
    mask = centered_square_mask(64)[None].double()
    hole = mask[0, 0] == 0
    for k in (5, 56, 98):
        crop = torch.as_tensor(images[k]).double()
        theirs = inpaint_biharmonic(crop.permute(1, 2, 0).numpy(), hole.numpy(), channel_axis=-1)
        theirs = torch.from_numpy(theirs).permute(2, 0, 1)
        known = crop[:, ~hole]
        lo, hi = known.amin(1)[:, None, None], known.amax(1)[:, None, None]
        ours = biharmonic_fill(crop[None] * mask, mask, fine_steps=2000)[0]
        assert (torch.minimum(torch.maximum(ours, lo), hi) - theirs)[:, hole].abs().max() < 1e-6
    short = biharmonic_fill(crop[None] * mask, mask)[0]
    assert (torch.minimum(torch.maximum(short, lo), hi) - theirs)[:, hole].abs().max() > 1e-3


@pytest.mark.parametrize("shape", [(127, 128), (300, 451)])
def test_odd_sides_are_padded_so_that_the_pyramid_reaches_the_middle(shape):
    # without the padding the pyramid cannot halve an odd side, and 32 sweeps at full size
    # leave the middle of a large hole near the mean colour: 65 levels off on these gradients
    image = torch.nn.functional.interpolate(_scene("gradient"), size=shape, mode="bilinear",
                                            align_corners=True)
    mask = torch.ones(1, 1, *shape, dtype=torch.float64)
    mask[..., shape[0] // 4:3 * shape[0] // 4, shape[1] // 4:3 * shape[1] // 4] = 0
    out = harmonic_fill(image * mask, mask)
    assert (out - image).abs().max() < 1 / 255  # within an 8-bit level
    assert out.shape == image.shape


@pytest.mark.parametrize("base", BASES)
def test_known_pixels_are_returned_unchanged(base):
    rng = np.random.default_rng(1)
    image = torch.from_numpy(rng.random((2, 3, 32, 48))).float()
    mask = torch.from_numpy((rng.random((2, 1, 32, 48)) > 0.3).astype(np.float32))
    out = base_fill(base)(image, mask)
    assert out.dtype == torch.float32
    assert torch.equal(out[mask.expand_as(out) > 0], image[mask.expand_as(image) > 0])


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("shape", [(2, 3, 64, 64), (1, 3, 48, 36), (1, 1, 1, 1), (1, 2, 5, 7),
                                   (1, 3, 27, 40)])
def test_torch_matches_the_numpy_reference(shape, base):
    rng = np.random.default_rng(2)
    image = rng.random(shape)
    mask = (rng.random((shape[0], 1, *shape[2:])) > 0.5).astype(np.float64)
    mask.reshape(-1)[0] = 1  # at least one known pixel
    want = base_fill_ref(base, image, mask)
    got = base_fill(base)(torch.from_numpy(image), torch.from_numpy(mask))
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("base", BASES)
def test_bf16_autocast_still_fills_in_float32(base):
    image, mask = _scene("gradient").float(), centered_square_mask(64)[None]
    plain = base_fill(base)(image, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast = base_fill(base)(image, mask)
    assert cast.dtype == torch.float32 and torch.equal(cast, plain)


@pytest.mark.parametrize("base", BASES)
def test_residual_generator_starts_as_its_base_fill(base):
    """A new residual generator's last layer outputs 0, so it returns its base fill."""
    torch.manual_seed(0)
    g = Generator(width=0.125, residual=True, base=base).eval()
    assert not g.layers[-1].conv.weight.any() and not g.layers[-1].conv.bias.any()
    image = torch.from_numpy(curved_images(32, 1)).float()
    mask = centered_square_mask(32)[None]
    with torch.no_grad():
        out = g(image, mask)
    want = base_fill(base)(image, mask).clamp(1 / 512, 511 / 512)
    assert torch.allclose(out, want, atol=1e-6)
    assert not Generator(width=0.125).residual  # the poster's output stays the default


def _trained_looking(g):
    """``g`` with every parameter drawn at random (its last layer no longer zero)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in g.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return g.eval()


def test_standardised_generator_returns_the_fill_of_a_flat_image_whatever_its_weights():
    """standardise=True scales the correction by the known pixels' contrast: 0 on a flat image."""
    g = _trained_looking(Generator(width=0.125, residual=True, standardise=True))
    image, mask = _scene("flat", size=32).float(), centered_square_mask(32)[None]
    with torch.no_grad():
        out = g(image, mask)
        plain = _trained_looking(Generator(width=0.125, residual=True))(image, mask)
    want = harmonic_fill(image, mask).clamp(1 / 512, 511 / 512)
    assert (out - want).abs().max() < 1e-6
    assert (plain - want).abs().max() > 1e-3  # without it the same weights paint a structure


def test_standardised_generator_sees_brightness_and_contrast_removed():
    """Its correction scales with the image's contrast, so a fill of a * x + b is close to
    a * fill(x) + b (the sigmoid makes it approximate)."""
    g = _trained_looking(Generator(width=0.125, residual=True, standardise=True))
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    mask = centered_square_mask(32)[None]
    with torch.no_grad():
        out, dim = g(image, mask), g(0.25 * image + 0.4, mask)
    hole = mask.expand_as(out) == 0
    error = ((dim - 0.4) / 0.25 - out)[hole].abs().mean()
    plain = _trained_looking(Generator(width=0.125, residual=True))
    with torch.no_grad():
        error_plain = ((plain(0.25 * image + 0.4, mask) - 0.4) / 0.25 - plain(image, mask))
    assert error < 0.3 * error_plain[hole].abs().mean()


def test_standardise_needs_the_residual_output():
    with pytest.raises(ValueError, match="residual"):
        Generator(width=0.125, standardise=True)
    from pconv_torch.config import load_config
    with pytest.raises(ValueError, match="standardise"):
        load_config("ci", standardise=True)
    assert load_config("ci", residual=True, standardise="true").standardise is True


def test_a_base_other_than_the_harmonic_fill_needs_the_residual_output():
    with pytest.raises(ValueError, match="base='biharmonic' needs residual=True"):
        Generator(width=0.125, base="biharmonic")
    with pytest.raises(ValueError, match="base='cubic'.*'harmonic', 'biharmonic', 'mixed'"):
        Generator(width=0.125, residual=True, base="cubic")
    from pconv_torch.config import load_config
    with pytest.raises(ValueError, match="TrainConfig.base='mixed': needs residual=True"):
        load_config("ci", base="mixed")
    assert load_config("ci", residual=True, base="mixed").base == "mixed"


def test_bounded_fill_reduces_only_large_pictures_and_stays_close_on_smooth_shading():
    """Below ``max_side`` it is the fill itself; above, the fill of a reduced picture enlarged
    back, with the known pixels as given and, on a smooth curved shading, within two 8-bit
    levels of the truth (half a level on average)."""
    from pconv_torch.harmonic import biharmonic_fill, bounded_fill
    from pconv_torch.procedural import curved_images

    image = torch.from_numpy(curved_images(192, 1))
    mask = torch.ones(1, 1, 192, 192)
    mask[..., 50:140, 60:150] = 0
    x = image * mask
    assert torch.equal(bounded_fill(biharmonic_fill, x, mask, max_side=192),
                       biharmonic_fill(x, mask))
    reduced = bounded_fill(biharmonic_fill, x, mask, max_side=64)  # filled at 64 x 64
    assert torch.equal(reduced * mask, x * mask)
    hole = (1 - mask).bool().expand_as(image)
    assert (reduced - image).abs()[hole].max() * 255 < 2.0
    assert (reduced - image).abs()[hole].mean() * 255 < 0.5
