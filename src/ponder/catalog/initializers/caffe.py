"""Caffe's seven fillers (BVLC/caffe ``include/caffe/filler.hpp``, final master 9b891540, 2020).

Fans follow Caffe's blob rule (:func:`fans_caffe`): fan_in = count / shape[0], fan_out =
count / shape[1]. Caffe's own random streams (boost mt19937 with boost's distributions) cannot
be reproduced, so these entries draw the same *laws* from the given torch generator and are
tested by formula and distribution. A layer whose prototxt names no filler is filled with
constant 0 (``caffe.default``); Caffe's bias filler defaults to constant 0 as well.
"""

from __future__ import annotations

import math

from ponder.lazy import torch  # torch loads on first use: the catalog registers without it
from ponder.catalog.initializers.base import check_shape, fans_caffe
from ponder.errors import CatalogError
from ponder.registry import register

__all__ = ["bilinear_kernel"]

_SRC = "BVLC/caffe include/caffe/filler.hpp (9b891540)"
_NORMS = ("fan_in", "fan_out", "average")


def _norm(shape, variance_norm: str) -> float:
    vn = variance_norm.lower()
    if vn not in _NORMS:
        raise CatalogError(f"variance_norm {variance_norm!r} is not one of {', '.join(_NORMS)}")
    fan_in, fan_out = fans_caffe(shape)
    return {"fan_in": float(fan_in), "fan_out": float(fan_out), "average": (fan_in + fan_out) / 2.0}[vn]


@register("initializer", "caffe.default", law="constant", formula="W = 0 (an unset weight_filler is constant 0)", source=f"{_SRC}; caffe.proto FillerParameter defaults",
          cites="Jia et al. 2014 (Caffe)", sigma_w2="0")
def default(shape, *, generator, dtype=None):
    """What Caffe does when a layer names no ``weight_filler``: constant 0 (weights and bias)."""
    return torch.zeros(check_shape(shape, "caffe.default"), dtype=dtype)


@register("initializer", "caffe.constant", law="constant", formula="W = value (default 0)", source=_SRC, cites="Jia et al. 2014 (Caffe)", sigma_w2="0")
def constant(shape, *, generator, dtype=None, value: float = 0.0):
    """ConstantFiller: every element equals ``value``."""
    return torch.full(check_shape(shape, "caffe.constant"), float(value), dtype=dtype)


@register("initializer", "caffe.uniform", law="uniform", formula="W ~ U[min, max], closed interval, default [0, 1]", source=_SRC,
          cites="Jia et al. 2014 (Caffe)", sigma_w2="fan_in (max - min)^2 / 12 (mean (min + max)/2)")
def uniform(shape, *, generator, dtype=None, min: float = 0.0, max: float = 1.0):  # noqa: A002 (Caffe's names)
    """UniformFiller: U[min, max] with ``max`` reachable (Caffe draws up to nextafter(max)).

    Caffe's default [0, 1] has mean 1/2: every unit starts with the same positive bias towards
    its inputs' sum.
    """
    if min > max:
        raise CatalogError(f"caffe.uniform needs min <= max, got min={min}, max={max}")
    hi = math.nextafter(max, math.inf)
    return torch.empty(check_shape(shape, "caffe.uniform"), dtype=dtype).uniform_(min, hi, generator=generator)


@register("initializer", "caffe.gaussian", law="normal", formula="W ~ N(mean, std^2) (default N(0, 1)); with sparse = s, W *= Bernoulli(s / shape[0])",
          source=_SRC, cites="Jia et al. 2014 (Caffe)", sigma_w2="fan_in std^2 (times s/shape[0] when sparse)")
def gaussian(shape, *, generator, dtype=None, mean: float = 0.0, std: float = 1.0, sparse: int = -1):
    """GaussianFiller: N(mean, std^2), untruncated; default N(0, 1) (prototxts usually set std 0.01).

    With ``sparse >= 0``, each element is then kept with probability p = sparse / shape[0]
    (a Bernoulli mask over all elements), so on an ``(N_out, K_in)`` weight the expected number of
    non-zeros per *input column* is ``sparse`` (the proto comment; the header comment says per
    output). Caffe refuses std <= 0 and p > 1.
    """
    shape = check_shape(shape, "caffe.gaussian")
    if std <= 0:
        raise CatalogError(f"caffe.gaussian needs std > 0 (Caffe CHECK-fails), got {std}; use caffe.constant for a fixed value")
    w = torch.empty(shape, dtype=dtype).normal_(mean, std, generator=generator)
    if sparse >= 0:
        p = sparse / shape[0]
        if p > 1:
            raise CatalogError(f"caffe.gaussian sparse = {sparse} exceeds shape[0] = {shape[0]} (p = {p:.3g} > 1)")
        keep = torch.empty(shape, dtype=dtype).uniform_(0, 1, generator=generator) < p
        w = w * keep
    return w


@register("initializer", "caffe.positive_unitball", law="positive_unitball", formula="W ~ U[0, 1], then each slice W[i] divided by its sum (sums to 1)",
          source=_SRC, cites="Jia et al. 2014 (Caffe)", sigma_w2="~ 1/(3 fan_in) around mean 1/fan_in")
def positive_unitball(shape, *, generator, dtype=None):
    """PositiveUnitballFiller: U[0, 1], then every output's incoming weights are scaled to sum to 1.

    An L1 simplex, not a unit L2 ball, despite the name; every weight is positive, so units
    start nearly identical (element mean 1 / (count / shape[0])).
    """
    shape = check_shape(shape, "caffe.positive_unitball")
    w = torch.empty(shape, dtype=dtype).uniform_(0, 1, generator=generator)
    flat = w.reshape(shape[0], -1)
    return (flat / flat.sum(dim=1, keepdim=True)).reshape(shape)


@register("initializer", "caffe.xavier", law="uniform", formula="W ~ U[-sqrt(3/n), sqrt(3/n)], n = fan_in (default) | fan_out | (fan_in+fan_out)/2",
          source=_SRC, cites="Glorot & Bengio 2010, as adapted by Caffe (fan_in only by default)", sigma_w2="1 (fan_in); Glorot only with average")
def xavier(shape, *, generator, dtype=None, variance_norm: str = "fan_in"):
    """XavierFiller: U[-a, a], a = sqrt(3 / n). With the default FAN_IN, Var = 1/fan_in.

    Faithfulness note: Caffe's default is LeCun-uniform, *not* Glorot's normalized init;
    only ``variance_norm = "average"`` gives Glorot's sqrt(6 / (fan_in + fan_out)).
    """
    shape = check_shape(shape, "caffe.xavier")
    a = math.sqrt(3.0 / _norm(shape, variance_norm))
    return torch.empty(shape, dtype=dtype).uniform_(-a, math.nextafter(a, math.inf), generator=generator)


@register("initializer", "caffe.msra", law="normal", formula="W ~ N(0, 2/n), n = fan_in (default) | fan_out | (fan_in+fan_out)/2, untruncated",
          source=_SRC, cites="He, Zhang, Ren & Sun 2015", sigma_w2="2 (fan_in)")
def msra(shape, *, generator, dtype=None, variance_norm: str = "fan_in"):
    """MSRAFiller: N(0, 2/n), untruncated; with the default FAN_IN this is He normal."""
    shape = check_shape(shape, "caffe.msra")
    return torch.empty(shape, dtype=dtype).normal_(0.0, math.sqrt(2.0 / _norm(shape, variance_norm)), generator=generator)


def bilinear_kernel(k: int) -> torch.Tensor:
    """Caffe's 1-D bilinear profile for kernel size k: f = ceil(k/2), c = (k-1)/(2f), v(x) = 1 - |x/f - c|."""
    f = math.ceil(k / 2)
    c = (k - 1) / (2.0 * f)
    x = torch.arange(k, dtype=torch.float64)
    return 1 - (x / f - c).abs()


@register("initializer", "caffe.bilinear", law="deterministic", formula="W[o, i, y, x] = (1 - |x/f - c|)(1 - |y/f - c|), f = ceil(K/2), c = (K-1)/(2f)",
          source=f"{_SRC} (formula of commit 888597e, Oct 2017)", cites="Long, Shelhamer & Darrell 2015 (upsampling by deconvolution)", sigma_w2="deterministic")
def bilinear(shape, *, generator, dtype=None):
    """BilinearFiller: the same K x K bilinear interpolation kernel in every (out, in) slice.

    Caffe accepts only 4-D blobs with square kernels. Meant for deconvolution upsampling with
    ``group = channels``; it is not a classifier initializer. Draws nothing.
    """
    shape = tuple(shape)
    if len(shape) != 4 or shape[2] != shape[3]:
        raise CatalogError(f"caffe.bilinear needs a 4-D weight with a square kernel (C_out, C_in, K, K), got {shape}")
    prof = bilinear_kernel(shape[3])
    return torch.outer(prof, prof).to(torch.float32 if dtype is None else dtype).expand(shape).contiguous()
