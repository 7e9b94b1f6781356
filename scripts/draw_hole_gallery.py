"""Precompute the fills that chapter 3's "draw a hole" piece shows for its gallery holes.

    .venv/bin/python scripts/draw_hole_gallery.py [--out book/_static/draw_hole]

The page runs no network (it is static and offline), so for a few fixed holes in one held-out
photograph this script fills the hole with the shipped default model through
``pconv_torch.inpaint`` (as a user would) and with the harmonic fill, and writes

* ``draw_hole/photo.png``: the held-out 128x128 crop (the piece paints on top of it);
* ``draw_hole/<hole>_full.png`` and ``draw_hole/<hole>_harmonic.png``: the two fills;
* ``draw_hole/gallery.js``: each hole's mask (1 = valid, 0 = hole; bits packed row by row,
  base64) with the file names and the hole PSNR of both fills, as ``window.pconvDrawHoleGallery``.

Masks come from ``pconv_torch.mask_trace.make_hole``; the photograph from the embedded
held-out split (``pconv_torch.data.EmbeddedPhotos("test", 128)``), which no training crop
comes from.
"""
from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import pconv_torch
from pconv_torch import evaluate as ev
from pconv_torch import mask_trace as mt
from pconv_torch.data import EmbeddedPhotos

REPO = Path(__file__).resolve().parent.parent
SIZE = 128
PHOTO_INDEX = 52          # a held-out crop with structure around the centre
HOLES = {                 # name -> (label, shape, size)
    "square64": ("square 64", "square", 64),
    "square96": ("square 96", "square", 96),
    "rectangle": ("rectangle", "rectangle", 100),
    "stroke": ("stroke", "stroke", 104),
}


def to_u8(img: torch.Tensor) -> np.ndarray:
    return (img.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "book" / "_static" / "draw_hole"))
    args = parser.parse_args(argv)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)

    photo = EmbeddedPhotos("test", size=SIZE)[PHOTO_INDEX]          # (3, 128, 128) in [0, 1]
    photo_u8 = to_u8(photo)
    Image.fromarray(photo_u8).save(folder / "photo.png", optimize=True)
    truth = torch.from_numpy(photo_u8).permute(2, 0, 1).float()[None] / 255

    entries = []
    for key, (label, shape, size) in HOLES.items():
        mask = mt.make_hole(shape, size, SIZE)                         # (1, 1, 128, 128), 1 = valid
        hole = mask[0, 0].numpy() < 0.5
        entry = {"key": key, "label": label,
                 "mask": base64.b64encode(np.packbits(mask[0, 0].numpy().astype(np.uint8)).tobytes()).decode(),
                 "images": {}, "psnr": {}}
        for name, kwargs in (("full", {}), ("harmonic", {"method": "harmonic fill"})):
            filled = pconv_torch.inpaint(photo_u8, hole, **kwargs)    # (H, W, 3) uint8
            Image.fromarray(filled).save(folder / f"{key}_{name}.png", optimize=True)
            f = torch.from_numpy(filled).permute(2, 0, 1).float()[None] / 255
            entry["images"][name] = f"{key}_{name}.png"
            entry["psnr"][name] = round(float(ev.psnr(f, truth, mask)[0]), 2)
        entries.append(entry)
        print(f"{label:<10} hole {int(hole.sum()):>5} px  full {entry['psnr']['full']:.2f} dB  "
              f"harmonic {entry['psnr']['harmonic']:.2f} dB")

    gallery = {"size": SIZE, "photo": "photo.png",
               "model": pconv_torch.shipped.default_model_name(), "holes": entries}
    script = ("/* Written by scripts/draw_hole_gallery.py: do not edit. The fills of the shipped model\n"
              " * for the gallery holes of the draw-a-hole piece (_static/pconv_draw_hole.js); Jupyter\n"
              " * Book adds this file to every page. */\n"
              "window.pconvDrawHoleGallery = " + json.dumps(gallery, indent=1) + ";\n"
              "// the pictures lie next to this script\n"
              "window.pconvDrawHoleGallery.base = document.currentScript\n"
              "  ? document.currentScript.src.replace(/[^/]*$/, \"\") : \"\";\n")
    (folder / "gallery.js").write_text(script)
    print(f"wrote {folder / 'gallery.js'} and {len(entries) * 2 + 1} pictures")


if __name__ == "__main__":
    main()
