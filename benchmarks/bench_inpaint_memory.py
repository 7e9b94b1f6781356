"""Peak memory of ``pconv inpaint`` on a large photograph with a few holes.

Usage::

    python benchmarks/bench_inpaint_memory.py [--width 6000] [--height 4000] [--budget-gb 4]
        [--square SIDE]

A synthetic photograph of ``width`` x ``height`` pixels (an embedded test photograph enlarged,
24 megapixels by default) and a mask with three holes of different shapes (a 120-pixel square,
a 400 x 260 rectangle and a thin 40 x 700 stroke; with ``--square SIDE``, one square hole of
that side instead, its corner at a quarter of the height and a third of the width) are written
to a temporary folder as PNG files. Three commands then run, each in a fresh Python process,
and the peak resident memory of each (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` of
that process alone) is printed:

* ``baseline``: read the photograph and the mask into arrays and write the photograph back
  (what any tool that edits the file must hold);
* ``pconv inpaint``: the command a user runs (the shipped ``full`` model, Poisson blending,
  the smoothness gate);
* ``pconv inpaint --no-gate``: the same without the gate, whose biharmonic fill of each
  window is the difference between the two.

The ratio of the two says how much the network and the blending add on top of holding the
photograph; the budget line says whether the command stays within ``--budget-gb``. Memory is
measured, not timed, so the numbers do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

BASELINE = """
import sys
import numpy as np
from PIL import Image
from pconv_torch.inference import read_image
pixels = read_image(sys.argv[1])
mask = np.asarray(Image.open(sys.argv[2]).convert("L")) > 127
Image.fromarray(pixels).save(sys.argv[3])
"""


# Runs a command as its only child and prints that child's peak RSS (Linux: kilobytes ->
# MB). RUSAGE_CHILDREN is a maximum over all children of a process, so every measurement
# gets a parent of its own.
PROBE = ("import resource, subprocess, sys; "
         "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")


def peak_rss_mb(command: list[str]) -> float:
    """Peak resident memory (MB) of ``command`` run in a fresh process."""
    out = subprocess.run([sys.executable, "-c", PROBE, *command], check=True,
                         capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def make_inputs(folder: Path, width: int, height: int,
                square: int | None = None) -> tuple[Path, Path]:
    """A ``width`` x ``height`` RGB photograph and a mask with three holes, or one square hole
    of side ``square`` (white = fill)."""
    from pconv_torch.data import embedded_photographs

    available, _ = embedded_photographs("test")  # [(name, path)]
    source = Image.open(available[0][1]).convert("RGB")
    photo = source.resize((width, height), Image.BICUBIC)
    mask = np.zeros((height, width), np.uint8)
    cy, cx = height // 2, width // 2
    if square:
        mask[height // 4:height // 4 + square, width // 3:width // 3 + square] = 255
    else:
        mask[cy - 60:cy + 60, cx - 60:cx + 60] = 255                       # square
        mask[height // 5:height // 5 + 260, width // 6:width // 6 + 400] = 255   # rectangle
        mask[height // 3:height // 3 + 700, 4 * width // 5:4 * width // 5 + 40] = 255  # stroke
    photo_path, mask_path = folder / "photo.png", folder / "mask.png"
    photo.save(photo_path)
    Image.fromarray(mask).save(mask_path)
    return photo_path, mask_path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=6000)
    p.add_argument("--height", type=int, default=4000)
    p.add_argument("--budget-gb", type=float, default=4.0)
    p.add_argument("--square", type=int, default=None, metavar="SIDE",
                   help="one square hole of this side instead of the three holes")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        photo, mask = make_inputs(folder, args.width, args.height, args.square)
        base = peak_rss_mb([sys.executable, "-c", BASELINE, str(photo), str(mask),
                            str(folder / "copy.png")])
        command = [sys.executable, "-m", "pconv_torch.cli", "inpaint", str(photo),
                   "--mask", str(mask), "-o", str(folder / "filled.png")]
        cmd = peak_rss_mb(command)
        no_gate = peak_rss_mb([*command, "--no-gate"])
    mp = args.width * args.height / 1e6
    holes = f"one {args.square} x {args.square} hole" if args.square else "3 holes"
    print(f"photograph {args.width} x {args.height} ({mp:.1f} megapixels), {holes}")
    print(f"{'baseline (read, write)':<28} {base:8.0f} MB peak")
    print(f"{'pconv inpaint':<28} {cmd:8.0f} MB peak   ({cmd / base:.2f}x the baseline)")
    print(f"{'pconv inpaint --no-gate':<28} {no_gate:8.0f} MB peak   "
          f"({no_gate / base:.2f}x the baseline)")
    within = cmd <= args.budget_gb * 1024
    print(f"budget {args.budget_gb:g} GB: {'within' if within else 'EXCEEDED'}")
    return 0 if within else 1


if __name__ == "__main__":
    raise SystemExit(main())
