"""A study file against the version a store keeps: reports read the stored version, so a file that now says
otherwise is refused in one sentence instead of being reported as what it no longer is."""

from __future__ import annotations

import json
from typing import Any

from ponder.errors import PonderError
from ponder.study.spec import Study, load_study

__all__ = ["check_stored"]


def check_stored(study: Study | str, stored: dict[str, Any], *, store: str) -> None:
    """Refuse to report ``study`` (a Study, or a ``.toml`` path read in the stored mode, quick or full) when the
    store keeps it otherwise (``stored``: the store's study record): another focus, question, factor or seed count
    would be reported under the file's name as the stored version. The fix is a ``ponder run``, which stores the
    new version and trains only what is missing."""
    if isinstance(study, Study):
        origin = study.source or study.name
    else:
        origin, study = study, load_study(study, quick=bool(stored["quick"]))
    canon = lambda v: json.dumps(v, sort_keys=True, default=str)  # noqa: E731
    mine = json.loads(canon(study.model_dump()))  # as the store keeps it: tuples as lists
    changed = sorted(k for k in mine if k != "source" and canon(mine[k]) != canon(stored["spec"].get(k)))
    if changed:
        raise PonderError(f"{origin} differs from the study {study.name!r} as {store} stored it ({', '.join(changed)}); "
                          f"run `ponder run {origin}{' --quick' if stored['quick'] else ''} --store {store}` to store "
                          "this version (it trains only the runs the store lacks), or report the stored one by its name")
