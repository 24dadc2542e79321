"""The study loop: plan, skip what the store has, cut into chunks, train them somewhere, write each.

This is the one place where training meets the store. An :class:`~ponder.executors.Executor`
trains chunks (here, or on Ray) and hands back records; only :func:`run_study` writes, one
transaction per chunk, so an interrupted study keeps every finished chunk and resumes.
"""

from __future__ import annotations

import json
import math
import os
import platform
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ponder.executors import ChunkResult, Executor, LocalExecutor
from ponder.store import ChunkRows, RunRow, Store
from ponder.study.checks import check_plan
from ponder.study.plan import Run, expand, populations
from ponder.study.spec import Study

if TYPE_CHECKING:
    from ponder.train.chunk import ChunkOutput

__all__ = ["StudyRun", "run_study", "plan_chunks", "chunk_rows", "failed_rows", "KILL_ENV"]

# Test hook (documented in docs/reliability.md): PONDER_TEST_KILL="k:phase" makes the process stop
# itself at the k-th chunk it writes: "before" (SIGKILL after training, before writing), "during"
# (SIGKILL inside the write transaction, before COMMIT), "after" (SIGKILL right after COMMIT) or
# "interrupt" (SIGINT after the write, as Ctrl-C). Crash tests stop at known points, never by sleeping.
KILL_ENV = "PONDER_TEST_KILL"


def environment(device: str, threads: int) -> dict[str, Any]:
    """Versions and machine facts recorded with every run."""
    import numpy
    import torch

    from ponder import __version__

    return {"ponder": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "device": device,
            "threads": threads, "cpus": os.cpu_count()}


@dataclass
class StudyRun:
    """What :func:`run_study` did."""

    total: int
    skipped: int
    trained: int
    failed: int
    populations: int
    wall_s: float
    statuses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # first line of each failure -> runs it failed


def plan_chunks(pending: list[Run], *, budget: int, slots: int = 1) -> tuple[list[list[Run]], int]:
    """Split the pending runs into chunks: populations, cut to the memory budget, and cut further
    so that ``slots`` executors each get work (a population's share of the slots is its share of
    the runs). With one slot, only the memory budget cuts. Returns (chunks, number of populations).
    """
    from ponder.train.chunk import chunk_size  # torch loads only when something is to be trained

    pops = populations(pending)
    chunks = []
    for pop in pops:
        n = len(pop.runs)
        size = min(chunk_size(pop.runs[0].config, budget), math.ceil(n / math.ceil(slots * n / len(pending))))
        chunks += [pop.runs[start:start + size] for start in range(0, n, size)]
    return chunks, len(pops)


def chunk_rows(runs: list[Run], out: ChunkOutput, *, device: str) -> ChunkRows:
    """The store rows of a trained chunk."""
    env = json.dumps(environment(device, out.threads))
    rows = ChunkRows([RunRow(r.id, r.config.json(), rec.status, r.population_key, len(runs), rec.diverged_epoch,
                             steps=rec.steps, wall_s=out.wall_s / len(runs), env_json=env, n_classes=out.n_classes)
                      for r, rec in zip(runs, out.records)], evals=out.evals)
    for r, rec in zip(runs, out.records):
        rows.epochs += [{"run_id": r.id, **e} for e in rec.epochs]
        rows.layers += [{"run_id": r.id, **row} for row in rec.layers]
    return rows


def failed_rows(runs: list[Run], error: str) -> ChunkRows:
    """The store rows of a chunk that failed: every run ``failed`` with the error."""
    return ChunkRows([RunRow(r.id, r.config.json(), "failed", r.population_key, len(runs), error=error) for r in runs])


def _kill_hook(k: int) -> Callable[[str], None]:
    """The test hook for the k-th written chunk (a no-op unless PONDER_TEST_KILL names it)."""
    at, _, phase = os.environ.get(KILL_ENV, "").partition(":")

    def hook(now: str) -> None:
        if at.isdigit() and int(at) == k and phase == now:
            os.kill(os.getpid(), signal.SIGINT if now == "interrupt" else signal.SIGKILL)

    return hook


def _write(store: Store, res: ChunkResult, device: str, errors: dict[str, int], hook: Callable[[str], None]) -> int:
    """Write one chunk's result; returns how many of its runs failed."""
    hook("before")
    if res.error is None:
        store.save_chunk(chunk_rows(res.runs, res.output, device=device), before_commit=lambda: hook("during"))
        hook("after")
        return 0
    store.save_chunk(failed_rows(res.runs, res.error))
    first = res.error.splitlines()[0] if res.error else "unknown error"
    errors[first] = errors.get(first, 0) + len(res.runs)
    return len(res.runs)


class _Meter:
    """Progress in model-epochs: epoch ticks while a chunk trains, exact totals when it is written."""

    def __init__(self, report: Callable[[int, int], None] | None, total: int):
        self.report, self.total, self.done, self.in_chunk = report, total, 0, 0

    def add(self, n: int) -> None:
        self.in_chunk += n
        if self.report is not None:
            self.report(min(self.total, self.done + self.in_chunk), self.total)

    def chunk_done(self, n: int) -> None:
        self.done, self.in_chunk = self.done + n, 0
        if self.report is not None:
            self.report(self.done, self.total)


def run_study(study: Study, store: Store, *, executor: Executor | None = None, device: str = "cpu",
              memory: int | None = None, quick: bool = False, force: bool = False,
              progress: Callable[[int, int], None] | None = None) -> StudyRun:
    """Train every run of ``study`` that ``store`` does not have yet, writing each chunk as it finishes.

    Args:
        executor: Where chunks train (default: a :class:`LocalExecutor` on ``device``; asked for its budget
            before anything else is loaded, when there is something to train, which settles the local one's
            device and threads). Only this function writes the store, whatever the executor.
        device: The local executor's device when ``executor`` is None.
        memory: Memory budget in bytes for one chunk (default: the executor's).
        progress: Called with (model-epochs trained so far, model-epochs pending in total): after every
            epoch of a chunk when the executor reports epochs (the local one does), else after each chunk.
    """
    t0 = time.perf_counter()
    executor = executor or LocalExecutor(device)
    runs = expand(study)
    done = store.finished([r.id for r in runs])
    pending = [r for r in runs if r.id not in done]
    budget = executor.budget() if pending else 0  # first: the local executor settles its device and threads here
    if pending:  # a plan whose every run is stored was checked when they trained; its data need not be loaded
        check_plan(study, runs, force=force)
    store.save_plan(name=study.name, question=study.question, spec=study.model_dump() | {"directions": study.directions, "bounds": study.bounds},
                    source=study.source, quick=quick, runs=runs)
    chunks, n_pops = plan_chunks(pending, budget=memory if memory is not None else budget,
                                 slots=executor.slots) if pending else ([], 0)
    failed = 0
    errors: dict[str, int] = {}
    meter = _Meter(progress, sum(r.config.training.epochs for r in pending))
    if hasattr(executor, "on_epoch"):
        executor.on_epoch = meter.add
    for k, res in enumerate(executor.train(chunks), 1):
        hook = _kill_hook(k)
        failed += _write(store, res, executor.device, errors, hook)
        hook("interrupt")
        meter.chunk_done(sum(r.config.training.epochs for r in res.runs))
    statuses = store.status_counts(study.name)
    return StudyRun(len(runs), len(runs) - len(pending), len(pending) - failed, failed, n_pops,
                    time.perf_counter() - t0, statuses, errors)
