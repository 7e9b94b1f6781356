"""The smoothness gate: a network's fill where a hole's surroundings are textured, the
biharmonic fill where they are smooth.

On smooth shading (skies, walls, out-of-focus backgrounds) the biharmonic (thin-plate) fill
is close to exact, and a learnt correction can only add error and a faint pattern; beside
texture and edges the network is better. The gate blends the two per hole pixel::

    out = w * network + (1 - w) * biharmonic,    w = e / (e + TAU)

where ``e`` estimates how much fine structure surrounds that pixel (:func:`texture_energy`):

1. the luminance ``Y = 0.299 R + 0.587 G + 0.114 B`` and its response to the biharmonic
   stencil (the 5-point Laplacian applied twice), which is zero on any quadratic shading: a
   flat colour, a linear gradient or a curved one; squared, at the known pixels whose whole
   5x5 stencil is known;
2. averaged over such pixels in a box of ``2 * RADIUS + 1`` pixels around each pixel;
3. carried into the hole by the harmonic fill (:func:`pconv_torch.harmonic.harmonic_fill`):
   each hole pixel gets a smooth average of the energies around the hole, the nearer ones
   counting more, so one hole can be smooth at one end and textured at the other.

It is computed at :data:`ANALYSIS_SIDE` pixels (a larger picture is first reduced, the weight
enlarged back), so the same content gets the same weight at every size. A picture with no
known 5x5 neighbourhood gets ``w = 1`` (the network alone).

:data:`TAU` was chosen by :func:`calibrate` (``python -m pconv_torch.smooth_gate``) on the crops of
the six *calibration* photographs (:data:`pconv_torch.data.EMBEDDED_VAL`, which no network
trained on) with the shipped ``full`` model: the value of a coarse grid with the best mean hole
PSNR over both mask families. The held-out crops played no part. (On the training photographs
the networks look better than on any new one, and the same search trusts them more.)
:func:`calibrate_fill` (``python -m pconv_torch.smooth_gate --fill``) scores the biharmonic
fill itself the same way, on the calibration photographs' smooth crops, for each number of
conjugate-gradient steps at the finest level (:data:`pconv_torch.harmonic.CG_FINE`).

Shapes: images (N, 3, H, W) in [0, 1], masks (N, 1, H, W) with 1 = known, 0 = hole; computed on
the tensors' device (``inpaint`` runs it where the generator runs).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from .content import LUMA
from .harmonic import BIHARMONIC_STENCIL, biharmonic_fill, bounded_fill, harmonic_fill

__all__ = ["TAU", "RADIUS", "ANALYSIS_SIDE", "CALIBRATION_TAUS", "CONSTANT_SHARES",
           "CALIBRATION_STEPS", "texture_energy", "gate_weight", "gated_fill", "calibrate",
           "calibrate_fill"]

TAU = 3e-2  # energy at which the network and the biharmonic fill count equally (calibrate())
RADIUS = 4  # the energy is averaged over a (2 * RADIUS + 1)^2 box of known pixels
ANALYSIS_SIDE = 64  # shorter side at which the energy is measured
CALIBRATION_TAUS = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)  # the grid calibrate() searched
CONSTANT_SHARES = (0.5, 0.7, 0.85)  # constant mixes calibrate() scores beside the gate
CALIBRATION_STEPS = (4, 8, 16, 32, 64, 256)  # the fine steps calibrate_fill() compares
SPLIT_NAMES = {"val": "calibration", "train": "training", "test": "held-out"}  # main()'s --split


@torch.no_grad()
def texture_energy(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fine-structure energy around every pixel (steps 1-3 of the module docstring), at the
    image's own size.

    Args: image (N, 3, H, W), mask (N, 1, H, W) 1 = known.
    Returns: (N, 1, H, W) float32 >= 0; ``inf`` everywhere for an image without a known 5x5
    neighbourhood (the gate then keeps the network's fill).
    """
    image, mask = image.float(), mask.float()
    luma = sum(c * image[:, i:i + 1] for i, c in enumerate(LUMA))
    stencil = luma.new_tensor(BIHARMONIC_STENCIL)[None, None]
    response = F.conv2d(F.pad(luma, (2,) * 4, mode="replicate"), stencil)
    known5 = F.conv2d(F.pad(mask, (2,) * 4, mode="replicate"), mask.new_ones(1, 1, 5, 5)) > 24.5
    energy = response ** 2 * known5
    box = mask.new_ones(1, 1, 2 * RADIUS + 1, 2 * RADIUS + 1)
    total = F.conv2d(F.pad(energy, (RADIUS,) * 4, mode="replicate"), box)
    count = F.conv2d(F.pad(known5.float(), (RADIUS,) * 4, mode="replicate"), box)
    local, measured = total / count.clamp_min(1.0), (count > 0.5).float()
    out = torch.full_like(local, float("inf"))
    some = measured.flatten(1).amax(1) > 0
    if bool(some.any()):
        out[some] = harmonic_fill(local[some], measured[some])
    return out


@torch.no_grad()
def gate_weight(image: torch.Tensor, mask: torch.Tensor, tau: float = TAU) -> torch.Tensor:
    """The network's share ``w`` in [0, 1] per pixel (module docstring), measured at
    :data:`ANALYSIS_SIDE` and enlarged (bilinear) to the image's size.

    Args: image (N, 3, H, W), mask (N, 1, H, W) 1 = known; tau > 0.
    Returns: (N, 1, H, W) float32.
    """
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau!r}")
    h, w = image.shape[-2:]
    factor = min(h, w) / ANALYSIS_SIDE
    if factor > 1:
        size = (max(1, round(h / factor)), max(1, round(w / factor)))
        image = F.interpolate(image.float(), size=size, mode="area")
        mask = (F.interpolate(mask.float(), size=size, mode="area") >= 1 - 1e-6).float()
    weight = _share(texture_energy(image, mask), tau)
    if weight.shape[-2:] != (h, w):
        weight = F.interpolate(weight, size=(h, w), mode="bilinear", align_corners=False)
    return weight


def _share(energy: torch.Tensor, tau: float) -> torch.Tensor:
    """``e / (e + tau)``, and 1 where the energy is ``inf`` (nothing measured)."""
    return torch.where(torch.isinf(energy), torch.ones_like(energy), energy / (energy + tau))


@torch.no_grad()
def gated_fill(fill: torch.Tensor, image: torch.Tensor, mask: torch.Tensor,
               tau: float = TAU) -> torch.Tensor:
    """``fill`` (a network's, (N, 3, H, W)) where the surroundings are textured, the
    biharmonic fill of ``image`` where they are smooth (at reduced resolution for a picture
    larger than :data:`pconv_torch.harmonic.FILL_MAX_SIDE`,
    :func:`~pconv_torch.harmonic.bounded_fill`); known pixels are ``fill``'s.

    Args: fill, image (N, 3, H, W); mask (N, 1, H, W) 1 = known.
    Returns: (N, 3, H, W) float32.
    """
    weight = gate_weight(image, mask, tau)
    smooth = bounded_fill(biharmonic_fill, image.float(), mask.float())
    return fill.float() * weight + smooth * (1 - weight)


def calibrate(model: str = "full", taus=CALIBRATION_TAUS, shares=CONSTANT_SHARES,
              split: str = "val", n: int = 160, seed: int = 7) -> list[dict]:
    """Mean hole PSNR (dB) of the shipped ``model`` gated with each ``tau``, beside the model
    alone and constant mixes ``share * model + (1 - share) * biharmonic`` (the same share at
    every pixel), with the fixed masks of each family (seed 99), on the 135 crops of the
    calibration photographs (``split="val"``, :data:`pconv_torch.data.EMBEDDED_VAL`), on
    ``n`` random crops of the training photographs (``split="train"``, no dead leaves, seed
    ``seed``: there the networks look better than on photographs they never saw), or, for
    comparison only, on the 138 crops of the held-out photographs (``split="test"``).

    Returns one row per setting: ``tau`` (None for the others), ``share`` (1.0 for the model
    alone, None for a gate), ``center``, ``rect``, their ``mean`` and ``n``, the crops scored."""
    from . import evaluate as ev
    from .data import EmbeddedPhotos
    from .masks import eval_mask_set
    from .methods import generator_method
    from .shipped import pretrained

    data = EmbeddedPhotos(split, size=64, length=n, seed=seed)
    images = torch.stack([data[i] for i in range(len(data))])
    n = len(images)
    net = generator_method(pretrained(model))
    settings = [(None, 1.0)] + [(None, s) for s in shares] + [(t, None) for t in taus]
    scores: dict = {}
    for family in ("center", "rect"):
        masks = eval_mask_set(family, n=n, size=64, seed=99)
        x = images * masks
        fill = net(x, masks)
        smooth, energy = biharmonic_fill(x, masks), texture_energy(x, masks)
        for tau, share in settings:
            w = share if tau is None else _share(energy, tau)
            out = (fill * w + smooth * (1 - w)) * (1 - masks) + images * masks
            scores[tau, share, family] = float(np.nanmean(ev.psnr(out, images, masks,
                                                                  max_db=ev.PSNR_CAP)))
    rows = []
    for tau, share in settings:
        c, r = scores[tau, share, "center"], scores[tau, share, "rect"]
        rows.append({"tau": tau, "share": share, "center": c, "rect": r, "mean": (c + r) / 2,
                     "n": n})
    return rows


def calibrate_fill(steps=CALIBRATION_STEPS, sizes=(64, 128), limit: int | None = None,
                   split: str = "val", families=("center", "rect")) -> list[dict]:
    """Mean hole PSNR (dB) of :func:`~pconv_torch.harmonic.biharmonic_fill` with each number
    of conjugate-gradient steps at the finest level in ``steps``, and of scikit-image's exact
    solve, on the smooth crops of ``split``'s photographs (by default the calibration ones;
    :func:`pconv_torch.content.soft_crops`, at most ``limit`` of them)
    at each size in ``sizes``, with each of ``families``: the centred hole and the rectangles
    (the fixed masks, seed 99); of each, the crops the rule calls smooth in the hole.

    Returns one row per setting: ``steps`` (None for scikit-image), the score of each
    ``"<size> <family>"`` and their ``mean``."""
    from . import evaluate as ev
    from .baselines import make_baselines
    from .content import content_kinds, soft_crops
    from .masks import eval_mask_set
    from .methods import batched

    exact = batched(make_baselines()["scikit-image biharmonic"])
    rows = [{"steps": k} for k in (*steps, None)]
    for size in sizes:
        crops = soft_crops(size, split=split)[0][:limit]
        for family in families:
            masks = eval_mask_set(family, n=len(crops), size=size, seed=99)
            keep = torch.from_numpy(content_kinds(crops, masks) == "smooth")
            images, masks = crops[keep], masks[keep]
            x = images * masks
            for row in rows:
                k = row["steps"]
                fill = exact(x, masks) if k is None else biharmonic_fill(x, masks, fine_steps=k)
                out = fill * (1 - masks) + images * masks
                row[f"{size} {family}"] = float(np.nanmean(ev.psnr(out, images, masks,
                                                                  max_db=ev.PSNR_CAP)))
    for row in rows:
        row["mean"] = float(np.mean([v for key, v in row.items() if key != "steps"]))
    return rows


def main(argv=None) -> int:
    """Print :func:`calibrate`'s table (how :data:`TAU` was chosen) or, with ``--fill``,
    :func:`calibrate_fill`'s (the biharmonic fill's fine steps), on the calibration
    photographs or, with ``--split train``, the training photographs (``--split test``: the
    held-out photographs, for comparison only)."""
    p = argparse.ArgumentParser(prog="python -m pconv_torch.smooth_gate", description=main.__doc__)
    p.add_argument("--model", default="full", help="shipped model to gate (default full)")
    p.add_argument("--fill", action="store_true",
                   help="score the biharmonic fill's fine steps on the photographs' smooth "
                        "crops instead")
    p.add_argument("--split", choices=tuple(SPLIT_NAMES), default="val",
                   help="the calibration photographs (default), the training photographs, or "
                        "the held-out ones (a report: nothing is chosen on them)")
    args = p.parse_args(argv)
    if args.fill:
        return _print_fill_table(calibrate_fill(split=args.split), args.split)
    rows = calibrate(args.model, split=args.split)
    best = max((r for r in rows if r["tau"] is not None), key=lambda r: r["mean"])
    random = "random " if args.split == "train" else ""
    print(f"`{args.model}` and the biharmonic fill, hole PSNR (dB) on the {rows[0]['n']} {random}"
          f"crops of the {SPLIT_NAMES[args.split]} photographs (64x64):\n")
    print("| mix | center | rect | mean |\n|---|---:|---:|---:|")
    for r in rows:
        if r["tau"] is not None:
            name = f"gate, tau = {r['tau']:g}"
        elif r["share"] == 1.0:
            name = f"`{args.model}` alone"
        else:
            name = f"constant, w = {r['share']:g}"
        print(f"| {name} | {r['center']:.2f} | {r['rect']:.2f} | {r['mean']:.2f} |")
    print(f"\n{_best_label(args.split, 'tau')}: {best['tau']:g} (TAU = {TAU:g})")
    return 0


def _print_fill_table(rows: list[dict], split: str = "val") -> int:
    """Print :func:`calibrate_fill`'s rows (on ``split``'s photographs) as a Markdown table."""
    from .harmonic import CG_FINE

    keys = [k for k in rows[0] if k not in ("steps", "mean")]
    print(f"The biharmonic fill alone, hole PSNR (dB) on the {SPLIT_NAMES[split]} photographs' "
          f"smooth crops (soft_crops(split={split!r})), by conjugate-gradient steps at the finest "
          "level:\n")
    print("| fine steps | " + " | ".join(keys) + " | mean |\n|---|" + "---:|" * (len(keys) + 1))
    for r in rows:
        name = "scikit-image (exact)" if r["steps"] is None else str(r["steps"])
        print(f"| {name} | " + " | ".join(f"{r[k]:.2f}" for k in (*keys, "mean")) + " |")
    best = max((r for r in rows if r["steps"] is not None), key=lambda r: r["mean"])
    print(f"\n{_best_label(split, 'fine steps')}: {best['steps']} (CG_FINE = {CG_FINE})")
    return 0


def _best_label(split: str, what: str) -> str:
    """How the command names the best ``what`` on ``split``: on the held-out photographs it is
    reported, never chosen."""
    if split == "test":
        return (f"best {what} here (reported only: the constants are chosen on the "
                "calibration photographs)")
    return f"best {what}"


if __name__ == "__main__":
    raise SystemExit(main())
