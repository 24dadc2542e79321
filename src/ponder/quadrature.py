"""Gaussian expectations by quadrature: the one numerical helper the catalog and the theory share.

It sits below both, so neither imports the other for it.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = ["gauss_normal_nodes", "PANELS"]

PANELS = 400  # 3200 nodes for 1-D expectations (even: 0 is a panel edge)


@lru_cache(maxsize=4)
def gauss_normal_nodes(panels: int = PANELS) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for E_z[f(z)], z ~ N(0, 1): composite 8-point Gauss-Legendre on [-10, 10].

    Panel edges include 0, where most activations have their kink, so piecewise-smooth
    integrands converge fast; Gauss-Hermite nodes converge slowly across a kink.
    """
    x, w = np.polynomial.legendre.leggauss(8)
    edges = np.linspace(-10.0, 10.0, panels + 1)
    half = (edges[1:] - edges[:-1])[:, None] / 2
    mid = (edges[1:] + edges[:-1])[:, None] / 2
    z = (mid + half * x).ravel()
    wz = (half * w).ravel() * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    return z, wz
