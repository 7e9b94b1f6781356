"""The ``pconv`` command line: train, evaluate, inpaint, benchmark.

    pconv train --preset ci --out runs/ci                 # the poster's three phases
    pconv eval runs/ci                                    # model vs classical inpainting
    pconv inpaint photo.jpg --mask hole.png -o out.png    # the shipped model (default)
    pconv inpaint photo.jpg --mask hole.png -o out.png --checkpoint runs/ci
    pconv bench                                           # PartialConv2d vs nn.Conv2d

A mask *image* marks the region to fill in white (non-zero after binarising at 0.5), as in
OpenCV and LaMa; inside the package masks are 1 = valid, 0 = hole, and the conversion happens
once, in :func:`pconv_torch.masks.hole_from_image`.

The output of ``pconv inpaint`` keeps the input's mode: RGB, RGBA (alpha unchanged
everywhere), grayscale with or without alpha, 16-bit grayscale (16 bits kept); palette and
1-bit images come back as RGB(A) / grayscale. Known pixels are written unchanged; only the
colour of hole pixels is replaced; the ICC profile and DPI are kept. Image and mask files are
both turned upright by their EXIF orientation. 16-bit colour images, modes such as CMYK and
files of several frames (animations, multi-page TIFF) are refused. The output is encoded and
decoded again before it is written: a format that would change the image's size, mode, bit
depth or values is refused, a lossy one (JPEG, WebP) is written after a warning that says how
many known pixels differ.

Every failure ends with one line ``pconv: error: ...`` on stderr, never a traceback or a usage
block; warnings are one line ``pconv: warning: ...`` each:

* exit status 2, a bad input: a missing, unreadable or oversized (decompression bomb) file, a
  directory given as a file, size mismatch, a mask with no hole or nothing but hole, a corrupt
  checkpoint, one without digests (unless ``--allow-unverified-checkpoint``) or one whose
  model outputs NaN or infinite values, an unknown preset, option or option value (``--set
  seed=-1``), options that contradict each other (``--model`` with ``--checkpoint``), an
  unavailable ``--device`` (e.g. ``cuda`` without CUDA), an output path in a missing
  directory or in a format that cannot store the result unchanged, ``eval --size`` that is
  not a positive multiple of the model's ``2**depth``;
* exit status 1, a run that failed: training diverged (NaN or infinite loss or weights), an
  operating-system error (disk full, read-only file system, permission denied) while running
  or writing, or out of memory;
* exit status 130, interrupted by Ctrl-C (training saves a checkpoint at the first Ctrl-C and
  says so; a second one stops at once); 143 for a training stopped by SIGTERM (it saves too).
"""
from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import evaluate as _evaluate
from . import masks as _masks

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130
MAX_EVAL_SIZE = 1024  # eval holds its test crops in memory: 138 x 3 x size**2 float32
METHODS = {  # --method choice -> name in evaluate.BASELINES (None: the trained model)
    "model": None,
    "telea": "OpenCV Telea",
    "navier-stokes": "OpenCV Navier-Stokes",
    "biharmonic": "scikit-image biharmonic",
    "harmonic": "harmonic fill",
    "mean": "mean fill",
}


class CommandError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def _check_device(name: str | None) -> str | None:
    """``--device`` value -> itself, or CommandError when this machine does not have it
    (checked before any checkpoint is read, so the message names the device, not the file)."""
    if name is None:
        return None
    from .inference import check_device

    try:
        check_device(name, "--device")
    except ValueError as e:
        raise CommandError(str(e)) from None
    return name


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
    if result["status"] != "interrupted":
        return 0
    # 128 + the signal's number, as shells report it (Ctrl-C: 130, SIGTERM: 143)
    signame = result.get("signal")
    return 128 + signal.Signals[signame].value if signame else EXIT_INTERRUPTED


def _refuse_non_finite(module, inputs, output) -> None:
    """Forward hook: a generator output with NaN or inf is an error, not a score."""
    if not bool(torch.isfinite(output).all()):
        raise CommandError("the model's output contains NaN or infinite values: its weights "
                           "are corrupt or diverged; no scores are reported")


def cmd_eval(args):
    from . import checkpoint

    if args.n is not None and args.n < 1:
        raise CommandError(f"--n {args.n}: the number of test images must be positive")
    generator, size, multiple = None, args.size, 16  # 16: the default generator's 2**depth
    if args.checkpoint is not None:
        generator = checkpoint.load_generator(args.checkpoint, map_location=args.device or "cpu",
                                              allow_unverified=args.allow_unverified_checkpoint)
        generator.register_forward_hook(_refuse_non_finite)
        multiple = 2 ** generator.depth
        if size is None:  # evaluate at the resolution the model was trained at
            size = generator.image_size
    size = 128 if size is None else size
    if size < 1 or size % multiple or size > MAX_EVAL_SIZE:
        why = " (2**depth of the model)" if generator is not None else ""
        raise CommandError(f"--size {size}: the image size must be a positive multiple of "
                           f"{multiple}{why}, at most {MAX_EVAL_SIZE}")
    _, table = _evaluate.evaluate_default(generator, n=args.n, mask_family=args.masks,
                                          seed=args.seed, size=size,
                                          device=args.device or "cpu", progress=not args.quiet)
    print(table)
    return 0


def _check_input_file(path: Path) -> None:
    if path.is_dir():
        raise CommandError(f"{path}: is a directory, not an image file")
    if not path.is_file():
        raise CommandError(f"{path}: no such file")


def _read(path: Path, read, what: str):
    """``read(path)`` with every failure as one CommandError; images larger than PIL's
    decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) are refused, not just warned about."""
    _check_input_file(path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            result = read(path)
        for w in caught:  # (those of a read that failed are not shown: the error says it all)
            warnings.warn(f"{path}: {w.message}", w.category, stacklevel=2)
        return result
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise CommandError(f"{path}: too large to read safely ({e})") from None
    except MemoryError:
        raise MemoryError(f"{path}: not enough memory to read it") from None
    except RecursionError as e:
        raise CommandError(f"{path}: too large to read ({type(e).__name__})") from None
    except ValueError as e:
        raise CommandError(f"{path}: {e}") from None
    except Exception as e:  # PIL raises many types for broken files (OSError, SyntaxError...)
        raise CommandError(f"{path}: not a readable {what} ({type(e).__name__}: {e})") from None


def _read_image(path) -> tuple[np.ndarray, dict]:
    """An image file as :func:`pconv_torch.inference.read_image` returns it (mode kept), and
    its ICC profile and DPI (``with_info``)."""
    from .inference import read_image

    return _read(Path(path), lambda p: read_image(p, with_info=True), "image")


def _hole_file(path) -> np.ndarray:
    """:func:`pconv_torch.masks.hole_from_image` of a file holding one image."""
    from .inference import check_single_frame

    with Image.open(path) as im:
        check_single_frame(im)
    return _masks.hole_from_image(path)


def _read_hole(path, shape) -> np.ndarray:
    """A mask file (white = fill) as an (H, W) bool hole map, True = fill; checked against
    the image's (H, W) and for holes and known pixels."""
    path = Path(path)
    hole = _read(path, _hole_file, "mask image")
    if hole.shape != tuple(shape):
        raise CommandError(f"{path}: mask is {hole.shape[1]}x{hole.shape[0]} but the image is "
                           f"{shape[1]}x{shape[0]} (width x height); they must match")
    if not hole.any():
        raise CommandError(f"{path}: the mask has no hole (no white pixels): nothing to fill")
    if hole.all():
        raise CommandError(f"{path}: the mask is all hole (white everywhere): no known pixels "
                           "to fill from")
    return hole


def _output_format(out: Path) -> str:
    """PIL format name for ``out``; CommandError unless it can be written there."""
    if out.is_dir():
        raise CommandError(f"{out}: is a directory; give an image file name, e.g. "
                           f"{out / 'filled.png'}")
    parent = out.parent
    if parent.exists() and not parent.is_dir():
        raise CommandError(f"{out}: cannot write there, {parent} is a file, not a directory")
    if not parent.is_dir():
        raise CommandError(f"{out}: cannot write there, no such directory {parent}")
    fmt = Image.registered_extensions().get(out.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise CommandError(f"{out}: unknown image extension {out.suffix!r} (use .png, .jpg, ...)")
    return fmt


# Formats that compress with loss by design: writing to them is allowed, with a warning that
# says how many known pixels change. Any other change (size, mode, bit depth, palette) is refused.
LOSSY_FORMATS = {"JPEG", "WEBP", "JPEG2000", "MPO", "AVIF", "HEIF"}


def _describe(a: np.ndarray) -> str:
    """(H, W[, C]) array -> e.g. '640x480 8-bit RGB'."""
    kinds = {1: "grayscale", 2: "grayscale + alpha", 3: "RGB", 4: "RGBA"}
    channels = 1 if a.ndim == 2 else a.shape[2]
    return (f"{a.shape[1]}x{a.shape[0]} {8 * a.dtype.itemsize}-bit "
            f"{kinds.get(channels, f'{channels}-channel')}")


def _encode(pixels: np.ndarray, out: Path, fmt: str, info: dict,
            hole: np.ndarray | None = None) -> bytes:
    """``pixels`` encoded as ``fmt`` (with ``info``: ICC profile, DPI), checked by decoding
    it again. CommandError when ``fmt`` cannot store the image or would change its size, mode
    or bit depth, or (for a lossless format) any pixel; for a lossy format (JPEG, WebP...),
    a warning on stderr naming how many known pixels (outside ``hole``, True = filled) change.
    """
    from .inference import _pixels

    buf = io.BytesIO()
    try:
        Image.fromarray(pixels).save(buf, format=fmt, **info)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CommandError(f"{out}: {fmt} cannot store this {_describe(pixels)} image ({e}); "
                           "use .png, which keeps it unchanged") from None
    data = buf.getvalue()
    try:
        with Image.open(io.BytesIO(data)) as im:
            back = _pixels(im)
    except (OSError, ValueError):
        raise CommandError(f"{out}: {fmt} files cannot be read back to check that they keep "
                           f"this {_describe(pixels)} image unchanged; use .png") from None
    if back.shape != pixels.shape or back.dtype != pixels.dtype:
        raise CommandError(f"{out}: {fmt} would store this {_describe(pixels)} image as "
                           f"{_describe(back)}; use .png, which keeps it unchanged")
    changed = back != pixels
    if changed.ndim == 3:
        changed = changed.any(axis=2)
    known = changed if hole is None else changed & ~hole
    if changed.any() and fmt not in LOSSY_FORMATS:
        raise CommandError(f"{out}: {fmt} would change {int(changed.sum()):,} pixels of this "
                           f"{_describe(pixels)} image (it cannot store their values exactly); "
                           "use .png, which keeps it unchanged")
    if known.any():
        total = known.size if hole is None else int((~hole).sum())
        warnings.warn(f"{out}: {fmt} is lossy: {int(known.sum()):,} of {total:,} known pixels "
                      "will differ from the input's; use .png to keep them unchanged",
                      stacklevel=2)
    return data


def cmd_inpaint(args):
    from . import inference

    if args.method != "model" and (args.checkpoint or args.model):
        raise CommandError(f"--{'checkpoint' if args.checkpoint else 'model'} is for "
                           f"--method model, not --method {args.method}")
    if args.checkpoint is not None and args.model is not None:
        raise CommandError("--model and --checkpoint both name a model: give one of them")
    out = Path(args.output)
    fmt = _output_format(out)
    pixels, info = _read_image(args.image)  # (H, W[, C]) uint8 / uint16, as in the file
    hole = _read_hole(args.mask, pixels.shape[:2])
    with warnings.catch_warnings():  # before the work: can fmt store such an image at all?
        warnings.simplefilter("ignore")  # (lossy: said once, of the result)
        _encode(pixels[:64, :64], out, fmt, info)
    # checked here, so handed over as they are: the model resolved once, the hole as read
    if args.method == "model":
        generator = inference.resolve_model(
            shipped=args.model, checkpoint=args.checkpoint,
            allow_unverified=args.allow_unverified_checkpoint)
        result = inference.fill_checked(pixels, hole, generator, device=args.device or "cpu",
                                        blend=None if args.no_blend else "poisson",
                                        gate=not args.no_gate)
    else:
        result = inference.fill_checked(pixels, hole, method=METHODS[args.method])
    # Known pixels (and alpha everywhere) come back exactly as they were read.
    data = _encode(result, out, fmt, info, hole)
    _write_atomically(data, out)
    holes = int(hole.sum())
    print(f"filled {holes} pixels ({holes / hole.size:.1%}) with {args.method}: {out}")
    return 0


def _write_atomically(data: bytes, out: Path) -> None:
    """Write to a temporary file beside ``out``, then rename it: an existing ``out`` is
    replaced only by a complete file (never left truncated, e.g. on a full disk); a symbolic
    link ``out`` keeps pointing where it did. OSError naming ``out`` (exit status 1)."""
    from .fileio import atomic_write

    try:
        with atomic_write(out) as f:
            f.write(data)
    except OSError as e:
        err = OSError(e.errno, f"cannot write the result ({e.strerror or e}); nothing was "
                      "written")
        err.filename = str(out)
        raise err from None


def cmd_bench(args):
    from . import benchmark

    benchmark.main(["--quick"] if args.quick else [])
    return 0


# ----------------------------------------------------------------------------- parser
UNVERIFIED = ("load a checkpoint that has no SHA-256 digests (written by an older pconv_torch, "
              "or altered): its tensors cannot be verified; only for files you trust")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one CommandError (one line, exit status 2), not
    a usage block."""

    def error(self, message):
        raise CommandError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pconv", description="Partial-convolution GAN inpainting (the poster's model).")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train G and D in the poster's three phases")
    p.add_argument("--preset", default="ci", help="ci (a smoke test), book (the notebooks' "
                   "live runs), cpu (the shipped 64x64 models' recipe), gpu (the shipped 128x128 "
                   "model's, for a GPU) or paper (the poster's schedule, for a GPU); default: ci")
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
    p.add_argument("--allow-unverified-checkpoint", action="store_true", help=UNVERIFIED)
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("inpaint", help="fill the white region of MASK in IMAGE")
    p.add_argument("image", help="image file (any size; RGB, RGBA, grayscale, 16-bit "
                   "grayscale: the output keeps the mode)")
    p.add_argument("--mask", required=True, help="mask image, white = region to fill")
    p.add_argument("-o", "--output", required=True, help="output image file (PNG recommended)")
    p.add_argument("--checkpoint", help="run directory or checkpoint.pt from 'pconv train' "
                   "(default: a shipped model, see --model)")
    p.add_argument("--model", help="shipped model name (default: full, the 64x64 full "
                   "model, at every image size); see pconv_torch.pretrained()")
    p.add_argument("--method", default="model", choices=list(METHODS),
                   help="a trained model (default) or a classical method")
    p.add_argument("--no-blend", action="store_true", help="paste the model's fill as it is "
                   "(default: Poisson-blend it into the hole's surroundings)")
    p.add_argument("--no-gate", action="store_true", help="the model's fill everywhere "
                   "(default: the biharmonic fill where the hole's surroundings are smooth)")
    p.add_argument("--device", help="device for the model (default: cpu)")
    p.add_argument("--allow-unverified-checkpoint", action="store_true", help=UNVERIFIED)
    p.set_defaults(run=cmd_inpaint)

    p = sub.add_parser("bench", help="time PartialConv2d against nn.Conv2d")
    p.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    p.set_defaults(run=cmd_bench)
    return parser


def _cli_advice(e) -> str:
    """An error's text, one line, with its advice in the command line's terms (``--out``,
    ``--restart``, ``--set``) instead of the Python API's."""
    text = " ".join(str(e).split())
    for api, cli in (("another out_dir", "another --out directory, or --restart"),
                     ("a lower lr_g / lr_d", "a lower lr_g / lr_d (--set lr_g=... --set lr_d=...)"),
                     ("use another output directory or resume=False",
                      "use another --out directory, or --restart to start afresh"),
                     ("with allow_unverified=True (command line: --allow-unverified-checkpoint)",
                      "with --allow-unverified-checkpoint")):
        text = text.replace(api, cli)
    return text


def _error(message: str, status: int) -> int:
    print(f"pconv: error: {' '.join(str(message).split())}", file=sys.stderr)
    return status


def _exit_at_next_ctrl_c() -> None:
    """From now on a Ctrl-C ends the process at once, status 130, without a traceback (one
    arriving while the interpreter shuts down would otherwise print one)."""
    def handler(signum, frame):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(EXIT_INTERRUPTED)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failed, 2 bad input, 130
    interrupted). Every failure is reported here, as one line on stderr. ``argv=None``
    (the ``pconv`` program) reads ``sys.argv`` and, once the command is over, lets a further
    Ctrl-C end the process at once."""
    try:
        return _main(argv)
    finally:
        if argv is None:
            _exit_at_next_ctrl_c()


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """``warnings.showwarning`` for the command line: ``pconv: warning: ...``, one line."""
    print(f"pconv: warning: {' '.join(str(message).split())}", file=sys.stderr)


def _main(argv) -> int:
    args = None
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            try:
                args = build_parser().parse_args(argv)
                if getattr(args, "device", None) is not None:
                    args.device = _check_device(args.device)
                return args.run(args)
            except KeyboardInterrupt:
                if args is None or args.command != "train":  # training reports its own
                    print("pconv: interrupted", file=sys.stderr)
                return EXIT_INTERRUPTED
            except (MemoryError, torch.OutOfMemoryError) as e:  # RAM, or a GPU's memory
                why = f": {' '.join(str(e).split())[:300]}" if str(e) else ""
                return _error(f"out of memory{why}; try a smaller image or fewer holes, or "
                              "a machine with more memory", EXIT_FAILED)
            except (CommandError, ValueError, FileNotFoundError, NotADirectoryError,
                    IsADirectoryError) as e:
                return _error(_cli_advice(e), EXIT_BAD_INPUT)
            except Exception as e:
                from .training import TrainingDiverged

                if isinstance(e, TrainingDiverged):
                    return _error(_cli_advice(e), EXIT_FAILED)
                if isinstance(e, OSError):
                    name = f" {e.filename}:" if getattr(e, "filename", None) else ""
                    return _error(f"{name} {e.strerror or e}", EXIT_FAILED)
                raise
    except KeyboardInterrupt:  # a second Ctrl-C while the first was being handled
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
