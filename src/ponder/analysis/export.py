"""The analysis as a JSON object: what ``ponder report --format json`` prints and the store keeps."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ponder.analysis.summary import Analysis

__all__ = ["analysis_json", "FORMAT_VERSION"]

FORMAT_VERSION = 1


def _num(x: Any) -> Any:
    """Finite floats stay, NaN and inf become None (JSON has neither)."""
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, (int,)):
        return int(x)
    try:
        f = float(x)
    except (TypeError, ValueError):
        return x
    return f if math.isfinite(f) else None


def _factor(e) -> dict[str, Any]:
    full = e.to_json()
    return {"factor": e.factor, "verdict": e.verdict, "best": list(e.best), "avoid": list(e.avoid), "p": _num(e.p),
            "effect": _num(e.effect), "effect_ci": [_num(v) for v in e.effect_ci], "strength": e.strength,
            "test": e.test, "details": full}


def _interaction(t) -> dict[str, Any]:
    return {"factors": [t.a, t.b], "p": _num(t.p), "verdict": t.verdict, "kind": t.kind, "test": t.test,
            "ratio": _num(t.ratio), "details": t.to_json()}


def _arm(a, metric: str) -> dict[str, Any]:
    return {"arm": a.arm, "levels": a.levels, "tuned": a.tuned, "rank": a.rank, "runs": a.n_runs,
            f"test_{metric}": _num(a.test.mean), "ci": [_num(a.test.lo), _num(a.test.hi)],
            "train_accuracy": _num(a.train.mean), "diverged": a.n_diverged, "did_not_train": a.n_chance,
            "memorized": a.n_memorized}


def analysis_json(an: "Analysis") -> dict[str, Any]:
    """The machine-readable analysis: headline, answer, factors, interactions, trends, arms, theory, warnings."""
    theory = [] if an.theory.empty else [{k: _num(v) if isinstance(v, float) else v for k, v in row.items()}
                                         for row in an.theory.to_dict("records")]
    return {
        "format": FORMAT_VERSION,
        "study": an.study["name"],
        "question": an.study["question"],
        "metric": an.metric,
        "headline": an.headline,
        "answer": an.answer,
        "focus": an.focus or None,
        "factors": [_factor(e) for e in an.factor_effects],
        "interactions": [_interaction(t) for t in an.interaction_tests],
        "trends": [t.to_json() for t in an.trends],
        "arms": [_arm(a, an.metric) for a in sorted(an.arms, key=lambda a: a.rank)],
        "reference": an.reference,
        "reference_arms": list(an.reference_arms),
        "theory": theory,
        "warnings": list(an.warnings),
        "pending": an.pending,
    }
