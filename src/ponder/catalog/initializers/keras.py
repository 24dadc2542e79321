"""Keras 3 initializers (``keras/src/initializers/``, keras 3.15) and the TF1 defaults that differ.

Keras entries draw in Keras's own layout (dense ``(in, out)``, conv ``(*k, in, out)``), compute
fans with Keras's ``compute_fans`` on it, and return the weight in ponder's (PyTorch) layout.
They sample exactly as Keras's numpy backend does: ``np.random.default_rng([seed, 0])`` with
its uniform, normal and batch-rejection truncated normal. The integer seed is drawn from the
given generator unless the ``seed`` parameter names one, in which case the result is
bit-identical to ``keras.initializers.X(seed=seed)`` under ``KERAS_BACKEND=numpy`` (tested).
Other Keras backends draw other numbers from the same laws (the torch backend's truncated
normal even leaks about 4e-6 of its values past 2 sigma).
"""

from __future__ import annotations

import math

import numpy as np

from ponder.lazy import torch  # torch loads on first use: the catalog registers without it
from ponder.catalog.initializers.base import derive_seed, fans_keras, from_keras_layout, to_keras_layout
from ponder.errors import CatalogError
from ponder.registry import register

__all__ = ["TRUNC_STD"]

TRUNC_STD = 0.87962566103423978  # std of N(0, 1) truncated to [-2, 2]; Keras's correction constant
_SRC = "keras 3.15 keras/src/initializers"
_NP = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "bfloat16": np.float32}  # by torch dtype name


def _np_dtype(dtype) -> type:
    return _NP.get(str(dtype).removeprefix("torch."), np.float32)


def _rng(generator: torch.Generator, seed: int | None) -> np.random.Generator:
    s = derive_seed(generator) if seed is None else int(seed)
    return np.random.default_rng([s & 0xFFFFFFFF, 0])


def _truncated(rng: np.random.Generator, n: int, mean: float, std: float) -> np.ndarray:
    """Keras numpy backend: normal batches of size n, keep values in [mean-2std, mean+2std], first n."""
    lo, hi = mean - 2 * std, mean + 2 * std
    out = np.empty(0)
    while out.shape[0] < n:
        batch = rng.normal(loc=mean, scale=std, size=n)
        out = np.append(out, batch[(batch >= lo) & (batch <= hi)])
    return out[:n]


def _finish(arr: np.ndarray, kshape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    arr = np.asarray(arr).astype(_np_dtype(dtype)).reshape(kshape)
    return from_keras_layout(torch.from_numpy(np.ascontiguousarray(arr))).to(torch.float32 if dtype is None else dtype)


def _draw(law: str, kshape, rng, dtype, *, mean=0.0, std=1.0, low=0.0, high=1.0) -> torch.Tensor:
    n = math.prod(kshape)
    if law == "uniform":
        arr = rng.uniform(size=kshape, low=low, high=high)
    elif law == "normal":
        arr = rng.normal(size=kshape, loc=mean, scale=std)
    else:
        arr = _truncated(rng, n, mean, std)
    return _finish(arr, kshape, dtype)


def variance_scaling_kernel(shape, *, generator, dtype, scale: float, mode: str, distribution: str,
                            seed: int | None, corrected: bool = True, transposed: bool = False) -> torch.Tensor:
    """Keras 3 VarianceScaling on the Keras layout of ``shape`` (TF1's uncorrected variant with ``corrected=False``)."""
    if scale <= 0:
        raise CatalogError(f"variance_scaling needs scale > 0, got {scale}")
    mode, distribution = mode.lower(), distribution.lower()
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise CatalogError(f"mode {mode!r} is not one of fan_in, fan_out, fan_avg")
    if distribution == "normal":  # Keras rewrites the legacy name
        distribution = "truncated_normal"
    if distribution not in ("uniform", "truncated_normal", "untruncated_normal"):
        raise CatalogError(f"distribution {distribution!r} is not one of uniform, truncated_normal, untruncated_normal")
    kshape = to_keras_layout(shape, transposed)
    fan_in, fan_out = fans_keras(kshape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    s = scale / max(1.0, n)
    rng = _rng(generator, seed)
    if distribution == "truncated_normal":
        std = math.sqrt(s) / TRUNC_STD if corrected else math.sqrt(s)
        return _draw("truncated", kshape, rng, dtype, std=std)
    if distribution == "untruncated_normal":
        return _draw("normal", kshape, rng, dtype, std=math.sqrt(s))
    limit = math.sqrt(3.0 * s)
    return _draw("uniform", kshape, rng, dtype, low=-limit, high=limit)


@register("initializer", "keras.zeros", law="constant", formula="W = 0", source=f"{_SRC}/constant_initializers.py", cites="Chollet et al. (Keras)", sigma_w2="0")
def zeros(shape, *, generator, dtype=None):
    """Keras ``Zeros``: every weight 0; Keras's default for biases, never for kernels."""
    return torch.zeros(tuple(shape), dtype=dtype)


@register("initializer", "keras.ones", law="constant", formula="W = 1", source=f"{_SRC}/constant_initializers.py", cites="Chollet et al. (Keras)", sigma_w2="0")
def ones(shape, *, generator, dtype=None):
    """Keras ``Ones``: every weight 1; Keras's default for BatchNormalization gamma."""
    return torch.ones(tuple(shape), dtype=dtype)


@register("initializer", "keras.constant", law="constant", formula="W = value (default 0)", source=f"{_SRC}/constant_initializers.py", cites="Chollet et al. (Keras)", sigma_w2="0")
def constant(shape, *, generator, dtype=None, value: float = 0.0):
    """Keras ``Constant(value)``: every weight equals the scalar ``value`` (Keras 3 takes scalars only)."""
    return torch.full(tuple(shape), float(value), dtype=dtype)


@register("initializer", "keras.random_normal", law="normal", formula="W ~ N(mean, stddev^2), default N(0, 0.05^2)",
          source=f"{_SRC}/random_initializers.py RandomNormal", cites="Chollet et al. (Keras)", sigma_w2="fan_in stddev^2")
def random_normal(shape, *, generator, dtype=None, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
    """Keras ``RandomNormal``: N(mean, stddev^2); default stddev 0.05 (Caffe and torch default to 1)."""
    return _draw("normal", to_keras_layout(shape), _rng(generator, seed), dtype, mean=mean, std=stddev)


@register("initializer", "keras.random_uniform", law="uniform", formula="W ~ U[minval, maxval), default U[-0.05, 0.05)",
          source=f"{_SRC}/random_initializers.py RandomUniform", cites="Chollet et al. (Keras)", sigma_w2="fan_in (maxval - minval)^2 / 12")
def random_uniform(shape, *, generator, dtype=None, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
    """Keras ``RandomUniform``: U[minval, maxval), default U[-0.05, 0.05)."""
    return _draw("uniform", to_keras_layout(shape), _rng(generator, seed), dtype, low=minval, high=maxval)


@register("initializer", "keras.truncated_normal", law="truncated_normal", formula="W ~ N(mean, stddev^2) re-drawn beyond 2 stddev, no correction; default stddev 0.05",
          source=f"{_SRC}/random_initializers.py TruncatedNormal", cites="Chollet et al. (Keras)", sigma_w2="fan_in (0.8796 stddev)^2")
def truncated_normal(shape, *, generator, dtype=None, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
    """Keras ``TruncatedNormal``: values beyond 2 stddev are re-drawn; the sample std is 0.8796 stddev (no correction)."""
    return _draw("truncated", to_keras_layout(shape), _rng(generator, seed), dtype, mean=mean, std=stddev)


@register("initializer", "keras.variance_scaling", law="truncated_normal", formula="s = scale / max(1, n); truncated: TN(sqrt(s)/0.8796, 2); untruncated: N(0, s); uniform: U(+-sqrt(3 s))",
          source=f"{_SRC}/random_initializers.py VarianceScaling", cites="He et al. 2015; Glorot & Bengio 2010; Chollet et al. (Keras)",
          sigma_w2="scale (fan_in mode)")
def variance_scaling(shape, *, generator, dtype=None, scale: float = 1.0, mode: str = "fan_in",
                     distribution: str = "truncated_normal", seed: int | None = None, transposed: bool = False):
    """Keras 3 ``VarianceScaling``: n = fan_in | fan_out | (fan_in+fan_out)/2 (Keras fans), s = scale / max(1, n).

    ``truncated_normal`` (and the legacy ``normal``) draws N(0, (sqrt(s)/0.8796)^2) cut at 2 sigma,
    so the *sample* variance is s; ``untruncated_normal`` draws N(0, s); ``uniform`` U(+-sqrt(3 s)).
    ``transposed=True`` treats the weight as a transposed convolution (torch layout ``(in, out, *k)``).
    """
    return variance_scaling_kernel(shape, generator=generator, dtype=dtype, scale=scale, mode=mode,
                                   distribution=distribution, seed=seed, transposed=transposed)


def _preset(name: str, scale: float, mode: str, dist: str, formula: str, cites: str, sigma_w2: str):
    def fn(shape, *, generator, dtype=None, seed: int | None = None):
        return variance_scaling_kernel(shape, generator=generator, dtype=dtype, scale=scale, mode=mode,
                                       distribution=dist, seed=seed)

    fn.__name__ = name
    fn.__doc__ = (f"Keras ``{name}``: VarianceScaling(scale={scale}, mode={mode!r}, distribution={dist!r}).\n\n"
                  f"{formula}.")
    register("initializer", f"keras.{name}", law="uniform" if dist == "uniform" else "truncated_normal", formula=formula, source=f"{_SRC}/random_initializers.py", cites=cites,
             sigma_w2=sigma_w2)(fn)
    return fn


glorot_uniform = _preset("glorot_uniform", 1.0, "fan_avg", "uniform", "W ~ U[-L, L), L = sqrt(6 / (fan_in + fan_out)); the Keras layer default",
                         "Glorot & Bengio 2010", "2 fan_in / (fan_in + fan_out)")
glorot_normal = _preset("glorot_normal", 1.0, "fan_avg", "truncated_normal", "W ~ TN, post-truncation std sqrt(2 / (fan_in + fan_out)), cut at 2 sigma",
                        "Glorot & Bengio 2010", "2 fan_in / (fan_in + fan_out)")
he_normal = _preset("he_normal", 2.0, "fan_in", "truncated_normal", "W ~ TN, post-truncation std sqrt(2 / fan_in), cut at 2.27 sqrt(2 / fan_in)",
                    "He, Zhang, Ren & Sun 2015", "2")
he_uniform = _preset("he_uniform", 2.0, "fan_in", "uniform", "W ~ U[-sqrt(6 / fan_in), sqrt(6 / fan_in))", "He, Zhang, Ren & Sun 2015", "2")
lecun_normal = _preset("lecun_normal", 1.0, "fan_in", "truncated_normal", "W ~ TN, post-truncation std sqrt(1 / fan_in)",
                       "LeCun, Bottou, Orr & Mueller 1998; Klambauer et al. 2017", "1")
lecun_uniform = _preset("lecun_uniform", 1.0, "fan_in", "uniform", "W ~ U[-sqrt(3 / fan_in), sqrt(3 / fan_in))",
                        "LeCun, Bottou, Orr & Mueller 1998", "1")


@register("initializer", "keras.orthogonal", law="orthogonal", formula="W = gain Q, Q from QR of a (max(r,c), min(r,c)) N(0,1) matrix, r = prod(kernel[:-1]), c = kernel[-1]",
          source=f"{_SRC}/random_initializers.py Orthogonal", cites="Saxe, McClelland & Ganguli 2014", sigma_w2="gain^2 fan_in / max(r, c)")
def orthogonal(shape, *, generator, dtype=None, gain: float = 1.0, seed: int | None = None):
    """Keras ``Orthogonal``: flatten the Keras kernel to (prod(shape[:-1]), shape[-1]); each output
    filter (column) becomes a unit vector, orthogonal to the others when rows >= cols.

    Differs from torch's ``orthogonal_``, which flattens (shape[0], prod(shape[1:])) in its own layout.
    """
    kshape = to_keras_layout(shape)
    if len(kshape) < 2:
        raise CatalogError(f"keras.orthogonal needs at least a 2-D weight, got shape {tuple(shape)}")
    rows, cols = math.prod(kshape[:-1]), kshape[-1]
    npd = _np_dtype(dtype)
    a = _rng(generator, seed).normal(size=(max(rows, cols), min(rows, cols))).astype(npd)
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _finish(gain * q.reshape(kshape), kshape, dtype)


@register("initializer", "keras.identity", law="deterministic", formula="W = gain I (2-D only)", source=f"{_SRC}/constant_initializers.py Identity",
          cites="Le, Jaitly & Hinton 2015", sigma_w2="gain^2")
def identity(shape, *, generator, dtype=None, gain: float = 1.0):
    """Keras ``Identity(gain)``: gain times the identity (ones on the main diagonal), rank 2 only."""
    if len(shape) != 2:
        raise CatalogError(f"keras.identity needs a 2-D weight, got shape {tuple(shape)}")
    return gain * torch.eye(*shape, dtype=dtype)


# --- TensorFlow 1.x defaults that differ from Keras 3 under the same names ----------------------

_TF1 = "tensorflow/python/ops/init_ops.py (TF 1.x)"


@register("initializer", "tf1.truncated_normal", law="truncated_normal", formula="W ~ N(0, 1) re-drawn beyond 2 (stddev default 1.0, not 0.05), no correction",
          source=f"{_TF1} truncated_normal_initializer", cites="Abadi et al. 2016 (TensorFlow)", sigma_w2="fan_in 0.7737 stddev^2")
def tf1_truncated_normal(shape, *, generator, dtype=None, mean: float = 0.0, stddev: float = 1.0, seed: int | None = None):
    """TF1 ``truncated_normal_initializer``: like Keras's TruncatedNormal but with default stddev 1.0 (20x Keras's).

    TensorFlow's own stream cannot be reproduced here; the law is the same.
    """
    return _draw("truncated", to_keras_layout(shape), _rng(generator, seed), dtype, mean=mean, std=stddev)


@register("initializer", "tf1.variance_scaling", law="truncated_normal", formula="normal: TN with stddev sqrt(scale / n) *before* truncation (actual std 0.88x); uniform: U(+-sqrt(3 scale / n))",
          source=f"{_TF1} variance_scaling_initializer (before the 2018 fix, TF issues #16344, #18706)",
          cites="Abadi et al. 2016 (TensorFlow)", sigma_w2="0.7737 scale (normal, fan_in)")
def tf1_variance_scaling(shape, *, generator, dtype=None, scale: float = 1.0, mode: str = "fan_in",
                         distribution: str = "normal", seed: int | None = None):
    """TF 1.x ``variance_scaling_initializer`` up to ~2018: "normal" is a truncated normal whose
    stddev sqrt(scale/n) is *not* corrected for the truncation, so weights are 12% smaller in
    std than Keras 3's for the same string (old "he_normal" checkpoints)."""
    dist = "truncated_normal" if distribution.lower() == "normal" else distribution
    return variance_scaling_kernel(shape, generator=generator, dtype=dtype, scale=scale, mode=mode,
                                   distribution=dist, seed=seed, corrected=False)


@register("initializer", "tf1.random_normal", law="normal", formula="W ~ N(0, 1) (TF1 default stddev 1.0)", source=f"{_TF1} random_normal_initializer",
          cites="Abadi et al. 2016 (TensorFlow)", sigma_w2="fan_in stddev^2")
def tf1_random_normal(shape, *, generator, dtype=None, mean: float = 0.0, stddev: float = 1.0, seed: int | None = None):
    """TF1 ``random_normal_initializer``: N(0, 1) by default (Keras 3 / TF2: 0.05)."""
    return _draw("normal", to_keras_layout(shape), _rng(generator, seed), dtype, mean=mean, std=stddev)


@register("initializer", "tf1.random_uniform", law="uniform", formula="W ~ U[0, 1) (TF1 defaults minval 0, maxval 1)", source=f"{_TF1} random_uniform_initializer",
          cites="Abadi et al. 2016 (TensorFlow)", sigma_w2="fan_in / 12 around mean 1/2")
def tf1_random_uniform(shape, *, generator, dtype=None, minval: float = 0.0, maxval: float = 1.0, seed: int | None = None):
    """TF1 ``random_uniform_initializer``: U[0, 1) by default (Keras 3 / TF2: U[-0.05, 0.05))."""
    return _draw("uniform", to_keras_layout(shape), _rng(generator, seed), dtype, low=minval, high=maxval)


@register("initializer", "tf1.uniform_unit_scaling", law="uniform", formula="W ~ U[-L, L], L = factor sqrt(3 / prod(shape[:-1])) in TF layout",
          source=f"{_TF1} uniform_unit_scaling_initializer (deprecated)", cites="Sussillo & Abbott 2014 (random walk initialization)",
          sigma_w2="factor^2")
def tf1_uniform_unit_scaling(shape, *, generator, dtype=None, factor: float = 1.0, seed: int | None = None):
    """TF1 ``uniform_unit_scaling_initializer``: LeCun uniform times ``factor`` (suggested 1.43 for relu, 1.15 for tanh)."""
    kshape = to_keras_layout(shape)
    input_size = max(1, math.prod(kshape[:-1])) if len(kshape) > 1 else max(1, kshape[0] if kshape else 1)
    limit = factor * math.sqrt(3.0 / input_size)
    return _draw("uniform", kshape, _rng(generator, seed), dtype, low=-limit, high=limit)
