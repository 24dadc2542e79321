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


def _save(fig, path: Path, dpi: int) -> None:
    """PNG for the screen and SVG (vector, for print) side by side."""
    fig.savefig(path, dpi=dpi)
    fig.savefig(Path(path).with_suffix(".svg"))


def _style(i: int) -> dict:
    return {"color": PALETTE[i % len(PALETTE)], "linestyle": STYLES[(i // len(PALETTE)) % len(STYLES)]}


def learning_curves(an: Analysis, path: Path) -> Path:
    """Accuracy per epoch, mean over seeds with 95% CI bands, at each arm's chosen setting.

    One panel each for train and test accuracy; a study with several factors gets one
    test-accuracy panel per condition of the other factors, with a line per focus level.
    """
    if an.conditions:
        arm_focus = {a.arm: str(a.levels[an.focus]) for a in an.arms}
        arm_cond = {a.arm: ", ".join(f"{k.split('.', 1)[1]}={v:g}" if isinstance(v, float) else f"{k.split('.', 1)[1]}={v}"
                                     for k, v in a.levels.items() if k != an.focus) for a in an.arms}
        conds = [c.label for c in an.conditions]
        cols = min(4, len(conds))
        rows = (len(conds) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows + 0.8), sharey=True, squeeze=False)
        focus_levels = list(dict.fromkeys(arm_focus.values()))
        for k, cond in enumerate(conds):
            ax = axes[k // cols, k % cols]
            for arm in (a.arm for a in an.arms if arm_cond[a.arm] == cond):
                i = focus_levels.index(arm_focus[arm])
                c = an.curves[(an.curves["arm"] == arm) & (an.curves["split"] == "test")].sort_values("epoch")
                st = _style(i)
                ax.plot(c["epoch"], 100 * c["mean"], label=arm_focus[arm], lw=1.3, **st)
                ax.fill_between(c["epoch"], 100 * c["lo"], 100 * c["hi"], color=st["color"], alpha=0.12, lw=0)
            ax.set_title(cond, fontsize=9)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        for k in range(len(conds), rows * cols):
            axes[k // cols, k % cols].axis("off")
        axes[0, 0].set_ylabel("test accuracy (%)")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=7, frameon=False)
        fig.tight_layout(rect=(0, 0.04 + 0.02 * (len(labels) // 6), 1, 1))
        _save(fig, path, 120)
        plt.close(fig)
        return path
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
    _save(fig, path, 130)
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
    _save(fig, path, 130)
    plt.close(fig)
    return path


def phase_diagram(activation: str, path: Path, *, sigma_b2: float = 0.05, measured=None) -> Path:
    """Order/chaos phase diagram of an activation: chi_1 over (sigma_w^2, sigma_b^2) with the critical
    line, and the depth scale 6 xi_c (trainable depth) against sigma_w^2 at ``sigma_b2``.

    ``measured``: optional rows (sigma_w2, depth, trained: bool) drawn over the depth panel.
    """
    import math

    from ponder.theory.meanfield import chi1, critical_sigma_w2, depth_scales

    sw = np.linspace(0.25, 4.0, 30)
    sb = np.linspace(0.0, 1.0, 13)
    grid = np.array([[min(chi1(activation, w, b), 3.0) for w in sw] for b in sb])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    im = a1.pcolormesh(sw, sb, grid, cmap="cividis", shading="auto", vmin=0, vmax=2)
    fig.colorbar(im, ax=a1, label="chi_1 (clipped)")
    crit = []
    for b in sb:
        try:
            crit.append((critical_sigma_w2(activation, float(b)), b))
        except Exception:
            continue
    if crit:
        a1.plot([c[0] for c in crit], [c[1] for c in crit], color=PALETTE[1], lw=2, label="critical line chi_1 = 1")
        a1.legend(loc="upper left", fontsize=8)
    a1.set_xlabel("sigma_w^2")
    a1.set_ylabel("sigma_b^2")
    a1.set_title(f"{activation}: ordered (chi_1 < 1) | chaotic (chi_1 > 1)")
    sw2 = np.linspace(0.05, 4.0, 50)
    depth = []
    for w in sw2:
        _, xi_c, _ = depth_scales(activation, float(w), sigma_b2)
        depth.append(6 * xi_c if math.isfinite(xi_c) else np.nan)
    a2.plot(sw2, depth, color=PALETTE[0], lw=2, label="6 xi_c (trainable depth)")
    if measured is not None and len(measured):
        ok = [(w, d) for w, d, t in measured if t]
        bad = [(w, d) for w, d, t in measured if not t]
        if ok:
            a2.scatter(*zip(*ok), color=PALETTE[2], marker="o", label="trained", zorder=3)
        if bad:
            a2.scatter(*zip(*bad), color=PALETTE[3], marker="x", label="did not train", zorder=3)
    a2.set_yscale("log")
    a2.set_xlabel("sigma_w^2")
    a2.set_ylabel("depth (layers)")
    a2.set_title(f"depth scale at sigma_b^2 = {sigma_b2:g}")
    a2.grid(alpha=0.3)
    a2.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path, 130)
    plt.close(fig)
    return path


def interaction_heatmap(an: Analysis, path: Path) -> Path:
    """Mean test accuracy of every focus level (rows) in every condition (columns); * marks levels tied with the best."""
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
                mark = " (best)" if lvl == c.best else (" *" if lvl in c.tied else "")
                ax.text(j, i, f"{v:.1f}{mark}", ha="center", va="center", fontsize=7,
                        color="black" if v > np.nanmean(data) else "white")
    ax.set_yticks(range(len(levels)), levels, fontsize=8)
    ax.set_xticks(range(len(conds)), [c.label.replace(", ", "\n") for c in conds], fontsize=8)
    ax.set_title(f"{an.focus.split('.', 1)[1]} x conditions: mean test accuracy ( * = tied with the best, Holm p >= 0.05)",
                 fontsize=9)
    fig.tight_layout()
    _save(fig, path, 130)
    plt.close(fig)
    return path


def propagation(an: Analysis, path: Path, *, max_panels: int = 4) -> Path | None:
    """Per-layer pre-activation std and weight-gradient norm at initialization, per focus level,
    for the deepest conditions; dashed: the mean-field prediction from each layer's measured
    sigma_w^2 and sigma_b^2."""
    import json
    import math

    from ponder.theory.meanfield import expect

    lay = an.layers
    if lay.empty or not an.conditions or lay["sigma_w2"].isna().all():
        return None
    init = lay[lay["epoch"] == 0].merge(an.finals[["run_id", "arm_json", "config_json"]], on="run_id")
    if init.empty:
        return None
    focus = an.focus
    init = init.assign(_focus=[str(json.loads(a)[focus]) for a in init["arm_json"]],
                       _depth=[json.loads(c)["model"]["depth"] for c in init["config_json"]],
                       _act=[json.loads(c)["model"]["activation"] for c in init["config_json"]])
    deepest = init["_depth"].max()
    init = init[init["_depth"] == deepest]
    keyed = init.assign(_cond=[f"activation={a}, depth={d}" for a, d in zip(init["_act"], init["_depth"])])
    panels = [(c, keyed[keyed["_cond"] == c]) for c in list(dict.fromkeys(keyed["_cond"]))[:max_panels]]
    fig, axes = plt.subplots(2, len(panels), figsize=(5.2 * len(panels), 7.5), squeeze=False)
    order = list(dict.fromkeys(lvl for c in an.conditions for lvl in c.levels))
    for j, (cond, g) in enumerate(panels):
        act = g["_act"].iloc[0]
        for lvl, gl in g.groupby("_focus", sort=False):
            i = order.index(lvl)
            m = gl.groupby("layer")[["preact_std", "grad_norm", "sigma_w2", "sigma_b2"]].mean().reset_index()
            st = _style(i)
            mk = "os^v"[(i // len(PALETTE)) % 4]
            axes[0, j].plot(m["layer"] + 1, m["preact_std"], marker=mk, ms=3, label=lvl, **st)
            axes[1, j].plot(m["layer"] + 1, m["grad_norm"], marker=mk, ms=3, label=lvl, **st)
            q = float(m["preact_std"].iloc[0]) ** 2
            pred = [math.sqrt(q)]
            for k in range(1, len(m)):
                q = float(m["sigma_w2"].iloc[k]) * expect(act, q) + float(m["sigma_b2"].iloc[k])
                pred.append(math.sqrt(q) if q > 0 and math.isfinite(q) else np.nan)
            axes[0, j].plot(m["layer"] + 1, pred, color=st["color"], lw=0.7, ls=":", alpha=0.9)
        for r, label in ((0, "pre-activation std"), (1, "weight gradient norm")):
            axes[r, j].set_yscale("log")
            axes[r, j].set_xlabel("layer")
            axes[r, j].set_ylabel(label)
            axes[r, j].grid(alpha=0.3)
        axes[0, j].set_title(f"at initialization: {cond}\n(dotted: mean-field prediction)", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.03 + 0.025 * (len(labels) // 6), 1, 1))
    _save(fig, path, 120)
    plt.close(fig)
    return path


def cd_diagram(an: Analysis, path: Path) -> Path | None:
    """Critical-difference diagram (Demsar 2006) of the ranking, drawn by scikit-posthocs."""
    import scikit_posthocs as sp

    r = an.ranking
    if r is None:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(r.arms) + 1.8))
    sp.critical_difference_diagram(r.mean_ranks, r.nemenyi, ax=ax, label_props={"fontsize": 7})
    ax.set_title(f"mean ranks over {r.n_blocks} blocks (1 = best); bars join arms Nemenyi cannot tell apart "
                 f"(CD = {r.cd:.2f}); Friedman p = {r.p_value:.2g}", fontsize=8)
    fig.tight_layout()
    _save(fig, path, 130)
    plt.close(fig)
    return path


def loss_theory(an: Analysis, path: Path) -> Path:
    """Left: |dL/dz_y| against the predicted probability of the true class (closed form).
    Right: the measured output-layer gradient norm per epoch, per loss (mean over runs)."""
    import json

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
            a2.plot(m.index, m.values, color=PALETTE[i % len(PALETTE)], lw=2, label=loss)
        a2.set_yscale("log")
        a2.legend(fontsize=8)
    a2.set_xlabel("epoch")
    a2.set_ylabel("output-layer weight gradient norm (median over runs)")
    a2.set_title("measured during training (probe batch)", fontsize=9)
    a2.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path, 130)
    plt.close(fig)
    return path


def sparsity(an: Analysis, path: Path) -> Path | None:
    """Exact-zero fraction and dead-unit fraction of each hidden layer after training, per arm (probe batch, no dropout)."""
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
        ax.set_yticks(np.arange(len(arms)) + 0.4 - width / 2, arms, fontsize=7)
        ax.set_xlim(0, 1)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    a2.set_yticks([])
    a1.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path, 120)
    plt.close(fig)
    return path


def generalization_gap(an: Analysis, path: Path) -> Path:
    """Final train and test accuracy per arm: the generalization gap at a glance."""
    arms = sorted(an.arms, key=lambda a: a.rank)
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(arms) + 1.6))
    y = np.arange(len(arms))
    ax.barh(y - 0.2, [100 * a.train.mean for a in arms], height=0.4, color=PALETTE[1], label="train (on the labels trained on)")
    ax.barh(y + 0.2, [100 * a.test.mean for a in arms], height=0.4, color=PALETTE[0], label="test")
    ax.set_yticks(y, [a.arm for a in arms], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("final accuracy (%)")
    ax.set_title("train vs test accuracy per arm (mean over seeds)", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    _save(fig, path, 120)
    plt.close(fig)
    return path


def weight_histograms(an: Analysis, path: Path) -> Path:
    """One draw of each focus initializer on a 64 x 64 layer, in units of 1/sqrt(fan_in)."""
    import json

    import torch

    from ponder import registry
    from ponder.catalog.initializers.base import dense_forward, init_network, parse_init

    levels = list(dict.fromkeys(lvl for c in an.conditions for lvl in c.levels)) if an.conditions else \
        [str(a.levels.get(an.focus)) for a in an.arms]
    act = json.loads(an.finals["config_json"].iloc[0])["model"]["activation"]
    cols = 4
    rows = (len(levels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.2 * rows), squeeze=False)
    x = torch.randn(256, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fwd = dense_forward(x, registry.get("activation", act).fn)

    for k, lvl in enumerate(levels):
        ax = axes[k // cols, k % cols]
        name, params = parse_init(lvl)
        (w, _), _ = init_network(name, [(64, 64), (64, 64)], generator=torch.Generator().manual_seed(0), dtype=torch.float64,
                                 context={"activation": act, "forward": fwd}, **params)
        v = (w.flatten() * 8.0).numpy()  # times sqrt(fan_in) = 8
        ax.hist(v, bins=50, color=PALETTE[k % len(PALETTE)])
        ax.set_title(lvl, fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_yticks([])
    for k in range(len(levels), rows * cols):
        axes[k // cols, k % cols].axis("off")
    fig.tight_layout()
    _save(fig, path, 110)
    plt.close(fig)
    return path


def measured_phase(an: Analysis, path: Path) -> Path | None:
    """The phase diagram of the deepest condition's activation with each initializer's measured sigma_w^2
    (mean over the hidden layers at init) marked trained / did not train."""
    import json

    if an.layers.empty or not an.sigma_w2:
        return None
    cfg = an.finals["config_json"].map(json.loads)
    depth = cfg.map(lambda c: c["model"]["depth"])
    act = cfg.map(lambda c: c["model"]["activation"])
    deepest = depth.max()
    acts = [a for a in dict.fromkeys(act[depth == deepest]) if a in ("tanh", "hardtanh", "softsign", "erf", "sigmoid")]
    chosen = acts[0] if acts else act[depth == deepest].iloc[0]
    sel = an.finals[(depth == deepest) & (act == chosen)]
    points = []
    for arm, g in sel.groupby("arm"):
        s2 = an.sigma_w2.get(arm)
        if s2 is None or not np.isfinite(s2) or s2 <= 0:
            continue
        trained = bool((g["test_acc"] > an.chance + 0.05).mean() > 0.5)
        points.append((min(float(s2), 4.0), float(deepest), trained))
    if not points:
        return None
    init = an.layers[(an.layers["epoch"] == 0) & an.layers["act_std"].notna()]
    sb2 = float(init["sigma_b2"].median()) if "sigma_b2" in init else 0.0
    return phase_diagram(chosen, path, sigma_b2=sb2 if np.isfinite(sb2) else 0.0, measured=points)


def label_corruption(an: Analysis, path: Path) -> Path | None:
    """Train and test accuracy against the fraction of corrupted labels (Zhang et al. 2017), one line per condition."""
    import json

    f = an.finals
    levels = f["arm_json"].map(json.loads)
    if not any("dataset.label_noise" in lv for lv in levels):
        return None
    noise = levels.map(lambda lv: float(lv["dataset.label_noise"]))
    cond = levels.map(lambda lv: ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in lv.items() if k != "dataset.label_noise") or "all")
    df = f.assign(_noise=noise, _cond=cond)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.0), sharey=True)
    for i, (c, g) in enumerate(df.groupby("_cond", sort=False)):
        m = g.groupby("_noise")[["train_acc", "test_acc"]].mean().sort_index()
        st = _style(i)
        a1.plot(m.index, 100 * m["train_acc"], marker="o", label=c, **st)
        a2.plot(m.index, 100 * m["test_acc"], marker="o", label=c, **st)
    for ax, t in ((a1, "train accuracy (on the corrupted labels)"), (a2, "test accuracy (true labels)")):
        ax.set_xlabel("fraction of training labels replaced at random")
        ax.set_title(t, fontsize=9)
        ax.grid(alpha=0.3)
    a1.set_ylabel("accuracy (%)")
    a2.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path, 130)
    plt.close(fig)
    return path


def _clean_arms(an: Analysis) -> list[str]:
    """Arms trained on true labels and original inputs (all arms when those are not factors)."""
    return [a.arm for a in an.arms if float(a.levels.get("dataset.label_noise", 0.0)) == 0.0
            and a.levels.get("dataset.inputs", "original") == "original"]


def shift_curves(an: Analysis, path: Path) -> Path | None:
    """Test accuracy against the strength of each input shift, one panel per kind, one line per arm
    (arms trained on true labels and original inputs); the clean test set is the first point."""
    t = an.shift[an.shift["arm"].isin(_clean_arms(an))] if len(an.shift) else an.shift
    if t.empty:
        return None
    kinds = list(dict.fromkeys(t["kind"]))
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.3 * len(kinds), 3.6), sharey=True, squeeze=False)
    identity = {"noise": 0.0, "translation": 0.0, "scaling": 1.0}
    xlabel = {"noise": "noise std (units of the input std)", "translation": "shift (samples / pixels)",
              "scaling": "magnification"}
    for ax, kind in zip(axes[0], kinds):
        for i, arm in enumerate(dict.fromkeys(t["arm"])):
            g = t[(t["arm"] == arm) & (t["kind"] == kind)]
            if g.empty:
                continue
            x = np.r_[identity[kind], g["level"].to_numpy()]
            y = 100 * np.r_[g["clean"].iloc[0], g["mean"].to_numpy()]
            order = np.argsort(x)
            ax.plot(x[order], y[order], marker="o", ms=3, lw=1.3, label=arm, **_style(i))
        ax.set_xlabel(xlabel[kind])
        ax.set_title(kind, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("test accuracy (%)")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path, 130)
    plt.close(fig)
    return path


def line_profiles(an: Analysis, path: Path, *, max_lines: int = 8) -> Path | None:
    """Mean training loss along straight lines in weight space, relative to the higher end of each
    line: from initial to trained weights (left) and between two trained solutions (right)."""
    if an.lines.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0), sharey=False)
    arms = list(dict.fromkeys(an.lines["arm"]))[:max_lines]
    for ax, probe, title in ((axes[0], "line_init", "initial -> trained weights"),
                             (axes[1], "line_pair", "trained solution (seed a) -> trained solution (seed b)")):
        for i, arm in enumerate(arms):
            g = an.lines[(an.lines["probe"] == probe) & (an.lines["arm"] == arm)]
            if g.empty:
                continue
            curves = []
            for _, line in g.sort_values("level").groupby("run_id"):
                v = line["value"].to_numpy()
                if np.all(np.isfinite(v)):
                    curves.append(v / max(abs(v[0]), abs(v[-1]), 1e-12))
            if not curves:
                continue
            alphas = np.linspace(0, 1, len(curves[0]))
            ax.plot(alphas, np.mean(curves, axis=0), lw=1.3, label=arm, **_style(i))
        ax.plot([0, 1], [ax.get_ylim()[0]] * 2, alpha=0)  # keep limits stable when a panel is sparse
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("position along the line (0 = start, 1 = end)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("training loss / loss at the higher end")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path, 130)
    plt.close(fig)
    return path


def stability_boxes(an: Analysis, path: Path) -> Path | None:
    """Distribution of test accuracy over hyperparameter draws (each a mean over seeds): one panel
    per condition of the other factors, one box per focus level, sorted by median."""
    if an.stability.empty or an.draws.empty:
        return None
    per, col = an.draws, "value"
    levels = {a.arm: a.levels for a in an.arms}
    focus = next(iter(an.study["spec"].get("factors", {})), None)
    cond = {arm: ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in lv.items() if k != focus) or "all"
            for arm, lv in levels.items()}
    per = per[per["arm"].isin(levels)]
    conds = list(dict.fromkeys(cond[a] for a in per["arm"]))
    cols = min(2, len(conds))
    rows = (len(conds) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 3.6 * rows), squeeze=False, sharey=True)
    for k, c in enumerate(conds):
        ax = axes[k // cols, k % cols]
        g = per[per["arm"].map(cond) == c]
        data = {str(levels[a].get(focus, a)): 100 * v[col].to_numpy() for a, v in g.groupby("arm", sort=False)}
        names = sorted(data, key=lambda n: -np.median(data[n]))
        ax.boxplot([data[n] for n in names], tick_labels=names, showfliers=True, flierprops={"markersize": 3})
        ax.tick_params(axis="x", rotation=60, labelsize=7)
        ax.set_title(c, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    for k in range(len(conds), rows * cols):
        axes[k // cols, k % cols].axis("off")
    for r in range(rows):
        axes[r, 0].set_ylabel("test accuracy (%)")
    fig.tight_layout()
    _save(fig, path, 130)
    plt.close(fig)
    return path
