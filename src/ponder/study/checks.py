"""Plan checks: refuse impossible or absurd plans before anything is trained.

They sit beside the plan because they judge it: an architecture that does not fit its data, a
training subset larger than the pool, a shift that needs signals, an initializer parameter
that fails, a study beyond the soft size limits.
"""

from __future__ import annotations

import json
from typing import Any

from ponder.errors import LimitError, PonderError, SpecError
from ponder.study.config import RunConfig
from ponder.study.plan import Run, populations
from ponder.study.spec import Study

__all__ = ["check_plan", "build_layers", "check_module", "LIMITS"]

LIMITS = {"runs": 50_000, "params_per_model": 20_000_000, "model_epochs": 5_000_000}


def build_layers(cfg: RunConfig) -> tuple[tuple[Any, ...], Any]:
    """(layers, data pool) of the model a run config describes; no layers for the classic pipeline or a
    module model (a factory returning a ``torch.nn.Module``: :func:`check_module` builds one)."""
    from ponder.catalog.datasets import load_pool
    from ponder.catalog.models import build, is_module

    ds, m = cfg.dataset, cfg.model
    pool = load_pool(ds.name, ds.options, inputs=ds.inputs)
    if is_module(m.arch):
        return (), pool
    return build(m.arch, pool.sample_shape, pool.n_classes, depth=m.depth, width=m.width,
                 kernel_size=m.kernel_size), pool


def _check_population(study: Study, cfg: RunConfig, pool: Any) -> None:
    """One population's data checks: the training subset fits the pool, shifts fit the samples."""
    n_pool = len(pool.y_train)
    n_val = int(round(cfg.dataset.val_fraction * n_pool))
    ts = cfg.dataset.train_size
    if ts is not None and ts > n_pool - n_val:
        raise SpecError(f"{study.source}: dataset.train_size = {ts} is more than the {n_pool - n_val} examples of "
                        f"{cfg.dataset.name!r} left after the validation split; use at most {n_pool - n_val}")
    spatial = [k for k in cfg.evaluate.shift if k != "noise"]
    if spatial and len(pool.sample_shape) not in (2, 3):
        raise SpecError(f"{study.source}: evaluate.shift.{spatial[0]} needs signals or images, {cfg.dataset.name!r} "
                        f"has samples of shape {tuple(pool.sample_shape)}; use only noise")


def check_plan(study: Study, runs: list[Run], *, force: bool = False) -> None:
    """Refuse impossible or absurd plans before anything is trained.

    Raises:
        SpecError: an architecture does not fit its data, or a training subset is too large.
        LimitError: the study exceeds a soft limit (lifted by ``force``).
    """
    from ponder.catalog.models import is_module, param_count

    _check_modules(study, runs)
    sizes: dict[str, int] = {}
    for pop in populations(runs):
        cfg = pop.runs[0].config
        try:
            layers, pool = build_layers(cfg)
        except SpecError as exc:  # the data's options: name the file they came from
            raise SpecError(str(exc) if str(exc).startswith(study.source) else f"{study.source}: {exc}") from None
        sizes[pop.key] = check_module(study, cfg, pool) if is_module(cfg.model.arch) else param_count(layers)
        _check_population(study, cfg, pool)
    _check_initializers(study, runs)
    _check_activations(study, runs)
    if force:
        return
    model_epochs = len(runs) * study.training.epochs
    for what, value in (("runs", len(runs)), ("params_per_model", max(sizes.values(), default=0)),
                        ("model_epochs", model_epochs)):
        if value > LIMITS[what]:
            raise LimitError(f"{study.source}: the study has {value:,} {what.replace('_', ' ')}, above the limit of "
                             f"{LIMITS[what]:,}; shrink it or pass --force")


def _check_activations(study: Study, runs: list[Run]) -> None:
    """Run each plugin activation once on a small tensor: it must return a tensor of the input's shape and dtype,
    finite on [-3, 3], and leave its input alone; else one sentence before training, not a torch error per run."""
    import torch

    from ponder import registry

    for name in sorted({r.config.model.activation for r in runs}):
        entry = registry.get("activation", name)
        if not entry.plugin:
            continue
        x = torch.linspace(-3.0, 3.0, 24).reshape(2, 3, 4)
        try:
            y = entry.fn(x.clone())
        except Exception as exc:  # noqa: BLE001  (a plugin may raise anything)
            raise SpecError(f"{study.source}: model.activation {name!r} fails on a float32 tensor: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
        problem = (f"returns {type(y).__name__}, not a torch tensor" if not isinstance(y, torch.Tensor) else
                   f"returns shape {tuple(y.shape)} for an input of shape {tuple(x.shape)}" if y.shape != x.shape else
                   f"returns {y.dtype} for {x.dtype} input" if y.dtype != x.dtype else
                   "returns NaN or infinite values for inputs in [-3, 3]" if not bool(torch.isfinite(y).all()) else None)
        if problem is None:
            z = x.clone()
            entry.fn(z)
            problem = "changes its input in place" if not torch.equal(z, x) else None
        if problem:
            raise SpecError(f"{study.source}: model.activation {name!r} {problem}; an activation maps a tensor to a new "
                            "tensor of the same shape and dtype")


def _check_initializers(study: Study, runs: list[Run]) -> None:
    """Draw each distinct (initializer, parameters, activation) once on a small layer, so a bad parameter
    value is refused before training rather than failing every run of its population."""
    seen = set()
    for r in runs:
        m = r.config.model
        if r.config.classical:
            continue
        key = (m.initializer, json.dumps(m.init_params, sort_keys=True, default=str), m.activation)
        if key not in seen:
            seen.add(key)
            _try_initializer(study, m.initializer, m.init_params, m.activation)


def _try_initializer(study: Study, initializer: str, init_params: dict[str, Any], activation: str) -> None:
    import torch

    from ponder import registry
    from ponder.catalog.initializers.base import dense_forward, init_network, parse_init

    name, params = parse_init(initializer)
    params = {**init_params, **params}
    fwd = dense_forward(torch.randn(8, 4, generator=torch.Generator().manual_seed(0)),
                        registry.get("activation", activation).fn)
    shapes = [(3, 4), (2, 3)]
    try:
        drawn = init_network(name, shapes, generator=torch.Generator().manual_seed(0),
                             context={"activation": activation, "forward": fwd}, **params)
        for (w, b), shape in zip(drawn, shapes):  # a plugin's draw: the layer's shapes, floating point
            for t, want in ((w, shape), (b, shape[:1])):
                if not isinstance(t, torch.Tensor) or tuple(t.shape) != want or not t.is_floating_point():
                    got = f"shape {tuple(t.shape)} of {t.dtype}" if isinstance(t, torch.Tensor) else type(t).__name__
                    raise SpecError(f"{study.source}: model.initializer {initializer!r} draws {got} for a {want} "
                                    "tensor; an initializer returns a floating-point tensor of the shape it is given")
    except SpecError:
        raise
    except PonderError as exc:
        raise SpecError(f"{study.source}: model.initializer {initializer!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001  (bad parameter values surface as arbitrary errors)
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise SpecError(f"{study.source}: model.initializer {initializer!r} with parameters {params} fails: "
                        f"{type(exc).__name__}: {first}") from None


def check_module(study: Study, cfg: RunConfig, pool: Any) -> int:
    """Build one network of a module model for this data and run it on two samples; returns its parameter count.

    Raises:
        SpecError: the factory raises or returns no ``torch.nn.Module``, the network has no parameters,
            fails on the samples, or its output is not (batch, n_classes).
    """
    import torch

    from ponder.catalog.models import build_module

    arch, shape, n_classes = cfg.model.arch, tuple(pool.sample_shape), pool.n_classes
    try:
        net = build_module(arch, shape, n_classes, settings=cfg.model.model_dump(), seed=cfg.seed)
    except SpecError as exc:
        raise SpecError(f"{study.source}: {exc}") from None
    params = list(net.parameters())
    if not params:
        raise SpecError(f"{study.source}: model {arch!r} has no parameters to train; give it at least one layer")
    try:
        with torch.no_grad():
            out = net.eval()(torch.zeros(2, *shape, dtype=params[0].dtype))
    except Exception as exc:  # noqa: BLE001  (a user's forward can fail in any way)
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise SpecError(f"{study.source}: model {arch!r} fails on a batch of 2 samples of shape {shape}: "
                        f"{type(exc).__name__}: {first}") from None
    found = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if found != (2, n_classes):
        raise SpecError(f"{study.source}: model {arch!r} returns {found} for a batch of 2 samples of shape {shape}; "
                        f"it must return logits of shape (batch, n_classes) = (2, {n_classes})")
    return sum(p.numel() for p in params)


def _check_modules(study: Study, runs: list[Run]) -> None:
    """Module models: a [model] setting the factory does not take may not vary (nor dropout be set),
    initializers must set layers one at a time, and [evaluate] measurements are not offered."""
    from ponder import registry
    from ponder.catalog.initializers.base import parse_init
    from ponder.catalog.models import MODULE_SETTINGS, is_module, module_kwargs

    by_arch: dict[str, list[RunConfig]] = {}
    for r in runs:
        if not r.config.classical and is_module(r.config.model.arch):
            by_arch.setdefault(r.config.model.arch, []).append(r.config)
    for arch, cfgs in by_arch.items():
        try:
            declared = module_kwargs(arch, dict.fromkeys(MODULE_SETTINGS))
        except SpecError as exc:
            raise SpecError(f"{study.source}: {exc}") from None
        for key in MODULE_SETTINGS:
            values = sorted({getattr(c.model, key) for c in cfgs})
            if key not in declared and (len(values) > 1 or (key == "dropout" and values != [0.0])):
                raise SpecError(f"{study.source}: model.{key} is {values} but model {arch!r} does not take {key!r}; "
                                f"add {key} to the factory's signature or leave model.{key} alone")
        for c in cfgs:
            facts = registry.get("initializer", parse_init(c.model.initializer)[0]).facts
            if facts.network or "forward" in facts.needs:
                raise SpecError(f"{study.source}: initializer {c.model.initializer!r} sets a whole network from its own "
                                f"forward pass, which module model {arch!r} does not offer; use a layer initializer")
            if c.evaluate.measures:
                raise SpecError(f"{study.source}: [evaluate] shift and convexity measure ponder's own architectures; "
                                f"model {arch!r} is a module model (learning curves only), so leave them out")
