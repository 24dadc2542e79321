"""Figures of training and its outcome: learning curves, final metrics, train vs test, labels, losses, sparsity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ponder.analysis import Analysis
from ponder.reporting.plots.common import PALETTE, plt, save, settings_label, style, text

__all__ = ["learning_curves", "final_metric", "generalization_gap", "label_corruption", "loss_theory", "sparsity"]


def learning_curves(an: Analysis, path: Path) -> Path:
    """Accuracy per epoch, mean over seeds with 95% CI bands, at each arm's chosen setting.

    One panel each for train and test accuracy; a study with several factors gets one
    test-accuracy panel per condition of the analysis (its other factors), with a line per
    level of the analysis's focus factor.

    Args:
        an: The study's analysis.
        path: Where to write the PNG (an SVG goes beside it).

    Returns:
        ``path``.
    """
    if an.conditions:
        return _curves_per_condition(an, path)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, split in zip(axes, ("train", "test")):
        for i, arm in enumerate(a.arm for a in an.arms):
            _band(ax, an, arm, split, label=text(arm), lw=1.6, alpha=0.15, **style(i))
        ax.set_title(f"{split} accuracy (mean, 95% CI over seeds)")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    axes[1].legend(fontsize=7, loc="lower right", frameon=False)
    fig.tight_layout()
    return save(fig, path, 130)


def _band(ax, an: Analysis, arm: str, split: str, *, alpha: float, **line) -> None:
    """One arm's mean curve of ``split`` accuracy with its 95% CI band."""
    c = an.curves[(an.curves["arm"] == arm) & (an.curves["split"] == split)].sort_values("epoch")
    ax.plot(c["epoch"], 100 * c["mean"], **line)
    ax.fill_between(c["epoch"], 100 * c["lo"], 100 * c["hi"], color=line["color"], alpha=alpha, lw=0)


def _curves_per_condition(an: Analysis, path: Path) -> Path:
    """Test accuracy per epoch: a panel per condition, a line per focus level."""
    arm_focus = {a.arm: str(a.levels[an.focus]) for a in an.arms}
    arm_cond = {a.arm: settings_label(a.levels, exclude=an.focus) for a in an.arms}
    conds = [c.label for c in an.conditions]
    cols = min(4, len(conds))
    rows = (len(conds) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows + 0.8), sharey=True, squeeze=False)
    focus_levels = list(dict.fromkeys(arm_focus.values()))
    for k, cond in enumerate(conds):
        ax = axes[k // cols, k % cols]
        for arm in (a.arm for a in an.arms if arm_cond[a.arm] == cond):
            i = focus_levels.index(arm_focus[arm])
            _band(ax, an, arm, "test", label=text(arm_focus[arm]), lw=1.3, alpha=0.12, **style(i))
        ax.set_title(text(cond), fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for k in range(len(conds), rows * cols):
        axes[k // cols, k % cols].axis("off")
    axes[0, 0].set_ylabel("test accuracy (%)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, max(1, len(labels))), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.04 + 0.02 * (len(labels) // 6), 1, 1))
    return save(fig, path, 120)


def final_metric(an: Analysis, path: Path) -> Path:
    """Final test metric per arm: mean with 95% CI and every seed as a dot, best at the top.

    Args:
        an: The study's analysis.
        path: Where to write the PNG.

    Returns:
        ``path``.
    """
    arms = sorted(an.arms, key=lambda a: a.rank, reverse=True)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(arms) + 1.4))
    from ponder.analysis.summary import metric_column

    col = metric_column(an.metric, "test")
    scale = 100 if an.metric == "accuracy" else 1
    for y, a in enumerate(arms):
        vals = an.finals[an.finals["arm"] == a.arm][col].to_numpy() * scale
        ax.scatter(vals, np.full(len(vals), y) + np.linspace(-0.12, 0.12, len(vals)), s=10, color="#888888", zorder=2)
        mean, lo, hi = a.test.mean * scale, a.test.lo * scale, a.test.hi * scale
        if lo == lo:
            ax.errorbar(mean, y, xerr=[[mean - lo], [hi - mean]], fmt="o", color=PALETTE[0], capsize=3, zorder=3)
        else:
            ax.plot(mean, y, "o", color=PALETTE[0])
    ax.set_yticks(range(len(arms)), [text(a.arm) for a in arms], fontsize=8)
    ax.set_xlabel("test accuracy (%)" if an.metric == "accuracy" else f"test {an.metric}")
    ax.set_title("final test metric per arm (mean, 95% CI; dots = seeds)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save(fig, path, 130)


def generalization_gap(an: Analysis, path: Path) -> Path:
    """Final train and test accuracy per arm: the generalization gap at a glance.

    Args:
        an: The study's analysis.
        path: Where to write the PNG.

    Returns:
        ``path``.
    """
    arms = sorted(an.arms, key=lambda a: a.rank)
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(arms) + 1.6))
    y = np.arange(len(arms))
    ax.barh(y - 0.2, [100 * a.train.mean for a in arms], height=0.4, color=PALETTE[1], label="train (on the labels trained on)")
    ax.barh(y + 0.2, [100 * a.test.mean for a in arms], height=0.4, color=PALETTE[0], label="test")
    ax.set_yticks(y, [text(a.arm) for a in arms], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("final accuracy (%)")
    ax.set_title("train vs test accuracy per arm (mean over seeds)", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save(fig, path, 120)


def label_corruption(an: Analysis, path: Path) -> Path | None:
    """Train and test accuracy against the fraction of corrupted labels (Zhang et al. 2017), one line per condition.

    Args:
        an: The study's analysis.
        path: Where to write the PNG.

    Returns:
        ``path``, or None when the label-noise fraction is not a factor.
    """
    f = an.finals
    levels = f["arm_json"].map(json.loads)
    if not any("dataset.label_noise" in lv for lv in levels):
        return None
    df = f.assign(_noise=levels.map(lambda lv: float(lv["dataset.label_noise"])),
                  _cond=levels.map(lambda lv: settings_label(lv, exclude="dataset.label_noise")))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.0), sharey=True)
    for i, (c, g) in enumerate(df.groupby("_cond", sort=False)):
        m = g.groupby("_noise")[["train_acc", "test_acc"]].mean().sort_index()
        st = style(i)
        a1.plot(m.index, 100 * m["train_acc"], marker="o", label=text(c), **st)
        a2.plot(m.index, 100 * m["test_acc"], marker="o", label=text(c), **st)
    for ax, t in ((a1, "train accuracy (on the corrupted labels)"), (a2, "test accuracy (true labels)")):
        ax.set_xlabel("fraction of training labels replaced at random")
        ax.set_title(t, fontsize=9)
        ax.grid(alpha=0.3)
    a1.set_ylabel("accuracy (%)")
    a2.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path, 130)


def loss_theory(an: Analysis, path: Path) -> Path:
    """Left: |dL/dz_y| against the predicted probability of the true class (closed form).
    Right: the measured output-layer gradient norm per epoch, per loss (median over runs).

    Args:
        an: The study's analysis.
        path: Where to write the PNG.

    Returns:
        ``path``.
    """
    from ponder.theory.logits import logit_gradients

    p = np.linspace(0.001, 0.999, 400)
    g = logit_gradients(p)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.0))
    a1.plot(p, g["cross_entropy_true"], color=PALETTE[0], lw=2, label="cross-entropy: 1 - p")
    a1.plot(p, g["squared_error_softmax_true"], color=PALETTE[1], lw=2, ls="--", label="squared error on softmax")
    a1.set_yscale("log")
    a1.set_xlabel("predicted probability of the true class p")
    a1.set_ylabel("|dL / dz_true|")
    a1.set_title("gradient at the true logit (10 classes, other mass spread evenly)", fontsize=9)
    a1.legend(fontsize=8)
    a1.grid(alpha=0.3)
    lay = an.layers
    if not lay.empty:
        last = lay.groupby("run_id")["layer"].transform("max") == lay["layer"]
        out = lay[last].merge(an.finals[["run_id", "config_json"]], on="run_id")
        out = out.assign(loss=[json.loads(c)["training"]["loss"] for c in out["config_json"]])
        for i, (loss, g2) in enumerate(out.groupby("loss")):
            m = g2.groupby("epoch")["grad_norm"].median()
            a2.plot(m.index, m.values, color=PALETTE[i % len(PALETTE)], lw=2, label=text(loss))
        a2.set_yscale("log")
        a2.legend(fontsize=8)
    a2.set_xlabel("epoch")
    a2.set_ylabel("output-layer weight gradient norm (median over runs)")
    a2.set_title("measured during training (probe batch)", fontsize=9)
    a2.grid(alpha=0.3)
    fig.tight_layout()
    return save(fig, path, 130)


def sparsity(an: Analysis, path: Path) -> Path | None:
    """Exact-zero fraction and dead-unit fraction of each hidden layer after training, per arm (probe batch, no dropout).

    Args:
        an: The study's analysis.
        path: Where to write the PNG.

    Returns:
        ``path``, or None when no layer statistics were recorded.
    """
    lay = an.layers
    if lay.empty:
        return None
    final = lay[(lay["epoch"] == lay.groupby("run_id")["epoch"].transform("max")) & lay["zero_frac"].notna()]
    if final.empty:
        return None
    m = final.groupby(["arm", "layer"])[["zero_frac", "dead_frac"]].mean().reset_index()
    arms = [a.arm for a in an.arms]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 0.3 * len(arms) + 2.2))
    for ax, col, title in ((a1, "zero_frac", "fraction of exact zeros in the activations"),
                           (a2, "dead_frac", "fraction of dead units (zero on every probe example)")):
        layers = sorted(m["layer"].unique())
        width = 0.8 / len(layers)
        for j, l in enumerate(layers):
            vals = [float(m[(m["arm"] == a) & (m["layer"] == l)][col].mean()) for a in arms]
            ax.barh(np.arange(len(arms)) + j * width, vals, height=width, color=PALETTE[j % len(PALETTE)], label=f"layer {l + 1}")
        ax.set_yticks(np.arange(len(arms)) + 0.4 - width / 2, [text(a) for a in arms], fontsize=7)
        ax.set_xlim(0, 1)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    a2.set_yticks([])
    a1.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path, 120)
