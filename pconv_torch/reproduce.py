"""Retrain the shipped generators and export them into ``pconv_torch/weights/``.

:func:`export` writes a finished training run's generator as ``<name>.safetensors`` with its
training curves and records it in ``manifest.json``; :func:`main` is the command
``python -m pconv_torch.shipped`` (see :mod:`pconv_torch.shipped`, which loads what this
module writes and never imports it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import torch

from .config import ABLATIONS
from .networks import generator_settings
from .fileio import atomic_write
from .shipped import (MANIFEST, SHIPPED, SOURCES, WEIGHTS_DIR, _sha256, manifest,
                      reproduce_command, shipped_config)

__all__ = ["export", "main"]


def export(run_dir, name: str, weights_dir=None, **extra) -> dict:
    """Write the generator of the training run ``run_dir`` as ``<name>.safetensors`` and
    record it in the manifest (atomically). Returns the manifest entry."""
    from safetensors.torch import save

    from .checkpoint import load_checkpoint

    state = load_checkpoint(run_dir)
    cfg = state["config_obj"]
    if state["step"] < cfg.total_steps:
        raise ValueError(f"{run_dir}: training is not finished (step {state['step']} of "
                         f"{cfg.total_steps}); run it to the end first")
    # the averaged weights when the run kept them (TrainConfig.ema), as load_generator does
    weights = {k: v.contiguous() for k, v in state.get("generator_ema", state["generator"]).items()}
    if not all(bool(torch.isfinite(v).all()) for v in weights.values()):
        raise ValueError(f"{run_dir}: the generator has non-finite weights; not exported")
    out = Path(weights_dir or WEIGHTS_DIR)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.safetensors"
    with atomic_write(path) as f:
        f.write(save(weights))
    for log in ("log.csv", "eval.csv"):  # the training curves, for the book
        src = Path(run_dir) / log
        if src.is_file():
            with atomic_write(out / f"{name}.{log}") as f:
                f.write(src.read_bytes())
    entry = {
        "file": path.name, "sha256": _sha256(path), "image_size": cfg.image_size,
        "generator": generator_settings(cfg),
        "description": ABLATIONS[SOURCES[name][0]][0] if name in SOURCES else "",
        "reproduce": reproduce_command(name), "steps": int(state["step"]),
        "train_config": cfg.to_dict(), **extra,
    }
    with _locked(out / ".manifest.lock"):  # two trainings may export at the same time
        man = manifest(out)
        man["models"][name] = entry
        man["reproduce"] = "python -m pconv_torch.shipped --out runs/shipped"
        with atomic_write(out / MANIFEST, "w") as f:
            json.dump(man, f, indent=1, sort_keys=True)
            f.write("\n")
    return entry


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path`` (POSIX ``flock``; no locking where that is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def main(argv=None) -> int:
    """Train the shipped models (resuming finished or killed runs) and export them."""
    from .training import train

    p = argparse.ArgumentParser(prog="python -m pconv_torch.shipped", description=main.__doc__)
    p.add_argument("--out", default="runs/shipped", help="directory of the training runs")
    p.add_argument("--only", nargs="*", choices=sorted(SOURCES),
                   help=f"train only these models (default: the four of the comparison, "
                        f"{', '.join(SHIPPED)}; full_128 needs --device cuda)")
    p.add_argument("--device", default="cpu", help="torch device to train on (default cpu)")
    p.add_argument("--weights-dir", default=None, help=f"where to export (default {WEIGHTS_DIR})")
    args = p.parse_args(argv)
    for name in args.only or list(SHIPPED):
        run_dir = Path(args.out) / name
        t0 = time.perf_counter()
        result = train(shipped_config(name), out_dir=run_dir, device=args.device)
        if result["status"] != "finished":
            print(f"{name}: {result['status']} at step {result['step']}; rerun to resume")
            return 1
        where = ({"device": torch.cuda.get_device_name(args.device)}
                 if str(args.device).startswith("cuda") else
                 {"torch_threads": torch.get_num_threads()})
        entry = export(run_dir, name, args.weights_dir,
                       train_seconds=round(float(_run_seconds(run_dir)), 1), **where)
        print(f"{name}: {entry['file']} sha256 {entry['sha256'][:16]}... "
              f"({time.perf_counter() - t0:.0f} s in this call)")
    return 0


def _run_seconds(run_dir) -> float:
    """Training wall time of a run: the sum over its log of each resumed segment's seconds."""
    from .training import read_log

    log = read_log(run_dir)
    secs, total, prev = log["seconds"], 0.0, 0.0
    for s in secs:  # "seconds" restarts from 0 in each resumed segment
        if s < prev:
            total += prev
        prev = s
    return total + prev
