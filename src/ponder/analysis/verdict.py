"""The answer in words, computed from the results of :mod:`ponder.analysis.factors`.

Every number in a sentence comes from a result object; nothing is typed in. Words follow the
tests: "matters" only when an omnibus test rejects, "suggestive" (never "significant") when only
one of the parametric and the rank test does, "interaction" only when the interaction test
rejects. Intervals are Student-t intervals of raw mean differences; no bootstrap interval of an
effect size is ever quoted (meaningless at 5 seeds or fewer, see ``factors.ci_meaningful``).
"""

from __future__ import annotations

import math

from ponder.analysis.factors import FactorEffect, InteractionTest, Trend
from ponder.analysis.stats import wilcoxon_floor
from ponder.study.keys import short_key as _short

__all__ = ["factor_sentence", "interaction_sentence", "headline", "trend_sentence", "ci_meaningful",
           "min_seeds_for_significance", "POINTS_METRICS"]

POINTS_METRICS = frozenset({"accuracy", "acc", "test_acc", "val_acc", "top1_accuracy", "top5_accuracy"})
"""Metrics that are fractions shown in percent and percentage points; the rest get 3 decimals."""


def ci_meaningful(n: int) -> tuple[bool, str]:
    """Whether a bootstrap CI of Cohen's d_z over n seeds may be quoted, and why not.

    At n <= 5 the bootstrap resamples from at most 5 values (126 distinct resamples at n = 5, some
    with sd 0): its interval is an artefact. Quote the raw mean difference with its t CI instead.

    Args:
        n: Number of seeds (paired differences).

    Returns:
        (usable, reason).
    """
    if n <= 5:
        distinct = math.comb(2 * n - 1, n) if n > 0 else 0
        return False, (f"a bootstrap CI of d_z from {_plural(n, 'seed')} draws from only {distinct} distinct "
                       "resamples: the mean difference with its t CI is reported instead")
    return True, f"{n} seeds: a bootstrap CI of d_z is usable"


def min_seeds_for_significance(alpha: float = 0.05) -> int:
    """Fewest seeds with which an exact two-sided Wilcoxon signed-rank test can reject at ``alpha``.

    Its smallest p is 2 / 2^n (``stats.wilcoxon_floor``): 0.0625 at n = 5, 0.031 at n = 6, so 6 at 0.05.

    Args:
        alpha: Significance level.

    Returns:
        The number of seeds.
    """
    n = 1
    while wilcoxon_floor(n) >= alpha:
        n += 1
    return n


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _at(factor: str, level: str) -> str:
    return f"{_short(factor)}={level}"


def _join(items: list[str], last: str = "or") -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


def _value(metric: str, v: float | None) -> str:
    """A level mean: '83.2%' for accuracy-like metrics, '0.123' otherwise."""
    if v is None:
        return "undefined"
    return f"{100 * v:.1f}%" if metric in POINTS_METRICS else f"{v:.3f}"


def _size(metric: str, v: float | None, signed: bool = True) -> str:
    """A difference: '-12.3 points' for accuracy-like metrics, '+0.012' otherwise."""
    if v is None:
        return "undefined"
    if metric in POINTS_METRICS:
        x = 100 * v
        return f"{x:+.1f} points" if signed else f"{abs(x):.1f} point{'s' * (round(abs(x), 1) != 1)}"
    return f"{v:+.3f}" if signed else f"{abs(v):.3f}"


def _ci(metric: str, lo: float | None, hi: float | None, n: int) -> str:
    """'95% CI -15.0 to -9.6', or why there is none."""
    if lo is None or hi is None:
        return f"no CI from {_plural(n, 'seed')}"
    scale = 100 if metric in POINTS_METRICS else 1
    digits = 1 if metric in POINTS_METRICS else 3
    return f"95% CI {scale * lo:.{digits}f} to {scale * hi:.{digits}f}"


def _p(p: float | None) -> str:
    """'p = 0.41', 'p = 0.0625', 'p < 0.001'; three digits below 0.2 so nothing rounds onto alpha or a floor."""
    if p is None:
        return "no p-value"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.3g}" if p < 0.2 else f"p = {p:.2f}"


def _rope(metric: str, rope: float) -> str:
    return _size(metric, rope, signed=False)


def _avoid(effect: FactorEffect, metric: str) -> str:
    """'caffe.gaussian (-12.3 points, 95% CI -15.0 to -9.6)' for each level significantly worse."""
    parts = [f"{q.level} ({_size(metric, q.diff)}, {_ci(metric, *q.ci, effect.n)})"
             for q in effect.pairwise if q.level in effect.avoid]
    return _join(parts, "and")


def _tests(effect: FactorEffect) -> str:
    """'(repeated-measures ANOVA over 5 seeds, p = 0.003; Friedman test, p = 0.01)'."""
    floor = ""
    if effect.rank_floor is not None and effect.rank_floor >= effect.alpha:
        floor = (f", which cannot go below {effect.rank_floor:.4g} with {_plural(effect.n, 'seed')}; "
                 f"{min_seeds_for_significance(effect.alpha)} seeds could reject at {effect.alpha:g}")
    note = f"; {effect.note}" if effect.note else ""
    return f"({effect.test}, {_p(effect.p)}; {effect.rank_test}, {_p(effect.p_rank)}{floor}{note})"


def factor_sentence(effect: FactorEffect, metric: str) -> str:
    """One sentence: does the factor matter, which levels to use and avoid, and how sure that is.

    Args:
        effect: A result of ``factors.main_effects``.
        metric: The metric's name ("accuracy", "loss", "ece"); accuracy-like ones are shown in points.

    Returns:
        The sentence, ending with a period.
    """
    f, note = effect.factor, f"; {effect.note}" if effect.note else ""
    if effect.reason:
        return f"No evidence about whether {f} matters: {effect.reason}{note}."
    if effect.verdict == "equivalent":
        return (f"The levels of {f} are practically equivalent: all within {_rope(metric, effect.rope)} of the best "
                f"(paired TOST over {_plural(effect.n, 'seed')}, {_p(effect.p_equivalence)}; largest difference "
                f"{_size(metric, effect.effect, signed=False)}, {_ci(metric, *effect.effect_ci, effect.n)}{note}).")
    if effect.verdict == "no evidence":
        return (f"No evidence that {f} matters ({effect.test}, {_p(effect.p)}{note}); a difference below "
                f"{_size(metric, effect.mde, signed=False)} could not have been detected with {_plural(effect.n, 'seed')}.")
    lead = f"{f} matters" if effect.strength == "significant" else f"Suggestive evidence that {f} matters"
    use = "use" if effect.strength == "significant" else "prefer"
    if not effect.avoid:
        return f"{lead} {_tests(effect)}, but no level is clearly worse than {effect.levels[0]} ({effect.family})."
    return f"{lead} {_tests(effect)}: {use} {_join(effect.best)}; avoid {_avoid(effect, metric)}."


def _simple_list(test: InteractionTest, factor: str, most: int = 4) -> str:
    """'he at activation=relu, xavier at activation=tanh': the best level of ``factor`` per level of the other,
    grouped by best level; a long group is cut with its count ("relu at 13 levels of model.initializer")."""
    other = test.b if factor == test.a else test.a
    groups: dict[str, list[str]] = {}
    for s in test.simple[factor]:
        groups.setdefault(s.best, []).append(s.at)
    parts = []
    for best, ats in sorted(groups.items(), key=lambda kv: len(kv[1])):
        where = (f"{_short(other)}={', '.join(ats)}" if len(ats) <= most else
                 f"the other {len(ats)} levels of {other}" if len(groups) > 1 else f"every level of {other}")
        parts.append(f"{best} at {where}" if len(ats) > most or len(ats) > 1 else f"{best} at {_at(other, ats[0])}")
    return "; ".join(parts)


def _magnitude(test: InteractionTest, metric: str | None) -> str:
    """'model.activation matters 6.0x more at depth=10 than at depth=3 (12.1 vs 2.0 points)'."""
    spreads = {s.at: s.spread for s in test.simple[test.described]}
    hi, lo = spreads[test.largest_at], spreads[test.smallest_at]
    sizes = f" ({_size(metric, hi, signed=False).split()[0]} vs {_size(metric, lo, signed=False)})" if metric else ""
    if test.ratio is None:
        return (f"{test.described} matters at {_at(test.by, test.largest_at)} and not at all at "
                f"{_at(test.by, test.smallest_at)}{sizes}")
    return (f"{test.described} matters {test.ratio:.1f}x more at {_at(test.by, test.largest_at)} than at "
            f"{_at(test.by, test.smallest_at)}{sizes}")


def interaction_sentence(test: InteractionTest, metric: str | None = None) -> str:
    """One sentence on a pair of factors: "interaction" only when the test rejects, and of which kind.

    Args:
        test: A result of ``factors.interactions``.
        metric: The metric's name, to show the simple effects' sizes; None leaves them out.

    Returns:
        The sentence, ending with a period.
    """
    a, b, note = test.a, test.b, f"; {test.note}" if test.note else ""
    if test.p is None:
        return f"No test of interaction between {a} and {b}: {test.reason}{note}."
    if test.verdict != "interaction":
        return f"No evidence of interaction between {a} and {b} ({test.test}, {_p(test.p)}{note})."
    head = f"Interaction between {a} and {b} ({test.test}, {_p(test.p)}{note})"
    if test.kind == "crossover":
        return f"{head}: the best level of {test.described} changes with {test.by}: {_simple_list(test, test.described)}."
    return f"{head}: {_magnitude(test, metric)}."


HEADLINE_RATIO = 1.5  # a magnitude interaction the headline names: one factor matters at least 1.5x more somewhere


def _few(levels: list[str], most: int = 5) -> list[str]:
    """At most ``most`` names; a longer list ends with 'N others' (the paragraph lists them all)."""
    return levels if len(levels) <= most else [*levels[:most - 1], f"{len(levels) - most + 1} others"]


def _pick(effects: list[FactorEffect], focus: str | None) -> FactorEffect:
    if not effects:
        raise ValueError("no factor effects to summarize")
    if focus is None:
        return effects[0]
    found = [e for e in effects if e.factor == focus]
    if not found:
        raise ValueError(f"focus factor {focus!r} is not among the effects: {[e.factor for e in effects]}")
    return found[0]


def _status(effect: FactorEffect, metric: str) -> str:
    """Whether the factor matters at all, with the size of the difference and its CI, in a clause."""
    ci = _ci(metric, *effect.effect_ci, effect.n)
    ci += "" if effect.effect_ci[0] is None else f", {_plural(effect.n, 'seed')}"
    size = f"best minus worst level {_size(metric, effect.effect)} ({ci})"
    if effect.reason:
        return f"{size}; {effect.reason}"
    if effect.verdict == "matters":
        word = "it matters" if effect.strength == "significant" else "suggestive evidence that it matters"
        return f"{size}; {word} ({effect.test}, {_p(effect.p)})"
    if effect.verdict == "equivalent":
        return (f"{size}; all levels are within {_rope(metric, effect.rope)} of the best "
                f"(paired TOST, {_p(effect.p_equivalence)})")
    return (f"{size}; no evidence that it matters ({effect.test}, {_p(effect.p)}), a difference below "
            f"{_size(metric, effect.mde, signed=False)} could not have been detected")


def headline(effects: list[FactorEffect], interactions: list[InteractionTest], *, focus: str | None, metric: str,
             scope_short: str) -> str:
    """The answer in at most two sentences: the decision, then its size and strength.

    Args:
        effects: Results of ``factors.main_effects`` (largest effect first).
        interactions: Results of ``factors.interactions``.
        focus: The factor the question is about; None takes the factor with the largest effect.
        metric: The metric's name ("accuracy", "loss", ...).
        scope_short: Where the answer holds, in a few words ("on MNIST-1D MLPs").

    Returns:
        One or two sentences. When an interaction involving the factor rejects, a crossover makes
        the choice depend on the other factor (no single winner); a magnitude interaction is named.

    Raises:
        ValueError: ``effects`` is empty or ``focus`` is not among them.
    """
    eff = _pick(effects, focus)
    f = eff.factor
    rejected = [t for t in interactions if t.verdict == "interaction" and f in (t.a, t.b)]
    cross = [t for t in rejected if f in t.crossover_in]
    if cross:
        t = cross[0]
        other = t.b if t.a == f else t.a
        return (f"The best {f} {scope_short} depends on {other}: {_simple_list(t, f)} ({t.test}, {_p(t.p)}). "
                f"No single level wins; averaged over {other}, {_status(eff, metric)}.")
    extra = ""
    strong = [t for t in rejected if t.described != f or t.ratio is None or t.ratio >= HEADLINE_RATIO]
    if strong:  # a magnitude interaction of a few percent stays in the paragraph
        t = strong[0]
        extra = (f"; {_magnitude(t, None)} (interaction, {_p(t.p)})" if t.described == f else
                 f"; it changes the effect of {t.b if t.a == f else t.a} (interaction, {_p(t.p)})")
    if eff.verdict == "matters" and eff.avoid:
        verb = "Use" if eff.strength == "significant" else "Prefer"
        first = f"{verb} {_join(_few(eff.best))} for {f} {scope_short}, not {_join(_few(eff.avoid), 'or')}"
    elif eff.verdict == "matters":
        first = f"Prefer {eff.levels[0]} for {f} {scope_short}, though no level is clearly worse"
    elif eff.reason:
        first = f"No decision on {f} {scope_short} yet; {eff.levels[0]} has the best mean so far"
    elif eff.verdict == "equivalent":
        first = f"Any level of {f} will do {scope_short}"
    else:
        first = f"No level of {f} stands out {scope_short}"
    return f"{first}{extra}. {_status(eff, metric)[0].upper()}{_status(eff, metric)[1:]}."


def trend_sentence(trend: Trend, metric: str) -> str:
    """One sentence on a monotone trend of the metric over an ordered factor.

    Args:
        trend: A result of ``factors.trend``.
        metric: The metric's name.

    Returns:
        The sentence, ending with a period.
    """
    f = trend.factor
    if trend.p is None:
        return f"No trend test for {f}: {trend.reason}."
    rho = "" if trend.rho is None else f"; Spearman's rho = {trend.rho:.2f}"
    slope = (f"mean slope {_size(metric, trend.slope)} per unit of {_short(f)}, "
             f"{_ci(metric, *trend.slope_ci, trend.n)}")
    if trend.direction is None:
        return f"No evidence of a monotone trend of {metric} over {f} ({trend.test}, {_p(trend.p)}{rho}; {slope})."
    verb = "increases" if trend.direction == "increasing" else "decreases"
    better = "improves" if trend.improves else "worsens"
    return f"{metric.capitalize()} {verb} ({better}) as {f} grows ({trend.test}, {_p(trend.p)}{rho}; {slope})."


def trend_headline(trend: Trend, effect: FactorEffect, *, metric: str, scope_short: str) -> str:
    """The headline of a study whose focus is an ordered factor with a monotone trend (label noise, depth):
    the direction and slope first, then how much the factor matters."""
    verb = "increases" if trend.direction == "increasing" else "decreases"
    first = (f"Test {metric} {verb} as {trend.factor} grows {scope_short}: {_size(metric, trend.slope)} per unit of "
             f"{_short(trend.factor)} ({_ci(metric, *trend.slope_ci, trend.n)}; {trend.test}, {_p(trend.p)})")
    status = _status(effect, metric)
    return f"{first}. {status[0].upper()}{status[1:]}."
