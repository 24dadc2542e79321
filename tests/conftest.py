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


@pytest.fixture
def tiny_study(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(textwrap.dedent(TINY))
    return p


def write(tmp_path: Path, text: str, name: str = "study.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p
