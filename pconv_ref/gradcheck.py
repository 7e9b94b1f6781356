"""Numerical gradient checking and a printing comparison helper.

``numerical_gradient`` estimates the gradient of ``L(x) = sum(f(x) * dout)`` by central
differences, one entry at a time::

    dL/dx[k] ~= (L(x + h e_k) - L(x - h e_k)) / (2h)

which, for ``dout`` the upstream gradient, is exactly what a ``*_backward(dout, cache)``
must return. Use float64 and h ~ 1e-6 (error O(h^2) + O(eps/h)).
"""

from __future__ import annotations

import numpy as np

__all__ = ["numerical_gradient", "relative_error", "compare"]


def numerical_gradient(f, x, dout=None, h=1e-6):
    """Central-difference gradient of ``sum(f(x) * dout)`` with respect to the array ``x``.

    Args:
        f: callable taking ``x`` (the same array object, perturbed in place) and returning
            an array (any shape) or a scalar.
        x: float array, perturbed in place one entry at a time and restored afterwards.
        dout: upstream gradient, shape of ``f(x)``; None means all ones (a plain sum).
        h: step.

    Returns:
        grad: array of x's shape (float64).
    """
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise ValueError("x must be a floating NumPy array (it is perturbed in place)")
    grad = np.zeros(x.shape, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        idx = it.multi_index
        old = x[idx]
        try:
            x[idx] = old + h
            fp = np.array(f(x), dtype=np.float64)  # a copy: f may return a view of x
            x[idx] = old - h
            fm = np.array(f(x), dtype=np.float64)
        finally:
            x[idx] = old
        diff = fp - fm
        grad[idx] = np.sum(diff if dout is None else diff * dout) / (2 * h)
        it.iternext()
    return grad


def relative_error(a, b):
    """``||a - b|| / max(||a|| + ||b||, tiny)`` over all entries (0 when both are zero).

    A norm-wise error: unlike the entry-wise ``max |a-b|/(|a|+|b|)`` it is not blown up by
    entries that are both tiny.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    if denom == 0:
        return 0.0
    return float(np.linalg.norm(a - b) / max(denom, np.finfo(np.float64).tiny))


def _as_float64(array):
    if hasattr(array, "detach"):  # a torch tensor, possibly on a GPU or requiring grad
        array = array.detach().cpu().numpy()
    return np.asarray(array, dtype=np.float64)


def compare(name, mine, ref, rtol=1e-6, atol=1e-8):
    """Print one line ``<name>: max abs err 1.2e-16, allclose True`` and return the bool.

    ``mine`` and ``ref`` are arrays (anything ``np.asarray`` takes; torch tensors are
    detached and moved to the CPU first) or both None (e.g. ``db`` without bias).
    """
    if mine is None or ref is None:
        ok = mine is None and ref is None
        print(f"{name}: {'both None' if ok else 'one is None'}, allclose {ok}")
        return ok
    a, b = _as_float64(mine), _as_float64(ref)
    if a.shape != b.shape:
        print(f"{name}: shapes differ {a.shape} vs {b.shape}, allclose False")
        return False
    err = float(np.max(np.abs(a - b))) if a.size else 0.0
    ok = bool(np.allclose(a, b, rtol=rtol, atol=atol))
    print(f"{name}: max abs err {err:.1e}, allclose {ok}")
    return ok
