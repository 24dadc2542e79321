"""Expand a study into runs and group the runs into populations.

A run is one arm x one tuned setting x one seed. Its id hashes the fully resolved config
together with the version strings of the catalog entries it uses and of the training engine,
so a changed initializer or engine never silently reuses old results. Runs whose tensors have
the same shapes and whose computation graph is the same (architecture, activation, loss,
optimizer, data, epochs, batch size) form a population, trained as one batched computation.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from ponder import registry
from ponder.catalog.initializers.base import parse_init
from ponder.study.spec import Study

__all__ = ["ENGINE_VERSION", "Arm", "Run", "Population", "expand", "populations", "run_id",
           "PER_MODEL_KEYS"]

ENGINE_VERSION = "ponder-engine-1"

# Settings that may differ between the models of one population: they change numbers, not
# shapes or the graph.
PER_MODEL_KEYS = (
    ("seed",),
    ("training", "lr"),
    ("training", "weight_decay"),
    ("model", "initializer"),
    ("model", "init_params"),
    ("model", "dropout"),
    ("dataset", "label_noise"),
    ("search_draw",),
)


@dataclass(frozen=True)
class Arm:
    """One combination of factor levels, e.g. {"model.initializer": "he_normal"}."""

    levels: tuple[tuple[str, Any], ...]

    @property
    def label(self) -> str:
        if not self.levels:
            return "baseline"
        return ", ".join(f"{k.split('.', 1)[1]}={_short(v)}" for k, v in self.levels)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.levels)


def _short(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class Run:
    """One training run, fully resolved."""

    id: str
    arm: Arm
    seed: int
    tuned: tuple[tuple[str, Any], ...]
    config: dict[str, Any] = field(hash=False, compare=False)

    @property
    def population_key(self) -> str:
        cfg = copy.deepcopy(self.config)
        for path in PER_MODEL_KEYS:
            node = cfg
            for part in path[:-1]:
                node = node[part]
            node.pop(path[-1], None)
        return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Population:
    """Runs trained together; ``key`` identifies what they share."""

    key: str
    runs: list[Run]


def _set(cfg: dict[str, Any], dotted: str, value: Any) -> None:
    section, fld = dotted.split(".", 1)
    cfg[section][fld] = value


def catalog_versions(config: dict[str, Any]) -> dict[str, str]:
    """Version strings of the catalog entries a config uses."""
    return {
        "dataset": registry.get("dataset", config["dataset"]["name"]).version,
        "model": registry.get("model", config["model"]["arch"]).version,
        "activation": registry.get("activation", config["model"]["activation"]).version,
        "initializer": registry.get("initializer", parse_init(config["model"]["initializer"])[0]).version,
        "loss": "+".join(registry.get("loss", part).version for part in config["training"]["loss"].split(">")),
    }


def run_id(config: dict[str, Any]) -> str:
    """The id of a run: SHA-256 of its resolved config, catalog versions and engine version."""
    blob = {"config": config, "catalog": catalog_versions(config), "engine": ENGINE_VERSION}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:20]


# What the classic pipeline (hog_svm, logreg) does not use: dropped from its configs, so a tuned
# learning rate does not train the same baseline twice.
_CLASSICAL_INERT = {"training": ("lr", "momentum", "weight_decay", "batch_size", "optimizer", "switch", "dtype"),
                    "model": ("depth", "width", "kernel_size", "init_params", "dropout")}


def _canonical(cfg: dict[str, Any]) -> dict[str, Any]:
    """Drop settings that have no effect, so they never split populations or change run ids."""
    if ">" not in cfg["training"]["loss"]:
        cfg["training"].pop("switch", None)
    if registry.get("model", cfg["model"]["arch"]).meta.get("classical"):
        for section, keys in _CLASSICAL_INERT.items():
            for k in keys:
                cfg[section].pop(k, None)
    return cfg


def expand(study: Study) -> list[Run]:
    """All runs of a study: arms (factor levels in file order) x tuned settings x search draws x seeds.

    A study without ``[search]`` has one "draw" that sets nothing. With it, the draw index and
    the drawn values join the tuned settings: the best draw on validation is the arm's tuned
    result, and the spread over draws is its stability.
    """
    base = study.base_config()
    evaluate = study.evaluate.config()
    if evaluate:
        base["evaluate"] = evaluate
    factor_keys, tune_keys = list(study.factors), list(study.tune)
    draws = list(enumerate(study.draws)) or [(None, {})]
    runs: list[Run] = []
    seen: set[str] = set()
    for levels in itertools.product(*(study.factors[k] for k in factor_keys)):
        arm = Arm(tuple(zip(factor_keys, levels)))
        for tuned in itertools.product(*(study.tune[k] for k in tune_keys)):
            for draw, drawn in draws:
                settings = tuple(zip(tune_keys, tuned))
                if draw is not None:
                    settings += (("search.draw", draw),) + tuple(drawn.items())
                for seed in range(study.seeds):
                    cfg = copy.deepcopy(base)
                    for k, v in zip(factor_keys, levels):
                        _set(cfg, k, v)
                    for k, v in settings:
                        if k != "search.draw":
                            _set(cfg, k, v)
                    if draw is not None:
                        cfg["search_draw"] = draw
                    cfg["seed"] = seed
                    cfg = _canonical(cfg)
                    rid = run_id(cfg)
                    if rid not in seen:  # settings without effect on this arm (a baseline's learning rate)
                        seen.add(rid)
                        runs.append(Run(rid, arm, seed, settings, cfg))
    return runs


def populations(runs: list[Run]) -> list[Population]:
    """Group runs by population key, keeping first-seen order."""
    groups: dict[str, list[Run]] = {}
    for r in runs:
        groups.setdefault(r.population_key, []).append(r)
    return [Population(k, v) for k, v in groups.items()]
