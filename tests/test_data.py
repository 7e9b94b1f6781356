"""Data: helpers, embedded photographs, Places365 layouts, users' folders, the downloader.

Everything runs on generated trees and a loopback HTTP server: no network.
"""

import functools
import hashlib
import io
import json
import os
import tarfile
import threading
import warnings
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch
from PIL import Image

from pconv_torch import data as D
from pconv_torch.places365 import Places365
from pconv_torch import downloads, figures
from pconv_torch import masks as M
from pconv_torch import procedural
from pconv_torch.config import load_config


# ---- helpers ------------------------------------------------------------------------------
def _jpeg(path, size=(64, 64), seed=0, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(a).convert(mode).save(path, format="JPEG", quality=80)


def _truncate(path):
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _quiet_warnings():
    return warnings.catch_warnings(record=True)


# ---- mean fill and composite ---------------------------------------------------------------
def test_mean_fill_and_composite_by_hand():
    img = torch.full((3, 2, 2), 0.8)
    mask = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
    mean = torch.tensor([0.1, 0.2, 0.3])
    out = D.mean_fill(img, mask, mean)
    assert out.shape == (3, 2, 2)
    assert torch.allclose(out[:, 0, 1], mean) and torch.all(out[:, 1] == 0.8)
    g = torch.zeros(3, 2, 2)
    c = D.composite(img, g, mask)
    assert c[0, 0, 1] == 0 and c[0, 0, 0] == pytest.approx(0.8)
    # batched, numpy, list mean
    imgs, masks = img.expand(4, 3, 2, 2), mask.expand(4, 1, 2, 2)
    assert torch.allclose(D.mean_fill(imgs, masks, [0.1, 0.2, 0.3])[2], out)
    out_np = D.mean_fill(img.numpy(), mask.numpy(), mean.numpy())
    assert isinstance(out_np, np.ndarray) and out_np.dtype == np.float32
    np.testing.assert_allclose(out_np, out.numpy())
    np.testing.assert_allclose(D.composite(img.numpy(), g.numpy(), mask.numpy()), c.numpy())


# ---- embedded photographs ------------------------------------------------------------------
def test_embedded_split_by_whole_photograph():
    names = {split: {n for n, *_ in table} for split, table in D.SPLITS.items()}
    files = {split: {str(rel) for *_, rel in table} for split, table in D.SPLITS.items()}
    assert [len(names[s]) for s in ("train", "test", "val")] == [13, 6, 6]
    for one, other in (("train", "test"), ("train", "val"), ("test", "val")):
        assert not names[one] & names[other] and not files[one] & files[other]
    with pytest.raises(ValueError, match="split must be one of"):
        D.embedded_photographs("validation")


def test_embedded_items_and_determinism():
    tr = D.EmbeddedPhotos("train", size=64, length=16, seed=3)
    te = D.EmbeddedPhotos("test", size=64)
    if len(tr.paths) < 13 or len(te.paths) < 6:
        pytest.skip("some sample-image packages are not installed")
    assert len(tr) == 16 and len(te) == 138
    x = tr[0]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    again = D.EmbeddedPhotos("train", size=64, length=16, seed=3)
    assert all(torch.equal(tr[i], again[i]) for i in range(4))
    assert not torch.equal(tr[0], tr[1])
    other = D.EmbeddedPhotos("train", size=64, length=16, seed=4)
    assert not torch.equal(tr[0], other[0])
    before = tr[2]
    tr.set_epoch(1)
    assert not torch.equal(before, tr[2])
    assert torch.equal(te[5], D.EmbeddedPhotos("test", size=64)[5])
    mean = tr.fill_mean()
    assert mean.shape == (3,) and torch.all((mean > 0.1) & (mean < 0.9))
    with pytest.raises(IndexError):
        te[138]


# ---- Places365 generated trees -------------------------------------------------------------
CLASSES = ("a/airfield", "b/bedroom", "c/canyon")


def _places_train_tree(root, per_class=8):
    """train_standard layout: data_256/<letter>/<class>/<8 digits>.jpg + the list file."""
    lines = []
    for k, cls in enumerate(CLASSES):
        for i in range(1, per_class + 1):
            rel = f"{cls}/{i:08d}.jpg"
            _jpeg(root / "data_256" / rel, (256, 256), seed=100 * k + i)
            lines.append(f"/{rel} {k}")
    (root / "places365_train_standard.txt").write_text("\n".join(lines) + "\n")
    return [f"data_256/{r.split()[0][1:]}" for r in lines]


def _places_val_tree(root, n=20, listfile=True):
    names = [f"Places365_val_{i:08d}.jpg" for i in range(1, n + 1)]
    for i, name in enumerate(names):
        _jpeg(root / "val_256" / name, (256, 256), seed=i)
    if listfile:
        (root / "places365_val.txt").write_text("".join(f"{n} {i % 365}\n" for i, n in enumerate(names)))
    return names


def test_places_train_layout_subsample(tmp_path):
    _places_train_tree(tmp_path)
    kw = dict(n_train=10, n_test=5, seed=0, size=32)
    tr = Places365(tmp_path, "train", **kw)
    te = Places365(tmp_path, "test", **kw)
    assert tr.source == "train_standard" and len(tr) == 10 and len(te) == 5
    assert not set(tr.names) & set(te.names)  # disjoint
    assert Places365(tmp_path, "train", **kw).names == tr.names  # same every run
    assert Places365(tmp_path, "train", **{**kw, "seed": 1}).names != tr.names
    x = tr[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1


def test_places_subsample_pinned(tmp_path):
    """The subsample is a pure function of (sorted pool, seed): pinned here so that a change
    of NumPy's stream or of the protocol shows up as a failure, not as silent drift."""
    _places_val_tree(tmp_path, n=20, listfile=False)
    te = Places365(tmp_path, "test", n_train=10, n_test=4, seed=0, size=16, check="none")
    perm = np.random.default_rng(0).permutation(20)
    expected = sorted(f"val_256/Places365_val_{i + 1:08d}.jpg" for i in perm[10:14])
    assert te.names == expected
    assert te.names == ["val_256/Places365_val_00000001.jpg", "val_256/Places365_val_00000006.jpg",
                        "val_256/Places365_val_00000008.jpg", "val_256/Places365_val_00000013.jpg"]


def test_places_val_layout_with_and_without_list(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _places_val_tree(a, listfile=True)
    _places_val_tree(b, listfile=False)
    da = Places365(a, "train", n_train=12, n_test=4, size=16)
    db = Places365(b, "train", n_train=12, n_test=4, size=16)
    assert da.source == db.source == "val" and da.names == db.names


def test_places_auto_prefers_train_and_source_choice(tmp_path):
    _places_train_tree(tmp_path, per_class=4)
    _places_val_tree(tmp_path, n=10)
    assert Places365(tmp_path, n_train=4, n_test=2, size=16).source == "train_standard"
    assert Places365(tmp_path, source="val", n_train=4, n_test=2, size=16).source == "val"


def test_places_wrong_layout_names_expected(tmp_path):
    (tmp_path / "images").mkdir()
    _jpeg(tmp_path / "images" / "x.jpg")
    with pytest.raises(FileNotFoundError) as e:
        Places365(tmp_path)
    msg = str(e.value)
    assert "places365_train_standard.txt" in msg and "data_256" in msg and "val_256" in msg
    with pytest.raises(FileNotFoundError, match="not a directory"):
        Places365(tmp_path / "missing")
    _places_val_tree(tmp_path, n=5)
    with pytest.raises(ValueError, match="fewer than"):
        Places365(tmp_path, n_train=30000, n_test=1000)


def test_places_corrupt_files_skipped_and_reported(tmp_path):
    names = _places_train_tree(tmp_path)
    _truncate(tmp_path / names[0])
    (tmp_path / names[1]).write_bytes(b"not a jpeg at all")
    (tmp_path / names[2]).write_bytes(b"")
    (tmp_path / names[3]).unlink()  # listed but missing
    _jpeg(tmp_path / names[4], (256, 256), mode="L")  # grayscale: converted
    _jpeg(tmp_path / names[5], (16, 16))  # tiny: skipped
    kw = dict(n_train=24, n_test=0, size=32, check="full")
    with pytest.warns(UserWarning, match="skipped 5 unusable"):
        ds = Places365(tmp_path, "train", **kw)
    assert len(ds) == 19 and len(ds.skipped) == 5
    bad = {os.path.basename(p) for p, _ in ds.skipped}
    assert bad == {os.path.basename(n) for n in names[:4] + names[5:6]}
    assert "too small" in ds.report() and names[1].split("/")[-1] in ds.report()
    gray = ds[[str(f) for f in ds.files].index(str(tmp_path / names[4]))]
    assert gray.shape == (3, 32, 32) and torch.allclose(gray[0], gray[1], atol=0.02)
    # header-only check: the truncated file passes the scan and is skipped when used
    with _quiet_warnings():
        lazy = Places365(tmp_path, "train", **{**kw, "check": "header"})
    assert len(lazy.skipped) == 4 and len(lazy) == 20
    with _quiet_warnings():
        seen = sum(x.shape[0] for x in D.make_loader(lazy, batch_size=5, shuffle=False))
    assert seen == 20  # a whole epoch, no crash
    assert len(lazy.skipped) == 5


def test_places_fill_mean_saved(tmp_path):
    _places_val_tree(tmp_path, n=12)
    kw = dict(n_train=8, n_test=4, size=16)
    tr = Places365(tmp_path, "train", **kw)
    mean = tr.fill_mean()
    assert mean.shape == (3,) and tr.mean_path.is_file()
    manual = torch.stack([tr[i] for i in range(len(tr))]).mean(dim=(0, 2, 3))
    assert torch.allclose(mean, manual, atol=1e-5)
    saved = json.loads(tr.mean_path.read_text())
    assert saved["n_train"] == 8 and saved["source"] == "val"
    te = Places365(tmp_path, "test", **kw)
    assert torch.equal(te.fill_mean(), mean)  # the test split uses the training mean


# ---- users' folders --------------------------------------------------------------------------
@pytest.fixture
def messy_folder(tmp_path):
    root = tmp_path / "photos"
    _jpeg(root / "rgb.jpg", (80, 60))
    _jpeg(root / "sub" / "deeper" / "gray.jpg", (64, 64), mode="L")
    _jpeg(root / "cmyk.jpg", (64, 64), mode="CMYK")
    rgba = Image.new("RGBA", (40, 40), (255, 0, 0, 0))  # fully transparent -> white
    rgba.save(root / "rgba.png")
    Image.new("P", (40, 40), 3).save(root / "palette.png")
    Image.fromarray(np.full((40, 40), 65535, np.uint16)).save(root / "sixteen.png")
    _jpeg(root / "truncated.jpg", (128, 128), seed=5)
    _truncate(root / "truncated.jpg")
    (root / "garbage.png").write_bytes(b"\x89PNG but not really")
    (root / "empty.jpg").write_bytes(b"")
    _jpeg(root / "tiny.jpg", (8, 8))
    (root / "notes.txt").write_text("not an image, ignored")
    return root


def test_image_folder_converts_and_skips(messy_folder):
    with pytest.warns(UserWarning, match="skipped 4 unusable"):
        ds = D.ImageFolder(messy_folder, size=32)
    names = sorted(f.name for f in ds.files)
    assert names == ["cmyk.jpg", "gray.jpg", "palette.png", "rgb.jpg", "rgba.png", "sixteen.png"]
    assert sorted(os.path.basename(p) for p, _ in ds.skipped) == [
        "empty.jpg", "garbage.png", "tiny.jpg", "truncated.jpg"]
    assert "truncated.jpg" in ds.report()
    items = {f.name: ds[i] for i, f in enumerate(ds.files)}
    for x in items.values():
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert torch.all(items["rgba.png"] == 1.0)  # transparent composited on white
    assert torch.all(items["sixteen.png"] == 1.0)  # 65535 -> 1.0, not clipped garbage


def test_image_folder_lazy_check_never_crashes(messy_folder):
    with _quiet_warnings():
        ds = D.ImageFolder(messy_folder, size=32, check="header")
        assert len(ds) == 7  # the truncated file passes a header check
        batches = list(D.make_loader(ds, batch_size=7, shuffle=False))
    assert batches[0].shape == (7, 3, 32, 32)
    assert any(p.endswith("truncated.jpg") for p, _ in ds.skipped)


def test_image_folder_augment_deterministic(messy_folder):
    with _quiet_warnings():
        a = D.ImageFolder(messy_folder, size=32, augment=True, seed=1)
        b = D.ImageFolder(messy_folder, size=32, augment=True, seed=1)
    assert torch.equal(a[0], b[0])
    assert a.fill_mean().shape == (3,)


def test_image_folder_wrong_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected a directory of image files"):
        D.ImageFolder(tmp_path / "nope")
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(FileNotFoundError, match="no image files .* expected a directory"):
        D.ImageFolder(tmp_path)
    (tmp_path / "bad.jpg").write_bytes(b"xx")
    with _quiet_warnings(), pytest.raises(ValueError, match="none of the 1 image files"):
        D.ImageFolder(tmp_path)


# ---- images with masks, loader ---------------------------------------------------------------
def test_inpainting_dataset_and_loader():
    imgs = D.EmbeddedPhotos("train", size=32, length=12, seed=0)
    ds = D.InpaintingDataset(imgs, "thin", seed=2)
    x, m = ds[3]
    assert x.shape == (3, 32, 32) and m.shape == (1, 32, 32)
    assert torch.equal(m, D.InpaintingDataset(imgs, "thin", seed=2)[3][1])
    fixed = M.make_eval_masks("center", 5, 32)
    assert torch.equal(D.InpaintingDataset(imgs, fixed)[7][1], fixed[2])
    first = [b[0] for b in D.make_loader(ds, batch_size=4, seed=5)]
    again = [b[0] for b in D.make_loader(ds, batch_size=4, seed=5)]
    assert len(first) == 3 and first[0].shape == (4, 3, 32, 32)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    ds.set_epoch(1)
    assert imgs.epoch == 1
    items = [ds[i] for i in range(3)]
    ours, torchs = D.collate(items), torch.utils.data.default_collate(items)
    assert all(torch.equal(a, b) for a, b in zip(ours, torchs))


def test_loader_with_workers_matches_single_process():
    ds = D.InpaintingDataset(D.EmbeddedPhotos("train", size=32, length=8, seed=0), "rect", seed=1)
    single = list(D.make_loader(ds, batch_size=4, seed=3))
    multi = list(D.make_loader(ds, batch_size=4, seed=3, num_workers=2))
    assert all(torch.equal(a[k], b[k]) for a, b in zip(single, multi) for k in (0, 1))


def test_example_grid_returns_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before = set(tmp_path.iterdir())
    fig = figures.example_grid(n=2, size=32)
    assert len(fig.axes) == 2 * (2 + len(M.MASK_FAMILIES))
    assert set(tmp_path.iterdir()) == before
    plt.close(fig)


# ---- downloader against a loopback server -------------------------------------------------------
class _Handler(SimpleHTTPRequestHandler):
    requests = 0

    def do_GET(self):
        type(self).requests += 1
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Serves ``tmp_path/served`` on 127.0.0.1 from a thread; stopped at the end."""
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    served = tmp_path / "served"
    served.mkdir()
    handler = type("H", (_Handler,), {"requests": 0})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(served)))
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{srv.server_address[1]}", handler
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def _val_tar(path, n=12):
    tree = path.parent / "tree"
    _places_val_tree(tree, n=n, listfile=False)
    with tarfile.open(path, "w") as tar:
        tar.add(tree / "val_256", arcname="val_256")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_verifies_extracts_and_feeds_places(server, tmp_path):
    served, url, handler = server
    sha = _val_tar(served / "val_256.tar")
    dest = tmp_path / "places"
    out = downloads.download(f"{url}/val_256.tar", dest, sha, progress=False)
    assert out == dest / "val_256.tar" and len(list((dest / "val_256").iterdir())) == 12
    assert handler.requests == 1
    downloads.download(f"{url}/val_256.tar", dest, sha, progress=False)  # already there: no request
    assert handler.requests == 1
    md5 = hashlib.md5((served / "val_256.tar").read_bytes()).hexdigest()
    downloads.download(f"{url}/val_256.tar", tmp_path / "md5", md5=md5, progress=False,
                       extract=False)
    assert not (tmp_path / "md5" / "val_256").exists()
    ds = Places365(dest, "test", n_train=8, n_test=4, size=16)
    assert ds.source == "val" and len(ds) == 4


def test_download_rejects_bad_checksum(server, tmp_path):
    served, url, _ = server
    _val_tar(served / "val_256.tar", n=2)
    dest = tmp_path / "dl"
    with pytest.raises(ValueError, match="checksum mismatch"):
        downloads.download(f"{url}/val_256.tar", dest, "0" * 64, progress=False)
    assert list(dest.iterdir()) == []  # neither the file nor a .part left behind
    with pytest.raises(ValueError, match="needs an expected checksum"):
        downloads.download(f"{url}/val_256.tar", dest)


def _tar_with(path, member: tarfile.TarInfo, payload=b"x"):
    with tarfile.open(path, "w") as tar:
        ok = tarfile.TarInfo("fine.txt")
        ok.size = 1
        tar.addfile(ok, io.BytesIO(b"y"))
        if member.isfile():
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))
        else:
            tar.addfile(member)


def _member(name, kind=tarfile.REGTYPE, link=""):
    m = tarfile.TarInfo(name)
    m.type, m.linkname = kind, link
    return m


@pytest.mark.parametrize("member", [
    _member("../evil.txt"),
    _member("sub/../../evil.txt"),
    _member("/tmp/evil_abs.txt"),
    _member("link", tarfile.SYMTYPE, "/etc/passwd"),
    _member("sub/link", tarfile.SYMTYPE, "../../outside"),
    _member("hard", tarfile.LNKTYPE, "../outside"),
    _member("dev", tarfile.CHRTYPE),
], ids=["dotdot", "nested-dotdot", "absolute", "symlink-abs", "symlink-rel", "hardlink", "device"])
def test_safe_extract_rejects_escapes(server, tmp_path, member):
    served, url, _ = server
    archive = served / "bad.tar"
    _tar_with(archive, member)
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    dest = tmp_path / "a" / "b"
    with pytest.raises(downloads.UnsafeArchiveError):
        downloads.download(f"{url}/bad.tar", dest, sha, progress=False)
    assert not (dest / "fine.txt").exists()  # checked before anything is written
    assert not (tmp_path / "a" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_safe_extract_refuses_even_internal_links(tmp_path):
    archive = tmp_path / "links.tar"
    _tar_with(archive, _member("sub/link", tarfile.SYMTYPE, "../fine.txt"))
    with pytest.raises(downloads.UnsafeArchiveError, match="link"):
        downloads.safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---- the embedded source: split, procedural share, colour jitter ------------------------------
def test_shipped_photographs_are_split_by_photograph_and_all_present():
    train_found, missing = D.embedded_photographs("train")
    test_found, missing_t = D.embedded_photographs("test")
    val_found, missing_v = D.embedded_photographs("val")
    assert not missing and not missing_t and not missing_v
    assert len(train_found) == 13 and len(test_found) == 6 and len(val_found) == 6
    assert not {n for n, _ in train_found} & {n for n, _ in test_found}
    assert len(D.EmbeddedPhotos("test", size=32)) == 138
    val = D.EmbeddedPhotos("val", size=32)
    assert len(val) == 135 and torch.equal(val[7], D.EmbeddedPhotos("val", size=32)[7])


def test_procedural_share_and_jitter_are_deterministic():
    ds = D.EmbeddedPhotos("train", size=32, length=64, seed=5, procedural=0.5, jitter=0.2)
    again = D.EmbeddedPhotos("train", size=32, length=64, seed=5, procedural=0.5, jitter=0.2)
    for i in (0, 7, 63):
        assert torch.equal(ds[i], again[i])
        assert ds[i].shape == (3, 32, 32) and 0 <= ds[i].min() and ds[i].max() <= 1
    plain = D.EmbeddedPhotos("train", size=32, length=64, seed=5)
    differs = sum(not torch.equal(ds[i], plain[i]) for i in range(64))
    assert differs == 64  # half replaced by dead leaves, the rest colour-jittered
    with pytest.raises(ValueError, match="procedural"):
        D.EmbeddedPhotos("train", procedural=1.5)


def test_uniform_leaves_widen_the_colours_of_the_dead_leaves():
    """With ``uniform_leaves`` the discs take colours from the whole RGB cube: saturated
    colours, rare in the photographs' palettes, become common. The share 0 keeps the old stream."""
    def saturated_share(ds):
        x = torch.stack([ds[i] for i in range(24)])
        return float(((x.amax(1) - x.amin(1)) > 0.6).float().mean())

    kw = dict(split="train", size=32, length=24, seed=2, procedural=1.0)
    palettes, uniform = D.EmbeddedPhotos(**kw), D.EmbeddedPhotos(**kw, uniform_leaves=1.0)
    assert saturated_share(uniform) > 0.15 and saturated_share(palettes) < 0.08
    # share 0 draws nothing extra: item i is the dead-leaves image of the old stream
    for i in (0, 5, 23):
        rng = np.random.default_rng([2, 0, i])
        rng.random()  # the procedural draw
        palette = palettes._palettes()[int(rng.integers(len(palettes.paths)))]
        old = torch.from_numpy(procedural.dead_leaves(32, rng, palette).transpose(2, 0, 1).copy())
        assert torch.equal(palettes[i], old)
    with pytest.raises(ValueError, match="uniform_leaves"):
        D.EmbeddedPhotos("train", uniform_leaves=-0.1)


def test_smooth_fields_replace_a_share_of_the_dead_leaves():
    kw = dict(split="train", size=32, length=24, seed=2, procedural=1.0)
    leaves, smooth = D.EmbeddedPhotos(**kw), D.EmbeddedPhotos(**kw, smooth_fields=1.0)
    for i in (0, 5, 23):  # share 1: item i is the smooth field of its generator's state
        rng = np.random.default_rng([2, 0, i])
        rng.random()  # the procedural draw
        palette = leaves._palettes()[int(rng.integers(len(leaves.paths)))]
        rng.random()  # the smooth-field draw
        expect = torch.from_numpy(procedural.smooth_field(32, rng, palette).transpose(2, 0, 1).copy())
        assert torch.equal(smooth[i], expect) and not torch.equal(leaves[i], expect)
    with pytest.raises(ValueError, match="smooth_fields"):
        D.EmbeddedPhotos("train", smooth_fields=1.5)
    with pytest.raises(ValueError, match="smooth_fields"):
        load_config("ci", smooth_fields=-0.5)


def test_colour_jitter_keeps_range_and_changes_colour():
    x = torch.rand(3, 16, 16)
    y = D.color_jitter(x, np.random.default_rng(0), 0.3)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1 and not torch.equal(x, y)
    assert torch.allclose(D.color_jitter(x, np.random.default_rng(0), 0.0), x, atol=1e-6)
