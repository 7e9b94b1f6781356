"""Training checkpoints and the run directory: atomic writes, SHA-256 digests, resume checks.

A checkpoint (``out_dir/checkpoint.pt``) is a dict read with ``torch.load(weights_only=True)``::

    format, version        "pconv-training-checkpoint", 1
    config                 TrainConfig.to_dict()
    step, phase, iteration global step; phase 1..3 and the iteration within it
    generator, discriminator, generator_ema (if ema > 0)     state_dicts; generator["fill"] (3,)
    opt_g, opt_d           Adam state_dicts
    rng                    torch (CPU, and CUDA if initialised), NumPy and Python RNG states
    sampler                {"position": samples consumed over all ranks, "seed", "global_batch"}
    world_size, losses, torch_version
    digests                {"algorithm": "sha256", "tensors": {"generator/fill": hex, ...},
                            "fields": hex of every other field}

:func:`save_checkpoint` adds ``digests`` and writes atomically (temp file, fsync,
``os.replace``); :func:`load_checkpoint` verifies them. :func:`load_generator` gives the
trained generator in eval mode. The run directory is locked with ``flock`` on
``out_dir/.train.lock`` while a run writes it (:func:`out_dir_lock`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import pickle
import random
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import TrainConfig
from .networks import build_models
from .fileio import atomic_write
from .schedule import phase_of

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: runs are not locked
    fcntl = None

__all__ = ["CHECKPOINT_NAME", "save_checkpoint", "load_checkpoint", "load_generator"]

CHECKPOINT_NAME = "checkpoint.pt"
LOCK_NAME = ".train.lock"
FORMAT = "pconv-training-checkpoint"
VERSION = 1


# --------------------------------------------------------------------------------------
# Digests
# --------------------------------------------------------------------------------------
def _tensors(obj, prefix: str = ""):
    """``(name, tensor)`` for every tensor in a nest of dicts, lists and tuples, in order;
    names join the keys with "/" (``"generator/fill"``, ``"opt_g/state/0/exp_avg"``)."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _tensors(v, f"{prefix}/{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}/{i}" if prefix else str(i))


def _tensor_digest(t: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and raw bytes (any dtype, any device)."""
    t = t.detach().cpu().contiguous()
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _skeleton(obj):
    """``obj`` with every tensor replaced by a placeholder, dicts as plain dicts."""
    if isinstance(obj, torch.Tensor):
        return "<tensor>"
    if isinstance(obj, dict):
        return {k: _skeleton(v) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(_skeleton(v) for v in obj)
    if isinstance(obj, list):
        return [_skeleton(v) for v in obj]
    return obj


def _fields_digest(body: dict) -> str:
    return hashlib.sha256(repr(_skeleton(body)).encode()).hexdigest()


def _digest_record(body: dict) -> dict:
    return {"algorithm": "sha256",
            "tensors": {name: _tensor_digest(t) for name, t in _tensors(body)},
            "fields": _fields_digest(body)}


def _verify_digests(state: dict, path: Path, allow_unverified: bool = False) -> None:
    """Check every tensor (and the other fields) of a loaded checkpoint against the digests
    stored by :func:`save_checkpoint`; ValueError naming ``path`` and the first bad tensor.
    A checkpoint without digests is refused unless ``allow_unverified`` (then a warning)."""
    record = state.get("digests")
    if record is None:
        if not allow_unverified:
            raise ValueError(f"{path}: checkpoint without digests: its tensors cannot be "
                             "verified (it was altered, or written by an older pconv_torch); "
                             "load it only if you trust the file, with allow_unverified=True "
                             "(command line: --allow-unverified-checkpoint), and save it "
                             "again with save_checkpoint to add them")
        warnings.warn(f"{path}: checkpoint without digests loaded unverified "
                      "(allow_unverified=True): its tensors may have been altered",
                      stacklevel=4)
        return
    corrupt = f"{path}: corrupt checkpoint (altered or damaged after it was written): "
    if not (isinstance(record, dict) and record.get("algorithm") == "sha256"
            and isinstance(record.get("tensors"), dict)):
        raise ValueError(corrupt + "unreadable digest record")
    want = record["tensors"]
    body = {k: v for k, v in state.items() if k != "digests"}
    seen = set()
    for name, t in _tensors(body):
        seen.add(name)
        if name not in want:
            raise ValueError(corrupt + f"tensor {name!r} has no recorded digest")
        if _tensor_digest(t) != want[name]:
            raise ValueError(corrupt + f"tensor {name!r} does not match its SHA-256 digest")
    missing = [name for name in want if name not in seen]
    if missing:
        raise ValueError(corrupt + f"tensor {missing[0]!r} is missing")
    if record.get("fields") != _fields_digest(body):
        raise ValueError(corrupt + "its configuration, step or optimiser settings do not match "
                         "their digest")


# --------------------------------------------------------------------------------------
# Writing and reading
# --------------------------------------------------------------------------------------
class _WriteErrors:
    """A binary file whose ``write`` remembers the OSError it raised (``torch.save`` reports
    a failed write as a RuntimeError that no longer carries the errno)."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, b):
        try:
            return self.f.write(b)
        except OSError as e:
            self.error = e
            raise

    def flush(self):
        return self.f.flush()


def save_checkpoint(state: dict, path) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same directory,
    flushed and fsync'ed, then ``os.replace`` (readers see the old file or the new one,
    never a partial one; on any error the temporary file is removed and the old file kept).

    A dict ``state`` (such as one returned by :func:`load_checkpoint`) is stored with a
    ``"digests"`` entry: the SHA-256 of every tensor (dtype, shape and bytes, keyed by its
    "/"-joined name) and one of all other fields, which :func:`load_checkpoint` verifies.
    A failed write raises OSError naming ``path`` (on a full disk: "no space left on device").
    """
    path = Path(path)
    if isinstance(state, dict):  # "config_obj" is what load_checkpoint adds to "config"
        body = {k: v for k, v in state.items() if k not in ("digests", "config_obj")}
        state = {**body, "digests": _digest_record(body)}
    writer = None
    try:
        with atomic_write(path) as f:
            writer = _WriteErrors(f)
            torch.save(state, writer)
    except (OSError, RuntimeError) as e:
        cause = writer.error if writer is not None and writer.error is not None else e
        if not isinstance(cause, OSError):
            raise
        why = ("no space left on device" if cause.errno == errno.ENOSPC
               else cause.strerror or str(cause))
        err = OSError(f"{path}: checkpoint not written: {why}; the previous checkpoint (if "
                      "any) is kept")
        err.errno = cause.errno
        raise err from None
    return path


def _resolve(path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return path


def load_checkpoint(path, map_location="cpu", allow_unverified: bool = False) -> dict:
    """Read a training checkpoint (``path`` may be the run's ``out_dir``) with
    ``torch.load(weights_only=True)``.

    Every tensor is checked against the SHA-256 digests stored by :func:`save_checkpoint`
    (a file altered or damaged after it was written is refused, naming the first bad tensor).
    A checkpoint without digests (altered, or written before they were stored) is refused
    unless ``allow_unverified=True``, which loads it with a warning.
    The returned dict has the stored entries (module docstring) and ``config_obj``, the
    :class:`~pconv_torch.config.TrainConfig` of ``config``.

    Raises FileNotFoundError if missing, and one ValueError naming the file if it is
    truncated, corrupt, refused by ``weights_only`` (it holds code or other objects), or not
    a pconv training checkpoint.
    """
    path = _resolve(path)
    try:
        with warnings.catch_warnings():  # torch's warnings (pickle protocol...): not ours to show
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle / zip / EOF / unsupported global: all mean "not ours"
        raise ValueError(f"{path}: {_load_failure(e)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a pconv training checkpoint (no '{FORMAT}' record)")
    _verify_digests(state, path, allow_unverified)
    missing = [k for k in ("config", "generator", "discriminator", "step") if k not in state]
    if missing:
        raise ValueError(f"{path}: incomplete pconv training checkpoint (no {missing[0]!r} entry)")
    if state.get("version", 0) > VERSION:
        raise ValueError(f"{path}: checkpoint version {state['version']} is newer than this "
                         f"pconv_torch understands ({VERSION})")
    try:
        state["config_obj"] = TrainConfig.from_dict(state["config"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: checkpoint holds an invalid configuration: {e}") from None
    return state


def _load_failure(e: Exception) -> str:
    """One line saying why ``torch.load`` failed; for a ``weights_only`` refusal, the reason
    (the object it refused) rather than torch's advice on how to load the file anyway."""
    msg = str(e)
    if isinstance(e, pickle.UnpicklingError) and "weights only load failed" in msg.lower():
        body = (msg.split("WeightsUnpickler error:", 1)[1] if "WeightsUnpickler error:" in msg
                else msg.split("\n\n", 1)[-1])
        why = " ".join(body.split("Check the documentation")[0].split()) or " ".join(msg.split())
        return ("refused by torch.load(weights_only=True), which reads only tensors and plain "
                f"data: {why}")
    return ("not a readable pconv checkpoint (truncated, corrupt or a different kind of file): "
            f"{type(e).__name__}: {' '.join(msg.split())[:1000]}")


def load_part(target, state: dict, key: str, path: Path) -> None:
    """``target.load_state_dict(state[key])`` for a module or an optimiser; a missing entry,
    missing or unexpected keys, or a shape mismatch give one ValueError naming ``path`` and
    ``key``."""
    sd = state.get(key)
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: checkpoint has no usable {key!r} entry")
    if isinstance(target, nn.Module):
        want = target.state_dict()
        missing = [k for k in want if k not in sd]
        extra = [k for k in sd if k not in want]
        if missing or extra:
            parts = ([f"missing {', '.join(map(repr, missing[:5]))}"] if missing else []) + (
                [f"unexpected {', '.join(map(repr, extra[:5]))}"] if extra else [])
            raise ValueError(f"{path}: {key!r} does not match the configuration: "
                             + "; ".join(parts))
    try:
        target.load_state_dict(sd)
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:
        raise ValueError(f"{path}: {key!r} does not match the configuration: "
                         f"{' '.join(str(e).split())[:500]}") from None


def load_generator(path, map_location="cpu", allow_unverified: bool = False):
    """The trained :class:`~pconv_torch.networks.Generator` from a training checkpoint
    (``path`` = file or ``out_dir``), in eval mode, with its ``fill`` buffer (training mean):
    the averaged weights when the run kept them (``ema`` > 0), else the trained ones.
    Errors (and ``allow_unverified``) as :func:`load_checkpoint`."""
    path = _resolve(path)
    state = load_checkpoint(path, map_location, allow_unverified)
    cfg = state["config_obj"]
    key = "generator_ema" if "generator_ema" in state else "generator"
    fill = state[key].get("fill") if isinstance(state[key], dict) else None
    fill = fill.tolist() if isinstance(fill, torch.Tensor) and fill.numel() == 3 else (0.5,) * 3
    g, _ = build_models(cfg, fill=fill)
    load_part(g, state, key, path)
    return g.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu").eval()


# --------------------------------------------------------------------------------------
# A trainer's state
# --------------------------------------------------------------------------------------
def training_state(trainer) -> dict:
    """The checkpoint of a :class:`pconv_torch.training._Trainer` at its current step (the
    fields of the module docstring, without ``digests``)."""
    cfg = trainer.cfg
    phase, _ = phase_of(min(trainer.step, max(cfg.total_steps - 1, 0)), cfg.iterations)
    return {
        "format": FORMAT, "version": VERSION, "config": cfg.to_dict(),
        "step": trainer.step, "phase": phase,
        "iteration": trainer.step - sum(cfg.iterations[:phase - 1]),
        "generator": trainer.g.state_dict(), "discriminator": trainer.d.state_dict(),
        "opt_g": trainer.opt_g.state_dict(), "opt_d": trainer.opt_d.state_dict(),
        "rng": rng_state(), "world_size": trainer.world,
        **({"generator_ema": trainer.g_ema.state_dict()} if trainer.g_ema is not None else {}),
        "sampler": {"position": trainer.position, "seed": cfg.seed,
                    "global_batch": cfg.batch_size * trainer.world},
        "losses": {k: float(v) for k, v in trainer.last.items()},
        "torch_version": str(torch.__version__),
    }


def restore_training(trainer, state: dict, path: Path) -> None:
    """Load a checkpoint ``state`` (read from ``path``) into ``trainer``: its networks,
    optimisers, the global RNGs, the step, the stream position and the last losses.
    ValueError naming ``path`` for a part that does not fit."""
    load_part(trainer.g, state, "generator", path)
    load_part(trainer.d, state, "discriminator", path)
    if trainer.g_ema is not None:
        load_part(trainer.g_ema, state, "generator_ema", path)
    load_part(trainer.opt_g, state, "opt_g", path)
    load_part(trainer.opt_d, state, "opt_d", path)
    try:
        set_rng_state(state["rng"])
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError, AttributeError):
        raise ValueError(f"{path}: checkpoint has no usable 'rng' entry") from None
    trainer.step = int(state["step"])
    trainer.position = int(state.get("sampler", {}).get(
        "position", trainer.step * trainer.cfg.batch_size * trainer.world))
    trainer.last = dict(state.get("losses", {}))


# --------------------------------------------------------------------------------------
# Random number generators
# --------------------------------------------------------------------------------------
def rng_state() -> dict:
    """The torch (CPU, and CUDA once initialised), NumPy and Python global RNG states, as
    tensors and plain data (``weights_only`` loads them)."""
    np_state = np.random.get_state()
    py = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "python": [py[0], list(py[1]), py[2]],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned (CUDA only with the same number of devices)."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    if "cuda" in state and torch.cuda.is_available():
        cuda = [s.cpu() for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


# --------------------------------------------------------------------------------------
# Resuming and the run directory
# --------------------------------------------------------------------------------------
# Fields that may change when a run is resumed (schedule length, bookkeeping, loader).
_RESUMABLE = {"phase1_iters", "phase2_iters", "phase3_iters", "log_every", "sample_every",
              "checkpoint_every", "n_samples", "num_workers", "tensorboard", "amp", "cpu_amp",
              "channels_last", "eval_every", "step_mode"}


def check_resumable(old: dict, new: TrainConfig, path: Path) -> None:
    """ValueError naming ``path`` and every differing field unless a run whose checkpoint
    holds configuration ``old`` (a dict) may continue under ``new``: only the iteration
    counts, bookkeeping and loader settings may change."""
    new_d = new.to_dict()
    default = TrainConfig().to_dict()  # a field added after the checkpoint was written
    diff = [f"{k}: {old.get(k, default[k])!r} -> {new_d[k]!r}" for k in new_d
            if k not in _RESUMABLE and old.get(k, default[k]) != new_d[k]]
    if diff:
        raise ValueError(f"{path}: cannot resume, the configuration differs ({'; '.join(diff)}); "
                         "use another output directory or resume=False")


def _os_error(cause: OSError, message: str) -> OSError:
    """An OSError of ``cause``'s type and errno whose text is just ``message``."""
    err = type(cause)(message)
    err.errno = cause.errno
    return err


def make_out_dir(out: Path) -> None:
    """Create the run directory ``out``; ValueError if it is a file, OSError (one line naming
    ``out``) if it cannot be created or written."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: the output directory is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _os_error(e, f"{out}: cannot create the output directory ({e.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise PermissionError(f"{out}: the output directory is not writable")


@contextlib.contextmanager
def out_dir_lock(out: Path):
    """Hold an exclusive ``flock`` on ``out/.train.lock`` while the body runs: a second
    training writing the same directory gets a ValueError naming it. The kernel drops the
    lock when the process exits, so a killed run never leaves a stale one."""
    make_out_dir(out)
    try:
        fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise _os_error(e, f"{out}: cannot write to the output directory ({e.strerror})") from None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                who = f" (process {holder})" if holder.isdigit() else ""
                raise ValueError(f"{out}: another training is writing to this directory{who}; "
                                 "wait for it to end or use another output directory") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
