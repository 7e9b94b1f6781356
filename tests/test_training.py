"""Three-phase training: presets, each phase's loss, checkpoints, exact resume, NaN, Ctrl-C.

Everything runs at 32x32 with tiny widths on CPU (a few seconds in all). Exactness tests use
torch.equal on every parameter and buffer: on CPU a stopped-and-resumed run must end with
bit-identical weights.
"""

import csv
import os
import re
import signal

import pytest
import torch

from pconv_torch import losses, training
from tiny_runs import smooth_images, tiny
from pconv_torch.training import (
    PRESETS,
    TrainConfig,
    TrainingDiverged,
    load_checkpoint,
    load_config,
    load_generator,
    save_checkpoint,
    train,
)


@pytest.fixture(scope="module")
def images():
    return smooth_images()


def state_of(path):
    st = load_checkpoint(path)
    return st["generator"], st["discriminator"]


def assert_same_weights(a, b):
    for (ga, da), (gb, db) in [(a, b)]:
        for sa, sb in ((ga, gb), (da, db)):
            assert sa.keys() == sb.keys()
            for k in sa:
                assert torch.equal(sa[k], sb[k]), k


def read_log(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- configuration ---------------------------------------------------------------------
def test_presets_and_config_errors():
    assert set(PRESETS) == {"ci", "book", "cpu", "gpu", "paper"}
    paper = PRESETS["paper"]
    assert (paper.image_size, paper.width, paper.iterations) == (128, 1.0, (25000, 6000, 94000))
    assert load_config("ci", lr_g="1/2000", betas="0.5, 0.9", local="false").lr_g == 1 / 2000
    assert load_config("ci", betas="0.5,0.9").betas == (0.5, 0.9)
    assert load_config("ci", norm="none").norm is None
    with pytest.raises(ValueError, match="unknown preset 'tpu'"):
        load_config("tpu")
    with pytest.raises(ValueError, match="did you mean lr_g"):
        load_config("ci", lr_gg=1e-3)
    for bad in (dict(image_size=48), dict(conv="fancy"), dict(lr_d=-1.0), dict(masks="blob"),
                dict(batch_size="two"), dict(betas=(0.5, 1.5)), dict(balance=1.5)):
        with pytest.raises(ValueError, match="TrainConfig"):
            load_config("ci", **bad)
    cfg = load_config("cpu")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_overrides_are_read_as_the_annotated_type():
    cfg = load_config("ci", seed="1e3", depth=" 4 ", norm="None", adv_weight="1/2000",
                      betas="(0.5, 9/10)", tensorboard="on", data="some folder ")
    assert (cfg.seed, cfg.depth, cfg.norm, cfg.adv_weight) == (1000, 4, None, 1 / 2000)
    assert (cfg.betas, cfg.tensorboard, cfg.data) == ((0.5, 0.9), True, "some folder ")
    assert load_config("ci", width=1).width == 1.0 and isinstance(load_config("ci", width=1).width,
                                                                    float)
    for key, text, typ in (("seed", "2.5", "int"), ("local", "maybe", "bool"),
                           ("lr_g", "fast", "float"), ("betas", "0.5,x", "tuple[float, float]")):
        with pytest.raises(ValueError, match=re.escape(f"TrainConfig.{key}: cannot read "
                                                       f"{text!r} as {typ}")):
            load_config("ci", **{key: text})
    cfg = load_config("ci")
    assert cfg.validate() is cfg and cfg == load_config("ci")  # validate() only checks


# -- end to end --------------------------------------------------------------------------
def test_ci_preset_end_to_end(tmp_path):
    pytest.importorskip("skimage")  # the embedded photographs
    r = train("ci", out_dir=tmp_path, progress=False)
    cfg = PRESETS["ci"]
    assert r["status"] == "finished" and r["step"] == cfg.total_steps and r["phase"] == 3
    assert {"l_mse", "l_d", "l_g", "l_adv", "l_hole", "l_valid"} <= set(r["losses"])
    rows = read_log(tmp_path / "log.csv")
    assert [int(row["step"]) for row in rows] == list(range(1, cfg.total_steps + 1))
    assert {row["phase"] for row in rows} == {"1", "2", "3"}
    assert rows[0]["l_d"] == "" and rows[-1]["l_d"] != ""
    pngs = sorted((tmp_path / "samples").glob("*.png"))
    assert pngs and r["last_sample"] == str(pngs[-1])
    from PIL import Image

    w, h = Image.open(pngs[-1]).size
    assert (h, w) == (4 * 34 + 2, cfg.n_samples * 34 + 2)  # rows: input, output, composite, truth
    g = load_generator(tmp_path)
    from pconv_torch.data import EmbeddedPhotos

    assert torch.allclose(g.fill, EmbeddedPhotos("train", size=32).fill_mean())
    x = torch.rand(1, 3, 32, 32)
    m = torch.ones(1, 1, 32, 32)
    m[..., 8:20, 8:20] = 0
    assert g(x, m).shape == (1, 3, 32, 32)
    # finished: a second call resumes, finds nothing to do and changes nothing
    before = state_of(tmp_path)
    assert train("ci", out_dir=tmp_path, progress=False)["step"] == cfg.total_steps
    assert_same_weights(before, state_of(tmp_path))


def test_each_phase_lowers_its_loss(tmp_path, images):
    """Overfit 4 fixed images with fixed masks: L_MSE falls in phase 1, L_D in phase 2;
    phase 3 runs and changes both networks."""
    x = images[:4]
    m = torch.ones(4, 1, 32, 32)
    for i, (y, xx) in enumerate([(4, 4), (10, 14), (16, 6), (8, 18)]):
        m[i, :, y:y + 10, xx:xx + 10] = 0
    cfg = tiny(batch_size=4, phase1_iters=30, phase2_iters=20, phase3_iters=3,
               lr_g=3e-3, lr_d=1e-3, checkpoint_every=50)
    r = train(cfg, data=(x, m), out_dir=tmp_path, progress=False, max_steps=50)
    assert r["status"] == "stopped" and r["step"] == 50
    after_p2 = state_of(tmp_path)
    rows = read_log(tmp_path / "log.csv")
    p1 = [float(r["l_mse"]) for r in rows if r["phase"] == "1"]
    p2 = [float(r["l_d"]) for r in rows if r["phase"] == "2"]
    assert sum(p1[-3:]) < 0.7 * sum(p1[:3]), p1
    assert sum(p2[-3:]) < sum(p2[:3]) - 0.02, p2
    r = train(cfg, data=(x, m), out_dir=tmp_path, progress=False)
    assert r["status"] == "finished" and {"l_g", "l_adv", "l_d"} <= set(r["losses"])
    g0, d0 = after_p2
    g1, d1 = state_of(tmp_path)
    assert any(not torch.equal(g0[k], g1[k]) for k in g0)
    assert any(not torch.equal(d0[k], d1[k]) for k in d0)


def test_balance_can_be_left_out_of_the_adversarial_phase(tmp_path, images):
    """By default (``balance_in_phase3=False``) phase 3 trains on the poster's L_MSE, so a
    run that starts in phase 3 ends with the same generator as ``balance=0``; with the balance
    kept in phase 3 it ends elsewhere."""
    x, m = images[:4], torch.ones(4, 1, 32, 32)
    m[:, :, 8:20, 6:22] = 0

    def generator_after(name, **kw):
        cfg = tiny(batch_size=4, phase1_iters=0, phase2_iters=1, phase3_iters=2, **kw)
        train(cfg, data=(x, m), out_dir=tmp_path / name, progress=False)
        return state_of(tmp_path / name)[0]

    poster = generator_after("poster")
    left_out = generator_after("left_out", balance=0.5)
    kept = generator_after("kept", balance=0.5, balance_in_phase3=True)
    assert all(torch.equal(poster[k], left_out[k]) for k in poster)
    assert any(not torch.equal(poster[k], kept[k]) for k in poster)


# -- resume ------------------------------------------------------------------------------
def test_resume_is_exact(tmp_path, images, monkeypatch):
    """Uninterrupted vs stopped inside phase 3 and resumed, vs crashed (no save) and resumed
    from the periodic checkpoint, vs Ctrl-C (saved at the end of the step) and resumed."""
    cfg = tiny(checkpoint_every=2)  # steps 0-2 phase 1, 3-4 phase 2, 5-7 phase 3
    ref = tmp_path / "ref"
    train(cfg, data=images, out_dir=ref, progress=False)
    want = state_of(ref)

    stop = tmp_path / "stop"
    assert train(cfg, data=images, out_dir=stop, progress=False, max_steps=6)["step"] == 6
    assert load_checkpoint(stop)["phase"] == 3
    assert train(cfg, data=images, out_dir=stop, progress=False)["status"] == "finished"
    assert_same_weights(want, state_of(stop))
    assert len(read_log(stop / "log.csv")) == cfg.total_steps

    real_mse = losses.mse_weighted

    def failing_at(n, action):
        calls = {"n": 0}

        def mse(*a, **k):
            calls["n"] += 1
            if calls["n"] == n:
                action()
            return real_mse(*a, **k)
        return mse

    def crash():
        raise RuntimeError("simulated crash")

    crashed = tmp_path / "crash"
    # phase 1 calls mse_weighted once per step; phase 2 once; phase 3 twice: call 9 is step 7
    monkeypatch.setattr(losses, "mse_weighted", failing_at(9, crash))
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg, data=images, out_dir=crashed, progress=False)
    assert load_checkpoint(crashed)["step"] == 6  # the last periodic checkpoint
    monkeypatch.setattr(losses, "mse_weighted", real_mse)
    train(cfg, data=images, out_dir=crashed, progress=False)
    assert_same_weights(want, state_of(crashed))
    assert [int(r["step"]) for r in read_log(crashed / "log.csv")] == list(range(1, 9))

    ctrl_c = tmp_path / "ctrl_c"
    monkeypatch.setattr(losses, "mse_weighted",
                        failing_at(7, lambda: os.kill(os.getpid(), signal.SIGINT)))
    r = train(cfg, data=images, out_dir=ctrl_c, progress=False)
    assert r["status"] == "interrupted" and r["step"] == 6  # the step in progress completed
    assert r["signal"] == "SIGINT"
    assert load_checkpoint(ctrl_c)["step"] == 6
    monkeypatch.setattr(losses, "mse_weighted", real_mse)
    train(cfg, data=images, out_dir=ctrl_c, progress=False)
    assert_same_weights(want, state_of(ctrl_c))


def test_resume_refuses_a_different_model(tmp_path, images):
    train(tiny(), data=images, out_dir=tmp_path, progress=False, max_steps=1)
    with pytest.raises(ValueError, match="cannot resume.*width"):
        train(tiny(width=0.25), data=images, out_dir=tmp_path, progress=False)
    # more iterations are fine: training continues
    r = train(tiny(phase3_iters=4), data=images, out_dir=tmp_path, progress=False)
    assert r["step"] == 9


# -- failures ----------------------------------------------------------------------------
def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path, images, monkeypatch):
    cfg = tiny(checkpoint_every=2)
    real = losses.discriminator_loss
    calls = {"n": 0}

    def poisoned(*a, **k):
        calls["n"] += 1
        out = real(*a, **k)
        return out * float("nan") if calls["n"] == 2 else out  # step 4 (phase 2)

    monkeypatch.setattr(losses, "discriminator_loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"L_D = nan at phase 2.*checkpoint.*step 4") as e:
        train(cfg, data=images, out_dir=tmp_path, progress=False)
    assert (e.value.phase, e.value.step, e.value.term) == (2, 4, "L_D")
    st = load_checkpoint(tmp_path)
    assert st["step"] == 4
    assert all(torch.isfinite(v).all() for v in st["discriminator"].values())


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint({"a": torch.zeros(3)}, path)
    real_save = torch.save

    def broken(obj, f, *a, **k):
        f.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"a": torch.ones(3)}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert os.listdir(tmp_path) == ["checkpoint.pt"]  # no temporary file left behind
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.zeros(3))


def test_bad_checkpoints_give_one_clear_error(tmp_path, images):
    train(tiny(), data=images, out_dir=tmp_path / "run", progress=False, max_steps=1)
    good = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    cases = {"truncated.pt": good[: len(good) // 2], "garbage.pt": b"not a checkpoint at all"}
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    for name in ("truncated.pt", "garbage.pt", "other.pt"):
        with pytest.raises(ValueError, match=name):
            load_generator(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    # a corrupt checkpoint in out_dir stops a resume with the same error
    (tmp_path / "run" / "checkpoint.pt").write_bytes(cases["truncated.pt"])
    with pytest.raises(ValueError, match="checkpoint.pt"):
        train(tiny(), data=images, out_dir=tmp_path / "run", progress=False)


def test_bad_data(tmp_path):
    with pytest.raises(ValueError, match=r"expected \(3, 32, 32\)"):
        train(tiny(), data=torch.rand(4, 3, 64, 64), out_dir=tmp_path, progress=False)


def test_sample_grid_layout():
    x = torch.rand(3, 3, 8, 8)
    m = torch.ones(3, 1, 8, 8)
    m[..., 2:5, 2:5] = 0
    out = torch.zeros_like(x)
    grid = training.sample_grid(x, m, out, torch.tensor([1.0, 0.0, 0.0]), pad=1)
    assert grid.shape == (4 * 9 + 1, 3 * 9 + 1, 3)
    # row 0 shows the mean fill (red) in the hole, row 1 the output (black)
    assert tuple(grid[1 + 3, 1 + 3]) == (255, 0, 0)
    assert tuple(grid[10 + 3, 1 + 3]) == (0, 0, 0)


def test_cuda_code_paths_on_cpu(images):
    """bf16 autocast and channels-last (used on CUDA) run every phase; exercised here on the
    CPU by switching them on in the trainer."""
    import tempfile

    from pconv_torch.masks import local_boxes

    with tempfile.TemporaryDirectory() as d:
        tr = training._Trainer(tiny(), images, d, False, "cpu", False, None)
        tr.amp, tr.channels_last = True, True
        tr.g.to(memory_format=torch.channels_last)
        tr.d.to(memory_format=torch.channels_last)
        x = images[:2].contiguous(memory_format=torch.channels_last)
        m = torch.ones(2, 1, 32, 32)
        m[..., 4:14, 8:20] = 0
        for phase, keys in ((1, {"l_mse"}), (2, {"l_d"}), (3, {"l_g", "l_d", "l_adv"})):
            terms = tr.train_step(phase, 0, x, m, local_boxes(m, 16))
            assert keys <= set(terms) and all(map(torch.isfinite, map(torch.tensor,
                                                                      terms.values())))


def test_loader_workers(tmp_path, images):
    """num_workers > 0 gives the same weights as loading in the main process."""
    a = train(tiny(phase2_iters=0, phase3_iters=0), data=images, out_dir=tmp_path / "a",
              progress=False)
    b = train(tiny(phase2_iters=0, phase3_iters=0, num_workers=1), data=images,
              out_dir=tmp_path / "b", progress=False)
    assert a["step"] == b["step"] == 3
    assert_same_weights(state_of(tmp_path / "a"), state_of(tmp_path / "b"))


@pytest.mark.cuda
def test_cuda_training_runs(tmp_path, images):
    r = train(tiny(), data=images, out_dir=tmp_path, progress=False, device="cuda")
    assert r["status"] == "finished" and r["device"].startswith("cuda")
    g = load_generator(tmp_path)  # loads on the CPU
    assert g.fill.device.type == "cpu"


def test_weights_that_overflow_are_never_saved_as_good(tmp_path):
    cfg = tiny(phase1_iters=4, phase2_iters=0, phase3_iters=0, checkpoint_every=2)
    train(cfg, out_dir=tmp_path, progress=False, max_steps=2)
    good = load_checkpoint(tmp_path)
    trainer = training._Trainer(cfg, None, tmp_path, True, "cpu", False, None)
    with torch.no_grad():
        trainer.g.layers[0].conv.weight.fill_(float("inf"))  # as a huge learning rate leaves them
    with pytest.raises(TrainingDiverged, match="non-finite weights"):
        trainer.save()
    after = load_checkpoint(tmp_path)
    assert after["step"] == good["step"]
    assert torch.equal(after["generator"]["layers.0.conv.weight"],
                       good["generator"]["layers.0.conv.weight"])


def test_stale_temporary_checkpoints_are_removed_at_start(tmp_path):
    stale = tmp_path / f".{training.CHECKPOINT_NAME}.abc123.tmp"
    tmp_path.mkdir(exist_ok=True)
    stale.write_bytes(b"half a checkpoint")
    train(tiny(phase1_iters=1, phase2_iters=0, phase3_iters=0), out_dir=tmp_path, progress=False)
    assert not stale.exists() and (tmp_path / training.CHECKPOINT_NAME).is_file()


def test_a_garbage_log_row_is_named_on_resume_and_the_log_is_kept(tmp_path):
    cfg = tiny(phase1_iters=4, phase2_iters=0, phase3_iters=0, checkpoint_every=2)
    train(cfg, out_dir=tmp_path, progress=False, max_steps=2)
    log = tmp_path / "log.csv"
    with open(log, "a") as f:
        f.write("not-a-step,1,1\n")
    before = log.read_bytes()
    with pytest.raises(ValueError, match=r"log\.csv: unreadable log row"):
        train(cfg, out_dir=tmp_path, progress=False)
    assert log.read_bytes() == before and not list(tmp_path.glob(".log.csv.*.tmp"))


def test_weight_average_is_the_generator_that_is_kept(tmp_path, images):
    """``ema``: after the first G step the average is 0.1 * initial + 0.9 * trained weights
    (the decay ramps up from 1/10); it resumes exactly and is what load_generator returns."""
    cfg = tiny(ema=0.9, phase1_iters=1, phase2_iters=0, phase3_iters=0)
    train(cfg, data=images, out_dir=tmp_path / "init", progress=False, max_steps=0)
    train(cfg, data=images, out_dir=tmp_path / "one", progress=False)
    init = load_checkpoint(tmp_path / "init")["generator"]
    one = load_checkpoint(tmp_path / "one")
    moved = 0
    for k, w in one["generator"].items():
        want = 0.1 * init[k] + 0.9 * w if k != "fill" else w
        assert torch.allclose(one["generator_ema"][k], want, atol=1e-6), k
        moved += not torch.equal(one["generator_ema"][k], w)
    assert moved > 0  # the average is not the trained weights
    g = load_generator(tmp_path / "one")
    assert all(torch.equal(v, one["generator_ema"][k]) for k, v in g.state_dict().items())

    full = tiny(ema=0.9)
    train(full, data=images, out_dir=tmp_path / "ref", progress=False)
    train(full, data=images, out_dir=tmp_path / "stop", progress=False, max_steps=6)
    train(full, data=images, out_dir=tmp_path / "stop", progress=False)
    a, b = load_checkpoint(tmp_path / "ref"), load_checkpoint(tmp_path / "stop")
    for k in a["generator_ema"]:
        assert torch.equal(a["generator_ema"][k], b["generator_ema"][k]), k
    with pytest.raises(ValueError, match="ema"):
        tiny(ema=1.0)


def test_resume_leaves_the_saved_rng_state_where_an_uninterrupted_run_has_it(tmp_path, images):
    """Creating the data loader on resume draws nothing from the global torch RNG."""
    cfg = tiny()
    train(cfg, data=images, out_dir=tmp_path / "ref", progress=False)
    train(cfg, data=images, out_dir=tmp_path / "stop", progress=False, max_steps=4)
    train(cfg, data=images, out_dir=tmp_path / "stop", progress=False)
    a, b = load_checkpoint(tmp_path / "ref")["rng"], load_checkpoint(tmp_path / "stop")["rng"]
    assert torch.equal(a["torch"], b["torch"])
