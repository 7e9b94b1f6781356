"""Bad inputs and faults, table-driven: each row gives the input, the exit status or exception
expected, a fragment of the message, and the files that must be left unchanged.

The command line runs in-process through ``cli.main(argv)``; faults that would need a long run
(a diverging training, a generator with NaN weights, a missing GPU, Ctrl-C) are injected with
``monkeypatch`` at the function the command calls.
"""
import copy
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from pconv_torch import checkpoint, cli, inference, masks, training
from pconv_torch.networks import Generator
from pconv_torch.partial_conv import PartialConv2d

W, H = 40, 30  # not square: an EXIF rotation changes the size


# ----------------------------------------------------------------------------- fixtures
def _photo(h=H, w=W):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 127 // (w + h)], -1).astype(np.uint8)


def _hole(h=H, w=W):
    hole = np.zeros((h, w), bool)
    hole[8:16, 10:22] = True
    return hole


def _mask_image(hole):
    return Image.fromarray(hole.astype(np.uint8) * 255)


@pytest.fixture
def files(tmp_path):
    """Paths (str) of the inputs the table refers to as {name}."""
    rgb = _photo()
    f = {"dir": tmp_path / "a_folder", "out": tmp_path / "out.png", "run": tmp_path / "run"}
    f["dir"].mkdir()
    Image.fromarray(rgb).save(tmp_path / "image.png")
    alpha = np.tile(np.linspace(0, 255, W).astype(np.uint8), (H, 1))
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    _mask_image(_hole()).save(tmp_path / "mask.png")
    (tmp_path / "garbage.png").write_bytes(b"this is not a picture")
    (tmp_path / "a_file").write_text("a file, not a folder")
    f["out"].write_bytes(b"previous result")
    f["out_jpg"] = tmp_path / "out.jpg"
    f["out_jpg"].write_bytes(b"previous jpeg")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(tmp_path / "gray16.png")
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    frames[0].save(tmp_path / "animated.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "pages.tif", save_all=True, append_images=frames[1:])
    _mask_image(_hole()).save(tmp_path / "masks.tif", save_all=True,
                              append_images=[_mask_image(~_hole())])
    import pickle

    with open(tmp_path / "plain.pt", "wb") as fh:  # a plain pickle, protocol 4: torch warns
        pickle.dump({"format": "pconv-training-checkpoint"}, fh, protocol=4)
    import cv2  # writes 16-bit colour PNGs, which PIL cannot

    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb.astype(np.uint16) * 257)
    for name in ("image", "rgba", "cmyk", "mask", "garbage", "rgb16", "gray16", "animated",
                 "pages", "masks", "plain"):
        f[name] = next(tmp_path.glob(f"{name}.*"))
    f["file_as_dir"] = tmp_path / "a_file" / "out.png"
    f["missing_dir"] = tmp_path / "nowhere" / "out.png"
    f["missing"] = tmp_path / "missing.png"
    f["tmp"] = tmp_path
    return {k: str(v) for k, v in f.items()}


def _nan_generator(tiny_generator):
    g = copy.deepcopy(tiny_generator)
    with torch.no_grad():
        g.layers[0].conv.weight.fill_(float("nan"))
    return g


# Faults injected before the command runs: name -> function(monkeypatch, tiny_generator).
def _nan_model(mp, tiny_generator):
    g = _nan_generator(tiny_generator)
    mp.setattr(checkpoint, "load_generator", lambda path, map_location="cpu", **kw: g)


def _diverge(mp, tiny_generator):
    def train(*args, **kwargs):
        raise training.TrainingDiverged(
            "training diverged: l_g = nan at phase 3, iteration 7 (step 42); the weights were "
            "not updated with it and the last good checkpoint runs/x/checkpoint.pt (step 40) "
            "is kept. To train again, start a new run (another out_dir) with a lower lr_g / lr_d "
            "or a different seed: a run resumes only with the configuration it started with.",
            phase=3, iteration=7, step=42, term="l_g", checkpoint="runs/x/checkpoint.pt")
    mp.setattr(training, "train", train)


def _no_cuda(mp, tiny_generator):
    mp.setattr(torch.cuda, "is_available", lambda: False)


def _bomb_error(mp, tiny_generator):  # more than twice the limit: PIL raises
    mp.setattr(Image, "MAX_IMAGE_PIXELS", W * H // 3)


def _bomb_warning(mp, tiny_generator):  # between the limit and twice it: PIL only warns
    mp.setattr(Image, "MAX_IMAGE_PIXELS", W * H * 2 // 3)


def _interrupt(mp, tiny_generator):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    mp.setattr(training, "train", interrupted)
    mp.setattr(checkpoint, "load_generator", interrupted)
    mp.setattr(inference, "fill_checked", interrupted)


def _graceful_stop(mp, tiny_generator):  # the first Ctrl-C: training saves and returns "interrupted"
    mp.setattr(training, "train", lambda *a, **k: {
        "status": "interrupted", "phase": 1, "iteration": 3, "step": 3, "losses": {},
        "checkpoint": "runs/x/checkpoint.pt", "signal": "SIGINT"})


def _graceful_sigterm(mp, tiny_generator):  # a job scheduler's SIGTERM: training saves, then 128 + 15
    mp.setattr(training, "train", lambda *a, **k: {
        "status": "interrupted", "phase": 1, "iteration": 3, "step": 3, "losses": {},
        "checkpoint": "runs/x/checkpoint.pt", "signal": "SIGTERM"})


def _os_error(number):
    def fault(mp, tiny_generator):  # the file system refuses the result: full, read-only...
        import errno

        from pconv_torch import fileio

        def refuse(*args, **kwargs):
            raise OSError(number, os.strerror(number))
        mp.setattr(fileio.os, "fsync" if number == errno.ENOSPC else "replace", refuse)
    return fault


def _out_of_memory(mp, tiny_generator):
    def inpaint(*args, **kwargs):
        raise MemoryError
    mp.setattr(inference, "fill_checked", inpaint)


def _gpu_out_of_memory(mp, tiny_generator):
    def fail(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB.\n"
                                     "See the documentation for memory management")
    mp.setattr(inference, "fill_checked", fail)
    mp.setattr(training, "train", fail)


def _resume_refused(mp, tiny_generator):
    def train(*args, **kwargs):
        from pconv_torch import checkpoint

        checkpoint.check_resumable({"lr_g": 1.0}, training.load_config("ci"), Path("runs/x"))
    mp.setattr(training, "train", train)


FAULTS = {None: None, "nan_model": _nan_model, "diverge": _diverge, "no_cuda": _no_cuda,
          "bomb_error": _bomb_error, "bomb_warning": _bomb_warning, "interrupt": _interrupt,
          "graceful_stop": _graceful_stop, "graceful_sigterm": _graceful_sigterm,
          "disk_full": _os_error(28), "read_only": _os_error(30), "no_permission": _os_error(13),
          "out_of_memory": _out_of_memory, "gpu_out_of_memory": _gpu_out_of_memory,
          "resume_refused": _resume_refused}

INPAINT = ["inpaint", "{image}", "--mask", "{mask}", "-o", "{out}", "--method", "telea"]
MODEL = ["inpaint", "{image}", "--mask", "{mask}", "-o", "{out}", "--checkpoint", "{run}"]

# (id, argv, fault, exit status, message fragment or None, files that must stay unchanged)
CLI_ROWS = [
    # item 1: non-finite outputs are errors, not results
    ("eval-nan-model", ["eval", "{run}", "--n", "2", "--quiet"], "nan_model", 2,
     "NaN or infinite", []),
    ("inpaint-nan-model", MODEL, "nan_model", 2, "NaN or infinite", ["out"]),
    # item 7: one line, no traceback
    ("train-diverged", ["train", "--out", "{run}", "--quiet"], "diverge", 1,
     "a new run (another --out directory", []),
    ("train-device-tpu", ["train", "--out", "{run}", "--device", "tpu"], None, 2, "tpu", []),
    ("train-device-cuda", ["train", "--out", "{run}", "--device", "cuda"], "no_cuda", 2,
     "CUDA is not available", []),
    ("inpaint-device-cuda", MODEL + ["--device", "cuda"], "no_cuda", 2, "CUDA is not available",
     ["out"]),
    ("eval-device-cuda", ["eval", "{run}", "--device", "cuda:0"], "no_cuda", 2,
     "CUDA is not available", []),
    ("output-parent-is-file", INPAINT[:5] + ["{file_as_dir}"] + INPAINT[6:], None, 2,
     "is a file, not a directory", ["image", "mask"]),
    ("output-parent-missing", INPAINT[:5] + ["{missing_dir}"] + INPAINT[6:], None, 2,
     "no such directory", ["image", "mask"]),
    ("output-is-directory", INPAINT[:5] + ["{dir}"] + INPAINT[6:], None, 2, "is a directory", []),
    ("output-unknown-extension", INPAINT[:5] + ["{tmp}/out.xyz"] + INPAINT[6:], None, 2,
     "unknown image extension", ["out"]),
    ("rgba-into-jpeg", ["inpaint", "{rgba}", "--mask", "{mask}", "-o", "{out_jpg}", "--method",
                        "telea"], None, 2, "JPEG cannot store this 40x30 8-bit RGBA image", ["out_jpg"]),
    ("bomb-mask", INPAINT, "bomb_error", 2, "too large to read safely", ["out"]),
    ("bomb-mask-warning", INPAINT, "bomb_warning", 2, "too large to read safely", ["out"]),
    ("image-is-directory", ["inpaint", "{dir}"] + INPAINT[2:], None, 2, "is a directory", ["out"]),
    ("mask-is-directory", INPAINT[:3] + ["{dir}"] + INPAINT[4:], None, 2, "is a directory",
     ["out"]),
    ("image-missing", ["inpaint", "{missing}"] + INPAINT[2:], None, 2, "no such file", ["out"]),
    ("image-garbage", ["inpaint", "{garbage}"] + INPAINT[2:], None, 2, "not a readable image",
     ["out"]),
    ("mask-garbage", INPAINT[:3] + ["{garbage}"] + INPAINT[4:], None, 2,
     "not a readable mask image", ["out"]),
    ("eval-size-0", ["eval", "--size", "0", "--quiet"], None, 2, "positive multiple of 16", []),
    ("eval-size-24", ["eval", "--size", "24", "--quiet"], None, 2, "positive multiple of 16", []),
    ("eval-size-huge", ["eval", "--size", "32768", "--quiet"], None, 2, "at most 1024", []),
    ("eval-n-0", ["eval", "--n", "0", "--quiet"], None, 2, "must be positive", []),
    # item 8: inputs whose known pixels could not be kept are refused
    ("16-bit-colour", ["inpaint", "{rgb16}"] + INPAINT[2:], None, 2, "16-bit RGB", ["out"]),
    ("cmyk", ["inpaint", "{cmyk}"] + INPAINT[2:], None, 2, "mode CMYK is not supported",
     ["out"]),
    # item 10: Ctrl-C -> 130; training reports its own interruption
    ("ctrl-c-inpaint", MODEL, "interrupt", 130, "pconv: interrupted", ["out"]),
    ("ctrl-c-eval", ["eval", "{run}", "--quiet"], "interrupt", 130, "pconv: interrupted", []),
    ("ctrl-c-train-twice", ["train", "--out", "{run}", "--quiet"], "interrupt", 130, None, []),
    ("ctrl-c-train-once", ["train", "--out", "{run}", "--quiet"], "graceful_stop", 130, None, []),
    ("sigterm-train", ["train", "--out", "{run}", "--quiet"], "graceful_sigterm", 143, None, []),
    # issue 25, item 2: formats that would change the result are refused before writing
    ("gif-palette", INPAINT[:5] + ["{tmp}/out.gif"] + INPAINT[6:], None, 2,
     "GIF would change", ["image"]),
    ("ico-resizes", INPAINT[:5] + ["{tmp}/out.ico"] + INPAINT[6:], None, 2,
     "ICO would store this 40x30 8-bit RGB image as", ["image"]),
    ("icns-resizes", INPAINT[:5] + ["{tmp}/out.icns"] + INPAINT[6:], None, 2,
     "ICNS would store this 40x30 8-bit RGB image as 1024x1024", ["image"]),
    ("webp-16-bit", ["inpaint", "{gray16}"] + INPAINT[2:5] + ["{tmp}/out.webp"] + INPAINT[6:],
     None, 2, "WEBP would store this 40x30 16-bit grayscale image as 40x30 8-bit RGB", []),
    ("jpeg-16-bit", ["inpaint", "{gray16}"] + INPAINT[2:5] + ["{out_jpg}"] + INPAINT[6:],
     None, 2, "JPEG cannot store this 40x30 16-bit grayscale image", ["out_jpg"]),
    # item 7: one line and the status the docstring promises
    ("disk-full", INPAINT, "disk_full", 1, "out.png: cannot write the result (No space left",
     ["out"]),
    ("read-only", INPAINT, "read_only", 1, "out.png: cannot write the result (Read-only file",
     ["out"]),
    ("permission-denied", INPAINT, "no_permission", 1, "cannot write the result (Permission "
     "denied", ["out"]),
    ("out-of-memory", INPAINT, "out_of_memory", 1, "out of memory", ["out"]),
    ("gpu-out-of-memory", INPAINT, "gpu_out_of_memory", 1,
     "out of memory: CUDA out of memory. Tried to allocate 2.00 GiB. See", ["out"]),
    ("train-out-of-memory", ["train", "--out", "{run}", "--quiet"], "gpu_out_of_memory", 1,
     "out of memory", []),
    ("argparse-missing-mask", ["inpaint", "{image}", "-o", "{out}"], None, 2,
     "pconv inpaint: the following arguments are required: --mask", ["out"]),
    ("argparse-unknown-option", INPAINT + ["--bogus"], None, 2, "unrecognized arguments: --bogus",
     ["out"]),
    ("argparse-no-command", [], None, 2, "required: command", []),
    ("argparse-bad-choice", INPAINT[:-1] + ["magic"], None, 2, "invalid choice: 'magic'", ["out"]),
    ("plain-pickle", MODEL[:-1] + ["{plain}"], None, 2, "plain.pt: refused by torch.load", ["out"]),
    ("seed-negative", ["train", "--out", "{run}", "--set", "seed=-1"], None, 2,
     "TrainConfig.seed=-1: must be in [0, 2**32)", []),
    ("seed-huge", ["train", "--out", "{run}", "--set", "seed=1e30"], None, 2,
     "TrainConfig.seed=1000000000000000019884624838656: must be in", []),
    ("resume-advice", ["train", "--out", "{run}", "--quiet"], "resume_refused", 2,
     "use another --out directory, or --restart to start afresh", []),
    ("model-and-checkpoint", MODEL + ["--model", "full"], None, 2,
     "--model and --checkpoint both name a model", ["out"]),
    ("model-with-telea", INPAINT + ["--model", "mse_only"], None, 2,
     "--model is for --method model, not --method telea", ["out"]),
    # item 9: files holding several images are refused, not cut to their first one
    ("animated-gif", ["inpaint", "{animated}"] + INPAINT[2:], None, 2, "holds 2 frames", ["out"]),
    ("multi-page-tiff", ["inpaint", "{pages}"] + INPAINT[2:], None, 2, "holds 2 frames", ["out"]),
    ("multi-page-mask", INPAINT[:3] + ["{masks}"] + INPAINT[4:], None, 2, "holds 2 frames",
     ["out"]),
]


@pytest.mark.parametrize("argv, fault, status, fragment, unchanged",
                         [r[1:] for r in CLI_ROWS], ids=[r[0] for r in CLI_ROWS])
def test_cli_bad_input(files, tiny_generator, monkeypatch, capsys, argv, fault, status, fragment,
                       unchanged):
    if FAULTS[fault] is not None:
        FAULTS[fault](monkeypatch, tiny_generator)
    before = {name: open(files[name], "rb").read() for name in unchanged}
    listing = sorted(p.name for p in Path(files["tmp"]).iterdir())
    code = cli.main([a.format(**files) for a in argv])
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert code == status, captured.err
    if status in (130, 143):  # interrupted: training said so itself, or "pconv: interrupted"
        assert err == ([fragment] if fragment else [])
    else:
        assert len(err) == 1 and err[0].startswith("pconv: error: "), captured.err
        assert fragment in err[0]
        assert "|" not in captured.out  # no results table
    for name, data in before.items():
        assert open(files[name], "rb").read() == data, f"{name} was changed"
    # nothing left behind (no temporary or partial output)
    assert sorted(p.name for p in Path(files["tmp"]).iterdir()) == listing


def test_divergence_advice_is_one_a_resume_accepts(files, tiny_generator, monkeypatch, capsys):
    _diverge(monkeypatch, tiny_generator)
    assert cli.main(["train", "--out", files["run"], "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "another --out directory, or --restart" in err and "--set lr_g=" in err
    assert "runs/x/checkpoint.pt (step 40) is kept" in err


def test_device_error_does_not_blame_the_checkpoint(files, tiny_generator, monkeypatch, capsys):
    _no_cuda(monkeypatch, tiny_generator)
    assert cli.main([a.format(**files) for a in MODEL + ["--device", "cuda"]]) == 2
    err = capsys.readouterr().err
    assert "checkpoint" not in err and files["run"] not in err


# ----------------------------------------------------------------------------- known pixels
def _tiny_shipped(monkeypatch, tiny_generator):
    import pconv_torch.shipped as shipped

    monkeypatch.setattr(shipped, "pretrained", lambda name=None: tiny_generator)


@pytest.mark.parametrize("method", ["model", "telea"])
@pytest.mark.parametrize("kind", ["RGB", "RGBA", "L", "LA", "I;16", "P+transparency"])
def test_cli_keeps_mode_depth_alpha_and_known_pixels(tmp_path, tiny_generator, monkeypatch, kind, method):
    """README: `pconv inpaint` returns the known pixels unchanged (and here: the mode, the
    16-bit depth and the alpha channel of every pixel)."""
    _tiny_shipped(monkeypatch, tiny_generator)
    rgb, hole = _photo(), _hole()
    alpha = np.tile(np.linspace(0, 255, W).astype(np.uint8), (H, 1))
    image = {
        "RGB": lambda: Image.fromarray(rgb),
        "RGBA": lambda: Image.fromarray(np.dstack([rgb, alpha])),
        "L": lambda: Image.fromarray(rgb).convert("L"),
        "LA": lambda: Image.fromarray(np.dstack([rgb[..., 0], alpha])),
        "I;16": lambda: Image.fromarray(rgb[..., 0].astype(np.uint16) * 257 + 3),
        "P+transparency": lambda: Image.fromarray(rgb).quantize(16),
    }[kind]()
    if kind == "P+transparency":
        image.info["transparency"] = 0
    image.save(tmp_path / "in.png")
    _mask_image(hole).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    assert cli.main(["inpaint", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png"),
                     "-o", str(out), "--method", method]) == 0
    with Image.open(tmp_path / "in.png") as im:
        want = np.asarray(im.convert("RGBA") if kind == "P+transparency" else im)
    with Image.open(out) as im:
        got = np.asarray(im)
        assert im.mode == ("RGBA" if kind == "P+transparency" else kind)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got[~hole], want[~hole])
    if got.ndim == 3 and got.shape[2] in (2, 4):  # alpha unchanged, also in the hole
        np.testing.assert_array_equal(got[..., -1], want[..., -1])
    assert not np.array_equal(got[hole], want[hole])  # the hole's colour was filled


def test_exif_orientation_turns_image_and_mask_alike(tmp_path):
    """A phone photo stored sideways with EXIF orientation 6 and its mask saved the same way:
    the hole is filled where the mask marks it on the upright photo."""
    rgb, hole = _photo(), _hole()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(rgb).save(tmp_path / "in.png", exif=exif)
    _mask_image(hole).save(tmp_path / "mask.png", exif=exif)
    out = tmp_path / "out.png"
    assert cli.main(["inpaint", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png"),
                     "-o", str(out), "--method", "telea"]) == 0
    upright = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "in.png")))
    upright_hole = masks.hole_from_image(tmp_path / "mask.png")
    assert upright.shape[:2] == (W, H) and upright_hole.shape == (W, H)
    np.testing.assert_array_equal(upright_hole, np.rot90(hole, -1))
    got = np.asarray(Image.open(out))
    np.testing.assert_array_equal(got[~upright_hole], upright[~upright_hole])
    # an upright mask without EXIF fits the upright photo too
    _mask_image(np.rot90(hole, -1)).save(tmp_path / "upright_mask.png")
    assert cli.main(["inpaint", str(tmp_path / "in.png"), "--mask",
                     str(tmp_path / "upright_mask.png"), "-o", str(out), "--method", "telea"]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(out)), got)


# ----------------------------------------------------------------------------- inpaint() API
@pytest.mark.parametrize("image, message", [
    (Image.new("CMYK", (W, H)), "mode CMYK is not supported"),
    (Image.new("F", (W, H)), "mode F is not supported"),
    (np.zeros((H, W, 3), np.int16), "dtype int16"),
    (np.zeros((H, W, 5), np.uint8), "image must be"),
    (np.full((H, W, 4), np.inf, np.float32), "NaN or infinite"),
])
def test_inpaint_refuses_what_it_cannot_keep(tiny_generator, image, message):
    with pytest.raises(ValueError, match=message):
        inference.inpaint(image, _hole(), model=tiny_generator)


@pytest.mark.parametrize("image", [
    np.dstack([_photo(), np.full((H, W), 7, np.uint8)]),              # RGBA array
    _photo()[..., 0].astype(np.uint16) * 250,                         # 16-bit grayscale array
    _photo().astype(np.float64) / 255,                                # float64
    Image.fromarray(np.dstack([_photo(), np.full((H, W), 9, np.uint8)])),  # RGBA PIL
])
def test_inpaint_returns_known_pixels_and_alpha_unchanged(tiny_generator, image):
    hole = _hole()
    want = np.asarray(image)
    got = inference.inpaint(image, hole, model=tiny_generator)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got[~hole], want[~hole])
    if want.ndim == 3 and want.shape[2] == 4:
        np.testing.assert_array_equal(got[..., 3], want[..., 3])


def _nan_mask():
    m = _hole().astype(np.float32)
    m[0, 0] = np.nan  # a known pixel
    return m


def _manifest(tmp_path, edit):
    """A weights folder holding the shipped ``full`` model with its manifest entry edited."""
    import json
    import shutil

    import pconv_torch.shipped as shipped

    man = shipped.manifest()
    entry = man["models"]["full"]
    shutil.copy(shipped.WEIGHTS_DIR / entry["file"], tmp_path / entry["file"])
    edit(entry)
    (tmp_path / "manifest.json").write_text(json.dumps({"models": {"full": entry}}))
    return tmp_path


# (id, call(tiny_generator, monkeypatch, tmp_path), exception, message fragment)
API_ROWS = [
    ("linear-model", lambda g, mp, tmp: inference.inpaint(_photo(), _hole(),
                                                          model=torch.nn.Linear(3, 3)),
     TypeError, "model: a Linear is not an inpainting generator"),
    ("lambda-model", lambda g, mp, tmp: inference.inpaint(_photo(), _hole(), model=lambda x, m: x),
     TypeError, "model must be .* got function"),
    ("int-model", lambda g, mp, tmp: inference.inpaint(_photo(), _hole(), model=3), TypeError,
     "model must be"),
    ("cuda-without-cuda", lambda g, mp, tmp: (mp.setattr(torch.cuda, "is_available", lambda: False),
                                              inference.inpaint(_photo(), _hole(), model=g,
                                                                device="cuda")),
     ValueError, "device cuda: CUDA is not available"),
    ("unknown-device", lambda g, mp, tmp: inference.inpaint(_photo(), _hole(), model=g,
                                                            device="tpu"),
     ValueError, "device tpu: unknown device"),
    ("nan-in-float-mask", lambda g, mp, tmp: inference.inpaint(_photo(), _nan_mask(), model=g),
     ValueError, "mask contains NaN"),
    ("bfloat16-image", lambda g, mp, tmp: inference.inpaint(
        torch.zeros(H, W, 3, dtype=torch.bfloat16), _hole(), model=g), TypeError,
     "image must be .*bfloat16"),
    ("manifest-unknown-key", lambda g, mp, tmp: __import__("pconv_torch").pretrained(
        "full", weights_dir=_manifest(tmp, lambda e: e["generator"].update(colour=1))),
     ValueError, "manifest.json: model 'full': unknown generator option 'colour'"),
    ("manifest-no-sha256", lambda g, mp, tmp: __import__("pconv_torch").pretrained(
        "full", weights_dir=_manifest(tmp, lambda e: e.pop("sha256"))),
     ValueError, "manifest.json: model 'full': no 'sha256' field"),
    ("manifest-bad-width", lambda g, mp, tmp: __import__("pconv_torch").pretrained(
        "full", weights_dir=_manifest(tmp, lambda e: e["generator"].update(width="wide"))),
     ValueError, "cannot build the manifest's generator"),
]


@pytest.mark.parametrize("call, error, fragment", [r[1:] for r in API_ROWS],
                         ids=[r[0] for r in API_ROWS])
def test_inpaint_api_errors_name_the_argument(tiny_generator, monkeypatch, tmp_path, call, error,
                                              fragment):
    with pytest.raises(error, match=fragment) as e:
        call(tiny_generator, monkeypatch, tmp_path)
    assert type(e.value) is error and "\n" not in str(e.value)


def test_a_tensor_that_requires_grad_is_taken_as_its_values(tiny_generator):
    image = torch.from_numpy(_photo().astype(np.float32) / 255).requires_grad_()
    mask = torch.from_numpy(_hole().astype(np.float32)).requires_grad_()
    got = inference.inpaint(image, mask, model=tiny_generator)
    want = inference.inpaint(_photo().astype(np.float32) / 255, _hole(), model=tiny_generator)
    assert np.array_equal(got, want)


def test_inpaint_refuses_a_nan_generator(tiny_generator):
    with pytest.raises(ValueError, match="NaN or infinite"):
        inference.inpaint(_photo(), _hole(), model=_nan_generator(tiny_generator))


# ----------------------------------------------------------------------------- PartialConv2d
def _x(n=2, c=3):
    return torch.rand(n, c, 8, 8)


def _m(value=1.0, n=2):
    m = torch.ones(n, 1, 8, 8)
    m[:, :, 2:5, 2:5] = 0
    m[:, :, 0, 0] = value
    return m


NAN = float("nan")
LAYER_ROWS = [  # (id, call, exception, message fragment)
    ("mask-0.5", lambda: PartialConv2d(3, 4, 3, padding=1)(_x(), _m(0.5)), ValueError, "binary"),
    ("mask-2", lambda: PartialConv2d(3, 4, 3, padding=1)(_x(), _m(2.0)), ValueError, "binary"),
    ("mask-neg", lambda: PartialConv2d(3, 4, 3, padding=1)(_x(), _m(-1.0)), ValueError, "binary"),
    ("mask-tiny_generator", lambda: PartialConv2d(3, 4, 3, padding=1)(_x(), _m(1e-30)), ValueError,
     "binary"),
    ("mask-nan", lambda: PartialConv2d(3, 4, 3, padding=1)(_x(), _m(NAN)), ValueError, "NaN"),
    ("x-nan-under-hole", lambda: PartialConv2d(3, 4, 3, padding=1)(
        _x().index_put_((torch.tensor(0), torch.tensor(0), torch.tensor(3), torch.tensor(3)),
                        torch.tensor(NAN)), _m()), ValueError, "NaN or infinite"),
    ("x-inf", lambda: PartialConv2d(3, 4, 3, padding=1)(_x() / 0, _m()), ValueError,
     "NaN or infinite"),
    ("numpy-x", lambda: PartialConv2d(3, 4, 3)(_x().numpy(), _m()), TypeError, "torch.Tensor"),
    ("numpy-mask", lambda: PartialConv2d(3, 4, 3)(_x(), _m().numpy()), TypeError, "torch.Tensor"),
    ("numpy-x-functional", lambda: __import__("pconv_torch").partial_conv2d(
        _x().numpy(), _m(), torch.ones(4, 3, 3, 3)), TypeError, "torch.Tensor"),
    ("kernel-0", lambda: PartialConv2d(3, 4, 0), ValueError, "kernel_size must be >= 1"),
    ("kernel-negative", lambda: PartialConv2d(3, 4, (3, -1)), ValueError, "kernel_size"),
    ("stride-0", lambda: PartialConv2d(3, 4, 3, stride=0), ValueError, "stride must be >= 1"),
    ("padding-negative", lambda: PartialConv2d(3, 4, 3, padding=-1), ValueError, "padding"),
    ("channels-0", lambda: PartialConv2d(0, 4, 3), ValueError, "in_channels"),
    ("generator-soft-mask", lambda: Generator(width=0.125)(torch.rand(1, 3, 16, 16),
                                                           torch.full((1, 1, 16, 16), 0.5)),
     ValueError, "binary"),
    ("generator-nan-image", lambda: Generator(width=0.125)(torch.full((1, 3, 16, 16), NAN),
                                                           torch.ones(1, 1, 16, 16)),
     ValueError, "NaN or infinite"),
]


@pytest.mark.parametrize("call, error, fragment", [r[1:] for r in LAYER_ROWS],
                         ids=[r[0] for r in LAYER_ROWS])
def test_partial_conv_contract(call, error, fragment):
    with pytest.raises(error, match=fragment):
        call()


def test_partial_conv_checks_can_be_switched_off():
    layer = PartialConv2d(3, 4, 3, padding=1, check_inputs=False)
    out, new_mask = layer(_x(), _m(1.0))
    assert torch.isfinite(out).all() and bool(((new_mask == 0) | (new_mask == 1)).all())
    assert layer(_x(), _m(0.5))[0].shape == (2, 4, 8, 8)  # unchecked: no error


def test_batch_of_zero_forward_and_backward_like_conv2d():
    layer = PartialConv2d(3, 4, 3, stride=2, padding=1)
    conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
    x = torch.rand(0, 3, 8, 8, requires_grad=True)
    out, new_mask = layer(x, torch.ones(0, 1, 8, 8))
    ref = conv(x)
    assert out.shape == ref.shape == (0, 4, 4, 4) and new_mask.shape == (0, 1, 4, 4)
    out.sum().backward()
    ref.sum().backward()
    assert x.grad.shape == x.shape
    for p, q in ((layer.weight, conv.weight), (layer.bias, conv.bias)):
        assert p.grad is not None and torch.equal(p.grad, torch.zeros_like(q.grad))


# ----------------------------------------------------------------------------- output files
def _inpaint_files(tmp_path, out, image=None, **save):
    """Run `pconv inpaint --method telea` on the test photo (saved with ``save``) into ``out``."""
    (image if image is not None else Image.fromarray(_photo())).save(tmp_path / "in.png", **save)
    _mask_image(_hole()).save(tmp_path / "mask.png")
    return cli.main(["inpaint", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png"),
                     "-o", str(out), "--method", "telea"])


def test_a_lossy_output_format_is_named_before_writing(tmp_path, capsys):
    assert _inpaint_files(tmp_path, tmp_path / "out.jpg") == 0
    err = capsys.readouterr().err.strip().splitlines()
    known = int((~_hole()).sum())
    assert len(err) == 1 and err[0].startswith(f"pconv: warning: {tmp_path / 'out.jpg'}: JPEG "
                                               "is lossy: ")
    assert f"of {known:,} known pixels will differ" in err[0]
    with Image.open(tmp_path / "out.jpg") as im:
        assert im.format == "JPEG" and im.size == (W, H)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_icc_profile_and_dpi_are_kept(tmp_path, ext):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = tmp_path / f"out{ext}"
    assert _inpaint_files(tmp_path, out, icc_profile=icc, dpi=(300, 300)) == 0
    with Image.open(out) as im:
        assert im.info.get("icc_profile") == icc
        assert tuple(round(float(d)) for d in im.info["dpi"]) == (300, 300)


def test_an_output_symlink_stays_a_link_to_the_result(tmp_path):
    real = tmp_path / "real.png"
    real.write_bytes(b"previous result")
    (tmp_path / "link.png").symlink_to(real)
    assert _inpaint_files(tmp_path, tmp_path / "link.png") == 0
    assert (tmp_path / "link.png").is_symlink() and os.readlink(tmp_path / "link.png") == str(real)
    with Image.open(real) as im:
        got = np.asarray(im)
    np.testing.assert_array_equal(got[~_hole()], _photo()[~_hole()])
    assert not list(tmp_path.glob(".*.tmp"))


def test_dpi_follows_an_exif_quarter_turn(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(_photo()).save(tmp_path / "in.png", exif=exif, dpi=(300, 150))
    pixels, info = inference.read_image(tmp_path / "in.png", with_info=True)
    assert pixels.shape[:2] == (W, H)
    assert tuple(round(float(d)) for d in info["dpi"]) == (150, 300)
