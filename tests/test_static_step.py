"""Static training steps (``TrainConfig.step_mode``, :mod:`pconv_torch.static_step`): the same
training as the eager step, exact resume, a non-finite loss skipped without a host read, and
on a GPU, CUDA graphs and no synchronisation inside a step."""

import tempfile

import pytest
import torch

from pconv_torch import losses, static_step, training
from pconv_torch.masks import local_boxes
from pconv_torch.training import TrainingDiverged, load_checkpoint, train
from tiny_runs import smooth_images, tiny

needs_cuda = pytest.mark.cuda


@pytest.fixture(scope="module")
def images():
    return smooth_images()


def weights(path):
    st = load_checkpoint(path)
    return {**{f"g.{k}": v for k, v in st["generator"].items()},
            **{f"d.{k}": v for k, v in st["discriminator"].items()},
            **{f"ema.{k}": v for k, v in st.get("generator_ema", {}).items()}}


def assert_weights(a, b, exact):
    assert a.keys() == b.keys()
    for k in a:
        if exact:
            assert torch.equal(a[k], b[k]), k
        else:
            torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)


def test_static_step_trains_like_the_eager_step(tmp_path, images):
    """Same data, same losses: only Adam's implementation (fused) differs, by rounding."""
    runs = {}
    for mode in ("eager", "static"):
        r = train(tiny(step_mode=mode, ema=0.9), data=images, out_dir=tmp_path / mode,
                  progress=False)
        assert r["status"] == "finished" and r["step"] == 8
        runs[mode] = r
    assert_weights(weights(tmp_path / "eager"), weights(tmp_path / "static"), exact=False)
    for k, v in runs["eager"]["losses"].items():
        assert runs["static"]["losses"][k] == pytest.approx(v, rel=1e-3), k


def test_static_resume_is_exact(tmp_path, images):
    cfg = tiny(step_mode="static", ema=0.9, lr_decay=0.5, checkpoint_every=2)
    train(cfg, data=images, out_dir=tmp_path / "ref", progress=False)
    stop = tmp_path / "stop"
    assert train(cfg, data=images, out_dir=stop, progress=False, max_steps=6)["step"] == 6
    assert train(cfg, data=images, out_dir=stop, progress=False)["status"] == "finished"
    assert_weights(weights(tmp_path / "ref"), weights(stop), exact=True)


def test_step_mode_may_change_when_a_run_resumes(tmp_path, images):
    """A run started eagerly continues statically (and back): the optimisers' settings are
    the new mode's, their moments the checkpoint's."""
    for first, second in (("eager", "static"), ("static", "eager")):
        out = tmp_path / first
        train(tiny(step_mode=first), data=images, out_dir=out, progress=False, max_steps=5)
        r = train(tiny(step_mode=second), data=images, out_dir=out, progress=False)
        assert r["status"] == "finished" and r["step"] == 8
        tr = training._Trainer(tiny(step_mode=second), images, out, True, "cpu", False, None)
        fused = tr.opt_g.param_groups[0]["fused"]
        assert bool(fused) == (second == "static")


def test_a_non_finite_loss_is_skipped_on_the_device_and_stops_the_run(tmp_path, images,
                                                                          monkeypatch):
    """Phase 2's L_D poisoned at step 4: the static step does not update D with it (Adam's
    found_inf), and the run stops at the end of that log interval with the last good
    checkpoint (step 4) kept."""
    real = losses.discriminator_loss
    calls = {"n": 0}

    def poisoned(*a, **k):
        calls["n"] += 1
        out = real(*a, **k)
        return out * float("nan") if calls["n"] == 2 else out

    monkeypatch.setattr(losses, "discriminator_loss", poisoned)
    cfg = tiny(step_mode="static", checkpoint_every=2)
    tr = training._Trainer(cfg, images, tmp_path, False, "cpu", False, None)
    with pytest.raises(TrainingDiverged, match=r"l_d was not finite.*phase 2.*step 4") as e:
        tr.run()
    assert (e.value.phase, e.value.term) == (2, "L_D")
    st = load_checkpoint(tmp_path)
    assert st["step"] == 4
    for k, v in tr.d.state_dict().items():  # D as it was before the poisoned step
        assert torch.equal(v, st["discriminator"][k]), k
    steps = [s["step"] for s in tr.opt_d.state_dict()["state"].values()]
    saved = [s["step"] for s in st["opt_d"]["state"].values()]
    assert all(torch.equal(a.cpu(), b.cpu()) for a, b in zip(steps, saved))


def test_cuda_graph_mode_needs_a_gpu(tmp_path, images):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="step_mode='cuda_graph' needs a CUDA device"):
        train(tiny(step_mode="cuda_graph"), data=images, out_dir=tmp_path, progress=False)


@pytest.mark.slow
def test_compiled_networks_have_no_graph_break(tmp_path, images, monkeypatch):
    """step_mode="compile" compiles G and D with fullgraph=True: a host read inside them
    (a value check, a .tolist()) would fail here. (Backend "eager": the tracing, without the
    code generation that makes it fast.)"""
    monkeypatch.setattr(static_step, "COMPILE_BACKEND", "eager")
    torch._dynamo.reset()
    cfg = tiny(step_mode="compile", residual=True, standardise=True, ema=0.9)
    r = train(cfg, data=images, out_dir=tmp_path / "compile", progress=False)
    assert r["status"] == "finished"
    train(tiny(step_mode="static", residual=True, standardise=True, ema=0.9), data=images,
          out_dir=tmp_path / "static", progress=False)
    assert_weights(weights(tmp_path / "static"), weights(tmp_path / "compile"), exact=False)


class _ReplayByRunning:
    """Stands in for a CUDA graph on the CPU: a "capture" runs the step (a real one only
    records it) and a replay runs it again into the captured outputs."""

    def __init__(self, step, inputs):
        self.step, self.inputs = step, inputs
        self.outputs = step(*inputs)

    def replay(self):
        for k, v in self.step(*self.inputs).items():
            self.outputs[k].copy_(v)


def test_a_captured_step_leaves_the_run_where_it_was(images, monkeypatch):
    """PhaseGraph's warm-up and capture run the step several times; it puts every weight,
    buffer and Adam moment back (fresh moments to zero), so training through it equals
    training without it. Checked on the CPU with the graph replaced by re-running the step."""
    monkeypatch.setattr(static_step, "_warm_up", lambda step, inputs: [
        step(*inputs) for _ in range(static_step.WARMUP_STEPS)])
    monkeypatch.setattr(static_step, "_capture", lambda step, inputs: (
        lambda g: (g, g.outputs))(_ReplayByRunning(step, inputs)))
    monkeypatch.setattr(static_step, "COMPILE_BACKEND", "eager")
    cfg = tiny(step_mode="static", ema=0.9, residual=True, standardise=True)
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        plain = training._Trainer(cfg, images, a, False, "cpu", False, None)
        graphed = training._Trainer(cfg, images, b, False, "cpu", False, None)
        graphed.runner = static_step.make_runner(graphed, "cuda_graph")
        rng = torch.Generator().manual_seed(1)
        for phase in (1, 1, 2, 3, 1, 3):
            x = images[torch.randperm(6, generator=rng)[:2]]
            m = torch.ones(2, 1, 32, 32)
            m[..., 4:14, 8:20] = 0
            boxes = local_boxes(m, 16)
            for tr in (plain, graphed):
                tr._set_learning_rates()
                tr.step += 1
            want = plain.train_step(phase, 0, x, m, boxes)
            got = graphed.train_step(phase, 0, x, m, boxes)
            assert want.keys() == got.keys()
            for k in want:
                torch.testing.assert_close(got[k], want[k], rtol=1e-6, atol=1e-7, msg=k)
        for a_t, b_t in zip(plain.state_tensors(), graphed.state_tensors()):
            torch.testing.assert_close(b_t, a_t, rtol=1e-6, atol=1e-7)


# -- on a GPU ------------------------------------------------------------------------------
def _trainer(mode, images, out):
    cfg = tiny(step_mode=mode, ema=0.9, residual=True, standardise=True)
    return training._Trainer(cfg, images, out, False, "cuda", False, None)


def _batch(images, device):
    x = images[:2].to(device)
    m = torch.ones(2, 1, 32, 32, device=device)
    m[..., 4:14, 8:20] = 0
    return x, m, local_boxes(m.cpu(), 16).to(device)


@needs_cuda
@pytest.mark.parametrize("mode", ["static", "cuda_graph"])
def test_no_host_synchronisation_inside_a_step(images, mode):
    """torch.cuda.set_sync_debug_mode("error") raises on any synchronising call."""
    with tempfile.TemporaryDirectory() as d:
        tr = _trainer(mode, images, d)
        x, m, boxes = _batch(images, tr.device)
        for phase in (1, 2, 3):
            tr.train_step(phase, 0, x, m, boxes)  # warm up (a graph is captured here)
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("error")
            try:
                tr.train_step(phase, 0, x, m, boxes)
            finally:
                torch.cuda.set_sync_debug_mode("default")


@needs_cuda
def test_cuda_graph_trains_like_the_static_step(images):
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        trainers = {mode: _trainer(mode, images, d)
                    for mode, d in (("static", a), ("cuda_graph", b))}
        x, m, boxes = _batch(images, "cuda")
        for phase in (1, 1, 2, 3, 3):
            terms = {mode: tr.train_step(phase, 0, x, m, boxes) for mode, tr in trainers.items()}
            for k, v in terms["static"].items():
                torch.testing.assert_close(terms["cuda_graph"][k], v, rtol=1e-4, atol=1e-6)
        for (k, p), q in zip(trainers["static"].g.named_parameters(),
                             trainers["cuda_graph"].g.parameters()):
            torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-6, msg=k)
