"""The Ray executor: each chunk of a population is a Ray task; rows stream back to the driver.

The driver (the process running :func:`ponder.runner.run_study`) plans, skips finished runs
and alone writes the store; a task only calls the pure :func:`train_chunk` on the runs it is
given. Runs carry their resolved config, and datasets are deterministic generators or files,
so a task rebuilds its data from the config and nothing large is shipped. A task that raises
or whose worker dies is tried again up to ``max_retries`` times (Ray's own task retries); after
that its runs are recorded as ``failed`` with the error and the study goes on. Ray is imported
only here, and only when this executor is asked for (``pip install 'ponder[ray]'``).
"""

from __future__ import annotations

import logging
import math
import os
import socket
from contextlib import contextmanager
from typing import Any, Iterator

from ponder.errors import PonderError
from ponder.executors.local import ChunkResult, one_line_error
from ponder.study.plan import Run
from ponder.train.chunk import memory_budget, train_chunk

__all__ = ["RayExecutor", "ray_executor"]

DEFAULT_RETRIES = 2  # a killed worker or a flaky node is retried twice; a chunk that fails 3 times is recorded


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise PonderError("the Ray executor needs Ray, which is not installed here; "
                          "pip install 'ponder[ray]' (or run with --executor local)") from None
    return ray


@contextmanager
def ray_executor(*, device: str = "cpu", address: str | None = None, cpus_per_task: float | None = None,
                 gpus_per_task: float | None = None, max_retries: int | None = None) -> Iterator["RayExecutor"]:
    """Connect to Ray (or start a local instance) and yield a :class:`RayExecutor`.

    Args:
        device: ``cpu``, ``cuda`` or ``auto`` (``cuda`` when the cluster has GPUs), settled here.
        address: A running cluster (``auto``, ``HOST:PORT`` or ``ray://HOST:10001``). None starts a
            local instance with this machine's CPUs, shut down on exit. If this process already
            called ``ray.init``, that connection is used and left open.
        cpus_per_task: CPUs reserved per task, also its torch thread count (default 1).
        gpus_per_task: GPUs reserved per task (default: 1 with ``--device cuda``, else 0).
        max_retries: Times a failed or killed task is tried again (default 2).

    Raises:
        PonderError: Ray is missing, an option is out of range, or the cluster cannot be reached.
    """
    ray = _import_ray()
    cpus = 1.0 if cpus_per_task is None else cpus_per_task
    retries = DEFAULT_RETRIES if max_retries is None else max_retries
    if cpus <= 0:
        raise PonderError(f"--cpus-per-task must be more than 0, got {cpus_per_task}")
    if gpus_per_task is not None and gpus_per_task < 0:
        raise PonderError(f"--gpus-per-task must be 0 or more, got {gpus_per_task}")
    if retries < 0:
        raise PonderError(f"--retries must be 0 or more, got {max_retries}")
    started = _connect(ray, address)
    try:
        yield RayExecutor(ray, device=device, cpus_per_task=cpus, gpus_per_task=gpus_per_task, max_retries=retries,
                          local=address is None)
    finally:
        if started:  # never shut down a cluster we only connected to
            ray.shutdown()


def _connect(ray: Any, address: str | None) -> bool:
    """ray.init for ``address``; True if this call started the instance (and so must stop it)."""
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is None:
        ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False, **quiet)
        return True
    _check_reachable(address)
    try:
        ray.init(address=address, **quiet)
    except Exception as exc:  # noqa: BLE001  (Ray raises ConnectionError, ValueError or RuntimeError here)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PonderError(f"cannot connect to the Ray cluster at --address {address!r}: {first}") from None
    return False


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Refuse an unreachable HOST:PORT at once; ``ray.init`` itself retries for minutes."""
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise PonderError(f"cannot reach a Ray cluster at --address {address!r} ({exc.strerror or exc}); "
                          "start one (ray start --head, ray up, KubeRay) or check the head node's host and port") from None


def _train_task(runs: list[Run], device: str, threads: int) -> Any:
    """The body of one Ray task: train a chunk in a worker. A PonderError comes back as a value, so
    that Ray does not retry a mistake that would only happen again."""
    import torch

    torch.set_num_threads(threads)
    try:
        return train_chunk(runs, device=device)
    except PonderError as exc:
        return exc


class RayExecutor:
    """Trains chunks as Ray tasks, up to as many at once as the cluster has room for."""

    def __init__(self, ray: Any, *, device: str, cpus_per_task: float, gpus_per_task: float | None,
                 max_retries: int, local: bool):
        self.ray = ray
        self.cpus_per_task = cpus_per_task
        self.gpus_per_task = gpus_per_task
        self.max_retries = max_retries
        self.local = local
        self._gpus = 0.0
        self.device = self._settle(device)

    @property
    def slots(self) -> int:
        total = self.ray.cluster_resources()
        slots = total.get("CPU", 0) // self.cpus_per_task
        if self._gpus:
            slots = min(slots, total.get("GPU", 0) // self._gpus)
        return max(1, int(slots))

    def _settle(self, requested: str) -> str:
        """cpu, cuda, or auto (cuda if the cluster has GPUs); the driver itself needs no GPU."""
        if requested not in ("cpu", "cuda", "auto"):
            raise PonderError(f"unknown device {requested!r}; use cpu, cuda or auto")
        total = self.ray.cluster_resources()
        device = requested if requested != "auto" else ("cuda" if total.get("GPU", 0) > 0 else "cpu")
        if device == "cpu" and self.gpus_per_task:
            raise PonderError(f"--gpus-per-task {self.gpus_per_task:g} needs --device cuda (or auto)")
        self._gpus = (self.gpus_per_task or 1.0) if device == "cuda" else 0.0
        need = {"CPU": self.cpus_per_task, "GPU": self._gpus}
        short = [f"{k} {v:g} per task but the cluster has {total.get(k, 0):g}" for k, v in need.items()
                 if v and total.get(k, 0) < v]
        if short and self.local:  # a connected cluster may still scale up; a local instance never will
            raise PonderError(f"the local Ray instance cannot run a task: {short[0]}; "
                              "lower --cpus-per-task / --gpus-per-task or use --device cpu")
        if short:
            logging.getLogger(__name__).warning("tasks wait for resources: %s", short[0])
        return device

    def budget(self) -> int:
        """One task's memory budget: measured on a worker, shared among the tasks that run beside it."""
        device = self.device
        probe = self.ray.remote(memory_budget).options(num_cpus=self.cpus_per_task, num_gpus=self._gpus)
        worker = self.ray.get(probe.remote(device))
        if device == "cuda":
            return int(worker * min(1.0, self._gpus))  # a fractional GPU is shared by 1 / gpus tasks
        node_cpus = max((n["Resources"].get("CPU", 0) for n in self.ray.nodes() if n.get("Alive")), default=1)
        return int(worker // max(1, node_cpus // self.cpus_per_task))

    def train(self, chunks: list[list[Run]]) -> Iterator[ChunkResult]:
        """Submit every chunk, then yield each as it finishes; unfinished tasks are cancelled on exit."""
        ray = self.ray
        task = ray.remote(_train_task).options(num_cpus=self.cpus_per_task, num_gpus=self._gpus,
                                               max_retries=self.max_retries, retry_exceptions=True)
        threads = max(1, math.floor(self.cpus_per_task))
        waiting = {task.remote(chunk, self.device, threads): chunk for chunk in chunks}
        try:
            while waiting:
                ready, _ = ray.wait(list(waiting), num_returns=1)
                for ref in ready:
                    chunk = waiting.pop(ref)
                    yield self._collect(ref, chunk)
        finally:
            for ref in waiting:  # Ctrl-C, or a PonderError from another chunk
                ray.cancel(ref, force=True)

    def _collect(self, ref: Any, chunk: list[Run]) -> ChunkResult:
        try:
            out = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            return ChunkResult(chunk, error=_describe(exc, self.max_retries))
        if isinstance(out, PonderError):
            raise out
        return ChunkResult(chunk, out)


def _describe(exc: Exception, retries: int) -> str:
    """The error stored with a failed chunk's runs, one sentence: what failed first, and how often it was tried."""
    cause = getattr(exc, "cause", None)
    tries = f"{retries + 1} tries" if retries else "1 try (no retries)"
    return f"{one_line_error(cause if cause is not None else exc)} (Ray task, {tries})"
