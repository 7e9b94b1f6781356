"""The training data as a stream that is a pure function of the global step.

:func:`make_training_data` turns what :func:`~pconv_torch.training.train` is given into a
Dataset of ``(image (3, S, S), mask (1, S, S))`` pairs (float32, images in [0, 1], mask
1 = valid, 0 = hole) and the (3,) fill mean. The stream over it:

* positions ``0, 1, 2, ...`` run through one seeded permutation of the ``n`` items per epoch
  (``numpy.random.default_rng([seed, 4, epoch])``); position ``p`` is item
  ``perm_e[p mod n]`` of epoch ``e = p // n``;
* step ``t`` of a run with ``W`` processes of batch ``B`` takes the ``W*B`` positions after
  those of step ``t - 1``; rank ``r`` takes the r-th ``B`` of them (:class:`_StepBatches`),
  so the union over ranks is the batch of one process with batch ``W*B``;
* each position yields ``(image, mask, box)``, ``box`` (2,) int64 the corner of the local
  discriminator's patch, drawn from ``default_rng([seed, 3, position])`` (:class:`_StepStream`);
  a DataLoader collates them to (B, 3, S, S), (B, 1, S, S), (B, 2).

The only state is the position (samples consumed over all ranks), which the checkpoint
stores: a resumed run sees exactly the batches an uninterrupted one would.
:func:`preview_batch` is the fixed batch the sample grids show.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from . import data as _data
from . import masks as _masks
from . import places365 as _places365
from .config import TrainConfig

__all__ = ["make_training_data", "preview_batch", "step_batches"]


class _TensorImages(Dataset):
    """(N, 3, H, W) tensor as a dataset of (3, H, W) images."""

    def __init__(self, images: torch.Tensor):
        self.images = images.detach().float().cpu().contiguous()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]

    def fill_mean(self):
        return self.images.double().mean(dim=(0, 2, 3)).float()


class _TensorPairs(_TensorImages):
    """Fixed (images (N, 3, H, W), masks (N, 1, H, W)) pairs."""

    def __init__(self, images, masks):
        super().__init__(images)
        if masks.shape != (len(images), 1, *images.shape[2:]):
            raise ValueError(f"masks must be (N, 1, H, W) = ({len(images)}, 1, "
                             f"{images.shape[2]}, {images.shape[3]}), got {tuple(masks.shape)}")
        self.masks = masks.detach().float().cpu().contiguous()

    def __getitem__(self, i):
        return self.images[i], self.masks[i]


class _StepStream(Dataset):
    """Wraps a dataset of ``(image (3,H,W), mask (1,H,W))`` pairs. Indexed by
    ``(epoch, index, position)``; returns ``(image, mask, box (2,))`` with the local patch's
    corner drawn from ``default_rng([seed, 3, position])``."""

    def __init__(self, pairs: Dataset, seed: int, patch: int):
        self.pairs, self.seed, self.patch = pairs, seed, patch

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, key):
        epoch, i, pos = key
        if hasattr(self.pairs, "set_epoch") and getattr(self.pairs, "epoch", None) != epoch:
            self.pairs.set_epoch(epoch)
        image, mask = self.pairs[i]
        box = _masks.local_boxes(mask[None], box=self.patch,
                                 rng=np.random.default_rng([self.seed, 3, pos]))[0]
        return image, mask, box


class _StepBatches:
    """Batch sampler: for steps ``start..stop-1`` yields this rank's list of
    ``(epoch, index, position)``. The stream is the concatenation of one permutation of
    ``range(n)`` per epoch (``default_rng([seed, 4, epoch])``); step ``t`` takes the
    ``batch * world`` positions that follow those of step ``t - 1``, rank ``r`` the r-th
    ``batch`` of them."""

    def __init__(self, n: int, seed: int, batch: int, rank: int, world: int, start: int, stop: int,
                 position: int | None = None):
        self.n, self.seed, self.batch, self.rank, self.world = n, seed, batch, rank, world
        self.start, self.stop = start, stop
        # stream position of step ``start`` (= samples consumed so far, over all ranks)
        self.position = start * batch * world if position is None else position
        self._perm_epoch, self._perm = None, None

    def __len__(self):
        return max(0, self.stop - self.start)

    def _perm_of(self, epoch):
        if self._perm_epoch != epoch:
            self._perm = np.random.default_rng([self.seed, 4, epoch]).permutation(self.n)
            self._perm_epoch = epoch
        return self._perm

    def positions(self, step: int) -> range:
        g = self.batch * self.world
        first = self.position + (step - self.start) * g + self.rank * self.batch
        return range(first, first + self.batch)

    def __iter__(self):
        for t in range(self.start, self.stop):
            out = []
            for p in self.positions(t):
                e, k = divmod(p, self.n)
                out.append((int(e), int(self._perm_of(e)[k]), int(p)))
            yield out


def _fill_mean_of(images: Dataset, limit: int = 256) -> torch.Tensor:
    if hasattr(images, "fill_mean"):
        return torch.as_tensor(images.fill_mean(), dtype=torch.float32).reshape(3)
    n = min(len(images), limit)
    items = [images[i] for i in range(n)]
    items = [x[0] if isinstance(x, (tuple, list)) else x for x in items]
    return torch.stack(items).double().mean(dim=(0, 2, 3)).float()


def make_training_data(config: TrainConfig, data=None):
    """The training pairs and the fill mean.

    Args:
        config: uses ``data``, ``image_size``, ``masks``, ``seed``, ``epoch_length``.
        data: None (use ``config.data``); an (N, 3, H, W) tensor of images; a tuple
            ``(images (N,3,H,W), masks (N,1,H,W))`` of fixed pairs; a Dataset of (3, H, W)
            images (masks of ``config.masks`` are added) or of ``(image, mask)`` pairs.
    Returns: pairs, a Dataset of (image (3, H, W), mask (1, H, W)); and fill, the (3,)
    per-channel mean of the training images (the source's ``fill_mean()`` if it has one, else
    the mean of up to 256 items).
    """
    s = config.image_size
    if data is None:
        src = config.data
        if src == "embedded":
            images = _data.EmbeddedPhotos("train", size=s, length=config.epoch_length,
                                          seed=config.seed, procedural=config.procedural,
                                          uniform_leaves=config.uniform_leaves,
                                          smooth_fields=config.smooth_fields,
                                          jitter=config.jitter)
        elif src.startswith("places365:"):
            images = _places365.Places365(src.split(":", 1)[1], "train", size=s)
        else:
            images = _data.ImageFolder(src, size=s, augment=True, seed=config.seed)
        data = images
    if isinstance(data, torch.Tensor):
        data = _TensorImages(data)
    elif isinstance(data, (tuple, list)) and len(data) == 2 and all(
            isinstance(t, torch.Tensor) for t in data):
        data = _TensorPairs(*data)
    if not isinstance(data, Dataset) and not hasattr(data, "__getitem__"):
        raise TypeError(f"data must be None, a tensor, a (images, masks) pair or a Dataset, "
                        f"got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError("the training data is empty")
    first = data[0]
    if isinstance(first, (tuple, list)):
        pairs, images, img = data, data, first[0]
    else:
        pairs = _data.InpaintingDataset(data, masks=config.masks, seed=config.seed)
        images, img = data, first
    if tuple(img.shape) != (3, s, s):
        raise ValueError(f"training images are {tuple(img.shape)}, expected (3, {s}, {s}) "
                         f"(config.image_size={s})")
    if isinstance(pairs, _TensorPairs):
        fill = pairs.fill_mean()
    elif isinstance(pairs, _data.InpaintingDataset):
        fill = _fill_mean_of(pairs.images)
    else:
        fill = _fill_mean_of(images)
    return pairs, fill


def preview_batch(config: TrainConfig, pairs: Dataset | None = None, n: int | None = None):
    """A fixed batch for sample grids: ``(images (n,3,H,W), masks (n,1,H,W))``.

    With the embedded source: crops of the *held-out* photographs with seeded masks;
    otherwise the first ``n`` items of ``pairs`` at epoch 0.
    """
    n = n or config.n_samples
    s = config.image_size
    if pairs is None or (config.data == "embedded" and not isinstance(pairs, _TensorPairs)
                         and isinstance(pairs, _data.InpaintingDataset)
                         and isinstance(pairs.images, _data.EmbeddedPhotos)):
        try:
            test = _data.EmbeddedPhotos("test", size=s)
            idx = np.linspace(0, len(test) - 1, n).round().astype(int)
            images = torch.stack([test[int(i)] for i in idx])
            masks = _masks.sample_masks(config.masks, n, s, seed=[config.seed, 5])
            return images, masks
        except (RuntimeError, OSError):
            if pairs is None:
                raise
    if hasattr(pairs, "set_epoch"):
        pairs.set_epoch(0)
    items = [pairs[i % len(pairs)] for i in range(n)]
    return torch.stack([x[0] for x in items]), torch.stack([x[1] for x in items])


def step_batches(pairs: Dataset, config: TrainConfig, *, start: int, stop: int,
                 position: int | None = None, rank: int = 0, world: int = 1,
                 pin_memory: bool = False) -> DataLoader:
    """This rank's batches of steps ``start .. stop-1``: ``(images (B,3,S,S), masks (B,1,S,S),
    boxes (B,2))`` with ``B = config.batch_size``; ``position`` is the stream position of
    step ``start`` (samples consumed over all ranks; default ``start * B * world``)."""
    stream = _StepStream(pairs, config.seed, config.patch_size)
    sampler = _StepBatches(len(pairs), config.seed, config.batch_size, rank, world, start, stop,
                           position)
    # The loader draws its workers' base seed from `generator`, not from the global torch RNG,
    # so creating it (once per run or resume) leaves the RNG state a checkpoint saves untouched.
    return DataLoader(stream, batch_sampler=sampler, collate_fn=_data.collate,
                      num_workers=config.num_workers, pin_memory=pin_memory,
                      generator=torch.Generator().manual_seed(config.seed))
