"""Figures of the statistics: the interaction heatmap, the critical-difference diagram, stability boxes.

They draw along the analysis's focus factor and its conditions (``an.focus``, ``an.conditions``),
the same grouping as the tables beside them; without a focus they draw one box or row per arm.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ponder.analysis import Analysis
from ponder.reporting.plots.common import plt, save, settings_label, short_key, text

__all__ = ["interaction_heatmap", "cd_diagram", "stability_boxes"]


def interaction_heatmap(an: Analysis, path: Path) -> Path:
    """Mean test accuracy of every focus level (rows) in every condition (columns); * marks levels tied with the best.

    Args:
        an: The study's analysis (with conditions).
        path: Where to write the PNG.

    Returns:
        ``path``.
    """
    conds = an.conditions
    levels = list(dict.fromkeys(lvl for c in conds for lvl in c.levels))
    data = np.array([[100 * c.levels.get(lvl, np.nan) for c in conds] for lvl in levels])
    fig, ax = plt.subplots(figsize=(2.0 + 1.6 * len(conds), 0.38 * len(levels) + 1.6))
    im = ax.imshow(data, cmap="cividis", aspect="auto")
    fig.colorbar(im, ax=ax, label="test accuracy (%)")
    for j, c in enumerate(conds):
        for i, lvl in enumerate(levels):
            v = data[i, j]
            if v == v:
                mark = c.mark(lvl)
                ax.text(j, i, f"{v:.1f} {mark}".rstrip(), ha="center", va="center", fontsize=7,
                        color="black" if v > np.nanmean(data) else "white")
    ax.set_yticks(range(len(levels)), [text(lvl) for lvl in levels], fontsize=8)
    ax.set_xticks(range(len(conds)), ["\n".join(text(part) for part in c.label.split(", ")) for c in conds], fontsize=8)
    ax.set_title(f"{text(short_key(an.focus))} x conditions: mean test accuracy ( * = tied with the best, Holm p >= 0.05"
                 f"{'; ? = not tested' if any(c.untested for c in conds) else ''})",
                 fontsize=9)
    fig.tight_layout()
    return save(fig, path, 130)


def cd_diagram(an: Analysis, path: Path) -> Path | None:
    """Critical-difference diagram (Demsar 2006) of the ranking, drawn by scikit-posthocs.

    Args:
        an: The study's analysis.
        path: Where to write the PNG.

    Returns:
        ``path``, or None when the analysis has no ranking (fewer than 3 levels or 2 blocks).
    """
    import scikit_posthocs as sp

    r = an.ranking
    if r is None:
        return None
    shown = {name: text(name) for name in r.mean_ranks}  # scikit-posthocs draws the keys as labels
    ranks = {shown[k]: v for k, v in r.mean_ranks.items()}
    sig = r.nemenyi.rename(index=shown, columns=shown)
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(r.arms) + 1.8))
    sp.critical_difference_diagram(ranks, sig, ax=ax, label_props={"fontsize": 7})
    ax.set_title(f"mean ranks over {r.n_blocks} blocks (1 = best); bars join arms Nemenyi cannot tell apart "
                 f"(CD = {r.cd:.2f}); Friedman p = {r.p_value:.2g}", fontsize=8)
    fig.tight_layout()
    return save(fig, path, 130)


def stability_boxes(an: Analysis, path: Path) -> Path | None:
    """Distribution of test accuracy over hyperparameter draws (each a mean over seeds).

    With a focus factor: one panel per condition of the other factors, one box per focus level.
    Without: one panel, one box per arm. Boxes are sorted by median.

    Args:
        an: The study's analysis.
        path: Where to write the PNG.

    Returns:
        ``path``, or None when the study has no random-search draws.
    """
    if an.stability.empty or an.draws.empty:
        return None
    levels = {a.arm: a.levels for a in an.arms}
    focus = an.focus
    cond = {arm: settings_label(lv, exclude=focus) if focus else "all" for arm, lv in levels.items()}
    per = an.draws[an.draws["arm"].isin(levels)]
    conds = list(dict.fromkeys(cond[a] for a in per["arm"]))
    cols = min(2, len(conds))
    rows = (len(conds) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 3.6 * rows), squeeze=False, sharey=True)
    for k, c in enumerate(conds):
        ax = axes[k // cols, k % cols]
        g = per[per["arm"].map(cond) == c]
        data = {str(levels[a][focus]) if focus else a: 100 * v["value"].to_numpy() for a, v in g.groupby("arm", sort=False)}
        names = sorted(data, key=lambda n: -np.median(data[n]))
        ax.boxplot([data[n] for n in names], tick_labels=[text(n) for n in names], showfliers=True,
                   flierprops={"markersize": 3})
        ax.tick_params(axis="x", rotation=60, labelsize=7)
        ax.set_title(text(c), fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    for k in range(len(conds), rows * cols):
        axes[k // cols, k % cols].axis("off")
    for r in range(rows):
        axes[r, 0].set_ylabel("test accuracy (%)")
    fig.tight_layout()
    return save(fig, path, 130)
