"""Setting keys as study files write them: dotted (``"model.depth"``), and linked by ``+`` in a factor that varies
several settings together (``"model.activation+model.initializer"``)."""

from __future__ import annotations

from typing import Iterable

__all__ = ["short_key", "varied_keys"]


def short_key(key: str) -> str:
    """The key without its section, each part of a linked key: ``"model.depth"`` -> ``"depth"``,
    ``"training.loss+training.batch_size"`` -> ``"loss+batch_size"``."""
    return "+".join(part.split(".", 1)[-1] for part in key.split("+"))


def varied_keys(factors: Iterable[str]) -> set[str]:
    """Every setting the factors vary, the parts of linked factors included."""
    return {part for key in factors for part in key.split("+")}
