"""Content kinds of a hole (pconv_torch.content) and the held-out smooth crops."""

import numpy as np
import pytest
import torch

from pconv_torch import content
from pconv_torch import data as D
from pconv_torch.masks import centered_square_mask


def _scenes(size=64):
    """A soft ramp, fine noise everywhere, and a flat field with one strong edge."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    ramp = np.stack([0.4 + 0.2 * xx] * 3)
    noise = np.clip(0.5 + rng.normal(0, 0.15, (3, size, size)), 0, 1)
    edge = np.stack([np.where(xx > 0.55, 0.8, 0.2)] * 3)
    return torch.tensor(np.stack([ramp, noise, edge]), dtype=torch.float32)


def test_content_kinds_tells_smooth_textured_and_edges_apart_at_any_scale():
    images = _scenes(64)
    masks = centered_square_mask(64)[None].repeat(3, 1, 1, 1)
    assert list(content.content_kinds(images, masks)) == ["smooth", "textured", "edges"]
    # the same pictures at 128x128 are judged at 64x64: the same kinds
    big = torch.nn.functional.interpolate(images, scale_factor=2, mode="nearest")
    bigm = centered_square_mask(128)[None].repeat(3, 1, 1, 1)
    assert list(content.content_kinds(big, bigm)) == ["smooth", "textured", "edges"]
    s = content.hole_gradients(images, masks)
    assert s["p95"][0] < content.SMOOTH_P95 <= s["p95"][2]
    with pytest.raises(ValueError):
        content.content_kinds(images[:, :, :, :60], masks[:, :, :, :60])


def test_soft_crops_come_from_held_out_photographs_and_are_smooth_in_the_hole():
    images, where = content.soft_crops(32)
    assert len(images) == len(where) > 20 and images.shape[1:] == (3, 32, 32)
    held_out = {name for name, _, _ in D.EMBEDDED_TEST}
    assert {w[0] for w in where} <= held_out
    assert not {w[0] for w in where} & {name for name, _, _ in D.EMBEDDED_TRAIN}


@pytest.mark.parametrize("split", ["train", "val"])
def test_soft_crops_of_other_splits_are_apart_from_the_held_out_ones(split):
    images, where = content.soft_crops(64, split=split)
    assert len(images) == len(where) > 50 and images.shape[1:] == (3, 64, 64)
    assert {w[0] for w in where} <= {name for name, _, _ in D.SPLITS[split]}
    hole = centered_square_mask(64)[None].expand(len(images), -1, -1, -1)
    assert (content.content_kinds(images, hole) == "smooth").all()
    with pytest.raises(ValueError, match="split"):
        content.soft_crops(64, split="validation")
