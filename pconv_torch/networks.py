"""The poster's networks: a partial-convolution U-Net generator (Table 1) and global + local
discriminators (Table 2), read as the book's first page lists (conventions and readings).

Mask convention: **1 = valid (known) pixel, 0 = hole.** Images are (N, 3, H, W) float in [0, 1].

Parameter names are a contract: the NumPy from-scratch networks in ``pconv_ref`` load a torch
``state_dict`` by these keys.

Generator (default ``width=1, depth=4``; 3,605,967 parameters)::

    block  layer          K  S  in -> out        activation   size (128 input)
    0      PConv enc      5  2  3 -> 64          ReLU         64
    1      PConv enc      5  2  64 -> 128        ReLU         32
    2      PConv enc      3  2  128 -> 256       ReLU         16
    3      PConv enc      3  2  256 -> 256       ReLU         8
    4      PConv dec      3  1  256+256 -> 256   LeakyReLU    16   up(e4) ++ e3
    5      PConv dec      3  1  256+128 -> 256   LeakyReLU    32   up(d4) ++ e2
    6      PConv dec      3  1  256+64 -> 128    LeakyReLU    64   up(d5) ++ e1
    7      PConv dec      3  1  128+3 -> 64      LeakyReLU    128  up(d6) ++ x0
    8      PConv head     3  1  64 -> 3          LeakyReLU    128
    9      PConv head     1  1  3 -> 3           Sigmoid      128

``x0 = image * mask + (1 - mask) * fill`` is the mean-filled input; ``up`` is nearest 2x
upsampling of the features *and* of their mask; ``++`` concatenates channels, and the PConv
gets the two masks as a group mask (``mask_groups=(C_up, C_skip)``). State-dict keys:
``layers.{i}.conv.weight``, ``layers.{i}.conv.bias``, ``layers.{i}.norm.*`` (``norm="batch"``,
blocks 0..-3), and the buffer ``fill``.

Discriminator (default ``local=True``; 5,330,305 parameters): ``global_branch`` = five
5x5/2 convs (32, 64, 64, 128, 128) + ReLU on the whole image, flatten, ``fc`` -> 1024 + ReLU;
``local_branch`` = the first four of those on a 64x64 patch, ``fc`` -> 1024 + ReLU; ``head`` =
Linear(2048 -> 1) on the concatenation (Linear(1024 -> 1) when ``local=False``). It returns
logits (N,). Keys: ``{global,local}_branch.convs.{i}.*``, ``{global,local}_branch.fc.*``,
``head.*``. Weights use torch's default initialisation.
"""

from __future__ import annotations

from typing import Literal, Sequence, get_args

import torch
import torch.nn.functional as F
from torch import nn

from .harmonic import BASES, base_fill
from .masks import crop_boxes
from .partial_conv import PartialConv2d, check_binary_mask, check_finite

__all__ = ["Generator", "known_statistics", "STANDARD_CONTRAST", "Discriminator", "GeneratorBlock",
           "DiscriminatorBranch", "ConvKind", "NormKind", "GENERATOR_FIELDS", "generator_settings",
           "build_models", "standardise_error", "base_error"]

ConvKind = Literal["partial", "plain"]  # the poster's partial convolutions, or the ablation
NormKind = Literal["batch"]  # or None: the poster has no normalisation

# Filter counts of the poster's tables (width = 1).
ENCODER_FILTERS = (64, 128, 256, 256)
ENCODER_KERNELS = (5, 5, 3, 3)
DISCRIMINATOR_FILTERS = (32, 64, 64, 128, 128)
DISCRIMINATOR_FC = 1024


def _scale(c: int, width: float) -> int:
    """Filter count ``c`` at ``width``: ``max(1, round(c * width))``."""
    return max(1, int(round(c * width)))


class GeneratorBlock(nn.Module):
    """One row of Table 1: conv (partial or plain), optional batch norm, activation.

    ``forward(x, mask, mask_groups=None)``: x (N, C_in, H, W), mask (N, 1 | G, H, W) with
    1 = valid (ignored by a plain conv; may then be None). Returns ``(out, new_mask)``:
    out (N, C_out, H_out, W_out), new_mask (N, 1, H_out, W_out) for a partial conv, or the
    input mask unchanged (None when given None) for a plain conv.

    Attributes ``in_groups`` (channel counts of the concatenated inputs, e.g. (256, 256))
    and ``act`` (the activation module) are read by :mod:`pconv_torch.summary`.
    """

    def __init__(self, in_groups: Sequence[int], out_channels: int, kernel_size: int,
                 stride: int, act: nn.Module, conv: ConvKind = "partial", norm: NormKind | None = None):
        super().__init__()
        self.in_groups = tuple(int(c) for c in in_groups)
        c_in, pad = sum(self.in_groups), kernel_size // 2  # "same" padding for odd kernels
        self.partial = conv == "partial"
        if self.partial:  # masks inside the generator are binary by construction
            self.conv = PartialConv2d(c_in, out_channels, kernel_size, stride, pad, bias=True,
                                      check_inputs=False)
        else:
            self.conv = nn.Conv2d(c_in, out_channels, kernel_size, stride, pad, bias=True)
        if norm == "batch":
            self.norm = nn.BatchNorm2d(out_channels)
        self.act = act

    def forward(self, x, mask=None, mask_groups=None, activation: bool = True, update=None):
        if self.partial:
            out, mask = self.conv(x, mask, mask_groups, update=update)
        else:
            out = self.conv(x)
        if hasattr(self, "norm"):
            out = self.norm(out)
        return (self.act(out) if activation else out), mask


STANDARD_CONTRAST = 0.25  # the contrast a standardising generator gives its input


def known_statistics(image: torch.Tensor, mask: torch.Tensor):
    """Mean and contrast of the known pixels, without gradient.

    image (N, 3, H, W), mask (N, 1, H, W) with 1 = known and at least one known pixel.
    Returns ``mean`` (N, 3, 1, 1), per channel, and ``contrast`` (N, 1, 1, 1): the
    root-mean-square deviation from ``mean`` over the known pixels of all channels.
    """
    with torch.no_grad():
        dtype = torch.promote_types(image.dtype, torch.float32)  # float64 stays float64
        x, m = image.to(dtype), mask.to(dtype)
        count = m.sum((2, 3), keepdim=True).clamp(min=1)
        mean = (x * m).sum((2, 3), keepdim=True) / count
        var = ((x - mean) ** 2 * m).sum((1, 2, 3), keepdim=True) / (3 * count)
        return mean.to(image.dtype), var.sqrt().to(image.dtype)


def standardise_error(residual: bool, standardise: bool) -> str | None:
    """Why ``standardise`` cannot be used with ``residual``, or None: the one statement of
    that rule, for :class:`Generator` and :class:`~pconv_torch.config.TrainConfig`."""
    if standardise and not residual:
        return "needs residual=True (it scales the correction to the harmonic fill)"
    return None


def base_error(residual: bool, base: str) -> str | None:
    """Why ``base`` cannot be used (with ``residual``), or None: for :class:`Generator` and
    :class:`~pconv_torch.config.TrainConfig`."""
    if base not in BASES:
        return f"must be one of {', '.join(map(repr, BASES))}"
    if base != "harmonic" and not residual:
        return "needs residual=True (it is the fill the network corrects)"
    return None


class Generator(nn.Module):
    """U-Net of partial convolutions (poster Table 1; see the module docstring for the layout).

    Args:
        width: scales every filter count c to ``max(1, round(c * width))``; the 3 image
            channels never scale.
        depth: number of encoder (and decoder) levels, >= 2. Default 4 is Table 1; 5 adds a
            3x3/2 -> 256 encoder block and its decoder block at the bottom (the poster's
            future work). Encoder filters ``[64, 128, 256, 256] + [256] * (depth - 4)``
            (the first ``depth`` of them when depth < 4); decoder filters, bottom-up,
            ``[256] * (depth - 2) + [128, 64]``.
        norm: None (the poster) or ``"batch"``: BatchNorm2d after the conv of every block but
            the last two (as Liu et al.).
        conv: ``"partial"`` (the poster) or ``"plain"`` (nn.Conv2d, same shapes and parameter
            count: the ablation on mean-filled input; the masks are then not used by the convs).
        fill: per-channel training-set mean used to fill the holes (buffer ``fill``, (3,)).
        residual: False (the poster): the output is ``sigmoid(z)``, with ``z`` the last
            block's pre-activation. True: the network learns a correction to the harmonic
            fill ``h`` of the hole (:func:`pconv_torch.harmonic.harmonic_fill`), and the output
            is ``sigmoid(z + logit(h))``, ``h`` clipped to [1/512, 511/512]; the layers and
            parameters are the same, and the last layer starts at zero (weights and bias), so
            an untrained generator returns ``h``.
        standardise: with ``residual`` only. False (default): the network sees the image as
            it is. True: it sees the image standardised by its known pixels, ``(x - mu) *
            STANDARD_CONTRAST / (s + 1e-3) + 0.5`` (``mu`` (N, 3) the per-channel mean, ``s``
            (N,) the root-mean-square deviation over all three channels, 1e-3 keeping a flat
            image finite), and its correction is scaled by the image's contrast:
            ``sigmoid(logit(h) + z * s / STANDARD_CONTRAST)``. The fill then barely depends on
            the image's brightness, colour and contrast, and a flat image (``s = 0``) gets the
            harmonic fill, exactly.
        base: with ``residual`` only: the fill ``h`` the network corrects,
            ``"harmonic"`` (default), ``"biharmonic"`` (the thin-plate fill, which continues
            the border's slopes: exact on a quadratic shading) or ``"mixed"`` (their mean);
            see :mod:`pconv_torch.harmonic`.
        image_size: the side of the images it is trained at, or None (unknown); kept as the
            attribute ``image_size``, the scale :func:`pconv_torch.inpaint` runs it at.

    ``forward(image, mask)``: image (N, 3, H, W) in [0, 1] (values under holes are ignored),
    mask (N, 1, H, W), **1 = valid, 0 = hole**; H and W divisible by ``2**depth``.
    Returns the raw output G(I), (N, 3, H, W) in [0, 1] (not composited with the input).
    """

    def __init__(self, width: float = 1.0, depth: int = 4, norm: NormKind | None = None,
                 conv: ConvKind = "partial", fill: Sequence[float] = (0.5, 0.5, 0.5),
                 residual: bool = False, standardise: bool = False, base: str = "harmonic",
                 image_size: int | None = None):
        super().__init__()
        why = standardise_error(residual, standardise)
        if why:
            raise ValueError(f"standardise=True {why}")
        why = base_error(residual, base)
        if why:
            raise ValueError(f"base={base!r} {why}")
        if image_size is not None and not (isinstance(image_size, int) and image_size > 0):
            raise ValueError(f"image_size must be None or a positive int, got {image_size!r}")
        if conv not in get_args(ConvKind):
            raise ValueError(f"conv must be 'partial' or 'plain', got {conv!r}")
        if norm not in (None, *get_args(NormKind)):
            raise ValueError(f"norm must be None or 'batch', got {norm!r}")
        if not isinstance(depth, int) or depth < 2:
            raise ValueError(f"depth must be an int >= 2, got {depth!r}")
        if not width > 0:
            raise ValueError(f"width must be > 0, got {width!r}")
        fill = torch.as_tensor(fill, dtype=torch.float32)
        if fill.shape != (3,):
            raise ValueError(f"fill must hold 3 per-channel values, got shape {tuple(fill.shape)}")
        self.width, self.depth, self.norm, self.conv = float(width), depth, norm, conv
        self.residual, self.standardise, self.base = bool(residual), bool(standardise), base
        self.image_size = image_size  # the side it is trained at (pconv_torch.inference)
        self.register_buffer("fill", fill.clone())
        # the fill a residual generator corrects; a training step may put a compiled copy here
        self.base_fill = base_fill(base)

        n_extra = max(0, depth - 4)
        enc = [_scale(c, width) for c in (list(ENCODER_FILTERS) + [256] * n_extra)[:depth]]
        kernels = (list(ENCODER_KERNELS) + [3] * n_extra)[:depth]
        dec = [_scale(c, width) for c in [256] * (depth - 2) + [128, 64]]
        self.encoder_channels, self.decoder_channels = tuple(enc), tuple(dec)

        def block(groups, c_out, k, s, act, with_norm=True):
            return GeneratorBlock(groups, c_out, k, s, act, conv, norm if with_norm else None)

        layers = []
        c_prev = 3
        for c, k in zip(enc, kernels):  # encoder: blocks 0 .. depth-1
            layers.append(block((c_prev,), c, k, 2, nn.ReLU()))
            c_prev = c
        skips = [3] + enc[:-1]  # skip of decoder block j is skips[depth-1-j]
        for j, c in enumerate(dec):  # decoder, bottom-up: blocks depth .. 2*depth-1
            layers.append(block((c_prev, skips[depth - 1 - j]), c, 3, 1, nn.LeakyReLU(0.2)))
            c_prev = c
        layers.append(block((c_prev,), 3, 3, 1, nn.LeakyReLU(0.2), with_norm=False))
        layers.append(block((3,), 3, 1, 1, nn.Sigmoid(), with_norm=False))
        self.layers = nn.ModuleList(layers)
        if self.residual:  # start as the base fill itself: z = 0 everywhere
            nn.init.zeros_(self.layers[-1].conv.weight)
            nn.init.zeros_(self.layers[-1].conv.bias)

    def check_inputs(self, image: torch.Tensor, mask: torch.Tensor, values: bool = True) -> None:
        """Raise ValueError with a clear message unless image (N, 3, H, W) and mask
        (N, 1, H, W) fit the network and, with ``values``, the mask is binary and the image
        finite (the one value check of a forward pass: the layers inside run with
        ``check_inputs=False``; it reads the values, a device synchronisation)."""
        if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3:
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(f"image must be (N, 3, H, W), got {shape}")
        n, _, h, w = image.shape
        if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != (n, 1, h, w):
            shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(
                f"mask must be (N, 1, H, W) = ({n}, 1, {h}, {w}) to match the image "
                f"(1 = valid, 0 = hole), got {shape}"
            )
        f = 2 ** self.depth
        if h % f or w % f or h == 0 or w == 0:
            raise ValueError(
                f"image height and width must be positive multiples of 2**depth = {f} "
                f"(depth={self.depth}), got {h}x{w}; pad the image (e.g. to "
                f"{-(-max(h, 1) // f) * f}x{-(-max(w, 1) // f) * f}) and crop the output back"
            )
        if values:
            check_binary_mask(mask)
            check_finite(image, "image")

    @torch.no_grad()
    def mask_pyramid(self, mask: torch.Tensor):
        """Every partial convolution's mask, rescaling ratio and new mask, from the input mask.

        None of them depends on the image or the weights, so one pass of single-channel box
        sums computes the whole U-Net's masks once per batch, before any feature is touched.

        Args:
            mask: (N, 1, H, W), 1 = valid, 0 = hole (binary; not checked here).
        Returns:
            None for ``conv="plain"``; else one ``(mask_in, mask_groups, (ratio, new_mask))``
            per block in forward order: ``mask_in`` (N, 1 | 2, H_i, W_i) is the mask the
            block's input is multiplied by (after a decoder's concatenation, the upsampled mask
            and the skip's, with ``mask_groups = (C_up, C_skip)``), ``ratio`` and
            ``new_mask`` (N, 1, H_out, W_out) as :func:`pconv_torch.partial_conv.mask_update`.
        """
        if self.conv != "partial":
            return None
        dtype = torch.float64 if mask.dtype == torch.float64 else torch.float32
        m = mask.to(dtype)
        d, pyramid, encoder_masks = self.depth, [], [m]

        def add(blk, m_in, groups=None):
            pyramid.append((m_in, groups, blk.conv.mask_update(m_in, groups, dtype)))
            return pyramid[-1][2][1]

        for blk in self.layers[:d]:
            m = add(blk, m)
            encoder_masks.append(m)
        for j, blk in enumerate(self.layers[d : 2 * d]):
            up = F.interpolate(m, scale_factor=2, mode="nearest")
            m = add(blk, torch.cat([up, encoder_masks[d - 1 - j]], 1), blk.in_groups)
        for blk in self.layers[2 * d :]:
            m = add(blk, m)
        return pyramid

    def forward(self, image: torch.Tensor, mask: torch.Tensor, pyramid=None,
                check_values: bool = True) -> torch.Tensor:
        """G(I): image (N, 3, H, W), mask (N, 1, H, W) -> (N, 3, H, W); ``pyramid``: this mask's
        :meth:`mask_pyramid`, when computed beforehand; ``check_values=False`` skips the
        value checks (for inputs known to be valid: no host synchronisation)."""
        self.check_inputs(image, mask, check_values)
        mask = mask.to(image.dtype)
        if pyramid is None:
            pyramid = self.mask_pyramid(mask)
        fill = self.fill.to(image.dtype).view(1, 3, 1, 1)
        inputs = image
        if self.standardise:
            mean, contrast = known_statistics(image, mask)
            inputs = (image - mean) * (STANDARD_CONTRAST / (contrast + 1e-3)) + 0.5
        x = inputs * mask + (1 - mask) * fill  # the poster's mean fill, x0
        feats = [x]  # feats[k]: input of encoder block k (k = depth: the bottleneck)
        d = self.depth

        def run(i, x, activation=True):
            m_in, groups, update = pyramid[i] if pyramid is not None else (None, None, None)
            return self.layers[i](x, m_in, groups, activation, update)[0]

        for i in range(d):
            x = run(i, x)
            feats.append(x)
        for j in range(d):
            x = torch.cat([F.interpolate(x, scale_factor=2, mode="nearest"), feats[d - 1 - j]], 1)
            x = run(d + j, x)
        x = run(2 * d, x)
        if not self.residual:
            return run(2 * d + 1, x)
        z = run(2 * d + 1, x, activation=False)
        base = self.base_fill(image, mask).clamp(1 / 512, 511 / 512)
        out_dtype, z = z.dtype, z.to(base.dtype)
        if self.standardise:
            z = z * (contrast.to(base.dtype) / STANDARD_CONTRAST)
        return torch.sigmoid(z + torch.logit(base)).to(out_dtype)

    def table_rows(self):
        """(name, layer module, module whose parameters the row counts, activation module),
        one per row of the architecture table, in forward order."""
        return [(f"layers.{i}", b.conv, b, b.act) for i, b in enumerate(self.layers)]


class DiscriminatorBranch(nn.Module):
    """Convs 5x5/2 + ReLU, flatten (C, H, W row-major), Linear + ReLU.

    ``forward(x)``: x (N, 3, S, S) -> (N, fc_features), with ``S / 2**len(filters)`` pixels
    per side left before the flatten.
    """

    def __init__(self, filters: Sequence[int], size: int, fc_features: int):
        super().__init__()
        convs, c_prev = [], 3
        for c in filters:
            convs.append(nn.Conv2d(c_prev, c, 5, 2, 2))
            c_prev = c
        self.convs = nn.ModuleList(convs)
        side = size // 2 ** len(filters)
        self.fc = nn.Linear(c_prev * side * side, fc_features)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = self.act(conv(x))
        return self.act(self.fc(x.flatten(1)))


class Discriminator(nn.Module):
    """Global + local discriminators (poster Table 2, Iizuka et al.) with a joint logit.

    Args:
        local: True (default) for global + local; False for the global-only ablation.
        image_size: side of the square input image, a multiple of 32 (five stride-2 convs).
        patch_size: side of the local patch, a multiple of 16 (four stride-2 convs).
        width: scales the conv filters (32, 64, 64, 128, 128) and the FC features (1024) by
            ``max(1, round(c * width))``.

    ``forward(image, boxes=None, check_values=True)``: image (N, 3, image_size, image_size)
    in [0, 1]; boxes (N, 2) int top-left corners ``(y0, x0)`` of each local patch, e.g. from
    ``pconv_torch.masks.local_boxes(masks, box=patch_size)``; required when ``local``.
    ``check_values=False`` skips the check that every patch fits (a host read of the boxes).
    Returns logits (N,) (apply a sigmoid for D(I)).
    """

    def __init__(self, local: bool = True, image_size: int = 128, patch_size: int = 64,
                 width: float = 1.0):
        super().__init__()
        if image_size <= 0 or image_size % 32:
            raise ValueError(f"image_size must be a positive multiple of 32, got {image_size}")
        if local and (patch_size <= 0 or patch_size % 16 or patch_size > image_size):
            raise ValueError(
                f"patch_size must be a positive multiple of 16 and <= image_size "
                f"({image_size}), got {patch_size}"
            )
        if not width > 0:
            raise ValueError(f"width must be > 0, got {width!r}")
        self.local, self.image_size, self.patch_size = bool(local), image_size, patch_size
        filters = [_scale(c, width) for c in DISCRIMINATOR_FILTERS]
        fc = _scale(DISCRIMINATOR_FC, width)
        self.global_branch = DiscriminatorBranch(filters, image_size, fc)
        if self.local:
            self.local_branch = DiscriminatorBranch(filters[:4], patch_size, fc)
        self.head = nn.Linear(fc * (2 if self.local else 1), 1)

    def forward(self, image: torch.Tensor, boxes=None, check_values: bool = True) -> torch.Tensor:
        s = self.image_size
        ok = isinstance(image, torch.Tensor) and image.ndim == 4
        if not ok or tuple(image.shape[1:]) != (3, s, s):
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(f"image must be (N, 3, {s}, {s}), got {shape}")
        feat = self.global_branch(image)
        if self.local:
            if boxes is None:
                raise ValueError(
                    "boxes (N, 2) of local-patch corners (y0, x0) are required when local=True; "
                    "get them from pconv_torch.masks.local_boxes(masks, box=patch_size)"
                )
            n, p = image.shape[0], self.patch_size
            b = torch.as_tensor(boxes)
            if tuple(b.shape) != (n, 2):
                raise ValueError(f"boxes must be ({n}, 2) corners (y0, x0), got {tuple(b.shape)}")
            if check_values and (bool((b < 0).any()) or bool((b > s - p).any())):
                raise ValueError(f"box corners must lie in [0, {s - p}] so the {p}x{p} patch fits")
            patches = crop_boxes(image, b, box=p)
            feat = torch.cat([feat, self.local_branch(patches)], 1)
        return self.head(feat).squeeze(1)

    def table_rows(self):
        """(name, layer module, module whose parameters the row counts, activation module or
        None), one per row of the architecture table, in forward order."""
        rows = []
        branches = [("global_branch", self.global_branch)]
        if self.local:
            branches.append(("local_branch", self.local_branch))
        for name, br in branches:
            rows += [(f"{name}.convs.{i}", c, c, br.act) for i, c in enumerate(br.convs)]
            rows.append((f"{name}.fc", br.fc, br.fc, br.act))
        rows.append(("head", self.head, self.head, None))
        return rows


# The generator's own options, as TrainConfig fields (and the "generator" table of
# pconv_torch/weights/manifest.json); image_size and fill are given to it separately.
GENERATOR_FIELDS = ("width", "depth", "norm", "conv", "residual", "standardise", "base")


def generator_settings(config) -> dict:
    """``{option: value}`` of :data:`GENERATOR_FIELDS`: what ``Generator(**...)`` takes from
    ``config`` besides ``image_size`` and ``fill``."""
    return {name: getattr(config, name) for name in GENERATOR_FIELDS}


def build_models(config, fill=(0.5, 0.5, 0.5)):
    """``(G, D)`` that a :class:`~pconv_torch.config.TrainConfig` describes (CPU, float32,
    torch default initialisation): G maps images (N, 3, S, S) in [0, 1] and masks
    (N, 1, S, S) (1 = valid, 0 = hole) to images (N, 3, S, S); D maps images and local-patch
    corners (N, 2) to logits (N, 1), with ``S = config.image_size``. ``fill`` (3,) is G's
    mean-fill value for the holes; G's ``image_size`` is ``config.image_size``."""
    g = Generator(**generator_settings(config), image_size=config.image_size,
                  fill=tuple(float(v) for v in fill))
    d = Discriminator(local=config.local, image_size=config.image_size,
                      patch_size=config.patch_size, width=config.d_width)
    return g, d
