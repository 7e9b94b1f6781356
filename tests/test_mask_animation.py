"""The mask trace as an animation, and animations that need no network
(pconv_torch.mask_animation)."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from pconv_torch import Generator  # noqa: E402
from pconv_torch import mask_animation as ma  # noqa: E402


def test_hole_animation_frames(narrow_generator):
    sides = [8, 72]
    anim, sweep = ma.hole_animation(narrow_generator, sides, dpi=30)
    assert [r["closes_after"] for r in sweep] == [1, None]
    html = anim.to_jshtml()
    assert html.count("data:image/png;base64") == len(sides)


@pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")
@pytest.mark.parametrize("depth", [4, 5])
def test_hole_animation_fits_the_book_column(depth):
    """At 100 dpi a frame is at most 750 px wide (the text column at a 1280-px window) and its
    panel titles at least 10 px high."""
    anim, _ = ma.hole_animation(Generator(width=1 / 16, depth=depth), [8, 40])
    fig = anim._fig
    assert fig.get_size_inches()[0] * fig.dpi <= 750
    titles = [ax.title for ax in fig.axes if ax.get_title()]
    assert len(titles) == 2 * depth + 3   # the input and every block
    assert min(t.get_fontsize() for t in titles) * fig.dpi / 72 >= 10


def test_offline_jshtml_needs_no_network():
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    fig, ax = plt.subplots()
    line = ax.plot([0, 1], [0, 1])[0]
    animation = FuncAnimation(fig, lambda i: line.set_ydata([0, i]), frames=3)
    for _ in range(2):  # matplotlib adds its stylesheet link on every call
        html = ma.offline_jshtml(animation)
        assert "font-awesome" not in html and "http" not in html
        assert "\u25b6" in html  # the play button kept a visible glyph
        # no media-control symbols from Miscellaneous Technical: common fonts lack them
        assert not any("\u2300" <= ch <= "\u23ff" for ch in html)
        for glyph in ma._FA_GLYPHS.values():  # Basic Latin, minus sign and Geometric Shapes only
            assert all(ch < "\u0080" or ch == "\u2212" or "\u25a0" <= ch <= "\u25ff" for ch in glyph)
    plt.close(fig)
