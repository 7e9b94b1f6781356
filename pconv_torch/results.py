"""The project's results tables: shipped models against classical inpainting, on held-out
photographs and on synthetic scenes any method should nearly solve.

``python -m pconv_torch.results`` prints both tables (the README's and the book's numbers),
once per training scale of the shipped models (64x64; 128x128 for ``full_128``).

Held-out table (:func:`heldout_table`): all 138 fixed crops of the six held-out photographs
(:class:`pconv_torch.data.EmbeddedPhotos` ``"test"``) at the models' scale (64x64), once with
the centred square hole of half the side (``center``: 32x32, a quarter of the image) and once
with the poster's random rectangles (``rect``, the fixed evaluation set of
:func:`pconv_torch.masks.eval_mask_set`). Columns, all on composites ``M*I + (1-M)*G``:

* hole PSNR (dB), SSIM (whole image), hole L1: :mod:`pconv_torch.evaluate`;
* detail / truth: :func:`pconv_torch.evaluate.detail` of the fill over that of the truth
  (means over the crops; 1 = as busy as the truth, a blur is well below 1);
* seam (8-bit levels): :func:`pconv_torch.evaluate.seam` x 255, the extra step at the hole's
  border (a rim or a tinted patch is positive);
* cast (8-bit levels): the largest channel of :func:`pconv_torch.evaluate.colour_bias`
  averaged over the crops, x 255, with its sign (a systematic colour cast).

Rows ``"<model> + blending"`` are the model's fill Poisson-blended into the hole's surroundings
(:func:`pconv_torch.blend.poisson_blend`); rows ``"... + gate"`` keep that fill where the hole's
surroundings are textured and take the biharmonic fill where they are smooth
(:mod:`pconv_torch.smooth_gate`). :func:`pconv_torch.inpaint` does both by default
(``"<model> + blending + gate"``).

Its rows also hold ``blocks``: :func:`pconv_torch.metrics.period_energy` (the energy at the 8
and 16 px periods inside the hole) of the fills, mean over the crops, over the truth's mean
(1 = as much as the photographs; a smooth fill near 0; squares enlarged from a coarse grid
raise it); ``HELDOUT_BLOCK_COLUMNS`` shows it.

Per content kind (:func:`kind_table`): the same crops split by what the truth holds in the hole
(:func:`pconv_torch.content.content_kinds`: smooth / textured / edges), plus held-out smooth
crops (:func:`pconv_torch.content.soft_crops`), with the hole PSNR's 2-SE interval and the
paired difference (mean and 2 SE over the same crops) against scikit-image's biharmonic fill
and the harmonic fill (:data:`BASE`, the fill the shipped generators correct).

Sanity table (:func:`sanity_table`): :func:`pconv_torch.procedural.sanity_images` (flat,
gradient, straight edge; 16 of each) with the centred hole; the hole PSNR and the largest
error in any hole, in 8-bit levels. ``cases=ALL_SANITY_CASES`` adds the curved scene
(:func:`pconv_torch.procedural.curved_images`, a radial shading).

Masks: 1 = valid, 0 = hole.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from . import evaluate as _ev
from . import masks as _masks
from .baselines import make_baselines, mixed
from .methods import batched, composites, generator_method, windowed_method
from .metrics import mean_and_two_se, paired_difference, per_image_scores, period_energy
from .procedural import CURVED_CASE, SANITY_CASES, curved_images, sanity_images
from .tables import render_table

__all__ = ["methods_for", "windowed_method", "composites", "heldout_table", "sanity_table",
           "native_table", "format_rows", "format_native", "HELDOUT_COLUMNS", "SANITY_COLUMNS",
           "kind_table", "format_kinds", "HELDOUT_BLOCK_COLUMNS", "ALL_SANITY_CASES", "MIXED"]

FAMILIES = ("center", "rect")
ALL_SANITY_CASES = (*SANITY_CASES, CURVED_CASE)
# the method every other is paired with, and the fill the shipped generators correct
REFERENCE, BASE = "scikit-image biharmonic", "harmonic fill"
MIXED = "mixed fill"  # scored beside the baselines: the fill Generator(base="mixed") corrects


def methods_for(models: dict | None = None, fill=None, classical: bool = True,
                blended: tuple = (), gated: tuple = ()) -> dict:
    """Batch methods ``(images (N,3,H,W) with holes zeroed, masks) -> (N,3,H,W)``: the classical
    baselines (``fill`` = the mean-fill colour), ``models`` (name -> generator) and, for each
    name in ``blended``, the same model followed by Poisson blending
    (:func:`pconv_torch.blend.poisson_blend`), named ``"<name> + blending"``; for each name in
    ``gated``, the model behind the smoothness gate (:mod:`pconv_torch.smooth_gate`), named
    ``"<name> + gate"``, and, if also in ``blended``, blended and then gated, as
    :func:`pconv_torch.inpaint` runs it: ``"<name> + blending + gate"``."""
    out = {}
    if classical:
        for name, fn in make_baselines(mean=fill).items():
            out[name] = batched(fn)
    for name, g in (models or {}).items():
        out[name] = generator_method(g)
        if name in blended:
            out[f"{name} + blending"] = generator_method(g, blend=True)
        if name in gated:
            out[f"{name} + gate"] = generator_method(g, gate=True)
            if name in blended:
                out[f"{name} + blending + gate"] = generator_method(g, blend=True, gate=True)
    return out


def heldout_table(methods: dict, size: int = 64, families=FAMILIES) -> list[dict]:
    """One row per (family, method); see the module docstring for the columns."""
    rows = []
    for family in families:
        images, masks = _ev.default_test_set(None, family, size=size)
        truth_detail = np.nanmean(_ev.detail(images, masks))
        truth_blocks = period_energy(images, masks)
        for name, method in methods.items():
            out = composites(method, images, masks)
            bias = np.nanmean(_ev.colour_bias(out, images, masks), axis=0) * 255
            k = int(np.argmax(np.abs(bias)))
            per = per_image_scores(out, images, masks)
            rows.append({
                "masks": family, "method": name,
                "psnr_hole": float(np.nanmean(per["psnr_hole"])),
                "ssim": float(np.mean(per["ssim"])),
                "l1_hole": float(np.nanmean(per["l1_hole"])),
                "detail_ratio": float(np.nanmean(_ev.detail(out, masks)) / truth_detail),
                "seam": float(np.nanmean(_ev.seam(out, images, masks)) * 255),
                "cast": float(bias[k]), "cast_channel": "RGB"[k],
                "blocks": _ratio_of_means(period_energy(out, masks), truth_blocks),
                "n": len(images),
            })
    return rows


def native_table(names=("full", "full_128"), classical=("OpenCV Telea", "scikit-image biharmonic"),
                 sides=(24, 48, 96, 160), per_side: int = 4, seed: int = 0) -> list[dict]:
    """Shipped models and classical methods through :func:`pconv_torch.inpaint` on the six
    held-out photographs at their own size (300-427 pixels high): ``per_side`` square holes of
    each side in ``sides`` per photograph, at random positions (``seed``). Each model twice:
    with ``inpaint``'s defaults (named as the model) and with ``gate=False`` (``"<model>, no
    gate"``). One row per (side, method) and one per method over all holes (``side`` None):
    mean hole PSNR (dB), ``n`` holes."""
    from .data import embedded_photographs, load_image
    from .inference import inpaint

    rng = np.random.default_rng(seed)
    scores: dict = {}
    for _, path in embedded_photographs("test")[0]:
        image = load_image(path, size=None)  # (3, H, W) in [0, 1], from 8-bit values
        h, w = image.shape[1:]
        pixels = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        for side in sides:
            for _ in range(per_side):
                top, left = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
                hole = np.zeros((h, w), bool)
                hole[top:top + side, left:left + side] = True
                valid = _masks.valid_of(hole)[None]
                for name, kw in _native_methods(names, classical).items():
                    out = torch.from_numpy(inpaint(pixels, hole, **kw)).permute(2, 0, 1)
                    db = _ev.psnr(out[None].float() / 255, image[None], valid)[0]
                    scores.setdefault((side, name), []).append(float(db))
    rows = [{"side": side, "method": name, "psnr_hole": float(np.mean(v)), "n": len(v)}
            for (side, name), v in scores.items()]
    for name in _native_methods(names, classical):
        v = [x for (_, n), xs in scores.items() if n == name for x in xs]
        rows.append({"side": None, "method": name, "psnr_hole": float(np.mean(v)), "n": len(v)})
    return rows


def _native_methods(names, classical) -> dict:
    """{row name: keyword arguments of inpaint} for :func:`native_table`."""
    out = {}
    for name in names:
        out[name] = {"model": name}
        out[f"{name}, no gate"] = {"model": name, "gate": False}
    return out | {name: {"method": name} for name in classical}


def format_native(rows: list[dict]) -> str:
    """:func:`native_table`'s rows as a Markdown table: one row per method, one column per side."""
    sides = sorted({r["side"] for r in rows if r["side"] is not None})
    methods = list(dict.fromkeys(r["method"] for r in rows))
    at = {(r["side"], r["method"]): r["psnr_hole"] for r in rows}
    body = [[m] + [f"{at[(s, m)]:.2f}" for s in sides] + [f"{at[(None, m)]:.2f}"] for m in methods]
    head = ["method"] + [f"{s}x{s} holes" for s in sides] + ["all"]
    return render_table(head, body, list(range(1, len(head))))


def sanity_table(methods: dict, size: int = 64, n: int = 16, cases=SANITY_CASES) -> list[dict]:
    """One row per (case, method): hole PSNR and the largest hole error in 8-bit levels.
    ``cases``: any of :data:`ALL_SANITY_CASES` (the curved scene is opt-in)."""
    scenes = sanity_images(size, n)
    if CURVED_CASE in cases:
        scenes[CURVED_CASE] = curved_images(size, n)
    mask = _masks.centered_square_mask(size)[None].repeat(n, 1, 1, 1)
    rows = []
    for case in cases:
        images = torch.from_numpy(scenes[case])
        for name, method in methods.items():
            out = composites(method, images, mask)
            err = (out - images).abs() * (1 - mask)
            rows.append({"case": case, "method": name,
                         "psnr_hole": float(np.nanmean(_ev.psnr(out, images, mask,
                                                                max_db=_ev.PSNR_CAP))),
                         "max_error": float(err.max()) * 255, "n": n})
    return rows


HELDOUT_COLUMNS = (("method", "method", "{}"), ("psnr_hole", "hole PSNR (dB)", "{:.2f}"),
                   ("ssim", "SSIM", "{:.3f}"), ("l1_hole", "hole L1", "{:.4f}"),
                   ("detail_ratio", "detail / truth", "{:.2f}"), ("seam", "seam", "{:+.1f}"),
                   ("cast", "cast", "{:+.1f}"))
HELDOUT_BLOCK_COLUMNS = (*HELDOUT_COLUMNS, ("blocks", "blocks / truth", "{:.2f}"))
SANITY_COLUMNS = (("method", "method", "{}"), ("psnr_hole", "hole PSNR (dB)", "{:.1f}"),
                  ("max_error", "max error (levels)", "{:.1f}"))


def format_rows(rows: list[dict], columns) -> str:
    """A Markdown table of ``rows`` with ``columns`` = (key, header, format) triples."""
    body = [[f.format(r[k]) + (f" {r['cast_channel']}" if k == "cast" else "")
             for k, _, f in columns] for r in rows]
    right = [j for j, (k, _, _) in enumerate(columns) if k != "method"]
    return render_table([h for _, h, _ in columns], body, right)


def _ratio_of_means(a, b) -> float:
    """nanmean(a) / nanmean(b); nan (no warning) where either has no finite value or the
    truth's mean is 0 (holes too narrow for :func:`period_energy`)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not (np.isfinite(a).any() and np.isfinite(b).any()) or np.nanmean(b) == 0:
        return float("nan")
    return float(np.nanmean(a) / np.nanmean(b))


def _kind_sets(size: int, family: str, soft: bool):
    """(subset name, images, masks, per-crop index into the held-out set or None) for
    :func:`kind_table`."""
    from .content import KINDS, content_kinds, soft_crops

    images, masks = _ev.default_test_set(None, family, size=size)
    kinds = content_kinds(images, masks)
    sets = [("all", images, masks, np.arange(len(images)))]
    sets += [(kind, images, masks, np.flatnonzero(kinds == kind)) for kind in KINDS]
    if soft:
        extra, _ = soft_crops(size)
        if len(extra):
            m = _masks.eval_mask_set(family, n=len(extra), size=size, seed=2025)
            keep = np.flatnonzero(content_kinds(extra, m) == "smooth")
            sets.append(("smooth, extra crops", extra[keep], m[keep], np.arange(len(keep))))
    return sets


def kind_table(methods: dict, size: int = 64, families=FAMILIES, soft: bool = True,
               reference: str = REFERENCE, base: str = BASE) -> list[dict]:
    """Held-out results per content kind. For each mask family, the 138 held-out crops
    (subset ``"all"``) and those the rule of :mod:`pconv_torch.content` calls ``"smooth"``,
    ``"textured"`` and ``"edges"`` (judged on the truth in that family's holes), and, with
    ``soft``, the extra held-out smooth crops of :func:`pconv_torch.content.soft_crops`
    (``"smooth, extra crops"``: with the centred hole, or that family's fixed masks, seed 2025;
    those the rule calls smooth in the hole).

    ``size``: 64 or a multiple of it (the kinds are judged at 64x64).

    One row per (family, subset, method): ``n``, ``psnr_hole`` (mean, per-crop PSNR capped at
    100 dB) and ``psnr_2se``; ``blocks`` (the fills' :func:`pconv_torch.metrics.period_energy`
    over the truth's, means over the subset); ``vs_reference`` / ``vs_reference_2se`` /
    ``wins_reference``: the paired hole-PSNR difference method - ``reference`` over the subset
    (mean, 2 SE, crops won), and the same against ``base`` (``vs_base``...); nan where the
    method is the reference or it is not among ``methods``, or the subset has under 2 crops.
    """
    rows = []
    for family in families:
        cache: dict = {}
        for subset, images, masks, idx in _kind_sets(size, family, soft):
            key = id(images)
            if key not in cache:
                outs = {name: composites(method, images, masks) for name, method in methods.items()}
                scores = {name: _ev.psnr(o, images, masks, max_db=_ev.PSNR_CAP)
                          for name, o in outs.items()}
                energy = {name: period_energy(o, masks) for name, o in outs.items()}
                cache[key] = scores, energy, period_energy(images, masks)
            scores, energy, truth = cache[key]
            for name in methods:
                v = scores[name][idx]
                row = {"masks": family, "subset": subset, "method": name, "n": len(idx),
                       "psnr_hole": float(np.mean(v)) if len(v) else np.nan,
                       "psnr_2se": mean_and_two_se(v)[1] if len(v) > 1 else np.nan,
                       "blocks": _ratio_of_means(energy[name][idx], truth[idx])}
                for tag, other in (("reference", reference), ("base", base)):
                    d = None
                    if other in scores and other != name and len(v) > 1:
                        d = paired_difference(v, scores[other][idx])
                    row[f"vs_{tag}"] = d.mean if d else np.nan
                    row[f"vs_{tag}_2se"] = d.two_se if d else np.nan
                    row[f"wins_{tag}"] = d.wins() if d else 0
                rows.append(row)
    return rows


def format_kinds(rows: list[dict], family: str, reference: str = REFERENCE,
                 base: str = BASE) -> str:
    """:func:`kind_table`'s rows of one mask family as a Markdown table (``reference`` and
    ``base``: the methods its two "vs" columns were paired with)."""
    def pm(m, e, sign=""):
        return "" if not np.isfinite(m) else f"{m:{sign}.2f} ± {e:.2f}"
    body = [[f"{r['subset']} ({r['n']})", r["method"], pm(r["psnr_hole"], r["psnr_2se"]),
             pm(r["vs_reference"], r["vs_reference_2se"], "+"), pm(r["vs_base"], r["vs_base_2se"], "+"),
             f"{r['blocks']:.2f}"] for r in rows if r["masks"] == family]
    head = ["crops (n)", "method", "hole PSNR (dB) ± 2 SE",
            "vs biharmonic" if reference == REFERENCE else f"vs {reference}",
            "vs harmonic" if base == BASE else f"vs {base}",
            "blocks / truth"]
    return render_table(head, body, [2, 3, 4, 5])


def main(argv=None) -> int:
    """Print the held-out and sanity tables for the shipped models and the classical methods,
    one set per training scale, then the tables per content kind and the curved sanity scene.
    At a larger scale the default model of the smallest one (``full``, 64x64), ``mse_only`` and
    the runs of that scale are scored too, run through context windows as ``inpaint`` runs
    them. Runs are scored as the shipped models are: raw, blended, gated, blended and gated."""
    from .shipped import DEFAULT_MODEL, model_scale, pretrained

    p = argparse.ArgumentParser(prog="python -m pconv_torch.results", description=main.__doc__)
    p.add_argument("--models", nargs="*", help="shipped models (default: all)")
    p.add_argument("--kinds-only", action="store_true",
                   help="print only the tables per content kind and the curved sanity scene")
    p.add_argument("--runs", nargs="+", default=[], metavar="DIR",
                   help="training runs (their out_dir) scored beside the shipped models, named "
                        "by their directory")
    p.add_argument("--paired-with", default=REFERENCE, metavar="METHOD",
                   help=f"the method the per-kind tables pair every other with (default "
                        f"{REFERENCE!r}; a shipped model's name or a run's directory)")
    args = p.parse_args(argv)
    names = args.models if args.models is not None else pretrained()
    runs = _load_runs(args.runs)
    by_scale: dict[int, list[str]] = {}
    for name in names:
        by_scale.setdefault(model_scale(name), []).append(name)
    for g in runs.values():
        by_scale.setdefault(g.image_size, [])
    for size in sorted(by_scale) or [64]:
        models = {name: pretrained(name) for name in by_scale.get(size, [])}
        models.update({d: g for d, g in runs.items() if g.image_size == size})
        fill = next(iter(models.values())).fill.numpy() if models else None
        blended = tuple(n for n in models if n in ("mse_only", "full", "full_128") or n in runs)
        methods = methods_for(models, fill, blended=blended, gated=blended)
        methods[MIXED] = batched(mixed)  # the smooth fill Generator(base="mixed") corrects
        small = min(by_scale, default=size)
        small_runs = {d: g for d, g in runs.items() if g.image_size == small}
        for name in (DEFAULT_MODEL, "mse_only", *small_runs):
            if size > small and (name in by_scale[small] or name in small_runs):
                g = small_runs[name] if name in small_runs else pretrained(name)
                label = f"{name} ({small}x{small}, windowed)"
                methods[label] = windowed_method(g, small)
                methods[f"{label} + blending"] = windowed_method(g, small, blend=True)
                methods[f"{label} + gate"] = windowed_method(g, small, gate=True)
                methods[f"{label} + blending + gate"] = windowed_method(g, small, blend=True,
                                                                        gate=True)
        if not args.kinds_only:
            _print_tables(methods, size)
        _print_kinds(methods, size, args.paired_with)
    if args.kinds_only:
        return 0
    native = [n for n in ("full", "full_128") if n in names]
    if native:
        rows = native_table(native)
        print(f"\nThe six held-out photographs at their own size, through pconv_torch.inpaint: "
              f"hole PSNR (dB), {rows[0]['n']} square holes of each side:\n")
        print(format_native(rows))
    return 0


def _load_runs(dirs) -> dict:
    """{directory: the run's generator (eval mode)} for the ``--runs`` of :func:`main`."""
    from .checkpoint import load_generator

    return {str(d): load_generator(d).eval() for d in dirs}


def _print_kinds(methods: dict, size: int, reference: str = REFERENCE) -> None:
    """The tables per content kind (models, the harmonic and mixed fills, biharmonic), each
    method paired with ``reference`` and with the harmonic fill, and the curved scene (every
    method)."""
    chosen = {n: f for n, f in methods.items()
              if n in (REFERENCE, BASE, MIXED)
              or not (n in make_baselines() or n.endswith("+ blending"))}
    if reference not in chosen:
        raise SystemExit(f"--paired-with {reference!r}: not among the methods scored at "
                         f"{size}x{size} ({', '.join(chosen)})")
    rows = kind_table(chosen, size, reference=reference)
    for family in FAMILIES:
        print(f"\nPer content kind, {size}x{size}, masks '{family}' (hole PSNR and paired "
              f"differences, mean ± 2 SE over the crops):\n")
        print(format_kinds(rows, family, reference))
    srows = sanity_table(methods, size, cases=(CURVED_CASE,))
    print(f"\nSanity case '{CURVED_CASE}', {size}x{size}, centred {size // 2}x{size // 2} hole:\n")
    print(format_rows(srows, SANITY_COLUMNS))


def _print_tables(methods: dict, size: int) -> None:
    rows = heldout_table(methods, size)
    for family in FAMILIES:
        print(f"\nHeld-out photographs, {size}x{size}, masks '{family}' "
              f"({rows[0]['n']} crops of 6 photographs):\n")
        print(format_rows([r for r in rows if r["masks"] == family], HELDOUT_BLOCK_COLUMNS))
    srows = sanity_table(methods, size)
    for case in SANITY_CASES:
        print(f"\nSanity case '{case}', {size}x{size}, centred {size // 2}x{size // 2} hole:\n")
        print(format_rows([r for r in srows if r["case"] == case], SANITY_COLUMNS))


if __name__ == "__main__":
    raise SystemExit(main())
