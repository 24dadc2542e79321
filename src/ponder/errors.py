"""Errors a user can act on.

Every failure that reaches a user is a :class:`PonderError` whose text is one sentence: what
is wrong, what would be right and, where a name was mistyped, the closest valid name. The CLI
prints that sentence and exits with code 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

__all__ = [
    "PonderError",
    "SpecError",
    "CatalogError",
    "DataError",
    "StoreError",
    "NotFound",
    "LimitError",
]


class PonderError(Exception):
    """Base class: a message meant for the user, one sentence."""

    exit_code = 2


class SpecError(PonderError):
    """A study file is malformed, names something unknown, or asks for the impossible."""


class CatalogError(PonderError):
    """A catalog lookup missed, or an entry was called with bad arguments."""


class DataError(PonderError):
    """A dataset file is missing, truncated, malformed or holds non-finite values."""


class StoreError(PonderError):
    """The results store cannot be opened or written."""


class NotFound(StoreError):
    """A study or run id is not in the store."""


class LimitError(PonderError):
    """A study is larger than a limit; ``--force`` lifts soft limits."""
