"""The poster's data: a seeded subsample of Places365-Standard's 256x256 images.

:class:`Places365` reads either official layout (``data_256/`` + ``places365_train_standard.txt``,
or ``val_256/`` with optional ``places365_val.txt``) and draws 30,000 train / 1,000 test images,
disjoint and identical on every machine. Items are ``(3, size, size)`` float32 tensors in
[0, 1] (resized to 128x128 by default, divided by 255).
:func:`pconv_torch.downloads.download_places365_val` fetches ``val_256.tar`` (36,500 images,
0.5 GB), enough for the poster's 31,000.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .imagefiles import BadImageError, _center_tensor, _channel_mean, _open_rgb, _scan, _SkipReport

__all__ = ["Places365"]


_PLACES_LAYOUTS = """expected one of the official Places365-Standard 256x256 layouts:
  train_standard:  {root}/places365_train_standard.txt   (lines like "/a/airfield/00000001.jpg 0")
                   {root}/data_256/a/airfield/00000001.jpg ...   (or data_256_standard/, torchvision's name)
                   from filelist_places365-standard.tar + train_256_places365standard.tar
  val:             {root}/val_256/Places365_val_00000001.jpg ...
                   {root}/places365_val.txt   (optional; lines like "Places365_val_00000001.jpg 165")
                   from val_256.tar: pconv_torch.downloads.download_places365_val(root)"""


def _read_file_list(path: Path) -> list[str]:
    """The image names (first column) of a Places365 file list such as
    ``places365_train_standard.txt``; ValueError naming the file (and the line) if it is not
    one: binary, not UTF-8, or a name that is not an image or contains ``..``."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a Places365 file list (not UTF-8 text at byte "
                         f"{e.start})") from None
    names = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name = line.split()[0]
        if ("\x00" in line or ".." in name.split("/")
                or not name.lower().endswith((".jpg", ".jpeg", ".png"))):
            raise ValueError(f"{path}, line {i}: not a Places365 file list line (expected an "
                             f"image name like \"/a/airfield/00000001.jpg 0\"): {line[:60]!r}")
        names.append(name)
    return names


def _places_pool(root: Path, source: str):
    """Sorted list of image paths (relative to root) of the chosen layout."""
    def train_layout():
        lst = root / "places365_train_standard.txt"
        img_dir = next((d for d in ("data_256", "data_256_standard") if (root / d).is_dir()), None)
        if not lst.is_file() or img_dir is None:
            return None
        return sorted(f"{img_dir}/{n.lstrip('/')}" for n in _read_file_list(lst))

    def val_layout():
        img_dir = root / "val_256"
        if not img_dir.is_dir():
            return None
        lst = root / "places365_val.txt"
        if lst.is_file():
            names = _read_file_list(lst)
        else:
            names = [p.name for p in img_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg")]
        return sorted(f"val_256/{n}" for n in names)

    order = {"auto": (("train_standard", train_layout), ("val", val_layout)),
             "train_standard": (("train_standard", train_layout),),
             "val": (("val", val_layout),)}
    if source not in order:
        raise ValueError(f"source must be 'auto', 'train_standard' or 'val', got {source!r}")
    for name, fn in order[source]:
        pool = fn()
        if pool:
            return name, pool
    raise FileNotFoundError(f"Places365: no usable layout under {root} (source={source!r});\n"
                            + _PLACES_LAYOUTS.format(root=root))


class Places365(Dataset, _SkipReport):
    """The poster's protocol on Places365-Standard (256x256 "small images").

    Subsample: the pool is the sorted list of the chosen layout's images (``source="auto"``
    prefers ``train_standard`` when present, else ``val``). ``perm =
    numpy.random.default_rng(seed).permutation(len(pool))``; the training split is
    ``perm[:n_train]``, the test split ``perm[n_train : n_train + n_test]`` (disjoint, and
    identical on every machine: NumPy's PCG64 stream and the sorted list are
    platform-independent). Items are resized to ``size`` x ``size`` (antialiased bilinear;
    non-square images are centre-cropped first) and divided by 255: (3, size, size) float32.

    Fill mean: :meth:`fill_mean` computes the per-channel mean over the *training* subsample
    (for either split) and saves it as JSON in ``mean_dir`` (default ``root``) so it is
    computed once.

    Bad files in the subsample are skipped and reported as in :class:`~pconv_torch.data.ImageFolder`
    (``check="header"`` by default: existence and header at construction, truncation on
    first use; ``check="full"`` decodes all at construction). A wrong layout raises
    FileNotFoundError describing both official layouts.
    """

    def __init__(self, root, split: str = "train", *, source: str = "auto", n_train: int = 30000,
                 n_test: int = 1000, seed: int = 0, size: int = 128, check: str = "header",
                 mean_dir=None, min_size: int = 32):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"Places365: {self.root} is not a directory;\n"
                                    + _PLACES_LAYOUTS.format(root=self.root))
        self.source, pool = _places_pool(self.root, source)
        if n_train + n_test > len(pool):
            raise ValueError(f"Places365 ({self.source}) has {len(pool)} images, fewer than "
                             f"n_train + n_test = {n_train + n_test}")
        perm = np.random.default_rng(seed).permutation(len(pool))
        idx = {"train": perm[:n_train], "test": perm[n_train:n_train + n_test]}
        self.split_names = {k: [pool[i] for i in np.sort(v)] for k, v in idx.items()}
        self.split, self.seed, self.size, self.min_size = split, seed, size, min_size
        self.n_train, self.n_test = n_train, n_test
        self.mean_dir = Path(mean_dir) if mean_dir is not None else self.root
        self.names = self.split_names[split]
        self.files, self.skipped = _scan([self.root / n for n in self.names], check, min_size, size)
        self._bad_at_runtime: set = set()
        self._report_skipped(f"Places365({self.root}, split={split!r})")
        if not self.files:
            raise ValueError(f"Places365: no usable image in the {split} subsample")

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, path, j):
        return _center_tensor(_open_rgb(path, draft_size=self.size, min_size=self.min_size), self.size)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self._load_or_substitute(i, self._load)

    @property
    def mean_path(self) -> Path:
        return self.mean_dir / (f"pconv_fill_mean_{self.source}_n{self.n_train}_seed{self.seed}"
                                f"_{self.size}.json")

    def fill_mean(self, progress: bool = False) -> torch.Tensor:
        """(3,) float32 per-channel mean of the training subsample, cached in :attr:`mean_path`."""
        if self.mean_path.is_file():
            return torch.tensor(json.loads(self.mean_path.read_text())["mean"], dtype=torch.float32)

        def images():
            names = self.split_names["train"]
            if progress:
                from tqdm.auto import tqdm
                names = tqdm(names, desc="fill mean")
            for n in names:
                try:
                    yield self._load(self.root / n, 0)
                except BadImageError:
                    continue

        mean = _channel_mean(images())
        try:
            self.mean_dir.mkdir(parents=True, exist_ok=True)
            self.mean_path.write_text(json.dumps({
                "mean": [float(v) for v in mean], "source": self.source, "n_train": self.n_train,
                "seed": self.seed, "size": self.size}, indent=1))
        except OSError as e:  # read-only dataset directory: still return the mean
            warnings.warn(f"could not save the fill mean to {self.mean_path}: {e}", stacklevel=2)
        return torch.from_numpy(mean)
