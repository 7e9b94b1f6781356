"""Forward+backward time of PartialConv2d against nn.Conv2d over the generator's layer shapes.

Usage::

    python benchmarks/bench_partial_conv.py [--batch 8] [--size 128] [--repeats 10]
        [--device cpu|cuda|all] [--quick] [--threads N] [--clock wall|cpu] [--stat median|min]
        [--layers enc1,dec8]

(``pconv bench`` runs the same with the defaults, ``pconv bench --quick`` the smoke run.)

On a shared, loaded machine wall-clock medians with several threads mostly measure the
scheduler (every extra small parallel op may wait a time slice); ``--threads 1 --clock cpu``
gives steadier CPU ratios there.

For each of the generator's eight partial-convolution shapes (poster Table 1; decoder layers
take the concatenation of two groups, each with its own mask, passed as ``mask_groups``) it
times, in one run, the median over ``--repeats`` of forward + backward of

* ``conv``:  ``nn.Conv2d`` (the baseline; ratio 1.00),
* ``pconv``: :class:`pconv_torch.PartialConv2d` (one-channel mask arithmetic),
* ``naive``: the textbook partial convolution that convolves the full ``C_in``-channel mask
  with a ones kernel (:func:`pconv_torch.partial_conv2d_naive`),

and prints per-layer and total times with ratios against ``nn.Conv2d``. The first layer's input
is the image, which needs no gradient; every other input does. The three variants run
interleaved (conv, pconv, naive, conv, ...) so that load drifts hit them alike.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from torch import nn

from .partial_conv import PartialConv2d, partial_conv2d_naive

def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform module knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def generator_pconv_layers(size: int = 128):
    """The generator's eight partial convolutions before its 3-channel head, read from the live
    ``pconv_torch.Generator()`` (poster Table 1).

    Returns a list of ``(name, input groups, C_out, k, stride, padding, size // input size)``;
    a decoder layer's input groups are the upsampled features and the skip, e.g. ``(256, 128)``.
    """
    from .networks import Generator
    from .summary import architecture_table

    generator = Generator()
    rows = architecture_table(generator, input_size=(1, 3, size, size))
    layers = []
    for index, row in enumerate(r for r in rows if r["layer"] == "PConv"):
        if index == 8:
            break
        conv = generator.layers[index].conv
        groups = tuple(int(c) for c in str(row["in"]).split("+"))
        input_size = row["output"][1] * row["S"]
        name = f"enc{index + 1}" if row["S"] == 2 else f"dec{index + 1}"
        layers.append((name, groups, row["F"], row["K"], row["S"], conv.padding[0], size // input_size))
    return layers


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _make_layer(name, groups, c_out, k, s, p, div, batch, size, device, gen):
    """Inputs and the three callables for one layer shape."""
    c_in, h = sum(groups), size // div
    x = torch.rand(batch, c_in, h, h, generator=gen).to(device).requires_grad_(name != "enc1")
    # Random rectangular-ish holes: per group its own mask, as after a U-Net concatenation.
    masks = (torch.rand(batch, len(groups), h, h, generator=gen) > 0.25).float().to(device)
    h_out = (h + 2 * p - k) // s + 1
    # a dense upstream gradient, as a following activation's backward would give
    grad = torch.randn(batch, c_out, h_out, h_out, generator=gen).to(device)
    conv = nn.Conv2d(c_in, c_out, k, s, p).to(device)
    pconv = PartialConv2d(c_in, c_out, k, s, p, check_inputs=False).to(device)  # as in G
    mask_groups = groups if len(groups) > 1 else None

    def run_conv():
        conv(x).backward(grad)

    def run_pconv():
        pconv(x, masks, mask_groups)[0].backward(grad)

    def run_naive():
        partial_conv2d_naive(x, masks, pconv.weight, pconv.bias, s, p, mask_groups)[0] \
            .backward(grad)

    return {"conv": run_conv, "pconv": run_pconv, "naive": run_naive}


def _time(fn, device, clock) -> float:
    _sync(device)
    t0 = clock()
    fn()
    _sync(device)
    return clock() - t0


def bench_device(layers, device, batch, size, repeats, warmup, clock=time.perf_counter,
                 stat="median"):
    """Time conv, pconv and naive fwd+bwd on each layer spec; returns [(spec, {name: s})]."""
    gen = torch.Generator().manual_seed(0)
    rows = []
    for spec in layers:
        fns = _make_layer(*spec, batch=batch, size=size, device=device, gen=gen)
        for _ in range(warmup):
            for fn in fns.values():
                fn()
        times = {k: [] for k in fns}
        for _ in range(repeats):
            for k, fn in fns.items():
                times[k].append(_time(fn, device, clock))
        reduce = statistics.median if stat == "median" else min
        rows.append((spec, {k: reduce(v) for k, v in times.items()}))
    return rows


def _print_table(device, rows):
    head = f"{'layer':6} {'shape (C_in->C_out k/s @HxW)':30} {'conv ms':>9} {'pconv ms':>9} " \
           f"{'naive ms':>9} {'pconv/conv':>11} {'naive/conv':>11}"
    print(f"\n== device: {device} ==")
    print(head)
    print("-" * len(head))
    tot = {"conv": 0.0, "pconv": 0.0, "naive": 0.0}
    for (name, groups, c_out, k, s, p, div), t in rows:
        c_in = "+".join(map(str, groups))
        shape = f"{c_in}->{c_out} k{k}/s{s} @{t.get('hw', '')}"
        for key in tot:
            tot[key] += t[key]
        print(f"{name:6} {shape:30} {1e3 * t['conv']:9.2f} {1e3 * t['pconv']:9.2f} "
              f"{1e3 * t['naive']:9.2f} {t['pconv'] / t['conv']:11.3f} "
              f"{t['naive'] / t['conv']:11.3f}")
    print("-" * len(head))
    print(f"{'total':6} {'':30} {1e3 * tot['conv']:9.2f} {1e3 * tot['pconv']:9.2f} "
          f"{1e3 * tot['naive']:9.2f} {tot['pconv'] / tot['conv']:11.3f} "
          f"{tot['naive'] / tot['conv']:11.3f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=128, help="generator input size (multiple of 8)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu = process CPU time (steadier on a loaded machine with --threads 1;"
                    " CPU only)")
    ap.add_argument("--stat", choices=["median", "min"], default="median")
    ap.add_argument("--layers", default=None, help="comma-separated subset, e.g. enc1,dec8")
    ap.add_argument("--quick", action="store_true",
                    help="tiny smoke run: batch 2, size 32, 2 repeats, 1 warmup")
    args = ap.parse_args(argv)
    if args.quick:
        args.batch, args.size, args.repeats, args.warmup = 2, 32, 2, 1
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.size % 16:
        ap.error("--size must be a multiple of 16")
    layers = generator_pconv_layers(args.size)
    if args.layers:
        wanted = set(args.layers.split(","))
        unknown = wanted - {spec[0] for spec in layers}
        if unknown:
            ap.error(f"unknown layers {sorted(unknown)}")
        layers = [spec for spec in layers if spec[0] in wanted]

    devices = []
    if args.device in ("cpu", "all"):
        devices.append(torch.device("cpu"))
    if args.device in ("cuda", "all"):
        if torch.cuda.is_available():
            devices.append(torch.device("cuda"))
        elif args.device == "cuda":
            ap.error("--device cuda: no CUDA device available")

    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}, CPU: {cpu_name()}")
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name(0)}")
    if args.clock == "cpu" and args.device != "cpu":
        ap.error("--clock cpu only makes sense with --device cpu")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"batch {args.batch}, input {args.size}x{args.size}, {args.stat} of {args.repeats} "
          f"fwd+bwd ({args.clock} clock) after {args.warmup} warmup; "
          "pconv decoder layers use mask_groups")
    for device in devices:
        rows = bench_device(layers, device, args.batch, args.size, args.repeats, args.warmup, clock,
                            args.stat)
        for (spec, t) in rows:
            t["hw"] = f"{args.size // spec[-1]}"
        _print_table(device, rows)


if __name__ == "__main__":
    main()
