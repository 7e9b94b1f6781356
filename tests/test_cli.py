"""The `pconv` command line end to end on the `ci` preset, and one clear error per bad input."""
import numpy as np
import pytest
from PIL import Image

from pconv_torch.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished `ci` training run (a few seconds)."""
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--preset", "ci", "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    assert (out / "checkpoint.pt").is_file()
    return out


def write_pair(tmp_path, size=(53, 41), mode="RGB", hole=(10, 12, 20, 25)):
    """An odd-sized photo-like image and a mask image with a white rectangle (= region to fill)."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 127 // (w + h)], -1).astype(np.uint8)
    image = Image.fromarray(rgb).convert(mode)
    image_path = tmp_path / f"image_{mode}.png"
    image.save(image_path)
    mask = np.zeros((h, w), np.uint8)
    y0, x0, y1, x1 = hole
    mask[y0:y1, x0:x1] = 255
    mask_path = tmp_path / "mask.png"
    Image.fromarray(mask).save(mask_path)
    return image_path, mask_path, rgb, mask > 0


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_inpaint_with_trained_model_keeps_known_pixels(run_dir, tmp_path, mode, capsys):
    image_path, mask_path, rgb, hole = write_pair(tmp_path, mode=mode)
    out = tmp_path / "out.png"
    assert main(["inpaint", str(image_path), "--mask", str(mask_path), "-o", str(out),
                 "--checkpoint", str(run_dir)]) == 0
    result = np.asarray(Image.open(out))
    assert Image.open(out).mode == mode  # the output keeps the input's mode
    expected_known = np.asarray(Image.open(image_path))
    assert result.shape == expected_known.shape  # cropped back to the odd input size
    np.testing.assert_array_equal(result[~hole], expected_known[~hole])
    assert "filled" in capsys.readouterr().out


@pytest.mark.parametrize("flags, gate", [([], True), (["--no-gate"], False)])
def test_inpaint_gate_flag(tmp_path, flags, gate):
    """``pconv inpaint`` gates the shipped model's fill by default; ``--no-gate`` does not:
    each gives what ``pconv_torch.inpaint`` gives with that ``gate``."""
    from pconv_torch import inpaint

    image_path, mask_path, rgb, hole = write_pair(tmp_path, size=(80, 72), hole=(20, 24, 50, 56))
    out = tmp_path / "out.png"
    assert main(["inpaint", str(image_path), "--mask", str(mask_path), "-o", str(out),
                 *flags]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(out)), inpaint(rgb, hole, gate=gate))
    assert not np.array_equal(inpaint(rgb, hole, gate=True), inpaint(rgb, hole, gate=False))


def test_inpaint_with_classical_method_needs_no_checkpoint(tmp_path):
    image_path, mask_path, rgb, hole = write_pair(tmp_path)
    out = tmp_path / "telea.png"
    assert main(["inpaint", str(image_path), "--mask", str(mask_path), "-o", str(out),
                 "--method", "telea"]) == 0
    result = np.asarray(Image.open(out)).astype(int)
    np.testing.assert_array_equal(result[~hole], rgb[~hole])
    # a smooth gradient is easy to continue into the hole
    assert np.abs(result[hole] - rgb[hole].astype(int)).mean() < 12


def test_eval_prints_model_and_baselines(run_dir, capsys):
    assert main(["eval", str(run_dir), "--n", "3", "--quiet"]) == 0
    table = capsys.readouterr().out
    for name in ("PConv GAN", "mean fill", "OpenCV Telea", "OpenCV Navier-Stokes",
                 "scikit-image biharmonic"):
        assert name in table


def test_train_resumes_finished_run(run_dir, capsys):
    assert main(["train", "--preset", "ci", "--out", str(run_dir), "--quiet"]) == 0
    assert "finished" in capsys.readouterr().out


def _error(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("pconv: error: ")
    return err[0]


def test_bad_inputs_give_one_clear_line(run_dir, tmp_path, capsys):
    image_path, mask_path, _, _ = write_pair(tmp_path)
    out = str(tmp_path / "o.png")
    ckpt = ["--checkpoint", str(run_dir)]
    assert "no such file" in _error(["inpaint", str(tmp_path / "missing.png"), "--mask",
                                     str(mask_path), "-o", out] + ckpt, capsys)
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not a picture")
    assert "not a readable image" in _error(["inpaint", str(garbage), "--mask", str(mask_path),
                                             "-o", out] + ckpt, capsys)
    small_mask = tmp_path / "small.png"
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(small_mask)
    assert "must match" in _error(["inpaint", str(image_path), "--mask", str(small_mask), "-o",
                                   out] + ckpt, capsys)
    w, h = Image.open(image_path).size
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((h, w), np.uint8)).save(empty)
    assert "no hole" in _error(["inpaint", str(image_path), "--mask", str(empty), "-o", out]
                               + ckpt, capsys)
    full = tmp_path / "full.png"
    Image.fromarray(np.full((h, w), 255, np.uint8)).save(full)
    assert "all hole" in _error(["inpaint", str(image_path), "--mask", str(full), "-o", out]
                                + ckpt, capsys)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes((run_dir / "checkpoint.pt").read_bytes()[:200])
    assert "corrupt.pt" in _error(["inpaint", str(image_path), "--mask", str(mask_path), "-o",
                                   out, "--checkpoint", str(corrupt)], capsys)
    assert "unknown pretrained model 'nope'" in _error(
        ["inpaint", str(image_path), "--mask", str(mask_path), "-o", out, "--model", "nope"], capsys)
    assert "unknown preset" in _error(["train", "--preset", "gpu-huge", "--out",
                                       str(tmp_path / "r")], capsys)
    assert "lr_gg" in _error(["train", "--set", "lr_gg=1", "--out", str(tmp_path / "r")], capsys)
    assert "no such directory" in _error(["train", "--data", str(tmp_path / "nowhere"), "--out",
                                          str(tmp_path / "r")], capsys)
    assert "checkpoint not found" in _error(["eval", str(tmp_path / "nothing")], capsys)


def test_train_help_names_every_preset(capsys):
    from pconv_torch.config import PRESETS

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(f"{name} (" in text for name in PRESETS), text
