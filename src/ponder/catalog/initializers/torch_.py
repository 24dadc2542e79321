"""PyTorch initializers: every ``torch.nn.init`` function and the module defaults (torch 2.13).

Each entry draws what the corresponding ``torch.nn.init`` call draws from the same seeded
generator (tested bit for bit), with two documented exceptions: ``torch.sparse`` draws its
zero positions from the given generator (torch's ``sparse_`` uses the global RNG for them), and
``torch.trunc_normal`` / ``torch.orthogonal`` delegate to torch itself because their sampling
algorithms change between torch releases. Fans follow :func:`fans_torch`.
"""

from __future__ import annotations

import math

from ponder.lazy import torch  # torch loads on first use: the catalog registers without it
from ponder.catalog.initializers.base import check_shape, fans_torch
from ponder.errors import CatalogError
from ponder.registry import alias, register

__all__ = ["calculate_gain"]

_SRC = "torch 2.13 torch/nn/init.py"


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """PyTorch's recommended gain for a non-linearity (``torch.nn.init.calculate_gain``).

    linear, conv*, sigmoid: 1; tanh: 5/3; relu: sqrt(2); leaky_relu: sqrt(2 / (1 + slope^2)) with
    slope 0.01 by default; selu: 3/4 (empirical, pytorch/pytorch PR #50664).
    """
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                        "conv_transpose3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, (int, float)):
            raise CatalogError(f"negative_slope {param!r} is not a valid number")
        else:
            slope = param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise CatalogError(f"unsupported nonlinearity {nonlinearity!r} for a gain; use linear, sigmoid, tanh, relu, leaky_relu or selu")


def _fan(shape, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise CatalogError(f"mode {mode!r} is not supported; use fan_in or fan_out")
    fan_in, fan_out = fans_torch(shape)
    return fan_in if mode == "fan_in" else fan_out


@register("initializer", "torch.default", law="uniform", formula="W, b ~ U[-1/sqrt(fan_in), 1/sqrt(fan_in))",
          source=f"{_SRC}; nn.Linear/nn.ConvNd reset_parameters: kaiming_uniform_(W, a=sqrt(5))",
          cites="LeCun et al. 1998 heuristic as kept from Lua Torch; Glorot & Bengio 2010, eq. 1",
          bias="fan_in_uniform", sigma_w2="1/3")
def default(shape, *, generator, dtype=None):
    """PyTorch's default for Linear and Conv weights: U[-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Written in torch as ``kaiming_uniform_(W, a=sqrt(5))``: gain sqrt(2/(1+5)) = 1/sqrt(3),
    bound sqrt(3) * gain / sqrt(fan_in). Var(W) = 1/(3 fan_in), so sigma_w^2 = 1/3: neither He
    nor LeCun. The bias is U[-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn after the weight.
    """
    return kaiming_uniform(shape, generator=generator, dtype=dtype, a=math.sqrt(5))


@register("initializer", "torch.uniform", law="uniform", formula="W ~ U[a, b), defaults a = 0, b = 1", source=_SRC,
          cites="PyTorch nn.init.uniform_", sigma_w2="fan_in (b - a)^2 / 12")
def uniform(shape, *, generator, dtype=None, a: float = 0.0, b: float = 1.0):
    """``uniform_``: U[a, b), defaults [0, 1). Note the non-zero mean of the default."""
    return torch.empty(check_shape(shape, "torch.uniform"), dtype=dtype).uniform_(a, b, generator=generator)


@register("initializer", "torch.normal", law="normal", formula="W ~ N(mean, std^2), defaults N(0, 1)", source=_SRC,
          cites="PyTorch nn.init.normal_", sigma_w2="fan_in std^2")
def normal(shape, *, generator, dtype=None, mean: float = 0.0, std: float = 1.0):
    """``normal_``: N(mean, std^2), default N(0, 1)."""
    return torch.empty(check_shape(shape, "torch.normal"), dtype=dtype).normal_(mean, std, generator=generator)


@register("initializer", "torch.trunc_normal", law="truncated_normal_abs", formula="W ~ N(mean, std^2) restricted to [a, b] (absolute bounds, default [-2, 2])",
          source=f"{_SRC} trunc_normal_ (delegated: its sampler changed across releases)",
          cites="PyTorch nn.init.trunc_normal_", sigma_w2="fan_in Var(TN)")
def trunc_normal(shape, *, generator, dtype=None, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                 b: float = 2.0):
    """``trunc_normal_``: normal restricted to [a, b]; a and b are absolute values, not multiples of std.

    So ``std=0.02`` with the default bounds is effectively untruncated (they sit at 100 sigma).
    """
    t = torch.empty(check_shape(shape, "torch.trunc_normal"), dtype=dtype)
    return torch.nn.init.trunc_normal_(t, mean, std, a, b, generator=generator)


@register("initializer", "torch.constant", law="constant", formula="W = val", source=_SRC, cites="PyTorch nn.init.constant_", sigma_w2="0")
def constant(shape, *, generator, dtype=None, val: float = 0.0):
    """``constant_``: every weight equals ``val``; draws nothing."""
    return torch.full(check_shape(shape, "torch.constant"), float(val), dtype=dtype)


@register("initializer", "torch.ones", law="constant", formula="W = 1", source=_SRC, cites="PyTorch nn.init.ones_", sigma_w2="0")
def ones(shape, *, generator, dtype=None):
    """``ones_``: every weight is 1 (all units identical: symmetry is never broken)."""
    return torch.ones(check_shape(shape, "torch.ones"), dtype=dtype)


@register("initializer", "torch.zeros", law="constant", formula="W = 0", source=_SRC, cites="PyTorch nn.init.zeros_", sigma_w2="0")
def zeros(shape, *, generator, dtype=None):
    """``zeros_``: every weight is 0 (no gradient reaches hidden layers of a deep net)."""
    return torch.zeros(check_shape(shape, "torch.zeros"), dtype=dtype)


@register("initializer", "torch.eye", law="deterministic", formula="W = I (rows x cols, ones on the main diagonal)", source=_SRC,
          cites="PyTorch nn.init.eye_; Le, Jaitly & Hinton 2015 (identity init)", sigma_w2="fan_in / max(rows, cols) ... 1")
def eye(shape, *, generator, dtype=None):
    """``eye_``: the identity matrix (2-D weights only), preserving inputs in linear layers."""
    if len(shape) != 2:
        raise CatalogError(f"torch.eye needs a 2-D weight, got shape {tuple(shape)}")
    return torch.eye(*shape, dtype=dtype)


@register("initializer", "torch.dirac", law="deterministic", formula="W[g*o/g + d, d, centre] = 1, else 0", source=_SRC,
          cites="PyTorch nn.init.dirac_ (identity-preserving convolution)", sigma_w2="1/prod(k) per filter")
def dirac(shape, *, generator, dtype=None, groups: int = 1):
    """``dirac_``: a convolution that copies its input channels (3-, 4- or 5-D weights)."""
    if len(shape) not in (3, 4, 5):
        raise CatalogError(f"torch.dirac needs a 3-, 4- or 5-D conv weight, got shape {tuple(shape)}")
    if shape[0] % groups:
        raise CatalogError(f"torch.dirac: dim 0 ({shape[0]}) must be divisible by groups ({groups})")
    w = torch.zeros(shape, dtype=dtype)
    per = shape[0] // groups
    centre = tuple(k // 2 for k in shape[2:])
    for g in range(groups):
        for d in range(min(per, shape[1])):
            w[(g * per + d, d, *centre)] = 1
    return w


@register("initializer", "torch.xavier_uniform", law="uniform", formula="W ~ U[-L, L), L = gain sqrt(6 / (fan_in + fan_out))",
          source=_SRC, cites="Glorot & Bengio 2010 (normalized initialization, eq. 16)", sigma_w2="2 fan_in / (fan_in + fan_out)")
def xavier_uniform(shape, *, generator, dtype=None, gain: float = 1.0):
    """``xavier_uniform_``: Glorot's normalized uniform, U[-L, L), L = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans_torch(shape)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return torch.empty(shape, dtype=dtype).uniform_(-bound, bound, generator=generator)


@register("initializer", "torch.xavier_normal", law="normal", formula="W ~ N(0, gain^2 2 / (fan_in + fan_out)), untruncated",
          source=_SRC, cites="Glorot & Bengio 2010", sigma_w2="2 fan_in / (fan_in + fan_out)")
def xavier_normal(shape, *, generator, dtype=None, gain: float = 1.0):
    """``xavier_normal_``: N(0, 2 gain^2 / (fan_in + fan_out)), untruncated (Keras's glorot_normal truncates)."""
    fan_in, fan_out = fans_torch(shape)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return torch.empty(shape, dtype=dtype).normal_(0.0, std, generator=generator)


@register("initializer", "torch.kaiming_uniform", law="uniform", formula="W ~ U[-sqrt(3) g / sqrt(fan), +), g = calculate_gain(nonlinearity, a)",
          source=_SRC, cites="He, Zhang, Ren & Sun 2015 (Delving deep into rectifiers)", sigma_w2="g^2 (2 for relu, a = 0)")
def kaiming_uniform(shape, *, generator, dtype=None, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu"):
    """``kaiming_uniform_``: U[-b, b) with b = sqrt(3) * gain / sqrt(fan); gain = calculate_gain(nonlinearity, a).

    The defaults (a = 0, leaky_relu) give gain sqrt(2): He uniform, bound sqrt(6 / fan_in).
    """
    fan = _fan(shape, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return torch.empty(shape, dtype=dtype).uniform_(-bound, bound, generator=generator)


@register("initializer", "torch.kaiming_normal", law="normal", formula="W ~ N(0, g^2 / fan), untruncated, g = calculate_gain(nonlinearity, a)",
          source=_SRC, cites="He, Zhang, Ren & Sun 2015 (Delving deep into rectifiers)", sigma_w2="g^2 (2 for relu, a = 0)")
def kaiming_normal(shape, *, generator, dtype=None, a: float = 0.0, mode: str = "fan_in",
                   nonlinearity: str = "leaky_relu"):
    """``kaiming_normal_``: N(0, gain^2 / fan), untruncated; defaults give He normal N(0, 2 / fan_in).

    Same law as Caffe's ``msra``; Keras's ``he_normal`` truncates at 2 sigma and rescales.
    """
    fan = _fan(shape, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return torch.empty(shape, dtype=dtype).normal_(0.0, std, generator=generator)


@register("initializer", "torch.orthogonal", law="orthogonal", formula="W = gain Q, Q from the QR of a (rows, prod(rest)) N(0, 1) matrix, sign-fixed",
          source=f"{_SRC} orthogonal_ (delegated)", cites="Saxe, McClelland & Ganguli 2014", sigma_w2="gain^2 fan_in / max(rows, cols)")
def orthogonal(shape, *, generator, dtype=None, gain: float = 1.0):
    """``orthogonal_``: a (semi-)orthogonal matrix on ``(shape[0], prod(shape[1:]))``, times ``gain``.

    Flattens trailing dimensions (the opposite grouping from Keras's Orthogonal).
    """
    t = torch.empty(check_shape(shape, "torch.orthogonal", 2), dtype=dtype)
    return torch.nn.init.orthogonal_(t, gain=gain, generator=generator)


@register("initializer", "torch.sparse", law="sparse_normal", formula="W ~ N(0, std^2), then ceil(sparsity rows) zeros per column",
          source=f"{_SRC} sparse_, with the zero positions drawn from the given generator",
          cites="Martens 2010 (Deep learning via Hessian-free optimization)", sigma_w2="fan_in std^2 (1 - sparsity)")
def sparse(shape, *, generator, dtype=None, sparsity: float = 0.1, std: float = 0.01):
    """``sparse_``: N(0, std^2) with exactly ceil(sparsity * rows) zeros in every column (2-D only).

    Differs from torch: the zero positions come from the given generator, not the global RNG,
    so only the normal draws are bit-identical to ``torch.nn.init.sparse_``.
    """
    if len(shape) != 2:
        raise CatalogError(f"torch.sparse needs a 2-D weight, got shape {tuple(shape)}")
    rows, cols = shape
    w = torch.empty(shape, dtype=dtype).normal_(0.0, std, generator=generator)
    n_zero = int(math.ceil(sparsity * rows))
    for c in range(cols):
        w[torch.randperm(rows, generator=generator)[:n_zero], c] = 0
    return w


alias("initializer", "glorot_uniform", "torch.xavier_uniform")
alias("initializer", "he_normal", "torch.kaiming_normal")
