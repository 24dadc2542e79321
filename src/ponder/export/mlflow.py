"""A study's runs as MLflow runs in a local MLflow file store (``ponder export --format mlflow``).

One MLflow experiment named after the study; one MLflow run per trained ponder run, with

- params: the run's resolved config, flattened (``model.depth``, ``training.lr``, ``dataset.name``);
- metrics: every column of the store's ``epochs`` table (``train_loss``, ``train_acc``, ``val_loss``,
  ``val_acc``, ``test_loss``, ``test_acc``) at every recorded epoch (MLflow step = epoch); a
  non-finite value (a diverged run's loss) is left out;
- tags: ``ponder.study``, ``ponder.arm``, ``ponder.seed``, ``ponder.run_id``, ``ponder.status`` (ok,
  diverged or failed; MLflow's own status is FINISHED, or FAILED for a failed run), ``ponder.version``
  (the ponder that trained the run), ``ponder.population``, ``ponder.steps``, ``ponder.wall_s``,
  ``ponder.error`` for a failed run, and the training environment as ``env.torch``, ``env.device``, ...

Runs still pending (planned, never trained) have nothing to export and are counted as skipped.
Writing goes through :class:`mlflow.tracking.MlflowClient` with a ``file:`` tracking URI, no
server, one ``log_batch`` call per run in the usual case. Open the store with
``mlflow ui --backend-store-uri DIR``; MLflow 3.13 and later keep their file store behind
``MLFLOW_ALLOW_FILE_STORE=true`` (which this module sets while it writes).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from ponder.errors import PonderError
from ponder.export.frames import flatten
from ponder.store import Store

__all__ = ["export_mlflow", "MlflowExport", "check_target", "METRIC_COLS", "STATUS", "ALLOW_FILE_STORE",
           "ui_command", "param_text"]

METRIC_COLS = ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc")
STATUS = {"ok": "FINISHED", "diverged": "FINISHED", "failed": "FAILED"}  # ponder status -> MLflow run status
ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"  # MLflow >= 3.13 refuses its file store without it
_VALUE_MAX = 6000  # MLflow's limit on a param value (MAX_PARAM_VAL_LENGTH); tags allow more
_ERROR_MAX = 4000  # a failed run's error, cut to stay well under MLflow's tag limit
_BATCH, _BATCH_PARAMS_TAGS = 1000, 100  # MLflow's log_batch limits: entities in all, params and tags each


@dataclass(frozen=True)
class MlflowExport:
    """What :func:`export_mlflow` wrote."""

    uri: str  # the MLflow tracking URI of the store (file:///...)
    experiment_id: str
    runs: int  # MLflow runs written: the study's trained runs
    skipped: int  # runs of the study's plan not trained yet (pending): nothing to export
    replaced: int  # runs of an earlier export of this study deleted first (force)


def check_target(folder: str | Path, *, force: bool) -> None:
    """``folder`` is a folder, or can be made one, and is empty unless ``force``.

    Raises:
        PonderError: ``folder`` is a file, or holds files and ``force`` is false.
    """
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise PonderError(f"--out {str(folder)!r} is a file; give a folder for the MLflow store")
    if not force and path.is_dir() and any(path.iterdir()):
        raise PonderError(f"--out {str(folder)!r} is not empty; pass --force to add the study to it (replacing "
                          "its earlier export there), or choose a new folder")


def ui_command(folder: str | Path) -> str:
    """The shell command that opens the store in MLflow's web UI."""
    import shlex

    return f"{ALLOW_FILE_STORE}=true mlflow ui --backend-store-uri {shlex.quote(str(folder))}"


def param_text(value: Any) -> str:
    """A config value as an MLflow param (text): strings as they are, everything else as JSON."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:_VALUE_MAX]


def export_mlflow(store: Store, study: str, folder: str | Path, *, force: bool = False) -> MlflowExport:
    """Write every trained run of ``study`` into an MLflow file store at ``folder``.

    Args:
        store: The results store (read only is enough).
        study: The study's name in the store.
        folder: The MLflow store's folder (made if missing); ``mlflow ui --backend-store-uri folder`` opens it.
        force: Write into a non-empty ``folder``; runs of an earlier export of this study there are
            deleted first (MLflow keeps deleted runs in its trash until ``mlflow gc``).

    Returns:
        The store's URI, the experiment's id and how many runs were written, skipped and replaced.

    Raises:
        PonderError: ``folder`` is not empty (without ``force``) or is a file, or mlflow is not installed.
        NotFound: The study is not in the store.
    """
    check_target(folder, force=force)
    client_type, entities = _mlflow()
    info = store.study(study)
    runs, epochs = store.runs(study), store.epochs(study)
    trained = runs[runs["status"] != "pending"]
    curves = {run_id: df for run_id, df in epochs.groupby("run_id")}
    uri = Path(folder).absolute().as_uri()  # MLflow makes the folder, with its Default experiment, as `mlflow ui` does
    with _file_store():
        client = client_type(tracking_uri=uri)
        experiment_id, replaced = _experiment(client, study, info["question"])
        for row in trained.assign(study=study).to_dict("records"):
            _log_run(client, entities, experiment_id, row, curves.get(row["run_id"]))
    return MlflowExport(uri, experiment_id, len(trained), len(runs) - len(trained), replaced)


def _mlflow() -> tuple[type, tuple[type, type, type]]:
    """MlflowClient and the Metric, Param, RunTag entities; one sentence when mlflow is missing."""
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise PonderError("MLflow export needs the mlflow package, which is not installed: "
                          "pip install 'ponder[mlflow]'") from None
    return MlflowClient, (Metric, Param, RunTag)


@contextmanager
def _file_store() -> Iterator[None]:
    """Let MLflow open its file store (it asks for an opt-in since 3.13) and keep its deprecation notice quiet."""
    before = os.environ.get(ALLOW_FILE_STORE)
    os.environ[ALLOW_FILE_STORE] = "true"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"mlflow\..*")
            yield
    finally:
        if before is None:
            os.environ.pop(ALLOW_FILE_STORE, None)
        else:
            os.environ[ALLOW_FILE_STORE] = before


def _experiment(client: Any, study: str, question: str) -> tuple[str, int]:
    """The study's experiment (made, or restored if deleted); earlier ponder runs of the study in it are deleted."""
    from ponder import __version__

    exp = client.get_experiment_by_name(study)
    if exp is None:
        tags = {"ponder.study": study, "ponder.question": question, "mlflow.note.content": question,
                "ponder.exported_by": __version__}
        return client.create_experiment(study, tags=tags), 0
    if exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    old, token = [], None
    while True:
        page = client.search_runs([exp.experiment_id], max_results=1000, page_token=token)
        old += [r.info.run_id for r in page if r.data.tags.get("ponder.study") == study]
        token = page.token
        if not token:
            break
    for run_id in old:
        client.delete_run(run_id)
    return exp.experiment_id, len(old)


def _key(name: str) -> str:
    """An MLflow key: letters, digits, ``_ - . space`` only (MLflow refuses others; ``/`` would make folders)."""
    return re.sub(r"[^\w.\- ]", "_", name)[:250]


def _tags(row: dict[str, Any], env: dict[str, Any]) -> dict[str, str]:
    from ponder import __version__

    tags = {"ponder.study": row["study"], "ponder.arm": row["arm"], "ponder.seed": str(row["seed"]),
            "ponder.run_id": row["run_id"], "ponder.status": row["status"],
            "ponder.version": str(env.get("ponder", __version__))}
    for key, kind in (("population", str), ("steps", int), ("wall_s", float)):
        if pd.notna(row.get(key)):
            tags[f"ponder.{key}"] = str(kind(row[key]))
    if isinstance(row.get("error"), str):
        tags["ponder.error"] = row["error"][:_ERROR_MAX]
    if pd.notna(row.get("diverged_epoch")):
        tags["ponder.diverged_epoch"] = str(int(row["diverged_epoch"]))
    tags.update({_key(k): param_text(v) for k, v in flatten(env, "env.").items()})
    return tags


def _metrics(metric_type: type, curve: pd.DataFrame | None, stamp: int) -> list:
    if curve is None:
        return []
    cols = [c for c in curve.columns if c not in ("run_id", "epoch")]  # METRIC_COLS, and any the store adds later
    out = []
    for rec in curve.to_dict("records"):
        for col in cols:
            value = rec.get(col)
            if isinstance(value, numbers.Real) and math.isfinite(value):
                out.append(metric_type(col, float(value), stamp, int(rec["epoch"])))
    return out


def _batches(metrics: list, params: list, tags: list) -> Iterator[tuple[list, list, list]]:
    """Split one run's records into log_batch calls within MLflow's limits (one call for a usual run)."""
    while metrics or params or tags:
        p, params = params[:_BATCH_PARAMS_TAGS], params[_BATCH_PARAMS_TAGS:]
        t, tags = tags[:_BATCH_PARAMS_TAGS], tags[_BATCH_PARAMS_TAGS:]
        room = _BATCH - len(p) - len(t)
        m, metrics = metrics[:room], metrics[room:]
        yield m, p, t


def _log_run(client: Any, entities: tuple[type, type, type], experiment_id: str, row: dict[str, Any],
             curve: pd.DataFrame | None) -> None:
    """One ponder run as one MLflow run: create, one log_batch (more only past MLflow's limits), terminate."""
    metric_type, param_type, tag_type = entities
    config = json.loads(row["config_json"]) if isinstance(row.get("config_json"), str) else {}
    env = json.loads(row["env_json"]) if isinstance(row.get("env_json"), str) else {}
    tuned = " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in json.loads(row["tuned_json"]).items())
    name = " ".join(part for part in (row["arm"], tuned, f"seed={row['seed']}") if part)
    run = client.create_run(experiment_id, run_name=name[:250])
    run_id = run.info.run_id
    params = [param_type(_key(k), param_text(v)) for k, v in flatten(config).items()]
    tags = [tag_type(k, v) for k, v in _tags(row, env).items()]
    metrics = _metrics(metric_type, curve, int(time.time() * 1000))
    for m, p, t in _batches(metrics, params, tags):
        client.log_batch(run_id, metrics=m, params=p, tags=t)
    client.set_terminated(run_id, STATUS.get(row["status"], "FINISHED"))
