"""The ``pconv`` command line: train, evaluate, inpaint, benchmark.

    pconv train --preset ci --out runs/ci                 # the poster's three phases
    pconv eval runs/ci                                    # model vs classical inpainting
    pconv inpaint photo.jpg --mask hole.png -o out.png    # the shipped model (default)
    pconv inpaint photo.jpg --mask hole.png -o out.png --checkpoint runs/ci
    pconv bench                                           # PartialConv2d vs nn.Conv2d

A mask *image* marks the region to fill in white (non-zero after binarising at 0.5), as in
OpenCV and LaMa; inside the package masks are 1 = valid, 0 = hole, and the conversion happens
once, in :func:`pconv_torch.masks.mask_from_image`.

Every bad input (missing or unreadable file, size mismatch, a mask with no hole or nothing but
hole, a corrupt checkpoint, an unknown preset or option) ends with one line
``pconv: error: ...`` on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from . import data as _data
from . import evaluate as _evaluate
from . import masks as _masks

EXIT_BAD_INPUT = 2
METHODS = {  # --method choice -> name in evaluate.BASELINES (None: the trained model)
    "model": None,
    "telea": "OpenCV Telea",
    "navier-stokes": "OpenCV Navier-Stokes",
    "biharmonic": "scikit-image biharmonic",
    "mean": "mean fill",
}


class CommandError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


# ----------------------------------------------------------------------------- commands
def _overrides(pairs):
    """['lr_g=1e-4', 'masks=thin'] -> {'lr_g': '1e-4', 'masks': 'thin'}."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--set expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = value
    return out


def cmd_train(args):
    from . import training

    overrides = _overrides(args.set)
    if args.data is not None:
        overrides["data"] = args.data
    config = training.load_config(args.preset, **overrides)
    if config.data not in ("embedded",) and not config.data.startswith("places365:"):
        if not Path(config.data).is_dir():
            raise CommandError(f"--data {config.data}: no such directory (expected 'embedded', "
                               "'places365:ROOT' or a folder of images)")
    result = training.train(config, out_dir=args.out, resume=not args.restart,
                            device=args.device, progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return 0
    losses = ", ".join(f"{k} {v:.4g}" for k, v in result["losses"].items())
    print(f"{result['status']} at phase {result['phase']}, iteration {result['iteration']} "
          f"(step {result['step']}): {losses}")
    print(f"checkpoint: {result['checkpoint']}")
    return 0


def cmd_eval(args):
    from . import training

    generator, size = None, args.size
    if args.checkpoint is not None:
        device = args.device or "cpu"
        generator = training.load_generator(args.checkpoint, map_location=device)
        if size is None:  # evaluate at the resolution the model was trained at
            size = training.load_checkpoint(args.checkpoint)["config_obj"].image_size
    _, table = _evaluate.evaluate_default(generator, n=args.n, mask_family=args.masks,
                                          seed=args.seed, size=size or 128,
                                          device=args.device or "cpu", progress=not args.quiet)
    print(table)
    return 0


def _read_image(path) -> torch.Tensor:
    path = Path(path)
    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    try:
        return _data.load_image(path, size=None)
    except (_data.BadImageError, UnidentifiedImageError, OSError) as e:
        raise CommandError(f"{path}: not a readable image ({e})") from None


def _read_mask(path, shape) -> torch.Tensor:
    path = Path(path)
    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    try:
        mask = _masks.mask_from_image(path)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise CommandError(f"{path}: not a readable mask image ({e})") from None
    if tuple(mask.shape[-2:]) != tuple(shape):
        raise CommandError(f"{path}: mask is {mask.shape[-1]}x{mask.shape[-2]} but the image is "
                           f"{shape[1]}x{shape[0]} (width x height); they must match")
    if bool(mask.all()):
        raise CommandError(f"{path}: the mask has no hole (no white pixels): nothing to fill")
    if not bool(mask.any()):
        raise CommandError(f"{path}: the mask is all hole (white everywhere): no known pixels "
                           "to fill from")
    return mask


def cmd_inpaint(args):
    image = _read_image(args.image)
    mask = _read_mask(args.mask, image.shape[-2:])
    if args.method == "model":
        from .inference import fill_holes

        if args.checkpoint is not None:
            from . import training

            generator = training.load_generator(args.checkpoint)
        else:
            from .shipped import default_model_name, pretrained

            generator = pretrained(args.model or default_model_name())
        device = args.device or "cpu"
        filled = fill_holes(generator.to(device), image.permute(1, 2, 0).numpy(),
                            mask[0].numpy() < 0.5, generator.image_size, device,
                            blend=None if args.no_blend else "poisson")
        result = torch.from_numpy(filled).permute(2, 0, 1)
    else:
        result = _evaluate.BASELINES[METHODS[args.method]](image, mask)
    # Known pixels come back exactly as they were read (the composite keeps them).
    result = torch.where(mask.bool(), image, result.clamp(0, 1))
    out = Path(args.output)
    pixels = (result.permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
    _write_image_atomically(Image.fromarray(pixels), out)
    holes = int((mask == 0).sum())
    print(f"filled {holes} pixels ({holes / mask.numel():.1%}) with {args.method}: {out}")
    return 0


def _write_image_atomically(image: Image.Image, out: Path) -> None:
    """Save to a temporary file beside ``out``, then rename it: an existing ``out`` is replaced
    only by a complete image (never left truncated, e.g. on a full disk)."""
    from .fileio import atomic_write

    try:
        fmt = Image.registered_extensions().get(out.suffix.lower())
        if fmt is None:
            raise ValueError(f"unknown image extension {out.suffix!r} (use .png, .jpg, ...)")
        with atomic_write(out) as f:
            image.save(f, format=fmt)
    except (ValueError, OSError) as e:
        raise CommandError(f"{out}: cannot write the result ({e})") from None


def cmd_bench(args):
    from . import benchmark

    benchmark.main(["--quick"] if args.quick else [])
    return 0


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pconv", description="Partial-convolution GAN inpainting (the poster's model).")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train G and D in the poster's three phases")
    p.add_argument("--preset", default="ci", help="ci (seconds), cpu (about an hour on two "
                   "cores) or paper (the poster's schedule, for a GPU); default: ci")
    p.add_argument("--data", help="'embedded' (default), 'places365:ROOT' or a folder of images")
    p.add_argument("--out", default="runs/pconv", help="run directory (checkpoint, log, samples)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a training option, e.g. --set lr_g=1e-4 (repeatable)")
    p.add_argument("--restart", action="store_true",
                   help="start afresh instead of resuming from OUT/checkpoint.pt")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("eval", help="PSNR, SSIM and L1 of a model and classical inpainting")
    p.add_argument("checkpoint", nargs="?", help="run directory or checkpoint.pt (omit to "
                   "evaluate the classical methods only)")
    p.add_argument("--n", type=int, default=None, help="number of test images (default: all)")
    p.add_argument("--masks", default="rect", choices=_masks.MASK_FAMILIES,
                   help="mask family of the fixed evaluation set (default: rect)")
    p.add_argument("--seed", type=int, default=2024, help="seed of the evaluation masks")
    p.add_argument("--size", type=int, help="image size (default: the model's training size, "
                   "else 128)")
    p.add_argument("--device", help="device for the model (default: cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("inpaint", help="fill the white region of MASK in IMAGE")
    p.add_argument("image", help="image file (any size; RGBA and grayscale are converted)")
    p.add_argument("--mask", required=True, help="mask image, white = region to fill")
    p.add_argument("-o", "--output", required=True, help="output image file (PNG recommended)")
    p.add_argument("--checkpoint", help="run directory or checkpoint.pt from 'pconv train' "
                   "(default: a shipped model, see --model)")
    p.add_argument("--model", help="shipped model name (default: full); see "
                   "pconv_torch.pretrained()")
    p.add_argument("--method", default="model", choices=list(METHODS),
                   help="a trained model (default) or a classical method")
    p.add_argument("--no-blend", action="store_true", help="paste the model's fill as it is "
                   "(default: Poisson-blend it into the hole's surroundings)")
    p.add_argument("--device", help="device for the model (default: cpu)")
    p.set_defaults(run=cmd_inpaint)

    p = sub.add_parser("bench", help="time PartialConv2d against nn.Conv2d")
    p.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    p.set_defaults(run=cmd_bench)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (CommandError, ValueError, FileNotFoundError) as e:
        print(f"pconv: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
