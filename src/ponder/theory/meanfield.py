"""Mean-field signal propagation in wide random networks (Poole et al. 2016; Schoenholz et al. 2017).

For h^l = W^l phi(h^{l-1}) + b^l with W_ij ~ N(0, sigma_w^2 / N) and b_i ~ N(0, sigma_b^2):

- length map  q^l = sigma_w^2 E_z[phi(sqrt(q^{l-1}) z)^2] + sigma_b^2, fixed point q*;
- chi_1 = sigma_w^2 E_z[phi'(sqrt(q*) z)^2]: < 1 ordered (signals and gradients vanish),
  > 1 chaotic (gradients explode), = 1 critical, the "edge of chaos";
- depth scales: 1/xi_q = -log(chi_1 + sigma_w^2 E[phi''(sqrt(q*) z) phi(sqrt(q*) z)]) and
  1/xi_c = -log(sigma_w^2 E[phi'(u1) phi'(u2)]) at the correlation fixed point c*
  (= -log chi_1 when c* = 1, so xi_c diverges at criticality). Schoenholz et al. find that
  networks train only up to a depth of about 6 xi_c.

Expectations use composite Gauss-Legendre quadrature against the normal density, with autograd derivatives of
the catalog activation; ReLU and the identity use their closed forms, since quadrature is
inaccurate at ReLU's kink.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy.optimize import brentq

from ponder import registry
from ponder.errors import PonderError
from ponder.quadrature import PANELS as _PANELS, gauss_normal_nodes as _nodes

__all__ = ["MeanField", "meanfield", "fixed_point_q", "chi1", "critical_sigma_w2", "depth_scales", "expect"]



def _homogeneous(name: str) -> float | None:
    """c of a positively homogeneous activation (declared in its catalog facts), else None."""
    return registry.get("activation", name).facts.homogeneous


def _derivs(name: str, u: np.ndarray, order: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """phi(u) and, up to ``order``, phi'(u) and phi''(u) by autograd on float64 (zeros where not asked)."""
    f = registry.get("activation", name).fn
    if order == 0:
        with torch.no_grad():
            y = f(torch.as_tensor(u, dtype=torch.float64)).numpy()
        return y, np.zeros_like(y), np.zeros_like(y)
    t = torch.as_tensor(u, dtype=torch.float64).requires_grad_()
    y = f(t)
    (d1,) = torch.autograd.grad(y.sum(), t, create_graph=order > 1)
    d2 = torch.zeros_like(t)
    if order > 1 and d1.requires_grad:
        (g2,) = torch.autograd.grad(d1.sum(), t, allow_unused=True)
        d2 = torch.zeros_like(t) if g2 is None else g2
    return y.detach().numpy(), d1.detach().numpy(), d2.detach().numpy()


def expect(name: str, q: float, what: str = "phi2", panels: int | None = None) -> float:
    """E_z over z ~ N(0,1) of phi(sqrt(q) z)^2 ('phi2'), phi'(.)^2 ('dphi2') or phi''(.) phi(.) ('d2phi_phi')."""
    x, w = _nodes(panels or _PANELS)
    order = {"phi2": 0, "dphi2": 1, "d2phi_phi": 2}[what]
    # At q* = 0 the limit q -> 0+ is wanted (for a kink at 0: the mean of the one-sided
    # derivatives), not phi'(0) at a single point: evaluate at a tiny positive q.
    y, d1, d2 = _derivs(name, math.sqrt(max(q, 1e-12)) * x, order)
    val = {"phi2": y * y, "dphi2": d1 * d1, "d2phi_phi": d2 * y}[what]
    return float((w * val).sum())


def fixed_point_q(name: str, sigma_w2: float, sigma_b2: float, *, q0: float = 1.0) -> float:
    """The stable fixed point q* of the length map: the root of sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2 - q
    by Brent's method (inf when the map diverges, as for ReLU with sigma_w^2 >= 2 and sigma_b > 0)."""
    c = _homogeneous(name)
    if c is not None:
        if sigma_w2 * c < 1:
            return sigma_b2 / (1 - sigma_w2 * c)
        return q0 if sigma_w2 * c == 1 and sigma_b2 == 0 else math.inf
    if sigma_b2 == 0 and abs(_derivs(name, np.zeros(1), 0)[0][0]) < 1e-15:
        # phi(0) = 0: q* = 0 is a fixed point, the stable one while chi_1(q -> 0) < 1; iterating
        # towards it converges only like 1/l, so decide directly.
        if sigma_w2 * expect(name, 0.0, "dphi2") < 1:
            return 0.0
    g = lambda q: sigma_w2 * expect(name, q) + sigma_b2 - q  # noqa: E731  (> 0 below a stable q*, < 0 above)
    lo = max(sigma_b2, 1e-12)
    if g(lo) <= 0:
        return lo
    hi = max(1.0, 2 * sigma_b2)
    while g(hi) > 0:
        lo, hi = hi, hi * 4
        if hi > 1e12:
            return math.inf
    return float(brentq(g, lo, hi, xtol=1e-14, rtol=1e-13))


def chi1(name: str, sigma_w2: float, sigma_b2: float) -> float:
    """chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2]; ReLU: sigma_w^2 / 2, identity: sigma_w^2, for every q."""
    c = _homogeneous(name)
    if c is not None:
        return sigma_w2 * c
    q = fixed_point_q(name, sigma_w2, sigma_b2)
    if not math.isfinite(q):
        return math.inf
    return sigma_w2 * expect(name, q, "dphi2")


@lru_cache(maxsize=256)
def critical_sigma_w2(name: str, sigma_b2: float = 0.0, *, lo: float = 1e-3, hi: float = 1000.0) -> float:
    """The sigma_w^2 with chi_1 = 1 at this sigma_b^2 (the critical line), by Brent's method.

    Raises:
        PonderError: the activation has no critical point at this sigma_b^2 in [lo, hi].
    """
    c = _homogeneous(name)
    if c is not None:
        if sigma_b2 > 0:
            raise PonderError(f"the edge of chaos of {name!r} is the single point sigma_b^2 = 0 (the length map diverges "
                              "on the critical line otherwise); use sigma_b2 = 0")
        return 1.0 / c
    f = lambda s: chi1(name, s, sigma_b2) - 1.0  # noqa: E731
    grid = np.geomspace(lo, hi, 61)
    vals = [f(s) for s in grid]
    for a, b, fa, fb in zip(grid[:-1], grid[1:], vals[:-1], vals[1:]):
        if math.isfinite(fa) and math.isfinite(fb) and fa * fb <= 0:
            return float(brentq(f, a, b, xtol=1e-12))
    raise PonderError(f"activation {name!r} has no critical sigma_w^2 in [{lo}, {hi}] at sigma_b^2 = {sigma_b2}")


class _CMap:
    """The correlation map at length q: c -> q12(c) / q, and its slope sigma_w^2 E[phi'(u1) phi'(u2)]."""

    def __init__(self, name: str, sigma_w2: float, sigma_b2: float, q: float, panels: int = 40):
        x, w = _nodes(panels)
        self.name, self.sw2, self.sb2, self.q = name, sigma_w2, sigma_b2, q
        self.z1, self.z2 = np.meshgrid(x, x, indexing="ij")
        self.ww = np.outer(w, w).ravel()
        p1, d1, _ = _derivs(name, (math.sqrt(q) * self.z1).ravel(), 1)  # u1 does not depend on c
        self.p1, self.d1 = p1, d1

    def __call__(self, c: float) -> tuple[float, float]:
        u2 = math.sqrt(self.q) * (c * self.z1 + math.sqrt(max(0.0, 1 - c * c)) * self.z2)
        p2, d2, _ = _derivs(self.name, u2.ravel(), 1)
        q12 = self.sw2 * float((self.ww * self.p1 * p2).sum()) + self.sb2
        return q12 / self.q, self.sw2 * float((self.ww * self.d1 * d2).sum())


def depth_scales(name: str, sigma_w2: float, sigma_b2: float) -> tuple[float, float, float]:
    """(xi_q, xi_c, c*): the depth scales of the length and correlation maps and the correlation fixed point."""
    c1 = chi1(name, sigma_w2, sigma_b2)
    if _homogeneous(name) is not None:
        xi_q = math.inf if c1 >= 1 else -1.0 / math.log(c1)
        if c1 <= 1:
            return xi_q, (math.inf if c1 == 1 else -1.0 / math.log(c1)), 1.0
        return xi_q, math.nan, math.nan
    q = fixed_point_q(name, sigma_w2, sigma_b2)
    if not math.isfinite(q):
        return math.nan, math.nan, math.nan
    a = c1 + sigma_w2 * expect(name, q, "d2phi_phi")
    xi_q = math.inf if a >= 1 or a <= 0 else -1.0 / math.log(a)
    if c1 <= 1 + 1e-12:
        return xi_q, (math.inf if abs(c1 - 1) < 1e-9 else -1.0 / math.log(c1)), 1.0
    cmap = _CMap(name, sigma_w2, sigma_b2, q)
    f = lambda c: cmap(c)[0] - c  # noqa: E731  (chaotic phase: > 0 below c*, < 0 between c* and 1)
    top = 1 - 1e-6
    f0 = f(0.0)
    if f0 == 0:
        c = 0.0
    else:
        lo, hi = (0.0, top) if f0 > 0 else (-top, 0.0)
        c = float(brentq(f, lo, hi, xtol=1e-12)) if f(lo) * f(hi) < 0 else math.nan
    if not math.isfinite(c):
        return xi_q, math.nan, math.nan
    _, slope = cmap(c)
    return xi_q, (math.inf if slope >= 1 else -1.0 / math.log(slope)), c


@dataclass(frozen=True)
class MeanField:
    """Mean-field summary of one (activation, sigma_w^2, sigma_b^2)."""

    activation: str
    sigma_w2: float
    sigma_b2: float
    q_star: float
    chi1: float
    xi_q: float
    xi_c: float
    c_star: float

    @property
    def phase(self) -> str:
        if not math.isfinite(self.chi1):
            return "divergent"
        if abs(self.chi1 - 1) < 1e-3:
            return "critical"
        return "ordered" if self.chi1 < 1 else "chaotic"

    @property
    def trainable_depth(self) -> float:
        """Schoenholz et al.'s estimate of the deepest trainable network, 6 xi_c."""
        return 6 * self.xi_c


def meanfield(name: str, sigma_w2: float, sigma_b2: float = 0.0) -> MeanField:
    """q*, chi_1, xi_q, xi_c and c* for an activation at (sigma_w^2, sigma_b^2)."""
    registry.get("activation", name)
    q = fixed_point_q(name, sigma_w2, sigma_b2)
    c1 = chi1(name, sigma_w2, sigma_b2)
    xi_q, xi_c, c = depth_scales(name, sigma_w2, sigma_b2)
    return MeanField(name, sigma_w2, sigma_b2, q, c1, xi_q, xi_c, c)
