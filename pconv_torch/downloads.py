"""Downloads: fetch a file, check its checksum, unpack a tar archive safely.

:func:`download` streams a URL to disk and keeps the file only if its SHA-256 (or MD5)
matches; :func:`safe_extract` unpacks a tar archive all or nothing, refusing absolute names,
``..`` components, links and device files (:class:`UnsafeArchiveError`) before anything is
written. :func:`download_places365_val` fetches the poster's data, Places365-Standard's
``val_256.tar``, for :class:`pconv_torch.places365.Places365`.
"""

from __future__ import annotations

import filecmp
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath

__all__ = [
    "download",
    "safe_extract",
    "UnsafeArchiveError",
    "PLACES365_VAL_256",
    "download_places365_val",
]


class UnsafeArchiveError(ValueError):
    """An archive member is unsafe to extract: an absolute path, a ``..`` component, a
    symbolic or hard link, or a device / FIFO (raised before anything is written)."""


# The MD5 is the one torchvision (and others) publish for this file; MIT publishes no SHA-256.
PLACES365_VAL_256 = {
    "url": "http://data.csail.mit.edu/places/places365/val_256.tar",
    "md5": "e27b17d8d44f4af9a78502beb927f808",
    "bytes": 525158400,
}


def _check_member(m: tarfile.TarInfo) -> None:
    """UnsafeArchiveError unless ``m`` is a regular file or folder with a relative name free
    of ``..`` components."""
    name = m.name
    if PurePosixPath(name).is_absolute() or name.startswith("\\") or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchiveError(f"absolute path in archive: {name!r}")
    if ".." in re.split(r"[/\\]", name) or "\x00" in name:
        raise UnsafeArchiveError(f"'..' in archive path: {name!r}")
    if m.issym() or m.islnk():
        raise UnsafeArchiveError(f"link in archive (links are never extracted): {name!r} -> "
                                 f"{m.linkname!r}")
    if not (m.isfile() or m.isdir()):
        raise UnsafeArchiveError(f"special file (device or FIFO) in archive: {name!r}")


def _plan_moves(src: Path, dst: Path, moves: list) -> None:
    """The renames that put the extracted tree ``src`` into ``dst`` (merging into folders
    that already exist); raises before any rename if one is impossible, would follow a
    symbolic link in ``dst`` or would replace a file of ``dst`` by a different one (an
    identical file is left as it is)."""
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        source, target = Path(entry.path), dst / entry.name
        if target.is_symlink():
            raise UnsafeArchiveError(f"{target} is a symbolic link: not extracting over it")
        if entry.is_dir(follow_symlinks=False):
            if target.is_dir():
                _plan_moves(source, target, moves)
                continue
            if target.exists():
                raise NotADirectoryError(f"{target}: a file where the archive has a folder")
        elif target.is_dir():
            raise IsADirectoryError(f"{target}: a folder where the archive has a file")
        elif target.exists():
            if filecmp.cmp(source, target, shallow=False):
                continue
            raise FileExistsError(f"{target}: already exists and differs from the archive's "
                                  "file; move it away or extract elsewhere (nothing was "
                                  "extracted)")
        moves.append((source, target))


def _remove_stale(dest: Path) -> None:
    """Remove the temporary folders ``dest/.extract-<pid>-*`` that extractions killed before
    they finished left behind (those of processes still running are kept)."""
    for d in dest.glob(f"{_TMP_PREFIX}*"):
        pid = d.name[len(_TMP_PREFIX):].split("-")[0]
        if pid.isdigit():
            try:
                os.kill(int(pid), 0)
                continue  # still running
            except ProcessLookupError:
                pass
            except (PermissionError, OverflowError):  # another user's process / not a pid
                continue
        shutil.rmtree(d, ignore_errors=True)


_TMP_PREFIX = ".extract-"


def safe_extract(archive, dest) -> list[Path]:
    """Extract a tar archive (any compression) into ``dest``; all or nothing.

    Every member is checked before anything is written: absolute names, ``..`` components,
    symbolic and hard links (of any target: Places365 archives have none) and device / FIFO
    members raise :class:`UnsafeArchiveError`. The members are then extracted, with Python's
    ``"data"`` filter where it exists, into a temporary folder ``dest/.extract-<pid>-*`` and
    only then renamed into place (merging into folders that exist). A file of ``dest`` that
    the archive would replace by a different one raises FileExistsError before any rename
    (an identical one is kept); a rename that fails part-way is undone; on any error the
    temporary folder is removed and ``dest`` is left as it was. Temporary folders that a
    killed extraction left behind are removed first. Returns the extracted regular files'
    paths.
    """
    dest = Path(dest)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for m in members:
            try:
                _check_member(m)
            except UnsafeArchiveError as e:
                raise UnsafeArchiveError(f"{archive}: {e}") from None
        dest.mkdir(parents=True, exist_ok=True)
        _remove_stale(dest)
        tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-", dir=dest))
        try:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, members=members, filter="data")
            else:  # Python < 3.11.4: links and specials were refused above; drop special bits
                for m in members:
                    m.mode &= 0o755
                tar.extractall(tmp, members=members)
            moves, done = [], []
            _plan_moves(tmp, dest, moves)
            try:
                for source, target in moves:
                    os.rename(source, target)
                    done.append((source, target))
            except BaseException:
                for source, target in reversed(done):  # undo: dest as it was
                    os.rename(target, source)
                raise
        except Exception as e:
            if isinstance(e, getattr(tarfile, "FilterError", ())):
                raise UnsafeArchiveError(f"{archive}: {e}") from None
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return [dest / m.name for m in members if m.isfile()]


def _digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, dest, sha256: str | None = None, *, md5: str | None = None,
             filename: str | None = None, extract: bool = True, progress: bool = True,
             timeout: float = 60.0) -> Path:
    """Download ``url`` into directory ``dest``, verify its checksum, optionally extract it.

    A checksum is required: ``sha256`` (preferred) or ``md5``. The file is streamed to
    ``<name>.part`` and renamed only after the checksum matches; on a mismatch the partial
    file is deleted and ValueError raised. An existing file with the right checksum is not
    downloaded again. With ``extract=True`` tar archives are unpacked by :func:`safe_extract`.
    ``filename`` (default: the URL's last component) must be a plain file name: ValueError
    for one with a folder or ``..``.

    Returns: path of the downloaded file.
    """
    if not sha256 and not md5:
        raise ValueError("download needs an expected checksum (sha256=... or md5=...)")
    algo, expected = ("sha256", sha256.lower()) if sha256 else ("md5", md5.lower())
    name = filename if filename is not None else (
        PurePosixPath(urllib.parse.urlparse(url).path).name or "download")
    if (name in ("", ".", "..") or any(c in name for c in "/\\\0")
            or re.match(r"^[A-Za-z]:", name)):
        what = f"filename {filename!r}" if filename is not None else f"the name {name!r} in {url}"
        raise ValueError(f"download: {what} must be a plain file name (no folder, no '..')")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / name
    if not (target.is_file() and _digest(target, algo) == expected):
        part = target.with_name(target.name + ".part")
        h = hashlib.new(algo)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as out:
                total = int(resp.headers.get("Content-Length") or 0) or None
                bar = None
                if progress:
                    from tqdm.auto import tqdm
                    bar = tqdm(total=total, unit="B", unit_scale=True, desc=target.name)
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    out.write(chunk)
                    h.update(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                if bar is not None:
                    bar.close()
            got = h.hexdigest()
            if got != expected:
                raise ValueError(f"checksum mismatch for {url}: expected {algo} {expected}, got {got}")
            os.replace(part, target)
        finally:
            if part.exists():
                part.unlink()
    if extract and tarfile.is_tarfile(target):
        safe_extract(target, dest)
    return target


def download_places365_val(root, **kwargs) -> Path:
    """Download and extract ``val_256.tar`` (36,500 images, 0.5 GB) into ``root``, giving
    ``root/val_256/``: the ``val`` layout of :class:`pconv_torch.places365.Places365`. Checked by
    the MD5 that torchvision publishes."""
    return download(PLACES365_VAL_256["url"], root, md5=PLACES365_VAL_256["md5"], **kwargs)
