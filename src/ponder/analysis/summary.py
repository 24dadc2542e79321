"""A study's analysis: tuned-setting selection, per-arm estimates, paired tests, the answer."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ponder.analysis.stats import Comparison, Estimate, estimate, holm, paired, wilcoxon_floor
from ponder.errors import PonderError
from ponder.store import Store
from ponder.study.spec import METRICS

__all__ = ["Analysis", "analyze", "ArmResult", "CHANCE_MARGIN", "ALPHA"]

ALPHA = 0.05
CHANCE_MARGIN = 0.05  # a run "did not train" when its final test accuracy <= chance + 5 points


@dataclass
class ArmResult:
    """One arm at its tuned setting."""

    arm: str
    levels: dict[str, Any]
    tuned: dict[str, Any]
    test: Estimate
    train: Estimate
    n_runs: int
    n_diverged: int
    n_chance: int
    rank: int = 0


@dataclass
class Analysis:
    """Everything a report shows, computed from the store."""

    study: dict[str, Any]
    metric: str
    arms: list[ArmResult]
    comparisons: list[Comparison]
    reference: str
    answer: str
    warnings: list[str]
    curves: pd.DataFrame  # arm, epoch, split, mean, lo, hi
    finals: pd.DataFrame  # one row per run at the chosen setting
    pending: int
    layers: pd.DataFrame = field(default_factory=pd.DataFrame)
    focus: str = ""
    conditions: list = field(default_factory=list)
    interaction: str = ""
    sigma_w2: dict = field(default_factory=dict)  # arm -> mean effective sigma_w^2 of the hidden layers at init
    chance: float = 0.0
    ropes: dict = field(default_factory=dict)  # other arm -> Rope against the reference
    ranking: object = None  # rank.Ranking of the focus factor (or of all arms), when >= 3 levels
    groups: list = field(default_factory=list)  # equivalence groups by the critical difference
    effects: dict = field(default_factory=dict)  # other arm -> {"dz_lo", "dz_hi", "cliffs_delta"} against the reference
    rope_groups: list = field(default_factory=list)  # groups of practically equivalent levels (Bayesian, ROPE)
    fit: pd.DataFrame = field(default_factory=pd.DataFrame)  # epochs to fit the training labels, per arm
    shift: pd.DataFrame = field(default_factory=pd.DataFrame)  # accuracy under input shift, per arm x kind x level
    convexity: pd.DataFrame = field(default_factory=pd.DataFrame)  # loss along lines in weight space, per arm
    lines: pd.DataFrame = field(default_factory=pd.DataFrame)  # the raw line losses of the chosen runs
    schedule: list = field(default_factory=list)  # evals.ScheduleEffect per loss schedule
    stability: pd.DataFrame = field(default_factory=pd.DataFrame)  # spread over hyperparameter draws, per arm
    stability_rank: object = None  # rank.Ranking of the focus factor over draws x conditions
    draws: pd.DataFrame = field(default_factory=pd.DataFrame)  # arm, tuned_json, value (mean over seeds), every setting


def _final_rows(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    last = epochs.sort_values("epoch").groupby("run_id").tail(1).set_index("run_id")
    df = runs.set_index("run_id").join(last, how="inner")
    return df.reset_index()


def _select(final: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per arm, keep the tuned setting with the best mean validation metric over seeds."""
    col = "val_acc" if metric == "accuracy" else "val_loss"
    sign = 1.0 if METRICS[metric] == "max" else -1.0
    score = final.assign(_s=sign * final[col].astype(float)).fillna({"_s": -math.inf})
    best = score.groupby(["arm", "tuned_json"])["_s"].mean().reset_index()
    best = best.sort_values("_s", ascending=False, kind="stable").groupby("arm").head(1)
    keep = set(zip(best["arm"], best["tuned_json"]))
    return final[[(a, t) in keep for a, t in zip(final["arm"], final["tuned_json"])]].copy()


def _curves(chosen: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    e = epochs.merge(chosen[["run_id", "arm"]], on="run_id")
    rows = []
    for (arm, ep), g in e.groupby(["arm", "epoch"]):
        for split in ("train", "val", "test"):
            est = estimate(g[f"{split}_acc"].to_numpy())
            rows.append({"arm": arm, "epoch": int(ep), "split": split, "mean": est.mean, "lo": est.lo, "hi": est.hi})
    return pd.DataFrame(rows, columns=["arm", "epoch", "split", "mean", "lo", "hi"])


def analyze(store: Store, name: str) -> Analysis:
    """Analyze study ``name`` from the store.

    Raises:
        NotFound: the study is not in the store.
        PonderError: no run of the study has finished yet.
    """
    study = store.study(name)
    spec = study["spec"]
    metric = spec["metrics"][0]
    runs = store.runs(name)
    pending = int((runs["status"] == "pending").sum())
    done = runs[runs["status"].isin(["ok", "diverged"])]
    if done.empty:
        raise PonderError(f"study {name!r} has no finished runs in store {store.path!r}; run it first (ponder run {name})")
    epochs = store.epochs(name)
    final = _final_rows(done, epochs)
    chosen = _select(final, metric)
    n_classes = _n_classes(chosen)
    chance = 1.0 / n_classes if n_classes else 0.0
    col = "test_acc" if metric == "accuracy" else "test_loss"
    sign = 1.0 if METRICS[metric] == "max" else -1.0

    arms: list[ArmResult] = []
    arm_order = list(dict.fromkeys(runs["arm"]))  # plan order
    for arm in arm_order:
        g = chosen[chosen["arm"] == arm]
        if g.empty:
            continue
        arms.append(ArmResult(arm, json.loads(g["arm_json"].iloc[0]), json.loads(g["tuned_json"].iloc[0]),
                              estimate(g[col].to_numpy()), estimate(g["train_acc"].to_numpy()), len(g),
                              int((g["status"] == "diverged").sum()), int((g["test_acc"] <= chance + CHANCE_MARGIN).sum())))
    ranked = sorted(arms, key=lambda a: -sign * a.test.mean if np.isfinite(a.test.mean) else math.inf)
    for i, a in enumerate(ranked, 1):
        a.rank = i
    ref_name = spec.get("reference")
    ref = next((a for a in arms if ref_name is not None and any(str(v) == ref_name for v in a.levels.values())), ranked[0])
    by_seed = {a.arm: chosen[chosen["arm"] == a.arm].set_index("seed")[col] for a in arms}
    comps = []
    for a in arms:
        if a.arm == ref.arm:
            continue
        both = by_seed[ref.arm].index.intersection(by_seed[a.arm].index)
        comps.append(paired(ref.arm, by_seed[ref.arm].loc[both].to_numpy(), a.arm, by_seed[a.arm].loc[both].to_numpy()))
    adj = holm([c.t_p for c in comps])
    comps = [Comparison(**{**c.__dict__, "p_holm": p}) for c, p in zip(comps, adj)]

    warnings = _warnings(spec, chosen, pending)
    layers = store.layers(name)
    layers = layers.merge(chosen[["run_id", "arm"]], on="run_id") if len(layers) else layers
    from ponder.analysis.answer import answer_sentence

    ropes = {}
    if metric == "accuracy":
        from ponder.analysis.rank import rope_test

        for a in arms:
            if a.arm != ref.arm:
                both = by_seed[ref.arm].index.intersection(by_seed[a.arm].index)
                ropes[a.arm] = rope_test(by_seed[ref.arm].loc[both].to_numpy(), by_seed[a.arm].loc[both].to_numpy(),
                                         rope=float(spec.get("rope", 0.01)))
    from ponder.analysis.rank import cliffs_delta, dz_ci

    effects = {}
    for a in arms:
        if a.arm != ref.arm:
            both = by_seed[ref.arm].index.intersection(by_seed[a.arm].index)
            x, y = by_seed[ref.arm].loc[both].to_numpy(), by_seed[a.arm].loc[both].to_numpy()
            lo, hi = dz_ci(y - x)
            effects[a.arm] = {"dz_lo": lo, "dz_hi": hi, "cliffs_delta": cliffs_delta(x, y)}
    ranking, groups, rgroups = _ranking(chosen, spec, col, sign > 0, rope=float(spec.get("rope", 0.01)))
    text = answer_sentence(spec, metric, arms, ref, comps, chosen, ropes, ranking)
    focus, conds, inter = "", [], ""
    if len(spec.get("factors", {})) >= 2 and metric == "accuracy":
        from ponder.analysis.interaction import interaction_sentence, interactions

        focus, conds = interactions(chosen, spec["factors"], chance, CHANCE_MARGIN)
        inter = interaction_sentence(focus, conds)
        text = f"{text} {inter}"
    if rgroups:
        text += " Practically equivalent (every pair within {:g} points, Bayesian signed-rank P >= 0.95): {}.".format(
            100 * float(spec.get("rope", 0.01)), "; ".join("[" + ", ".join(g) + "]" for g in rgroups))
    extra, more = _beyond(store, name, spec, metric, epochs, final, chosen, col, chance, sign > 0)
    text = " ".join([text, *(s for s in more if s)])
    return Analysis(study, metric, arms, comps, ref.arm, text, warnings, _curves(chosen, epochs), chosen, pending, layers,
                    focus, conds, inter, _sigma_w2(layers), chance, ropes, ranking, groups, effects,
                    rope_groups=rgroups, **extra)


def _beyond(store: Store, name: str, spec: dict[str, Any], metric: str, epochs: pd.DataFrame, final: pd.DataFrame,
            chosen: pd.DataFrame, col: str, chance: float, higher: bool) -> tuple[dict[str, Any], list[str]]:
    """Epochs to fit, input shift, convexity, loss schedules and stability: tables and sentences."""
    from ponder.analysis import evals as ev

    factors = spec.get("factors", {})
    out: dict[str, Any] = {}
    sentences: list[str] = []
    if "dataset.label_noise" in factors or "dataset.inputs" in factors:
        out["fit"] = ev.epochs_to_fit(epochs, chosen)
        sentences.append(ev.fit_sentence(out["fit"]))
    table = store.evals(name)
    if len(table):
        out["shift"] = ev.shift_table(table, chosen)
        sentences.append(ev.shift_sentence(_clean_condition(out["shift"], chosen)))
        out["convexity"] = ev.convexity_table(table, chosen)
        out["lines"] = table[table["probe"].isin(["line_init", "line_pair"])].merge(chosen[["run_id", "arm"]], on="run_id")
        loss_of = {a: str(json.loads(j).get("training.loss", spec["training"]["loss"]))
                   for a, j in zip(chosen["arm"], chosen["arm_json"])}
        sentences.append(ev.convexity_sentence(out["convexity"], loss_of))
    if "training.loss" in factors:
        out["schedule"] = ev.schedule_effect(chosen, "training.loss", col)
        sentences.append(ev.schedule_sentence(out["schedule"], metric))
    if spec.get("search"):
        out["stability"] = ev.stability_table(final, col, chance, CHANCE_MARGIN)
        out["draws"] = final.groupby(["arm", "tuned_json"], sort=False)[col].mean().rename("value").reset_index()
        focus = next(iter(factors), None)
        out["stability_rank"] = ev.stability_ranking(final, focus, col, higher) if focus else None
        sentences.append(ev.stability_sentence(out["stability"], out["stability_rank"], focus or "arm"))
    return out, sentences


def _clean_condition(shift: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """The shift rows of arms trained on true labels and original inputs (where those are factors)."""
    keep = set()
    for arm, j in zip(chosen["arm"], chosen["arm_json"]):
        lv = json.loads(j)
        if float(lv.get("dataset.label_noise", 0.0)) == 0.0 and lv.get("dataset.inputs", "original") == "original":
            keep.add(arm)
    return shift[shift["arm"].isin(keep)]


def _ranking(chosen: pd.DataFrame, spec: dict[str, Any], col: str, higher: bool, rope: float = 0.01):
    """Friedman + Nemenyi over blocks = seeds x conditions of the other factors, ranking the first factor's levels
    (or every arm when the study has one factor). None when fewer than 3 levels or 2 blocks. Also the groups
    the critical difference cannot separate, and the groups of practically equivalent levels (ROPE)."""
    from ponder.analysis.rank import equivalence_groups, friedman_nemenyi, rope_groups

    factors = list(spec.get("factors", {}))
    levels = chosen["arm_json"].map(json.loads)
    if factors:
        focus = factors[0]
        item = [str(lv[focus]) for lv in levels]
        block = [f"seed={s}; " + ", ".join(f"{k}={lv[k]}" for k in factors[1:]) for s, lv in zip(chosen["seed"], levels)]
    else:
        item, block = list(chosen["arm"]), [f"seed={s}" for s in chosen["seed"]]
    table = pd.DataFrame({"item": item, "block": block, "v": chosen[col].astype(float)}).pivot_table(
        index="block", columns="item", values="v", aggfunc="mean")
    if table.shape[1] < 3 or table.dropna().shape[0] < 2:
        return None, [], []
    r = friedman_nemenyi(table, higher_is_better=higher)
    order = sorted(r.mean_ranks, key=r.mean_ranks.get)
    return r, equivalence_groups(r), rope_groups(table, order, rope=rope)


def _sigma_w2(layers: pd.DataFrame) -> dict[str, float]:
    """Mean effective sigma_w^2 (fan_in E[W^2]) of the hidden layers at initialization, per arm."""
    if layers.empty or "sigma_w2" not in layers:
        return {}
    init = layers[(layers["epoch"] == 0) & layers["act_std"].notna()]
    return init.groupby("arm")["sigma_w2"].mean().to_dict()


def _n_classes(chosen: pd.DataFrame) -> int:
    """The number of classes, as stored with the runs (0 when unknown: runs stored before schema 4)."""
    known = chosen["n_classes"].dropna() if "n_classes" in chosen else pd.Series(dtype=float)
    return int(known.max()) if len(known) else 0


def _warnings(spec: dict[str, Any], chosen: pd.DataFrame, pending: int) -> list[str]:
    out = []
    n = int(chosen.groupby("arm")["seed"].nunique().min())
    if n < 6:
        out.append(f"with {n} seeds per arm an exact Wilcoxon signed-rank test cannot go below p = {wilcoxon_floor(n):.4g}; "
                   "use at least 6 seeds (8 or more recommended) before reading significance")
    if pending:
        out.append(f"{pending} runs of the plan are not finished; the numbers cover finished runs only")
    return out
