"""Figures about the network at initialization: signal propagation, weight histograms, the phase diagram.

What a network looks like at initialization depends only on the settings in :data:`INIT_KEYS`
(architecture, activation, depth, width, kernel size, initializer and its parameters). These
figures group runs by those settings and never by the optimizer, learning rate, loss, epochs
or batch size, which cannot change anything before the first step: a study of optimizer x
initializer draws one line per initializer, and a study where no such setting varies draws one
line for all its runs.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from ponder.analysis import Analysis
from ponder.reporting.plots.common import PALETTE, plt, save, short_key, style, text

__all__ = ["INIT_KEYS", "ALL_RUNS", "init_settings", "init_groups", "initializer_varies", "meanfield_applies",
           "propagation_groups",
           "propagation", "weight_histograms", "measured_phase", "phase_diagram"]

# Every setting of a run's config that changes the network before the first training step.
INIT_KEYS = ("model.arch", "model.activation", "model.depth", "model.width", "model.kernel_size",
             "model.initializer", "model.init_params")
ALL_RUNS = "all runs"  # the one group when no setting in INIT_KEYS varies
# Architectures whose hidden layers are dense, the networks the mean-field recursion describes.
MEANFIELD_ARCHS = frozenset({"mlp"})
_SATURATING = ("tanh", "hardtanh", "softsign", "erf", "sigmoid")  # activations with an ordered/chaotic transition


def init_settings(config: dict[str, Any]) -> dict[str, str]:
    """A run's settings that matter at initialization, each as a label string.

    Args:
        config: The run's resolved config (``config_json`` of the store, parsed).

    Returns:
        Dotted key of :data:`INIT_KEYS` -> value (dicts as sorted JSON).
    """
    model = config.get("model", {})
    out = {}
    for key in INIT_KEYS:
        v = model.get(short_key(key))
        out[key] = json.dumps(v, sort_keys=True, default=str) if isinstance(v, dict) else \
            (f"{v:g}" if isinstance(v, float) else str(v))
    return out


def init_groups(configs: Sequence[dict[str, Any]], *, without: Iterable[str] = ()) -> list[str]:
    """Group runs by what makes them differ at initialization: one label per run.

    Args:
        configs: The runs' resolved configs.
        without: Keys of :data:`INIT_KEYS` the caller shows another way (a panel per activation,
            only the deepest networks) and leaves out of the labels.

    Returns:
        For each run, ``"initializer=..., width=..."`` over the settings of :data:`INIT_KEYS` that
        vary across ``configs`` (short keys, in :data:`INIT_KEYS` order); :data:`ALL_RUNS` for
        every run when none varies. Settings outside :data:`INIT_KEYS` never enter a label.
    """
    settings = [init_settings(c) for c in configs]
    skip = set(without)
    varying = [k for k in INIT_KEYS if k not in skip and len({s[k] for s in settings}) > 1]
    if not varying:
        return [ALL_RUNS] * len(settings)
    return [", ".join(f"{short_key(k)}={s[k]}" for k in varying) for s in settings]


def _configs(an: Analysis) -> pd.Series:
    """run_id -> parsed config of the analysis's chosen runs."""
    return pd.Series([json.loads(c) for c in an.finals["config_json"]], index=an.finals["run_id"].to_numpy())


def initializer_varies(an: Analysis) -> bool:
    """Whether the study's chosen runs use more than one initializer (name or parameters)."""
    groups = init_groups([c for c in _configs(an) if "init_params" in c["model"]], without=[k for k in INIT_KEYS if k not in
                                                      ("model.initializer", "model.init_params")])
    return len(set(groups)) > 1


def meanfield_applies(an: Analysis) -> bool:
    """Whether the deepest networks of the study are plain dense stacks, where the mean-field prediction holds."""
    cfg = list(_configs(an))
    if not cfg:
        return False
    deepest = max(c["model"].get("depth", 0) for c in cfg)  # the classic pipeline has no depth
    return all(c["model"]["arch"] in MEANFIELD_ARCHS for c in cfg if c["model"].get("depth", 0) == deepest)


def _at_init(an: Analysis) -> pd.DataFrame | None:
    """Per-layer records at epoch 0 of the deepest chosen runs, with their architecture, activation, depth,
    panel label and :func:`init_groups` label; None if no layer was measured at initialization."""
    lay = an.layers
    if lay.empty or "sigma_w2" not in lay or lay["sigma_w2"].isna().all():
        return None
    cfg = _configs(an)
    init = lay[(lay["epoch"] == 0) & lay["run_id"].isin(cfg.index)]
    if init.empty:
        return None
    cfg = cfg[cfg.index.isin(init["run_id"])]  # runs with layers (not the classic pipeline)
    depth = cfg.map(lambda c: c["model"]["depth"])
    runs = depth.index[depth == depth.max()]
    init = init[init["run_id"].isin(runs)]
    group = dict(zip(runs, init_groups(list(cfg[runs]), without=("model.arch", "model.activation", "model.depth"))))
    model = {r: cfg[r]["model"] for r in runs}
    ids = init["run_id"]
    return init.assign(_group=ids.map(group), _arch=ids.map(lambda r: model[r]["arch"]),
                       _act=ids.map(lambda r: model[r]["activation"]), _depth=ids.map(lambda r: model[r]["depth"]),
                       _panel=ids.map(lambda r: f"arch={model[r]['arch']}, activation={model[r]['activation']}, "
                                                f"depth={model[r]['depth']}"))


def propagation_groups(an: Analysis) -> list[str]:
    """The line labels of :func:`propagation`, in drawing order; empty when it draws nothing."""
    init = _at_init(an)
    return [] if init is None else list(dict.fromkeys(init["_group"]))


def _meanfield_line(act: str, m: pd.DataFrame) -> list[float]:
    """Pre-activation std per layer predicted by the length map from the first layer's and each layer's sigmas."""
    from ponder.theory.meanfield import expect

    q = float(m["preact_std"].iloc[0]) ** 2
    pred = [math.sqrt(q)]
    for k in range(1, len(m)):
        q = float(m["sigma_w2"].iloc[k]) * expect(act, q) + float(m["sigma_b2"].iloc[k])
        pred.append(math.sqrt(q) if q > 0 and math.isfinite(q) else np.nan)
    return pred


def propagation(an: Analysis, path: Path, *, max_panels: int = 4) -> Path | None:
    """Per-layer pre-activation std and weight-gradient norm at initialization in the deepest networks.

    A panel per (architecture, activation); a line per group of :func:`init_groups` (mean over the
    group's runs, seeds included); dotted, for dense stacks only, the mean-field prediction from
    each layer's measured sigma_w^2 and sigma_b^2.

    Args:
        an: The study's analysis.
        path: Where to write the PNG.
        max_panels: The most (architecture, activation) panels drawn.

    Returns:
        ``path``, or None when no layer was measured at initialization.
    """
    init = _at_init(an)
    if init is None or init.empty:
        return None
    panels = list(dict.fromkeys(init["_panel"]))[:max_panels]
    order = list(dict.fromkeys(init["_group"]))
    fig, axes = plt.subplots(2, len(panels), figsize=(5.2 * len(panels), 7.5), squeeze=False)
    for j, panel in enumerate(panels):
        rows = init[init["_panel"] == panel]
        predict, act = rows["_arch"].iloc[0] in MEANFIELD_ARCHS, rows["_act"].iloc[0]
        for lvl, gl in rows.groupby("_group", sort=False):
            i = order.index(lvl)
            m = gl.groupby("layer")[["preact_std", "grad_norm", "sigma_w2", "sigma_b2"]].mean().reset_index()
            st, mk = style(i), "os^v"[(i // len(PALETTE)) % 4]
            axes[0, j].plot(m["layer"] + 1, m["preact_std"], marker=mk, ms=3, label=text(lvl), **st)
            axes[1, j].plot(m["layer"] + 1, m["grad_norm"], marker=mk, ms=3, label=text(lvl), **st)
            if predict:
                axes[0, j].plot(m["layer"] + 1, _meanfield_line(act, m), color=st["color"], lw=0.7, ls=":", alpha=0.9)
        for r, label in ((0, "pre-activation std"), (1, "weight gradient norm")):
            axes[r, j].set_yscale("log")
            axes[r, j].set_xlabel("layer")
            axes[r, j].set_ylabel(label)
            axes[r, j].grid(alpha=0.3)
        note = "\n(dotted: mean-field prediction)" if predict else ""
        axes[0, j].set_title(f"at initialization: {text(panel)}{note}", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, max(1, len(labels))), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.03 + 0.025 * (len(labels) // 6), 1, 1))
    return save(fig, path, 120)


def weight_histograms(an: Analysis, path: Path) -> Path:
    """One draw of each initializer of the study on a 64 x 64 layer, in units of 1/sqrt(fan_in).

    A panel per (initializer, its parameters, and the activation where that varies, since
    data-dependent initializers read it); the architecture, depth and width do not enter.

    Args:
        an: The study's analysis.
        path: Where to write the PNG.

    Returns:
        ``path``.
    """
    import torch

    from ponder import registry
    from ponder.catalog.initializers.base import dense_forward, init_network, parse_init

    cfg = [c for c in _configs(an) if "init_params" in c["model"]]  # not the classic pipeline: it has no weights
    labels = init_groups(cfg, without=("model.arch", "model.depth", "model.width", "model.kernel_size"))
    panels = {lbl: c["model"] for lbl, c in zip(labels, cfg)}  # one config per panel
    cols = 4
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.2 * rows), squeeze=False)
    x = torch.randn(256, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for k, (lbl, m) in enumerate(panels.items()):
        ax = axes[k // cols, k % cols]
        name, params = parse_init(m["initializer"])
        fwd = dense_forward(x, registry.get("activation", m["activation"]).fn)
        (w, _), _ = init_network(name, [(64, 64), (64, 64)], generator=torch.Generator().manual_seed(0), dtype=torch.float64,
                                 context={"activation": m["activation"], "forward": fwd}, **{**m["init_params"], **params})
        v = (w.flatten() * 8.0).numpy()  # times sqrt(fan_in) = 8
        ax.hist(v, bins=50, color=PALETTE[k % len(PALETTE)])
        ax.set_title(text(lbl), fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_yticks([])
    for k in range(len(panels), rows * cols):
        axes[k // cols, k % cols].axis("off")
    fig.tight_layout()
    return save(fig, path, 110)


def measured_phase(an: Analysis, path: Path) -> Path | None:
    """The phase diagram of the deepest dense networks' activation, with each initialization group's measured
    sigma_w^2 (mean over the hidden layers at init and over the group's runs) marked trained / did not train.

    Args:
        an: The study's analysis.
        path: Where to write the PNG.

    Returns:
        ``path``, or None without measurements at initialization or without dense networks.
    """
    init = _at_init(an)
    if init is None:
        return None
    hidden = init[init["act_std"].notna() & init["_arch"].isin(MEANFIELD_ARCHS)]
    if hidden.empty:
        return None
    acts = list(dict.fromkeys(hidden["_act"]))
    chosen = next((a for a in acts if a in _SATURATING), acts[0])
    sel = hidden[hidden["_act"] == chosen]
    per_run = sel.groupby("run_id").agg(s2=("sigma_w2", "mean"), group=("_group", "first"), depth=("_depth", "first"))
    acc = an.finals.set_index("run_id")["test_acc"]
    points = []
    for _, g in per_run.groupby("group", sort=False):
        s2 = float(g["s2"].mean())
        if not np.isfinite(s2) or s2 <= 0:
            continue
        trained = bool((acc[g.index] > an.chance + 0.05).mean() > 0.5)
        points.append((min(s2, 4.0), float(g["depth"].iloc[0]), trained))
    if not points:
        return None
    sb2 = float(sel["sigma_b2"].median())
    return phase_diagram(chosen, path, sigma_b2=sb2 if np.isfinite(sb2) else 0.0, measured=points)


def phase_diagram(activation: str, path: Path, *, sigma_b2: float = 0.05, measured=None) -> Path:
    """Order/chaos phase diagram of an activation: chi_1 over (sigma_w^2, sigma_b^2) with the critical
    line, and the depth scale 6 xi_c (trainable depth) against sigma_w^2 at ``sigma_b2``.

    Args:
        activation: Catalog name of the activation.
        path: Where to write the PNG.
        sigma_b2: The bias variance of the depth panel.
        measured: Optional rows (sigma_w2, depth, trained: bool) drawn over the depth panel.

    Returns:
        ``path``.
    """
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    _chi1_panel(fig, a1, activation)
    _depth_panel(a2, activation, sigma_b2, measured)
    fig.tight_layout()
    return save(fig, path, 130)


@lru_cache(maxsize=8)
def _chi1_grid(activation: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    """chi_1 on a (sigma_b^2, sigma_w^2) grid, clipped at 3, and the critical line as (sigma_w^2, sigma_b^2) points.

    Cached: the quadratures take about a minute for a saturating activation, and every report
    of a study with that activation draws the same grid.
    """
    from ponder import registry
    from ponder.cache import cached_arrays

    sw = np.linspace(0.25, 4.0, 30)
    sb = np.linspace(0.0, 1.0, 13)
    got = cached_arrays("chi1_grid", {"activation": activation, "identity": registry.get("activation", activation).identity,
                                      "sw": sw.tolist(), "sb": sb.tolist()}, lambda: _compute_chi1_grid(activation, sw, sb))
    return sw, sb, got["grid"], tuple(map(tuple, got["crit"].tolist()))


def _compute_chi1_grid(activation: str, sw: np.ndarray, sb: np.ndarray) -> dict[str, np.ndarray]:
    from ponder.theory.meanfield import chi1, critical_sigma_w2

    grid = np.array([[min(chi1(activation, w, b), 3.0) for w in sw] for b in sb])
    crit = []
    for b in sb:
        try:
            crit.append((critical_sigma_w2(activation, float(b)), b))
        except Exception:  # no critical point at this sigma_b^2: the line has a gap there
            continue
    return {"grid": grid, "crit": np.array(crit, dtype=float).reshape(-1, 2)}


@lru_cache(maxsize=32)
def _depth_curve(activation: str, sigma_b2: float) -> tuple[np.ndarray, list[float]]:
    """The trainable depth 6 xi_c on a sigma_w^2 grid at ``sigma_b2`` (cached like :func:`_chi1_grid`)."""
    from ponder import registry
    from ponder.cache import cached_arrays
    from ponder.theory.meanfield import depth_scales

    sw2 = np.linspace(0.05, 4.0, 50)

    def compute() -> dict[str, np.ndarray]:
        depth = [6 * xi if math.isfinite(xi := depth_scales(activation, float(w), sigma_b2)[1]) else np.nan for w in sw2]
        return {"depth": np.array(depth, dtype=float)}

    got = cached_arrays("depth_curve", {"activation": activation, "sigma_b2": sigma_b2,
                                        "identity": registry.get("activation", activation).identity}, compute)
    return sw2, got["depth"].tolist()


def _chi1_panel(fig, ax, activation: str) -> None:
    """chi_1 over the (sigma_w^2, sigma_b^2) plane with the critical line chi_1 = 1."""
    sw, sb, grid, crit = _chi1_grid(activation)
    im = ax.pcolormesh(sw, sb, grid, cmap="cividis", shading="auto", vmin=0, vmax=2)
    fig.colorbar(im, ax=ax, label="chi_1 (clipped)")
    if crit:
        ax.plot([c[0] for c in crit], [c[1] for c in crit], color=PALETTE[1], lw=2, label="critical line chi_1 = 1")
        ax.legend(loc="upper left", fontsize=8)
    ax.set_xlabel("sigma_w^2")
    ax.set_ylabel("sigma_b^2")
    ax.set_title(f"{text(activation)}: ordered (chi_1 < 1) | chaotic (chi_1 > 1)")


def _depth_panel(ax, activation: str, sigma_b2: float, measured) -> None:
    """The trainable depth 6 xi_c against sigma_w^2, with measured (sigma_w^2, depth, trained) points."""
    sw2, depth = _depth_curve(activation, float(sigma_b2))
    ax.plot(sw2, depth, color=PALETTE[0], lw=2, label="6 xi_c (trainable depth)")
    if measured is not None and len(measured):
        ok = [(w, d) for w, d, t in measured if t]
        bad = [(w, d) for w, d, t in measured if not t]
        if ok:
            ax.scatter(*zip(*ok), color=PALETTE[2], marker="o", label="trained", zorder=3)
        if bad:
            ax.scatter(*zip(*bad), color=PALETTE[3], marker="x", label="did not train", zorder=3)
    ax.set_yscale("log")
    ax.set_xlabel("sigma_w^2")
    ax.set_ylabel("depth (layers)")
    ax.set_title(f"depth scale at sigma_b^2 = {sigma_b2:g}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
