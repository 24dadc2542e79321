"""Figures for reports (matplotlib, Agg backend, a colour-blind-safe palette)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ponder.analysis import Analysis  # noqa: E402

__all__ = ["learning_curves", "final_metric", "PALETTE"]

# Okabe & Ito 2008, "Color universal design": distinguishable under common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
STYLES = ["-", "--", ":", "-."]


def _style(i: int) -> dict:
    return {"color": PALETTE[i % len(PALETTE)], "linestyle": STYLES[(i // len(PALETTE)) % len(STYLES)]}


def learning_curves(an: Analysis, path: Path) -> Path:
    """Validation and test accuracy per epoch, mean over seeds with 95% CI bands, one line per arm."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, split in zip(axes, ("train", "test")):
        for i, arm in enumerate(a.arm for a in an.arms):
            c = an.curves[(an.curves["arm"] == arm) & (an.curves["split"] == split)].sort_values("epoch")
            st = _style(i)
            ax.plot(c["epoch"], 100 * c["mean"], label=arm, lw=1.6, **st)
            ax.fill_between(c["epoch"], 100 * c["lo"], 100 * c["hi"], color=st["color"], alpha=0.15, lw=0)
        ax.set_title(f"{split} accuracy (mean, 95% CI over seeds)")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    axes[1].legend(fontsize=7, loc="lower right", frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def final_metric(an: Analysis, path: Path) -> Path:
    """Final test metric per arm: mean with 95% CI and every seed as a dot, best at the top."""
    arms = sorted(an.arms, key=lambda a: a.rank, reverse=True)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(arms) + 1.4))
    col = "test_acc" if an.metric == "accuracy" else "test_loss"
    scale = 100 if an.metric == "accuracy" else 1
    for y, a in enumerate(arms):
        vals = an.finals[an.finals["arm"] == a.arm][col].to_numpy() * scale
        ax.scatter(vals, np.full(len(vals), y) + np.linspace(-0.12, 0.12, len(vals)), s=10, color="#888888", zorder=2)
        if a.test.lo == a.test.lo:
            ax.errorbar(a.test.mean * scale, y, xerr=[[a.test.mean * scale - a.test.lo * scale], [a.test.hi * scale - a.test.mean * scale]],
                        fmt="o", color=PALETTE[0], capsize=3, zorder=3)
        else:
            ax.plot(a.test.mean * scale, y, "o", color=PALETTE[0])
    ax.set_yticks(range(len(arms)), [a.arm for a in arms], fontsize=8)
    ax.set_xlabel("test accuracy (%)" if an.metric == "accuracy" else "test loss")
    ax.set_title("final test metric per arm (mean, 95% CI; dots = seeds)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
