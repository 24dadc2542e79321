"""The folklore the seed quotes: "uniform random numbers put more weights near 0".

At equal variance sigma^2, the fraction of weights within k sigma of 0 is, exactly:
- uniform on [-sqrt(3) sigma, sqrt(3) sigma]: k / sqrt(3) (for k <= sqrt(3));
- normal: 2 Phi(k) - 1;
- normal truncated at 2 of its own sigma_0, rescaled to std sigma (sigma_0 = sigma / 0.8796):
  (2 Phi(k 0.8796) - 1) / (2 Phi(2) - 1).
ponder computes these, samples every catalog initializer, and states the verdict from the
numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import norm

from ponder import registry
from ponder.lazy import torch  # torch loads on first use: the catalog registers without it
from ponder.catalog.initializers.base import init_network

__all__ = ["exact_fraction", "NearZero", "near_zero_table", "verdict", "LAWS"]

TRUNC_STD = 0.87962566103423978
LAWS = ("uniform", "normal", "truncated_normal")


def exact_fraction(law: str, k: float) -> float:
    """P(|w| < k sigma) for a zero-mean law with standard deviation sigma."""
    if law == "uniform":
        return min(1.0, k / math.sqrt(3))
    if law == "normal":
        return 2 * norm.cdf(k) - 1
    if law == "truncated_normal":
        return min(1.0, (2 * norm.cdf(k * TRUNC_STD) - 1) / (2 * norm.cdf(2) - 1)) if k * TRUNC_STD < 2 else 1.0
    raise ValueError(f"no closed form for law {law!r}")


@dataclass(frozen=True)
class NearZero:
    """One initializer's weights near zero, sampled on a (256, 256) layer."""

    name: str
    law: str
    std: float
    sampled: float  # fraction of |w - mean(w)| < k std(w)
    exact: float | None  # the law's exact value, where it has one


def near_zero_table(k: float = 0.25, shape: tuple[int, int] = (256, 256), seed: int = 0) -> list[NearZero]:
    """Sample every random, zero-mean-capable layer initializer once and measure the near-zero fraction."""
    rows = []
    for e in registry.entries("initializer"):
        law = e.facts.law
        if law in ("constant", "deterministic") or e.facts.network:
            continue
        ctx = {"activation": "tanh"}
        try:
            (w, _), = init_network(e.name, [shape], generator=torch.Generator().manual_seed(seed), dtype=torch.float64,
                                   context=ctx)
            if not (isinstance(w, torch.Tensor) and w.is_floating_point() and w.numel() > 1):
                raise TypeError(f"drew {type(w).__name__}")
        except Exception:  # noqa: BLE001  (a plugin that cannot draw this layer is left out; a study using it is
            if not e.plugin:  # refused by the plan checks)
                raise
            continue
        w = w.flatten()
        sd = float(w.std())
        if sd == 0:
            continue
        sampled = float(((w - w.mean()).abs() < k * sd).double().mean())
        exact = exact_fraction(law, k) if law in LAWS else None  # measured around the mean, so shifted laws compare too
        rows.append(NearZero(e.name, law, sd, sampled, exact))
    return rows


def verdict(k: float = 0.25) -> str:
    """The sentence the init report prints, computed from the exact fractions."""
    u, n, t = (exact_fraction(law, k) for law in LAWS)
    most = max(zip((u, n, t), ("uniform", "normal", "truncated normal")))[1]
    return (f"At equal variance, the fraction of weights within {k:g} standard deviations of 0 is {100 * u:.1f}% for a "
            f"uniform law, {100 * n:.1f}% for a normal law and {100 * t:.1f}% for a normal truncated at 2 sigma: the "
            f"{most} law puts the most weight near 0, so the folklore 'uniform puts more weights near 0' is "
            f"{'true' if most == 'uniform' else 'false'} once the variances are matched; it holds only when a uniform law is "
            "compared with a normal law of larger variance.")
