"""A study's analysis: read the store, choose each arm's tuned setting, run the sections, compose the answer.

The analysis is a list of sections (:mod:`ponder.analysis.sections`): each says whether it applies
to the study, computes its numbers into the :class:`Analysis` and may add sentences. Everything
is read from the store; no dataset is loaded and nothing is trained.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ponder.analysis.answer import ALPHA, CHANCE_MARGIN
from ponder.analysis.stamp import fingerprint
from ponder.analysis.stats import Comparison, Estimate
from ponder.errors import PonderError
from ponder.store import Store
from ponder.study.spec import METRICS

__all__ = ["Analysis", "analyze", "ArmResult", "Context", "CHANCE_MARGIN", "ALPHA", "metric_column", "metric_direction",
           "fingerprint"]


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
    n_chance: int  # did not train: training accuracy within CHANCE_MARGIN of chance
    n_memorized: int = 0  # fit the training labels (>= 99%) with test accuracy at chance
    rank: int = 0


@dataclass
class Context:
    """What every section reads: the study, its finished runs and the chosen (tuned) runs."""

    store: Store
    name: str
    study: dict[str, Any]
    spec: dict[str, Any]
    metric: str
    epochs: pd.DataFrame
    final: pd.DataFrame  # last epoch of every finished run
    chosen: pd.DataFrame  # the runs at each arm's chosen setting
    chance: float
    pending: int

    @property
    def col(self) -> str:
        return metric_column(self.metric, "test")

    @property
    def higher(self) -> bool:
        return metric_direction(self.spec, self.metric) == "max"

    @property
    def factors(self) -> dict[str, list]:
        return self.spec.get("factors", {})

    @property
    def rope(self) -> float:
        return float(self.spec["rope"]) if self.spec.get("rope") is not None else 0.01

    @property
    def seeds(self) -> int:
        return int(self.chosen.groupby("arm")["seed"].nunique().min())


@dataclass
class Analysis:
    """Everything a report shows, computed from the store."""

    study: dict[str, Any]
    metric: str
    arms: list[ArmResult] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    reference: str = ""  # the reference arm, or the reference level when it names several arms
    reference_arms: list = field(default_factory=list)  # the arms the others are compared with
    headline: str = ""
    answer: str = ""
    scope: str = ""  # the protocol in words (data, model, training, tuning, seeds)
    sentences: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)  # arm, epoch, split, mean, lo, hi
    finals: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per run at the chosen setting
    pending: int = 0
    layers: pd.DataFrame = field(default_factory=pd.DataFrame)
    focus: str = ""  # the question's factor: the study's ``focus``, else the one with the largest effect
    factor_effects: list = field(default_factory=list)  # factors.FactorEffect, largest effect first
    interaction_tests: list = field(default_factory=list)  # factors.InteractionTest per pair of factors
    trends: list = field(default_factory=list)  # factors.Trend per ordered factor
    theory: pd.DataFrame = field(default_factory=pd.DataFrame)  # trainability against 6 xi_c, per arm
    conditions: list = field(default_factory=list)  # interaction.Condition: the focus factor per condition
    interaction: str = ""
    sigma_w2: dict = field(default_factory=dict)  # arm -> mean effective sigma_w^2 of the hidden layers at init
    chance: float = 0.0
    ropes: dict = field(default_factory=dict)  # other arm -> Rope against the reference
    ranking: Any = None  # rank.Ranking of the focus factor (or of all arms), when >= 3 levels
    groups: list = field(default_factory=list)  # equivalence groups by the critical difference
    effects: dict = field(default_factory=dict)  # other arm -> {"dz_lo", "dz_hi", "cliffs_delta"} vs the reference
    rope_groups: list = field(default_factory=list)  # groups of practically equivalent levels (Bayesian, ROPE)
    fit: pd.DataFrame = field(default_factory=pd.DataFrame)  # epochs to fit the training labels, per arm
    shift: pd.DataFrame = field(default_factory=pd.DataFrame)  # accuracy under input shift, per arm x kind x level
    convexity: pd.DataFrame = field(default_factory=pd.DataFrame)  # loss along lines in weight space, per arm
    lines: pd.DataFrame = field(default_factory=pd.DataFrame)  # the raw line losses of the chosen runs
    schedule: list = field(default_factory=list)  # evals.ScheduleEffect per loss schedule
    stability: pd.DataFrame = field(default_factory=pd.DataFrame)  # spread over hyperparameter draws, per arm
    stability_rank: Any = None  # rank.Ranking of the focus factor over draws x conditions
    draws: pd.DataFrame = field(default_factory=pd.DataFrame)  # arm, tuned_json, value (mean over seeds)

    def to_json(self) -> dict[str, Any]:
        """The machine-readable analysis (what ``ponder report --format json`` prints)."""
        from ponder.analysis.export import analysis_json

        return analysis_json(self)


def _final_rows(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    last = epochs.sort_values("epoch").groupby("run_id").tail(1).set_index("run_id")
    return runs.set_index("run_id").join(last, how="inner").reset_index()


def metric_column(metric: str, split: str) -> str:
    """The column holding ``metric`` on ``split`` (val or test) in a study's final rows."""
    return {"accuracy": f"{split}_acc", "loss": f"{split}_loss"}.get(metric, f"{split}_{metric}")


def metric_direction(spec: dict[str, Any], metric: str) -> str:
    """``max`` or ``min``, as stored with the plan (studies stored before: the per-epoch metrics' own)."""
    return spec.get("directions", {}).get(metric) or METRICS.get(metric, "max")


def metric_bounds(spec: dict[str, Any], metric: str) -> tuple[float, float] | None:
    """The range of the metric's values, as stored with the plan (studies stored before: accuracies 0 to 1)."""
    b = spec.get("bounds", {}).get(metric) if "bounds" in spec else ([0.0, 1.0] if metric == "accuracy" else None)
    return None if b is None else (-math.inf if b[0] is None else b[0], math.inf if b[1] is None else b[1])


def _with_metrics(final: pd.DataFrame, evals: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Add ``val_<m>`` and ``test_<m>`` columns for the extra metrics (stored in ``evals``)."""
    extra = [m for m in metrics if m not in METRICS]
    if not extra or evals.empty:
        return final
    sel = evals[evals["probe"].isin(["metric_val", "metric_test"]) & evals["kind"].isin(extra)]
    if sel.empty:
        return final
    wide = sel.assign(col=sel["probe"].str.removeprefix("metric_") + "_" + sel["kind"]).pivot_table(
        index="run_id", columns="col", values="value", aggfunc="first")
    return final.merge(wide, left_on="run_id", right_index=True, how="left")


def _select(final: pd.DataFrame, metric: str, direction: str = "max") -> pd.DataFrame:
    """Per arm, keep the tuned setting with the best mean validation metric over seeds."""
    col = metric_column(metric, "val")
    sign = 1.0 if direction == "max" else -1.0
    score = final.assign(_s=sign * final[col].astype(float)).fillna({"_s": -math.inf})
    best = score.groupby(["arm", "tuned_json"])["_s"].mean().reset_index()
    best = best.sort_values("_s", ascending=False, kind="stable").groupby("arm").head(1)
    keep = set(zip(best["arm"], best["tuned_json"]))
    return final[[(a, t) in keep for a, t in zip(final["arm"], final["tuned_json"])]].copy()


def _n_classes(chosen: pd.DataFrame) -> int:
    """The number of classes, as stored with the runs (0 when unknown: runs stored before schema 4)."""
    known = chosen["n_classes"].dropna() if "n_classes" in chosen else pd.Series(dtype=float)
    return int(known.max()) if len(known) else 0


def load_context(store: Store, name: str) -> Context:
    """The study's records, read once.

    Raises:
        NotFound: the study is not in the store.
        PonderError: no run of the study has finished yet.
    """
    study = store.study(name)
    spec = study["spec"]
    metric = spec["metrics"][0]
    runs = store.runs(name)
    done = runs[runs["status"].isin(["ok", "diverged"])]
    if done.empty:
        again = f"ponder run {study.get('source') or name}"
        failed = runs[runs["status"] == "failed"]
        if len(failed):  # it was run: say why nothing finished, not "run it first"
            first = str(failed["error"].dropna().iloc[0]).splitlines()[0][:200] if failed["error"].notna().any() else "?"
            raise PonderError(f"study {name!r} has no finished runs in store {store.path!r}: all {len(failed)} runs failed "
                              f"(the first: {first}); fix the study and run it again ({again})")
        raise PonderError(f"study {name!r} has no finished runs in store {store.path!r}; run it first ({again})")
    epochs = store.epochs(name)
    final = _with_metrics(_final_rows(done, epochs), store.evals(name), spec["metrics"])
    if metric_column(metric, "test") not in final:
        raise PonderError(f"study {name!r}: no run in store {store.path!r} has the metric {metric!r}; run the study "
                          f"again with this ponder to measure it")
    chosen = _select(final, metric, metric_direction(spec, metric))
    n_classes = _n_classes(chosen)
    return Context(store, name, study, spec, metric, epochs, final, chosen, 1.0 / n_classes if n_classes else 0.0,
                   int((runs["status"] == "pending").sum()))


def analyze(store: Store, name: str) -> Analysis:
    """Analyze study ``name`` from the store: every section that applies, then the headline and answer.

    Raises:
        NotFound: the study is not in the store.
        PonderError: no run of the study has finished yet.
    """
    from ponder.analysis.sections import SECTIONS, compose

    ctx = load_context(store, name)
    an = Analysis(ctx.study, ctx.metric, chance=ctx.chance, pending=ctx.pending, finals=ctx.chosen)
    for section in SECTIONS:
        if section.applies(ctx):
            an.sentences += [s for s in section.run(ctx, an) if s]
    an.headline, an.answer = compose(ctx, an)
    return an


def arm_levels(chosen: pd.DataFrame, factor: str) -> list[str]:
    """The level of ``factor`` of each chosen run, as text (a linked factor's pair as "a+b")."""
    out = []
    for j in chosen["arm_json"]:
        v = json.loads(j)[factor]
        out.append("+".join(str(x) for x in v) if isinstance(v, list) else (f"{v:g}" if isinstance(v, float) else str(v)))
    return out
