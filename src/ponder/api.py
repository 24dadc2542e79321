"""The Python API, mirroring the CLI: load a study, run it into a store, read its results, report it.

Each function opens the store for the call and closes it before returning, so a notebook never
holds the DuckDB file's lock between cells. (The report writer is the ``ponder.reporting``
package, so ``ponder.report`` is this module's function and nothing else.)
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pandas as pd

from ponder.analysis import analyze
from ponder.analysis.summary import load_context
from ponder.errors import PonderError
from ponder.export.frames import analysis_tables, json_columns
from ponder.reporting import write_report
from ponder.store import Store
from ponder.study.spec import Study, load_study as _load
from ponder.study.stored import check_stored

if TYPE_CHECKING:
    from ponder.runner import StudyRun

__all__ = ["load_study", "run", "results", "report", "Report"]

_JSON_COLS = ["arm_json", "tuned_json", "config_json", "env_json"]


def load_study(path_or_name: str | Path, *, quick: bool = False, seeds: int | None = None) -> Study:
    """Load and validate a study (built-in name or ``.toml`` path)."""
    if not isinstance(path_or_name, (str, Path)):
        raise PonderError(f"load_study takes a built-in study's name or a .toml path (got {type(path_or_name).__name__}"
                          f"{'; a Study is loaded already: pass it to run, report or results' if isinstance(path_or_name, Study) else ''})")
    return _load(path_or_name, quick=quick, seeds=seeds)


def run(study: Study | str | Path, *, store: str | Path = "ponder.duckdb", device: str = "auto",
        quick: bool = False, memory: int | None = None, force: bool = False, executor: str = "local",
        address: str | None = None, progress: bool = True) -> "StudyRun":
    """Train every run of ``study`` missing from ``store``.

    Args:
        study: A loaded study, a built-in study's name or a ``.toml`` path.
        store: The DuckDB results file (made if missing).
        device: ``auto`` (CUDA when this machine has a GPU, as on the CLI), ``cpu`` or ``cuda``.
        quick: Apply the study's ``[quick]`` overrides (when ``study`` is a name or path).
        memory: Memory budget in bytes for one chunk (default: the executor's).
        force: Run a plan that the pre-flight checks refuse.
        executor: ``local`` (this process) or ``ray`` (one Ray task per chunk; needs ``ponder[ray]``).
        address: With ``executor="ray"``: the cluster (``auto``, ``HOST:PORT``, ``ray://HOST:10001``);
            None starts a local Ray instance, or uses the one this process already started.
        progress: Show model-epochs trained out of those pending, as training goes, on stderr: a bar in a
            terminal (rich), in Jupyter a ``tqdm.auto`` bar (a line per update when tqdm is not
            installed), otherwise a line per update. False: silent.

    Returns:
        What was trained, skipped and failed, and how long it took.
    """
    from ponder.executors import open_executor
    from ponder.runner import run_study

    for flag, value in (("quick", quick), ("force", force), ("progress", progress)):
        if not isinstance(value, bool):
            raise PonderError(f"{flag} is True or False (got {value!r})")
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, int) or memory < 1):
        raise PonderError(f"memory is a budget in bytes, a positive whole number, e.g. 4 * 2**30 for 4 GiB (got {memory!r})")
    spec = study if isinstance(study, Study) else load_study(study, quick=quick)
    if isinstance(study, Study):
        quick = _mode(study, quick)
    bar = _progress_bar() if progress else None
    try:
        with open_executor(executor, device=device, address=address) as ex, Store(store) as st:
            return run_study(spec, st, quick=quick, memory=memory, force=force, executor=ex,
                             progress=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()


def results(study: Study | str | Path, *, store: str | Path = "ponder.duckdb", chosen: bool = False) -> pd.DataFrame:
    """The study's runs as a table: one row per run of its plan.

    Columns: ``run_id``, ``arm``, ``seed``, ``status`` (``ok``, ``diverged``, ``failed`` or ``pending``),
    ``diverged_epoch``, ``error``, ``population``, ``steps``, ``n_classes``; the last epoch's
    ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``test_loss``, ``test_acc``; each factor
    level and tuned value (named without its section, ``initializer``, ``lr``, when those names
    are unique, else by the full key); the run's resolved config as ``config.dataset.name``,
    ``config.model.depth``, ...; and the environment it trained in as ``env.torch``, ``env.threads``, ...

    Time: the runs of a population train together, as one model, so a run has no time of its own.
    ``wall_s`` is the run's share: the wall time of the chunk it trained in divided by the chunk's
    runs (summing ``wall_s`` over runs gives the total training time). ``population_wall_s`` is the
    time its whole population took: the sum of ``wall_s`` over the study's runs in that population
    (the same on every row of a population; do not sum it).

    Args:
        study: A loaded study, its name in the store, or its ``.toml`` path.
        store: The DuckDB results file (opened read only).
        chosen: Keep only the runs at each arm's chosen (tuned) setting, the runs the analysis's
            answer is computed from (the selection :func:`report` uses); the study must have
            finished runs.

    Raises:
        NotFound: The store or the study in it does not exist.
        PonderError: ``chosen`` and no run of the study has finished.
    """
    name = _name(study)
    with Store(store, read_only=True) as st:
        runs, epochs = st.runs(name), st.epochs(name)
        keep = set(load_context(st, name).chosen["run_id"]) if chosen else None
    runs.insert(runs.columns.get_loc("wall_s") + 1, "population_wall_s",
                runs.groupby("population")["wall_s"].transform("sum"))
    if keep is not None:
        runs = runs[runs["run_id"].isin(keep)]
    last = epochs.sort_values("epoch").groupby("run_id").tail(1).drop(columns="epoch")
    df = runs.merge(last, on="run_id", how="left")
    levels = pd.DataFrame([json.loads(a) | json.loads(t) for a, t in zip(df["arm_json"], df["tuned_json"])],
                          index=df.index)
    short = [c.split(".", 1)[-1] for c in levels.columns]
    if len(set(short)) == len(short) and not set(short) & set(df.columns):
        levels.columns = short
    return pd.concat([df.drop(columns=[c for c in _JSON_COLS if c in df]), levels,
                      json_columns(df["config_json"], "config"), json_columns(df["env_json"], "env")], axis=1)


@dataclass(frozen=True, eq=False, repr=False)
class Report:
    """A study's analysis, as :func:`report` returns it.

    Attributes:
        study: The study's name.
        analysis: The analysis as a JSON-able dict (what ``ponder report --format json`` prints):
            ``headline``, ``answer``, ``factors``, ``interactions``, ``trends``, ``arms``, ``warnings``, ...
        arms: One row per arm, best rank first: factor levels and tuned values as columns, the
            test metric with its 95% CI (``ci_lo``, ``ci_hi``), runs, diverged, did_not_train.
        factors: One row per factor: verdict, best and avoided levels, p, effect with its CI.
        interactions: One row per pair of factors: test, p, verdict, kind.
        comparisons: One row per arm against the reference arm: mean difference over seeds with its
            CI, paired t and Wilcoxon p values, Holm-adjusted p, Cohen's dz.
        figures: The PNG and SVG files in the study's report folder; empty when nothing was written.
        path: The study's ``index.html``; None when nothing was written.
    """

    study: str
    analysis: dict[str, Any]
    arms: pd.DataFrame
    factors: pd.DataFrame
    interactions: pd.DataFrame
    comparisons: pd.DataFrame
    figures: list[Path] = field(default_factory=list)
    path: Path | None = None

    @property
    def headline(self) -> str:
        """The answer in two sentences."""
        return self.analysis["headline"]

    @property
    def answer(self) -> str:
        """The full answer: the setting, the best arm, the verdict on each factor."""
        return self.analysis["answer"]

    @property
    def warnings(self) -> list[str]:
        """What limits the answer (too few seeds, tuning at the edge of its grid, ...)."""
        return list(self.analysis["warnings"])

    def __repr__(self) -> str:
        return f"Report({self.study!r}, headline={self.headline!r}, path={str(self.path) if self.path else None!r})"

    def _repr_markdown_(self) -> str:  # Jupyter shows the headline and answer, not the object
        from ponder.escape import md

        return f"**{md(self.study)}**: {md(self.headline)}\n\n{md(self.answer)}"


def report(study: Study | str | Path, *, store: str | Path = "ponder.duckdb", out: str | Path = "reports",
            force: bool = False, write: bool = True) -> Report:
    """Analyze a study from the store and, by default, write its report folder (``ponder report``).

    Args:
        study: A loaded study, its name in the store, or its ``.toml`` path.
        store: The DuckDB results file. Opened writable when ``write`` (the analysis is then kept in
            the store, as ``ponder report`` does), else read only.
        out: The top-level reports folder: the study's report goes to ``out/<study>/`` and is listed
            in ``out/index.html``.
        force: Write into a study folder, or an ``out`` with an ``index.html``, that ponder did not
            create; their other files are left alone.
        write: Write the report folder (index.html, PNG/SVG figures, summary.md, table.tex,
            analysis.json). False: only analyze; ``figures`` is empty and ``path`` is None.

    Returns:
        The :class:`Report`: ``headline``, ``answer``, the analysis dict and its tables as DataFrames.

    Raises:
        NotFound: The store or the study in it does not exist.
        PonderError: No run of the study has finished, a report folder is not ponder's (without ``force``),
            or ``study`` (a Study or a ``.toml`` path) differs from the version the store keeps (run it first).
    """
    name = _name(study)
    read_only = not write or (str(store) != ":memory:" and not Path(store).exists())  # a missing store: NotFound
    with Store(store, read_only=read_only) as st:
        if isinstance(study, Study) or str(study).endswith(".toml"):  # the version the store keeps, or refused
            check_stored(study if isinstance(study, Study) else str(study), st.study(name), store=str(st.path))
        an = analyze(st, name)
        path = write_report(st, name, out, force=force, analysis=an) if write else None
    payload = an.to_json()
    figures = sorted(p for p in path.parent.iterdir() if p.suffix in (".png", ".svg")) if path else []
    return Report(name, payload, **analysis_tables(payload, an.comparisons), figures=figures, path=path)





def _mode(study: Study, quick: bool) -> bool:
    """Whether a Study object is its file's ``[quick]`` version, read back from the file: the stored plan is labelled
    by it (``quick`` only decides where the file cannot, e.g. a study with no ``[quick]`` table)."""
    source = study.source if Path(study.source).is_file() else study.source.removesuffix(".toml")  # a built-in: by name
    try:
        as_quick, as_full = (_load(source, quick=q) == study for q in (True, False))
    except PonderError:  # no file behind it (built in code): the caller's word
        return quick
    if as_quick == as_full:
        return quick
    if quick and as_full:
        raise PonderError(f"quick=True, but this study was loaded without its [quick] overrides; load it with "
                          f"ponder.load_study({study.source!r}, quick=True), or pass its name or path with quick=True")
    return as_quick


def _name(study: Study | str | Path) -> str:
    """A study's name in the store: a Study's name, the name written in a ``.toml`` file, or the text itself."""
    if isinstance(study, Study):
        return study.name
    text = str(study)
    return load_study(text).name if text.endswith(".toml") else text


# -- progress ------------------------------------------------------------------------------------


def _in_jupyter() -> bool:
    """True inside a running Jupyter kernel (ipykernel imported and IPython's shell has a kernel)."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class _Lines:
    """A line per update on stderr (Jupyter without tqdm; stderr not a terminal)."""

    def update(self, done: int, total: int) -> None:
        print(f"ponder: {done}/{total} model-epochs trained", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class _Tqdm:
    """A ``tqdm.auto`` bar (a widget in Jupyter), made on the first update, when the total is known."""

    def __init__(self, tqdm: Callable[..., Any]):
        self.tqdm, self.bar = tqdm, None

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = self.tqdm(total=total, unit="model-epoch", desc="ponder")
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Rich:
    """A rich progress bar on stderr, started on the first update."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("ponder"), BarColumn(), MofNCompleteColumn(), TextColumn("model-epochs"),
                                 TimeRemainingColumn(), console=Console(stderr=True))
        self.task = None

    def update(self, done: int, total: int) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("train", total=total)
        self.progress.update(self.task, completed=done)

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()


def _progress_bar() -> _Lines | _Tqdm | _Rich:
    """The progress display for where this process runs: Jupyter, a terminal, or neither."""
    if _in_jupyter():
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return _Lines()
        return _Tqdm(tqdm)
    return _Rich() if sys.stderr.isatty() else _Lines()
