"""PyTorch initializers (``torch/nn/init.py`` and the module defaults of torch 2.13).

Each entry draws exactly what the corresponding ``torch.nn.init`` call draws from the same
seeded generator (tested bit for bit).
"""

from __future__ import annotations

import math

import torch

from ponder.catalog.initializers.base import fans_torch
from ponder.registry import register

__all__: list[str] = []


@register("initializer", "torch.default", formula="W ~ U[-1/sqrt(fan_in), 1/sqrt(fan_in)), b likewise",
          source="torch 2.13 nn.Linear/nn.ConvNd reset_parameters: kaiming_uniform_(W, a=sqrt(5))",
          cites="LeCun et al. 1998 heuristic as used by Lua Torch; Glorot & Bengio 2010, eq. 1",
          bias="fan_in_uniform", sigma_w2="1/3")
def default(shape, *, generator, dtype=torch.float32):
    """PyTorch's default for Linear and Conv weights: U[-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Written in torch as ``kaiming_uniform_(W, a=sqrt(5))``: gain sqrt(2/(1+5)) = 1/sqrt(3),
    bound sqrt(3) * gain / sqrt(fan_in). Var(W) = 1/(3 fan_in), so sigma_w^2 = 1/3: neither He
    nor LeCun. The bias is U[-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn after the weight.
    """
    fan_in, _ = fans_torch(shape)
    slope = math.sqrt(5)
    gain = math.sqrt(2.0 / (1 + slope**2))  # calculate_gain("leaky_relu", sqrt(5)), as torch computes it
    std = gain / math.sqrt(fan_in)
    bound = math.sqrt(3.0) * std
    return torch.empty(shape, dtype=dtype).uniform_(-bound, bound, generator=generator)


@register("initializer", "glorot_uniform", formula="W ~ U[-L, L), L = sqrt(6 / (fan_in + fan_out)), b = 0",
          source="torch 2.13 nn.init.xavier_uniform_ (gain 1); Keras glorot_uniform has the same law",
          cites="Glorot & Bengio 2010 (normalized initialization, eq. 16)",
          bias="zeros", sigma_w2="2 fan_in / (fan_in + fan_out)")
def glorot_uniform(shape, *, generator, dtype=torch.float32, gain: float = 1.0):
    """Glorot/Xavier uniform: U[-L, L) with L = gain * sqrt(6 / (fan_in + fan_out)); bias zero."""
    fan_in, fan_out = fans_torch(shape)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return torch.empty(shape, dtype=dtype).uniform_(-bound, bound, generator=generator)


@register("initializer", "he_normal", formula="W ~ N(0, 2 / fan_in), untruncated, b = 0",
          source="torch 2.13 nn.init.kaiming_normal_ (a=0, fan_in, relu gain sqrt(2))",
          cites="He, Zhang, Ren & Sun 2015 (Delving deep into rectifiers)",
          bias="zeros", sigma_w2="2")
def he_normal(shape, *, generator, dtype=torch.float32):
    """He/Kaiming normal: N(0, 2/fan_in), untruncated (PyTorch's ``kaiming_normal_``); bias zero.

    Differs from Keras ``he_normal``, which truncates at 2 sigma and rescales.
    """
    fan_in, _ = fans_torch(shape)
    std = math.sqrt(2.0) / math.sqrt(fan_in)
    return torch.empty(shape, dtype=dtype).normal_(0.0, std, generator=generator)
