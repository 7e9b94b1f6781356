"""How large the notebooks' figures are on a book page: one line per stored figure.

Reads the stored outputs of the notebooks (nothing is executed): every image/png, image/jpeg
or image/webp output of a code cell, and the first frame of each animation stored as HTML
(a ``data:image/...`` URI in a text/html output). For each it prints

* ``cell``: the code cell's index in the notebook (0-based, markdown cells counted);
* ``w x h``: the image's size in pixels;
* ``dpi``: the resolution written into the file (matplotlib writes the figure's dpi into
  PNG and JPEG files; ``-`` where the file has none);
* ``scale``: how much the book shrinks it: ``min(1, column / w)``; a figure wider than the
  text column (``--column``, 750 px: the book's column in a 1280-pixel window) is scaled
  down to it, and its labels with it;
* ``min pt``: the smallest font size, in points, whose letters are still ``--min-px`` (10)
  pixels tall on the page: ``min_px * 72 / (dpi * scale)``. A PNG does not say which font
  sizes a matplotlib figure used, so compare this with the fontsize / rcParams of the code
  that drew it (matplotlib's default is 10 pt, tick labels 10 pt, titles 12 pt);
* ``flags``: ``low-dpi`` (under ``--min-dpi``, 100), ``scaled`` (wider than the column),
  ``tiny`` (under 300 px wide on the page).

A figure made of image crops (a sample grid) needs one more check by eye: each crop should be
at least 128 pixels on the page, i.e. ``crop_px_in_figure * scale >= 128``.

Usage::

    python scripts/figure_report.py                      # every notebooks/NN_*.ipynb
    python scripts/figure_report.py notebooks/03_architecture.ipynb --save /tmp/figs
    python scripts/figure_report.py --flagged            # only the figures with a flag

``--save DIR`` also writes each figure to ``DIR/<notebook>_cell<N>_<k>.<ext>`` to look at.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
# matplotlib's HTML animations break the base64 of each frame into lines ending in "\\".
DATA_URI = re.compile(r"data:(image/(?:png|jpeg|webp));base64,([A-Za-z0-9+/=\\\s]+)")


def figures(notebook: Path):
    """Yield ``(cell_index, mime, bytes)`` for each stored figure of ``notebook``."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            found = False
            for mime in IMAGE_TYPES:
                if mime in data:
                    payload = data[mime]
                    payload = "".join(payload) if isinstance(payload, list) else payload
                    yield i, mime, base64.b64decode(payload)
                    found = True
                    break
            if not found and "text/html" in data:
                html = data["text/html"]
                html = "".join(html) if isinstance(html, list) else html
                match = DATA_URI.search(html)
                if match:  # an animation: its first frame
                    yield i, match.group(1) + " (html)", base64.b64decode(re.sub(r"[\\\s]", "", match.group(2)))


def measure(raw: bytes, column: int, min_px: float, min_dpi: float):
    """The row of numbers for one image (see the module docstring)."""
    im = Image.open(io.BytesIO(raw))
    w, h = im.size
    dpi = im.info.get("dpi")
    dpi = float(dpi[0]) if dpi else None
    scale = min(1.0, column / w)
    min_pt = min_px * 72 / (dpi * scale) if dpi else None
    flags = []
    if dpi is not None and round(dpi) < min_dpi:
        flags.append("low-dpi")
    if scale < 1:
        flags.append("scaled")
    if w * scale < 300:
        flags.append("tiny")
    return dict(w=w, h=h, dpi=dpi, scale=scale, min_pt=min_pt, flags=flags, ext=im.format.lower())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path,
                    help="notebooks to read (default: notebooks/[0-9]*.ipynb)")
    ap.add_argument("--column", type=int, default=750, help="the book's column width, px")
    ap.add_argument("--min-px", type=float, default=10, help="smallest label height, px")
    ap.add_argument("--min-dpi", type=float, default=100, help="smallest figure dpi")
    ap.add_argument("--flagged", action="store_true", help="print only the flagged figures")
    ap.add_argument("--save", type=Path, help="also write each figure into this folder")
    args = ap.parse_args(argv)

    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    print(f"{'notebook':<40} {'cell':>4}  {'w x h':>11} {'dpi':>5} {'scale':>5} {'min pt':>6}  flags")
    flagged = 0
    for path in paths:
        counts: dict[int, int] = {}
        for cell, mime, raw in figures(path):
            k = counts[cell] = counts.get(cell, -1) + 1
            r = measure(raw, args.column, args.min_px, args.min_dpi)
            flagged += bool(r["flags"])
            if args.save:
                (args.save / f"{path.stem}_cell{cell}_{k}.{r['ext']}").write_bytes(raw)
            if args.flagged and not r["flags"]:
                continue
            dpi = f"{r['dpi']:.0f}" if r["dpi"] else "-"
            min_pt = f"{r['min_pt']:.1f}" if r["min_pt"] else "-"
            size = f"{r['w']}x{r['h']}"
            note = " (animation)" if mime.endswith("(html)") else ""
            print(f"{path.name:<40} {cell:>4}  {size:>11} {dpi:>5} {r['scale']:>5.2f} {min_pt:>6}  "
                  f"{' '.join(r['flags'])}{note}")
    print(f"{flagged} figure(s) flagged")


if __name__ == "__main__":
    main()
