"""Draw a hole with the mouse in JupyterLab: every generator block's mask and the model's fill.

The kernel version of the book's "draw a hole" piece (chapter 3). :class:`HoleCanvas` is an
anywidget: the picture on a canvas, where each stroke of the mouse (a press, a drag, a release)
widens the hole; on each stroke the kernel computes :func:`stroke_update` and the widget shows
the mask after each of the generator's Table-1 blocks (from ``Generator.mask_pyramid``, so the
same masks as ``pconv_torch.mask_trace``) and the picture with the hole filled by the model
(``pconv_torch.inpaint``, the shipped default model unless another is given).

The computation is plain functions, usable and tested without a browser: :func:`paint_stroke`
(points -> hole), :func:`block_masks` (hole -> one mask per block), :func:`stroke_update`
(all of it, and the fill).

Conventions: a **hole** here is an (H, W) bool array, True = pixel to fill (what
``pconv_torch.inpaint`` takes); the generator's masks are the package's 1 = valid, 0 = hole.
Points are (x, y) in pixels of the picture, x to the right, y down.

    from pconv_torch.hole_canvas import HoleCanvas
    HoleCanvas()            # the held-out photograph of the book's piece, the model "full"
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

__all__ = ["BlockMask", "HoleUpdate", "paint_stroke", "block_masks", "stroke_update",
           "default_photo", "HoleCanvas"]

#: The book's held-out photograph: ``EmbeddedPhotos("test", 128)[PHOTO_INDEX]``, as in
#: scripts/draw_hole_gallery.py.
PHOTO_INDEX = 52
PHOTO_SIZE = 128


@dataclass
class BlockMask:
    """The mask after one generator block.

    index: block index i (``layers.{i}``); kernel, stride: of its partial convolution; up: True
    for a decoder block (its input is upsampled x2 and concatenated with a skip); mask: (h, w)
    bool, True = valid after the block; holes: number of False pixels in ``mask``.
    """

    index: int
    kernel: int
    stride: int
    up: bool
    mask: np.ndarray
    holes: int

    @property
    def label(self) -> str:
        """``"block 3 · 3×3/2 · 8×8"`` (with ``↑2,`` before the kernel for a decoder block)."""
        h, w = self.mask.shape
        return (f"block {self.index} · {'↑2, ' if self.up else ''}"
                f"{self.kernel}×{self.kernel}/{self.stride} · {h}×{w}")


@dataclass
class HoleUpdate:
    """What one stroke changes. hole: (H, W) bool, True = to fill; blocks: one
    :class:`BlockMask` per generator block, in forward order; fill: (H, W, 3) uint8, the picture
    with the hole filled by the model (the picture itself while the hole is empty)."""

    hole: np.ndarray
    blocks: list[BlockMask] = field(default_factory=list)
    fill: np.ndarray | None = None


def paint_stroke(hole: np.ndarray, points: Sequence[Sequence[float]], radius: float) -> np.ndarray:
    """``hole`` with a stroke of the brush added: every pixel whose centre lies within
    ``radius`` of the polyline through ``points`` becomes True.

    Args:
        hole: (H, W) bool, True = to fill (not modified).
        points: (x, y) pairs in pixels (x to the right, y down); one point paints a disc.
        radius: brush radius in pixels (> 0).
    Returns:
        (H, W) bool, a new array.
    """
    if radius <= 0:
        raise ValueError(f"brush radius must be positive, got {radius}")
    out = np.array(hole, dtype=bool, copy=True)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return out
    h, w = out.shape
    ys, xs = np.mgrid[0:h, 0:w]
    cx, cy = xs + 0.5, ys + 0.5                     # pixel centres
    segments = zip(pts, pts[1:]) if len(pts) > 1 else [(pts[0], pts[0])]
    for (x0, y0), (x1, y1) in segments:
        dx, dy = x1 - x0, y1 - y0
        length2 = dx * dx + dy * dy
        t = 0.0 if length2 == 0 else np.clip(((cx - x0) * dx + (cy - y0) * dy) / length2, 0, 1)
        out |= (cx - (x0 + t * dx)) ** 2 + (cy - (y0 + t * dy)) ** 2 <= radius * radius
    return out


def block_masks(generator, hole: np.ndarray) -> list[BlockMask]:
    """The mask after each block of a partial-convolution ``generator`` for ``hole``.

    Args:
        generator: :class:`~pconv_torch.networks.Generator` with ``conv="partial"``.
        hole: (H, W) bool, True = to fill; H, W multiples of ``2 ** generator.depth``.
    Returns:
        One :class:`BlockMask` per block (``generator.layers``), in forward order.
    """
    pyramid = generator.mask_pyramid(torch.from_numpy(~np.asarray(hole, bool)).float()[None, None])
    if pyramid is None:
        raise ValueError("a plain-convolution generator carries no mask")
    blocks = []
    for i, (blk, (_, groups, (_, new_mask))) in enumerate(zip(generator.layers, pyramid)):
        valid = new_mask[0, 0].numpy() > 0.5
        conv = blk.conv
        blocks.append(BlockMask(index=i, kernel=conv.kernel_size[0], stride=conv.stride[0],
                                up=groups is not None, mask=valid, holes=int((~valid).sum())))
    return blocks


def stroke_update(photo: np.ndarray, hole: np.ndarray, points, radius: float, generator,
                  model=None) -> HoleUpdate:
    """One stroke: paint it into ``hole``, trace the masks and fill the picture.

    Args:
        photo: (H, W, 3) uint8 picture; H, W multiples of ``2 ** generator.depth``.
        hole: (H, W) bool, True = to fill, before the stroke.
        points, radius: the stroke, as for :func:`paint_stroke`.
        generator: the partial-convolution generator whose masks are traced.
        model: what fills the hole (any ``model`` of ``pconv_torch.inpaint``); None: ``generator``.
    Returns:
        :class:`HoleUpdate` after the stroke.
    """
    from .inference import inpaint

    new_hole = paint_stroke(hole, points, radius)
    fill = np.array(photo, dtype=np.uint8, copy=True)
    if new_hole.any() and not new_hole.all():
        fill = inpaint(photo, new_hole, model=generator if model is None else model)
    return HoleUpdate(hole=new_hole, blocks=block_masks(generator, new_hole), fill=fill)


def default_photo() -> np.ndarray:
    """The book's held-out 128x128 photograph: (128, 128, 3) uint8."""
    from .data import EmbeddedPhotos

    photo = EmbeddedPhotos("test", size=PHOTO_SIZE)[PHOTO_INDEX]          # (3, H, W) in [0, 1]
    return (photo.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)


def _png(array: np.ndarray) -> str:
    """A data URL of ``array`` ((H, W) bool, or (H, W, 3 | 4) uint8) as PNG."""
    from PIL import Image

    img = Image.fromarray(array.astype(np.uint8) * 255 if array.dtype == bool else array)
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


_ESM = r"""
function el(tag, cls, parent, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function render({ model, el: root }) {
  root.classList.add("pconv-hole-canvas");
  const style = el("style", "", root);
  style.textContent = `
    .pconv-hole-canvas { font: 12px sans-serif; }
    .pconv-hole-canvas .phc-row { display: flex; gap: 12px; align-items: flex-start; flex-wrap: wrap; }
    .pconv-hole-canvas figure { margin: 0; }
    .pconv-hole-canvas figcaption { margin-top: 2px; }
    .pconv-hole-canvas canvas { cursor: crosshair; touch-action: none; }
    .pconv-hole-canvas img { image-rendering: pixelated; display: block; }
    .pconv-hole-canvas .phc-blocks { display: grid; grid-template-columns: repeat(5, 120px); gap: 8px; margin-top: 10px; }
    .pconv-hole-canvas .phc-blocks img { width: 120px; height: 120px; border: 1px solid #999; }`;
  const top = el("div", "phc-row", root);
  const left = el("figure", "", top);
  const canvas = el("canvas", "phc-canvas", left);
  el("figcaption", "", left, "draw here: press, drag, release");
  const right = el("figure", "", top);
  const fillImg = el("img", "phc-fill", right);
  el("figcaption", "", right, "the model's fill");
  const side = el("div", "", top);
  const status = el("div", "phc-status", side);
  const clear = el("button", "phc-clear", side, "clear the hole");
  const blocks = el("div", "phc-blocks", root);

  const scale = model.get("display_scale");
  const photo = new Image();
  let holeImg = null;
  let stroke = [];

  function paintHole(ctx) {
    if (!holeImg) return;
    ctx.globalAlpha = 0.55;
    ctx.drawImage(holeImg, 0, 0, canvas.width, canvas.height);
    ctx.globalAlpha = 1;
  }
  function redraw() {
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (photo.complete) ctx.drawImage(photo, 0, 0, canvas.width, canvas.height);
    paintHole(ctx);
    if (stroke.length) {
      ctx.strokeStyle = "rgba(220, 30, 30, 0.8)";
      ctx.lineCap = ctx.lineJoin = "round";
      ctx.lineWidth = 2 * model.get("brush") * scale;
      ctx.beginPath();
      stroke.forEach(([x, y], i) => (i ? ctx.lineTo(x * scale, y * scale) : ctx.moveTo(x * scale, y * scale)));
      if (stroke.length === 1) ctx.lineTo(stroke[0][0] * scale + 0.01, stroke[0][1] * scale);
      ctx.stroke();
    }
  }
  function show() {
    const size = model.get("size");
    canvas.width = size[1] * scale;
    canvas.height = size[0] * scale;
    if (photo.src !== model.get("photo")) photo.src = model.get("photo");
    fillImg.src = model.get("fill");
    fillImg.style.width = canvas.width + "px";
    const hole = model.get("hole");
    holeImg = null;
    if (hole) {
      const img = new Image();
      img.onload = () => { holeImg = img; redraw(); };
      img.src = hole;
    }
    blocks.replaceChildren();
    for (const b of model.get("blocks")) {
      const fig = el("figure", "phc-block", blocks);
      const img = el("img", "", fig);
      img.src = b.png;
      img.alt = b.label;
      el("figcaption", "", fig, `${b.label} · ${b.holes} hole px`);
    }
    status.textContent = `${model.get("hole_pixels")} hole pixels · ${model.get("updates")} update(s)`;
    root.dataset.updates = String(model.get("updates"));
    redraw();
  }
  photo.onload = redraw;

  function at(event) {
    const r = canvas.getBoundingClientRect();
    return [(event.clientX - r.left) * canvas.width / r.width / scale,
            (event.clientY - r.top) * canvas.height / r.height / scale];
  }
  canvas.addEventListener("pointerdown", (e) => {
    stroke = [at(e)];
    canvas.setPointerCapture(e.pointerId);
    redraw();
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!stroke.length) return;
    stroke.push(at(e));
    redraw();
  });
  const finish = () => {
    if (!stroke.length) return;
    model.send({ kind: "stroke", points: stroke });
    stroke = [];
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  clear.addEventListener("click", () => model.send({ kind: "clear" }));

  model.on("change:updates", show);
  show();
}

export default { render };
"""


def _make_widget_class():
    import anywidget
    import traitlets as T

    class HoleCanvas(anywidget.AnyWidget):
        """The widget: see the module doc. ``HoleCanvas(photo=None, model=None, brush=6,
        display_scale=3)``: ``photo`` (H, W, 3) uint8, cropped to multiples of
        ``2 ** depth`` (default :func:`default_photo`); ``model`` a shipped model's name, a
        checkpoint or a generator (default: the shipped default model), whose masks are traced
        and which fills the hole; ``brush`` the brush radius in picture pixels;
        ``display_scale`` screen pixels per picture pixel.

        ``self.last`` is the last :class:`HoleUpdate`; :meth:`stroke` applies a stroke as the
        mouse does. The root element has the class ``pconv-hole-canvas`` and counts the
        updates it has shown in ``data-updates``.
        """

        _esm = _ESM
        photo = T.Unicode("").tag(sync=True)
        hole = T.Unicode("").tag(sync=True)
        fill = T.Unicode("").tag(sync=True)
        blocks = T.List().tag(sync=True)
        size = T.List([0, 0]).tag(sync=True)
        brush = T.Float(6.0).tag(sync=True)
        display_scale = T.Int(3).tag(sync=True)
        hole_pixels = T.Int(0).tag(sync=True)
        updates = T.Int(0).tag(sync=True)

        def __init__(self, photo=None, model=None, brush: float = 6.0, display_scale: int = 3,
                     **kwargs):
            from .inference import resolve_model

            super().__init__(brush=float(brush), display_scale=int(display_scale), **kwargs)
            self.generator = resolve_model(model)
            pixels = default_photo() if photo is None else np.asarray(photo)
            if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
                raise ValueError(f"photo must be (H, W, 3) uint8, got {pixels.shape} {pixels.dtype}")
            step = 2 ** self.generator.depth
            h, w = (pixels.shape[0] // step) * step, (pixels.shape[1] // step) * step
            if h == 0 or w == 0:
                raise ValueError(f"photo must be at least {step}x{step} pixels")
            self.pixels = np.ascontiguousarray(pixels[:h, :w])
            self.last = self._empty((h, w))
            self.on_msg(self._message)
            self._publish(self.last, photo=True)

        def _empty(self, shape) -> HoleUpdate:
            hole = np.zeros(shape, bool)
            return HoleUpdate(hole=hole, blocks=block_masks(self.generator, hole), fill=self.pixels)

        def _publish(self, update: HoleUpdate, photo: bool = False):
            h, w = update.hole.shape
            with self.hold_sync():
                if photo:
                    self.photo = _png(self.pixels)
                    self.size = [h, w]
                overlay = np.zeros((h, w, 4), np.uint8)
                overlay[update.hole] = (220, 30, 30, 255)
                self.hole = _png(overlay)
                self.fill = _png(update.fill)
                self.blocks = [{"label": b.label, "holes": b.holes, "png": _png(b.mask)}
                               for b in update.blocks]
                self.hole_pixels = int(update.hole.sum())
                self.updates = self.updates + 1

        def stroke(self, points) -> HoleUpdate:
            """Add a stroke through ``points`` ((x, y) in picture pixels) and redraw."""
            self.last = stroke_update(self.pixels, self.last.hole, points, self.brush,
                                      self.generator)
            self._publish(self.last)
            return self.last

        def clear(self) -> None:
            """Empty the hole and redraw."""
            self.last = self._empty(self.last.hole.shape)
            self._publish(self.last)

        def _message(self, _widget, content, _buffers):
            if content.get("kind") == "stroke" and content.get("points"):
                self.stroke(content["points"])
            elif content.get("kind") == "clear":
                self.clear()

    HoleCanvas.__module__, HoleCanvas.__qualname__ = __name__, "HoleCanvas"
    return HoleCanvas


def __getattr__(name: str):
    # HoleCanvas is made on first use, so that the functions above need neither anywidget
    # nor ipywidgets.
    if name == "HoleCanvas":
        cls = _make_widget_class()
        globals()["HoleCanvas"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
