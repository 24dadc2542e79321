"""The typed, frozen configuration of one run.

:func:`ponder.study.plan.expand` builds a :class:`RunConfig` for every run from the study's own
section models, so training, executors and checks read typed fields and every default lives in
one place (the section models of :mod:`ponder.study.spec`). A run's id hashes
:meth:`RunConfig.canonical`, the same plain dict that earlier releases hashed, so stores written
before keep their ids.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ponder import registry
from ponder.study.spec import DatasetSpec, EvaluateSpec, ModelSpec, TrainingSpec

__all__ = ["RunConfig", "ENGINE_VERSION", "PER_MODEL_KEYS", "CLASSICAL_INERT", "digest"]

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

# What the classic pipeline (hog_svm, logreg) does not use: dropped from its canonical config, so
# a tuned learning rate does not train the same baseline twice.
CLASSICAL_INERT = {"training": ("lr", "momentum", "weight_decay", "batch_size", "optimizer", "switch", "dtype"),
                   "model": ("depth", "width", "kernel_size", "init_params", "dropout")}


def digest(blob: Any, n: int) -> str:
    """The first ``n`` hex digits of the SHA-256 of ``blob`` as sorted JSON."""
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:n]


class RunConfig(BaseModel):
    """Everything that decides one run's numbers: data, model, training, evaluations, seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: DatasetSpec
    model: ModelSpec
    training: TrainingSpec
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec)
    seed: int = Field(ge=0)
    search_draw: int | None = None
    metrics: tuple[str, ...] = ()  # measured on the trained model beyond per-epoch accuracy and loss

    @classmethod
    def from_canonical(cls, cfg: dict[str, Any]) -> "RunConfig":
        """Rebuild a config from its canonical dict (e.g. a store's ``config_json``)."""
        return cls.model_validate(cfg)

    @property
    def classical(self) -> bool:
        """True for the classic pipeline (a scikit-learn model, no gradient training)."""
        return registry.get("model", self.model.arch).facts.classical

    @property
    def has_schedule(self) -> bool:
        """True when the loss is a schedule ``first>second``."""
        return ">" in self.training.loss

    def canonical(self) -> dict[str, Any]:
        """The plain dict a run id hashes: settings without effect are left out."""
        cfg: dict[str, Any] = {"dataset": self.dataset.model_dump(), "model": self.model.model_dump(),
                               "training": self.training.model_dump(), "seed": self.seed}
        if self.evaluate.config():
            cfg["evaluate"] = self.evaluate.config()
        if self.search_draw is not None:
            cfg["search_draw"] = self.search_draw
        if self.metrics:  # only when asked, so older run ids stay valid
            cfg["metrics"] = list(self.metrics)
        if not self.has_schedule:
            cfg["training"].pop("switch")
        if self.classical:
            for section, keys in CLASSICAL_INERT.items():
                for k in keys:
                    cfg[section].pop(k, None)
        return cfg

    def catalog_versions(self) -> dict[str, str]:
        """Version strings of the catalog entries this run uses (plus a code hash for plugins)."""
        from ponder.catalog.initializers.base import parse_init

        out = {
            "dataset": registry.get("dataset", self.dataset.name).identity,
            "model": registry.get("model", self.model.arch).identity,
            "activation": registry.get("activation", self.model.activation).identity,
            "initializer": registry.get("initializer", parse_init(self.model.initializer)[0]).identity,
            "loss": "+".join(registry.get("loss", part).identity for part in self.training.loss.split(">")),
        }
        if self.metrics:
            out["metrics"] = "+".join(registry.get("metric", m).identity for m in self.metrics)
        return out

    def run_id(self) -> str:
        """SHA-256 of the canonical config, the catalog versions and the engine version."""
        return digest({"config": self.canonical(), "catalog": self.catalog_versions(), "engine": ENGINE_VERSION}, 20)

    def population_key(self) -> str:
        """What the models of one population share: the canonical config without per-model settings."""
        cfg = self.canonical()
        for path in PER_MODEL_KEYS:
            node = cfg
            for part in path[:-1]:
                node = node[part]
            node.pop(path[-1], None)
        return digest(cfg, 16)

    def json(self) -> str:  # type: ignore[override]
        """The canonical config as sorted JSON, as the store keeps it."""
        return json.dumps(self.canonical(), sort_keys=True)
