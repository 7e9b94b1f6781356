"""Data: an embedded default, users' folders, shared helpers.

Items are ``(3, size, size)`` float32 tensors in [0, 1] (the poster: scaled to 128x128x3,
divided by 255). Masks follow the project convention 1 = valid, 0 = hole (see
:mod:`pconv_torch.masks`).

Sources
-------
:class:`EmbeddedPhotos`
    Works offline with no download: **twenty-five** colour photographs, eight that installed
    Python packages ship (scikit-image, scikit-learn, matplotlib), eleven from Debian's
    ``plasma-workspace-wallpapers`` and six from Debian's ``mate-backgrounds`` that this
    package ships downscaled (credits and licences in ``pconv_torch/photos/CREDITS.md``),
    split by whole photograph into **13 for training, 6 held out for the results and 6 for
    calibration** (``EMBEDDED_TRAIN`` / ``EMBEDDED_TEST`` / ``EMBEDDED_VAL``). The
    calibration photographs choose the settings of the inference pipeline that are not
    learnt (:mod:`pconv_torch.smooth_gate`) on images the networks never trained on, so
    the held-out ones stay unused until the results. Training items are random
    square crops with scale jitter and horizontal flips, optionally colour jitter and a share
    of procedural dead-leaves images (:mod:`pconv_torch.procedural`): an unlimited stream,
    deterministic under a seed. Test items are 138 fixed crops of the six held-out
    photographs; the calibration split's items are built the same way. Thirteen photographs
    are still far from the poster's 30,000 Places images: enough to learn to continue colour,
    shading and edges across a hole, not to learn what scenes contain. Photographs whose
    package is missing are skipped with a warning.
:class:`ImageFolder`
    Users' photographs, any folder tree. Bad files (corrupt, truncated, non-image, too small)
    are skipped with a count and their paths reported; grayscale, RGBA, palette, CMYK and
    16-bit images are converted. A wrong layout raises an error naming the layout expected.

Helpers shared by the networks, losses and notebooks: :func:`mean_fill` and :func:`composite`
(defined in :mod:`pconv_torch.compositing`, re-exported here), :class:`InpaintingDataset`
(pairs images with masks), :func:`make_loader`. Elsewhere: reading image files
(:mod:`pconv_torch.imagefiles`; :func:`load_image` and :class:`BadImageError` are re-exported
here), the poster's Places365 subsample (:class:`pconv_torch.places365.Places365`), the
downloader (:mod:`pconv_torch.downloads`), the data notebook's figure
(:func:`pconv_torch.figures.example_grid`), the PIL mode converter
(:func:`pconv_torch.images.flatten`).
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from . import masks as _masks
from . import procedural as _procedural
from .compositing import composite, mean_fill
from .imagefiles import (
    IMAGE_EXTENSIONS,
    BadImageError,
    _center_tensor,
    _channel_mean,
    _crop_to_tensor,
    _open_rgb,
    _random_tensor,
    _scan,
    _SkipReport,
    _u8_to_tensor,
    load_image,
)

__all__ = [
    "mean_fill",
    "composite",
    "load_image",
    "BadImageError",
    "EMBEDDED_TRAIN",
    "EMBEDDED_TEST",
    "EMBEDDED_VAL",
    "SPLITS",
    "embedded_photographs",
    "EmbeddedPhotos",
    "color_jitter",
    "ImageFolder",
    "InpaintingDataset",
    "collate",
    "make_loader",
]

# --------------------------------------------------------------------------------------
# Embedded default
# --------------------------------------------------------------------------------------
# (name, package, path inside the package). Only files stored in the installed packages:
# skimage.data's registry lists more images, but those need a pooch download and are avoided.
# The "pconv_torch" rows are photographs from Debian's plasma-workspace-wallpapers (KDE),
# downscaled to 360 px on the short side; authors and licences in pconv_torch/photos/CREDITS.md.
EMBEDDED_TRAIN = (
    ("astronaut", "skimage", "data/astronaut.png"),  # 512x512, portrait (NASA)
    ("coffee", "skimage", "data/coffee.png"),  # 600x400, cup on a table
    ("rocket", "skimage", "data/rocket.jpg"),  # 640x427, outdoor, launch pad
    ("motorcycle", "skimage", "data/motorcycle_left.png"),  # 741x500, indoor (left of a stereo pair)
    ("flower", "sklearn", "datasets/images/flower.jpg"),  # 640x427, close-up
    ("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),  # 512x600, portrait
    ("bythewater", "pconv_torch", "photos/bythewater.jpg"),  # 576x360, wooden jetty, lake
    ("coldripple", "pconv_torch", "photos/coldripple.jpg"),  # pier in fog, greyscale
    ("darkesthour", "pconv_torch", "photos/darkesthour.jpg"),  # lake at dusk, blue
    ("fallenleaf", "pconv_torch", "photos/fallenleaf.jpg"),  # autumn leaves, shallow focus
    ("grey", "pconv_torch", "photos/grey.jpg"),  # facade, black and white
    ("onestandsout", "pconv_torch", "photos/onestandsout.jpg"),  # young spruces from above
    ("summer_1am", "pconv_torch", "photos/summer_1am.jpg"),  # lake and sky at night
)
EMBEDDED_TEST = (
    ("china", "sklearn", "datasets/images/china.jpg"),  # 640x427, temple and trees: a "place"
    ("chelsea", "skimage", "data/chelsea.png"),  # 451x300, a cat
    ("eveningglow", "pconv_torch", "photos/eveningglow.jpg"),  # rowing boats, lake, sunset
    ("path", "pconv_torch", "photos/path.jpg"),  # path through a forest
    ("colorfulcups", "pconv_torch", "photos/colorfulcups.jpg"),  # stacked plastic cups
    ("kite", "pconv_torch", "photos/kite.jpg"),  # kite in a blue sky with clouds
)
# Calibration photographs: seen by no network, used only to choose the inference settings
# that are not learnt (pconv_torch.smooth_gate); lots of out-of-focus background and sky.
EMBEDDED_VAL = (
    ("aqua", "pconv_torch", "photos/aqua.jpg"),  # a drop falling into water, soft background
    ("dune", "pconv_torch", "photos/dune.jpg"),  # dune grass against the sea and sky
    ("garden", "pconv_torch", "photos/garden.jpg"),  # marigold in front of a blurred garden
    ("greenmeadow", "pconv_torch", "photos/greenmeadow.jpg"),  # blades of grass, close up
    ("storm", "pconv_torch", "photos/storm.jpg"),  # storm clouds over a road
    ("twowings", "pconv_torch", "photos/twowings.jpg"),  # dandelion seeds, blurred flowers
)
SPLITS = {"train": EMBEDDED_TRAIN, "test": EMBEDDED_TEST, "val": EMBEDDED_VAL}
# Test crops: at each fraction f of the short side, a grid of ceil(H/c) x ceil(W/c) evenly
# spaced squares of side c = f*short covering the photograph (23 per photograph here).
_TEST_FRACTIONS = (1.0, 0.6, 0.35)

_PHOTO_CACHE: dict = {}


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)  # locates without importing
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def embedded_photographs(split: str = "train"):
    """The embedded photographs of ``split`` (``"train"``, ``"test"`` or ``"val"``, the
    calibration photographs) available here.

    Returns: (available, missing): lists of ``(name, path)`` and of ``(name, package)``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    table = SPLITS[split]
    found, missing = [], []
    for name, pkg, rel in table:
        root = _package_dir(pkg)
        path = None if root is None else root / rel
        if path is not None and path.is_file():
            found.append((name, path))
        else:
            missing.append((name, pkg))
    return found, missing


def _photo(path: Path) -> Image.Image:
    key = str(path)
    if key not in _PHOTO_CACHE:
        _PHOTO_CACHE[key] = _open_rgb(path)
    return _PHOTO_CACHE[key]


def _grid_crops(w: int, h: int, fractions=_TEST_FRACTIONS):
    """Fixed square crops ``(left, top, side)`` covering a w x h photograph at each fraction."""
    out = []
    short = min(w, h)
    for f in fractions:
        c = int(round(short * f))
        ny, nx = int(np.ceil(h / c - 1e-9)), int(np.ceil(w / c - 1e-9))
        for top in np.linspace(0, h - c, ny).round().astype(int):
            for left in np.linspace(0, w - c, nx).round().astype(int):
                out.append((int(left), int(top), c))
    return out


class EmbeddedPhotos(Dataset):
    """Crops of the embedded photographs (no download), optionally mixed with dead leaves.

    ``split="train"``: ``length`` random items per epoch. Each is, with probability
    ``procedural``, a dead-leaves image (:func:`pconv_torch.procedural.dead_leaves`, coloured
    with the palette of one training photograph chosen uniformly, or, with probability
    ``uniform_leaves``, with colours uniform in the RGB cube), and otherwise a crop of a
    training photograph chosen uniformly (:func:`_random_tensor`: side = short side x s with s
    log-uniform in ``scale``, uniform position, left-right flip with p=1/2), colour-jittered
    with strength ``jitter`` (:func:`color_jitter`; 0 = off). Item ``i`` of epoch ``e`` depends
    only on ``(seed, e, i)``: identical across runs, workers and machines; call
    :meth:`set_epoch` to get new items each epoch.

    ``split="test"``: fixed crops of the 6 held-out photographs (23 each, 138 in all:
    grids at 100 %, 60 % and 35 % of the short side); no randomness. ``split="val"``: the
    same grids over the 6 calibration photographs (135 crops).

    Items: (3, size, size) float32 tensors in [0, 1].
    :meth:`fill_mean`: (3,) per-channel mean over all pixels of the training photographs.
    """

    def __init__(self, split: str = "train", size: int = 128, length: int = 1024, seed: int = 0,
                 scale=(0.35, 1.0), flip: bool = True, procedural: float = 0.0,
                 jitter: float = 0.0, uniform_leaves: float = 0.0, smooth_fields: float = 0.0):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        if not 0.0 <= procedural <= 1.0:
            raise ValueError(f"procedural must be a fraction in [0, 1], got {procedural!r}")
        if not 0.0 <= uniform_leaves <= 1.0:
            raise ValueError(f"uniform_leaves must be a fraction in [0, 1], got {uniform_leaves!r}")
        if not 0.0 <= smooth_fields <= 1.0:
            raise ValueError(f"smooth_fields must be a fraction in [0, 1], got {smooth_fields!r}")
        if not 0.0 <= jitter <= 1.0:
            raise ValueError(f"jitter must be in [0, 1], got {jitter!r}")
        self.split, self.size, self.seed, self.scale, self.flip = split, size, seed, scale, flip
        self.procedural, self.jitter = float(procedural), float(jitter)
        self.uniform_leaves, self.smooth_fields = float(uniform_leaves), float(smooth_fields)
        self.epoch = 0
        found, missing = embedded_photographs(split)
        if missing:
            warnings.warn(f"embedded photographs unavailable (package not installed): {missing}",
                          stacklevel=2)
        if not found:
            raise RuntimeError(
                f"no embedded {split} photograph found: install scikit-image, scikit-learn and "
                "matplotlib (pip install 'pconv[notebooks]' scikit-learn), or use ImageFolder")
        self.names = [n for n, _ in found]
        self.paths = [p for _, p in found]
        if split == "train":
            self.length = int(length)
            self.crops = None
        else:
            self.crops = [(k, c) for k, p in enumerate(self.paths) for c in _grid_crops(*_photo(p).size)]
            self.length = len(self.crops)

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Choose the crops of epoch ``epoch`` (training split)."""
        self.epoch = int(epoch)

    def __getitem__(self, i: int) -> torch.Tensor:
        if not 0 <= i < self.length:
            raise IndexError(i)
        if self.crops is not None:
            k, (left, top, side) = self.crops[i]
            return _crop_to_tensor(_photo(self.paths[k]), left, top, side, self.size)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if self.procedural and rng.random() < self.procedural:
            palette = self._palettes()[int(rng.integers(len(self.paths)))]
            if self.uniform_leaves and rng.random() < self.uniform_leaves:
                palette = None  # colours uniform in the RGB cube
            if self.smooth_fields and rng.random() < self.smooth_fields:
                img = _procedural.smooth_field(self.size, rng, palette)
            else:
                img = _procedural.dead_leaves(self.size, rng, palette)
            return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        img = _photo(self.paths[int(rng.integers(len(self.paths)))])
        x = _random_tensor(img, self.size, rng, self.scale, self.flip)
        return color_jitter(x, rng, self.jitter) if self.jitter else x

    def _palettes(self) -> list:
        """One (512, 3) colour palette per training photograph (cached)."""
        key = ("palettes", tuple(str(p) for p in self.paths))
        if key not in _PHOTO_CACHE:
            _PHOTO_CACHE[key] = [_procedural.photo_palette([np.asarray(_photo(p))], 512, seed=k)
                                 for k, p in enumerate(self.paths)]
        return _PHOTO_CACHE[key]

    def fill_mean(self) -> torch.Tensor:
        """(3,) float32: per-channel mean of all pixels of the training photographs."""
        key = ("mean", tuple(str(p) for p in embedded_photographs("train")[0]))
        if key not in _PHOTO_CACHE:
            paths = [p for _, p in embedded_photographs("train")[0]]
            _PHOTO_CACHE[key] = _channel_mean(
                _u8_to_tensor(np.asarray(_photo(p)))
                for p in paths)
        return torch.from_numpy(_PHOTO_CACHE[key].copy())


def color_jitter(x: torch.Tensor, rng: np.random.Generator, strength: float) -> torch.Tensor:
    """Random photometric change of one image, as a camera or a scene would vary it.

    With ``s = strength``: brightness x exp(N(0, s)), contrast about the image mean
    x exp(N(0, s)), saturation about the grey value x exp(N(0, 1.5 s)), and a white-balance
    gain per channel x exp(N(0, s / 3)); the result is clipped to [0, 1].

    Args: x (3, H, W) float32 in [0, 1]; rng a NumPy generator. Returns (3, H, W).
    """
    a = x.numpy()
    b, c, sat = np.exp(rng.normal(0, strength, 3) * (1, 1, 1.5))
    gain = np.exp(rng.normal(0, strength / 3, 3)).astype(np.float32).reshape(3, 1, 1)
    grey = a.mean(axis=0, keepdims=True)
    a = grey + (a - grey) * np.float32(sat)
    mean = a.mean()
    a = (a - mean) * np.float32(c) + mean
    a = a * np.float32(b) * gain
    return torch.from_numpy(np.clip(a, 0, 1).astype(np.float32))


# --------------------------------------------------------------------------------------
# Users' folders
# --------------------------------------------------------------------------------------
class ImageFolder(Dataset, _SkipReport):
    """Every image file under ``root`` (searched recursively, sorted), as (3, size, size)
    float32 tensors in [0, 1].

    Expected layout: a directory holding image files (``IMAGE_EXTENSIONS``), at any depth.
    Each image is reduced to its largest centred square and resized to ``size`` (or, with
    ``augment=True``, a random crop with scale jitter and flips, deterministic in
    ``(seed, epoch, index)``).

    Bad input: grayscale, RGBA / LA (composited on white), palette, CMYK and 16-bit images are
    converted; files that are corrupt, truncated, not images, or smaller than ``min_size``
    pixels on their short side are skipped at construction with ``check="full"`` (decodes
    every file once) or, with ``check="header"``, skipped on first use. ``skipped`` lists
    ``(path, reason)``; a warning reports the count and paths; :meth:`report` prints them. An
    item whose file breaks later is replaced by the next readable one, never a crash mid-epoch.
    """

    def __init__(self, root, size: int = 128, *, augment: bool = False, seed: int = 0,
                 check: str = "full", min_size: int = 32, extensions=IMAGE_EXTENSIONS,
                 scale=(0.35, 1.0)):
        root = Path(root)
        expected = (f"expected a directory of image files ({', '.join(extensions)}), "
                    "searched recursively, e.g. photos/a.jpg, photos/trip/b.png")
        if not root.is_dir():
            raise FileNotFoundError(f"ImageFolder: {root} is not a directory; {expected}")
        all_files = sorted(p for p in root.rglob("*") if p.is_file())
        files = [p for p in all_files if p.suffix.lower() in extensions]
        if not files:
            raise FileNotFoundError(
                f"ImageFolder: no image files under {root} ({len(all_files)} other files); {expected}")
        self.root, self.size, self.augment, self.seed, self.scale = root, size, augment, seed, scale
        self.min_size, self.epoch = min_size, 0
        self.files, self.skipped = _scan(files, check, min_size, draft=size)
        self._bad_at_runtime: set = set()
        self._report_skipped(f"ImageFolder({root})")
        if not self.files:
            raise ValueError(f"ImageFolder: none of the {len(files)} image files under {root} is usable")

    def __len__(self) -> int:
        return len(self.files)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _load(self, path, j):
        img = _open_rgb(path, draft_size=self.size, min_size=self.min_size)
        if self.augment:
            return _random_tensor(img, self.size, np.random.default_rng([self.seed, self.epoch, j]),
                                  self.scale)
        return _center_tensor(img, self.size)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self._load_or_substitute(i, self._load)

    def fill_mean(self) -> torch.Tensor:
        """(3,) per-channel mean over all items (at ``size``, without augmentation)."""
        return torch.from_numpy(_channel_mean(
            self._load_or_substitute(i, lambda p, j: _center_tensor(_open_rgb(p, self.size), self.size))
            for i in range(len(self))))


# --------------------------------------------------------------------------------------
# Images with masks, and the loader
# --------------------------------------------------------------------------------------
class InpaintingDataset(Dataset):
    """Pairs an image dataset with masks: item ``i`` is ``(image, mask)``,
    (3, H, W) and (1, H, W) float32, mask 1 = valid, 0 = hole.

    ``masks`` is a family name (see :mod:`pconv_torch.masks`; drawn from
    ``default_rng([seed, epoch, i])``, so deterministic across workers and runs) or a fixed
    (M, 1, H, W) tensor such as an evaluation set (item ``i`` gets mask ``i % M``).
    :meth:`set_epoch` is forwarded to the image dataset.
    """

    def __init__(self, images: Dataset, masks="rect", seed: int = 0):
        self.images, self.masks, self.seed, self.epoch = images, masks, seed, 0

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.images, "set_epoch"):
            self.images.set_epoch(epoch)

    def __getitem__(self, i: int):
        x = self.images[i]
        if isinstance(self.masks, str):
            rng = np.random.default_rng([self.seed, self.epoch, i, 1])
            m = _masks.sample_mask(self.masks, tuple(x.shape[-2:]), rng)
        else:
            m = self.masks[i % len(self.masks)]
        return x, m


def collate(batch):
    """Stack a list of tensors, or of tuples of tensors, along a new first axis.

    Same result as torch's default collate for these items, but stacked in NumPy: on a busy
    machine with few cores, torch's intra-op thread pool can make ``torch.stack`` of a small
    batch wait far longer than the copy takes (``benchmarks/bench_data.py`` times the loader).
    """
    first = batch[0]
    if isinstance(first, (tuple, list)):
        return type(first)(collate(list(col)) for col in zip(*batch))
    if isinstance(first, torch.Tensor):
        return torch.from_numpy(np.stack([t.numpy() for t in batch]))
    return torch.utils.data.default_collate(batch)


def make_loader(dataset: Dataset, batch_size: int = 16, *, shuffle: bool = True, seed: int = 0,
                num_workers: int = 0, drop_last: bool = True) -> DataLoader:
    """A DataLoader that keeps a CPU training step fed; batches are (N, 3, H, W) images, or
    ``(images, masks)`` with (N, 1, H, W) masks for an :class:`InpaintingDataset`.

    Defaults to ``num_workers=0``: on a small CPU machine the training step uses every core
    and the pipeline here (a crop and a resize per item, about a millisecond with a mask)
    already runs far faster than the step consumes (``benchmarks/bench_data.py``
    measures it); workers would only compete for cores. On a GPU machine pass
    ``num_workers`` > 0 (persistent workers are used). Shuffling uses a seeded generator.
    """
    g = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=g,
                      num_workers=num_workers, drop_last=drop_last, collate_fn=collate,
                      persistent_workers=num_workers > 0)
