"""Number formats and table shapes shared by the HTML page, summary.md and table.tex."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ponder.analysis import Analysis


__all__ = ["pct", "pval", "shift_grid"]


def pct(v: float) -> str:
    """A fraction as a percentage with one decimal; ``–`` for NaN."""
    return "–" if v != v else f"{100 * v:.1f}%"


def pval(v: float) -> str:
    """A p-value with two significant digits, ``<1e-4`` below that; ``–`` for NaN."""
    return "–" if v != v else (f"{v:.2g}" if v >= 1e-4 else "<1e-4")


def shift_grid(an: Analysis) -> tuple[list, list]:
    """The input-shift table.

    Args:
        an: The study's analysis.

    Returns:
        Columns ``(kind, level)`` and rows ``(arm, {(kind, level): mean accuracy}, clean accuracy)``;
        both empty when the study measured no shift.
    """
    if not len(an.shift):
        return [], []
    cols = list(dict.fromkeys(zip(an.shift["kind"], an.shift["level"])))
    rows = [(arm, {(k, l): m for k, l, m in zip(g["kind"], g["level"], g["mean"])}, g["clean"].iloc[0])
            for arm, g in an.shift.groupby("arm", sort=False)]
    return cols, rows
