"""Every factor judged over seed blocks: main effects, two-way interactions, ordered trends.

Input: a row per run with ``seed``, a column per factor and ``value`` (NaN: diverged). Other factors
are averaged within each seed, so n seeds are n independent blocks; a seed missing a value is dropped
and named in ``note``. The order of ``factors`` decides nothing: effects are sorted by size, then name.
"""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from ponder.lazy import stats  # scipy.stats, loaded on first use

from ponder.analysis.stats import MIN_SEEDS, estimate, holm, paired, wilcoxon_floor

__all__ = ["FactorEffect", "Pairwise", "InteractionTest", "SimpleEffect", "Trend", "main_effects", "interactions", "trend",
           "is_ordered", "wilcoxon_floor"]

EXACT_SIGN_FLIPS, PERMUTATIONS = 12, 9999  # up to 2^12 sign patterns are enumerated; above, 9999 random ones


def _num(x) -> float | None:
    """A finite float, or None (JSON has no NaN)."""
    return float(x) if x is not None and np.isfinite(x) else None


def _clean(obj):
    """Plain JSON-able values: NaN/inf -> None, numpy scalars -> Python, tuples -> lists."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    obj = obj.item() if isinstance(obj, np.generic) else obj
    return _num(obj) if isinstance(obj, float) else obj


class _Json:
    """Mixin: ``to_json()`` gives the dataclass as plain JSON-able dicts."""

    def to_json(self) -> dict:
        """The fields as a dict of str, bool, int, finite float, None, lists and dicts."""
        return _clean(asdict(self))


@dataclass(frozen=True)
class Pairwise(_Json):
    """One level against the factor's best level, paired over seeds; Holm within the factor."""

    level: str
    diff: float | None  # mean of (level - best), metric units
    ci: list[float | None]  # 95% t CI of diff
    p_t: float | None
    p_wilcoxon: float | None
    p_t_holm: float | None
    p_wilcoxon_holm: float | None
    worse: bool  # Holm-adjusted paired t p < alpha


@dataclass(frozen=True)
class FactorEffect(_Json):
    """The main effect of one factor over seed blocks, with its verdict."""

    factor: str
    n: int  # seeds (blocks)
    levels: list[str]  # best first
    means: dict[str, float | None]  # level -> mean over seeds
    ci: dict[str, list[float | None]]  # level -> 95% t CI of the mean
    effect: float | None  # best mean minus worst mean (negative when lower is better)
    effect_ci: list[float | None]  # 95% t CI of the paired difference best - worst
    rope: float
    alpha: float
    verdict: str  # "matters" | "equivalent" | "no evidence"
    best: list[str]  # levels not significantly worse than the best (all levels unless it matters)
    avoid: list[str] = field(default_factory=list)  # levels significantly worse (Holm, paired t)
    strength: str | None = None  # "significant" (both tests reject) | "suggestive" (one does) | None
    test: str = "no test"  # the omnibus test, in words
    p: float | None = None  # its p-value
    rank_test: str = "no test"
    p_rank: float | None = None
    rank_floor: float | None = None  # smallest p the exact rank test can give with n seeds (2 levels)
    family: str = ""  # the Holm family of the pairwise comparisons
    pairwise: list[Pairwise] = field(default_factory=list)
    p_equivalence: float | None = None  # largest TOST p over levels vs best (intersection-union test)
    mde: float | None = None  # minimum detectable difference at 80% power, metric units
    reason: str = ""  # why no test was run
    note: str = ""  # seeds dropped


@dataclass(frozen=True)
class SimpleEffect(_Json):
    """A factor's levels within one level of another factor (means over seeds)."""

    at: str  # the level of the other factor
    best: str
    spread: float  # |best mean - worst mean|
    means: dict[str, float]


@dataclass(frozen=True)
class InteractionTest(_Json):
    """Does one factor's effect depend on another's level? Seeds are subjects."""

    a: str
    b: str
    n: int
    test: str
    p: float | None
    verdict: str  # "interaction" (p < alpha) | "none"
    kind: str | None = None  # "crossover" | "magnitude", only for "interaction"
    crossover_in: list[str] = field(default_factory=list)  # factors whose best level reliably changes with the other
    described: str | None = None  # the factor whose simple effects describe the interaction
    by: str | None = None  # the other factor
    ratio: float | None = None  # largest / smallest spread of ``described`` (magnitude)
    largest_at: str | None = None
    smallest_at: str | None = None
    simple: dict[str, list[SimpleEffect]] = field(default_factory=dict)  # factor -> simple effects per level of the other
    reason: str = ""
    note: str = ""


@dataclass(frozen=True)
class Trend(_Json):
    """A monotone trend of the metric across the ordered levels of a numeric factor."""

    factor: str
    levels: list[float]
    n: int
    test: str
    direction: str | None  # "increasing" | "decreasing" (metric as the level grows); None: no trend found
    improves: bool | None  # the metric gets better as the level grows
    p: float | None  # the smaller one-sided Page p, Holm-adjusted over the two directions
    p_increasing: float | None
    p_decreasing: float | None
    rho: float | None  # Spearman, level vs value over all runs
    rho_p: float | None
    slope: float | None  # mean per-seed least-squares slope, metric per unit of the level
    slope_ci: list[float | None]
    reason: str = ""


def _label(v) -> str:
    """A level as text: 10 -> '10', 10.0 -> '10', 0.1 -> '0.1', strings and bools unchanged."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        return str(v)
    return str(int(v)) if isinstance(v, numbers.Integral) else f"{float(v):.12g}"


def _cells(df: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, str]:
    """Seeds x cells of ``keys``, means over the other factors; seeds with a NaN or short cell dropped (the note)."""
    g = df.assign(**{k: df[k].map(_label) for k in keys}).groupby(["seed", *keys])["value"]
    m, count, size = g.mean(), g.count(), g.size()
    m[(count < size) | (size < size.max())] = np.nan
    wide = m.unstack(keys)
    if len(keys) > 1:  # every combination of the levels seen is a cell
        wide = wide.reindex(columns=pd.MultiIndex.from_product([sorted(wide.columns.unique(i)) for i in range(len(keys))]))
    bad = [int(s) for s in wide.index[wide.isna().any(axis=1)]]
    note = f"seed{'s' * (len(bad) > 1)} {', '.join(map(str, bad))} dropped: a run is missing or has no value"
    return wide.drop(index=bad), note if bad else ""


def _too_few(n: int, what: str) -> str:
    return f"only {n} seed{'s' * (n != 1)} with every {what}: no test is possible (at least {MIN_SEEDS} needed)"


def _tol(vals: np.ndarray) -> float:
    return 1e-12 * max(1.0, float(np.nanmax(np.abs(vals))))


def _omnibus(table: pd.DataFrame) -> tuple[float, float]:
    """p of one-way RM ANOVA (AnovaRM, seeds as subjects) and of Friedman; zero residuals: 1 or 0 from the means."""
    vals, tol = table.to_numpy(float), _tol(table.to_numpy(float))
    resid = vals - vals.mean(1, keepdims=True) - vals.mean(0) + vals.mean()
    long = table.rename_axis(index="seed", columns="A").stack().rename("y").reset_index()
    from statsmodels.stats.anova import AnovaRM  # statsmodels loads on first use
    p = ((1.0 if np.ptp(vals.mean(0)) <= tol else 0.0) if np.abs(resid).max() <= tol else
         float(AnovaRM(long, "y", subject="seed", within=["A"]).fit().anova_table.loc["A", "Pr > F"]))
    tied = np.all(np.abs(vals - vals[:, :1]) <= tol)
    return p, 1.0 if tied else float(stats.friedmanchisquare(*vals.T).pvalue)


def _tost_p(best: np.ndarray, other: np.ndarray, rope: float) -> float:
    """TOST p that other - best lies within (-rope, rope); exact 0/1 when the differences are constant."""
    d = other - best
    if np.ptp(d) <= _tol(d):
        return 0.0 if abs(float(d.mean())) < rope else 1.0
    from statsmodels.stats.weightstats import ttost_paired  # statsmodels loads on first use
    return float(ttost_paired(other, best, -rope, rope)[0])


def _pairwise(table: pd.DataFrame, order: list[str], alpha: float) -> list[Pairwise]:
    ref = table[order[0]].to_numpy(float)
    comps = [paired(order[0], ref, lv, table[lv].to_numpy(float)) for lv in order[1:]]
    th, wh = holm([c.t_p for c in comps]), holm([c.wilcoxon_p for c in comps])
    return [Pairwise(c.other, _num(c.diff), [_num(c.diff_lo), _num(c.diff_hi)], _num(c.t_p), _num(c.wilcoxon_p), _num(t),
                     _num(w), bool(t < alpha)) for c, t, w in zip(comps, th, wh)]


def _main_effect(df: pd.DataFrame, factor: str, *, higher: bool, rope: float, alpha: float, bounds=None) -> FactorEffect:
    """The main effect of ``factor``: see :func:`main_effects`."""
    table, note = _cells(df, [factor])
    n, sign = len(table), 1.0 if higher else -1.0
    est = {lv: estimate(table[lv].to_numpy(float), bounds=bounds) for lv in table.columns}
    order = sorted(table.columns, key=lambda lv: (-sign * est[lv].mean if n else 0.0, lv))
    eff = estimate((table[order[0]] - table[order[-1]]).to_numpy(float))
    base = dict(factor=factor, n=n, levels=order, means={lv: _num(est[lv].mean) for lv in order},
                ci={lv: [_num(est[lv].lo), _num(est[lv].hi)] for lv in order}, effect=_num(eff.mean),
                effect_ci=[_num(eff.lo), _num(eff.hi)], rope=rope, alpha=alpha, note=note)
    if len(order) < 2 or n < MIN_SEEDS:
        reason = f"only one level ({order[0]})" if len(order) < 2 else _too_few(n, "level")
        return FactorEffect(**base, verdict="no evidence", best=list(order), reason=reason)
    pairs = _pairwise(table, order, alpha)
    if len(order) == 2:
        p, p_rank = pairs[0].p_t, pairs[0].p_wilcoxon
        test, rank_test, floor = f"paired t-test over {n} seeds", "Wilcoxon signed-rank test", wilcoxon_floor(n)
    else:
        (p, p_rank), floor = _omnibus(table), None
        test, rank_test = f"repeated-measures ANOVA over {n} seeds", "Friedman test"
    rejects = [q is not None and q < alpha for q in (p, p_rank)]
    p_eq = max(_tost_p(table[order[0]].to_numpy(float), table[lv].to_numpy(float), rope) for lv in order[1:])
    verdict = "matters" if any(rejects) else "equivalent" if p_eq < alpha else "no evidence"
    strength = "significant" if all(rejects) else "suggestive" if any(rejects) else None
    avoid = [q.level for q in pairs if q.worse] if verdict == "matters" else []
    sd = max(float((table[lv] - table[order[0]]).std(ddof=1)) for lv in order[1:])  # MDE uses the largest sd
    from statsmodels.stats.power import TTestPower  # statsmodels loads on first use
    return FactorEffect(**base, verdict=verdict, strength=strength, best=[lv for lv in order if lv not in avoid],
                        avoid=avoid, test=test, p=p, rank_test=rank_test, p_rank=p_rank, rank_floor=floor,
                        family=f"each level of {factor} vs its best level: {len(order) - 1} paired t-tests, Holm",
                        pairwise=pairs, p_equivalence=p_eq,
                        mde=float(TTestPower().solve_power(nobs=n, alpha=alpha, power=0.8)) * sd)


def main_effects(df: pd.DataFrame, factors: list[str], *, higher: bool, rope: float, alpha: float = 0.05,
                 bounds: tuple[float, float] | None = None) -> list[FactorEffect]:
    """Judge every factor's main effect over seed blocks.

    Omnibus: 2 levels, paired t and Wilcoxon; 3+, repeated-measures ANOVA and Friedman. Each level
    vs the best: paired t and Wilcoxon, Holm within the factor. "matters" when an omnibus test
    rejects (``strength`` "significant" if both do, "suggestive" if one); "equivalent" when every
    level is within ``rope`` of the best (paired TOST); else "no evidence", with the MDE.

    Args:
        df: One row per run: ``seed``, the factor columns and ``value``.
        factors: The factor columns; their order decides nothing.
        higher: True when higher is better (accuracy), False for loss-like metrics.
        rope: Region of practical equivalence in metric units (0.01 = 1 point of accuracy).
        alpha: Significance level of every test.
        bounds: The metric's range (0, 1 for an accuracy): each level's interval is cut to it.

    Returns:
        One FactorEffect per factor, largest |effect| first (ties by name).

    Raises:
        ValueError: A column is missing, the table is empty or ``rope`` < 0.
    """
    _check(df, factors, rope)
    out = [_main_effect(df, f, higher=higher, rope=rope, alpha=alpha, bounds=bounds) for f in factors]
    return sorted(out, key=lambda e: (-abs(e.effect) if e.effect is not None else math.inf, e.factor))


def _check(df: pd.DataFrame, factors: list[str], rope: float = 0.0) -> None:
    missing = [c for c in ["seed", "value", *factors] if c not in df.columns]
    if missing or len(df) == 0 or rope < 0:
        raise ValueError(f"need a non-empty runs table with columns {missing or factors} and rope >= 0; got "
                         f"{len(df)} rows, columns {list(df.columns)}, rope {rope}")


def _sign_flip_p(inter: np.ndarray, seed: int = 0) -> float:
    """Sign-flip permutation p of the per-seed interaction matrices (exact up to 2^12 patterns)."""
    n = len(inter)
    signs = (np.array(list(itertools.product([1.0, -1.0], repeat=n))) if n <= EXACT_SIGN_FLIPS else  # row 0: all +1
             np.vstack([np.ones(n), np.random.default_rng(seed).choice([1.0, -1.0], size=(PERMUTATIONS, n))]))
    stat = ((signs @ inter.reshape(n, -1) / n) ** 2).sum(axis=1)
    return float(np.mean(stat >= stat[0] - _tol(stat)))


def _interaction_p(cube: np.ndarray, long: pd.DataFrame) -> tuple[float, str]:
    """p of the A:B interaction: AnovaRM; decided from the data when its error term is zero."""
    inter = cube - cube.mean(2, keepdims=True) - cube.mean(1, keepdims=True) + cube.mean((1, 2), keepdims=True)
    tol = _tol(cube)
    if np.abs(inter).max() <= tol:
        return 1.0, "no interaction in any seed (every interaction contrast is exactly 0)"
    if np.abs(inter - inter.mean(0)).max() <= tol:
        return _sign_flip_p(inter), f"exact sign-flip permutation test over {len(cube)} seeds (ANOVA error term is 0)"
    from statsmodels.stats.anova import AnovaRM  # statsmodels loads on first use
    res = AnovaRM(long, "y", subject="seed", within=["A", "B"]).fit().anova_table.loc["A:B"]
    return float(res["Pr > F"]), (f"two-way repeated-measures ANOVA over {len(cube)} seeds, "
                                  f"interaction F({res['Num DF']:g}, {res['Den DF']:g}) = {res['F Value']:.2f}")


def _direction(cube: np.ndarray, la: list[str], lb: list[str], sign: float) -> tuple[list[SimpleEffect], bool]:
    """Simple effects of the axis-1 factor per axis-2 level; does its best flip (both paired CIs exclude 0)?"""
    m = cube.mean(0)
    idx = [int(np.argmax(sign * m[:, j])) for j in range(len(lb))]
    simple = [SimpleEffect(b, la[i], float(np.ptp(m[:, j])), {a: float(v) for a, v in zip(la, m[:, j])})
              for j, (b, i) in enumerate(zip(lb, idx))]
    flip = any(idx[j1] != idx[j2]
               and estimate(sign * (cube[:, idx[j1], j1] - cube[:, idx[j2], j1])).lo > 0
               and estimate(sign * (cube[:, idx[j2], j2] - cube[:, idx[j1], j2])).lo > 0
               for j1, j2 in itertools.permutations(range(len(lb)), 2))
    return simple, flip


def _describe(a: str, b: str, dirs: dict) -> dict:
    """Kind, the factor that describes the interaction, and where its effect is largest and smallest."""
    flips = [f for f in (a, b) if dirs[f][1]]
    if flips:  # the factor with the larger simple effect somewhere
        described = sorted(flips, key=lambda f: (-max(s.spread for s in dirs[f][0]), f))[0]
    else:  # the factor that matters at every level of the other: its smallest simple effect is the larger
        described = sorted((a, b), key=lambda f: (-min(s.spread for s in dirs[f][0]), f))[0]
    top, low = max(dirs[described][0], key=lambda s: s.spread), min(dirs[described][0], key=lambda s: s.spread)
    ratio = None if flips or low.spread <= 0 else top.spread / low.spread
    return dict(kind="crossover" if flips else "magnitude", crossover_in=flips, described=described,
                by=b if described == a else a, ratio=ratio, largest_at=top.at, smallest_at=low.at)


def _interaction(df: pd.DataFrame, a: str, b: str, *, higher: bool, alpha: float) -> InteractionTest:
    """Two-way interaction of ``a`` and ``b``: see :func:`interactions`."""
    wide, note = _cells(df, [a, b])
    la, lb, n = list(wide.columns.unique(0)), list(wide.columns.unique(1)), len(wide)
    base = dict(a=a, b=b, n=n, note=note)
    if n < MIN_SEEDS:
        return InteractionTest(**base, test="no test", p=None, verdict="none", reason=_too_few(n, "cell"))
    cube = wide.to_numpy(float).reshape(n, len(la), len(lb))
    long = wide.rename_axis(index="seed", columns=["A", "B"]).stack(["A", "B"]).rename("y").reset_index()
    p, test = _interaction_p(cube, long)
    sign = 1.0 if higher else -1.0
    dirs = {a: _direction(cube, la, lb, sign), b: _direction(cube.transpose(0, 2, 1), lb, la, sign)}
    kind = _describe(a, b, dirs) if p < alpha else {}
    return InteractionTest(**base, test=test, p=p, verdict="interaction" if kind else "none",
                           simple={f: d[0] for f, d in dirs.items()}, **kind)


def interactions(df: pd.DataFrame, factors: list[str], *, higher: bool, alpha: float = 0.05) -> list[InteractionTest]:
    """Test every pair of factors (2+ levels each) for interaction: two-way RM ANOVA, seeds as subjects.

    Cells (seed, a, b) average the other factors; seeds lacking a cell are dropped (``note``). A zero
    ANOVA error term: p = 1 if every interaction contrast is 0, else an exact sign-flip test. On
    rejection, "crossover" when a factor's best level flips (both paired CIs exclude 0), else
    "magnitude" with ``ratio``. No Holm across pairs.

    Args:
        df: One row per run: ``seed``, the factor columns and ``value``.
        factors: The factor columns; their order decides nothing.
        higher: True when a higher value is better.
        alpha: Significance level.

    Returns:
        One InteractionTest per pair, smallest p first (untested pairs last).
    """
    _check(df, factors)
    multi = [f for f in factors if df[f].nunique() >= 2]
    out = [_interaction(df, a, b, higher=higher, alpha=alpha) for a, b in itertools.combinations(multi, 2)]
    return sorted(out, key=lambda t: (t.p if t.p is not None else math.inf, *sorted((t.a, t.b))))


def is_ordered(levels) -> bool:
    """True when every level is a real number and none is a bool (so depth, lr, noise; not names)."""
    return all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in levels)


def trend(df: pd.DataFrame, factor: str, *, higher: bool, alpha: float = 0.05) -> Trend | None:
    """Monotone trend of the metric over an ordered numeric factor with 3+ levels.

    Page's L test over seeds, one-sided each way, the smaller p Holm-adjusted (x2); Spearman's rho
    over all runs; the mean per-seed least-squares slope (per unit of the level) with its t CI.

    Args:
        df: One row per run: ``seed``, ``factor`` and ``value``.
        factor: The ordered factor's column.
        higher: True when a higher value is better.
        alpha: Significance level.

    Returns:
        A Trend; None when the factor is not numeric or has under 3 levels.
    """
    _check(df, [factor])
    levels = sorted(df[factor].dropna().unique().tolist())
    if len(levels) < 3 or not is_ordered(levels):
        return None
    table, _ = _cells(df, [factor])
    table = table[[_label(v) for v in levels]]
    n, x = len(table), np.asarray(levels, float)
    if n < MIN_SEEDS:
        return Trend(factor, x.tolist(), n, "no test", *[None] * 8, [None, None], reason=_too_few(n, "level"))
    vals = table.to_numpy(float)
    p_inc, p_dec = (float(stats.page_trend_test(v).pvalue) for v in (vals, vals[:, ::-1]))
    p = min(1.0, 2 * min(p_inc, p_dec))
    direction = None if p >= alpha else "increasing" if p_inc < p_dec else "decreasing"
    runs = df[[factor, "value"]].dropna()
    rho = stats.spearmanr(runs[factor], runs["value"]) if runs["value"].nunique() > 1 else None
    slope = estimate(np.array([np.polyfit(x, row, 1)[0] for row in vals]))
    return Trend(factor, x.tolist(), n, f"Page's L test over {n} seeds, one-sided each way, Holm x2", direction,
                 None if direction is None else (direction == "increasing") == higher, p, p_inc, p_dec,
                 *([_num(rho.statistic), _num(rho.pvalue)] if rho is not None else [None, None]), _num(slope.mean),
                 [_num(slope.lo), _num(slope.hi)])
