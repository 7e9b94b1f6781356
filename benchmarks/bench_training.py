"""Training-step throughput: partial vs plain convolutions, and achieved GFLOP/s vs a matmul.

One *step* is the real phase-3 iteration of :mod:`pconv_torch.training` (the trainer's own
``train_step``): G forward; D forward + backward on the concatenated (real, fake) batch and
an Adam step; D forward on the fake batch with D frozen, backward into G, Adam step on G.
The same step is timed with ``conv="partial"`` and ``conv="plain"`` (identical layout and
parameter count), interleaved in rounds so that both see the same machine load; the median
per-step time is reported.

FLOPs per image (from :func:`pconv_torch.summary.architecture_table`: 2 x multiply-adds of
every conv / linear layer, mask branch and elementwise work not counted), with ``F_G`` and
``F_D`` the forward FLOPs of G and D (global + local branch)::

    step = F_G (G forward) + 2 F_G (G backward)
         + 2 F_D (D on real and fake) + 4 F_D (its backward)      D step
         + F_D (D on fake) + F_D (backward to the input only)     G step
         = 3 F_G + 8 F_D

(backward ~ 2 x forward: gradients w.r.t. inputs and weights). Achieved GFLOP/s =
images/s x step FLOPs, compared with a large float32 matrix product timed in the same run.

Goals (issue 3, item 6): partial step <= 1.10 x plain step; on CPU >= 50 % of the matmul rate.
On a CPU shared with other work, run with ``--threads 1``: with more threads than free cores
the many small elementwise ops of the partial convolution wait at OpenMP barriers, and the
ratio measures the machine's load more than the code (measured on the two-core development
machine: 1.045 with one thread, 1.15..1.3 with two under a load average of 2..4).

Usage::

    python benchmarks/bench_training.py                      # 128x128, batch 4 on CPU
    python benchmarks/bench_training.py --batch 32 --device cuda
    python benchmarks/bench_training.py --size 64 --width 0.5 --d-width 0.5 --batch 16 --phases
    python benchmarks/bench_training.py --size 64 --width 0.5 --d-width 0.5 --batch 16 --bf16 --threads 1

``--bf16`` (CPU) also times the partial-convolution phase-1 and phase-3 steps with bf16 autocast
(the trainer's ``cpu_amp``) against float32, interleaved, and prints float32 time / bf16 time:
the measurement behind the ``cpu`` preset's ``cpu_amp=True``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch

from pconv_torch import training
from pconv_torch.masks import local_boxes, sample_masks
from pconv_torch.summary import architecture_table


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(n: int, device, repeats: int = 5) -> float:
    """Best-of-``repeats`` float32 GFLOP/s of an n x n by n x n product (2 n^3 FLOPs)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def step_flops(config: training.TrainConfig) -> dict:
    """Forward FLOPs per image of G and D and the phase-1/2/3 step FLOPs per image."""
    g, d = training.build_models(config)
    s = config.image_size
    f_g = architecture_table(g, (1, 3, s, s))[-1]["flops"]
    f_d = architecture_table(d, (1, 3, s, s))[-1]["flops"]
    return {"G": f_g, "D": f_d, 1: 3 * f_g, 2: f_g + 6 * f_d, 3: 3 * f_g + 8 * f_d}


class _Setup:
    """A trainer (``pconv_torch.training``'s own) and one fixed batch on ``device``."""

    def __init__(self, config, device, seed=0):
        n, s = config.batch_size, config.image_size
        gen = torch.Generator().manual_seed(seed)
        images = torch.rand(n, 3, s, s, generator=gen)
        masks = sample_masks(config.masks, n, s, seed=seed)
        self.tmp = tempfile.TemporaryDirectory()
        self.trainer = training._Trainer(config, (images, masks), self.tmp.name, resume=False,
                                         device=device, progress=False, max_steps=None)
        dev = self.trainer.device
        self.x = images.to(dev)
        if self.trainer.channels_last:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.m = masks.to(dev)
        self.boxes = local_boxes(masks, config.patch_size)
        self.device = dev

    def step(self, phase=3):
        self.trainer.train_step(phase, 0, self.x, self.m, self.boxes)


def time_steps(setups: dict, phase: int, steps: int, rounds: int, warmup: int) -> dict:
    """Median seconds per step for each setup, timed in interleaved rounds."""
    for s in setups.values():
        for _ in range(warmup):
            s.step(phase)
        _sync(s.device)
    times = {k: [] for k in setups}
    for _ in range(rounds):
        for k, s in setups.items():
            t = time.perf_counter()
            for _ in range(steps):
                s.step(phase)
            _sync(s.device)
            times[k].append((time.perf_counter() - t) / steps)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=None, help="default: 4 on CPU, 32 on CUDA")
    p.add_argument("--width", type=float, default=1.0, help="generator width")
    p.add_argument("--d-width", type=float, default=1.0, help="discriminator width")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--steps", type=int, default=2, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--matmul", type=int, default=None, help="matmul side (default 2048 CPU, "
                   "8192 CUDA)")
    p.add_argument("--phases", action="store_true",
                   help="also time the phase-1 and phase-2 steps (partial conv only)")
    p.add_argument("--bf16", action="store_true",
                   help="CPU: also time bf16 autocast (cpu_amp) against float32")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    batch = args.batch or (32 if device.type == "cuda" else 4)
    base = dict(image_size=args.size, width=args.width, d_width=args.d_width, batch_size=batch,
                tensorboard=False)
    configs = {conv: training.load_config("paper", conv=conv, **base)
               for conv in ("partial", "plain")}
    setups = {conv: _Setup(cfg, device) for conv, cfg in configs.items()}
    flops = step_flops(configs["partial"])
    what = "bf16 autocast" if setups["partial"].trainer.amp else "float32"
    threads = "" if device.type == "cuda" else (
        f", {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores")
    print(f"device {device}{threads}, {what}; {args.size}x{args.size}, batch {batch}, G width "
          f"{args.width}, D width {args.d_width}")
    print(f"forward GFLOP per image: G {flops['G'] / 1e9:.3f}, D {flops['D'] / 1e9:.3f}; "
          f"phase-3 step per image (3 F_G + 8 F_D): {flops[3] / 1e9:.3f}")

    mm = matmul_gflops(args.matmul or (8192 if device.type == "cuda" else 2048), device)
    sec = time_steps(setups, 3, args.steps, args.rounds, args.warmup)
    mm_after = matmul_gflops(args.matmul or (8192 if device.type == "cuda" else 2048), device)
    mm = max(mm, mm_after)
    result = {"matmul_gflops": mm}
    print(f"float32 matmul: {mm:.1f} GFLOP/s (best of before / after the steps)")
    print(f"{'conv':8s} {'s/step':>8s} {'images/s':>9s} {'GFLOP/s':>8s} {'% matmul':>9s}")
    for conv, t in sec.items():
        ips = batch / t
        gf = ips * flops[3] / 1e9
        result[conv] = {"s_per_step": t, "images_per_s": ips, "gflops": gf}
        print(f"{conv:8s} {t:8.4f} {ips:9.2f} {gf:8.1f} {100 * gf / mm:8.1f}%")
    ratio = sec["partial"] / sec["plain"]
    result["ratio"] = ratio
    print(f"partial / plain step time: {ratio:.3f} (goal <= 1.10: "
          f"{'met' if ratio <= 1.10 else 'not met'}); partial at "
          f"{100 * result['partial']['gflops'] / mm:.0f}% of the matmul rate (CPU goal >= 50%)")
    if args.phases:
        part = {"partial": setups["partial"]}
        for ph in (1, 2, 3):
            t = time_steps(part, ph, args.steps, args.rounds, 1)["partial"]
            result[f"phase{ph}_s_per_step"] = t
            print(f"phase {ph} step (partial): {t:.4f} s, {batch / t:.1f} images/s, "
                  f"{batch / t * flops[ph] / 1e9:.1f} GFLOP/s")
    if args.bf16 and device.type == "cpu":
        if not training.cpu_has_fast_bf16():
            print("bf16: this CPU has no native bf16 (AVX-512 BF16 / AMX); cpu_amp is ignored here")
            return result
        amp = {"float32": setups["partial"],
               "bf16": _Setup(training.load_config("paper", cpu_amp=True, **base), device)}
        assert amp["bf16"].trainer.amp and not amp["float32"].trainer.amp
        for ph in (1, 3):
            t = time_steps(amp, ph, args.steps, args.rounds, args.warmup)
            result[f"bf16_speedup_phase{ph}"] = t["float32"] / t["bf16"]
            print(f"phase {ph} step (partial): float32 {t['float32']:.4f} s, bf16 {t['bf16']:.4f} s, "
                  f"float32 / bf16 = {t['float32'] / t['bf16']:.2f}")
    return result


if __name__ == "__main__":
    main()
