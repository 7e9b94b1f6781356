"""The interactive mask explorer (pconv_torch.mask_widget)."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from pconv_torch.mask_widget import MaskExplorer  # noqa: E402


def test_widget_redraws_when_a_slider_moves(narrow_generator):
    pytest.importorskip("ipywidgets")
    ex = MaskExplorer(narrow_generator, size=64, kernel=3, stride=1, layer=4)
    assert ex.n_draws == 1 and ex.last["params"]["size"] == 64  # drawn once on creation
    descriptions = {k: c.description for k, c in ex.controls.items()}
    assert descriptions == {"shape": "hole shape", "size": "hole size", "kernel": "kernel size",
                            "stride": "stride", "layer": "layer"}
    assert "pconv-mask-explorer" in ex.widget._dom_classes
    assert all(f"pconv-mask-explorer-{k}" in c._dom_classes for k, c in ex.controls.items())
    first = ex.last
    ex.controls["size"].value = 96
    assert ex.n_draws == 2 and ex.last["params"]["size"] == 96
    assert ex.last["holes_before"] > first["holes_before"]
    assert not torch.equal(ex.last["single"].sum_m, first["single"].sum_m)
    assert ex.last["closes_after"] is None and first["closes_after"] == 4
    assert "closes never" in ex.readout.value
    ex.controls["kernel"].value = 5
    assert ex.n_draws == 3 and ex.last["sum_1"] == 25
    ex.controls["stride"].value = 2
    assert ex.last["single"].sum_m.shape[-1] == 64
    ex.controls["layer"].value = 7
    assert ex.last["layer"].index == 7
    assert ex.last["layer_sum_1"] == 9 * sum(narrow_generator.layers[7].in_groups)
    ex.controls["shape"].value = "stroke"
    assert ex.n_draws == 6 and ex.last["params"]["shape"] == "stroke"
