"""Forward+backward time of the from-scratch partial convolution: NumPy, Numba and torch CPU.

Usage::

    python benchmarks/bench_reference.py [--batch 8] [--size 128] [--repeats 5]
        [--warmup 1] [--skip-numpy] [--quick]

On the generator's eight partial-convolution shapes (poster Table 1; the decoder layers take a
U-Net concatenation of two groups, each with its own one-channel mask, passed as
``mask_groups``) it times, in float32, the median over ``--repeats`` of forward + backward
(dx, dw, db from a fixed upstream gradient) of

* ``numpy``: ``pconv_ref.partial_conv2d_forward/backward`` (the vectorised reference),
* ``numba``: ``pconv_ref.fast.partial_conv2d_forward_fast/backward_fast`` (im2col + BLAS),
* ``torch``: ``pconv_torch.partial_conv2d`` + autograd on the CPU, with
  ``torch.set_num_threads(numba.get_num_threads())`` so both use the same cores,

and prints per-layer and total times with ratios against torch. Every input gets a gradient
(the from-scratch backward always returns dx), so torch computes dx in the first layer too.
Warm-up calls come first: the Numba JIT compile time is not measured. The goal for the
Numba path is a total within 3x of torch. The Numba path's multiplies are NumPy's OpenBLAS;
on a CPU whose AVX-512 OpenBLAS does not recognise (some virtual machines), try
``OPENBLAS_CORETYPE=SkylakeX python benchmarks/bench_reference.py``. Each implementation runs
its warm-up and repeats in one block (interleaving them would make each pay for the previous
one's spinning thread pool); other processes on the same cores make every number noisy.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import numpy as np
import torch

from pconv_torch.benchmark import cpu_name, generator_pconv_layers
from pconv_ref.fast import partial_conv2d_backward_fast, partial_conv2d_forward_fast
from pconv_ref.partial_conv import partial_conv2d_backward, partial_conv2d_forward

from pconv_torch import partial_conv2d as torch_partial_conv2d

LAYERS = generator_pconv_layers()


def _blas_info() -> str:
    """NumPy's BLAS and the kernel architecture it picked (threadpoolctl, when installed)."""
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            if info.get("user_api") == "blas":
                return f"{info.get('internal_api')} {info.get('version')} " \
                       f"({info.get('architecture')} kernels, {info.get('num_threads')} threads)"
    except ImportError:
        pass
    return "unknown (install threadpoolctl to see it)"


def _avx512() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return " avx512f" in f.read()
    except OSError:
        return False


def _make_layer(spec, batch, size, rng):
    """float32 inputs and the three fwd+bwd callables for one layer shape."""
    name, groups, c_out, k, s, p, div = spec
    c_in, h = sum(groups), size // div
    x = rng.random((batch, c_in, h, h), dtype=np.float32)
    mask = (rng.random((batch, len(groups), h, h)) > 0.25).astype(np.float32)
    w = (rng.standard_normal((c_out, c_in, k, k)) / np.sqrt(c_in * k * k)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    mask_groups = groups if len(groups) > 1 else None
    h_out = (h + 2 * p - k) // s + 1
    dout = rng.standard_normal((batch, c_out, h_out, h_out)).astype(np.float32)

    def run_numpy():
        out, _, cache = partial_conv2d_forward(x, mask, w, b, s, p, mask_groups)
        partial_conv2d_backward(dout, cache)

    def run_numba():
        out, _, cache = partial_conv2d_forward_fast(x, mask, w, b, s, p, mask_groups)
        partial_conv2d_backward_fast(dout, cache)

    tx = torch.from_numpy(x).requires_grad_(True)
    tm = torch.from_numpy(mask)
    tw = torch.from_numpy(w).requires_grad_(True)
    tb = torch.from_numpy(b).requires_grad_(True)
    tdout = torch.from_numpy(dout)

    def run_torch():
        for t in (tx, tw, tb):
            t.grad = None
        out, _ = torch_partial_conv2d(tx, tm, tw, tb, s, p, mask_groups=mask_groups)
        out.backward(tdout)

    return {"numpy": run_numpy, "numba": run_numba, "torch": run_torch}, f"{h}x{h}"


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench(batch, size, repeats, warmup, impls):
    rng = np.random.default_rng(0)
    rows = []
    for spec in LAYERS:
        fns, hw = _make_layer(spec, batch, size, rng)
        fns = {k: fns[k] for k in impls}
        times = {}
        # One implementation at a time: interleaving them makes each pay for the previous
        # one's thread pool (OpenMP and OpenBLAS workers spin for a while after a call).
        for k, fn in fns.items():
            for _ in range(warmup):  # includes the Numba compile on the first layer
                fn()
            times[k] = [_time(fn) for _ in range(repeats)]
        rows.append((spec, hw, {k: statistics.median(v) for k, v in times.items()}))
    return rows


def _print_table(rows, impls):
    cols = "".join(f"{k + ' ms':>11}" for k in impls)
    ratios = "".join(f"{k + '/torch':>13}" for k in impls if k != "torch")
    head = f"{'layer':6} {'C_in->C_out k/s @HxW':26}{cols}{ratios}"
    print(head)
    print("-" * len(head))
    tot = dict.fromkeys(impls, 0.0)
    for (name, groups, c_out, k, s, p, div), hw, t in rows:
        shape = f"{'+'.join(map(str, groups))}->{c_out} k{k}/s{s} @{hw}"
        for key in impls:
            tot[key] += t[key]
        line = "".join(f"{1e3 * t[k]:11.1f}" for k in impls)
        line += "".join(f"{t[k] / t['torch']:13.2f}" for k in impls if k != "torch")
        print(f"{name:6} {shape:26}{line}")
    print("-" * len(head))
    line = "".join(f"{1e3 * tot[k]:11.1f}" for k in impls)
    line += "".join(f"{tot[k] / tot['torch']:13.2f}" for k in impls if k != "torch")
    print(f"{'total':6} {'':26}{line}")
    return tot


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=128, help="generator input size (multiple of 8)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--skip-numpy", action="store_true", help="time only Numba and torch")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: batch 2, size 32, 2 repeats, 1 warmup")
    args = ap.parse_args(argv)
    if args.quick:
        args.batch, args.size, args.repeats, args.warmup = 2, 32, 2, 1
    if args.size % 8:
        ap.error("--size must be a multiple of 8")
    threads = numba.get_num_threads()
    torch.set_num_threads(threads)
    impls = (["numpy"] if not args.skip_numpy else []) + ["numba", "torch"]

    print(f"CPU: {cpu_name()}; threads: numba {threads}, torch {torch.get_num_threads()} "
          f"(numba layer {numba.config.THREADING_LAYER}); numpy {np.__version__}, "
          f"numba {numba.__version__}, torch {torch.__version__}")
    blas = _blas_info()
    print(f"numpy BLAS: {blas}")
    if "Haswell" in blas and _avx512():
        print("note: this CPU has AVX-512 but OpenBLAS picked its AVX2 (Haswell) kernels; "
              "OPENBLAS_CORETYPE=SkylakeX in the environment may double the GEMM speed")
    print(f"float32, batch {args.batch}, input {args.size}x{args.size}, median of {args.repeats} "
          f"forward+backward after {args.warmup} warm-up (JIT compile excluded)\n")
    tot = _print_table(bench(args.batch, args.size, args.repeats, args.warmup, impls), impls)
    ratio = tot["numba"] / tot["torch"]
    print(f"\nNumba total / torch total = {ratio:.2f} (goal: <= 3): "
          f"{'met' if ratio <= 3 else 'NOT met'}")


if __name__ == "__main__":
    main()
