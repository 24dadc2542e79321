"""Architectures, described as a list of layers a population engine can execute.

An architecture entry maps (sample shape, class count, depth, width, kernel size) to a tuple
of :class:`Layer` specs. Weights use PyTorch's layout (dense ``(out, in)``, conv
``(out, in, *kernel)``); the population engine adds a leading model axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ponder.errors import CatalogError, SpecError
from ponder.registry import register

__all__ = ["Layer", "build", "param_count", "flops_per_example", "is_classical", "is_module", "MODULE_SETTINGS",
           "module_kwargs", "build_module"]


@dataclass(frozen=True)
class Layer:
    """One affine layer, optionally followed by the activation and dropout.

    Attributes:
        kind: ``dense``, ``conv1d`` or ``conv2d``.
        weight_shape: Per-model weight shape in PyTorch layout.
        in_shape: Per-example input shape (without model and batch axes).
        out_shape: Per-example output shape.
        stride: Convolution stride (1 for dense).
        padding: Convolution zero padding (0 for dense).
        hidden: True for hidden layers (activation and dropout follow); False for the output layer.
        flatten: True when the input must be flattened first (dense after conv).
    """

    kind: str
    weight_shape: tuple[int, ...]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    stride: int = 1
    padding: int = 0
    hidden: bool = True
    flatten: bool = False

    @property
    def out_features(self) -> int:
        return self.weight_shape[0]


def _dense_stack(in_features: int, widths: list[int], n_classes: int, *, flatten_first: bool,
                 in_shape: tuple[int, ...]) -> list[Layer]:
    layers: list[Layer] = []
    prev, shape, flat = in_features, in_shape, flatten_first
    for w in widths:
        layers.append(Layer("dense", (w, prev), shape, (w,), flatten=flat))
        prev, shape, flat = w, (w,), False
    layers.append(Layer("dense", (n_classes, prev), shape, (n_classes,), hidden=False, flatten=flat))
    return layers


@register("model", "mlp", formula="depth hidden dense layers of `width` units, then a dense output layer",
          source="multilayer perceptron", cites="Rumelhart, Hinton & Williams 1986")
def mlp(sample_shape: tuple[int, ...], n_classes: int, *, depth: int, width: int, kernel_size: int = 0) -> tuple[Layer, ...]:
    """Fully connected network: input flattened, ``depth`` hidden layers of ``width`` units."""
    d = math.prod(sample_shape)
    return tuple(_dense_stack(d, [width] * depth, n_classes, flatten_first=len(sample_shape) > 1, in_shape=tuple(sample_shape)))


def _conv_out(n: int, k: int, stride: int, pad: int) -> int:
    return (n + 2 * pad - k) // stride + 1


@register("model", "cnn1d", formula="depth conv1d layers (width channels, kernel k, stride 2), then a dense output layer",
          source="small 1-D CNN in the style of the MNIST-1D paper's baseline", cites="Greydanus 2020")
def cnn1d(sample_shape: tuple[int, ...], n_classes: int, *, depth: int, width: int, kernel_size: int = 5) -> tuple[Layer, ...]:
    """1-D CNN for samples of shape (channels, length): ``depth`` convolutions with ``width``
    channels, kernel ``kernel_size``, stride 2, padding ``kernel_size // 2``; then flatten and
    a dense output layer."""
    if len(sample_shape) != 2:
        raise SpecError(f"model.arch = 'cnn1d' needs samples of shape (channels, length), this dataset has {tuple(sample_shape)}; use 'mlp' or 'cnn2d'")
    c, n = sample_shape
    layers, pad = [], kernel_size // 2
    for _ in range(depth):
        n_out = _conv_out(n, kernel_size, 2, pad)
        if n_out < 1:
            raise SpecError(f"model.depth = {depth} shrinks a length-{sample_shape[1]} signal below one point; use a smaller depth")
        layers.append(Layer("conv1d", (width, c, kernel_size), (c, n), (width, n_out), stride=2, padding=pad))
        c, n = width, n_out
    layers.append(Layer("dense", (n_classes, c * n), (c, n), (n_classes,), hidden=False, flatten=True))
    return tuple(layers)


@register("model", "cnn2d", formula="depth conv2d layers (width channels, k x k, stride 2), then a dense output layer",
          source="small 2-D CNN", cites="LeCun, Bottou, Bengio & Haffner 1998")
def cnn2d(sample_shape: tuple[int, ...], n_classes: int, *, depth: int, width: int, kernel_size: int = 3) -> tuple[Layer, ...]:
    """2-D CNN for samples of shape (channels, height, width): ``depth`` k x k convolutions,
    stride 2, padding ``kernel_size // 2``; then flatten and a dense output layer."""
    if len(sample_shape) != 3:
        raise SpecError(f"model.arch = 'cnn2d' needs image samples (channels, height, width), this dataset has {tuple(sample_shape)}; use 'mlp' or 'cnn1d'")
    c, h, w = sample_shape
    layers, pad = [], kernel_size // 2
    for _ in range(depth):
        h2, w2 = _conv_out(h, kernel_size, 2, pad), _conv_out(w, kernel_size, 2, pad)
        if h2 < 1 or w2 < 1:
            raise SpecError(f"model.depth = {depth} shrinks a {h}x{w} image below one pixel; use a smaller depth")
        layers.append(Layer("conv2d", (width, c, kernel_size, kernel_size), (c, h, w), (width, h2, w2), stride=2, padding=pad))
        c, h, w = width, h2, w2
    layers.append(Layer("dense", (n_classes, c * h * w), (c, h, w), (n_classes,), hidden=False, flatten=True))
    return tuple(layers)


@register("model", "hog_svm", formula="HOG features (scikit-image), then a linear SVM (scikit-learn LinearSVC, C = 1)",
          source="the classic pipeline: hand-designed features and a linear classifier; 1-D signals are drawn as line plots first",
          cites="Dalal & Triggs 2005; Fan et al. 2008 (LIBLINEAR)", classical=True)
def hog_svm(sample_shape: tuple[int, ...], n_classes: int, *, depth: int = 0, width: int = 0, kernel_size: int = 0) -> tuple[Layer, ...]:
    """Histograms of oriented gradients and a linear support vector machine (no trained layers here;
    :mod:`ponder.train.classical` fits it)."""
    if len(sample_shape) not in (2, 3):
        raise SpecError(f"model.arch = 'hog_svm' needs signals (channels, length) or images, this dataset has {tuple(sample_shape)}; use 'logreg' or 'mlp'")
    return ()


@register("model", "logreg", formula="multinomial logistic regression on standardized raw inputs (scikit-learn, L2, C = 1)",
          source="the linear baseline", cites="Cox 1958; scikit-learn LogisticRegression", classical=True)
def logreg(sample_shape: tuple[int, ...], n_classes: int, *, depth: int = 0, width: int = 0, kernel_size: int = 0) -> tuple[Layer, ...]:
    """Multinomial logistic regression on the raw inputs (no trained layers here; :mod:`ponder.train.classical` fits it)."""
    return ()


def is_classical(arch: str) -> bool:
    """True for the non-neural baselines (fit by scikit-learn, not by the population engine)."""
    from ponder import registry

    return registry.get("model", arch).facts.classical


def build(arch: str, sample_shape: tuple[int, ...], n_classes: int, *, depth: int, width: int,
          kernel_size: int) -> tuple[Layer, ...]:
    """The layers of architecture ``arch`` for this data."""
    from ponder import registry

    entry = registry.get("model", arch)
    if not entry.plugin:
        return entry.fn(tuple(sample_shape), n_classes, depth=depth, width=width, kernel_size=kernel_size)
    try:  # a plugin model without module=True is held to the built-ins' contract: a tuple of Layers
        layers = entry.fn(tuple(sample_shape), n_classes, depth=depth, width=width, kernel_size=kernel_size)
    except TypeError as exc:
        layers = exc
    if not (isinstance(layers, tuple) and layers and all(isinstance(layer, Layer) for layer in layers)):
        raise CatalogError(f"model {arch!r} does not build ponder's layers ({type(layers).__name__}: "
                           f"{str(layers).splitlines()[0][:120] if isinstance(layers, Exception) else 'returned'}); "
                           "a torch.nn.Module factory is registered with module=True")
    return layers


def param_count(layers: tuple[Layer, ...]) -> int:
    """Parameters of one model (weights and biases)."""
    return sum(math.prod(l.weight_shape) + l.weight_shape[0] for l in layers)


def flops_per_example(layers: tuple[Layer, ...]) -> int:
    """Multiply-add FLOPs (2 per MAC) of one forward pass for one example."""
    total = 0
    for l in layers:
        positions = math.prod(l.out_shape[1:]) if l.kind != "dense" else 1
        total += 2 * math.prod(l.weight_shape) * positions
    return total


# -- module models: a user's factory ``fn(in_shape, n_classes, **settings) -> torch.nn.Module`` ------------------

MODULE_SETTINGS = ("depth", "width", "kernel_size", "activation", "dropout")  # [model] keys a factory may declare


def is_module(arch: str) -> bool:
    """True for a module model (registered with ``module=True``): a factory returning a ``torch.nn.Module``."""
    from ponder import registry

    return registry.get("model", arch).facts.module


def module_kwargs(arch: str, settings: dict) -> dict:
    """The [model] settings a module factory declares in its signature (all of them for ``**settings``).

    Raises:
        SpecError: the factory does not take (in_shape, n_classes) first, or it requires a parameter
            that is not a [model] setting.
    """
    import inspect

    from ponder import registry

    params = list(inspect.signature(registry.get("model", arch).fn).parameters.values())
    positional = [p for p in params[:2] if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2:
        raise SpecError(f"model {arch!r}: a module factory takes (in_shape, n_classes, **settings) first; "
                        f"its signature has {[p.name for p in params[:2]]}")
    if any(p.kind == p.VAR_KEYWORD for p in params[2:]):
        return {k: settings[k] for k in MODULE_SETTINGS}
    out = {}
    for p in params[2:]:
        if p.name in MODULE_SETTINGS:
            out[p.name] = settings[p.name]
        elif p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise SpecError(f"model {arch!r}: the factory requires {p.name!r}, which is not a [model] setting; give it a "
                            f"default or take one of {', '.join(MODULE_SETTINGS)}")
    return out


def build_module(arch: str, sample_shape: tuple[int, ...], n_classes: int, *, settings: dict, seed: int):
    """One network of module model ``arch`` for samples of ``sample_shape``, built from run seed ``seed``.

    Draws the factory makes itself (weights it sets up beyond Linear and Conv layers, which ponder
    re-initializes) come from torch's global generator, set from the stream (seed, "module") inside
    ``torch.random.fork_rng``: reproducible per seed, and the caller's global state is left as it was.

    Raises:
        SpecError: the factory raises, returns something that is not a ``torch.nn.Module``, or
            leaves lazy (uninitialized) parameters.
    """
    import torch

    from ponder import registry
    from ponder.errors import PonderError
    from ponder.rng import rng_for

    kwargs = module_kwargs(arch, settings)
    with torch.random.fork_rng(devices=[]):
        torch.set_rng_state(rng_for(seed, "module").get_state())
        try:
            net = registry.get("model", arch).fn(tuple(sample_shape), n_classes, **kwargs)
        except PonderError:
            raise
        except Exception as exc:  # noqa: BLE001  (a user's factory can fail in any way)
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise SpecError(f"model {arch!r} failed to build for samples of shape {tuple(sample_shape)} and {n_classes} "
                            f"classes with {kwargs}: {type(exc).__name__}: {first}") from None
    if not isinstance(net, torch.nn.Module):
        raise SpecError(f"model {arch!r} returned a {type(net).__name__}, not a torch.nn.Module; return the network")
    if any(isinstance(p, torch.nn.parameter.UninitializedParameter) for p in net.parameters()):
        raise SpecError(f"model {arch!r} has lazy layers (nn.LazyLinear, ...); give their input sizes, from in_shape")
    return net
