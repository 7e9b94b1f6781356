"""The trainer: the poster's three phases over the step-indexed data stream.

The poster trains its GAN in three phases::

    phase 1   G only, on L_MSE = L+ + (1/6) L-                      (poster: 25,000 iterations)
    phase 2   D only, on L_D = -log D(real) - log(1 - D(G(I)))      (poster:  6,000)
    phase 3   both, alternating per iteration:                       (poster: 94,000)
              a D step on L_D, then a G step on L_G = L_MSE - (1/2000) log D(G(I))

:meth:`_Trainer.run` walks the global steps ``t = 0 .. total-1`` of the stream
(:mod:`pconv_torch.stream`) and hands each batch to :meth:`_Trainer.phase1_step`,
:meth:`_Trainer.phase2_step` or :meth:`_Trainer.phase3_step`. ``G`` is
:class:`pconv_torch.networks.Generator`, ``D`` the global + local
:class:`pconv_torch.networks.Discriminator`; losses come from :mod:`pconv_torch.losses`
(computed from logits). Mask convention: 1 = valid pixel, 0 = hole. Images are
(N, 3, H, W) float32 in [0, 1], masks (N, 1, H, W), local-patch corners (N, 2) int64.

Choices the poster leaves open (documented here, stored in
:class:`~pconv_torch.config.TrainConfig`):

* **Optimiser**: Adam for each network, ``lr = 2e-4``, ``betas = (0.5, 0.999)``: the
  DCGAN setting that Iizuka et al.'s and most GAN inpainting code bases start from; Liu et
  al. also use 2e-4. One Adam per network for the whole run: G's optimiser continues from
  phase 1 into phase 3, D's from phase 2 into phase 3.
* **Batch size** 16 per process (``paper`` preset); the poster does not give one.
* **Phase 3 order**: one G forward per iteration. D steps on ``(real, G(I).detach())``
  (one D call on the concatenated batch), then G steps on L_G with the *updated* D, whose
  parameters are frozen for that step.
* **Fill value**: the per-channel mean of the training set (the data source's
  ``fill_mean()``), stored in the generator's ``fill`` buffer and so in every checkpoint.
* **Local patch**: ``image_size/2`` square (64 at 128) around the hole, placed uniformly
  among positions that contain the hole's bounding box (:func:`pconv_torch.masks.local_boxes`
  with a per-sample seeded generator).

Determinism and resume
----------------------
The batch of step ``t`` is a pure function of ``t`` and the stream position
(:mod:`pconv_torch.stream`). The checkpoint (:mod:`pconv_torch.checkpoint`) holds that
position, G, D, both Adam states and the torch (CPU and CUDA), NumPy and Python RNG states,
so on CPU a run stopped at any step and resumed ends with bit-identical weights
(``tests/test_training.py`` checks this with ``torch.equal``, stopping inside phase 3 too).
A resumed run continues at the next unseen sample, also with another number of processes.

Several processes (``torchrun``): ``config.batch_size`` is the batch *per process*; the
union of the ranks' batches is the batch a single process with batch ``W*B`` takes, and
since every loss is a batch mean and DistributedDataParallel averages gradients, W ranks
with batch B train like one process with batch W*B (checked on CPU with gloo in
``tests/test_ddp.py``). Learning rates are not rescaled.

Usage::

    from pconv_torch.training import load_config, train, load_generator
    result = train(load_config("cpu"), out_dir="runs/cpu")   # Ctrl-C saves; rerun resumes
    G = load_generator("runs/cpu")                             # eval mode, on the CPU

    # several GPUs on one machine (each process: cuda:LOCAL_RANK, nccl, env:// init)
    torchrun --standalone --nproc_per_node 4 $(which pconv) train --preset paper --out runs/paper

Under ``torchrun`` the output directory must be visible to every rank (rank 0 writes, all
ranks read it to resume).

Files in ``out_dir``: ``checkpoint.pt`` (see :mod:`pconv_torch.checkpoint`: atomic, with a
SHA-256 digest of every tensor, verified on every load), ``.train.lock`` (held with
``flock`` by the run writing the directory, so a second one is refused),
``log.csv`` (one row per ``log_every`` steps: means of every loss term over the interval),
``samples/step_XXXXXXX.png`` (rows: input with the hole mean-filled, output G(I),
composite M*I + (1-M)*G(I), ground truth), ``tb/`` (TensorBoard, only if installed and
``config.tensorboard``).

The names in ``__all__`` that live in :mod:`pconv_torch.config`, :mod:`pconv_torch.checkpoint`,
:mod:`pconv_torch.networks`, :mod:`pconv_torch.stream` and :mod:`pconv_torch.runlog` are
importable from here too. The phase schedule is :mod:`pconv_torch.schedule`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import random
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import losses
from .checkpoint import (
    CHECKPOINT_NAME,
    LOCK_NAME,
    check_resumable,
    load_checkpoint,
    load_generator,
    make_out_dir,
    out_dir_lock,
    restore_training,
    save_checkpoint,
    training_state,
)
from .config import PRESETS, TrainConfig, load_config
from .networks import build_models
from .monitor import EVAL_FIELDS, GeneralisationMonitor
from .runlog import LOG_FIELDS, RunLog, read_log, sample_grid, say, trim_csv, write_samples
from .runtime import (StopOnSignal, cpu_has_fast_bf16, current_group, is_main_process,
                      setup_distributed)
from .schedule import lr_scale, phase_of
from .static_step import check_step_mode, make_adam, make_runner, optimiser_settings
from .stream import make_training_data, preview_batch, step_batches

__all__ = [
    "TrainConfig",
    "PRESETS",
    "load_config",
    "read_log",
    "train",
    "TrainingDiverged",
    "CHECKPOINT_NAME",
    "LOCK_NAME",
    "save_checkpoint",
    "load_checkpoint",
    "load_generator",
    "build_models",
    "make_training_data",
    "preview_batch",
    "sample_grid",
]


# --------------------------------------------------------------------------------------
# Exceptions
# --------------------------------------------------------------------------------------
class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite. The weights were not updated with it, and the last
    checkpoint written before it (``checkpoint``, possibly None) is kept unchanged."""

    def __init__(self, message: str, *, phase: int, iteration: int, step: int, term: str,
                 checkpoint: str | None):
        super().__init__(message)
        self.phase, self.iteration, self.step = phase, iteration, step
        self.term, self.checkpoint = term, checkpoint


# --------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------
class _Trainer:
    """One training run in ``out_dir`` (see :func:`train`): G, D, their Adam optimisers, the
    stream position and the step; :meth:`run` trains to the end of the schedule."""

    def __init__(self, config, data, out_dir, resume, device, progress, max_steps):
        config = dataclasses.replace(config)  # a checked copy: the caller's object stays as is
        self.cfg = config
        self.out = Path(out_dir)
        self.progress, self.max_steps = progress, max_steps
        self.rank, self.world, device, self.created_pg = setup_distributed(device)
        self.dist = current_group()
        self.device = torch.device(device) if device is not None else (
            torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
        self.cuda = self.device.type == "cuda"
        self.amp = (config.amp and torch.cuda.is_bf16_supported()) if self.cuda else (
            config.cpu_amp and cpu_has_fast_bf16())
        self.channels_last = self.cuda and config.channels_last
        self.main = self.rank == 0
        self.ckpt_path = self.out / CHECKPOINT_NAME
        self.log_path = self.out / "log.csv"
        self.eval_path = self.out / "eval.csv"
        self.samples_dir = self.out / "samples"
        if self.main:
            make_out_dir(self.out)
            for stale in self.out.glob(f".{CHECKPOINT_NAME}.*.tmp"):  # left by a killed save
                stale.unlink(missing_ok=True)

        torch.manual_seed(config.seed)
        np.random.seed(config.seed % 2 ** 32)
        random.seed(config.seed)
        if self.cuda:
            torch.backends.cudnn.benchmark = True

        self.pairs, fill = make_training_data(config, data)
        self.g, self.d = build_models(config, fill)
        self.g.fill.copy_(fill.to(self.g.fill))
        self.g.to(self.device)
        self.d.to(self.device)
        if self.channels_last:
            self.g.to(memory_format=torch.channels_last)
            self.d.to(memory_format=torch.channels_last)
        # the averaged generator (config.ema > 0): a frozen copy that trails G's weights
        self.g_ema = copy.deepcopy(self.g).eval().requires_grad_(False) if config.ema else None
        self.static = config.step_mode != "eager"  # no host read inside a step
        check_step_mode(config.step_mode, self.device, self.world)
        self.opt_g = make_adam(self.g.parameters(), config.lr_g, config, self.device)
        self.opt_d = make_adam(self.d.parameters(), config.lr_d, config, self.device)
        # (static) the averaged generator's weight 1 - decay, set before every step
        self.ema_weight = torch.zeros((), device=self.device)
        self.step = 0
        self.position = 0  # samples of the stream consumed, over all ranks
        self.last_saved_step = None
        self.last = {}
        if resume and self.ckpt_path.is_file():
            self._resume()  # load_state_dict copies onto the parameters' device
        elif self.main:
            for p in (self.log_path, self.eval_path):  # a fresh run starts fresh logs
                if p.exists():
                    p.unlink()
        self.g_train, self.d_train = self.g, self.d  # the networks the steps train
        self.g_infer, self.d_frozen = self.g, self.d  # G without gradient (phase 2), D frozen
        # after a resume too: loading replaces the groups' settings with the writer's
        optimiser_settings((self.opt_g, self.opt_d), config.step_mode, self.device)
        self.runner = make_runner(self, config.step_mode) if self.static else None
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            if self.cuda and config.norm == "batch":
                self.g = nn.SyncBatchNorm.convert_sync_batchnorm(self.g)
            ids = [self.device.index] if self.cuda else None
            self.g_train = DDP(self.g, device_ids=ids)
            self.d_train = DDP(self.d, device_ids=ids)

    # -- checkpoint ---------------------------------------------------------------------
    def _resume(self):
        state = load_checkpoint(self.ckpt_path)
        check_resumable(state["config"], self.cfg, self.ckpt_path)
        if state.get("world_size", 1) != self.world:
            warnings.warn(f"{self.ckpt_path}: written by {state.get('world_size')} process(es), "
                          f"resumed by {self.world}: the data stream continues where it stopped, "
                          "with a different global batch", stacklevel=3)
        restore_training(self, state, self.ckpt_path)
        self.last_saved_step = self.step
        if self.main:  # drop rows written after the checkpoint
            for path, fields in ((self.log_path, LOG_FIELDS), (self.eval_path, EVAL_FIELDS)):
                if path.exists():
                    trim_csv(path, fields, self.step)

    def save(self):
        nets = (self.g, self.d) + ((self.g_ema,) if self.g_ema is not None else ())
        bad = [name for net in nets for name, t in net.state_dict().items()
               if t.is_floating_point() and not bool(torch.isfinite(t).all())]
        if bad:  # never call a checkpoint with diverged weights a good one
            ck = str(self.ckpt_path) if self.last_saved_step is not None else None
            raise TrainingDiverged(
                f"training diverged: non-finite weights ({', '.join(bad[:3])}) at step "
                f"{self.step}; not saved, the last good checkpoint (step "
                f"{self.last_saved_step}) is kept", phase=phase_of(self.step, self.cfg.iterations)[0],
                iteration=0, step=self.step, term="weights", checkpoint=ck)
        if self.main:
            state = training_state(self)
            save_checkpoint(state, self.ckpt_path)
        self.last_saved_step = self.step

    # -- steps ----------------------------------------------------------------------------
    def _autocast(self):
        if self.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def g_shown(self):
        """The generator that is sampled, scored and exported: the average if ``ema`` > 0."""
        return self.g_ema if self.g_ema is not None else self.g

    def _ema_decay(self) -> float:
        return min(self.cfg.ema, (1 + self.step) / (10 + self.step))

    def _update_ema(self):
        """g_ema <- d * g_ema + (1 - d) * g after a G step; d ramps up to ``ema`` over the
        first steps (d = min(ema, (1 + step) / (10 + step))), so the start is not averaged
        with the random initialisation for long."""
        if self.g_ema is None:
            return
        # a static step reads the weight from a tensor that run() sets before each step
        weight = self.ema_weight if self.static else 1.0 - self._ema_decay()
        with torch.no_grad():
            for avg, p in zip(self.g_ema.parameters(), self.g.parameters()):
                avg.lerp_(p, weight)
            for avg, b in zip(self.g_ema.buffers(), self.g.buffers()):
                avg.copy_(b)

    def _evaluate(self, monitor, phase):
        """Score G on held-out and training crops into eval.csv (with ``ema``, the averaged G
        as "generator" and the trained weights as "generator (raw)")."""
        nets = {"generator": self.g_shown,
                **({"generator (raw)": self.g} if self.g_ema is not None else {})}
        monitor.record(self.eval_path, nets, self.step, phase, self.device, self._autocast,
                       fill=self.g.fill.cpu())

    def _check(self, name, value, phase, it, optimiser):
        """All ranks agree: raise TrainingDiverged if ``value`` is not finite anywhere. In a
        static step nothing is read: ``optimiser``'s next step is skipped instead (its
        ``found_inf`` flag) and the run stops at the end of the log interval."""
        if self.static:
            optimiser.found_inf.copy_(~torch.isfinite(value.detach()))
            return
        v = value.detach().float().reshape(1)
        if self.dist is not None:
            v = v.clone()
            self.dist.all_reduce(v)
        if not bool(torch.isfinite(v).all()):
            self._diverged(f"{name} = {float(value.detach())} at phase {phase}, iteration {it} "
                           f"(step {self.step}); the weights were not updated with it",
                           phase, it, name)

    def _diverged(self, what: str, phase: int, it: int, term: str):
        """Raise TrainingDiverged: ``what`` happened; the last good checkpoint is kept."""
        ck = str(self.ckpt_path) if self.last_saved_step is not None else None
        keep = (f"the last good checkpoint {ck} (step {self.last_saved_step}) is kept"
                if ck else "no checkpoint had been written yet")
        raise TrainingDiverged(
            f"training diverged: {what} and {keep}. To train again, start a new run (another "
            "out_dir) with a lower lr_g / lr_d or a different seed: a run resumes only with "
            "the configuration it started with.",
            phase=phase, iteration=it, step=self.step, term=term, checkpoint=ck)

    def _d_logits(self, real, fake, boxes):
        n = len(real)
        with self._autocast():
            logits = self.d_train(torch.cat([real, fake]), torch.cat([boxes, boxes]),
                                  check_values=not self.static).float()
        return logits[:n], logits[n:]

    def _mse_terms(self, out, x, m):
        with torch.no_grad():
            return {"l_hole": losses.mse_hole(out, x, m), "l_valid": losses.mse_valid(out, x, m)}

    # -- the three phases -----------------------------------------------------------------
    def train_step(self, phase, it, x, m, boxes) -> dict:
        """Iteration ``it`` of phase ``phase`` (1, 2 or 3) on one batch: images ``x``
        (B, 3, S, S), masks ``m`` (B, 1, S, S), local-patch corners ``boxes`` (B, 2). Returns
        the loss terms as floats, averaged over the ranks (a static ``step_mode``: as 0-dim
        tensors on the device, read once per log interval)."""
        if self.runner is not None:  # a static step: the terms stay on the device
            return self.runner(phase, x, m, boxes)
        return self._mean_over_ranks(self.phase_step(phase)(it, x, m, boxes))

    def phase_step(self, phase):
        """The method that runs one iteration of ``phase``: ``(it, x, m, boxes) -> terms``."""
        return {1: self.phase1_step, 2: self.phase2_step, 3: self.phase3_step}[phase]

    def phase1_step(self, it, x, m, boxes) -> dict:
        """Phase 1: a G step on L_MSE = L+ + valid_weight * L- (D is not used)."""
        with self._autocast():
            out = self.g_train(x, m, check_values=not self.static)
        out = out.float()
        loss = losses.mse_weighted(out, x, m, self.cfg.valid_weight, self.cfg.balance)
        self._check("L_MSE", loss, 1, it, self.opt_g)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self._update_ema()
        poster = loss if self.cfg.balance == 0 else losses.mse_weighted(  # the log's L_MSE
            out.detach(), x, m, self.cfg.valid_weight)
        return {**self._mse_terms(out, x, m), "l_mse": poster}

    def phase2_step(self, it, x, m, boxes) -> dict:
        """Phase 2: a D step on L_D, real images against G(I) from the fixed G."""
        with torch.no_grad(), self._autocast():
            fake = self.g_infer(x, m, check_values=not self.static)
        fake = fake.float()
        real_l, fake_l = self._d_logits(x, fake.to(x.dtype), boxes)
        l_d = losses.discriminator_loss(real_l, fake_l)
        self._check("L_D", l_d, 2, it, self.opt_d)
        self.opt_d.zero_grad(set_to_none=True)
        l_d.backward()
        self.opt_d.step()
        return {**self._mse_terms(fake, x, m), "l_d": l_d,
                "l_mse": losses.mse_weighted(fake, x, m, self.cfg.valid_weight),
                "d_real": torch.sigmoid(real_l.detach()).mean(),
                "d_fake": torch.sigmoid(fake_l.detach()).mean()}

    def phase3_step(self, it, x, m, boxes) -> dict:
        """Phase 3: one G forward; a D step on L_D against G(I).detach(), then a G step on
        L_G = L_MSE + adv_weight * L_adv against the updated D."""
        cfg = self.cfg
        with self._autocast():
            out = self.g_train(x, m, check_values=not self.static)
        fake = out.float()
        real_l, fake_l = self._d_logits(x, fake.detach().to(x.dtype), boxes)
        l_d = losses.discriminator_loss(real_l, fake_l)
        self._check("L_D", l_d, 3, it, self.opt_d)
        self.opt_d.zero_grad(set_to_none=True)
        l_d.backward()
        self.opt_d.step()
        # G step against the updated D, whose parameters are frozen for it (its forward
        # runs outside DDP: no gradient to synchronise).
        for p in self.d.parameters():
            p.requires_grad_(False)
        try:
            with self._autocast():
                g_logits = self.d_frozen(fake.to(x.dtype), boxes,
                                         check_values=not self.static).float()
            balance = cfg.balance if cfg.balance_in_phase3 else 0.0
            l_g = losses.generator_loss(fake, x, m, g_logits, cfg.adv_weight, cfg.valid_weight,
                                        balance)
            self._check("L_G", l_g, 3, it, self.opt_g)
            self.opt_g.zero_grad(set_to_none=True)
            l_g.backward()
            self.opt_g.step()
            self._update_ema()
        finally:
            for p in self.d.parameters():
                p.requires_grad_(True)
        with torch.no_grad():
            return {**self._mse_terms(fake, x, m), "l_d": l_d, "l_g": l_g,
                    "l_mse": losses.mse_weighted(fake, x, m, cfg.valid_weight),
                    "l_adv": losses.generator_adversarial_loss(g_logits),
                    "d_real": torch.sigmoid(real_l.detach()).mean(),
                    "d_fake": torch.sigmoid(fake_l.detach()).mean()}

    def _mean_over_ranks(self, terms: dict) -> dict:
        """``{name: float}``: each scalar tensor of ``terms`` averaged over the ranks."""
        names = sorted(terms)
        vals = torch.stack([terms[k].detach().float().reshape(()) for k in names])
        if self.dist is not None:
            self.dist.all_reduce(vals)
            vals /= self.world
        return dict(zip(names, vals.tolist()))

    # -- samples and scores ---------------------------------------------------------------
    def _samples(self, preview):
        if not self.main:
            return None
        path = self.samples_dir / f"step_{self.step:07d}.png"
        return write_samples(path, self.g_shown, preview, self.g.fill.cpu(), self.device,
                             self._autocast)

    # -- main loop ----------------------------------------------------------------------
    def run(self) -> dict:
        """Train from ``self.step`` to the end of the schedule (or ``max_steps``). Step ``t``
        of the stream is an iteration of phase 1, 2 or 3 by its index (:func:`~pconv_torch.schedule.phase_of`);
        after it come the log row, sample grid, scores and checkpoint when their interval
        or a phase ends. Returns :func:`train`'s dict."""
        cfg = self.cfg
        total = cfg.total_steps
        stop_at = total if self.max_steps is None else min(total, int(self.max_steps))
        t0 = time.perf_counter()
        status, sample_path = "finished", None
        start = self.step
        preview = preview_batch(cfg, self.pairs) if self.main else None
        monitor = None
        if self.main and cfg.eval_every:
            monitor = GeneralisationMonitor(cfg.image_size, seed=cfg.seed)
            if not self.eval_path.exists():
                self._evaluate(monitor, phase_of(self.step, cfg.iterations)[0])
        batches = step_batches(self.pairs, cfg, start=self.step, stop=stop_at,
                               position=self.position, rank=self.rank, world=self.world,
                               pin_memory=self.cuda)
        log = RunLog(self, t0)
        self.g_train.train()
        self.d_train.train()
        try:
            with StopOnSignal() as stopper:
                for x, m, boxes in batches:
                    phase, it = phase_of(self.step, cfg.iterations)
                    log.begin(phase, it)
                    x, m, boxes = self._to_device(x, m, boxes)
                    scale = self._set_learning_rates()
                    log.add(self.train_step(phase, it, x, m, boxes))  # phase{1,2,3}_step
                    self.step += 1
                    self.position += cfg.batch_size * self.world
                    end_of_phase = phase_of(self.step, cfg.iterations)[0] != phase or \
                        self.step == total
                    if self.step % cfg.log_every == 0 or end_of_phase or self.step == stop_at:
                        if self.static:
                            self._check_interval(log, phase, it)
                        self.last = log.write(self.step, phase, it, scale)
                    if self.step % cfg.sample_every == 0 or self.step == total:
                        sample_path = self._samples(preview) or sample_path
                    if monitor is not None and (self.step % cfg.eval_every == 0 or end_of_phase):
                        self._evaluate(monitor, phase)
                    if self.step % cfg.checkpoint_every == 0 or end_of_phase:
                        self.save()
                    if self._stop_requested(stopper):
                        status = "interrupted"
                        break
            if self.step == stop_at and stop_at < total:
                status = "stopped"
            if self.last_saved_step != self.step:
                self.save()
            if status == "interrupted" and self.main:
                say(f"interrupted ({stopper.signame}): checkpoint saved at phase "
                     f"{phase_of(min(self.step, total - 1), cfg.iterations)[0]}, step "
                     f"{self.step}; run again with the same out_dir to resume")
        except KeyboardInterrupt:
            if self.main:
                say(f"interrupted during step {self.step}: nothing saved; the last checkpoint "
                     f"(step {self.last_saved_step}) is kept")
            raise
        finally:
            log.close()
        if self.step >= total and sample_path is None and self.main and start < total:
            sample_path = self._samples(preview)
        phase, it = phase_of(min(self.step, max(total - 1, 0)), cfg.iterations)
        return {
            "status": status, "step": self.step, "phase": phase,
            "iteration": self.step - sum(cfg.iterations[:phase - 1]),
            "losses": dict(self.last), "out_dir": str(self.out),
            "checkpoint": str(self.ckpt_path), "log": str(self.log_path),
            "samples": str(self.samples_dir),
            "last_sample": str(sample_path) if sample_path else None,
            "seconds": time.perf_counter() - t0, "world_size": self.world,
            "device": str(self.device),
            "signal": stopper.signame if status == "interrupted" else None,
        }

    def _to_device(self, x, m, boxes):
        """The batch on the training device (copies from pinned memory do not wait)."""
        x, m, boxes = (t.to(self.device, non_blocking=True) for t in (x, m, boxes))
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, m, boxes

    def _set_learning_rates(self) -> float:
        """Set both optimisers' rates for ``self.step`` (:func:`~pconv_torch.schedule.lr_scale`), and the averaged
        generator's weight; return the factor. (A static step's rates live in device
        tensors, filled in place: a captured or compiled step reads them there.)"""
        cfg = self.cfg
        scale = lr_scale(self.step, cfg.total_steps, cfg.lr_decay)
        for opt, lr in ((self.opt_g, cfg.lr_g), (self.opt_d, cfg.lr_d)):
            for group in opt.param_groups:
                if isinstance(group["lr"], torch.Tensor):
                    group["lr"].fill_(lr * scale)
                else:
                    group["lr"] = lr * scale
        if self.static:
            self.ema_weight.fill_(1.0 - self._ema_decay())
        return scale

    def state_tensors(self) -> list:
        """Every tensor a training step changes: both networks' parameters and buffers, the
        averaged generator's, and both optimisers' state."""
        nets = [self.g, self.d] + ([self.g_ema] if self.g_ema is not None else [])
        tensors = [t for net in nets for t in (*net.parameters(), *net.buffers())]
        for opt in (self.opt_g, self.opt_d):
            tensors += [v for state in opt.state.values() for v in state.values()
                        if isinstance(v, torch.Tensor)]
        return tensors

    def _check_interval(self, log, phase, it):
        """(static steps) Raise TrainingDiverged if a loss of the interval was not finite;
        those steps were skipped by Adam's ``found_inf``, so no weight took them in."""
        for name in {1: ("l_mse",), 2: ("l_d",), 3: ("l_d", "l_g")}[phase]:
            if name in log.acc and not bool(torch.isfinite(torch.as_tensor(log.acc[name]))):
                self._diverged(f"{name} was not finite in a step of phase {phase} before "
                               f"iteration {it + 1} (step {self.step}); those steps were "
                               "skipped (no weight was updated with them)", phase, it, name.upper())

    def _stop_requested(self, stopper) -> bool:
        flag = stopper.flag
        if self.dist is not None:
            t = torch.tensor([1.0 if flag else 0.0],
                             device=self.device if self.cuda else "cpu")
            self.dist.all_reduce(t, op=self.dist.ReduceOp.MAX)
            flag = bool(t.item() > 0)
        return flag

    def close(self):
        if self.created_pg and self.dist is not None:
            self.dist.destroy_process_group()


def train(config: TrainConfig | str = "ci", data=None, out_dir="runs/pconv", resume: bool = True,
          device=None, progress: bool = True, *, max_steps: int | None = None) -> dict:
    """Train G and D in the poster's three phases; see the module docstring.

    Args:
        config: a :class:`~pconv_torch.config.TrainConfig` or a preset name.
        data: None (``config.data``), an (N, 3, H, W) image tensor, ``(images, masks)``
            tensors, or a Dataset (see :func:`~pconv_torch.stream.make_training_data`).
        out_dir: where ``checkpoint.pt``, ``log.csv`` and ``samples/`` go.
        resume: continue from ``out_dir/checkpoint.pt`` if it exists (its configuration must
            match except for iteration counts and bookkeeping fields); False starts afresh
            and overwrites.
        device: torch device; default CUDA when available (under torchrun: ``cuda:LOCAL_RANK``).
        progress: tqdm bars per phase (rank 0 only).
        max_steps: stop (with a checkpoint) once this many steps in total have run.

    Returns:
        dict with ``status`` ("finished", "stopped" at ``max_steps``, "interrupted" by
        Ctrl-C / SIGTERM after saving; ``signal`` names which, e.g. "SIGINT"), ``step`` (global), ``phase``, ``iteration`` (within
        the phase), ``losses`` (means over the last log interval: l_hole, l_valid, l_mse,
        and l_d, d_real, d_fake, l_adv, l_g where the phase computes them), paths
        ``checkpoint``, ``log``, ``samples``, ``last_sample``, ``out_dir``, and ``seconds``.

    Raises:
        TrainingDiverged: a loss became NaN/inf (the last good checkpoint is kept).
        ValueError: bad configuration, data, or an incompatible / unreadable / corrupt
            checkpoint; ``out_dir`` is a file, or another training is writing to it (each
            run holds a lock on ``out_dir/.train.lock`` while it runs).
        OSError: ``out_dir`` cannot be created or written; a checkpoint write failed (e.g.
            "no space left on device"; the previous checkpoint is kept).
    """
    if isinstance(config, str):
        config = load_config(config)
    lock = out_dir_lock(Path(out_dir)) if is_main_process() else contextlib.nullcontext()
    with lock:
        trainer = _Trainer(config, data, out_dir, resume, device, progress, max_steps)
        try:
            return trainer.run()
        finally:
            trainer.close()
