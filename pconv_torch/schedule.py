"""The training schedule: the phase of each global step and its learning-rate factor.

Steps ``0 .. sum(iters) - 1`` run phase 1 for ``iters[0]`` steps, then phase 2 for
``iters[1]``, then phase 3 (see :mod:`pconv_torch.training`).
"""

from __future__ import annotations

__all__ = ["phase_of", "lr_scale"]


def phase_of(step: int, iters) -> tuple[int, int]:
    """Phase (1..3) and iteration within it (0-based) of global step ``step``."""
    a, b = iters[0], iters[0] + iters[1]
    if step < a:
        return 1, step
    if step < b:
        return 2, step - a
    return 3, step - b


def lr_scale(step: int, total: int, decay: float) -> float:
    """Learning-rate factor at global ``step``: 1 until the last ``decay * total`` steps, then
    falling linearly to 0.1 at the last step."""
    start = total * (1.0 - decay)
    if decay <= 0 or step < start:
        return 1.0
    return 1.0 - 0.9 * (step - start) / max(total - start, 1.0)
