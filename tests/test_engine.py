"""The population engine: batched training equals training alone; divergence is isolated."""

from __future__ import annotations

import pytest
import torch

from ponder.catalog.datasets import load_pool
from ponder.catalog.models import build
from ponder.train import ModelSettings, prepare_data, train_population


def _train(models, *, arch="mlp", dataset="spirals", options=None, depth=2, width=12, epochs=2, activation="tanh",
           optimizer="momentum", dtype=torch.float64, train_size=120, loss="cross_entropy", label_noise=0.1):
    pool = load_pool(dataset, {"n_train": 400, "n_test": 100} if options is None else options)
    layers = build(arch, pool.sample_shape, pool.n_classes, depth=depth, width=width, kernel_size=3)
    data = prepare_data(pool, seeds=[m.seed for m in models], label_noise=[label_noise] * len(models), val_fraction=0.2,
                        train_size=train_size, dtype=dtype)
    return train_population(layers, models, data, activation=activation, loss=loss, optimizer=optimizer,
                            momentum=0.9, epochs=epochs, batch_size=16, dtype=dtype, keep_params=True)


MODELS = [
    ModelSettings(0, 0.05, 0.0, "torch.default", {}, 0.0),
    ModelSettings(1, 0.10, 1e-3, "torch.kaiming_normal", {}, 0.2),
    ModelSettings(0, 0.02, 0.0, "torch.xavier_uniform", {}, 0.5),
    ModelSettings(2, 0.05, 0.0, "torch.kaiming_normal", {}, 0.0),
]


def _max_diff(a, b):
    return max(float((x - y).abs().max()) for (wa, ba), (wb, bb) in zip(a, b) for x, y in ((wa, wb), (ba, bb)))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_model_in_population_equals_model_alone_mlp(optimizer):
    together = _train(MODELS, optimizer=optimizer)
    for k, m in enumerate(MODELS):
        alone = _train([m], optimizer=optimizer)[0]
        assert _max_diff(together[k].params, alone.params) < 1e-8
        assert together[k].epochs == alone.epochs


def test_model_in_population_equals_model_alone_cnn1d():
    kw = dict(arch="cnn1d", dataset="mnist1d", options={"num_samples": 600}, depth=2, width=4, epochs=1, train_size=200)
    together = _train(MODELS[:3], **kw)
    for k, m in enumerate(MODELS[:3]):
        alone = _train([m], **kw)[0]
        assert _max_diff(together[k].params, alone.params) < 1e-8


def test_same_seed_gives_same_data_order_and_masks_across_arms():
    # Two arms that differ only in learning rate 0 vs 0: identical runs; with the same seed and
    # dropout they must end identical even though a third model with another seed trains beside them.
    a = ModelSettings(5, 0.05, 0.0, "torch.kaiming_normal", {}, 0.3)
    recs = _train([a, ModelSettings(6, 0.05, 0.0, "torch.kaiming_normal", {}, 0.3), a])
    assert _max_diff(recs[0].params, recs[2].params) == 0.0
    assert _max_diff(recs[0].params, recs[1].params) > 0.0


def test_diverging_model_is_marked_and_does_not_touch_the_others():
    healthy = MODELS[:3]
    wild = ModelSettings(3, 1e6, 0.0, "torch.kaiming_normal", {}, 0.0)
    base = _train(healthy, optimizer="sgd", loss="squared_error", epochs=3)
    mixed = _train([healthy[0], wild, healthy[1], healthy[2]], optimizer="sgd", loss="squared_error", epochs=3)
    assert mixed[1].status == "diverged" and mixed[1].diverged_epoch in (1, 2, 3)
    for a, b in zip(base, [mixed[0], mixed[2], mixed[3]]):
        assert b.status == "ok"
        assert _max_diff(a.params, b.params) == 0.0  # bit-identical
        assert a.epochs == b.epochs


def test_records_have_epochs_and_layer_probes():
    rec = _train(MODELS[:2], activation="relu", epochs=2)[0]
    assert [e["epoch"] for e in rec.epochs] == [0, 1, 2]
    assert set(rec.epochs[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"}
    # 2 hidden layers + output, for each of 3 epochs
    assert len(rec.layers) == 3 * 3
    hidden = [r for r in rec.layers if r["layer"] == 0]
    assert all(0 <= r["zero_frac"] <= 1 for r in hidden)
    assert hidden[0]["zero_frac"] > 0.2  # relu zeroes about half of its inputs at init
    assert all(r["grad_norm"] > 0 for r in rec.layers)


def test_training_learns():
    rec = _train([ModelSettings(0, 0.1, 0.0, "torch.kaiming_normal", {}, 0.0)], epochs=20, train_size=300, width=32,
                 dtype=torch.float32, activation="relu", dataset="digits", options={}, label_noise=0.0)[0]
    assert rec.epochs[-1]["train_loss"] < 0.7 * rec.epochs[0]["train_loss"]
    assert rec.epochs[-1]["train_acc"] > 0.9 and rec.epochs[-1]["test_acc"] > 0.75


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "identity", "gelu", "selu"])
@pytest.mark.parametrize("loss", ["cross_entropy", "squared_error"])
def test_hand_written_dense_backward_equals_autograd(activation, loss):
    from ponder import registry
    from ponder.train.dense import dense_step
    from ponder.train.engine import forward, init_population
    from ponder.train.optim import flatten

    gen = torch.Generator().manual_seed(0)
    layers = build("mlp", (1, 12), 5, depth=3, width=9, kernel_size=3)
    m, bsz = 4, 7
    params = init_population(layers, [("torch.kaiming_normal", {})] * m, [torch.Generator().manual_seed(i) for i in range(m)],
                             torch.float64)
    flat = flatten(params)
    x = torch.randn(m, bsz, 1, 12, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 5, (m, bsz), generator=gen)
    mults = [(torch.rand(m, bsz, 9, generator=gen, dtype=torch.float64) > 0.3) / 0.7 for _ in range(3)]
    act, loss_fn = registry.get("activation", activation).fn, registry.get("loss", loss).fn
    grad = torch.zeros_like(flat.data)
    got = dense_step(flat.views, flat.grad_views(grad), layers, x, y, act=act, act_name=activation, loss_fn=loss_fn,
                     dropout=lambda a, i: mults[i])
    leaves = [t for pair in flat.views for t in pair]
    logits = forward(flat.views, layers, x, act, dropout=lambda a, i: a * mults[i])
    want = loss_fn(logits, y).mean(1)
    ref = flat.flat_grad(torch.autograd.grad(want.sum(), leaves))
    assert torch.allclose(got, want.detach(), atol=1e-12)
    assert torch.allclose(grad, ref, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_dense_step_in_chunks_of_models_gives_the_same_bits(monkeypatch, activation):
    """A large population goes through the hand-written MLP step in chunks of models: every loss and every
    gradient element equals the step in one piece (float32), dropout masks drawn from a stream included."""
    from ponder import registry
    from ponder.train import dense
    from ponder.train.engine import init_population
    from ponder.train.optim import flatten

    layers = build("mlp", (1, 12), 5, depth=3, width=16, kernel_size=3)
    m, bsz = 7, 9
    params = init_population(layers, [("torch.default", {})] * m, [torch.Generator().manual_seed(i) for i in range(m)],
                             torch.float32)
    flat = flatten(params)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(m, bsz, 1, 12, generator=gen)
    y = torch.randint(0, 5, (m, bsz), generator=gen)
    act, loss_fn = registry.get("activation", activation).fn, registry.get("loss", "cross_entropy").fn

    def run(chunk_elements):
        monkeypatch.setattr(dense, "CHUNK_ELEMENTS", chunk_elements)
        drops = torch.Generator().manual_seed(2)  # one stream, as PopulationState.dropout_mult draws from
        grad = torch.zeros_like(flat.data)
        loss = dense.dense_step(flat.views, flat.grad_views(grad), layers, x, y, act=act, act_name=activation,
                                loss_fn=loss_fn, dropout=lambda a, i: (torch.rand(a.shape, generator=drops) > 0.25) / 0.75)
        return loss, grad

    assert dense._chunk(layers, m, bsz) == m  # the default keeps this small population whole
    whole_loss, whole_grad = run(10**9)
    assert dense._chunk(layers, m, bsz) == m
    monkeypatch.setattr(dense, "CHUNK_ELEMENTS", 2 * bsz * 16)
    assert dense._chunk(layers, m, bsz) == 2  # 7 models in chunks of 2 + 2 + 2 + 1
    loss, grad = run(2 * bsz * 16)
    assert torch.equal(loss, whole_loss) and torch.equal(grad, whole_grad)
    assert dense._chunk(layers, 0, bsz) == 1 and dense._chunk(layers, m, 0) == m  # no division by an empty shape


@pytest.mark.parametrize("arch,activation", [("mlp", "relu"), ("mlp", "tanh"), ("mlp", "gelu"), ("cnn1d", "relu")])
def test_evaluation_in_small_forward_passes_and_in_place_gives_the_same_bits(monkeypatch, arch, activation):
    """Evaluation runs its forward passes over a few examples at a time, with the activation in place where that
    kernel gives the same bits: every loss and accuracy equals one pass over the whole block with the plain activation."""
    from ponder import registry
    from ponder.rng import rng_for
    from ponder.train import metrics
    from ponder.train.engine import init_population

    pool = load_pool("mnist1d", {"num_samples": 600})
    layers = build(arch, pool.sample_shape, pool.n_classes, depth=2, width=12, kernel_size=5 if arch == "cnn1d" else 0)
    data = prepare_data(pool, seeds=[0, 1, 2], label_noise=[0.0, 0.2, 0.0], val_fraction=0.2, train_size=300,
                        dtype=torch.float32)
    params = init_population(layers, [("torch.default", {})] * 3, [rng_for(m, "init") for m in range(3)], torch.float32)
    act, loss = registry.get("activation", activation).fn, registry.get("loss", "cross_entropy").fn
    monkeypatch.setattr(metrics, "FORWARD_CHUNK", 10**9)
    whole = metrics.evaluate(params, layers, act, loss, data)
    monkeypatch.setattr(metrics, "FORWARD_CHUNK", 7)
    small = metrics.evaluate(params, layers, metrics.inplace_activation(activation, act), loss, data)
    assert small == whole  # exact float equality, every column of every model
    assert (metrics.inplace_activation(activation, act) is act) == (activation == "gelu")  # no in-place kernel: as is


@pytest.mark.parametrize("arch,activation", [("cnn1d", "relu"), ("cnn1d", "tanh"), ("cnn2d", "relu")])
def test_cnns_are_evaluated_by_the_forward_pass_they_train_with(monkeypatch, arch, activation):
    """CNN evaluation on the CPU takes the hand-written forward pass of training (im2col + bmm): equal to the grouped
    convolutions in float64 to 1e-10, and in float32 the same bits whether the block goes in one pass or in many."""
    from ponder import registry
    from ponder.rng import rng_for
    from ponder.train import metrics
    from ponder.train.engine import init_population

    pool = load_pool("mnist1d" if arch == "cnn1d" else "digits", {"num_samples": 600} if arch == "cnn1d" else {})
    layers = build(arch, pool.sample_shape, pool.n_classes, depth=2, width=6, kernel_size=5 if arch == "cnn1d" else 3)
    act, loss = registry.get("activation", activation).fn, registry.get("loss", "cross_entropy").fn
    rows = {}
    for dtype in (torch.float64, torch.float32):
        data = prepare_data(pool, seeds=[0, 1, 2], label_noise=[0.0, 0.2, 0.0], val_fraction=0.2, train_size=300, dtype=dtype)
        params = init_population(layers, [("torch.default", {})] * 3, [rng_for(m, "init") for m in range(3)], dtype)
        fast_act = metrics.inplace_activation(activation, act)
        monkeypatch.setattr(metrics, "FORWARD_CHUNK", 10**9)
        rows[dtype] = (metrics.evaluate(params, layers, act, loss, data),  # grouped convolutions
                       metrics.evaluate(params, layers, fast_act, loss, data, act_name=activation))
        monkeypatch.setattr(metrics, "FORWARD_CHUNK", 7)
        rows[dtype] += (metrics.evaluate(params, layers, fast_act, loss, data, act_name=activation),)
    grouped, fast, _ = rows[torch.float64]
    for a, b in zip(grouped, fast):
        assert a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-10 for k in a)
    _, whole, small = rows[torch.float32]
    assert whole == small


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inverted_dropout_is_the_thresholded_draw_of_each_seed_bit_for_bit(dtype, shared):
    """Multipliers (u >= 1 - keep) / keep from one uniform draw per seed stream and site, per model: models sharing a
    seed share the pattern, keep = 1 keeps everything at exactly 1, and the CPU's one call per stream for all the
    sites of a step gives exactly the bits of one call per site (the order the loop drew them in before)."""
    from ponder.train.loop import inverted_dropout

    seeds, seed_ix, shapes = [7, 8], torch.tensor([0, 1, 0, 1, 0]), [(64, 33), (64, 5, 3), (64, 10)]
    p = [torch.tensor([0.0, 0.1, 0.3, 0.5, 0.7]), torch.tensor([0.2] * 5), torch.tensor([0.0, 0.0, 0.9, 0.1, 0.7])]
    p = [p[0]] * 3 if shared else p  # one rate tensor for every site (the built-in MLP's case) or one per site
    got = inverted_dropout([torch.Generator().manual_seed(s) for s in seeds], seed_ix, shapes, p,
                           device=torch.device("cpu"), dtype=dtype)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    for k, (shape, rate) in enumerate(zip(shapes, p)):  # the draws of the previous loop: site by site, seed by seed
        u = torch.stack([torch.rand(shape, generator=g, dtype=dtype) for g in gens])[seed_ix]
        keep = (1 - rate.to(dtype)).view(5, *[1] * len(shape))
        want = (u >= (1 - keep)) / keep
        assert got[k].dtype == dtype and got[k].shape == (5, *shape) and torch.equal(got[k], want), k
    assert torch.equal(got[0][0], torch.ones(64, 33, dtype=dtype))  # p = 0: every unit kept, at exactly 1
    two = [torch.tensor([0.1, 0.5])] * 2
    empty = inverted_dropout([torch.Generator()], seed_ix[:2] * 0, [(0, 5), (3,)], two, device=torch.device("cpu"),
                             dtype=dtype)  # an empty site: an empty mask, as the per-site draws gave
    assert [tuple(t.shape) for t in empty] == [(2, 0, 5), (2, 3)]
    assert 0.2 < float((got[0][4] != 0).float().mean()) < 0.4  # keep 0.3
    if not shared:  # site 1: one rate for all models; models 0 and 2 share seed 7, model 1 has seed 8
        assert torch.equal(got[1][0] != 0, got[1][2] != 0) and not torch.equal(got[1][0] != 0, got[1][1] != 0)
