"""Modern initializers: LSUV, orthogonal with a gain, gain matched to the activation, and
critical (edge-of-chaos) initialization from mean-field theory."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable

from ponder import registry
from ponder.lazy import torch  # torch loads on first use: the catalog registers without it
from ponder.catalog.initializers.base import check_shape, fans_torch
from ponder.errors import CatalogError
from ponder.registry import register

__all__ = ["svd_orthonormal"]


def svd_orthonormal(shape, *, generator, dtype=None) -> torch.Tensor:
    """An orthonormal matrix on (shape[0], prod(shape[1:])) from the SVD of a N(0, 1) draw (Saxe et al.).

    The left factor U is used when it has the flattened shape, else V^T (rows <= cols gives
    orthonormal rows).
    """
    rows = shape[0]
    cols = math.prod(shape[1:])
    a = torch.empty((rows, cols), dtype=torch.float64).normal_(0.0, 1.0, generator=generator)
    u, _, vt = torch.linalg.svd(a, full_matrices=False)
    q = u if u.shape == (rows, cols) else vt
    return q.reshape(shape).to(torch.float64 if dtype is None else dtype)


@lru_cache(maxsize=64)
def _auto_gain(activation: str) -> float:
    from ponder.catalog.activations import numerical_gain

    return numerical_gain(registry.get("activation", activation).fn)


def _gain(gain, activation: str | None) -> float:
    if gain == "auto":
        if activation is None:
            raise CatalogError("gain = 'auto' needs the activation")
        return _auto_gain(activation)
    return float(gain)


@register("initializer", "orthogonal", law="orthogonal", formula="W = g Q, Q orthonormal on (out, prod(rest)); g a number or 'auto' (matched to the activation)",
          source="Saxe, McClelland & Ganguli 2014; torch-layout flattening", cites="Saxe, McClelland & Ganguli 2014 (Exact solutions ... deep linear networks)",
          needs=("activation",), sigma_w2="g^2 fan_in / max(out, fan_in)")
def orthogonal(shape, *, generator, dtype=None, activation: str | None = None, gain: float | str = 1.0):
    """Random orthogonal weights times ``gain``; with ``gain = "auto"`` the gain g solves E[(g phi(z))^2] = 1
    for the layer's activation (sqrt(2) for ReLU, about 1.59 for tanh), the dynamical-isometry
    scaling. Bias zero."""
    shape = check_shape(shape, "orthogonal", 2)
    return (_gain(gain, activation) * svd_orthonormal(shape, generator=generator, dtype=torch.float64)).to(
        torch.float32 if dtype is None else dtype)


@register("initializer", "gain_matched", law="normal", formula="W ~ N(0, g^2 / fan_in), g from E[(g phi(z))^2] = 1 for the activation",
          source="ponder: He's derivation with the activation's second moment computed by quadrature",
          cites="He, Zhang, Ren & Sun 2015; Klambauer et al. 2017 (the general variance-preserving rule)",
          needs=("activation",), sigma_w2="g^2 (2 for relu)")
def gain_matched(shape, *, generator, dtype=None, activation: str | None = None):
    """Normal weights whose variance 1/(fan_in E[phi(z)^2]) keeps the second moment of unit-variance
    pre-activations at 1 for this activation: He init for ReLU, generalized. Bias zero."""
    fan_in, _ = fans_torch(check_shape(shape, "gain_matched", 2))
    g = _gain("auto", activation)
    return torch.empty(shape, dtype=dtype).normal_(0.0, g / math.sqrt(fan_in), generator=generator)


@register("initializer", "critical", law="normal", formula="W ~ N(0, sigma_w^2 / fan_in), b ~ N(0, sigma_b^2) with chi_1(sigma_w^2, sigma_b^2) = 1",
          source="mean-field critical line computed by ponder.theory.meanfield (not looked up)",
          cites="Poole et al. 2016; Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017 (Deep information propagation)",
          needs=("activation",), bias="own", sigma_w2="critical value for the activation")
def critical(shape, *, generator, dtype=None, activation: str | None = None, sigma_b2: float = 0.0):
    """Edge-of-chaos initialization: for the layer's activation and the chosen sigma_b^2, sigma_w^2 is
    the root of chi_1 = 1 (ReLU: (2, 0); tanh: (1, 0), rising to 1.76 at sigma_b^2 = 0.05).
    Weights N(0, sigma_w^2 / fan_in), biases N(0, sigma_b^2), weight drawn first."""
    from ponder.theory.meanfield import critical_sigma_w2

    if activation is None:
        raise CatalogError("critical initialization needs the activation")
    shape = check_shape(shape, "critical", 2)
    fan_in, _ = fans_torch(shape)
    s_w2 = critical_sigma_w2(activation, sigma_b2)
    w = torch.empty(shape, dtype=dtype).normal_(0.0, math.sqrt(s_w2 / fan_in), generator=generator)
    b = torch.empty(shape[0], dtype=dtype).normal_(0.0, math.sqrt(sigma_b2), generator=generator) if sigma_b2 > 0 \
        else torch.zeros(shape[0], dtype=dtype)
    return w, b


@register("initializer", "meanfield", law="normal or uniform",
          formula="W with Var = sigma_w^2 / fan_in (normal, or uniform on +-sqrt(3 sigma_w^2 / fan_in)), b ~ N(0, sigma_b^2)",
          source="the mean-field papers' parameterisation (Poole et al. 2016, eq. 1)",
          cites="Poole et al. 2016; Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017 (Deep information propagation)",
          bias="own", sigma_w2="sigma_w2 (the parameter)")
def meanfield(shape, *, generator, dtype=None, sigma_w2: float = 1.0, sigma_b2: float = 0.0,
              distribution: str = "normal"):
    """Weights and biases at the variances of the mean-field papers: Var(W) = sigma_w^2 / fan_in and
    b ~ N(0, sigma_b^2), so a study can place its networks anywhere on the order-chaos phase diagram.
    ``distribution`` is ``normal`` or ``uniform`` (same variance). Weight drawn first."""
    if not (math.isfinite(sigma_w2) and sigma_w2 >= 0 and math.isfinite(sigma_b2) and sigma_b2 >= 0):
        raise CatalogError(f"meanfield needs finite sigma_w2 >= 0 and sigma_b2 >= 0, got {sigma_w2!r}, {sigma_b2!r}")
    if distribution not in ("normal", "uniform"):
        raise CatalogError(f"meanfield distribution must be 'normal' or 'uniform', got {distribution!r}")
    shape = check_shape(shape, "meanfield", 2)
    fan_in, _ = fans_torch(shape)
    std = math.sqrt(sigma_w2 / fan_in)
    w = torch.empty(shape, dtype=dtype)
    w = w.normal_(0.0, std, generator=generator) if distribution == "normal" else \
        w.uniform_(-math.sqrt(3) * std, math.sqrt(3) * std, generator=generator)
    b = torch.empty(shape[0], dtype=dtype).normal_(0.0, math.sqrt(sigma_b2), generator=generator) if sigma_b2 > 0 \
        else torch.zeros(shape[0], dtype=dtype)
    return w, b


@register("initializer", "lsuv", law="orthogonal", formula="orthonormal pre-init; then per layer W /= sqrt(Var(output)) until |Var - 1| < tol_var or t_max tries",
          source="Mishkin & Matas 2016, Algorithm 1 (variants of ducha-aiki's ports as options)",
          cites="Mishkin & Matas 2016 (All you need is a good init, ICLR)", network=True, bias="own",
          needs=("forward",), sigma_w2="data-dependent (unit output variance)")
def lsuv(shapes, *, generator, dtype=None, forward: Callable | None = None, tol_var: float = 0.1,
         t_max: int = 10, measure: str = "preact", adjust_mean: bool = False, include_output: bool = True):
    """Layer-sequential unit-variance init: orthonormal weights and zero biases, then for each layer
    from the first, forward the batch and divide W by sqrt(v), v = Var of the layer's output over
    all its elements, until |v - 1| < ``tol_var`` or ``t_max`` tries.

    Options: ``measure`` = "preact" (the affine output, as the paper) or "postact" (after the
    activation, as the Keras port); ``adjust_mean`` also shifts the bias to zero mean (as
    LSUV-pytorch); ``include_output`` processes the output layer too. ``forward(params, i, post)``
    returns layer i's output on the batch.
    """
    if measure not in ("preact", "postact"):
        raise CatalogError(f"measure {measure!r} is not 'preact' or 'postact'")
    if forward is None:
        raise CatalogError("lsuv needs a forward function and a data batch")
    dtype = torch.float32 if dtype is None else dtype
    params = [(svd_orthonormal(check_shape(s, "lsuv", 2), generator=generator, dtype=dtype),
               torch.zeros(s[0], dtype=dtype)) for s in shapes]
    last = len(params) if include_output else len(params) - 1
    for i in range(last):
        post = measure == "postact" and i < len(params) - 1
        for _ in range(t_max):
            out = forward(params, i, post)
            v = float(out.var())
            if not math.isfinite(v) or v <= 0 or abs(v - 1) < tol_var:
                break
            w, b = params[i]
            w = w / math.sqrt(v)
            if adjust_mean:
                b = b - float(forward([*params[:i], (w, b), *params[i + 1:]], i, False).mean())
            params[i] = (w, b)
    return params
