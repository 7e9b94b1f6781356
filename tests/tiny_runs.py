"""The smallest training configuration the training tests share: 32x32, widths 1/8 and 1/4."""
from pconv_torch.training import load_config


def tiny(**kw):
    """``ci`` preset at 32x32, widths 1/8 (G) and 1/4 (D), batch 2, 3 / 2 / 3 iterations,
    a log row every step, no samples or periodic checkpoints; ``kw`` overrides any field."""
    base = dict(image_size=32, width=0.125, d_width=0.25, batch_size=2, phase1_iters=3,
                phase2_iters=2, phase3_iters=3, lr_g=1e-3, lr_d=1e-3, log_every=1,
                sample_every=1000, checkpoint_every=1000, n_samples=2, tensorboard=False)
    base.update(kw)
    return load_config("ci", **base)
