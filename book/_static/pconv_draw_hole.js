/* Draw a hole and watch it close: the mask update of the poster's generator (Table 1), in the
 * static book, without a kernel and offline.
 *
 * The reader paints a hole on a 128x128 mask; every change re-runs the mask update of the ten
 * partial convolutions of pconv_torch.networks.Generator (the poster's widths) and draws, per
 * block, the new mask and the rescaling ratio sum(1)/sum(M) of every output.
 *
 * The rule is pconv_torch.partial_conv's: a block sees one mask per concatenated group g of C_g
 * channels, sum(M) = sum_g C_g * boxsum(m_g) over the K x K window (zero padding of K // 2 counts
 * as hole), sum(1) = (sum_g C_g) * K * K, and the new mask is 1 where sum(M) > 0. Decoder blocks
 * first upsample the deeper mask by 2 (nearest) and concatenate the skip mask of the same size.
 * tests/test_draw_hole.py checks compute() against pconv_torch.mask_explorer.mask_trace.
 *
 * Mask convention: 1 = valid (known) pixel, 0 = hole.
 * A page opts in with <div class="pconv-draw-hole"></div>; window.pconvDrawHole is the API.
 * Where the page also loads _static/draw_hole/gallery.js (scripts/draw_hole_gallery.py),
 * the mask is painted over a held-out photograph, and the gallery holes show the fills of the
 * shipped model and of the harmonic fill, computed beforehand by pconv_torch.inpaint.
 */
(function () {
  "use strict";

  // The poster's generator, block by block. src: -1 = the input mask, else a block's output;
  // c: the channels that share that mask; up: nearest 2x upsampling before the block.
  const BLOCKS = [
    { role: "encoder", k: 5, s: 2, out: 64, inputs: [{ src: -1, c: 3 }] },
    { role: "encoder", k: 5, s: 2, out: 128, inputs: [{ src: 0, c: 64 }] },
    { role: "encoder", k: 3, s: 2, out: 256, inputs: [{ src: 1, c: 128 }] },
    { role: "encoder", k: 3, s: 2, out: 256, inputs: [{ src: 2, c: 256 }] },
    { role: "decoder", k: 3, s: 1, out: 256, inputs: [{ src: 3, c: 256, up: true }, { src: 2, c: 256 }] },
    { role: "decoder", k: 3, s: 1, out: 256, inputs: [{ src: 4, c: 256, up: true }, { src: 1, c: 128 }] },
    { role: "decoder", k: 3, s: 1, out: 128, inputs: [{ src: 5, c: 256, up: true }, { src: 0, c: 64 }] },
    { role: "decoder", k: 3, s: 1, out: 64, inputs: [{ src: 6, c: 128, up: true }, { src: -1, c: 3 }] },
    { role: "head", k: 3, s: 1, out: 3, inputs: [{ src: 7, c: 64 }] },
    { role: "head", k: 1, s: 1, out: 3, inputs: [{ src: 8, c: 3 }] },
  ];
  BLOCKS.forEach(function (b, i) {
    b.index = i;
    b.pad = Math.floor(b.k / 2);
  });

  /** Nearest 2x upsampling of an n x n mask. */
  function upsample(m, n) {
    const out = new Uint8Array(4 * n * n);
    const n2 = 2 * n;
    for (let y = 0; y < n2; y++) {
      for (let x = 0; x < n2; x++) out[y * n2 + x] = m[(y >> 1) * n + (x >> 1)];
    }
    return out;
  }

  /** Sum of m over every k x k window with stride s and zero padding p: (out, size). */
  function boxsum(m, n, k, s, p) {
    const no = Math.floor((n + 2 * p - k) / s) + 1;
    const out = new Int32Array(no * no);
    for (let oy = 0; oy < no; oy++) {
      for (let ox = 0; ox < no; ox++) {
        let acc = 0;
        for (let dy = 0; dy < k; dy++) {
          const y = oy * s - p + dy;
          if (y < 0 || y >= n) continue;
          for (let dx = 0; dx < k; dx++) {
            const x = ox * s - p + dx;
            if (x >= 0 && x < n) acc += m[y * n + x];
          }
        }
        out[oy * no + ox] = acc;
      }
    }
    return { sum: out, n: no };
  }

  /**
   * The mask of every block for an n x n input mask (n a multiple of 16; 1 = valid, 0 = hole).
   * Returns one object per block: size, sumM (Int32Array), sum1, mask (Uint8Array), holes
   * (hole pixels left), maxRatio (largest sum(1)/sum(M) where sum(M) > 0).
   */
  function compute(inputMask, n) {
    n = n || Math.round(Math.sqrt(inputMask.length));
    const input = Uint8Array.from(inputMask, function (v) { return v > 0 ? 1 : 0; });
    const results = [];
    const maskOf = function (src) {
      return src < 0 ? { m: input, n: n } : { m: results[src].mask, n: results[src].size };
    };
    for (const b of BLOCKS) {
      let sumM = null;
      let size = 0;
      let channels = 0;
      for (const g of b.inputs) {
        let { m, n: gn } = maskOf(g.src);
        if (g.up) {
          m = upsample(m, gn);
          gn *= 2;
        }
        const box = boxsum(m, gn, b.k, b.s, b.pad);
        if (sumM === null) {
          sumM = new Int32Array(box.sum.length);
          size = box.n;
        } else if (box.n !== size) {
          throw new Error("block " + b.index + ": concatenated masks of different sizes");
        }
        for (let i = 0; i < sumM.length; i++) sumM[i] += g.c * box.sum[i];
        channels += g.c;
      }
      const sum1 = channels * b.k * b.k;
      const mask = new Uint8Array(sumM.length);
      let holes = 0;
      let maxRatio = 0;
      for (let i = 0; i < sumM.length; i++) {
        if (sumM[i] > 0) {
          mask[i] = 1;
          maxRatio = Math.max(maxRatio, sum1 / sumM[i]);
        } else {
          holes++;
        }
      }
      results.push({ block: b.index, size: size, sumM: sumM, sum1: sum1, mask: mask,
                     holes: holes, maxRatio: maxRatio, channels: channels });
    }
    return results;
  }

  // ------------------------------------------------------------------------------------------
  // The page's piece

  const RATIO_MAX_LOG = Math.log(25); // colour scale of the ratio: 1 .. 25 (a 5x5 window, 1 entry)

  function ratioColour(r) {
    // 1 -> white; larger -> orange, then dark red (log scale)
    const t = Math.min(1, Math.log(r) / RATIO_MAX_LOG);
    const c0 = [255, 255, 255], c1 = [245, 150, 40], c2 = [150, 20, 20];
    const a = t < 0.5 ? c0 : c1, bb = t < 0.5 ? c1 : c2, u = t < 0.5 ? t * 2 : (t - 0.5) * 2;
    return [0, 1, 2].map(function (j) { return Math.round(a[j] + (bb[j] - a[j]) * u); });
  }

  function el(tag, attrs, parent) {
    const e = document.createElement(tag);
    Object.entries(attrs || {}).forEach(function ([k, v]) {
      if (k === "text") e.textContent = v;
      else if (k === "className") e.className = v;
      else e.setAttribute(k, v);
    });
    if (parent) parent.appendChild(e);
    return e;
  }

  function blockLabel(b, size) {
    const up = b.inputs.some(function (g) { return g.up; }) ? "↑2, " : "";
    return "block " + b.index + " · " + up + b.k + "×" + b.k + "/" + b.s + " · " + size + "×" + size;
  }

  function Piece(root) {
    this.root = root;
    this.n = parseInt(root.getAttribute("data-size") || "128", 10);
    this.mask = new Uint8Array(this.n * this.n).fill(1);
    this.brush = 6;
    this.erase = false;
    this.layers = [];
    this.draws = 0;
    this.gallery = window.pconvDrawHoleGallery && window.pconvDrawHoleGallery.size === this.n
      ? window.pconvDrawHoleGallery : null;
    this.current = null;  // the gallery hole shown, until the reader paints
    this.build();
    if (this.gallery) this.showGallery(this.gallery.holes[0]);
    else this.preset("square", 64);
  }

  function unpackBits(b64, count) {
    const bytes = Uint8Array.from(atob(b64), function (ch) { return ch.charCodeAt(0); });
    const out = new Uint8Array(count);
    for (let i = 0; i < count; i++) out[i] = (bytes[i >> 3] >> (7 - (i & 7))) & 1;
    return out;
  }

  Piece.prototype.showGallery = function (hole) {
    this.mask.set(unpackBits(hole.mask, this.n * this.n));
    this.setErase(false);
    this.current = hole;
    this.update();
  };

  Piece.prototype.drawFills = function () {
    if (!this.fills) return;
    const hole = this.current, g = this.gallery;
    this.fills.classList.toggle("pconv-dh-stale", !hole);
    if (!hole) {
      this.fillNote.textContent = "Painted by hand: the page runs no network, so only the gallery " +
        "holes have fills. Pick one above.";
      return;
    }
    this.fillImgs.full.src = g.base + hole.images.full;
    this.fillImgs.harmonic.src = g.base + hole.images.harmonic;
    this.fillCaps.full.textContent = "the shipped '" + g.model + "' model: " + hole.psnr.full.toFixed(2) + " dB";
    this.fillCaps.harmonic.textContent = "harmonic fill: " + hole.psnr.harmonic.toFixed(2) + " dB";
    this.fillNote.textContent = "Hole '" + hole.label + "' filled by pconv_torch.inpaint (hole PSNR " +
      "against the photograph, higher is better), computed by scripts/draw_hole_gallery.py.";
  };

  Piece.prototype.build = function () {
    const root = this.root, self = this;
    root.innerHTML = "";
    root.classList.add("pconv-dh");
    const left = el("div", { className: "pconv-dh-left" }, root);
    el("div", { className: "pconv-dh-title", text: "Paint a hole (input mask, " + this.n + "×" + this.n +
                (this.gallery ? ", over a held-out photograph)" : ")") }, left);
    this.canvas = el("canvas", { className: "pconv-dh-paint", width: this.n, height: this.n,
                                 "aria-label": "input mask: drag to paint a hole" }, left);
    const tools = el("div", { className: "pconv-dh-tools" }, left);
    const lab = el("label", { text: "brush " }, tools);
    this.brushInput = el("input", { type: "range", min: "1", max: "20", value: String(this.brush),
                                    className: "pconv-dh-brush" }, lab);
    this.brushInput.addEventListener("input", function () { self.brush = +self.brushInput.value; });
    const buttons = [["paint", function () { self.setErase(false); }],
                     ["erase", function () { self.setErase(true); }],
                     ["clear", function () { self.preset("none"); }]];
    if (this.gallery) {
      this.gallery.holes.forEach(function (h) {
        buttons.push([h.label, function () { self.showGallery(h); }]);
      });
      this.canvas.style.backgroundImage = "url('" + this.gallery.base + this.gallery.photo + "')";
      this.canvas.classList.add("pconv-dh-photo");
    } else {
      buttons.push(["square 64", function () { self.preset("square", 64); }],
                   ["square 96", function () { self.preset("square", 96); }],
                   ["stroke", function () { self.preset("stroke"); }]);
    }
    this.buttons = {};
    buttons.forEach(function ([name, fn]) {
      const b = el("button", { type: "button", text: name, className: "pconv-dh-btn",
                               "data-action": name }, tools);
      b.addEventListener("click", fn);
      self.buttons[name] = b;
    });
    this.summary = el("div", { className: "pconv-dh-summary", "aria-live": "polite" }, left);
    if (this.gallery) {
      this.fills = el("div", { className: "pconv-dh-fills" }, left);
      this.fillImgs = {};
      this.fillCaps = {};
      ["full", "harmonic"].forEach(function (name) {
        const fig = el("figure", { className: "pconv-dh-fill" }, self.fills);
        self.fillImgs[name] = el("img", { alt: name + " fill of the gallery hole", width: "128", height: "128",
                                          "data-fill": name }, fig);
        self.fillCaps[name] = el("figcaption", {}, fig);
      });
      this.fillNote = el("div", { className: "pconv-dh-fillnote" }, left);
    }

    const right = el("div", { className: "pconv-dh-right" }, root);
    el("div", { className: "pconv-dh-title",
                text: "The mask after each block of Table 1 (black: hole; white: ratio 1; orange to red: ratio sum(1)/sum(M) > 1)" }, right);
    const grid = el("div", { className: "pconv-dh-grid" }, right);
    this.panels = BLOCKS.map(function (b) {
      const fig = el("figure", { className: "pconv-dh-panel pconv-dh-" + b.role, "data-block": String(b.index) }, grid);
      const c = el("canvas", { className: "pconv-dh-layer" }, fig);
      const cap = el("figcaption", {}, fig);
      c.addEventListener("pointermove", function (ev) { self.readout(b.index, c, ev); });
      c.addEventListener("pointerdown", function (ev) { self.readout(b.index, c, ev); });
      return { canvas: c, caption: cap };
    });
    this.readoutLine = el("div", { className: "pconv-dh-readout",
                                   text: "Point at a block's mask to read sum(M), sum(1) and the ratio there." }, right);

    // painting: mouse, pen and touch through pointer events
    let last = null;
    const at = function (ev) {
      const r = self.canvas.getBoundingClientRect();
      return [(ev.clientX - r.left) / r.width * self.n, (ev.clientY - r.top) / r.height * self.n];
    };
    this.canvas.addEventListener("pointerdown", function (ev) {
      ev.preventDefault();
      if (self.canvas.setPointerCapture) {
        try { self.canvas.setPointerCapture(ev.pointerId); } catch (e) { /* synthetic events */ }
      }
      last = at(ev);
      self.paintSegment(last, last);
    });
    this.canvas.addEventListener("pointermove", function (ev) {
      if (last === null) return;
      ev.preventDefault();
      const p = at(ev);
      self.paintSegment(last, p);
      last = p;
    });
    const stop = function () { last = null; };
    this.canvas.addEventListener("pointerup", stop);
    this.canvas.addEventListener("pointercancel", stop);
    this.canvas.addEventListener("pointerleave", stop);
  };

  Piece.prototype.setErase = function (on) {
    this.erase = on;
    this.buttons.paint.classList.toggle("pconv-dh-on", !on);
    this.buttons.erase.classList.toggle("pconv-dh-on", on);
  };

  /** Paint (or erase) a disc of the brush's radius along the segment a -> b (grid units). */
  Piece.prototype.paintSegment = function (a, b) {
    this.current = null;
    const n = this.n, r = this.brush, value = this.erase ? 1 : 0;
    const steps = Math.max(1, Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]) / Math.max(1, r / 2)));
    for (let s = 0; s <= steps; s++) {
      const cx = a[0] + (b[0] - a[0]) * s / steps, cy = a[1] + (b[1] - a[1]) * s / steps;
      for (let y = Math.max(0, Math.floor(cy - r)); y <= Math.min(n - 1, Math.ceil(cy + r)); y++) {
        for (let x = Math.max(0, Math.floor(cx - r)); x <= Math.min(n - 1, Math.ceil(cx + r)); x++) {
          if ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r) this.mask[y * n + x] = value;
        }
      }
    }
    this.update();
  };

  Piece.prototype.preset = function (kind, side) {
    const n = this.n;
    this.current = null;
    this.mask.fill(1);
    if (kind === "square") {
      const y0 = Math.floor((n - side) / 2);
      for (let y = y0; y < y0 + side; y++) for (let x = y0; x < y0 + side; x++) this.mask[y * n + x] = 0;
    } else if (kind === "stroke") {
      const saved = this.brush, erase = this.erase;
      this.brush = 5;
      this.erase = false;
      const pts = [[0.2, 0.3], [0.4, 0.22], [0.55, 0.45], [0.45, 0.7], [0.7, 0.8], [0.85, 0.6]];
      for (let i = 1; i < pts.length; i++) {
        this.paintSegment([pts[i - 1][0] * n, pts[i - 1][1] * n], [pts[i][0] * n, pts[i][1] * n]);
      }
      this.brush = saved;
      this.erase = erase;
    }
    this.setErase(false);
    this.current = null;
    this.update();
  };

  Piece.prototype.setMask = function (values) {
    this.current = null;
    for (let i = 0; i < this.mask.length; i++) this.mask[i] = values[i] > 0 ? 1 : 0;
    this.update();
  };

  Piece.prototype.update = function () {
    this.layers = compute(this.mask, this.n);
    this.draws++;
    this.drawInput();
    this.drawFills();
    const self = this;
    this.layers.forEach(function (L, i) { self.drawLayer(i, L); });
    const holes = this.mask.reduce(function (a, v) { return a + (v ? 0 : 1); }, 0);
    const closed = this.layers.findIndex(function (L) { return L.holes === 0; });
    this.summary.textContent = "hole: " + holes + " px of " + this.n * this.n + " (" +
      (100 * holes / (this.n * this.n)).toFixed(1) + "%). " +
      (holes === 0 ? "No hole." : closed < 0 ? "The hole is never closed: part of it reaches the output as a hole." :
       "Closed after block " + closed + ".");
    this.root.setAttribute("data-holes", this.layers.map(function (L) { return L.holes; }).join(","));
    this.root.setAttribute("data-draws", String(this.draws));
  };

  Piece.prototype.drawInput = function () {
    const n = this.n, ctx = this.canvas.getContext("2d"), img = ctx.createImageData(n, n);
    const photo = !!this.gallery;  // the photograph is the canvas's background: holes cover it
    for (let i = 0; i < n * n; i++) {
      const y = Math.floor(i / n), x = i % n;
      const checker = ((x >> 3) + (y >> 3)) % 2 ? 236 : 250;
      const v = this.mask[i] ? checker : 20;
      img.data.set([v, v, v, photo && this.mask[i] ? 0 : 255], 4 * i);
    }
    ctx.putImageData(img, 0, 0);
  };

  Piece.prototype.drawLayer = function (i, L) {
    const c = this.panels[i].canvas, n = L.size;
    c.width = n;
    c.height = n;
    const ctx = c.getContext("2d"), img = ctx.createImageData(n, n);
    for (let j = 0; j < n * n; j++) {
      const rgb = L.mask[j] ? ratioColour(L.sum1 / L.sumM[j]) : [0, 0, 0];
      img.data.set([rgb[0], rgb[1], rgb[2], 255], 4 * j);
    }
    ctx.putImageData(img, 0, 0);
    this.panels[i].caption.textContent = blockLabel(BLOCKS[i], n) + " · hole " + L.holes +
      " px · max ratio " + (L.maxRatio ? L.maxRatio.toFixed(2) : "–");
  };

  Piece.prototype.readout = function (i, canvas, ev) {
    const L = this.layers[i];
    if (!L) return;
    const r = canvas.getBoundingClientRect();
    const x = Math.min(L.size - 1, Math.max(0, Math.floor((ev.clientX - r.left) / r.width * L.size)));
    const y = Math.min(L.size - 1, Math.max(0, Math.floor((ev.clientY - r.top) / r.height * L.size)));
    const s = L.sumM[y * L.size + x];
    this.readoutLine.textContent = "block " + i + " at (row " + y + ", column " + x + "): sum(M) = " + s +
      " of sum(1) = " + L.sum1 + (s > 0 ? ", ratio " + (L.sum1 / s).toFixed(3) + ", new mask 1 (valid)"
                                       : ", no valid entry: output 0, new mask 0 (hole)");
  };

  const instances = [];

  function init() {
    document.querySelectorAll(".pconv-draw-hole").forEach(function (root) {
      if (!root.pconvPiece) {
        root.pconvPiece = new Piece(root);
        instances.push(root.pconvPiece);
      }
    });
  }

  window.pconvDrawHole = { BLOCKS: BLOCKS, compute: compute, instances: instances, init: init };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
