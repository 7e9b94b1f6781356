"""The measurements behind the shipped recipe: short phase-1 runs that differ in one choice.

Each run is the ``cpu`` preset's generator trained on L_MSE alone for 1,500 steps (batch 16,
64x64), scored on the held-out photographs every 500 steps by the trainer
(:mod:`pconv_torch.monitor`). Each run differs from the one it builds on in one choice:

=================== =========================================================================
photos              the 13 training photographs, random crops and flips only; Adam 2e-4,
                    betas (0.5, 0.999)
mixed               + colour jitter 0.1 and half the items dead-leaves images
mixed_adam          + Adam 5e-4 with betas (0.9, 0.999) (the shipped recipe's optimiser)
mixed_ema           + an exponential moving average of G's weights (decay 0.998), scored instead
                    of the trained weights (``TrainConfig.ema``)
mixed_ema_decay     mixed_ema + the learning rate falling linearly to a tenth over the whole run
mixed_ema_lr1e3     mixed_ema with Adam 1e-3
mixed_ema_batchnorm mixed_ema with batch normalisation in the generator (``norm="batch"``)
quarter_procedural  mixed_ema with a quarter of the items dead leaves instead of half
wider               mixed_ema with the generator at 3/4 of the poster's width instead of 1/2
residual            mixed_ema with the generator correcting the harmonic fill
                    (``residual=True``)
uniform_leaves      residual with half the dead-leaves images coloured uniformly in the RGB cube
                    instead of from a photograph's palette (``uniform_leaves=0.5``, the
                    shipped recipe)
all_uniform_leaves  residual with every dead-leaves image coloured uniformly
smooth_fields       uniform_leaves with a quarter of the dead-leaves images replaced by smooth
                    colour fields (:func:`pconv_torch.procedural.smooth_field`,
                    ``smooth_fields=0.25``)
smooth_fields_half  the same with half of them (``smooth_fields=0.5``)
standardise         uniform_leaves with the generator seeing its input standardised by the
                    known pixels' mean and contrast, and its correction scaled by that contrast
                    (``standardise=True``)
balance_half        standardise with each image's loss weighted by (its L_MSE)^-1/2
                    (``balance=0.5``, :func:`pconv_torch.losses.mse_weighted`)
balance             standardise with each image weighted by 1 / its L_MSE, so that every
                    image's PSNR counts the same (``balance=1``)
=================== =========================================================================

Usage (each run takes about five minutes on one core; ``--jobs 2`` runs two at a time, each
with one thread)::

    python scripts/recipe_sweep.py --out runs/recipe --jobs 2

It prints the held-out hole PSNR of every run at every evaluation step, beside the classical
methods' scores on the same crops, and each run's final scores on the synthetic scenes (flat,
gradient, edge: :func:`pconv_torch.procedural.sanity_images`). A finished run is not trained
again.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

SHORT = dict(phase1_iters=1500, phase2_iters=0, phase3_iters=0, lr_decay=0.0, ema=0.0, residual=False,
             standardise=False, eval_every=500)
RUNS = {
    "photos": dict(SHORT, procedural=0.0, jitter=0.0, lr_g=2e-4, betas=(0.5, 0.999)),
    "mixed": dict(SHORT, procedural=0.5, jitter=0.1, lr_g=2e-4, betas=(0.5, 0.999)),
    "mixed_adam": dict(SHORT, procedural=0.5, jitter=0.1, lr_g=5e-4, betas=(0.9, 0.999)),
    "mixed_ema": dict(SHORT, procedural=0.5, jitter=0.1, lr_g=5e-4, betas=(0.9, 0.999), ema=0.998),
    "mixed_ema_decay": dict(SHORT, procedural=0.5, jitter=0.1, lr_g=5e-4, betas=(0.9, 0.999),
                            ema=0.998, lr_decay=1.0),
    "mixed_ema_lr1e3": dict(SHORT, procedural=0.5, jitter=0.1, lr_g=1e-3, betas=(0.9, 0.999), ema=0.998),
    "mixed_ema_batchnorm": dict(SHORT, procedural=0.5, jitter=0.1, lr_g=5e-4, betas=(0.9, 0.999),
                                ema=0.998, norm="batch"),
    "quarter_procedural": dict(SHORT, procedural=0.25, jitter=0.1, lr_g=5e-4, betas=(0.9, 0.999),
                               ema=0.998),
    "wider": dict(SHORT, procedural=0.5, jitter=0.1, lr_g=5e-4, betas=(0.9, 0.999), ema=0.998,
                  width=0.75),
    "residual": dict(SHORT, procedural=0.5, jitter=0.1, lr_g=5e-4, betas=(0.9, 0.999), ema=0.998,
                     residual=True),
    "uniform_leaves": dict(SHORT, procedural=0.5, jitter=0.1, lr_g=5e-4, betas=(0.9, 0.999),
                           ema=0.998, residual=True, uniform_leaves=0.5),
    "all_uniform_leaves": dict(SHORT, procedural=0.5, jitter=0.1, lr_g=5e-4, betas=(0.9, 0.999),
                               ema=0.998, residual=True, uniform_leaves=1.0),
    "smooth_fields": dict(SHORT, procedural=0.5, jitter=0.1, lr_g=5e-4, betas=(0.9, 0.999),
                          ema=0.998, residual=True, uniform_leaves=0.5, smooth_fields=0.25),
    "smooth_fields_half": dict(SHORT, procedural=0.5, jitter=0.1, lr_g=5e-4, betas=(0.9, 0.999),
                               ema=0.998, residual=True, uniform_leaves=0.5, smooth_fields=0.5),
    "standardise": dict(SHORT, procedural=0.5, jitter=0.1, lr_g=5e-4, betas=(0.9, 0.999),
                        ema=0.998, residual=True, uniform_leaves=0.5, standardise=True),
}
RUNS["balance_half"] = dict(RUNS["standardise"], balance=0.5)
RUNS["balance"] = dict(RUNS["standardise"], balance=1.0)


def train_one(name: str, out: Path) -> None:
    import torch

    from pconv_torch.training import load_config, train

    torch.set_num_threads(1)
    train(load_config("cpu", **RUNS[name]), out_dir=out / name, progress=False)


def report(out: Path, runs=tuple(RUNS)) -> str:
    from pconv_torch.monitor import REFERENCE_METHODS, read_eval_log

    lines = ["| run | step | center | rect |", "|---|---:|---:|---:|"]
    refs = {}
    for name in runs:
        rows = read_eval_log(out / name)
        steps = sorted({r["step"] for r in rows if r["method"] == "generator" and r["step"] > 0})
        for step in steps:
            v = {r["masks"]: r["psnr_hole"] for r in rows if r["method"] == "generator"
                 and r["split"] == "heldout" and r["step"] == step}
            lines.append(f"| {name} | {step} | {v['center']:.2f} | {v['rect']:.2f} |")
        for r in rows:  # the same crops in every run; older runs lack the newer references
            if r["method"] in REFERENCE_METHODS and r["split"] == "heldout":
                refs[(r["method"], r["masks"])] = r["psnr_hole"]
    for method in sorted({m for m, _ in refs}):
        lines.append(f"| {method} | | {refs[(method, 'center')]:.2f} | {refs[(method, 'rect')]:.2f} |")
    return "\n".join(lines)


def sanity_report(out: Path, runs=tuple(RUNS)) -> str:
    """Each run's final generator on the synthetic scenes (:func:`pconv_torch.results.sanity_table`)."""
    from pconv_torch.checkpoint import load_generator
    from pconv_torch.results import ALL_SANITY_CASES as SANITY_CASES, sanity_table

    head = " | ".join(f"{case} | max" for case in SANITY_CASES)
    lines = [f"| run | {head} |", "|---|" + "---:|" * (2 * len(SANITY_CASES))]
    for name in runs:
        rows = {r["case"]: r for r in sanity_table({name: load_generator(out / name).eval()},
                                                   cases=SANITY_CASES)}
        cells = " | ".join(f"{rows[c]['psnr_hole']:.1f} | {rows[c]['max_error']:.1f}"
                           for c in SANITY_CASES)
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


def kinds_report(out: Path, runs) -> str:
    """The runs' final generators per content kind, beside biharmonic and the harmonic fill
    (:func:`pconv_torch.results.kind_table`), one Markdown table per mask family."""
    from pconv_torch.checkpoint import load_generator
    from pconv_torch.results import FAMILIES, format_kinds, kind_table, methods_for

    methods = {n: f for n, f in methods_for({n: load_generator(out / n).eval() for n in runs}).items()
               if n in runs or n in ("scikit-image biharmonic", "harmonic fill")}
    rows = kind_table(methods)
    return "\n".join(f"\nper content kind, masks '{family}':\n\n" + format_kinds(rows, family)
                     for family in FAMILIES)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/recipe", type=Path)
    p.add_argument("--jobs", type=int, default=1, help="runs trained at the same time")
    p.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS),
                   help="the runs to train and report (default: all)")
    p.add_argument("--kinds", action="store_true",
                   help="also score the runs per content kind (pconv_torch.results.kind_table)")
    p.add_argument("--only", help=argparse.SUPPRESS)  # one run, in this process
    args = p.parse_args(argv)
    if args.only:
        train_one(args.only, args.out)
        return 0
    pending = list(args.runs)
    while pending:
        batch, pending = pending[:args.jobs], pending[args.jobs:]
        procs = [subprocess.Popen([sys.executable, __file__, "--out", str(args.out), "--only", n])
                 for n in batch]
        if any(proc.wait() for proc in procs):
            return 1
    print("held-out hole PSNR (dB), 48 crops of the 6 held-out photographs, 64x64:\n")
    print(report(args.out, args.runs))
    print("\nsynthetic scenes (16 each, 64x64, centred 32x32 hole): hole PSNR (dB) and the "
          "largest error (8-bit levels) of each run's final generator:\n")
    print(sanity_report(args.out, args.runs))
    if args.kinds:
        print(kinds_report(args.out, args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
