"""Shared initializer machinery: each library's fan rule, layout conversion, the ``init`` call.

Ponder stores weights in PyTorch's layout: dense ``(out, in)``, conv ``(out, in/groups, *k)``,
transposed conv ``(in, out/groups, *k)``. An initializer named after a library computes fans
by that library's rule on that library's own layout of the same weight, so a Keras entry sees
the ``(*k, in, out)`` kernel Keras would have built and a Caffe entry the blob Caffe would have.

Two kinds of entries exist:
- *layer* initializers, ``fn(shape, *, generator, dtype, **params) -> Tensor`` (or
  ``(W, b)`` when the registration says ``bias="own"``);
- *network* initializers (``network=True``), which see every layer at once
  (Nguyen-Widrow, LSUV): ``fn(shapes, *, generator, dtype, **context_and_params) -> [(W, b), ...]``.
"""

from __future__ import annotations

import ast
import inspect
import math
import numbers
import re
from typing import Any, Sequence

import numpy as np

from ponder import registry
from ponder.lazy import torch  # torch loads on first use: the catalog registers without it
from ponder.errors import CatalogError

__all__ = ["dense_forward", "parse_init", "check_params", "fans_torch", "fans_caffe", "fans_keras", "to_keras_layout", "from_keras_layout", "init", "init_network",
           "draw_bias", "BIAS_RULES", "check_shape", "derive_seed"]

BIAS_RULES = ("zeros", "fan_in_uniform", "own")


def check_shape(shape: Sequence[int], name: str, min_rank: int = 1) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) < min_rank or any(s < 1 for s in shape):
        raise CatalogError(f"initializer {name!r} needs a shape of at least {min_rank} positive dimensions, got {shape}")
    return shape


def fans_torch(shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) by PyTorch's rule (``_calculate_fan_in_and_fan_out``).

    Layout ``(dim0, dim1, *kernel)``: fan_in = dim1 * prod(kernel), fan_out = dim0 * prod(kernel).
    For a transposed conv, stored ``(in, out/g, *k)``, this makes "fan_in" the layer's output
    channels, as torch does. A population's leading model axis must not be passed here.

    Raises:
        CatalogError: fewer than 2 dimensions (PyTorch refuses them too).
    """
    if len(shape) < 2:
        raise CatalogError(f"fans need a weight of at least 2 dimensions (out, in, ...), got shape {tuple(shape)}")
    receptive = math.prod(shape[2:])
    return int(shape[1]) * receptive, int(shape[0]) * receptive


def fans_caffe(shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) by Caffe's blob rule (filler.hpp): fan_in = count / s[0], fan_out = count / s[1].

    Caffe's blobs have PyTorch's layout (InnerProduct ``(N_out, K_in)``, Convolution
    ``(C_out, C_in/g, *k)``, Deconvolution ``(C_in, num_output/g, *k)``). A 1-D blob has
    fan_in = 1 and fan_out = count (Caffe since March 2018).
    """
    count = math.prod(shape)
    if len(shape) == 1:
        return 1, count
    return count // int(shape[0]), count // int(shape[1])


def to_keras_layout(shape: Sequence[int], transposed: bool = False) -> tuple[int, ...]:
    """The Keras kernel shape of a weight stored in PyTorch layout.

    Dense ``(out, in)`` -> ``(in, out)``; conv ``(out, in, *k)`` -> ``(*k, in, out)``;
    transposed conv ``(in, out, *k)`` -> ``(*k, out, in)`` (Keras: ``(*k, filters, in)``).
    """
    shape = tuple(shape)
    if len(shape) < 2:
        return shape
    if len(shape) == 2:
        return (shape[1], shape[0])
    a, b, k = shape[0], shape[1], shape[2:]
    return (*k, b, a)


def from_keras_layout(kernel: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_keras_layout` for a tensor: ``(*k, b, a)`` -> ``(a, b, *k)``."""
    if kernel.dim() < 2:
        return kernel
    if kernel.dim() == 2:
        return kernel.t().contiguous()
    nk = kernel.dim() - 2
    perm = (nk + 1, nk, *range(nk))
    return kernel.permute(perm).contiguous()


def fans_keras(keras_shape: Sequence[int]) -> tuple[float, float]:
    """(fan_in, fan_out) by Keras 3's ``compute_fans`` on a Keras-layout shape.

    rank 0: (1, 1); rank 1: (s0, s0); rank 2: (s0, s1); rank >= 3: receptive = prod(s[:-2]),
    fan_in = s[-2] * receptive, fan_out = s[-1] * receptive.
    """
    s = tuple(keras_shape)
    if len(s) == 0:
        return 1, 1
    if len(s) == 1:
        return s[0], s[0]
    if len(s) == 2:
        return s[0], s[1]
    receptive = math.prod(s[:-2])
    return s[-2] * receptive, s[-1] * receptive


_CALL = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*(?:\((.*)\))?\s*$")


def parse_init(text: str) -> tuple[str, dict[str, Any]]:
    """Split ``"caffe.gaussian(std=0.01, sparse=5)"`` into ``("caffe.gaussian", {"std": 0.01, "sparse": 5})``.

    Values are Python literals (numbers, strings, booleans). The name is checked against the
    catalog and the parameters against the entry's signature.

    Raises:
        CatalogError: malformed text, unknown name or unknown parameter (with the closest valid one).
    """
    m = _CALL.match(text)
    if not m:
        raise CatalogError(f"initializer {text!r} is not of the form name or name(param=value, ...)")
    name, args = m.group(1), m.group(2)
    entry = registry.get("initializer", name)
    params: dict[str, Any] = {}
    if args and args.strip():
        for part in args.split(","):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or not key.isidentifier():
                raise CatalogError(f"initializer {text!r}: {part.strip()!r} is not param=value")
            try:
                params[key] = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                params[key] = value.strip()
    check_params(entry, params)
    return name, params


def check_params(entry: "registry.Entry", params: dict[str, Any]) -> None:
    """Refuse parameters the entry does not take, naming the closest valid one."""
    sig = inspect.signature(entry.fn)
    allowed = [p for p, v in sig.parameters.items() if v.kind == v.KEYWORD_ONLY and p not in ("generator", "dtype", *entry.facts.needs)]
    for key in params:
        if key not in allowed:
            hint = registry.did_you_mean(key, allowed)
            raise CatalogError(f"initializer {entry.name!r} has no parameter {key!r}{hint} (its parameters: {', '.join(allowed) or 'none'})")


def derive_seed(generator: torch.Generator) -> int:
    """A 31-bit integer seed drawn from ``generator`` (for entries that draw with another RNG)."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator).item())


def init(name: str, shape: Sequence[int], *, generator: torch.Generator | None = None,
         dtype: torch.dtype | None = None, **params: Any) -> torch.Tensor:
    """Draw one weight tensor of ``shape`` with layer initializer ``name``.

    Args:
        name: A catalog initializer name (``ponder list initializers``), with parameters as a study writes them
            (``"caffe.gaussian(std=0.5)"``) or as keywords.
        shape: Per-model weight shape in PyTorch layout.
        generator: The only source of randomness.
        dtype: Floating dtype of the result (None: float32).
        **params: The initializer's parameters.

    Returns:
        A new tensor of ``shape`` and ``dtype`` (the weight only, for entries that also set a bias).
    """
    if not isinstance(name, str):
        raise CatalogError(f"an initializer is named by a string, e.g. 'torch.kaiming_normal' (got {name!r})")
    dims = [None] if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__") else list(shape)
    if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in dims):
        raise CatalogError(f"shape must be positive whole numbers, e.g. (256, 128) (got {shape!r})")
    base, written = parse_init(name)
    out = _call_layer(base, shape, generator=generator, dtype=dtype, **written, **params)
    return out[0] if isinstance(out, tuple) else out


def _call_layer(name: str, shape: Sequence[int], *, generator, dtype, **params):
    entry = registry.get("initializer", name)
    if entry.facts.network:
        raise CatalogError(f"initializer {name!r} initializes a whole network; give the layer sizes (ponder init {name} --layers 40,100,10)")
    if generator is None:
        raise CatalogError(f"initializer {name!r} needs an explicit generator (ponder never uses the global RNG)")
    try:
        return entry.fn(tuple(int(s) for s in shape), generator=generator, dtype=_dtype(dtype), **params)
    except TypeError as exc:
        raise CatalogError(f"initializer {name!r} got bad parameters {sorted(params)}: {exc}") from None


def init_layer(name: str, shape: Sequence[int], *, generator: torch.Generator, dtype: torch.dtype,
               params: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, b) of one layer by a layer initializer and its bias rule, drawing W first."""
    entry = registry.get("initializer", name)
    out = _call_layer(name, shape, generator=generator, dtype=dtype, **params)
    if isinstance(out, tuple):
        return out
    fan_in, _ = fans_torch(shape)
    return out, draw_bias(entry.facts.bias, int(shape[0]), fan_in, generator=generator, dtype=dtype)


def init_network(name: str, shapes: Sequence[Sequence[int]], *, generator: torch.Generator,
                 dtype: torch.dtype | None = None, context: dict[str, Any] | None = None,
                 **params: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(W, b) for every layer of a network, by a network or a layer initializer.

    Args:
        shapes: Per-layer weight shapes in PyTorch layout, input layer first.
        context: What some entries need beyond shapes: ``activation`` (name) for ``critical``,
            ``forward`` and ``batch`` for ``lsuv``. Entries declare what they use in ``facts.needs``.
    """
    entry = registry.get("initializer", name)
    context = context or {}
    needs = entry.facts.needs
    missing = [n for n in needs if n not in context]
    if missing:
        raise CatalogError(f"initializer {name!r} needs {', '.join(missing)} to draw weights")
    extra = {n: context[n] for n in needs}
    dtype = _dtype(dtype)
    if entry.facts.network:
        try:
            return entry.fn([tuple(s) for s in shapes], generator=generator, dtype=dtype, **extra, **params)
        except TypeError as exc:
            raise CatalogError(f"initializer {name!r} got bad parameters {sorted(params)}: {exc}") from None
    return [init_layer(name, s, generator=generator, dtype=dtype, params={**extra, **params}) for s in shapes]


def dense_forward(x: torch.Tensor, act) -> Any:
    """A one-model forward over dense (W, b) pairs on the batch x, for data-dependent initializers (LSUV):
    ``forward(params, upto, post)`` returns layer ``upto``'s output, after the activation when ``post``."""

    def forward(params, upto: int, post: bool) -> torch.Tensor:
        h = x
        for i, (w, b) in enumerate(params):
            h = h @ w.t() + b
            if i == upto:
                return act(h) if post and i < len(params) - 1 else h
            h = act(h)
        return h

    return forward


def draw_bias(rule: str, out_features: int, fan_in: int, *, generator: torch.Generator,
              dtype: torch.dtype | None = None) -> torch.Tensor:
    """Draw a layer's bias by ``rule``: zeros, or PyTorch's module default U[-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    dtype = _dtype(dtype)
    if rule == "zeros":
        return torch.zeros(out_features, dtype=dtype)
    if rule == "fan_in_uniform":
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        return torch.empty(out_features, dtype=dtype).uniform_(-bound, bound, generator=generator)
    raise CatalogError(f"unknown bias rule {rule!r}; expected one of {BIAS_RULES}")


def as_tensor(arr: np.ndarray, dtype: torch.dtype | None) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr)).to(_dtype(dtype))


def _dtype(dtype: torch.dtype | None) -> torch.dtype:
    """float32 where a caller left the dtype out: every entry, a plugin's too, is called with a real dtype (the
    defaults are None only so that the catalog registers without loading torch)."""
    return torch.float32 if dtype is None else dtype
