"""Cheap reruns: a report whose inputs have not changed is not rebuilt; mean-field grids are computed once."""

from __future__ import annotations

import numpy as np
import pytest


def _value(levels, tuned, seed):
    acc = 0.7 + 0.05 * (levels["model.initializer"] == "torch.kaiming_normal") + 0.01 * seed
    return acc, acc, 0.9


def test_an_unchanged_report_is_kept_and_a_changed_one_rebuilt(synthetic_store, make_spec, tmp_path, monkeypatch):
    import ponder.reporting.html as html
    from ponder.analysis import fingerprint

    spec = make_spec(seeds=3, tune=None)
    out = tmp_path / "reports"
    with synthetic_store(spec, _value) as st:
        first = html.write_report(st, "tiny", out)
        stamp = first.stat().st_mtime_ns
        monkeypatch.setattr(html, "analyze", lambda *a, **k: pytest.fail("an unchanged report was analyzed again"))
        assert html.write_report(st, "tiny", out) == first and first.stat().st_mtime_ns == stamp
        assert st.analysis("tiny")[0] == fingerprint(st, "tiny")  # the analysis is kept with the study
        monkeypatch.undo()
        st.con.execute("UPDATE runs SET status = 'diverged' WHERE run_id IN (SELECT run_id FROM runs LIMIT 1)")
        html.write_report(st, "tiny", out)  # the runs changed: rebuilt
        assert first.stat().st_mtime_ns != stamp


def test_derived_grids_are_computed_once_across_calls(tmp_path, monkeypatch):
    from ponder.reporting.cache import cached_arrays

    monkeypatch.setenv("PONDER_CACHE", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return {"grid": np.arange(6.0).reshape(2, 3)}

    a = cached_arrays("demo", {"activation": "tanh"}, compute)
    b = cached_arrays("demo", {"activation": "tanh"}, compute)
    c = cached_arrays("demo", {"activation": "relu"}, compute)
    assert len(calls) == 2 and np.array_equal(a["grid"], b["grid"]) and np.array_equal(a["grid"], c["grid"])
