"""Activation functions.

Each entry maps a tensor to a tensor of the same shape, element-wise, and is differentiable
almost everywhere through autograd. The docstring gives the formula and the paper; the
registered ``formula`` is the one-line version used in listings and reports.
"""

from __future__ import annotations

import math

from ponder.lazy import F, torch  # torch loads on first use: the catalog registers without it
from ponder.registry import register

__all__: list[str] = []

# SELU constants, Klambauer et al. 2017, eq. (2) and the fixed-point solution in its appendix.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
LEAKY_SLOPE = 0.01  # PyTorch's default negative slope, F.leaky_relu


@register("activation", "sigmoid", formula="1 / (1 + exp(-x))",
          source="logistic function", cites="Rumelhart, Hinton & Williams 1986",
          backward="sigmoid", saturating=True)
def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Logistic sigmoid, sigma(x) = 1 / (1 + e^-x); saturates at 0 and 1, mean 1/2 at x = 0."""
    return torch.sigmoid(x)


@register("activation", "tanh", formula="(e^x - e^-x) / (e^x + e^-x)",
          source="hyperbolic tangent", cites="LeCun, Bottou, Orr & Mueller 1998 (Efficient BackProp)",
          backward="tanh", saturating=True)
def tanh(x: torch.Tensor) -> torch.Tensor:
    """Hyperbolic tangent, tanh(x) = 2 sigma(2x) - 1; odd, saturates at -1 and 1."""
    return torch.tanh(x)


@register("activation", "relu", formula="max(0, x)",
          source="rectified linear unit", cites="Nair & Hinton 2010; Glorot, Bordes & Bengio 2011",
          backward="threshold", homogeneous=0.5)
def relu(x: torch.Tensor) -> torch.Tensor:
    """Rectified linear unit, max(0, x): exactly zero for negative inputs, identity otherwise."""
    return torch.relu(x)


@register("activation", "leaky_relu", formula="x if x > 0 else 0.01 x",
          source="leaky rectifier, slope 0.01", cites="Maas, Hannun & Ng 2013",
          homogeneous=(1 + LEAKY_SLOPE**2) / 2)
def leaky_relu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU with negative slope 0.01: x for x > 0, 0.01 x otherwise."""
    return F.leaky_relu(x, LEAKY_SLOPE)


@register("activation", "elu", formula="x if x > 0 else exp(x) - 1",
          source="exponential linear unit, alpha = 1", cites="Clevert, Unterthiner & Hochreiter 2016")
def elu(x: torch.Tensor) -> torch.Tensor:
    """Exponential linear unit with alpha = 1: x for x > 0, e^x - 1 otherwise."""
    return F.elu(x, 1.0)


@register("activation", "selu", formula="1.0507 * (x if x > 0 else 1.6733 (exp(x) - 1))",
          source="scaled ELU with the self-normalizing constants", cites="Klambauer, Unterthiner, Mayr & Hochreiter 2017")
def selu(x: torch.Tensor) -> torch.Tensor:
    """Scaled exponential linear unit: lambda * (x if x > 0 else alpha (e^x - 1)),
    lambda = 1.0507..., alpha = 1.6733... (the fixed point of mean 0, variance 1)."""
    return SELU_SCALE * torch.where(x > 0, x, SELU_ALPHA * torch.expm1(torch.clamp(x, max=0.0)))


@register("activation", "gelu", formula="x * Phi(x)",
          source="Gaussian error linear unit (exact erf form)", cites="Hendrycks & Gimpel 2016")
def gelu(x: torch.Tensor) -> torch.Tensor:
    """Gaussian error linear unit, x Phi(x) with Phi the standard normal CDF (exact, not tanh approximation)."""
    return F.gelu(x)


@register("activation", "silu", formula="x * sigmoid(x)",
          source="sigmoid-weighted linear unit; swish with beta = 1",
          cites="Elfwing, Uchibe & Doya 2018; Ramachandran, Zoph & Le 2017")
def silu(x: torch.Tensor) -> torch.Tensor:
    """SiLU / swish-1, x sigma(x): smooth, non-monotonic below zero, unbounded above."""
    return F.silu(x)


@register("activation", "swish", formula="x * sigmoid(x)",
          source="alias of silu (swish with beta = 1)", cites="Ramachandran, Zoph & Le 2017")
def swish(x: torch.Tensor) -> torch.Tensor:
    """Swish with beta = 1, x sigma(x); the same function as ``silu``."""
    return F.silu(x)


@register("activation", "softplus", formula="log(1 + exp(x))",
          source="smooth rectifier", cites="Dugas et al. 2001; Glorot, Bordes & Bengio 2011")
def softplus(x: torch.Tensor) -> torch.Tensor:
    """Softplus, log(1 + e^x): a smooth, strictly positive version of ReLU."""
    return F.softplus(x)


@register("activation", "softsign", formula="x / (1 + |x|)",
          source="softsign", cites="Bergstra et al. 2009; Glorot & Bengio 2010",
          saturating=True)
def softsign(x: torch.Tensor) -> torch.Tensor:
    """Softsign, x / (1 + |x|): like tanh but with polynomial rather than exponential tails."""
    return F.softsign(x)


@register("activation", "mish", formula="x * tanh(softplus(x))",
          source="mish", cites="Misra 2019")
def mish(x: torch.Tensor) -> torch.Tensor:
    """Mish, x tanh(log(1 + e^x))."""
    return F.mish(x)


@register("activation", "penalized_tanh", formula="tanh(x) if x > 0 else 0.25 tanh(x)",
          source="penalized tanh, a = 0.25", cites="Xu, Huang & Li 2016; Eger, Youssef & Gurevych 2018",
          saturating=True)
def penalized_tanh(x: torch.Tensor) -> torch.Tensor:
    """Penalized tanh: tanh(x) for x > 0 and 0.25 tanh(x) otherwise (best overall in Eger et al. 2018)."""
    t = torch.tanh(x)
    return torch.where(x > 0, t, 0.25 * t)


@register("activation", "hardtanh", formula="clip(x, -1, 1)",
          source="hard tanh", cites="Collobert 2004",
          saturating=True)
def hardtanh(x: torch.Tensor) -> torch.Tensor:
    """Hard tanh, min(1, max(-1, x)): piecewise linear, zero gradient outside [-1, 1]."""
    return F.hardtanh(x)


@register("activation", "identity", formula="x",
          source="linear (no non-linearity)", cites="Saxe, McClelland & Ganguli 2014 (deep linear networks)",
          backward="identity", homogeneous=1.0)
def identity(x: torch.Tensor) -> torch.Tensor:
    """The identity, x: a deep linear network."""
    return x


def numerical_gain(fn, panels: int = 400) -> float:
    """The gain g with E[(g phi(z))^2] = 1 for z ~ N(0, 1), by quadrature (exact to ~1e-10 for kinks at 0).

    A weight variance of g^2 / fan_in keeps the second moment of unit-variance
    pre-activations at 1 through depth, for any activation: He's rule, generalized.
    """
    from ponder.quadrature import gauss_normal_nodes

    x, w = gauss_normal_nodes(panels)
    z = torch.as_tensor(x, dtype=torch.float64)
    second_moment = float((torch.as_tensor(w, dtype=torch.float64) * fn(z) ** 2).sum())
    return 1.0 / math.sqrt(second_moment)
