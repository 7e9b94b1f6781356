"""Single-image inference latency on the CPU: the generator beside OpenCV Telea, and the share of
the base fill (harmonic or biharmonic) and of the smoothness gate in the residual generator's time.

Usage::

    python benchmarks/bench_inference.py [--sizes 128 512] [--repeats 20] [--max-seconds 20]
        [--threads N] [--baselines "OpenCV Telea" ...]

What is timed, for every method alike, is the call a user makes through
:mod:`pconv_torch.evaluate`: one (3, H, W) image and its (1, H, W) mask in, the composited
(3, H, W) result out, batch of 1, wall clock (``time.perf_counter``):

* ``generator``: ``pconv_torch.Generator()`` (poster Table 1, untrained weights: latency does
  not depend on them) wrapped by :func:`pconv_torch.evaluate.model_method`: eval mode,
  ``torch.no_grad()``, padding to a multiple of 16 (none needed at 128 and 512), forward,
  composite;
* ``generator + harmonic``: the same generator built with ``residual=True`` (the shipped models'
  output, a correction to the harmonic fill of :mod:`pconv_torch.harmonic`): the same layers,
  plus the harmonic fill of the hole in every forward; the ratio ``+ harmonic / generator``
  is the cost of that fill;
* ``generator + biharmonic``: the same with ``base="biharmonic"`` (the thin-plate fill, solved
  by conjugate gradients on the same pyramid); ratio ``+ biharmonic / generator``;
* ``generator + harmonic + gate``: ``generator + harmonic`` followed by the smoothness gate
  (:func:`pconv_torch.smooth_gate.gated_fill`: the texture energy, its harmonic fill and the
  biharmonic fill of the hole), as ``pconv_torch.inpaint`` runs it by default; ratio
  ``gate / + harmonic`` = its time over ``generator + harmonic``'s;
* ``OpenCV Telea``: ``cv2.inpaint(..., INPAINT_TELEA)``, radius 3, including the conversion
  to and from uint8 (other baselines with ``--baselines``).

The hole is the centred square of side size/2 (hole ratio 0.25, the ``center`` mask family):
Telea's cost grows with the number of hole pixels, the generator's does not. The image is a
crop of an embedded test photograph. Per size: two warm-up calls per method, then up to
``--repeats`` interleaved rounds, each timing every method once (at least 3 rounds; no new
round after ``--max-seconds``), so load changes on a shared machine hit all methods alike;
the median per method is reported, with the ratio generator / Telea. Everything is measured
in one run, and the torch and OpenCV thread counts and the CPU's name are printed with it.

On a shared, loaded machine the generator's multi-threaded time can swing several-fold
between runs (oneDNN threads waiting on busy cores; measured while writing this, 2 cores
under load: 41 to 470 ms at 128x128 with 2 threads, 63 ms with ``--threads 1``); Telea's
barely moves. Quote numbers from a quiet machine, or with ``--threads 1``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from pconv_torch import Generator
from pconv_torch import evaluate as ev
from pconv_torch.benchmark import cpu_name
from pconv_torch.masks import centered_square_mask
from pconv_torch.smooth_gate import gated_fill


def _image(size: int) -> torch.Tensor:
    """(3, size, size): the first embedded test crop, or seeded noise if unavailable."""
    try:
        from pconv_torch.data import EmbeddedPhotos

        return EmbeddedPhotos("test", size=size)[0]
    except Exception:  # no embedded photographs installed
        return torch.from_numpy(np.random.default_rng(0).random((3, size, size), np.float32))


def time_methods(methods: dict, image, mask, repeats: int, max_seconds: float,
                 warmup: int = 2) -> dict[str, tuple[float, int]]:
    """Median wall-clock milliseconds of each ``fn(image, mask)`` and the number of timed calls.

    Rounds are interleaved (every method once per round), so a change in machine load during
    the run affects all methods alike and the ratios stay meaningful on a shared machine.
    At least 3 rounds; no new round starts after ``max_seconds``.
    """
    for fn in methods.values():
        for _ in range(warmup):
            fn(image, mask)
    times = {name: [] for name in methods}
    start = time.perf_counter()
    for r in range(repeats):
        if r >= 3 and time.perf_counter() - start > max_seconds:
            break
        for name, fn in methods.items():
            t0 = time.perf_counter()
            fn(image, mask)
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: (statistics.median(t), len(t)) for name, t in times.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 512])
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--max-seconds", type=float, default=20.0,
                   help="start no new timing round at one size after this long (at least 3 rounds)")
    p.add_argument("--threads", type=int, default=None, help="torch and OpenCV threads")
    p.add_argument("--baselines", nargs="+", default=["OpenCV Telea"],
                   help=f"any of {list(ev.BASELINES)}")
    args = p.parse_args(argv)

    import cv2

    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    for b in args.baselines:
        if b not in ev.BASELINES:
            p.error(f"unknown baseline {b!r}; choose from {list(ev.BASELINES)}")

    print(f"CPU: {cpu_name()}")
    print(f"torch {torch.__version__}, torch threads {torch.get_num_threads()}; "
          f"OpenCV {cv2.__version__}, OpenCV threads {cv2.getNumThreads()}")
    print("single image, batch of 1, wall clock, median of repeats; hole = centred square, "
          "side size/2\n")

    gen = Generator()
    n_params = sum(q.numel() for q in gen.parameters())
    bases = ("harmonic", "biharmonic")
    methods = {"generator": ev.model_method(gen, "cpu", multiple=16)}
    for base in bases:
        methods[f"generator + {base}"] = ev.model_method(Generator(residual=True, base=base),
                                                         "cpu", multiple=16)
    residual = methods["generator + harmonic"]
    methods["generator + harmonic + gate"] = (
        lambda image, mask: gated_fill(residual(image, mask)[None], image[None], mask[None])[0])
    print(f"generator: pconv_torch.Generator(), {n_params:,} parameters, untrained weights; "
          "generator + harmonic / biharmonic: Generator(residual=True, base=...); "
          "+ gate: then pconv_torch.smooth_gate.gated_fill")
    methods.update({b: ev.BASELINES[b] for b in args.baselines})

    header = f"{'size':>9} | " + " | ".join(f"{m:>27}" for m in methods)
    header += "".join(f" | + {b} / generator" for b in bases) + " | gate / + harmonic"
    header += " | " + " | ".join(f"{'generator / ' + b:>28}" for b in args.baselines)
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        image = _image(size)
        mask = centered_square_mask(size)
        image = image * mask
        res = time_methods(methods, image, mask, args.repeats, args.max_seconds)
        cells = [f"{ms:>10.2f} ms (n={n:>3})" for ms, n in res.values()]
        line = f"{size:>4}x{size:<4} | " + " | ".join(f"{c:>27}" for c in cells)
        for b in bases:
            line += f" | {res['generator + ' + b][0] / res['generator'][0]:>{len(b) + 13}.2f}x"
        gate = res["generator + harmonic + gate"][0] / res["generator + harmonic"][0]
        line += f" | {gate:>17.2f}x"
        line += " | " + " | ".join(f"{res['generator'][0] / res[b][0]:>27.1f}x"
                                   for b in args.baselines)
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
