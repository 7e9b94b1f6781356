"""Does the data pipeline keep a CPU training step fed? Images/s of the pipeline vs. the step.

Usage::

    python benchmarks/bench_data.py [--source embedded|folder:PATH|places:ROOT] [--masks mixed]
        [--batch 16] [--size 128] [--seconds 5] [--workers 0] [--consume RATE] [--threads N]
        [--n-train N]   (Places365 subsample, default the poster's 30,000)

Prints three numbers and their ratio:

* ``pipeline``: images/s that :func:`pconv_torch.data.make_loader` delivers (image + mask,
  collated into batches), iterated with nothing else running;
* ``consume``: images/s the training step consumes. Pass ``--consume RATE`` to use a known
  rate (e.g. the ``cpu`` preset's, measured by the training code); otherwise a stand-in is
  timed: forward + backward + Adam step of the poster's generator (Table 1) built from plain
  ``nn.Conv2d`` on the mean-filled input (the plain-convolution ablation). The real step
  (partial convolutions, two discriminators in phase 3) is slower, so the stand-in
  *overstates* consumption and the ratio printed is a lower bound;
* ``fed``: images/s of the step when it pulls its batches from the loader, next to the step
  alone, showing what the pipeline costs the step in the same process.

Goal: pipeline / consume >= 5.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from torch import nn

from pconv_torch import data as D
from pconv_torch.places365 import Places365


class _StandInGenerator(nn.Module):
    """Poster Table 1 with nn.Conv2d: 4 stride-2 encoder layers, 4 upsample+concat decoder
    layers, 3x3 -> 3 and 1x1 -> 3. Input (N, 3, H, W) -> output (N, 3, H, W)."""

    def __init__(self):
        super().__init__()
        enc = [(3, 64, 5), (64, 128, 5), (128, 256, 3), (256, 256, 3)]
        self.enc = nn.ModuleList(nn.Conv2d(i, o, k, 2, k // 2) for i, o, k in enc)
        dec = [(256 + 256, 256), (256 + 128, 256), (256 + 64, 128), (128 + 3, 64)]
        self.dec = nn.ModuleList(nn.Conv2d(i, o, 3, 1, 1) for i, o in dec)
        self.out = nn.Sequential(nn.Conv2d(64, 3, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(3, 3, 1), nn.Sigmoid())

    def forward(self, x):
        skips = [x]
        for conv in self.enc:
            x = torch.relu(conv(x))
            skips.append(x)
        skips.pop()
        for conv in self.dec:
            x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
            x = nn.functional.leaky_relu(conv(torch.cat([x, skips.pop()], 1)), 0.2)
        return self.out(x)


def _dataset(source: str, size: int, masks: str, places_kw=None):
    places_kw = places_kw or {}
    if source == "embedded":
        images = D.EmbeddedPhotos("train", size=size, length=100_000)
    elif source.startswith("folder:"):
        images = D.ImageFolder(source[7:], size=size, augment=True)
    elif source.startswith("places:"):
        images = Places365(source[7:], "train", size=size, **places_kw)
    else:
        raise SystemExit(f"unknown --source {source!r}")
    return D.InpaintingDataset(images, masks), images


def _rate(step, seconds: float, batch: int) -> float:
    """Images/s of ``step()`` (one batch each), after one warm-up call."""
    step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += batch
    return n / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", default="embedded")
    ap.add_argument("--masks", default="mixed")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--consume", type=float, default=None, help="known consumption, images/s")
    ap.add_argument("--n-train", type=int, default=None, help="Places365 subsample size")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    places_kw = {} if args.n_train is None else {"n_train": args.n_train, "n_test": 0}
    ds, images = _dataset(args.source, args.size, args.masks, places_kw)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; source={args.source} masks={args.masks} "
          f"batch={args.batch} size={args.size} workers={args.workers}")

    loader = D.make_loader(ds, args.batch, num_workers=args.workers)
    it = iter(loader)

    def pull():
        nonlocal it
        try:
            return next(it)
        except StopIteration:
            it = iter(loader)
            return next(it)

    pipeline = _rate(pull, args.seconds, args.batch)
    print(f"pipeline : {pipeline:8.1f} images/s")

    mean = images.fill_mean() if hasattr(images, "fill_mean") else torch.full((3,), 0.5)
    net = _StandInGenerator()
    opt = torch.optim.Adam(net.parameters(), 2e-4)
    x0, m0 = pull()

    def train_step(x=x0, m=m0):
        out = net(D.mean_fill(x, m, mean))
        loss = (((out - x) * (1 - m)) ** 2).mean() + (((out - x) * m) ** 2).mean() / 6
        opt.zero_grad()
        loss.backward()
        opt.step()

    if args.consume is None:
        consume = _rate(train_step, args.seconds, args.batch)
        print(f"consume  : {consume:8.1f} images/s  (stand-in: plain-conv generator fwd+bwd+Adam)")
        fed = _rate(lambda: train_step(*pull()), args.seconds, args.batch)
        print(f"fed      : {fed:8.1f} images/s  (step pulling from the loader; "
              f"{100 * (1 - fed / consume):+.1f}% vs step alone)")
    else:
        consume = args.consume
        print(f"consume  : {consume:8.1f} images/s  (given)")
    ratio = pipeline / consume
    print(f"ratio    : {ratio:8.1f}x  (goal >= 5x: {'met' if ratio >= 5 else 'NOT met'})")


if __name__ == "__main__":
    main()
