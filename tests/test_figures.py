"""The block diagrams of pconv_torch.figures: one box per layer, labelled from the module."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from pconv_torch import Discriminator, Generator, architecture_table  # noqa: E402
from pconv_torch.figures import BLUE, GREEN, RED, SAND, draw_discriminator, draw_unet  # noqa: E402


def boxes(fig, colour):
    """The rounded boxes of ``colour`` in the figure's one axes."""
    return [p for p in fig.axes[0].patches
            if isinstance(p, FancyBboxPatch) and p.get_facecolor() == to_rgba(colour)]


def texts(fig):
    return [t.get_text() for t in fig.axes[0].texts]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("depth", [4, 5])
def test_unet_has_one_labelled_box_per_block(depth):
    g = Generator(depth=depth)
    rows = [r for r in architecture_table(g) if r["layer"] != "Total"]
    fig = draw_unet(g)
    assert len(boxes(fig, SAND)) == 1                       # the input
    assert len(boxes(fig, BLUE)) == depth                   # encoder
    assert len(boxes(fig, GREEN)) == depth                  # decoder
    assert len(boxes(fig, RED)) == len(rows) - 2 * depth    # head
    assert len(boxes(fig, "0.82")) == len(rows) + 1         # a mask tab beside every box
    labels = [t for t in texts(fig) if t.startswith("block ")]
    assert len(labels) == len(rows)
    for i, (r, text) in enumerate(zip(rows, labels)):
        first, middle, last = text.split("\n")
        assert first == f"block {i}: PConv {r['K']}×{r['K']}/{r['S']}"
        assert middle == f"{r['in']} → {r['F']} ch"
        assert last == f"{r['output'][1]}×{r['output'][2]}, {r['activation']}"
    tabs = [t for t in texts(fig) if t.startswith("M\n")]
    # decoder blocks receive the upsampled mask and the skip's; the rest one mask channel
    assert tabs.count("M\n2→1") == depth and tabs.count("M\n1→1") == len(rows) - depth


def test_table1_generator_drawing_names_the_skips():
    fig = draw_unet(Generator())
    skips = [t for t in texts(fig) if t.startswith("skip: ")]
    assert skips == [f"skip: {c} ch\n+ its mask" for c in (256, 128, 64, 3)]
    assert "output G(I_in)\n3 ch, 128×128" in texts(fig)
    assert fig.get_size_inches().tolist() == [9.5, 5.3]


@pytest.mark.parametrize("local", [True, False])
def test_discriminator_has_one_box_per_layer(local):
    d = Discriminator(local=local)
    rows = [r for r in architecture_table(d) if r["layer"] != "Total"]
    fig = draw_discriminator(d)
    convs = [r for r in rows if r["layer"] == "Conv"]
    fcs = [r for r in rows if r["layer"] == "FC" and r["name"] != "head"]   # one per branch
    assert len(boxes(fig, BLUE)) == len(convs) == (9 if local else 5)
    assert len(boxes(fig, GREEN)) == len(fcs) == (2 if local else 1)
    assert len(boxes(fig, SAND)) == (2 if local else 1)      # the image, the patch
    assert len(boxes(fig, RED)) == 1                         # the joint head
    for r in convs:
        c, h, w = r["output"]
        assert f"conv {r['K']}×{r['K']}/{r['S']}\n{c} ch\n{h}×{w}" in texts(fig)
    head = next(r for r in rows if r["name"] == "head")
    assert f"joint head\nconcat {head['in']}\nFC → 1 logit" in texts(fig)
    assert ("local branch" in texts(fig)) == local
