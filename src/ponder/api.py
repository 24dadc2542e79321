"""The Python API, mirroring the CLI: load a study, run it into a store, read its results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ponder.store import Store
from ponder.study.spec import Study, load_study as _load

if TYPE_CHECKING:
    from ponder.runner import StudyRun

__all__ = ["load_study", "run", "results"]


def load_study(path_or_name: str | Path, *, quick: bool = False, seeds: int | None = None) -> Study:
    """Load and validate a study (built-in name or ``.toml`` path)."""
    return _load(path_or_name, quick=quick, seeds=seeds)


def run(study: Study | str | Path, *, store: str | Path = "ponder.duckdb", device: str = "cpu",
        quick: bool = False, memory: int | None = None, force: bool = False, executor: str = "local",
        address: str | None = None) -> "StudyRun":
    """Train every run of ``study`` missing from ``store``.

    Args:
        executor: ``local`` (this process) or ``ray`` (one Ray task per chunk; needs ``ponder[ray]``).
        address: With ``executor="ray"``: the cluster (``auto``, ``HOST:PORT``, ``ray://HOST:10001``);
            None starts a local Ray instance, or uses the one this process already started.
    """
    from ponder.executors import open_executor
    from ponder.runner import run_study

    spec = study if isinstance(study, Study) else load_study(study, quick=quick)
    with open_executor(executor, device=device, address=address) as ex, Store(store) as st:
        return run_study(spec, st, quick=quick, memory=memory, force=force, executor=ex)


def results(study: Study | str, *, store: str | Path = "ponder.duckdb") -> pd.DataFrame:
    """One row per run of the study's plan: arm, factor levels, tuned values, seed, status and final metrics."""
    name = study.name if isinstance(study, Study) else str(study)
    with Store(store, read_only=True) as st:
        runs = st.runs(name)
        epochs = st.epochs(name)
    last = epochs.sort_values("epoch").groupby("run_id").tail(1).drop(columns="epoch")
    df = runs.merge(last, on="run_id", how="left")
    levels = pd.DataFrame([json.loads(a) | json.loads(t) for a, t in zip(df["arm_json"], df["tuned_json"])], index=df.index)
    short = [c.split(".", 1)[-1] for c in levels.columns]
    if len(set(short)) == len(short) and not set(short) & set(df.columns):
        levels.columns = short
    return pd.concat([df.drop(columns=["arm_json", "tuned_json", "config_json", "env_json"]), levels], axis=1)
