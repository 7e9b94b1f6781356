"""Held-out scores written while training (pconv_torch.monitor): eval.csv rows, reference
lines, resume."""

import functools

import numpy as np
import pytest

from pconv_torch import monitor, training


@pytest.fixture
def few_crops(monkeypatch):
    """The trainer's monitor scores 8 crops per split instead of 48 (what the rows hold does
    not depend on how many crops are averaged)."""
    monkeypatch.setattr(training, "GeneralisationMonitor",
                        functools.partial(monitor.GeneralisationMonitor, n=8))


def _tiny(**kw):
    base = dict(image_size=32, width=0.125, d_width=0.25, batch_size=2, phase1_iters=4,
                phase2_iters=1, phase3_iters=2, lr_g=1e-3, lr_d=1e-3, log_every=1,
                sample_every=1000, checkpoint_every=1000, n_samples=2, tensorboard=False,
                eval_every=2, procedural=0.5, jitter=0.1)
    base.update(kw)
    return training.load_config("ci", **base)


def test_training_writes_heldout_and_train_scores_with_reference_lines(tmp_path, few_crops):
    training.train(_tiny(), out_dir=tmp_path, progress=False)
    rows = monitor.read_eval_log(tmp_path)
    refs = {r["method"] for r in rows if r["step"] == 0 and r["method"] != "generator"}
    assert refs == set(monitor.REFERENCE_METHODS)
    gen = [r for r in rows if r["method"] == "generator"]
    # step 0, every 2 steps, and each phase end (4, 5, 7)
    assert sorted({r["step"] for r in gen}) == [0, 2, 4, 5, 6, 7]
    for r in gen:
        assert {r["split"] for r in gen} == {"heldout", "train"}
        assert np.isfinite(r["psnr_hole"]) and 0 < r["ssim"] <= 1 and r["l1_hole"] > 0
    # each (step, split, family) is scored once
    keys = [(r["step"], r["split"], r["masks"]) for r in gen]
    assert len(keys) == len(set(keys))


def test_resume_drops_eval_rows_after_the_checkpoint(tmp_path, few_crops):
    cfg = _tiny(checkpoint_every=2)
    training.train(cfg, out_dir=tmp_path, progress=False, max_steps=3)  # saves at 2 and 3
    before = monitor.read_eval_log(tmp_path)
    with open(tmp_path / "eval.csv", "a") as f:  # as if killed after scoring, before saving
        f.write("5,2,generator,heldout,center,99.0,0.5,0.1\n")
    training.train(cfg, out_dir=tmp_path, progress=False)
    rows = monitor.read_eval_log(tmp_path)
    assert not any(r["psnr_hole"] == 99.0 for r in rows)  # the unsaved row was dropped
    gen_steps = [r["step"] for r in rows if r["method"] == "generator" and r["split"] == "heldout"
                 and r["masks"] == "center"]
    assert gen_steps == sorted(set(gen_steps)) and gen_steps[-1] == cfg.total_steps
    assert len(rows) > len(before)
    assert sum(r["step"] == 0 and r["method"] == "mean fill" for r in rows) == 4  # written once


def test_bad_training_options_are_named():
    with pytest.raises(ValueError, match="procedural"):
        _tiny(procedural=2)
    with pytest.raises(ValueError, match="eval_every"):
        _tiny(eval_every=-1)
    with pytest.raises(ValueError, match="uniform_leaves"):
        _tiny(uniform_leaves=1.5)
