"""Statistics over seeds: per-arm estimates, paired tests, multiple-comparison correction.

Seeds are blocks: arms with the same seed saw the same data subset, data order and dropout
masks, so comparisons pair runs by seed.
"""

from __future__ import annotations

import gc
import math
from dataclasses import dataclass

import numpy as np
from ponder.lazy import stats  # scipy.stats, loaded on first use

__all__ = ["Estimate", "estimate", "Comparison", "paired", "holm", "wilcoxon_floor"]


@dataclass(frozen=True)
class Estimate:
    """Mean of a metric over seeds with a 95% Student-t confidence interval."""

    n: int
    mean: float
    median: float
    std: float
    lo: float
    hi: float


def estimate(values: np.ndarray, level: float = 0.95) -> Estimate:
    """Mean, median, std and the t confidence interval of finite ``values``."""
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
    return Estimate(n, mean, median, sd, mean - half, mean + half)


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
    """Paired t-test and Wilcoxon signed-rank test of other - ref (arrays aligned by seed)."""
    a, b = np.asarray(ref, float), np.asarray(other, float)
    ok = np.isfinite(a) & np.isfinite(b)
    d = b[ok] - a[ok]
    n = len(d)
    if n < 2:
        return Comparison(ref_name, other_name, n, float(d.mean()) if n else math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
    est = estimate(d)
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
