"""Training steps that never wait for the host: the form CUDA graphs and ``torch.compile`` need.

A GPU runs a training step fast only if the host never stops to read a value in the middle
of it: every ``bool(tensor)`` or ``float(tensor)`` waits for all queued kernels, and the
next kernels are launched only after it. The eager trainer reads each loss to check that it
is finite (and the generator reads its inputs to check them), so at the poster's sizes a GPU
step is mostly launch latency. ``TrainConfig.step_mode`` picks how a step runs:

``"eager"``
    :meth:`pconv_torch.training._Trainer.phase1_step` and its siblings as they read, with a
    host check of every loss (the default; the shipped models were trained this way).
``"static"``
    The same methods, with nothing read on the host: the inputs are trusted (the training
    stream makes binary masks and finite images), the local patches are cut with indices on
    the device, Adam is the fused implementation with ``lr`` held in a device tensor, and a
    loss that is not finite sets the optimiser's ``found_inf`` flag, so the fused Adam step
    leaves the weights and its moments unchanged (the same guard as
    ``torch.amp.GradScaler``'s). The loss terms stay on the device; the trainer reads them
    once per log interval and stops the run there if one was not finite
    (:class:`~pconv_torch.training.TrainingDiverged`).
``"compile"``
    The static step with both networks compiled by ``torch.compile(fullgraph=True)``
    (forward and backward; a host read inside them would be a graph break, which
    ``fullgraph`` refuses) and Adam's step compiled too.
``"cuda_graph"``
    The static step of each phase captured once as a CUDA graph (:class:`PhaseGraph`) and
    replayed: one launch per step. The harmonic fill of a residual generator is compiled
    first (one fused kernel per Jacobi sweep instead of four). CUDA only.

A static step takes fixed-shape tensors ``x`` (B, 3, S, S), ``m`` (B, 1, S, S) (1 = valid)
and ``boxes`` (B, 2) on the training device, and returns ``{term: 0-dim tensor}``.
"""

from __future__ import annotations

import torch

from .harmonic import base_fill

__all__ = ["STEP_MODES", "COMPILE_BACKEND", "check_step_mode", "make_adam", "optimiser_settings",
           "make_runner", "PhaseGraph"]

STEP_MODES = ("eager", "static", "compile", "cuda_graph")
COMPILE_BACKEND = "inductor"  # torch.compile backend of step_mode="compile"
WARMUP_STEPS = 3  # uncaptured runs before a capture (cuDNN picks its algorithms in them)


def check_step_mode(mode: str, device: torch.device, world: int) -> None:
    """ValueError unless ``mode`` can run on ``device`` with ``world`` processes."""
    if mode != "eager" and world > 1:
        raise ValueError(f"TrainConfig.step_mode={mode!r} runs in one process; use "
                         "step_mode='eager' under torchrun")
    if mode == "cuda_graph" and device.type != "cuda":
        raise ValueError("TrainConfig.step_mode='cuda_graph' needs a CUDA device, got "
                         f"{device}; use 'static' or 'compile' elsewhere")


def make_adam(params, lr: float, config, device) -> torch.optim.Adam:
    """Adam with ``config.betas``; for a static step fused, with ``lr`` a device tensor (see
    :func:`optimiser_settings`)."""
    if config.step_mode == "eager":
        return torch.optim.Adam(params, lr=lr, betas=config.betas)
    return torch.optim.Adam(params, lr=torch.tensor(lr, device=device), betas=config.betas,
                            fused=True, capturable=config.step_mode == "cuda_graph")


def optimiser_settings(optimisers, mode: str, device) -> None:
    """Give ``optimisers`` the settings of step ``mode``, which a loaded state replaces with
    those of the run that wrote it: torch's defaults for ``"eager"``; fused, ``lr`` a device
    tensor (filled in place each step) and a ``found_inf`` flag for a static step."""
    static = mode != "eager"
    for opt in optimisers:
        for group in opt.param_groups:
            lr = float(group["lr"])
            if static:
                group.update(fused=True, foreach=None, lr=torch.tensor(lr, device=device),
                             capturable=mode == "cuda_graph")
            else:
                group.update(fused=None, foreach=None, capturable=False, lr=lr)
        if static:
            opt.found_inf = torch.zeros((), device=device)


def make_runner(trainer, mode: str):
    """``run(phase, x, m, boxes) -> {term: tensor}`` for ``mode`` (not ``"eager"``) over the
    trainer's phase steps, which must already be in their static form."""
    steps = {phase: _without_iteration(trainer.phase_step(phase)) for phase in (1, 2, 3)}
    if mode == "static":
        return lambda phase, x, m, boxes: steps[phase](x, m, boxes)
    if mode == "compile":
        # The networks compile whole (fullgraph: a host read inside them would be an error),
        # backward included; so does Adam's step. The step's own few lines (losses, the
        # backward calls, zero_grad, the averaged generator) stay in Python.
        # (The compiled wrappers serve the steps only: sample grids and scores run the
        # networks as they are, with their input checks.)
        trainer.g_train = trainer.g_infer = _compiled(trainer.g)
        trainer.d_train = trainer.d_frozen = _compiled(trainer.d)
        for opt in (trainer.opt_g, trainer.opt_d):
            opt.step = torch.compile(opt.step, backend=COMPILE_BACKEND, dynamic=False)
        return lambda phase, x, m, boxes: steps[phase](x, m, boxes)
    if mode == "cuda_graph":
        # The base fill's hundreds of small kernels cost little once captured, but each still
        # runs: compiled, its Jacobi sweeps (or conjugate-gradient steps) fuse into a few.
        if trainer.g.residual:
            trainer.g.base_fill = torch.compile(base_fill(trainer.g.base),
                                                backend=COMPILE_BACKEND, dynamic=False)
        graphs = {}

        def run(phase, x, m, boxes):
            if phase not in graphs:  # captured when the phase is first reached
                graphs[phase] = PhaseGraph(steps[phase], (x, m, boxes), trainer.state_tensors)
            return graphs[phase](x, m, boxes)

        return run
    raise ValueError(f"step_mode must be one of {', '.join(STEP_MODES[1:])} here, got {mode!r}")


def _compiled(net):
    """``net`` compiled whole (``fullgraph``: a host read inside it is an error), sharing its
    parameters."""
    return torch.compile(net, backend=COMPILE_BACKEND, fullgraph=True, dynamic=False)


def _without_iteration(step):
    """A phase step ``(it, x, m, boxes)`` as ``(x, m, boxes)``: a static step does not use the
    iteration number (only the eager host check names it), and a changing Python int would
    make ``torch.compile`` specialise on it."""
    return lambda x, m, boxes: {k: v.detach() for k, v in step(0, x, m, boxes).items()}


class PhaseGraph:
    """One phase's static step, captured as a CUDA graph and replayed.

    Args:
        step: ``(x, m, boxes) -> {term: tensor}``, the static step.
        example: ``(x, m, boxes)``, the first batch; copies of it become the graph's fixed
            input buffers (shapes, dtypes, devices and memory formats are kept).
        state_tensors: ``() -> [tensor]``, everything a step changes (weights, buffers, the
            averaged generator, the optimisers' moments and step counts). The warm-up runs
            change them; they are put back in place afterwards, so capturing leaves the run
            exactly where it was.

    ``graph(x, m, boxes)`` copies the batch into the buffers, replays the step and returns
    its terms (tensors the next replay overwrites: read or add them before it).
    """

    def __init__(self, step, example, state_tensors):
        self.inputs = tuple(t.clone() for t in example)
        before = {id(t): t.clone() for t in state_tensors()}
        _warm_up(step, self.inputs)
        self.graph, self.outputs = _capture(step, self.inputs)
        with torch.no_grad():  # state made by the warm-up (fresh Adam moments) starts at zero
            for t in state_tensors():
                t.copy_(before[id(t)]) if id(t) in before else t.zero_()

    def __call__(self, x, m, boxes):
        for buffer, t in zip(self.inputs, (x, m, boxes)):
            buffer.copy_(t, non_blocking=True)
        self.graph.replay()
        return self.outputs


def _warm_up(step, inputs) -> None:
    """``WARMUP_STEPS`` uncaptured runs of ``step`` on a side stream, as capturing requires."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(WARMUP_STEPS):
            step(*inputs)
    torch.cuda.current_stream().wait_stream(side)


def _capture(step, inputs):
    """``(graph, outputs)``: ``step(*inputs)`` recorded as a CUDA graph (nothing runs yet)."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = step(*inputs)
    return graph, outputs
