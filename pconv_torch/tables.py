"""The one table writer of the package: aligned Markdown (or plain-text) tables.

Markdown tables render as HTML tables in the book and in Jupyter (``IPython.display.Markdown``)
and stay readable as plain text, because every column is padded to its widest cell::

    | method      | hole PSNR (dB) |
    |-------------|---------------:|
    | MSE only    |          21.04 |
"""

from __future__ import annotations

from typing import Iterable, Sequence

__all__ = ["render_table"]


def render_table(header: Sequence[str], rows: Iterable[Sequence], right: Iterable[int] | None = None,
                 style: str = "markdown", rule_before: Iterable[int] = ()) -> str:
    """A table of ``rows`` under ``header``, every cell written with ``str``.

    Args:
        header: column titles, length C.
        rows: rows of C cells each.
        right: indices of the right-aligned columns (numbers); default every column but the first.
        style: ``"markdown"`` (``| a | b |`` lines and a ``|---|---:|`` rule) or ``"text"``
            (columns separated by two spaces, a dashed rule under the header).
        rule_before: (text style only) row indices before which a dashed rule is repeated,
            e.g. above a total.
    Returns:
        The table, lines joined by newlines, no trailing newline.
    """
    if style not in ("markdown", "text"):
        raise ValueError(f"style must be 'markdown' or 'text', got {style!r}")
    header = [str(h) for h in header]
    body = [[str(c) for c in row] for row in rows]
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise ValueError(f"row {i} has {len(row)} cells, the header {len(header)}")
    right = set(range(1, len(header)) if right is None else right)
    widths = [max(len(x) for x in col) for col in zip(header, *body)]

    def line(cells):
        padded = [c.rjust(w) if j in right else c.ljust(w) for j, (c, w) in enumerate(zip(cells, widths))]
        return "| " + " | ".join(padded) + " |" if style == "markdown" else "  ".join(padded).rstrip()

    if style == "markdown":
        rule = "|" + "|".join("-" * (w + 1) + ":" if j in right else "-" * (w + 2)
                              for j, w in enumerate(widths)) + "|"
    else:
        rule = "  ".join("-" * w for w in widths)
    lines = [line(header), rule]
    before = set(rule_before) if style == "text" else set()
    for i, row in enumerate(body):
        if i in before:
            lines.append(rule)
        lines.append(line(row))
    return "\n".join(lines)
