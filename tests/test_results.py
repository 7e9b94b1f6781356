"""The results tables of the README and the book (pconv_torch.results)."""

import numpy as np
import pytest

from pconv_torch import evaluate as E
from pconv_torch import results


def test_results_sanity_table_separates_exact_and_poor_methods():
    images, masks = E.default_test_set(None, "center", size=32)
    assert images.shape == (138, 3, 32, 32) and masks.shape == (138, 1, 32, 32)
    methods = results.methods_for(classical=True)
    rows = results.sanity_table({"mean fill": methods["mean fill"],
                                 "biharmonic": methods["scikit-image biharmonic"]}, 32, n=2)
    by = {(r["case"], r["method"]): r for r in rows}
    # biharmonic solves a flat field exactly (up to 8-bit rounding); mean fill does not
    assert by[("flat", "biharmonic")]["max_error"] < 1.0
    assert by[("flat", "mean fill")]["max_error"] > 5.0
    table = results.format_rows(rows, results.SANITY_COLUMNS)
    assert table.count("\n") == len(rows) + 1 and "biharmonic" in table


def test_native_table_scores_inpaint_on_the_heldout_photographs_at_their_size():
    rows = results.native_table(names=("full",), classical=("mean fill", "harmonic fill"),
                                sides=(24, 48), per_side=1)
    by = {(r["side"], r["method"]): r for r in rows}
    names = ("full", "full, no gate", "mean fill", "harmonic fill")
    assert set(by) == {(s, m) for s in (24, 48, None) for m in names}
    assert by[(24, "full")]["n"] == 6 and by[(None, "full")]["n"] == 12  # six photographs
    assert by[(None, "full")]["psnr_hole"] != by[(None, "full, no gate")]["psnr_hole"]
    # on photographs the harmonic fill (at their own, odd, sizes) is far ahead of a flat colour
    assert by[(None, "harmonic fill")]["psnr_hole"] > by[(None, "mean fill")]["psnr_hole"] + 3
    table = results.format_native(rows)
    assert table.splitlines()[0].split("|")[2:5] == [" 24x24 holes ", " 48x48 holes ", "   all "]


@pytest.mark.slow
def test_kind_table_splits_the_heldout_crops_by_kind_and_pairs_against_the_references():
    methods = {k: v for k, v in results.methods_for(classical=True).items()
               if k in ("mean fill", "harmonic fill")}
    rows = results.kind_table(methods, 64, families=("center",), soft=True,
                              reference="mean fill", base="harmonic fill")
    by = {(r["subset"], r["method"]): r for r in rows}
    n = {s: by[(s, "harmonic fill")]["n"] for s in ("all", "smooth", "textured", "edges")}
    assert n["all"] == 138 and n["smooth"] + n["textured"] + n["edges"] == 138
    assert min(n.values()) >= 10 and by[("smooth, extra crops", "harmonic fill")]["n"] >= 20
    for subset in n:
        r = by[(subset, "harmonic fill")]
        # paired against mean fill: far ahead, with an interval that excludes zero
        assert r["vs_reference"] - r["vs_reference_2se"] > 3
        assert np.isnan(r["vs_base"]) and np.isnan(by[(subset, "mean fill")]["vs_reference"])
        assert by[(subset, "mean fill")]["blocks"] < 1e-6  # a flat colour has no steps at all
    # smooth holes are far easier than edges
    assert by[("smooth", "harmonic fill")]["psnr_hole"] > by[("edges", "harmonic fill")]["psnr_hole"] + 5
    table = results.format_kinds(rows, "center")
    assert table.count("\n") == len(rows) + 1 and "smooth (" in table


def test_sanity_table_adds_the_curved_scene_only_when_asked():
    methods = {k: v for k, v in results.methods_for(classical=True).items()
               if k in ("harmonic fill", "scikit-image biharmonic")}
    default = results.sanity_table(methods, 32, n=2)
    assert {r["case"] for r in default} == set(results.SANITY_CASES)
    rows = results.sanity_table(methods, 32, n=2, cases=results.ALL_SANITY_CASES)
    assert [r for r in rows if r["case"] != "curved"] == default
    by = {(r["case"], r["method"]): r for r in rows}
    # the harmonic fill leaves a plateau in a radial shading; biharmonic follows it closely
    assert (by[("curved", "scikit-image biharmonic")]["psnr_hole"]
            > by[("curved", "harmonic fill")]["psnr_hole"] + 10)


@pytest.mark.slow
def test_heldout_rows_carry_blockiness_against_the_truth():
    methods = {k: v for k, v in results.methods_for(classical=True).items()
               if k in ("mean fill", "harmonic fill")}
    rows = results.heldout_table(methods, 64, families=("center",))
    by = {r["method"]: r for r in rows}
    assert by["mean fill"]["blocks"] < 1e-6 < by["harmonic fill"]["blocks"] < 1
    # at 32x32 the centred hole is too narrow for the 16 px period: nan, no warning
    small = results.heldout_table({"mean fill": methods["mean fill"]}, 32, families=("center",))
    assert np.isnan(small[0]["blocks"])
    table = results.format_rows(rows, results.HELDOUT_BLOCK_COLUMNS)
    assert "blocks / truth" in table.splitlines()[0]


@pytest.mark.slow
def test_results_command_scores_a_training_run_paired_with_any_method(tmp_path, capsys):
    from tiny_runs import smooth_images, tiny

    from pconv_torch.training import train

    run = tmp_path / "balanced"
    train(tiny(image_size=64, phase1_iters=2, phase2_iters=0, phase3_iters=0, residual=True,
               standardise=True, balance=0.5), data=smooth_images(4, 64), out_dir=run,
          progress=False)
    with pytest.raises(SystemExit, match="--paired-with 'nothing': not among the methods"):
        results.main(["--kinds-only", "--models", "--runs", str(run), "--paired-with", "nothing"])
    assert results.main(["--kinds-only", "--models", "--runs", str(run),
                         "--paired-with", "harmonic fill"]) == 0
    out = capsys.readouterr().out
    table = out.split("masks 'center'")[1]
    header = next(line for line in table.splitlines() if line.startswith("| crops"))
    assert "vs harmonic fill" in header and "vs biharmonic" not in header
    row = next(line for line in table.splitlines() if line.startswith("| all (138)") and str(run) in line)
    assert row.count("±") == 3  # its PSNR and its two pairings, both with the harmonic fill
    # a run is scored as inpaint runs a shipped model too: blended, then gated
    assert any(line.startswith("| all (138)") and f"{run} + blending + gate" in line
               for line in table.splitlines())
