"""Where a training run executes: the torchrun process group, ranks, bf16 support, and the
signals that stop it (:class:`StopOnSignal`).

Under ``torchrun`` (``WORLD_SIZE > 1``) every process calls :func:`setup_distributed`, which
joins the ``env://`` process group (nccl on CUDA with device ``cuda:LOCAL_RANK``, gloo on the
CPU). Rank 0 writes the run directory; every rank trains on its share of each step's batch.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import torch

__all__ = ["setup_distributed", "is_main_process", "current_group", "cpu_has_fast_bf16",
           "StopOnSignal"]


def current_group():
    """``torch.distributed`` if a process group is initialised, else None."""
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def setup_distributed(device=None):
    """Initialise the process group from torchrun's environment (``env://``) when
    ``WORLD_SIZE > 1`` and none exists: backend nccl on CUDA, gloo on CPU; on CUDA each
    process uses ``cuda:LOCAL_RANK``. Returns ``(rank, world, device, created)``."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    created = False
    if world > 1 and dist.is_available() and not dist.is_initialized():
        want_cuda = torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda")
        if want_cuda:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = torch.device("cuda", local)
        dist.init_process_group("nccl" if want_cuda else "gloo", init_method="env://")
        created = True
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), device, created
    return 0, 1, device, created


def is_main_process() -> bool:
    """Rank 0 of the process group, or of torchrun's ``RANK`` before the group exists."""
    dist = current_group()
    return dist.get_rank() == 0 if dist is not None else int(os.environ.get("RANK", "0")) == 0


def cpu_has_fast_bf16() -> bool:
    """True where the CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX flags in Linux's
    /proc/cpuinfo). Elsewhere bf16 is emulated and slower than float32, so ``cpu_amp`` is
    ignored."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class StopOnSignal:
    """First SIGINT/SIGTERM: finish the current step, save, return. Second: raise at once."""

    def __init__(self):
        self.flag, self.signame, self._old = False, None, {}

    def _handler(self, sig, frame):
        if self.flag:
            self.restore()
            raise KeyboardInterrupt
        self.flag, self.signame = True, signal.Signals(sig).name

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handler)
        return self

    def restore(self):
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old = {}

    def __exit__(self, *exc):
        self.restore()
        return False
