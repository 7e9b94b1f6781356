"""The results tables of the README and the book (pconv_torch.results)."""

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
    assert set(by) == {(s, m) for s in (24, 48, None) for m in ("full", "mean fill", "harmonic fill")}
    assert by[(24, "full")]["n"] == 6 and by[(None, "full")]["n"] == 12  # six photographs
    # on photographs the harmonic fill (at their own, odd, sizes) is far ahead of a flat colour
    assert by[(None, "harmonic fill")]["psnr_hole"] > by[(None, "mean fill")]["psnr_hole"] + 3
    table = results.format_native(rows)
    assert table.splitlines()[0].split("|")[2:5] == [" 24x24 holes ", " 48x48 holes ", "   all "]
