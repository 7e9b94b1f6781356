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

``--limit`` measures the distance to the hardware's limit: for the networks of ``--presets``
(default ``gpu,paper``: 128x128 at half and at full width, each preset's batch unless
``--batch``), with the poster's output (``residual=False``) and with the harmonic fill
(``residual=True``), every phase's step in each ``--modes`` (``TrainConfig.step_mode``;
default ``eager,static,compile,cuda_graph`` on CUDA, ``eager,static`` on the CPU, where
compiling takes minutes). It prints step time, images/s, achieved TFLOP/s and the fraction
of the matmul rate measured in the same run in the training's own precision: bf16 where the
trainer uses bf16 autocast (CUDA; a CPU with native bf16 and ``cpu_amp``), else float32.
``eager`` is the step before the static modes, so each row's speed-up is against it::

    python benchmarks/bench_training.py --device cuda --limit
    python benchmarks/bench_training.py --limit --presets ci --modes eager,static --threads 1

(``--harmonic no|yes`` keeps one of the two outputs; an interrupt ends the measuring and
prints what was measured.)

``--pyramid`` times the generator's forward + backward with its mask pyramid
(:meth:`pconv_torch.Generator.mask_pyramid`: every layer's mask and rescaling ratio) computed
inside the pass, and with the pyramid computed beforehand (in a data worker, or once per
batch for several passes), interleaved: the share of the pass the masks cost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import torch

from pconv_torch import training
from pconv_torch.benchmark import device_name
from pconv_torch.masks import local_boxes, sample_masks
from pconv_torch.summary import architecture_table


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(n: int, device, repeats: int = 5, dtype=torch.float32) -> float:
    """Best-of-``repeats`` GFLOP/s of an n x n by n x n product in ``dtype`` (2 n^3 FLOPs)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
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
        self.boxes = local_boxes(masks, config.patch_size).to(dev)
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
    p.add_argument("--limit", action="store_true", help="distance to the hardware's limit: "
                   "every phase of --presets in each --modes, against the matmul rate")
    p.add_argument("--presets", default="gpu,paper", help="--limit: the networks' presets")
    p.add_argument("--modes", default=None, help="--limit: step modes, comma-separated")
    p.add_argument("--json", default=None, help="--limit: also write the table to this file")
    p.add_argument("--harmonic", choices=("both", "no", "yes"), default="both",
                   help="--limit: networks with the poster's output (no), the harmonic fill "
                        "(yes) or both")
    p.add_argument("--pyramid", action="store_true",
                   help="the mask pyramid's share of G's forward + backward")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.limit:
        return distance_to_limit(args, device)
    if args.pyramid:
        return pyramid_share(args, device)
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


def pyramid_share(args, device) -> dict:
    """The ``--pyramid`` measurement (module docstring): median seconds per G forward +
    backward with the pyramid computed inside and given, and their ratio."""
    batch = args.batch or (32 if device.type == "cuda" else 4)
    cfg = training.load_config("paper", image_size=args.size, width=args.width,
                               batch_size=batch)
    g, _ = training.build_models(cfg)
    g.to(device)
    x = torch.rand(batch, 3, args.size, args.size, device=device)
    m = sample_masks(cfg.masks, batch, args.size, seed=0).to(device)
    given = g.mask_pyramid(m)

    class Pass:
        def __init__(self, pyramid):
            self.pyramid, self.device = pyramid, device

        def step(self, phase=None):
            g.zero_grad(set_to_none=True)
            g(x, m, pyramid=self.pyramid, check_values=False).square().mean().backward()

    sec = time_steps({"inside": Pass(None), "given": Pass(given)}, 1, args.steps, args.rounds,
                     args.warmup)
    print(f"device {device_name(device)}; G at {args.size}x{args.size}, width {args.width}, "
          f"batch {batch}, forward + backward")
    print(f"pyramid computed inside the pass: {1e3 * sec['inside']:.2f} ms; given: "
          f"{1e3 * sec['given']:.2f} ms; inside / given = {sec['inside'] / sec['given']:.3f}")
    return {**sec, "ratio": sec["inside"] / sec["given"]}


def _limit_rows(preset, residual, modes, args, device, matmul, failed) -> list:
    """The ``--limit`` rows of one network: every phase in every mode that runs; a mode that
    fails (no compiler, say) goes into ``failed``; ``matmul`` gains the training's dtype."""
    over = dict(tensorboard=False, residual=residual, standardise=residual, num_workers=0,
                eval_every=0, **({"batch_size": args.batch} if args.batch else {}))
    setups = {}
    for mode in modes:
        try:
            setup = _Setup(training.load_config(preset, step_mode=mode, **over), device)
            for phase in (1, 2, 3):
                setup.step(phase)
            setups[mode] = setup
        except Exception as e:  # noqa: BLE001 - any failure of that mode
            failed[(preset, residual, mode)] = f"{type(e).__name__}: {e}".splitlines()[0]
    if not setups:
        return []
    first = next(iter(setups.values()))
    cfg = first.trainer.cfg
    dtype = torch.bfloat16 if first.trainer.amp else torch.float32
    if dtype not in matmul:
        matmul[dtype] = matmul_gflops(args.matmul or (8192 if device.type == "cuda" else 2048),
                                      device, dtype=dtype)
    flops, rows = step_flops(cfg), []
    for phase in (1, 2, 3):
        sec = time_steps(setups, phase, args.steps, args.rounds, args.warmup + 1)
        for mode, t in sec.items():
            tflops = cfg.batch_size / t * flops[phase] / 1e12
            rows.append((preset, residual, mode, phase, t, cfg.batch_size / t, tflops, dtype,
                         sec.get(modes[0], float("nan")) / t))
    return rows


def distance_to_limit(args, device) -> dict:
    """The ``--limit`` table (see the module docstring); returns ``{(preset, residual, mode,
    phase): {"s_per_step", "images_per_s", "tflops", "fraction"}}``."""
    cuda = device.type == "cuda"
    default = "eager,static,compile,cuda_graph" if cuda else "eager,static"
    modes = (args.modes or default).split(",")
    rows, result, failed = [], {}, {}
    matmul = {}  # dtype -> best GFLOP/s, measured before and after the steps
    harmonic = {"both": (False, True), "no": (False,), "yes": (True,)}[args.harmonic]
    try:  # Ctrl-C (or a time limit's SIGINT) ends the measuring; what was measured is kept
        for preset in args.presets.split(","):
            for residual in harmonic:
                rows += _limit_rows(preset, residual, modes, args, device, matmul, failed)
    except KeyboardInterrupt:
        print("interrupted: the table holds what was measured before")
    for dtype in matmul:  # again after the steps (clocks and load change): the best of both
        matmul[dtype] = max(matmul[dtype], matmul_gflops(args.matmul or (8192 if cuda else 2048),
                                                         device, dtype=dtype))
    print(f"device {device_name(device)}; matmul rate measured in this run: " + ", ".join(
        f"{str(d).replace('torch.', '')} {g / 1e3:.1f} TFLOP/s" for d, g in matmul.items()))
    print(f"{'preset':7s} {'harmonic':8s} {'mode':10s} {'phase':>5s} {'ms/step':>8s} "
          f"{'images/s':>9s} {'TFLOP/s':>8s} {'of matmul':>9s} {'vs ' + modes[0]:>9s}")
    for preset, residual, mode, phase, t, ips, tflops, dtype, speedup in rows:
        fraction = tflops * 1e3 / matmul[dtype]
        result[(preset, residual, mode, phase)] = {"s_per_step": t, "images_per_s": ips,
                                                   "tflops": tflops, "fraction": fraction,
                                                   "matmul_gflops": matmul[dtype],
                                                   "speedup": speedup}
        print(f"{preset:7s} {'yes' if residual else 'no':8s} {mode:10s} {phase:5d} "
              f"{1e3 * t:8.2f} {ips:9.1f} {tflops:8.3f} {100 * fraction:8.2f}% {speedup:8.2f}x")
    for (preset, residual, mode), why in failed.items():
        print(f"{preset:7s} {'yes' if residual else 'no':8s} {mode:10s} failed: {why}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": device_name(device), "matmul_gflops": {
                str(d).replace("torch.", ""): g for d, g in matmul.items()},
                "rows": [dict(zip(("preset", "residual", "mode", "phase"), k), **v)
                         for k, v in result.items()],
                "failed": [dict(preset=p, residual=r, mode=m, error=e)
                           for (p, r, m), e in failed.items()]}, f, indent=1)
    return result


if __name__ == "__main__":
    main()
