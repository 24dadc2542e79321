"""[evaluate] every / probe_every / train_subset bound what evaluation costs, never what training does."""

from __future__ import annotations

from ponder.study import expand
from ponder.train.chunk import train_chunk


def test_a_sparse_evaluation_schedule_trains_the_same_models(make_spec):
    full = expand(make_spec(seeds=2, tune=None, training__epochs=6))
    sparse = expand(make_spec(seeds=2, tune=None, training__epochs=6,
                              evaluate={"every": 3, "probe_every": 6, "train_subset": 40}))
    a, b = train_chunk(full), train_chunk(sparse)
    assert [e["epoch"] for e in b.records[0].epochs] == [0, 3, 6]  # epoch 0 and the last always
    assert sorted({row["epoch"] for row in b.records[0].layers}) == [0, 6]
    for ra, rb in zip(a.records, b.records):  # evaluation draws nothing: training is unchanged
        assert ra.epochs[-1] == rb.epochs[-1]  # and the last epoch is scored on every training example
        assert ra.epochs[3]["val_acc"] == rb.epochs[1]["val_acc"]


def test_the_schedule_enters_run_ids_only_when_set(make_spec):
    plain = expand(make_spec(seeds=1, tune=None))
    same = expand(make_spec(seeds=1, tune=None, evaluate={"every": 1}))
    sparse = expand(make_spec(seeds=1, tune=None, evaluate={"every": 2}))
    assert [r.id for r in plain] == [r.id for r in same]
    assert not {r.id for r in plain} & {r.id for r in sparse}
