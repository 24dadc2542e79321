"""Executors: where populations are trained.

``local`` trains in this process; ``ray`` sends each chunk to a Ray cluster as a task
(:mod:`ponder.executors.ray_executor`, needs the ``ray`` extra). Both hand records back to
:func:`ponder.runner.run_study`, the only writer of the store. An executor settles its device
when it is built.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from ponder.errors import PonderError
from ponder.executors.local import ChunkResult, Executor, LocalExecutor, resolve_device

__all__ = ["EXECUTORS", "ChunkResult", "Executor", "LocalExecutor", "open_executor", "resolve_device"]

EXECUTORS = ("local", "ray")


@contextmanager
def open_executor(name: str, *, device: str = "cpu", address: str | None = None, cpus_per_task: float | None = None,
                  gpus_per_task: float | None = None, max_retries: int | None = None,
                  threads: int | None = None) -> Iterator[Executor]:
    """The executor called ``name``, ready to train; a Ray instance it started is shut down on exit.

    Args:
        name: ``local`` or ``ray``.
        device: ``cpu``, ``cuda`` or ``auto`` (CUDA where this machine, or the Ray cluster, has a GPU).
        address: Ray only: the cluster to connect to (``auto``, ``HOST:PORT``, ``ray://HOST:10001``);
            None starts a local Ray instance.
        cpus_per_task: Ray only: CPUs per task, also its torch threads (default 1).
        gpus_per_task: Ray only: GPUs per task (default 1 with ``--device cuda``, else 0).
        max_retries: Ray only: how often a failed or killed task is tried again (default 2).
        threads: Local only: torch's intra-op threads, set when training starts (None: left as they are).

    Raises:
        PonderError: an unknown name, a Ray option given to the local executor, Ray missing, or a
            cluster that cannot be reached.
    """
    if name not in EXECUTORS:
        from ponder.registry import unknown

        raise PonderError(unknown("executor", name, list(EXECUTORS)))
    ray_only = {"--address": address, "--cpus-per-task": cpus_per_task, "--gpus-per-task": gpus_per_task,
                "--retries": max_retries}
    if name == "local":
        given = [k for k, v in ray_only.items() if v is not None]
        if given:
            raise PonderError(f"{given[0]} is an option of the Ray executor; add --executor ray or drop {given[0]}")
        yield LocalExecutor(device, threads=threads)
        return
    from ponder.executors.ray_executor import ray_executor

    with ray_executor(device=device, address=address, cpus_per_task=cpus_per_task, gpus_per_task=gpus_per_task,
                      max_retries=max_retries) as ex:
        yield ex
