"""The sections of an analysis: each applies to some studies, computes its part and may add sentences.

``analyze`` is a loop over :data:`SECTIONS`; :func:`compose` turns the results into the headline
and the answer paragraph.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np
import pandas as pd

from ponder.analysis.answer import CHANCE_MARGIN, outcome_sentence, reference_sentence, scope, scope_short
from ponder.analysis.stats import Comparison, estimate, holm, level_order, paired
from ponder.analysis.summary import Analysis, ArmResult, Context, arm_levels, metric_bounds

__all__ = ["Section", "SECTIONS", "compose", "MEMORIZED"]

MEMORIZED = 0.99  # training accuracy at which a run has fit its training labels


@dataclass(frozen=True)
class Section:
    """One part of the analysis: ``applies(ctx)`` says whether the study has it, ``run`` fills it in."""

    name: str
    applies: Callable[[Context], bool]
    run: Callable[[Context, Analysis], list[str]]


UNIT = (0.0, 1.0)  # the range of an accuracy: intervals of means are cut to it


def _bounds(ctx: Context) -> tuple[float, float] | None:
    """The range of the study's metric where it has one (accuracies and ECE: 0 to 1; a loss: 0 and up), else None."""
    return metric_bounds(ctx.spec, ctx.metric)


def _arm_result(ctx: Context, arm: str, g: pd.DataFrame) -> ArmResult:
    train = g["train_acc"].astype(float)
    no_train = int((train <= ctx.chance + CHANCE_MARGIN).sum()) if ctx.chance else 0
    memorized = int(((train >= MEMORIZED) & (g["test_acc"] <= ctx.chance + CHANCE_MARGIN)).sum()) if ctx.chance else 0
    return ArmResult(arm, json.loads(g["arm_json"].iloc[0]), json.loads(g["tuned_json"].iloc[0]),
                     estimate(g[ctx.col].to_numpy(), bounds=_bounds(ctx)), estimate(train.to_numpy(), bounds=UNIT), len(g),
                     int((g["status"] == "diverged").sum()), no_train, memorized)


def _arms(ctx: Context, an: Analysis) -> list[str]:
    """Per-arm estimates at the chosen setting, ranks, learning curves and probes."""
    first, key = ctx.chosen.drop_duplicates("arm"), level_order(ctx.factors)  # arms in the study's level order
    order = [arm for _, arm in sorted((key(json.loads(j)), arm) for arm, j in zip(first["arm"], first["arm_json"]))]
    an.arms = [_arm_result(ctx, arm, ctx.chosen[ctx.chosen["arm"] == arm]) for arm in order]
    sign = 1.0 if ctx.higher else -1.0
    ranked = sorted(an.arms, key=lambda a: (a.n_diverged == a.n_runs,  # an arm that only diverged is never "best"
                                            -sign * a.test.mean if np.isfinite(a.test.mean) else math.inf))
    for i, a in enumerate(ranked, 1):
        a.rank = i
    an.curves = _curves(ctx)
    layers = ctx.store.layers(ctx.name)
    an.layers = layers.merge(ctx.chosen[["run_id", "arm"]], on="run_id") if len(layers) else layers
    if not an.layers.empty and "sigma_w2" in an.layers:
        init = an.layers[(an.layers["epoch"] == 0) & an.layers["act_std"].notna()]
        an.sigma_w2 = init.groupby("arm")["sigma_w2"].mean().to_dict()
    return []


def _curves(ctx: Context) -> pd.DataFrame:
    e = ctx.epochs.merge(ctx.chosen[["run_id", "arm"]], on="run_id")
    rows = []
    for (arm, ep), g in e.groupby(["arm", "epoch"]):
        for split in ("train", "val", "test"):
            est = estimate(g[f"{split}_acc"].to_numpy(), bounds=UNIT)
            rows.append({"arm": arm, "epoch": int(ep), "split": split, "mean": est.mean, "lo": est.lo, "hi": est.hi})
    return pd.DataFrame(rows, columns=["arm", "epoch", "split", "mean", "lo", "hi"])


def _reference(ctx: Context, an: Analysis) -> list[str]:
    """Paired comparisons of every arm against the reference (the study's, else the best arm).

    A study's reference level is a reference in each condition of the other factors: beside a
    second factor, every other arm is compared with the reference arm of its own condition, never
    with one condition's reference for all; an arm whose condition has no finished reference arm
    is named in a warning.
    """
    from ponder.analysis.rank import cliffs_delta, dz_ci, rope_test

    ref_name = ctx.spec.get("reference")
    best = min(an.arms, key=lambda a: a.rank)
    refs = [a for a in an.arms if ref_name is not None and ref_name in _level_texts(a.levels)] or [best]
    own = {k for k, v in refs[0].levels.items() if ref_name in _level_texts({k: v})} if ref_name is not None else set()
    within = bool(own) and len(refs[0].levels) > len(own)  # other factors: compare within their conditions
    an.reference = str(ref_name) if within else refs[0].arm
    an.reference_arms = [r.arm for r in refs]
    by_seed = {a.arm: ctx.chosen[ctx.chosen["arm"] == a.arm].set_index("seed")[ctx.col] for a in an.arms}
    pairs = _reference_pairs(an.arms, refs, own if within else set())
    unmatched = len(an.arms) - len(refs) - len(pairs)
    if unmatched:
        an.warnings.append(f"{unmatched} of the {len(an.arms) - len(refs)} other arms have no finished reference arm "
                           f"('{ref_name}') in their condition of the other factors and are not compared with it.")
    comps = []
    for a, ref in pairs:
        both = by_seed[ref.arm].index.intersection(by_seed[a.arm].index)
        x, y = by_seed[ref.arm].loc[both].to_numpy(), by_seed[a.arm].loc[both].to_numpy()
        c, bounds = paired(ref.arm, x, a.arm, y), _bounds(ctx)
        if bounds is not None:  # a difference of accuracies lies within -1 to 1: so does its interval
            span = bounds[1] - bounds[0]
            c = replace(c, diff_lo=max(c.diff_lo, -span), diff_hi=min(c.diff_hi, span))
        comps.append(c)
        rope = rope_test(x, y, rope=ctx.rope) if ctx.metric == "accuracy" else None
        if rope is not None and rope.p_equal == rope.p_equal:  # tested (enough seeds): else the tables say "–"
            an.ropes[a.arm] = rope
        lo, hi = dz_ci(y - x) if len(both) > 5 else (math.nan, math.nan)  # a bootstrap of <= 5 values means nothing
        an.effects[a.arm] = {"dz_lo": lo, "dz_hi": hi, "cliffs_delta": cliffs_delta(x, y)}
    an.comparisons = [Comparison(**{**c.__dict__, "p_holm": p}) for c, p in zip(comps, holm([c.t_p for c in comps]))]
    if ref_name is None:
        return []
    where = " within each condition of the other factors" if within else ""
    return [reference_sentence(an.reference, an.comparisons, ctx.metric, higher=ctx.higher, where=where)]


def _arm_order(table: pd.DataFrame, an: Analysis) -> pd.DataFrame:
    """A per-arm table's rows in the order of ``an.arms`` (the study's order of levels)."""
    pos = {a.arm: i for i, a in enumerate(an.arms)}
    return table.sort_values("arm", key=lambda s: s.map(lambda a: pos.get(a, len(pos))), kind="stable").reset_index(drop=True)


def _reference_pairs(arms: list, refs: list, own: set[str]) -> list[tuple]:
    """(arm, its reference arm) for every arm that is not a reference: without ``own`` (the reference's factors),
    the one reference arm; with it, the reference arm sharing the arm's levels of every other factor."""
    names = {r.arm for r in refs}
    if not own:
        return [(a, refs[0]) for a in arms if a.arm not in names]

    def condition(a) -> str:
        return json.dumps({k: v for k, v in a.levels.items() if k not in own}, sort_keys=True, default=str)

    by_condition: dict[str, Any] = {}
    for r in refs:  # the first reference arm of each condition (a level text naming two factors' levels: the first)
        by_condition.setdefault(condition(r), r)
    return [(a, by_condition[condition(a)]) for a in arms if a.arm not in names and condition(a) in by_condition]


def _level_texts(levels: dict) -> set[str]:
    out = set()
    for v in levels.values():
        out.add("+".join(str(x) for x in v) if isinstance(v, list) else str(v))
    return out


def factor_table(ctx: Context) -> pd.DataFrame:
    """Long form for the factor tests: seed, one column per factor (numbers kept for ordered ones), value."""
    df = pd.DataFrame({"seed": ctx.chosen["seed"].astype(int).to_numpy(), "value": ctx.chosen[ctx.col].astype(float).to_numpy()})
    for key in ctx.factors:
        raw = [json.loads(j)[key] for j in ctx.chosen["arm_json"]]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw)
        df[key] = raw if numeric else arm_levels(ctx.chosen, key)
    return df


def _factors(ctx: Context, an: Analysis) -> list[str]:
    """Every factor judged (main effect over the others and the seeds), every pair tested for interaction,
    a trend for every ordered factor."""
    from ponder.analysis.factors import interactions, is_ordered, main_effects, trend
    from ponder.analysis.verdict import factor_sentence, interaction_sentence, trend_sentence

    df, keys = factor_table(ctx), list(ctx.factors)
    an.factor_effects = main_effects(df, keys, higher=ctx.higher, rope=ctx.rope, bounds=_bounds(ctx))
    an.interaction_tests = interactions(df, keys, higher=ctx.higher) if len(keys) >= 2 else []
    an.trends = [t for k in keys if len(ctx.factors[k]) >= 3 and is_ordered(ctx.factors[k])
                 for t in [trend(df, k, higher=ctx.higher)] if t is not None]
    an.focus = ctx.spec.get("focus") or an.factor_effects[0].factor
    ordered = sorted(an.factor_effects, key=lambda e: e.factor != an.focus)
    rejected = [t for t in an.interaction_tests if t.verdict == "interaction"]
    out = [_averaged(e.factor, rejected, factor_sentence(e, ctx.metric)) for e in ordered]
    out += [interaction_sentence(t, ctx.metric) for t in rejected]
    quiet = [t for t in an.interaction_tests if t.verdict != "interaction"]
    if quiet:
        pairs = "; ".join(f"{t.a} x {t.b} p = {t.p:.2g}" if t.p is not None else f"{t.a} x {t.b} untested ({t.reason})"
                          for t in quiet)
        out.append(f"No evidence of interaction ({quiet[0].test.split(' over ')[0]}): {pairs}.")
    out += [trend_sentence(t, ctx.metric) for t in an.trends]
    return out


def _averaged(factor: str, rejected: list, sentence: str) -> str:
    """The factor's sentence, prefixed where its best level changes with another factor (its main effect is an average)."""
    others = [t.b if t.a == factor else t.a for t in rejected if factor in t.crossover_in]
    if not others:
        return sentence
    return (f"Averaged over {' and '.join(others)} (its best level depends on {'them' if len(others) > 1 else 'it'}): "
            f"{sentence[0].lower()}{sentence[1:]}")


def _conditions(ctx: Context, an: Analysis) -> list[str]:
    """The focus factor's levels within each combination of the other factors (the report's heatmap)."""
    from ponder.analysis.interaction import interactions

    from ponder.analysis.verdict import interaction_sentence

    an.conditions = interactions(ctx.chosen, ctx.factors, an.focus, ctx.chance, CHANCE_MARGIN)
    an.interaction = " ".join(interaction_sentence(t, ctx.metric) for t in an.interaction_tests if an.focus in (t.a, t.b))
    return []


def _ranking(ctx: Context, an: Analysis) -> list[str]:
    """Friedman + Nemenyi over blocks (seeds x other factors) for the focus factor, and ROPE groups."""
    from ponder.analysis.rank import equivalence_groups, friedman_nemenyi, rope_groups

    focus = an.focus if ctx.factors else None
    item = arm_levels(ctx.chosen, focus) if focus else list(ctx.chosen["arm"])
    others = [k for k in ctx.factors if k != focus]
    block = [f"seed={s}; " + "; ".join(arm_levels(ctx.chosen.iloc[[i]], k)[0] for k in others)
             for i, s in enumerate(ctx.chosen["seed"])]
    table = pd.DataFrame({"item": item, "block": block, "v": ctx.chosen[ctx.col].astype(float).to_numpy()}).pivot_table(
        index="block", columns="item", values="v", aggfunc="mean")
    if table.shape[1] < 3 or table.dropna().shape[0] < 2:
        return []
    an.ranking = friedman_nemenyi(table, higher_is_better=ctx.higher)
    an.groups = equivalence_groups(an.ranking)
    an.rope_groups = rope_groups(table, sorted(an.ranking.mean_ranks, key=an.ranking.mean_ranks.get), rope=ctx.rope)
    return []


def _beyond(ctx: Context, an: Analysis) -> list[str]:
    """Epochs to fit, input shift, convexity, loss schedules and stability."""
    from ponder.analysis import evals as ev

    out: list[str] = []
    if {"dataset.label_noise", "dataset.inputs"} & set(ctx.factors):
        an.fit = _arm_order(ev.epochs_to_fit(ctx.epochs, ctx.chosen), an)
        out.append(ev.fit_sentence(an.fit))
    table = ctx.store.evals(ctx.name)
    if len(table):
        an.shift = ev.shift_table(table, ctx.chosen)
        out.append(ev.shift_sentence(an.shift[an.shift["arm"].isin(clean_arms(ctx.chosen))]))
        an.convexity = ev.convexity_table(table, ctx.chosen)
        an.lines = table[table["probe"].isin(["line_init", "line_pair"])].merge(ctx.chosen[["run_id", "arm"]], on="run_id")
        loss_of = {a: str(json.loads(j).get("training.loss", ctx.spec["training"]["loss"]))
                   for a, j in zip(ctx.chosen["arm"], ctx.chosen["arm_json"])}
        out.append(ev.convexity_sentence(an.convexity, loss_of))
    if "training.loss" in ctx.factors:
        an.schedule = ev.schedule_effect(ctx.chosen, "training.loss", ctx.col)
        out.append(ev.schedule_sentence(an.schedule, ctx.metric))
    if ctx.spec.get("search"):
        an.stability = _arm_order(ev.stability_table(ctx.final, ctx.col, ctx.chance, CHANCE_MARGIN), an)
        an.draws = ctx.final.groupby(["arm", "tuned_json"], sort=False)[ctx.col].mean().rename("value").reset_index()
        focus = an.focus or None
        an.stability_rank = ev.stability_ranking(ctx.final, focus, ctx.col, ctx.higher) if focus else None
        out.append(ev.stability_sentence(an.stability, an.stability_rank, focus or "arm"))
    return out


def clean_arms(chosen: pd.DataFrame) -> set[str]:
    """The arms trained on true labels and original inputs (where those are factors)."""
    keep = set()
    for arm, j in zip(chosen["arm"], chosen["arm_json"]):
        lv = json.loads(j)
        if float(lv.get("dataset.label_noise", 0.0)) == 0.0 and lv.get("dataset.inputs", "original") == "original":
            keep.add(arm)
    return keep


def _theory(ctx: Context, an: Analysis) -> list[str]:
    from ponder.analysis.trainability import trainability, trainability_sentence

    an.theory = trainability(ctx.chosen, an.layers, ctx.chance, CHANCE_MARGIN)
    return [trainability_sentence(an.theory)]


def _warnings(ctx: Context, an: Analysis) -> list[str]:
    from ponder.analysis.warnings import study_warnings

    an.warnings = [*study_warnings(ctx, an), *an.warnings]  # with those earlier sections noted
    return []


SECTIONS = [
    Section("arms", lambda ctx: True, _arms),
    Section("reference", lambda ctx: True, _reference),
    Section("factors", lambda ctx: bool(ctx.factors), _factors),
    Section("conditions", lambda ctx: len(ctx.factors) >= 2 and ctx.metric == "accuracy", _conditions),
    Section("ranking", lambda ctx: True, _ranking),
    Section("beyond", lambda ctx: True, _beyond),
    Section("theory", lambda ctx: "model.depth" in ctx.factors, _theory),
    Section("warnings", lambda ctx: True, _warnings),
]


def compose(ctx: Context, an: Analysis) -> tuple[str, str]:
    """(headline, answer): the decision in at most two sentences, then scope, verdicts and details."""
    from ponder.analysis.verdict import headline

    total = sum(a.n_runs for a in an.arms)
    no_train = sum(a.n_chance for a in an.arms)
    outcome = outcome_sentence(total, sum(a.n_diverged for a in an.arms), no_train, sum(a.n_memorized for a in an.arms))
    classical = "depth" not in json.loads(ctx.chosen["config_json"].iloc[0])["model"]  # the classic pipeline's configs
    where = an.scope = scope(ctx.spec, ctx.seeds, classical=classical)
    short = scope_short(ctx.spec, classical=classical)
    if ctx.chance and no_train == total:
        head = (f"No arm trained {short}: every run's training accuracy stayed within "
                f"{100 * CHANCE_MARGIN:.0f} points of chance, so no level can be recommended.")
    elif (trend := next((t for t in an.trends if t.factor == an.focus and t.direction), None)) is not None:
        from ponder.analysis.verdict import trend_headline

        head = trend_headline(trend, next(e for e in an.factor_effects if e.factor == an.focus), metric=ctx.metric,
                              scope_short=short)
    elif an.factor_effects:
        head = headline(an.factor_effects, an.interaction_tests, focus=an.focus, metric=ctx.metric,
                        scope_short=short)
    else:
        a = an.arms[0]
        ci = "" if a.test.lo != a.test.lo else f", 95% CI {_fmt(ctx, a.test.lo)} to {_fmt(ctx, a.test.hi)}"
        head = f"'{a.arm}' reaches a test {ctx.metric} of {_fmt(ctx, a.test.mean)}{ci} {short}."
    best = min(an.arms, key=lambda a: a.rank)
    ci = "" if best.test.lo != best.test.lo else f", 95% CI {_fmt(ctx, best.test.lo)} to {_fmt(ctx, best.test.hi)}"
    lead = f"'{best.arm}' gives the best test {ctx.metric} ({_fmt(ctx, best.test.mean)}{ci})." if len(an.arms) > 1 else ""
    answer = " ".join(s for s in [f"{where[0].upper()}{where[1:]}.", lead, *an.sentences, outcome] if s)
    return head, answer


def _fmt(ctx: Context, v: float) -> str:
    return f"{100 * v:.1f}%" if ctx.metric == "accuracy" else f"{v:.3f}"
