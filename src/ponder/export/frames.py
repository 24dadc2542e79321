"""Nested JSON as flat columns: a run's config and environment, and the analysis's tables.

The store keeps a run's resolved config and its environment as JSON objects; a table of runs
wants one column per setting (``config.model.depth``, ``env.torch``). The analysis is a JSON
object too (:meth:`~ponder.analysis.Analysis.to_json`); its arms, factors and interactions
become one row each.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import pandas as pd

if TYPE_CHECKING:
    from ponder.analysis.stats import Comparison

__all__ = ["flatten", "json_columns", "analysis_tables", "FACTOR_COLS", "INTERACTION_COLS"]

# The columns of each analysis table when the analysis has no row for it (a study of one factor has no interactions).
FACTOR_COLS = ["factor", "verdict", "best", "avoid", "p", "effect", "effect_ci_lo", "effect_ci_hi", "strength", "test"]
INTERACTION_COLS = ["factor_a", "factor_b", "p", "verdict", "kind", "test", "ratio"]

_INLINE = ("levels", "tuned")  # an arm's factor levels and tuned values become columns named by their keys
_PAIRS = {"ci": ("ci_lo", "ci_hi"), "effect_ci": ("effect_ci_lo", "effect_ci_hi"), "factors": ("factor_a", "factor_b")}
_DROP = ("details",)  # the full record of a factor or interaction test: in Report.analysis, not in the table


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables as one level, keys joined by dots.

    ``flatten({"model": {"depth": 2, "init_params": {}}}, "config.")`` gives
    ``{"config.model.depth": 2}``: lists and scalars are values, an empty table is left out.

    Args:
        tree: A JSON object (nested dicts).
        prefix: Put before every key (``"config."``).

    Returns:
        One key per leaf, in the order of ``tree``.
    """
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def json_columns(texts: pd.Series, prefix: str) -> pd.DataFrame:
    """A column of JSON objects (None where missing) as flat columns ``prefix.key...``, on the same index."""
    rows = [flatten(json.loads(t), f"{prefix}.") if isinstance(t, str) else {} for t in texts]
    return pd.DataFrame(rows, index=texts.index)


def _row(item: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in item.items():
        if key in _DROP:
            continue
        if key in _INLINE:
            row.update(value)
        elif key in _PAIRS:
            row.update(zip(_PAIRS[key], value if value else (None, None)))
        else:
            row[key] = value
    return row


def _table(items: Iterable[Mapping[str, Any]], columns: list[str]) -> pd.DataFrame:
    rows = [_row(i) for i in items]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)


def analysis_tables(payload: Mapping[str, Any], comparisons: Iterable[Comparison]) -> dict[str, pd.DataFrame]:
    """The analysis's tables as DataFrames.

    Args:
        payload: The analysis JSON (:meth:`~ponder.analysis.Analysis.to_json`).
        comparisons: The paired comparisons against the reference arm (``Analysis.comparisons``).

    Returns:
        ``arms`` (one row per arm, best rank first: its factor levels and tuned values as columns,
        the test metric with ``ci_lo``/``ci_hi``), ``factors`` (one row per factor: verdict, best
        levels, p, effect with its CI), ``interactions`` (one row per pair of factors) and
        ``comparisons`` (one row per arm against the reference: mean difference, CI, p values, dz).
    """
    from ponder.analysis.stats import Comparison  # here, not at import: the MLflow export needs no scipy

    comps = [asdict(c) for c in comparisons]
    return {"arms": _table(payload["arms"], ["arm", "rank"]),
            "factors": _table(payload["factors"], FACTOR_COLS),
            "interactions": _table(payload["interactions"], INTERACTION_COLS),
            "comparisons": pd.DataFrame(comps) if comps else pd.DataFrame(columns=[f.name for f in fields(Comparison)])}
