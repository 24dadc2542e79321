"""Statistics over seeds: per-arm estimates, paired tests, multiple-comparison correction.

Seeds are blocks: arms with the same seed saw the same data subset, data order and dropout
masks, so comparisons pair runs by seed.
"""

from __future__ import annotations

import gc
import json
import math
from dataclasses import dataclass

import numpy as np
from ponder.lazy import stats  # scipy.stats, loaded on first use

__all__ = ["Estimate", "estimate", "Comparison", "paired", "holm", "wilcoxon_floor", "MIN_SEEDS", "level_order"]

MIN_SEEDS = 3  # below this no test is run: a paired t-test on 2 seeds has 1 degree of freedom


@dataclass(frozen=True)
class Estimate:
    """Mean of a metric over seeds with a 95% Student-t confidence interval."""

    n: int
    mean: float
    median: float
    std: float
    lo: float
    hi: float


def estimate(values: np.ndarray, level: float = 0.95, *, bounds: tuple[float, float] | None = None) -> Estimate:
    """Mean, median, std and the t confidence interval of finite ``values``; with ``bounds`` (the range the
    metric can take, e.g. (0, 1) for an accuracy) the interval is cut to that range: a mean accuracy's
    t-interval over few seeds can reach past 100%, which no accuracy can."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return Estimate(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    mean, median = float(v.mean()), float(np.median(v))
    if n == 1:
        return Estimate(1, mean, median, math.nan, math.nan, math.nan)
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    lo, hi = mean - half, mean + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return Estimate(n, mean, median, sd, lo, hi)


@dataclass(frozen=True)
class Comparison:
    """Paired comparison of arm ``other`` against arm ``ref`` over common seeds."""

    ref: str
    other: str
    n: int
    diff: float  # mean of (other - ref)
    diff_lo: float
    diff_hi: float
    t_p: float
    wilcoxon_p: float
    cohen_dz: float
    p_holm: float = math.nan


def paired(ref_name: str, ref: np.ndarray, other_name: str, other: np.ndarray) -> Comparison:
    """Paired t-test and Wilcoxon signed-rank test of other - ref (arrays aligned by seed); below
    :data:`MIN_SEEDS` common seeds the difference and its interval only (p-values NaN: no test), as for
    the factor tests, so no sentence calls a 2-seed difference significant."""
    a, b = np.asarray(ref, float), np.asarray(other, float)
    ok = np.isfinite(a) & np.isfinite(b)
    d = b[ok] - a[ok]
    n = len(d)
    if n < 2:
        return Comparison(ref_name, other_name, n, float(d.mean()) if n else math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
    est = estimate(d)
    if n < MIN_SEEDS:
        return Comparison(ref_name, other_name, n, est.mean, est.lo, est.hi, math.nan, math.nan, math.nan)
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        t_p = 1.0 if est.mean == 0 else 0.0
        dz = 0.0 if est.mean == 0 else math.copysign(math.inf, est.mean)
    else:
        t_p = float(stats.ttest_rel(b[ok], a[ok]).pvalue)
        dz = est.mean / sd
    w_p = 1.0 if np.all(d == 0) else float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
    return Comparison(ref_name, other_name, n, est.mean, est.lo, est.hi, t_p, w_p, dz)


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN)."""
    p = np.asarray(pvalues, float)
    out = np.full(len(p), math.nan)
    ok = np.isfinite(p)
    if ok.any():
        # statsmodels' Holm branch calls gc.collect(): a full collection over every object of the loaded libraries,
        # ~0.2 s a call. Frozen objects are skipped by it, so freeze them for the call and thaw them after; not when
        # the caller keeps objects frozen on purpose (thawing would thaw theirs too).
        from statsmodels.stats.multitest import multipletests  # loaded on first use (seconds of imports)

        freeze = gc.get_freeze_count() == 0
        if freeze:
            gc.freeze()
        try:
            out[ok] = multipletests(p[ok], method="holm")[1]
        finally:
            if freeze:
                gc.unfreeze()
    return out.tolist()


def wilcoxon_floor(n: int) -> float:
    """The smallest two-sided p-value an exact Wilcoxon signed-rank test can give with n pairs: 2 / 2^n."""
    return min(1.0, 2.0 / 2**n)


def level_order(factors: dict[str, list]):
    """Sort key for an arm's levels ``{factor: level}``: the study's own order of each factor's levels, factor
    by factor (widths 16, 64, 256, not the text order 16, 256, 64); a level the study does not list goes last."""

    def text(v) -> str:
        return json.dumps(v, sort_keys=True, default=str)

    pos = {k: {text(v): i for i, v in enumerate(vals)} for k, vals in factors.items()}
    return lambda levels: tuple(pos[k].get(text(levels.get(k)), len(pos[k])) for k in factors)
