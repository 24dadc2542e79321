"""Shared fixtures: tiny studies that train in seconds."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

TINY = """
name = "tiny"
question = "Does the initializer matter on a tiny spiral task?"
seeds = 3

[dataset]
name = "spirals"
options = {n_train = 300, n_test = 200}
val_fraction = 0.2

[model]
arch = "mlp"
depth = 2
width = 16
activation = "tanh"

[training]
optimizer = "sgd"
epochs = 3
batch_size = 32

[factors]
"model.initializer" = ["torch.default", "torch.kaiming_normal"]

[tune]
"training.lr" = [0.05, 0.2]
"""


@pytest.fixture(scope="session", autouse=True)
def _own_disk_cache(tmp_path_factory):
    """The suite's generated datasets and mean-field grids go to a cache of its own (subprocesses inherit it), never
    into the user's ~/.cache/ponder."""
    import os

    old = os.environ.get("PONDER_CACHE")
    os.environ["PONDER_CACHE"] = str(tmp_path_factory.mktemp("ponder-cache"))
    yield
    if old is None:
        os.environ.pop("PONDER_CACHE", None)
    else:
        os.environ["PONDER_CACHE"] = old


@pytest.fixture
def tiny_study(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(textwrap.dedent(TINY))
    return p


def write(tmp_path: Path, text: str, name: str = "study.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


# -- builders shared by the suite -----------------------------------------------------------------

BASE_STUDY = {
    "name": "tiny",
    "question": "Does the initializer matter on a tiny spiral task?",
    "seeds": 3,
    "dataset": {"name": "spirals", "options": {"n_train": 300, "n_test": 200}, "val_fraction": 0.2},
    "model": {"arch": "mlp", "depth": 2, "width": 16, "activation": "tanh"},
    "training": {"optimizer": "sgd", "epochs": 3, "batch_size": 32},
    "factors": {"model.initializer": ["torch.default", "torch.kaiming_normal"]},
    "tune": {"training.lr": [0.05, 0.2]},
}


def study_dict(**overrides) -> dict:
    """BASE_STUDY with overrides: ``seeds=5``, ``factors={...}`` (replaces the table), ``model__depth=4``
    (one key of a section). A value of None removes the key."""
    import copy

    out = copy.deepcopy(BASE_STUDY)
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        node, last = (out.setdefault(section, {}), field) if field else (out, section)
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return out


@pytest.fixture
def make_study(tmp_path: Path):
    """``make_study(**overrides) -> Path`` of a TOML study file built from :func:`study_dict`."""
    import tomli_w

    def make(name: str = "study.toml", **overrides) -> Path:
        p = tmp_path / name
        p.write_bytes(tomli_w.dumps(study_dict(**overrides)).encode())
        return p

    return make


@pytest.fixture
def synthetic_store(tmp_path: Path):
    """``synthetic_store(study, value) -> Store`` with made-up records: ``value(levels, tuned, seed)`` returns
    (validation accuracy, test accuracy, training accuracy); test None marks a diverged run. No training."""
    from ponder.store import ChunkRows, RunRow, Store
    from ponder.study import expand

    def fill(study, value, n_classes: int = 2) -> Store:
        store = Store(tmp_path / f"{study.name}.duckdb")
        runs = expand(study)
        store.save_plan(name=study.name, question=study.question, spec=study.model_dump(), source="x", quick=False,
                        runs=runs)
        rows = ChunkRows([])
        for r in runs:
            val, test, train = value(r.arm.as_dict(), dict(r.tuned), r.seed)
            rows.runs.append(RunRow(r.id, r.config.json(), "diverged" if test is None else "ok", "p", 1,
                                    1 if test is None else None, n_classes=n_classes))
            test = 1.0 / n_classes if test is None else test
            for epoch, (v, t, tr) in enumerate([(1.0 / n_classes,) * 3, (val, test, train)]):
                rows.epochs.append({"run_id": r.id, "epoch": 3 * epoch, "train_loss": 1.0, "train_acc": tr, "val_loss": 1.0,
                                    "val_acc": v, "test_loss": 1.0, "test_acc": t})
        store.save_chunk(rows)
        return store

    return fill


def ponder_cli(*args: str, cwd: Path | None = None, timeout: int = 600):
    """Run ``python -m ponder ARGS`` in a subprocess (generous timeout: machines here are shared and slow)."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "ponder", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


@pytest.fixture
def cli():
    """The ``ponder`` command in a subprocess: ``cli("run", "x.toml", ...)`` -> CompletedProcess."""
    return ponder_cli


@pytest.fixture
def make_spec():
    """``make_spec(**overrides) -> Study``, validated, from :func:`study_dict` (no file)."""
    from ponder.study.spec import parse_study

    return lambda **overrides: parse_study(study_dict(**overrides))


@pytest.fixture
def own_registry(monkeypatch):
    """Entries a test registers (itself or through plugin files) are gone after it, so the catalog's
    tests, which pin the built-in entries, never see them whatever the test order."""
    from ponder import registry

    registry.names("model")  # the built-ins, loaded before the copy
    monkeypatch.setattr(registry, "_REGISTRY", {kind: dict(table) for kind, table in registry._REGISTRY.items()})


BUMPED_LOSSES = ("cross_entropy", "squared_error_softmax")  # version 2: softmax over a classes-first copy (0.1 had 1)


@pytest.fixture
def losses_as_in_0_1(monkeypatch):
    """The loss entries at the versions ponder 0.1 wrote its stores with: every other part of a run id is unchanged
    since, so the fixtures' ids come back exactly (the bump itself is tested beside). Yields the names."""
    import dataclasses

    from ponder import registry

    table = registry._REGISTRY["loss"]
    for name in BUMPED_LOSSES:
        monkeypatch.setitem(table, name, dataclasses.replace(registry.get("loss", name), version="1"))
    return BUMPED_LOSSES
