"""The poster's whole networks, from scratch: generator and discriminators, forward and backward.

Nothing here computes a layer: every block is a call to the reference's own pieces
(``partial_conv2d_*``, ``conv2d_*``, ``upsample_nearest2x_*``, ``concat_*``, the activations,
``flatten_*``, ``linear_*``); this module only wires them together the way
``pconv_torch.Generator`` / ``pconv_torch.Discriminator`` do, so that a torch ``state_dict``
loads straight into it::

    params = {k: v.detach().double().cpu().numpy() for k, v in module.state_dict().items()}
    out, cache = generator_forward(params, image, mask)
    grads, d_image = generator_backward(d_out, cache)   # grads["layers.3.conv.weight"] ...

Conventions: arrays are channels-first (N, C, H, W); images in [0, 1]; **mask 1 = valid
(known) pixel, 0 = hole**, shape (N, 1, H, W). Channel counts, kernel sizes and the number of
blocks are read from the weights' shapes, so every ``width`` works; ``depth`` must be given
(it fixes which blocks are encoder and which decoder). Only ``norm=None`` networks are
supported: batch norm is out of scope for the reference (a state_dict with ``*.norm.*``
entries is refused with a ValueError).

Generator (poster Table 1; block ``i`` has parameters ``layers.{i}.conv.weight/bias``)::

    x0 = image * M + (1 - M) * fill                       (mean fill; fill (3,) is a buffer)
    encoder  i = 0..depth-1:      e_{i+1}, m_{i+1} = PConv_k/2(e_i, m_i), ReLU   (e_0 = x0)
    decoder  i = depth+j, j = 0..depth-1 (bottom-up), skip s = e_{depth-1-j}:
             h, m = PConv_3/1(concat[up2(h), s], concat[up2(m), m_s]; groups (C_h, C_s)),
             LeakyReLU(0.2)
    head     i = 2*depth:         PConv_3/1, LeakyReLU(0.2)
             i = 2*depth + 1:     PConv_1/1, Sigmoid  -> output (N, 3, H, W)

``PConv_k/s`` has kernel k, stride s, padding k//2 ("same"). With ``conv="plain"`` every
PConv is a plain convolution of the same shape (masks ignored, x0 still mean-filled).

Discriminator (poster Table 2, Iizuka et al.; logits, no sigmoid)::

    global: 5 x [Conv 5x5/2 pad 2, ReLU] on the whole image -> flatten -> fc, ReLU  (N, 1024)
    local:  4 x [Conv 5x5/2 pad 2, ReLU] on the patch image[:, :, y0:y0+P, x0:x0+P]
            -> flatten -> fc, ReLU                                                 (N, 1024)
    head:   Linear(concat[global, local]) (local=True) or Linear(global) -> (N,) logits

Keys ``global_branch.convs.{i}.*``, ``global_branch.fc.*``, ``local_branch.convs.{i}.*``,
``local_branch.fc.*``, ``head.*``. The discriminator's backward also returns d_image, so that
the adversarial gradient flows from D's logits back into the generator's output.
"""

from __future__ import annotations

import numpy as np

from .conv import conv2d_backward, conv2d_forward
from .harmonic import base_fill
from .layers import (
    concat_backward,
    concat_forward,
    flatten_backward,
    flatten_forward,
    leaky_relu_backward,
    leaky_relu_forward,
    linear_backward,
    linear_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    upsample_nearest2x_backward,
    upsample_nearest2x_forward,
)
from .losses import discriminator_loss, generator_loss, mse_weighted
from .partial_conv import mask_update, partial_conv2d_backward, partial_conv2d_forward

__all__ = [
    "generator_forward",
    "generator_backward",
    "discriminator_forward",
    "discriminator_backward",
    "generator_loss_and_grads",
    "discriminator_loss_and_grads",
]

LEAKY_SLOPE = 0.2


# ------------------------------------------------------------------------------ helpers
def _param(params, key):
    try:
        return np.asarray(params[key])
    except KeyError:
        raise ValueError(f"params has no entry {key!r}") from None


def _refuse_norm(params):
    norm = sorted(k for k in params if ".norm." in k)
    if norm:
        raise ValueError(
            f"batch norm is not supported by the NumPy reference (found {norm[0]!r} ...); "
            f"build the torch network with norm=None"
        )


def _conv_block_forward(conv, x, mask, w, b, stride, padding, mask_groups=None, update=None):
    """One convolution of a block: partial (masks flow) or plain (masks ignored).

    x: (N, C_in, H, W); mask: (N, 1 | G, H, W) or None for plain; w: (C_out, C_in, k, k).
    Returns out (N, C_out, H_out, W_out), new_mask (N, 1, H_out, W_out) or None, cache.
    """
    if conv == "partial":
        out, new_mask, cache = partial_conv2d_forward(x, mask, w, b, stride, padding, mask_groups,
                                                      update)
        return out, new_mask, ("partial", cache)
    out, cache = conv2d_forward(x, w, b, stride, padding)
    return out, None, ("plain", cache)


def _conv_block_backward(dout, cache):
    """Returns dx, dw, db of ``_conv_block_forward``."""
    kind, c = cache
    return partial_conv2d_backward(dout, c) if kind == "partial" else conv2d_backward(dout, c)


# ---------------------------------------------------------------------------- generator
def known_statistics(image, mask):
    """Per-channel mean (N, 3, 1, 1) and contrast (N, 1, 1, 1) of the known pixels: the
    root-mean-square deviation from the mean over all channels (``pconv_torch.networks``)."""
    count = np.maximum(mask.sum(axis=(2, 3), keepdims=True), 1)
    mean = (image * mask).sum(axis=(2, 3), keepdims=True) / count
    var = ((image - mean) ** 2 * mask).sum(axis=(1, 2, 3), keepdims=True) / (3 * count)
    return mean, np.sqrt(var)


STANDARD_CONTRAST = 0.25  # the contrast a standardising generator gives its input


def generator_mask_pyramid(params, mask, depth=4):
    """Every partial convolution's mask, ratio and new mask, from the input mask alone.

    A partial convolution's ratio ``sum_1/sum_M`` and new mask depend only on its input
    mask, and in the U-Net every mask follows from the input mask, so the whole network's
    masks can be computed before any feature is (``pconv_torch.Generator.mask_pyramid``
    does the same). Channel counts and kernel sizes are read from ``params``.

    Args:
        params: the generator's parameters (``generator_forward``); mask: (N, 1, H, W),
            1 = valid; depth: encoder levels.
    Returns:
        one ``(mask_in, mask_groups, (ratio, new_mask))`` per block, in forward order:
        ``mask_in`` (N, 1 | 2, H_i, W_i) the mask of the block's input (after a decoder's
        concatenation: upsampled mask and skip mask, ``mask_groups = (C_up, C_skip)``),
        ``ratio`` and ``new_mask`` (N, 1, H_out, W_out) as :func:`mask_update` returns them.
    """
    mask = np.asarray(mask)
    pyramid, encoder_masks, m = [], [mask], mask
    # channels of each encoder level's output: the input image, then blocks 0 .. depth-2
    skip_channels = [3] + [_param(params, f"layers.{i}.conv.weight").shape[0]
                           for i in range(depth - 1)]

    def add(i, m_in, stride, groups=None):
        c_out, c_in, kh, kw = _param(params, f"layers.{i}.conv.weight").shape
        update = mask_update(m_in, c_in, kh, kw, stride, kh // 2, groups, mask.dtype)
        pyramid.append((m_in, groups, update))
        return update[1]

    for i in range(depth):
        m = add(i, m, 2)
        encoder_masks.append(m)
    for j in range(depth):
        c_skip = skip_channels[depth - 1 - j]
        c_in = _param(params, f"layers.{depth + j}.conv.weight").shape[1]
        up = upsample_nearest2x_forward(m)[0]
        m_in = np.concatenate([up, encoder_masks[depth - 1 - j]], axis=1)
        m = add(depth + j, m_in, 1, (c_in - c_skip, c_skip))
    for i in (2 * depth, 2 * depth + 1):
        m = add(i, m, 1)
    return pyramid


def generator_forward(params, image, mask, depth=4, conv="partial", residual=False,
                      standardise=False, base="harmonic"):
    """The generator of poster Table 1 (U-Net of partial convolutions), forward.

    Args:
        params: dict name -> array, the ``pconv_torch.Generator`` state_dict (norm=None):
            ``layers.{i}.conv.weight`` (C_out, C_in, k, k), ``layers.{i}.conv.bias``
            (C_out,) for i = 0..2*depth+1, and ``fill`` (3,), the hole fill value.
        image: (N, 3, H, W) in [0, 1]; values under holes are ignored. H, W divisible by
            2**depth.
        mask: (N, 1, H, W), 1 = valid, 0 = hole.
        depth: number of encoder (= decoder) blocks; 4 in the poster.
        conv: "partial" (poster) or "plain" (the ablation: plain convolutions, masks ignored
            by the convolutions; the input is still mean-filled).
        residual: False (poster): output ``sigmoid(z)``, z the last block's pre-activation.
            True: ``sigmoid(z + logit(h))``, h the ``base`` fill of the hole
            (:func:`pconv_ref.harmonic.base_fill`) clipped to [1/512, 511/512]; h is a
            constant of the image, so the backward pass is the same.
        standardise: with ``residual`` only: the network sees ``(image - mean) *
            STANDARD_CONTRAST / (contrast + 1e-3) + 0.5`` (:func:`known_statistics`, held
            constant in the backward pass), and ``z`` is scaled by ``contrast /
            STANDARD_CONTRAST`` before ``logit(h)`` is added.
        base: with ``residual``: the fill h, "harmonic", "biharmonic" or "mixed"
            (:func:`pconv_ref.harmonic.base_fill`).

    Returns:
        output: (N, 3, H, W), the raw G(I) in (0, 1) (not composited with the image).
        cache: for ``generator_backward``.
    """
    if conv not in ("partial", "plain"):
        raise ValueError(f"conv must be 'partial' or 'plain', got {conv!r}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    _refuse_norm(params)
    n_blocks = 2 * depth + 2
    if f"layers.{n_blocks}.conv.weight" in params:
        raise ValueError(f"params have more than 2*depth+2 = {n_blocks} blocks; wrong depth?")
    image, mask = np.asarray(image), np.asarray(mask)
    if image.ndim != 4 or mask.shape != (image.shape[0], 1) + image.shape[2:]:
        raise ValueError(f"image (N, C, H, W) and mask (N, 1, H, W) expected, got "
                         f"{image.shape} and {mask.shape}")
    H, W = image.shape[2:]
    if H % 2**depth or W % 2**depth:
        raise ValueError(f"H, W = {H}, {W} must be divisible by 2**depth = {2**depth}")
    if standardise and not residual:
        raise ValueError("standardise=True needs residual=True")
    if base != "harmonic" and not residual:
        raise ValueError(f"base={base!r} needs residual=True")
    mask = mask.astype(image.dtype)
    fill = _param(params, "fill").astype(image.dtype)[None, :, None, None]
    inputs, in_scale, out_scale = image, 1.0, 1.0
    if standardise:
        mean, contrast = known_statistics(image, mask)
        in_scale, out_scale = STANDARD_CONTRAST / (contrast + 1e-3), contrast / STANDARD_CONTRAST
        inputs = (image - mean) * in_scale + 0.5

    # every block's mask, ratio and new mask, computed once from the input mask
    pyramid = generator_mask_pyramid(params, mask, depth) if conv == "partial" else None

    def block(i, x, m, stride, groups=None):
        w = _param(params, f"layers.{i}.conv.weight")
        b = params.get(f"layers.{i}.conv.bias")
        update = pyramid[i][2] if pyramid is not None else None
        return _conv_block_forward(conv, x, m, w, b, stride, w.shape[-1] // 2, groups, update)

    caches = []  # one entry per block, in block order
    x0 = inputs * mask + (1 - mask) * fill
    feats, masks = [x0], [mask if conv == "partial" else None]
    h, m = x0, masks[0]
    for i in range(depth):  # encoder: conv k/2, ReLU
        h, m, c_conv = block(i, h, m, 2)
        h, c_act = relu_forward(h)
        caches.append((c_conv, c_act))
        feats.append(h)
        masks.append(m)
    for j in range(depth):  # decoder, bottom-up: up2, concat skip, conv 3/1, LeakyReLU
        skip, skip_m = feats[depth - 1 - j], masks[depth - 1 - j]
        up, c_up = upsample_nearest2x_forward(h)
        x, c_cat = concat_forward([up, skip])
        groups = None
        if conv == "partial":
            m = np.concatenate([upsample_nearest2x_forward(m)[0], skip_m], axis=1)
            groups = (up.shape[1], skip.shape[1])
        h, m, c_conv = block(depth + j, x, m, 1, groups)
        h, c_act = leaky_relu_forward(h, LEAKY_SLOPE)
        caches.append((c_up, c_cat, c_conv, c_act))
    h, m, c_conv = block(2 * depth, h, m, 1)  # head: conv 3/1, LeakyReLU
    h, c_act = leaky_relu_forward(h, LEAKY_SLOPE)
    caches.append((c_conv, c_act))
    h, m, c_conv = block(2 * depth + 1, h, m, 1)  # conv 1/1, Sigmoid
    if residual:  # a correction to the base fill, in logit space
        h_fill = np.clip(base_fill(base, image, mask), 1 / 512, 511 / 512).astype(h.dtype)
        h = h * out_scale + np.log(h_fill / (1 - h_fill))
    out, c_act = sigmoid_forward(h)
    caches.append((c_conv, c_act))
    return out, (depth, caches, mask, in_scale, out_scale)


def generator_backward(d_output, cache):
    """Backward of ``generator_forward``.

    Args:
        d_output: (N, 3, H, W), dL/d output. cache: from ``generator_forward``.

    Returns:
        grads: dict ``"layers.{i}.conv.weight"`` / ``".bias"`` -> dL/d parameter, the keys of
            the torch module's ``named_parameters()`` (``fill`` is a buffer: no gradient).
        d_image: (N, 3, H, W), dL/d image ``= dL/dx0 * M`` (zero under holes; times the
            standardising scale with ``standardise``).
    """
    depth, caches, mask, in_scale, out_scale = cache
    grads = {}

    def block_back(i, dout, c_conv):
        dx, dw, db = _conv_block_backward(dout, c_conv)
        grads[f"layers.{i}.conv.weight"] = dw
        if db is not None:
            grads[f"layers.{i}.conv.bias"] = db
        return dx

    c_conv, c_act = caches[2 * depth + 1]
    d = block_back(2 * depth + 1, sigmoid_backward(d_output, c_act) * out_scale, c_conv)
    c_conv, c_act = caches[2 * depth]
    d = block_back(2 * depth, leaky_relu_backward(d, c_act), c_conv)
    d_feats = [0.0] * (depth + 1)  # dL/d e_k from the skip connections (e_0 = x0)
    for j in reversed(range(depth)):
        c_up, c_cat, c_conv, c_act = caches[depth + j]
        d = block_back(depth + j, leaky_relu_backward(d, c_act), c_conv)
        d_up, d_skip = concat_backward(d, c_cat)
        d_feats[depth - 1 - j] = d_feats[depth - 1 - j] + d_skip
        d = upsample_nearest2x_backward(d_up, c_up)
    for i in reversed(range(depth)):  # d is now dL/d e_{i+1}
        c_conv, c_act = caches[i]
        d = block_back(i, relu_backward(d, c_act), c_conv) + d_feats[i]
    d_image = d * mask * in_scale  # x0 = inputs*M + (1-M)*fill
    return dict(sorted(grads.items(), key=lambda kv: _block_order(kv[0]))), d_image


def _block_order(key):
    parts = key.split(".")
    return (int(parts[1]), parts[-1] != "weight") if parts[0] == "layers" else (1 << 30, key)


# ------------------------------------------------------------------------ discriminator
def _branch_forward(params, prefix, x):
    """convs (5x5/2 pad k//2, ReLU each) -> flatten -> fc, ReLU. x: (N, 3, S, S) ->
    (N, 1024) features; the number of convs is read from the keys."""
    caches = []
    i = 0
    while f"{prefix}.convs.{i}.weight" in params:
        w = _param(params, f"{prefix}.convs.{i}.weight")
        x, c_conv = conv2d_forward(x, w, params.get(f"{prefix}.convs.{i}.bias"), 2,
                                   w.shape[-1] // 2)
        x, c_act = relu_forward(x)
        caches.append((c_conv, c_act))
        i += 1
    if i == 0:
        raise ValueError(f"params have no {prefix}.convs.0.weight")
    x, c_flat = flatten_forward(x)
    w_fc = _param(params, f"{prefix}.fc.weight")
    if w_fc.shape[1] != x.shape[1]:
        raise ValueError(f"{prefix}: the convolutions give {x.shape[1]} features but fc takes "
                         f"{w_fc.shape[1]}; wrong image or patch size?")
    x, c_fc = linear_forward(x, w_fc, params.get(f"{prefix}.fc.bias"))
    x, c_relu = relu_forward(x)
    return x, (prefix, caches, c_flat, c_fc, c_relu)


def _branch_backward(d_feat, cache, grads):
    """d_feat: (N, 1024) -> dL/d branch input (N, 3, S, S); parameter gradients into grads."""
    prefix, caches, c_flat, c_fc, c_relu = cache
    d, grads[f"{prefix}.fc.weight"], db = linear_backward(relu_backward(d_feat, c_relu), c_fc)
    if db is not None:
        grads[f"{prefix}.fc.bias"] = db
    d = flatten_backward(d, c_flat)
    for i in reversed(range(len(caches))):
        c_conv, c_act = caches[i]
        d, grads[f"{prefix}.convs.{i}.weight"], db = conv2d_backward(relu_backward(d, c_act),
                                                                    c_conv)
        if db is not None:
            grads[f"{prefix}.convs.{i}.bias"] = db
    return d


def _local_patch_size(params):
    """Patch side P from the local branch's shapes: its last map is s x s with
    s*s = fc in_features / C_last, and each stride-2 conv halves the side: P = s * 2**n."""
    n = 0
    while f"local_branch.convs.{n}.weight" in params:
        n += 1
    c_last = _param(params, f"local_branch.convs.{n - 1}.weight").shape[0]
    s = int(round(np.sqrt(_param(params, "local_branch.fc.weight").shape[1] / c_last)))
    return s * 2**n


def discriminator_forward(params, image, boxes=None, local=True, patch_size=None):
    """The discriminators of poster Table 2 (global + local, Iizuka et al.), forward.

    Args:
        params: dict name -> array, the ``pconv_torch.Discriminator`` state_dict:
            ``global_branch.convs.{i}.*``, ``global_branch.fc.*``, ``head.*`` and, with
            local=True, ``local_branch.convs.{i}.*``, ``local_branch.fc.*``.
        image: (N, 3, S, S), e.g. S = 128 (real images, or the generator's output).
        boxes: (N, 2) ints, top-left ``(y0, x0)`` of each image's local patch (e.g. from
            ``pconv_torch.masks.local_boxes``); required when local=True.
        local: True for global + local (head Linear(2048, 1)), False for the global-only
            ablation (head Linear(1024, 1)).
        patch_size: side P of the local patch; default: inferred from the local branch's
            weights (64 for the poster's network).

    Returns:
        logits: (N,), D's logits (no sigmoid).
        cache: for ``discriminator_backward``.
    """
    image = np.asarray(image)
    if image.ndim != 4:
        raise ValueError(f"image must be 4-D (N, C, H, W), got shape {image.shape}")
    feat_g, c_g = _branch_forward(params, "global_branch", image)
    c_l = c_cat = crop = None
    if local:
        if boxes is None:
            raise ValueError("local=True needs boxes (N, 2): the top-left corner of each patch")
        if "local_branch.fc.weight" not in params:
            raise ValueError("local=True but params have no local_branch (global-only D?)")
        P = _local_patch_size(params) if patch_size is None else int(patch_size)
        boxes = np.asarray(boxes, dtype=np.int64).reshape(len(image), 2)
        for y0, x0 in boxes:
            if not (0 <= y0 <= image.shape[2] - P and 0 <= x0 <= image.shape[3] - P):
                raise ValueError(f"box ({y0}, {x0}) of side {P} leaves the {image.shape[2:]} "
                                 f"image")
        patches = np.stack([image[n, :, y0:y0 + P, x0:x0 + P] for n, (y0, x0) in
                            enumerate(boxes)])
        feat_l, c_l = _branch_forward(params, "local_branch", patches)
        # concat_forward joins (N, C, H, W) maps on axis 1: view the features as (N, 1024, 1, 1)
        feat, c_cat = concat_forward([feat_g[:, :, None, None], feat_l[:, :, None, None]])
        feat = feat[:, :, 0, 0]
        crop = (boxes, P)
    else:
        feat = feat_g
    logits, c_head = linear_forward(feat, _param(params, "head.weight"), params.get("head.bias"))
    return logits[:, 0], (image.shape, c_g, c_l, c_cat, crop, c_head)


def discriminator_backward(d_logits, cache):
    """Backward of ``discriminator_forward``.

    Args:
        d_logits: (N,) (or (N, 1)), dL/d logits. cache: from ``discriminator_forward``.

    Returns:
        grads: dict parameter name (as in the torch state_dict) -> dL/d parameter.
        d_image: (N, 3, S, S), dL/d image: the global branch's gradient plus the local
            branch's, scattered back into each image's patch.
    """
    image_shape, c_g, c_l, c_cat, crop, c_head = cache
    grads = {}
    d_logits = np.asarray(d_logits).reshape(-1, 1)
    d_feat, grads["head.weight"], db = linear_backward(d_logits, c_head)
    if db is not None:
        grads["head.bias"] = db
    if c_l is None:
        return grads, _branch_backward(d_feat, c_g, grads)
    d_g, d_l = concat_backward(d_feat[:, :, None, None], c_cat)
    d_image = _branch_backward(d_g[:, :, 0, 0], c_g, grads)
    d_patches = _branch_backward(d_l[:, :, 0, 0], c_l, grads)
    boxes, P = crop
    for n, (y0, x0) in enumerate(boxes):
        d_image[n, :, y0:y0 + P, x0:x0 + P] += d_patches[n]
    return grads, d_image


# ------------------------------------------------------------------------ training steps
def generator_loss_and_grads(g_params, d_params, image, mask, boxes=None, depth=4,
                             conv="partial", local=True, adv_weight=1 / 2000,
                             valid_weight=1 / 6):
    """One generator step's loss and gradients, L_G = L_MSE + adv_weight * L_adv.

    ``out = G(image, mask)``; ``z = D(out, boxes)``; ``L_G`` from ``generator_loss``; its
    gradient reaches G twice: directly (L_MSE) and through D (``discriminator_backward``'s
    d_image; D's own parameter gradients are discarded: D is fixed in a G step).
    With ``adv_weight=0`` D is skipped (phase 1, L_MSE only; d_params may be None).

    Args: image (N, 3, H, W) ground truth in [0, 1]; mask (N, 1, H, W), 1 = valid;
    boxes (N, 2) local patch corners. Returns (loss, grads of G's parameters, output).
    """
    out, g_cache = generator_forward(g_params, image, mask, depth=depth, conv=conv)
    if adv_weight == 0:
        loss, d_out = mse_weighted(out, image, mask, valid_weight=valid_weight)
    else:
        logits, d_cache = discriminator_forward(d_params, out, boxes, local=local)
        loss, d_out, d_logits = generator_loss(out, image, mask, logits, adv_weight=adv_weight,
                                               valid_weight=valid_weight)
        d_out = d_out + discriminator_backward(d_logits, d_cache)[1]
    grads, _ = generator_backward(d_out, g_cache)
    return loss, grads, out


def discriminator_loss_and_grads(d_params, real, fake, real_boxes=None, fake_boxes=None,
                                 local=True):
    """One discriminator step: L_D = mean softplus(-D(real)) + mean softplus(D(fake)).

    real, fake: (N, 3, S, S) (fake = G's output, treated as a constant); boxes (N, 2) each.
    Returns (loss, grads of D's parameters, summed over the real and the fake pass).
    """
    z_real, c_real = discriminator_forward(d_params, real, real_boxes, local=local)
    z_fake, c_fake = discriminator_forward(d_params, fake, fake_boxes, local=local)
    loss, d_real, d_fake = discriminator_loss(z_real, z_fake)
    grads, _ = discriminator_backward(d_real, c_real)
    for k, g in discriminator_backward(d_fake, c_fake)[0].items():
        grads[k] = grads[k] + g
    return loss, grads
