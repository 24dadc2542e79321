"""Expand a study into runs and group the runs into populations.

A run is one arm x one tuned setting x one seed. Its id hashes the fully resolved config
together with the version strings of the catalog entries it uses and of the training engine,
so a changed initializer or engine never silently reuses old results. Runs whose tensors have
the same shapes and whose computation graph is the same (architecture, activation, loss,
optimizer, data, epochs, batch size) form a population, trained as one batched computation.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from ponder.study.config import ENGINE_VERSION, PER_MODEL_KEYS, RunConfig
from ponder.study.keys import short_key
from ponder.study.spec import SECTIONS, Study

__all__ = ["ENGINE_VERSION", "Arm", "Run", "Population", "expand", "populations", "run_id", "PER_MODEL_KEYS"]


@dataclass(frozen=True)
class Arm:
    """One combination of factor levels, e.g. {"model.initializer": "he_normal"}.

    A linked factor (``"model.activation+model.initializer"``) is one key whose level is the tuple
    of the values it sets; :meth:`settings` spells it out key by key.
    """

    levels: tuple[tuple[str, Any], ...]

    @property
    def label(self) -> str:
        if not self.levels:
            return "baseline"
        return ", ".join(f"{short_key(k)}={_short(v)}" for k, v in self.levels)

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.levels}

    def settings(self) -> list[tuple[str, Any]]:
        """The (dotted key, value) pairs this arm sets, linked factors spelled out."""
        out: list[tuple[str, Any]] = []
        for key, value in self.levels:
            keys = key.split("+")
            out += list(zip(keys, value)) if len(keys) > 1 else [(key, value)]
        return out


def _short(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return "+".join(_short(x) for x in v)
    return f"{v:g}" if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class Run:
    """One training run, fully resolved."""

    id: str
    arm: Arm
    seed: int
    tuned: tuple[tuple[str, Any], ...]
    config: RunConfig = field(hash=False, compare=False)

    @property
    def population_key(self) -> str:
        return self.config.population_key()


@dataclass
class Population:
    """Runs trained together; ``key`` identifies what they share."""

    key: str
    runs: list[Run]


def run_id(config: RunConfig | dict[str, Any]) -> str:
    """The id of a run: SHA-256 of its canonical config, catalog versions and engine version."""
    cfg = config if isinstance(config, RunConfig) else RunConfig.from_canonical(config)
    return cfg.run_id()


def _sections(study: Study, settings: list[tuple[str, Any]]) -> dict[str, Any]:
    """The typed sections of one arm and setting: the study's fixed settings with ``settings`` applied."""
    raw = {s: getattr(study, s).model_dump() for s in SECTIONS}
    for key, value in settings:
        section, fld = key.split(".", 1)
        raw[section][fld] = value
    return {s: SECTIONS[s].model_validate(raw[s]) for s in SECTIONS}


def expand(study: Study) -> list[Run]:
    """All runs of a study: arms (factor levels in file order) x tuned settings x search draws x seeds.

    A study without ``[search]`` has one "draw" that sets nothing. With it, the draw index and
    the drawn values join the tuned settings: the best draw on validation is the arm's tuned
    result, and the spread over draws is its stability.
    """
    factor_keys, tune_keys = list(study.factors), list(study.tune)
    draws = list(enumerate(study.draws)) or [(None, {})]
    runs: list[Run] = []
    seen: set[str] = set()
    for levels in itertools.product(*(study.factors[k] for k in factor_keys)):
        arm = Arm(tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in zip(factor_keys, levels)))
        for tuned in itertools.product(*(study.tune[k] for k in tune_keys)):
            for draw, drawn in draws:
                settings = tuple(zip(tune_keys, tuned))
                if draw is not None:
                    settings += (("search.draw", draw),) + tuple(drawn.items())
                sections = _sections(study, arm.settings() + [kv for kv in settings if kv[0] != "search.draw"])
                for seed in range(study.seeds):
                    cfg = RunConfig(**sections, evaluate=study.evaluate, seed=seed, search_draw=draw,
                                    metrics=study.extra_metrics)
                    rid = cfg.run_id()
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
