"""Hostile inputs and faults on the training side, as tables: each case gives the input, the
expected error type, a fragment of its message, and the files that must be left unchanged.

Covers: checkpoints altered after they were written (tensor digests), checkpoints missing an
entry or a buffer, torch.load refusals, out-of-bounds configurations, unsafe archives,
checkpoint permissions, a locked / unusable output directory, a full disk during a
checkpoint write, and a garbage Places365 file list.
"""

import errno
import io
import os
import re
import subprocess
import sys
import tarfile
import zipfile

import pytest
import torch

from pconv_torch.places365 import Places365
from pconv_torch import checkpoint, downloads, fileio, training
from tiny_runs import tiny as tiny_run
from pconv_torch.training import (
    PRESETS,
    TrainConfig,
    load_checkpoint,
    load_config,
    load_generator,
    save_checkpoint,
    train,
)


def tiny(**kw):
    """The shared tiny run with 2 / 1 / 2 iterations and weight averaging on (so every
    section of a checkpoint exists)."""
    return tiny_run(**{"phase1_iters": 2, "phase2_iters": 1, "phase3_iters": 2, "ema": 0.9, **kw})


@pytest.fixture(scope="module")
def images():
    return torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def good_run(tmp_path_factory, images):
    """A finished tiny run: (out_dir, the checkpoint's bytes)."""
    out = tmp_path_factory.mktemp("good")
    train(tiny(), data=images, out_dir=out, progress=False)
    return out, (out / training.CHECKPOINT_NAME).read_bytes()


def snapshot(*paths):
    return {p: p.read_bytes() for p in paths}


def assert_unchanged(before):
    for p, blob in before.items():
        assert p.read_bytes() == blob, f"{p} changed"


# -- A. checkpoints altered after they were written ------------------------------------
def _bump(section, key=None):
    def edit(st):
        t = st[section] if key is None else st[section][key]
        if isinstance(t, dict):  # an optimiser: the first moment of its first parameter
            t = t["state"][0]["exp_avg"]
        t.view(-1)[0] += 1.0
    return edit


def _drop_fill(st):
    del st["generator"]["fill"]


def _bump_step(st):
    st["step"] += 1


def _garble_record(st):
    st["digests"] = "nonsense"


CORRUPTIONS = [
    # (edit of the loaded state, saved with the old digests; message fragment)
    (_bump("generator", "layers.0.conv.weight"), "tensor 'generator/layers.0.conv.weight' does "
     "not match its SHA-256 digest"),
    (_bump("discriminator", "global_branch.convs.0.weight"),
     "'discriminator/global_branch.convs.0.weight'"),
    (_bump("generator_ema", "layers.0.conv.weight"), "'generator_ema/layers.0.conv.weight'"),
    (_bump("opt_g"), "'opt_g/state/0/exp_avg'"),
    (_bump("opt_d"), "'opt_d/state/0/exp_avg'"),
    (_drop_fill, "tensor 'generator/fill' is missing"),
    (_bump_step, "configuration, step or optimiser settings do not match"),
    (_garble_record, "unreadable digest record"),
]


@pytest.mark.parametrize("edit,fragment", CORRUPTIONS,
                         ids=["G", "D", "G-ema", "opt_g", "opt_d", "no-fill", "step", "record"])
def test_an_altered_checkpoint_is_refused_naming_file_and_tensor(good_run, tmp_path, images,
                                                                  edit, fragment):
    out, blob = good_run
    state = torch.load(io.BytesIO(blob), weights_only=True)
    edit(state)
    run = tmp_path / "run"
    run.mkdir()
    ckpt = run / training.CHECKPOINT_NAME
    torch.save(state, ckpt)  # the old digest record is kept
    before = snapshot(ckpt)
    for load in (load_checkpoint, load_generator):
        with pytest.raises(ValueError, match=re.escape(str(ckpt)) + ".*" + re.escape(fragment)):
            load(run)
    with pytest.raises(ValueError, match=re.escape(fragment)):  # a resume refuses too
        train(tiny(), data=images, out_dir=run, progress=False)
    assert_unchanged(before)


def _largest_stored_tensor(path):
    """(offset, size) of the largest tensor's bytes inside the checkpoint's zip archive."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)
        n_name, n_extra = (int.from_bytes(f.read(2), "little") for _ in range(2))
    return info.header_offset + 30 + n_name + n_extra, info.file_size


def test_raw_byte_corruption_is_refused_on_load_and_resume(good_run, tmp_path, images):
    out, blob = good_run
    run = tmp_path / "run"
    run.mkdir()
    ckpt = run / training.CHECKPOINT_NAME
    ckpt.write_bytes(blob)
    offset, size = _largest_stored_tensor(ckpt)
    damaged = bytearray(blob)
    start = offset + size // 2
    damaged[start:start + 100] = bytes(b ^ 0x5A for b in damaged[start:start + 100])
    ckpt.write_bytes(bytes(damaged))
    before = snapshot(ckpt)
    with pytest.raises(ValueError, match=re.escape(str(ckpt)) + ".*corrupt.*SHA-256 digest"):
        load_generator(ckpt)
    with pytest.raises(ValueError, match="checkpoint.pt.*corrupt"):
        train(tiny(), data=images, out_dir=run, progress=False)
    assert_unchanged(before)


def test_a_checkpoint_without_digests_is_refused_unless_asked_for(good_run, tmp_path, images,
                                                                   capsys):
    """Deleting the digests does not get an altered tensor past the check: the file is
    refused (API, resume, `pconv inpaint`, `pconv eval`) unless the user asks for it by name."""
    from pconv_torch import cli

    state = torch.load(io.BytesIO(good_run[1]), weights_only=True)
    del state["digests"]
    state["generator"]["layers.0.conv.weight"].view(-1)[0] += 1.0  # altered, undetectably
    run = tmp_path / "run"
    run.mkdir()
    ckpt = run / training.CHECKPOINT_NAME
    torch.save(state, ckpt)
    before = snapshot(ckpt)
    pattern = re.escape(str(ckpt)) + ": checkpoint without digests: its tensors cannot be verified"
    for load in (load_checkpoint, load_generator):
        with pytest.raises(ValueError, match=pattern):
            load(run)
    with pytest.raises(ValueError, match=pattern):
        train(tiny(), data=images, out_dir=run, progress=False)
    photo, mask = tmp_path / "photo.png", tmp_path / "mask.png"
    from PIL import Image
    import numpy as np

    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(photo)
    Image.fromarray(np.pad(np.full((8, 8), 255, np.uint8), 16)).save(mask)
    inpaint = ["inpaint", str(photo), "--mask", str(mask), "-o", str(tmp_path / "o.png"),
               "--checkpoint", str(run)]
    for argv in (inpaint, ["eval", str(run), "--n", "1", "--quiet"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "checkpoint without digests" in err[0]
        assert "--allow-unverified-checkpoint" in err[0] and "allow_unverified" not in err[0]
    assert not (tmp_path / "o.png").exists()
    # asked for by name: loaded, with a one-line warning
    assert cli.main(inpaint + ["--allow-unverified-checkpoint"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pconv: warning: ") and "unverified" in err[0]
    with pytest.warns(UserWarning, match="old.pt: checkpoint without digests loaded unverified"):
        torch.save(state, tmp_path / "old.pt")
        st = load_checkpoint(tmp_path / "old.pt", allow_unverified=True)
    assert st["step"] == tiny().total_steps
    save_checkpoint(st, tmp_path / "again.pt")  # saving it again adds them
    assert "digests" in torch.load(tmp_path / "again.pt", weights_only=True)
    assert_unchanged(before)


def test_digests_cover_every_tensor_and_survive_a_round_trip(good_run):
    st = load_checkpoint(good_run[0])
    names = set(st["digests"]["tensors"])
    for section in ("generator", "discriminator", "generator_ema", "opt_g", "opt_d"):
        assert any(n.startswith(section + "/") for n in names), section
    assert {"generator/fill", "opt_g/state/0/exp_avg_sq", "rng/torch"} <= names


# -- E. a checkpoint missing an entry or a buffer ----------------------------------------
MISSING = [
    # (section, key to delete or None for the whole section, message fragment, loaders)
    ("generator", "fill", "'generator' does not match the configuration: missing 'fill'",
     ("resume",)),  # load_generator reads the average (ema > 0)
    ("generator_ema", "fill", "'generator_ema' does not match the configuration: missing 'fill'",
     ("load_generator", "resume")),
    ("discriminator", "global_branch.convs.0.weight", "missing 'global_branch.convs.0.weight'",
     ("resume",)),
    ("opt_g", None, "no usable 'opt_g' entry", ("resume",)),
    ("rng", None, "no usable 'rng' entry", ("resume",)),
]


@pytest.mark.parametrize("section,key,fragment,loaders", MISSING,
                         ids=["G-fill", "G-ema-fill", "D-weight", "opt_g", "rng"])
def test_a_missing_entry_is_named_not_a_key_error(good_run, tmp_path, images, section, key,
                                                   fragment, loaders):
    state = load_checkpoint(good_run[0])
    if key is None:
        del state[section]
    else:
        del state[section][key]
    run = tmp_path / "run"
    ckpt = save_checkpoint(state, run / training.CHECKPOINT_NAME)  # consistent digests
    before = snapshot(ckpt)
    pattern = re.escape(str(ckpt)) + ".*" + re.escape(fragment)
    if "load_generator" in loaders:
        with pytest.raises(ValueError, match=pattern):
            load_generator(run)
    with pytest.raises(ValueError, match=pattern):
        train(tiny(), data=images, out_dir=run, progress=False)
    assert_unchanged(before)


class _Code:
    def __reduce__(self):
        return (os.system, ("true",))


def test_the_weights_only_refusal_says_why(tmp_path):
    torch.save({"format": "pconv-training-checkpoint", "x": _Code()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match=r"evil.pt: refused by torch.load\(weights_only=True\)"
                       r".*system") as e:
        load_checkpoint(tmp_path / "evil.pt")
    assert "\n" not in str(e.value)


# -- B. configuration bounds --------------------------------------------------------------
BOUNDS = [
    (dict(image_size=32768), "image_size=32768: must be <= 1024"),
    (dict(n_samples=100000), "n_samples=100000: must be <= 64"),
    (dict(batch_size=4096), "batch_size=4096: must be <= 1024"),
    (dict(image_size=1024, batch_size=32), "batch_size=32: batch_size * image_size**2"),
    (dict(epoch_length=10 ** 7), "epoch_length=10000000: must be <= 1000000"),
    (dict(width=8.0), "width=8.0: must be <= 4.0"),
    (dict(d_width=16), "d_width=16.0: must be <= 4.0"),
    (dict(num_workers=1000), "num_workers=1000: must be <= 64"),
]


@pytest.mark.parametrize("override,fragment", BOUNDS, ids=[next(iter(b[0])) + str(i)
                                                            for i, b in enumerate(BOUNDS)])
def test_insane_sizes_are_rejected_naming_field_and_bound(override, fragment):
    with pytest.raises(ValueError, match=re.escape("TrainConfig." + fragment)):
        load_config("ci", **override)


def test_every_preset_and_the_bounds_themselves_are_valid():
    for name, cfg in PRESETS.items():
        assert TrainConfig.from_dict(cfg.to_dict()) == cfg, name
    load_config("paper", image_size=1024, batch_size=16, n_samples=64, width=4.0, d_width=4.0,
                epoch_length=1_000_000, num_workers=64)
    load_config("paper", batch_size=1024)


# -- C. archives ---------------------------------------------------------------------------
def _entry(name, kind=tarfile.REGTYPE, link="", payload=b"x"):
    m = tarfile.TarInfo(name)
    m.type, m.linkname = kind, link
    if kind == tarfile.REGTYPE:
        m.size = len(payload)
    return m, payload


def _write_tar(path, entries, mode="w"):
    with tarfile.open(path, mode) as tar:
        for m, payload in entries:
            tar.addfile(m, io.BytesIO(payload) if m.isfile() else None)


SYMLINK_CHAIN = [_entry("s2", tarfile.SYMTYPE, "."), _entry("s1", tarfile.SYMTYPE, "s2/.."),
                 _entry("s1/escaped.txt", payload=b"outside")]
UNSAFE = [
    # (members after a harmless first file, message fragment)
    (SYMLINK_CHAIN, "link in archive"),
    ([_entry("sub/link", tarfile.SYMTYPE, "../fine.txt")], "link in archive"),
    ([_entry("hard", tarfile.LNKTYPE, "fine.txt")], "link in archive"),
    ([_entry("dev", tarfile.CHRTYPE)], "special file"),
    ([_entry("pipe", tarfile.FIFOTYPE)], "special file"),
    ([_entry("/tmp/evil_abs.txt")], "absolute path"),
    ([_entry("C:/evil.txt")], "absolute path"),
    ([_entry("sub/../../evil.txt")], "'..' in archive path"),
]


@pytest.mark.parametrize("with_data_filter", [True, False], ids=["data-filter", "old-python"])
@pytest.mark.parametrize("entries,fragment", UNSAFE, ids=["symlink-chain", "internal-symlink",
                                                          "hardlink", "device", "fifo",
                                                          "absolute", "drive", "dotdot"])
def test_unsafe_archives_are_refused_before_anything_is_written(tmp_path, monkeypatch,
                                                                entries, fragment,
                                                                with_data_filter):
    if not with_data_filter:  # as on Python 3.10.0-3.10.11 and 3.11.0-3.11.3
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    archive = tmp_path / "bad.tar"
    _write_tar(archive, [_entry("fine.txt", payload=b"y")] + entries)
    dest = tmp_path / "a" / "dest"
    dest.mkdir(parents=True)
    (dest / "kept.txt").write_text("mine")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(downloads.UnsafeArchiveError,
                       match=re.escape(str(archive)) + ".*" + fragment):
        downloads.safe_extract(archive, dest)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (dest / "kept.txt").read_text() == "mine"


def test_an_extraction_that_fails_midway_leaves_nothing(tmp_path, monkeypatch):
    archive = tmp_path / "ok.tar"
    _write_tar(archive, [_entry("val_256/a.jpg"), _entry("val_256/b.jpg")])
    dest = tmp_path / "dest"
    real = tarfile.TarFile.extract

    def full_disk_after_one(self, member, path="", **kw):
        if member.name.endswith("b.jpg"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, member, path, **kw)

    monkeypatch.setattr(tarfile.TarFile, "extractall", lambda self, path, members, **kw: [
        full_disk_after_one(self, m, path, **kw) for m in members])
    with pytest.raises(OSError, match="No space left"):
        downloads.safe_extract(archive, dest)
    assert list(dest.iterdir()) == []  # no half folder, no temporary folder


def test_a_safe_archive_is_merged_into_the_destination(tmp_path):
    archive = tmp_path / "ok.tar.gz"
    _write_tar(archive, [_entry("val_256", tarfile.DIRTYPE), _entry("val_256/a.jpg", payload=b"a"),
                         _entry("places365_val.txt", payload=b"a.jpg 1\n")], mode="w:gz")
    dest = tmp_path / "dest"
    (dest / "val_256").mkdir(parents=True)
    (dest / "val_256" / "old.jpg").write_bytes(b"old")
    files = downloads.safe_extract(archive, dest)
    assert files == [dest / "val_256" / "a.jpg", dest / "places365_val.txt"]
    assert (dest / "val_256" / "a.jpg").read_bytes() == b"a"
    assert (dest / "val_256" / "old.jpg").read_bytes() == b"old"
    assert sorted(p.name for p in dest.iterdir()) == ["places365_val.txt", "val_256"]


def test_a_file_in_the_way_of_an_archive_folder_changes_nothing(tmp_path):
    archive = tmp_path / "ok.tar"
    _write_tar(archive, [_entry("a.txt"), _entry("val_256/a.jpg")])
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "val_256").write_bytes(b"a file")
    with pytest.raises(NotADirectoryError, match="val_256"):
        downloads.safe_extract(archive, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["val_256"]


def test_a_rename_failing_part_way_is_undone(tmp_path, monkeypatch):
    archive = tmp_path / "ok.tar"
    _write_tar(archive, [_entry("a.txt"), _entry("b.txt"), _entry("new/c.txt")])
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "mine.txt").write_text("mine")
    real, calls = os.rename, []

    def rename(src, dst):
        calls.append(dst)
        if len(calls) == 3:  # the third of three renames: two are already done
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
        return real(src, dst)

    monkeypatch.setattr(downloads.os, "rename", rename)
    with pytest.raises(OSError, match="cross-device"):
        downloads.safe_extract(archive, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["mine.txt"]


def test_a_file_of_the_users_is_not_replaced(tmp_path):
    archive = tmp_path / "ok.tar"
    _write_tar(archive, [_entry("a.txt", payload=b"archive"), _entry("b.txt", payload=b"b")])
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "a.txt").write_bytes(b"the user's own")
    with pytest.raises(FileExistsError, match=re.escape(str(dest / "a.txt")) + ": already exists"):
        downloads.safe_extract(archive, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["a.txt"]
    assert (dest / "a.txt").read_bytes() == b"the user's own"
    (dest / "a.txt").write_bytes(b"archive")  # the same file: extracting again is fine
    assert downloads.safe_extract(archive, dest) == [dest / "a.txt", dest / "b.txt"]
    assert downloads.safe_extract(archive, dest) == [dest / "a.txt", dest / "b.txt"]


def test_temporary_folders_of_killed_extractions_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dest = tmp_path / "dest"
    stale = dest / f".extract-{dead.stdout.strip()}-abcd1234"  # as kill -9 leaves it
    (stale / "val_256").mkdir(parents=True)
    (stale / "val_256" / "a.jpg").write_bytes(b"half")
    running = dest / f".extract-{os.getpid()}-efgh5678"  # another extraction, still running
    running.mkdir()
    archive = tmp_path / "ok.tar"
    _write_tar(archive, [_entry("x.txt")])
    downloads.safe_extract(archive, dest)
    assert sorted(p.name for p in dest.iterdir()) == [running.name, "x.txt"]


@pytest.mark.parametrize("url, filename", [
    ("http://127.0.0.1:9/val.tar", "../escape.tar"), ("http://127.0.0.1:9/val.tar", ".."),
    ("http://127.0.0.1:9/val.tar", "sub/val.tar"), ("http://127.0.0.1:9/val.tar", "C:val.tar"),
    ("http://127.0.0.1:9/..", None)])
def test_download_refuses_a_file_name_that_leaves_dest(tmp_path, url, filename):
    with pytest.raises(ValueError, match="must be a plain file name"):
        downloads.download(url, tmp_path / "dest", sha256="0" * 64, filename=filename,
                           progress=False, timeout=0.01)
    assert not (tmp_path / "dest").exists() and not (tmp_path / "escape.tar").exists()


# -- D. permissions, lock ------------------------------------------------------------------
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_checkpoint_permissions_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = save_checkpoint({"a": torch.zeros(2)}, tmp_path / "checkpoint.pt")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode
    os.chmod(path, 0o640)  # a rewrite keeps the permissions the user chose
    save_checkpoint({"a": torch.ones(2)}, path)
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_training_run_writes_a_checkpoint_as_open_would(good_run):
    mode = (good_run[0] / training.CHECKPOINT_NAME).stat().st_mode & 0o777
    assert mode == 0o666 & ~fileio._umask()  # 0644 under umask 022, not 0600


_HOLDER = ("import fcntl, os, sys, time\n"
           "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
           "fcntl.flock(fd, fcntl.LOCK_EX)\n"
           "os.write(fd, str(os.getpid()).encode())\n"
           "print('locked', flush=True)\n"
           "time.sleep(120)\n")


@pytest.mark.skipif(checkpoint.fcntl is None, reason="no flock on this platform")
def test_two_trainings_on_one_out_dir(tmp_path, images):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out / training.LOCK_NAME)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ValueError, match=re.escape(str(out)) + ": another training is "
                           f"writing to this directory \\(process {holder.pid}\\)"):
            train(tiny(), data=images, out_dir=out, progress=False)
        assert not (out / training.CHECKPOINT_NAME).exists()
    finally:
        holder.kill()  # as kill -9: the kernel drops the lock, nothing stale remains
        holder.wait()
    r = train(tiny(phase3_iters=0), data=images, out_dir=out, progress=False)
    assert r["status"] == "finished"
    # within one process too, and the lock is released when a run ends or fails
    with checkpoint.out_dir_lock(out):
        with pytest.raises(ValueError, match="another training"):
            train(tiny(phase3_iters=0), data=images, out_dir=out, progress=False)
    with pytest.raises(ValueError, match="cannot resume"):
        train(tiny(width=0.25), data=images, out_dir=out, progress=False)
    assert train(tiny(phase3_iters=0), data=images, out_dir=out, progress=False)["step"] == 3


# -- E. unusable output directory, full disk -----------------------------------------------
def _is_file(tmp_path):
    (tmp_path / "out").write_bytes(b"a file")
    return tmp_path / "out", [tmp_path / "out"]


def _parent_is_file(tmp_path):
    (tmp_path / "parent").write_bytes(b"a file")
    return tmp_path / "parent" / "out", [tmp_path / "parent"]


OUT_DIRS = [
    (_is_file, ValueError, "out: the output directory is a file"),
    (_parent_is_file, OSError, "out: cannot create the output directory (Not a directory)"),
]


@pytest.mark.parametrize("make,error,fragment", OUT_DIRS, ids=["is-a-file", "parent-is-a-file"])
def test_an_unusable_out_dir_gives_one_line_naming_it(tmp_path, images, make, error, fragment):
    out, kept = make(tmp_path)
    before = snapshot(*kept)
    with pytest.raises(error, match=re.escape(fragment)) as e:
        train(tiny(), data=images, out_dir=out, progress=False)
    assert "\n" not in str(e.value) and str(out) in str(e.value)
    assert_unchanged(before)


def test_a_read_only_out_dir_is_named(tmp_path, images, monkeypatch):
    out = tmp_path / "ro"
    out.mkdir()
    if os.geteuid() != 0:  # root writes anywhere: pretend the permission bits hold
        os.chmod(out, 0o555)
    else:
        monkeypatch.setattr(checkpoint.os, "access", lambda p, mode: False)
    try:
        with pytest.raises(PermissionError, match=re.escape(f"{out}: the output directory is "
                                                            "not writable")):
            train(tiny(), data=images, out_dir=out, progress=False)
    finally:
        os.chmod(out, 0o755)
    assert list(out.iterdir()) == []


class _FullDisk:
    """A file that accepts ``room`` bytes, then fails as a full disk does."""

    def __init__(self, f, room):
        self.f, self.room = f, room

    def write(self, b):
        if len(b) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(b)
        return self.f.write(b)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_a_full_disk_during_a_checkpoint_write_is_named(good_run, tmp_path, images, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    ckpt = run / training.CHECKPOINT_NAME
    ckpt.write_bytes(good_run[1])
    (run / "log.csv").write_bytes((good_run[0] / "log.csv").read_bytes())
    before = snapshot(ckpt)
    real = fileio.os.fdopen
    monkeypatch.setattr(fileio.os, "fdopen", lambda *a, **k: _FullDisk(real(*a, **k), 4096))
    with pytest.raises(OSError, match=re.escape(f"{ckpt}: checkpoint not written: no space "
                                                "left on device")) as e:
        train(tiny(phase3_iters=3), data=images, out_dir=run, progress=False)
    assert e.value.errno == errno.ENOSPC and "\n" not in str(e.value)
    assert_unchanged(before)
    assert not list(run.glob(".checkpoint.pt.*.tmp"))
    monkeypatch.setattr(fileio.os, "fdopen", real)
    assert train(tiny(phase3_iters=3), data=images, out_dir=run, progress=False)["step"] == 6


# -- E. a garbage Places365 file list ------------------------------------------------------
PLACES_LISTS = [
    (bytes(range(256)) * 4, "places365_train_standard.txt: not a Places365 file list (not UTF-8"),
    (b"hello world\n", "places365_train_standard.txt, line 1: not a Places365 file list line"),
    (b"/a/airfield/00000001.jpg 0\n/../../etc/passwd.jpg 0\n",
     "places365_train_standard.txt, line 2"),
    (b"/a/airfield/00000001.jpg 0\x00\x00\n", "places365_train_standard.txt, line 1"),
]


@pytest.mark.parametrize("content,fragment", PLACES_LISTS,
                         ids=["binary", "garbage-text", "dotdot", "nul"])
def test_a_garbage_places365_list_is_named(tmp_path, content, fragment):
    (tmp_path / "data_256").mkdir()
    lst = tmp_path / "places365_train_standard.txt"
    lst.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(fragment)) as e:
        Places365(tmp_path, source="train_standard", n_train=1, n_test=0)
    assert str(lst) in str(e.value) and "\n" not in str(e.value)
