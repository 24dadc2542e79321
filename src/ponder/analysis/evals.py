"""Analyses beyond the final metric: epochs to fit, robustness to input shift, the loss along
lines in parameter space, fine-tuning with a second loss, and stability over random draws of
the other hyperparameters. Each returns a table and, where it has one, a computed sentence.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from ponder.lazy import stats  # scipy.stats, loaded on first use

from ponder.analysis.stats import estimate

__all__ = ["FIT_THRESHOLD", "CONVEX_TOL", "epochs_to_fit", "fit_sentence", "shift_table", "shift_sentence",
           "convexity_table", "convexity_sentence", "schedule_effect", "schedule_sentence", "stability_table",
           "stability_ranking", "stability_sentence", "ScheduleEffect"]

FIT_THRESHOLD = 0.99  # a run has fit its training labels when its train accuracy reaches this
CONVEX_TOL = 1e-3  # a rise above the chord smaller than this fraction of the higher end is rounding


def chord_gap(losses) -> tuple[float, float]:
    """(largest rise of the loss above the chord joining its ends, largest rise above the higher end).

    Both are >= 0. For a function convex along the line the first is 0 (up to rounding); the
    second is the barrier between the two ends (0 when the path never climbs above them).
    """
    import numpy as np

    v = np.asarray(losses, dtype=float)
    a = np.linspace(0, 1, len(v))
    chord = (1 - a) * v[0] + a * v[-1]
    return float(max(0.0, np.max(v - chord))), float(max(0.0, np.max(v) - max(v[0], v[-1])))



def epochs_to_fit(epochs: pd.DataFrame, chosen: pd.DataFrame, threshold: float = FIT_THRESHOLD) -> pd.DataFrame:
    """Per arm: how many runs reached ``threshold`` train accuracy, and the median first epoch they did.

    Runs with a single epoch row (the classical baselines, which have no epochs) are left out.
    Columns: arm, runs, fitted, median_epoch, max_epoch.
    """
    e = epochs.merge(chosen[["run_id", "arm"]], on="run_id")
    rows = []
    for arm, g in e.groupby("arm", sort=False):
        if g.groupby("run_id").size().max() < 2:
            continue
        firsts, last = [], int(g["epoch"].max())
        for _, r in g.groupby("run_id"):
            hit = r.loc[(r["epoch"] > 0) & (r["train_acc"] >= threshold), "epoch"]
            firsts.append(int(hit.min()) if len(hit) else None)
        done = [f for f in firsts if f is not None]
        rows.append({"arm": arm, "runs": len(firsts), "fitted": len(done),
                     "median_epoch": float(np.median(done)) if done else math.nan, "max_epoch": last})
    return pd.DataFrame(rows, columns=["arm", "runs", "fitted", "median_epoch", "max_epoch"])


def fit_sentence(table: pd.DataFrame, threshold: float = FIT_THRESHOLD) -> str:
    if table.empty:
        return ""
    full = table[table["fitted"] == table["runs"]]
    none = table[table["fitted"] == 0]
    out = f"{len(full)} of {len(table)} arms fit their training labels ({100 * threshold:.0f}% train accuracy) in every run"
    if len(full) > 1 and full["median_epoch"].nunique() > 1:
        slow = full.sort_values("median_epoch").iloc[-1]
        fast = full.sort_values("median_epoch").iloc[0]
        out += (f", fastest '{fast['arm']}' (median epoch {fast['median_epoch']:g}), slowest '{slow['arm']}' "
                f"(median epoch {slow['median_epoch']:g})")
    elif len(full) > 1:
        out += f", all at median epoch {full['median_epoch'].iloc[0]:g}"
    elif len(full) == 1:
        out += f" ('{full['arm'].iloc[0]}', median epoch {full['median_epoch'].iloc[0]:g})"
    if len(none):
        out += f"; {len(none)} never did within {int(none['max_epoch'].max())} epochs"
    return out + "."


def shift_table(evals: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """Mean test accuracy (95% t CI over seeds) of each arm under each shift; level 'none' is the clean test set.

    Columns: arm, kind, level, mean, lo, hi, n, clean (the arm's clean test accuracy).
    """
    s = evals[evals["probe"] == "shift"].merge(chosen[["run_id", "arm", "test_acc"]], on="run_id")
    rows = []
    for (arm, kind, level), g in s.groupby(["arm", "kind", "level"], sort=False):
        est = estimate(g["value"].to_numpy())
        rows.append({"arm": arm, "kind": kind, "level": float(level), "mean": est.mean, "lo": est.lo, "hi": est.hi,
                     "n": len(g), "clean": float(g["test_acc"].mean())})
    return pd.DataFrame(rows, columns=["arm", "kind", "level", "mean", "lo", "hi", "n", "clean"])


def _describe_shift(kind: str, level: float) -> str:
    return {"noise": f"Gaussian noise of {level:g} input std", "translation": f"a shift by {level:g} samples",
            "scaling": f"scaling by {level:g}"}[kind]


def shift_sentence(table: pd.DataFrame) -> str:
    """Which arm loses most and least under the strongest level of each shift."""
    if table.empty:
        return ""
    parts = []
    for kind, g in table.groupby("kind", sort=False):
        level = g.loc[(g["level"] - (1.0 if kind == "scaling" else 0.0)).abs().idxmax(), "level"]
        at = g[g["level"] == level].assign(drop=lambda d: d["clean"] - d["mean"])
        worst, best = at.sort_values("drop").iloc[-1], at.sort_values("drop").iloc[0]
        parts.append(f"under {_describe_shift(kind, level)} '{worst['arm']}' loses most "
                     f"({100 * worst['drop']:.1f} points, to {100 * worst['mean']:.1f}%) and '{best['arm']}' least "
                     f"({100 * best['drop']:.1f} points, to {100 * best['mean']:.1f}%)")
    return "Away from the test distribution (lab vs real world): " + "; ".join(parts) + "."


def convexity_table(evals: pd.DataFrame, chosen: pd.DataFrame, tol: float = CONVEX_TOL) -> pd.DataFrame:
    """Per arm: the loss along init->trained lines and between two trained solutions.

    Columns: arm, lines, convex (lines whose loss never rises above the chord by more than ``tol``
    of the higher end), monotone (lines from init whose loss never rises on the way),
    mean_gap (mean largest rise above the chord, relative), pairs, barriers (pairs whose loss rises
    above both ends by more than ``tol``), mean_barrier (relative to the higher end).
    """
    e = evals[evals["probe"].isin(["line_init", "line_pair"])].merge(chosen[["run_id", "arm"]], on="run_id")
    rows = []
    for arm, g in e.groupby("arm", sort=False):
        row = {"arm": arm, "lines": 0, "convex": 0, "monotone": 0, "mean_gap": math.nan, "pairs": 0, "barriers": 0,
               "mean_barrier": math.nan}
        gaps, bars = [], []
        for (probe, _), line in g.sort_values("level").groupby(["probe", "run_id"]):
            v = line["value"].to_numpy()
            if not np.all(np.isfinite(v)):
                continue
            top = max(abs(v[0]), abs(v[-1]), 1e-12)
            gap, barrier = chord_gap(v)
            if probe == "line_init":
                row["lines"] += 1
                row["convex"] += gap <= tol * top
                row["monotone"] += bool(np.all(np.diff(v) <= tol * top))
                gaps.append(gap / top)
            else:
                row["pairs"] += 1
                row["barriers"] += barrier > tol * top
                bars.append(barrier / top)
        row["mean_gap"] = float(np.mean(gaps)) if gaps else math.nan
        row["mean_barrier"] = float(np.mean(bars)) if bars else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["arm", "lines", "convex", "monotone", "mean_gap", "pairs", "barriers", "mean_barrier"])


def convexity_sentence(table: pd.DataFrame, factor_levels: dict[str, str]) -> str:
    """Totals per level of the loss factor (``factor_levels``: arm -> loss name), then the verdict."""
    if table.empty or table["lines"].sum() == 0:
        return ""
    t = table.assign(loss=table["arm"].map(factor_levels).fillna("all"))
    parts = []
    for loss, g in t.groupby("loss", sort=False):
        parts.append(f"{loss}: the loss stayed under its chord on {int(g['convex'].sum())} of {int(g['lines'].sum())} "
                     f"lines from initial to trained weights and rose above both ends between "
                     f"{int(g['barriers'].sum())} of {int(g['pairs'].sum())} pairs of solutions")
    ce = t[t["loss"] == "cross_entropy"]
    verdict = ""
    if len(ce) and (ce["lines"].sum() > ce["convex"].sum() or ce["barriers"].sum() > 0):
        verdict = (" A function convex in the weights can do neither, so cross-entropy does not make training convex: "
                   "it is convex in the logits, not in the weights of a network with hidden layers.")
    elif len(ce):
        verdict = (" Along these lines cross-entropy behaved convexly; lines are a necessary test only, "
                   "so this does not show convexity in all directions.")
    return "Convexity probe (loss along straight lines in weight space): " + "; ".join(parts) + "." + verdict


@dataclass
class ScheduleEffect:
    """A loss schedule 'a>b' against the plain first loss 'a', paired over seeds and conditions."""

    schedule: str
    base: str
    n: int
    diff: float
    lo: float
    hi: float
    p: float


def schedule_effect(chosen: pd.DataFrame, factor: str, col: str) -> list[ScheduleEffect]:
    """For every level 'a>b' of ``factor`` whose first loss 'a' is also a level: the mean paired
    difference (schedule - plain) of ``col`` over blocks (seed x other factor levels), with a t CI."""
    levels = chosen["arm_json"].map(json.loads)
    lv = levels.map(lambda d: str(d.get(factor)))
    block = [json.dumps({k: v for k, v in d.items() if k != factor}, sort_keys=True) + f"|{s}"
             for d, s in zip(levels, chosen["seed"])]
    df = pd.DataFrame({"level": lv, "block": block, "v": chosen[col].astype(float)})
    out = []
    for sched in sorted({x for x in lv if ">" in x}):
        base = sched.split(">")[0]
        if base not in set(lv):
            continue
        a = df[df["level"] == sched].set_index("block")["v"]
        b = df[df["level"] == base].set_index("block")["v"]
        both = a.index.intersection(b.index)
        d = (a.loc[both] - b.loc[both]).to_numpy()
        d = d[np.isfinite(d)]
        if len(d) < 2:
            continue
        est = estimate(d)
        p = float(stats.ttest_1samp(d, 0.0).pvalue) if np.std(d) > 0 else (1.0 if np.mean(d) == 0 else 0.0)
        out.append(ScheduleEffect(sched, base, len(d), est.mean, est.lo, est.hi, p))
    return out


def schedule_sentence(effects: list[ScheduleEffect], metric: str) -> str:
    parts = []
    for e in effects:
        unit = (lambda v: f"{100 * v:+.1f} points") if metric == "accuracy" else (lambda v: f"{v:+.4f}")
        sig = "significant" if e.p < 0.05 else "not significant"
        parts.append(f"switching from {e.base} to {e.schedule.split('>')[1]} part-way ('{e.schedule}', as Golik et al. "
                     f"2013 fine-tune) changes test {metric} by {unit(e.diff)} on average (95% CI {unit(e.lo)} to "
                     f"{unit(e.hi)}, {e.n} paired blocks, t-test p = {e.p:.2g}, {sig})")
    return ("Fine-tuning: " + "; ".join(parts) + ".") if parts else ""


def stability_table(final: pd.DataFrame, col: str, chance: float, margin: float) -> pd.DataFrame:
    """The distribution over hyperparameter configurations (tuned grid x search draws) of each arm.

    Each configuration's value is its mean over seeds. Columns: arm, configs, mean, median, q25,
    q75, worst, best, trained (configurations whose mean beats chance by more than ``margin``).
    """
    per = final.groupby(["arm", "tuned_json"], sort=False)[col].mean().reset_index()
    rows = []
    for arm, g in per.groupby("arm", sort=False):
        v = g[col].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        if not len(v):
            continue
        rows.append({"arm": arm, "configs": len(v), "mean": float(v.mean()), "median": float(np.median(v)),
                     "q25": float(np.quantile(v, 0.25)), "q75": float(np.quantile(v, 0.75)), "worst": float(v.min()),
                     "best": float(v.max()), "trained": int((v > chance + margin).sum())})
    return pd.DataFrame(rows, columns=["arm", "configs", "mean", "median", "q25", "q75", "worst", "best", "trained"])


def stability_ranking(final: pd.DataFrame, focus: str, col: str, higher: bool = True):
    """Friedman + Nemenyi of the focus factor's levels over blocks = configurations x other factors
    (each cell the mean over seeds): who wins across random hyperparameters, not only at the best."""
    from ponder.analysis.rank import friedman_nemenyi

    levels = final["arm_json"].map(json.loads)
    item = levels.map(lambda d: str(d.get(focus)))
    draws = final["tuned_json"].map(lambda t: json.dumps({k: v for k, v in json.loads(t).items()}, sort_keys=True))
    block = [f"{t}|" + json.dumps({k: v for k, v in d.items() if k != focus}, sort_keys=True) for t, d in zip(draws, levels)]
    table = pd.DataFrame({"item": item, "block": block, "v": final[col].astype(float)}).pivot_table(
        index="block", columns="item", values="v", aggfunc="mean")
    if table.shape[1] < 3 or table.dropna().shape[0] < 2:
        return None
    return friedman_nemenyi(table, higher_is_better=higher)


def stability_sentence(table: pd.DataFrame, ranking, focus: str) -> str:
    if table.empty:
        return ""
    by_median = table.sort_values("median", ascending=False)
    top, bottom = by_median.iloc[0], by_median.iloc[-1]
    widest = table.assign(iqr=table["q75"] - table["q25"]).sort_values("iqr").iloc[-1]
    out = (f"Over {int(table['configs'].max())} random draws of the other hyperparameters, '{top['arm']}' has the best "
           f"median ({100 * top['median']:.1f}%) and '{bottom['arm']}' the worst ({100 * bottom['median']:.1f}%); "
           f"'{widest['arm']}' is the least stable (interquartile range {100 * widest['q25']:.1f}% to "
           f"{100 * widest['q75']:.1f}%)")
    if ranking is not None:
        best = sorted(ranking.mean_ranks.items(), key=lambda kv: kv[1])[:3]
        out += (f"; ranked over draws and conditions (Friedman p = {ranking.p_value:.2g}), the best mean ranks of "
                f"{focus.split('.', 1)[-1]} are " + ", ".join(f"'{k}' {v:.2f}" for k, v in best))
    return out + "."
