"""One method protocol: a generator, a baseline and a windowed generator as batch methods,
and the one set of per-image scores every comparison reports."""

import numpy as np
import pytest
import torch

from pconv_torch import baselines, methods, metrics
from pconv_torch.masks import centered_square_mask


class Ramp(torch.nn.Module):
    """Returns values from -1 to 2 (outside [0, 1]) and records how it was called."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
        self.calls = []

    def forward(self, image, mask):
        self.calls.append((tuple(image.shape), self.training, torch.is_grad_enabled()))
        ramp = torch.linspace(-1, 2, image.shape[-1]).expand_as(image)
        return ramp * self.w


def _batch(n=2, h=20, w=28):
    x = torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(0))
    m = torch.ones(n, 1, h, w)
    m[..., 5:12, 3:15] = 0
    return x * m, m


def test_generator_method_pads_crops_clamps_and_runs_in_eval_without_grad():
    g = Ramp().train()
    x, m = _batch()
    out = methods.generator_method(g, multiple=16)(x, m)
    assert out.shape == x.shape and out.dtype == torch.float32 and out.device.type == "cpu"
    assert g.calls == [((2, 3, 32, 32), False, False)]
    assert out.min() == 0 and out.max() == 1  # clamped


def test_generator_method_blend_meets_the_known_pixels():
    g = Ramp()
    x, m = _batch(h=16, w=16)
    raw = methods.generator_method(g)(x, m)
    blended = methods.generator_method(g, blend=True)(x, m)
    known = m.expand_as(x) > 0.5
    assert torch.allclose(blended[known], x[known].double().float())
    assert not torch.equal(blended[~known], raw[~known])


def test_model_method_is_the_composited_generator_method_of_one_image():
    g = Ramp()
    x, m = _batch(n=1)
    one = methods.model_method(g, multiple=16)(x[0], m[0])
    batch = methods.composites(methods.generator_method(g, multiple=16), x, m)[0]
    assert torch.equal(one, batch)


def test_batched_applies_a_per_image_method_to_each_image():
    x, m = _batch(n=3)
    fill = baselines.mean_fill_method((0.1, 0.2, 0.3))
    out = methods.batched(fill)(x, m)
    assert torch.equal(out, torch.stack([fill(a, b) for a, b in zip(x, m)]))


def test_composites_keep_the_known_pixels_and_take_the_hole_from_the_method():
    x, m = _batch()
    truth = torch.rand_like(x)
    images = torch.where(m > 0.5, x, truth)
    out = methods.composites(lambda a, b: torch.full_like(a, 0.5), images, m)
    assert torch.equal(out[m.expand_as(x) > 0.5], images[m.expand_as(x) > 0.5])
    assert (out[m.expand_as(x) < 0.5] == 0.5).all()


def test_windowed_method_runs_the_generator_at_its_scale_on_larger_images():
    g = Ramp()
    x, m = _batch(n=1, h=40, w=40)
    out = methods.windowed_method(g, scale=16)(x, m)
    assert out.shape == x.shape
    assert {shape for shape, _, _ in g.calls} == {(1, 3, 16, 16)}
    known = m.expand_as(x) > 0.5
    assert torch.equal(out[known], x[known])


def test_per_image_scores_are_the_metrics_of_each_image():
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    masks = centered_square_mask(16)[None].repeat(3, 1, 1, 1)
    out = images.clone()
    out[1] += 0.1 * (1 - masks[1])
    per = metrics.per_image_scores(out.clamp(0, 1), images, masks)
    assert set(per) == {"psnr", "psnr_hole", "ssim", "l1", "l1_hole"}
    assert per["psnr"][0] == metrics.PSNR_CAP and per["psnr_hole"][0] == metrics.PSNR_CAP
    assert per["psnr_hole"][1] < per["psnr"][1] < metrics.PSNR_CAP
    assert per["l1"][0] == 0 and per["l1_hole"][1] > per["l1"][1] > 0
    np.testing.assert_array_equal(per["ssim"], metrics.ssim(out.clamp(0, 1), images))


@pytest.mark.parametrize("name", list(baselines.BASELINES))
def test_every_baseline_is_reachable_from_the_command_line_and_inpaint(name):
    from pconv_torch import cli
    from pconv_torch.inference import inpaint

    assert name in cli.METHODS.values()
    image = np.full((24, 24, 3), 200, np.uint8)
    hole = np.zeros((24, 24), bool)
    hole[8:16, 8:16] = True
    out = inpaint(image, hole, method=name)
    assert np.array_equal(out[~hole], image[~hole])
