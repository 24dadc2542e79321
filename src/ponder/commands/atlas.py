"""``ponder init``: draw one initializer and show its formula, fans and sample statistics."""

from __future__ import annotations

import inspect
import json
import math
from typing import Any, Optional

import typer

from ponder.commands import checks
from ponder.commands.console import emit, say
from ponder.errors import PonderError

__all__ = ["init_cmd", "MAX_INIT_ELEMENTS", "MAX_INIT_LAYERS"]

# Caps checked before anything is allocated. 50 million float64 weights are 400 MB, far above any
# layer the atlas is meant to show, and well inside a laptop's memory; 1,000 layers bound --layers.
MAX_INIT_ELEMENTS = 50_000_000
MAX_INIT_LAYERS = 1_000


def init_cmd(name: str = typer.Argument(..., help="Catalog initializer, e.g. caffe.xavier or 'caffe.gaussian(std=0.01)'."),
             shape: Optional[str] = typer.Option(None, "--shape", help="Weight shape in PyTorch layout, e.g. 256,128 "
                                                 f"(at most {MAX_INIT_ELEMENTS:,} elements)."),
             layers: Optional[str] = typer.Option(None, "--layers", help="Layer sizes for a whole MLP, e.g. 40,100,100,10 "
                                                  f"(at most {MAX_INIT_LAYERS:,} layers, {MAX_INIT_ELEMENTS:,} weights)."),
             param: list[str] = typer.Option([], "--param", help="key=value, repeatable."),
             seed: int = typer.Option(0, "--seed"),
             activation: str = typer.Option("relu", "--activation", help="For initializers that depend on it (critical, orthogonal, lsuv)."),
             rng: Optional[str] = typer.Option(None, "--rng", help="opencv: draw with OpenCV's own RNG stream (bit-exact)."),
             as_json: bool = typer.Option(False, "--json", help="Print JSON."),
             save: Optional[str] = typer.Option(None, "--save", help="Save the tensor (.npy) or all layers (.npz)."),
             force: bool = typer.Option(False, "--force", help="Let --save replace an existing file.")) -> None:
    """Draw an initializer and show its formula, the fans it used and sample statistics."""
    shapes = _shapes(shape, layers)
    target = _save_target(save, force=force)
    from ponder import registry
    from ponder.catalog.initializers.base import check_params, parse_init

    base, params = parse_init(name)
    entry = registry.get("initializer", base)
    if rng is not None:
        checks.choice("--rng", rng, ["opencv", "ponder"])
        if "rng" not in inspect.signature(entry.fn).parameters:
            raise PonderError(f"--rng applies to the OpenCV initializers only (e.g. opencv.nguyen_widrow), not {base!r}")
    params.update(_params(param, rng))
    check_params(entry, {k: v for k, v in params.items() if k != "rng"})  # a misspelled --param names the closest one
    registry.get("activation", activation)  # checked for every initializer, not only those that use it
    if shape is not None and entry.meta.get("network"):
        raise PonderError(f"{base!r} initializes a whole network; use --layers, e.g. --layers 40,100,10")
    drawn = _draw(base, entry, shapes, params, seed=seed, activation=activation)
    rows = _rows(drawn, shapes)
    if target:
        _save(target, drawn)
    if as_json:
        print(json.dumps({"name": base, "params": params, "formula": entry.formula, "source": entry.source,
                          "layers": rows}, indent=2))
        return
    say(f"{f' {params}' if params else ''}: {entry.formula}", bold=base)
    say(f"source: {entry.source}; cites: {entry.cites}")
    emit([{k: (f"{v:.5g}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows], "auto")
    if target:
        say(f"saved: {target}")


def _shapes(shape: Optional[str], layers: Optional[str]) -> list[tuple[int, ...]]:
    """The weight shapes asked for, refused above the caps before anything is allocated."""
    if (shape is None) == (layers is None):
        raise PonderError("give exactly one of --shape (one weight) or --layers (a whole MLP)")
    if shape is not None:
        shapes, option = [_ints(shape, "--shape")], "--shape"
    else:
        sizes = _ints(layers or "", "--layers")
        if len(sizes) < 2:
            raise PonderError("--layers needs at least an input and an output size, e.g. 40,100,10")
        if len(sizes) - 1 > MAX_INIT_LAYERS:
            raise PonderError(f"--layers gives {len(sizes) - 1:,} layers, above the cap of {MAX_INIT_LAYERS:,}")
        shapes, option = [(b, a) for a, b in zip(sizes[:-1], sizes[1:])], "--layers"
    total = sum(math.prod(s) for s in shapes)
    if total > MAX_INIT_ELEMENTS:
        raise PonderError(f"{option} asks for {total:,} weights, above the cap of {MAX_INIT_ELEMENTS:,}; "
                          "use smaller sizes (the statistics settle long before that)")
    return shapes


def _ints(text: str, opt: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise PonderError(f"{opt} {text!r} must be comma-separated integers, e.g. 256,128") from None
    if not vals or any(v < 1 for v in vals):
        raise PonderError(f"{opt} {text!r} must hold positive sizes")
    return vals


def _save_target(save: Optional[str], *, force: bool) -> Optional[str]:
    """The file --save writes (numpy adds .npy to other names), checked before any work."""
    if not save:
        return None
    target = save if save.endswith((".npy", ".npz")) else save + ".npy"
    checks.file_target("--save", target, force=force)
    return target


def _params(param: list[str], rng: Optional[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for p in param:
        key, sep, value = p.partition("=")
        if not sep:
            raise PonderError(f"--param {p!r} is not key=value")
        params[key.strip()] = _literal(value.strip())
    if rng is not None:
        params["rng"] = rng
    return params


def _literal(text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _draw(base: str, entry: Any, shapes: list[tuple[int, ...]], params: dict[str, Any], *, seed: int,
          activation: str) -> list[Any]:
    import torch

    from ponder import registry
    from ponder.catalog.initializers.base import dense_forward, init_network
    from ponder.rng import rng_for

    ctx: dict[str, Any] = {"activation": activation}
    if "forward" in entry.meta.get("needs", ()):
        batch = torch.randn(256, shapes[0][1], generator=rng_for(seed, "cli-batch"), dtype=torch.float64)
        ctx["forward"] = dense_forward(batch, registry.get("activation", activation).fn)
    return init_network(base, shapes, generator=rng_for(seed, "init"), dtype=torch.float64, context=ctx, **params)


def _rows(drawn: list[Any], shapes: list[tuple[int, ...]]) -> list[dict[str, Any]]:
    rows = []
    for i, ((w, b), s) in enumerate(zip(drawn, shapes)):
        fan_in = math.prod(s[1:])
        rows.append({"layer": i, "shape": list(s), "fan_in": fan_in, "fan_out": s[0] * math.prod(s[2:]),
                     "mean": float(w.mean()), "std": float(w.std()), "min": float(w.min()), "max": float(w.max()),
                     "sigma_w2": float(fan_in * w.pow(2).mean()), "bias_std": float(b.std()) if b.numel() > 1 else 0.0})
    return rows


def _save(target: str, drawn: list[Any]) -> None:
    import numpy as np

    if target.endswith(".npz"):
        arrays = {f"W{i}": w.numpy() for i, (w, _) in enumerate(drawn)} | {f"b{i}": b.numpy() for i, (_, b) in enumerate(drawn)}
        np.savez(target, **arrays)
    else:
        np.save(target, drawn[0][0].numpy())
