"""Figures of the evaluations after training: accuracy under input shift, loss along lines in weight space."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ponder.analysis import Analysis
from ponder.reporting.plots.common import plt, save, style, text

__all__ = ["shift_curves", "line_profiles"]

_IDENTITY = {"noise": 0.0, "translation": 0.0, "scaling": 1.0}  # the shift level that leaves inputs unchanged
_XLABEL = {"noise": "noise std (units of the input std)", "translation": "shift (samples / pixels)",
           "scaling": "magnification"}


def shift_curves(an: Analysis, path: Path) -> Path | None:
    """Test accuracy against the strength of each input shift, one panel per kind, one line per arm
    (arms trained on true labels and original inputs); the clean test set is the first point.

    Args:
        an: The study's analysis.
        path: Where to write the PNG.

    Returns:
        ``path``, or None when the study measured no input shift.
    """
    from ponder.analysis.sections import clean_arms  # the rule the answer's shift sentence uses

    t = an.shift[an.shift["arm"].isin(clean_arms(an.finals))] if len(an.shift) else an.shift
    if t.empty:
        return None
    kinds = list(dict.fromkeys(t["kind"]))
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.3 * len(kinds), 3.6), sharey=True, squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for i, arm in enumerate(dict.fromkeys(t["arm"])):
            g = t[(t["arm"] == arm) & (t["kind"] == kind)]
            if g.empty:
                continue
            x = np.r_[_IDENTITY[kind], g["level"].to_numpy()]
            y = 100 * np.r_[g["clean"].iloc[0], g["mean"].to_numpy()]
            order = np.argsort(x)
            ax.plot(x[order], y[order], marker="o", ms=3, lw=1.3, label=text(arm), **style(i))
        ax.set_xlabel(_XLABEL[kind])
        ax.set_title(text(kind), fontsize=9)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("test accuracy (%)")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path, 130)


def _relative_curves(lines, probe: str, arm: str) -> list[np.ndarray]:
    """Each finite line of ``probe`` for ``arm``, divided by the loss at its higher end."""
    g = lines[(lines["probe"] == probe) & (lines["arm"] == arm)]
    curves = []
    for _, line in g.sort_values("level").groupby("run_id"):
        v = line["value"].to_numpy()
        if np.all(np.isfinite(v)):
            curves.append(v / max(abs(v[0]), abs(v[-1]), 1e-12))
    return curves


def line_profiles(an: Analysis, path: Path, *, max_lines: int = 8) -> Path | None:
    """Mean training loss along straight lines in weight space, relative to the higher end of each
    line: from initial to trained weights (left) and between two trained solutions (right).

    Args:
        an: The study's analysis.
        path: Where to write the PNG.
        max_lines: The most arms drawn per panel.

    Returns:
        ``path``, or None when the study ran no convexity probe.
    """
    if an.lines.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0), sharey=False)
    arms = list(dict.fromkeys(an.lines["arm"]))[:max_lines]
    for ax, probe, title in ((axes[0], "line_init", "initial -> trained weights"),
                             (axes[1], "line_pair", "trained solution (seed a) -> trained solution (seed b)")):
        for i, arm in enumerate(arms):
            curves = _relative_curves(an.lines, probe, arm)
            if curves:
                ax.plot(np.linspace(0, 1, len(curves[0])), np.mean(curves, axis=0), lw=1.3, label=text(arm), **style(i))
        ax.plot([0, 1], [ax.get_ylim()[0]] * 2, alpha=0)  # keep limits stable when a panel is sparse
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("position along the line (0 = start, 1 = end)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("training loss / loss at the higher end")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path, 130)
