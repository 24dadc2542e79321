"""The local executor: trains chunks one after another in this process.

An executor only trains: the study loop (:func:`ponder.runner.run_study`) plans, skips and
writes. A crash in one chunk becomes that chunk's error, so the other chunks are kept; a
:class:`~ponder.errors.PonderError` (bad data, a bad setting) stops the study.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Protocol

from ponder.errors import PonderError
from ponder.study.plan import Run

if TYPE_CHECKING:
    from ponder.train.chunk import ChunkOutput

__all__ = ["ChunkResult", "Executor", "LocalExecutor", "resolve_device", "one_line_error"]


def one_line_error(exc: BaseException) -> str:
    """The error stored with a failed run: its type and first line, one readable sentence."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:500]}" if text else type(exc).__name__


@dataclass
class ChunkResult:
    """One trained chunk as an executor hands it back: its records, or the error that stopped it."""

    runs: list[Run]
    output: ChunkOutput | None = None
    error: str | None = None


class Executor(Protocol):
    """Where chunks are trained; built for one device, which it settles when it is built.

    ``train`` yields one :class:`ChunkResult` per chunk, in any order, as each finishes; it never
    touches the store.
    """

    device: str  # "cpu" or "cuda": settled at construction, or (local, ``auto``) when first read
    slots: int  # chunks it can train at once; populations are split to give each slot work

    def budget(self) -> int: ...

    def train(self, chunks: list[list[Run]]) -> Iterator[ChunkResult]: ...


def resolve_device(device: str) -> str:
    """cpu, cuda, or auto (cuda when this torch build sees a GPU)."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise PonderError("--device cuda was asked for but this torch build sees no CUDA device; use --device cpu "
                          "or install a CUDA build of torch (README, GPU)")
    if device not in ("cpu", "cuda"):
        raise PonderError(f"unknown device {device!r}; use cpu, cuda or auto")
    return device


class LocalExecutor:
    """Trains chunks one after another in this process.

    ``device="auto"`` is settled, and the torch ``threads`` set, when first needed (a budget asked
    or a chunk trained), so a study with nothing to train never loads torch; ``on_device`` (when
    set) hears the settled device once. ``cuda`` is checked at once: asked for, it must exist.
    """

    slots = 1

    def __init__(self, device: str = "cpu", *, threads: int | None = None):
        self._asked, self._device, self.threads = device, None, threads
        if device != "auto":
            self._device = resolve_device(device) if device != "cpu" else "cpu"
        self.on_epoch: Callable[[int], None] | None = None  # model-epochs finished, as training goes
        self.on_device: Callable[[str], None] | None = None  # told the device when ``auto`` is settled

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = resolve_device(self._asked)
            if self.on_device is not None:
                self.on_device(self._device)
        return self._device

    def _ready(self) -> str:
        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)
            self.threads = None  # once
        return self.device

    def budget(self) -> int:
        from ponder.train.chunk import memory_budget

        return memory_budget(self._ready())

    def train(self, chunks: list[list[Run]]) -> Iterator[ChunkResult]:
        for chunk in chunks:
            from ponder.train.chunk import train_chunk  # torch loads with the first chunk

            try:
                out = train_chunk(chunk, device=self._ready(), on_epoch=self.on_epoch)
            except (KeyboardInterrupt, PonderError):
                raise
            except Exception as exc:  # a crash in one population must not lose the others
                yield ChunkResult(chunk, error=one_line_error(exc))
                continue
            yield ChunkResult(chunk, out)
