"""What the training tests share: the smallest configuration (32x32, widths 1/8 and 1/4) and
smooth images to train it on."""
import torch

from pconv_torch.training import load_config


def smooth_images(n: int = 6, size: int = 32, seed: int = 0) -> torch.Tensor:
    """(n, 3, size, size) smooth random images: a 4x4 random field upsampled (bilinear), so
    that holes are predictable."""
    low = torch.rand(n, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(low, size=size, mode="bilinear", align_corners=False)


def tiny(**kw):
    """``ci`` preset at 32x32, widths 1/8 (G) and 1/4 (D), batch 2, 3 / 2 / 3 iterations,
    a log row every step, no samples or periodic checkpoints; ``kw`` overrides any field."""
    base = dict(image_size=32, width=0.125, d_width=0.25, batch_size=2, phase1_iters=3,
                phase2_iters=2, phase3_iters=3, lr_g=1e-3, lr_d=1e-3, log_every=1,
                sample_every=1000, checkpoint_every=1000, n_samples=2, tensorboard=False)
    base.update(kw)
    return load_config("ci", **base)
