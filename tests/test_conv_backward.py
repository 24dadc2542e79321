"""The hand-written CNN forward/backward (train/conv.py) equals autograd through grouped convolutions."""

from __future__ import annotations

import pytest
import torch

from ponder import registry
from ponder.catalog.datasets import load_pool
from ponder.catalog.models import build
from ponder.train import ModelSettings, prepare_data, train_population
from ponder.train import conv
from ponder.train.engine import forward, init_population
from ponder.train.optim import flatten

F64 = torch.float64
SHAPES = {  # (arch, sample shape, depth, width, kernel): the catalog's layers on small inputs
    "cnn1d": ("cnn1d", (1, 40), 3, 6, 5),
    "cnn1d-3ch-k3": ("cnn1d", (3, 17), 2, 5, 3),
    "cnn2d": ("cnn2d", (1, 8, 8), 2, 4, 3),
    "cnn2d-3ch-odd": ("cnn2d", (3, 9, 7), 2, 5, 3),
    "cnn1d-tiny": ("cnn1d", (2, 6), 2, 4, 5),  # every layer's input small enough to run as an unrolled dense matmul
}


def _case(name: str, bias: bool, m: int = 3, bsz: int = 7):
    arch, shape, depth, width, k = SHAPES[name]
    layers = build(arch, shape, 5, depth=depth, width=width, kernel_size=k)
    gens = [torch.Generator().manual_seed(10 + i) for i in range(m)]  # every model its own weights
    params = init_population(layers, [("torch.kaiming_normal", {})] * m, gens, F64)
    g = torch.Generator().manual_seed(0)
    params = [(w, 0.3 * torch.randn(b.shape, generator=g, dtype=F64) if bias else torch.zeros_like(b)) for w, b in params]
    x = torch.randn(m, bsz, *shape, generator=g, dtype=F64)
    y = torch.randint(0, 5, (m, bsz), generator=g)
    return layers, flatten(params), x, y, g


def _compare(name, activation, *, bias=True, drop=False, loss="cross_entropy"):
    layers, flat, x, y, g = _case(name, bias)
    assert conv.is_conv(layers)
    act, loss_fn = registry.get("activation", activation).fn, registry.get("loss", loss).fn
    masks: dict[int, torch.Tensor] = {}

    def mult(a, i):  # drawn once per layer, channels-first (M, B, C, *spatial), as engine.forward sees it
        if i not in masks:
            masks[i] = (torch.rand(a.shape, generator=g, dtype=a.dtype) > 0.3) / 0.7
        assert masks[i].shape == a.shape
        return masks[i]

    grad = torch.zeros_like(flat.data)
    got = conv.conv_step(flat.views, flat.grad_views(grad), layers, x, y, act=act, act_name=activation,
                         loss_fn=loss_fn, dropout=mult if drop else None)
    leaves = [t for pair in flat.views for t in pair]
    logits = forward(flat.views, layers, x, act, dropout=(lambda a, i: a * mult(a, i)) if drop else None)
    want = loss_fn(logits, y).mean(1)
    ref = flat.flat_grad(torch.autograd.grad(want.sum(), leaves))
    assert torch.allclose(got, want.detach(), rtol=0, atol=1e-10)
    assert float((grad - ref).abs().max()) < 1e-10
    assert float(ref.abs().max()) > 1e-3  # a real gradient, not zeros on both sides


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
@pytest.mark.parametrize("bias", [True, False])
def test_conv_step_equals_autograd(name, activation, bias):
    _compare(name, activation, bias=bias)


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_conv_step_with_dropout_and_squared_error(name, activation):
    _compare(name, activation, drop=True, loss="squared_error")


@pytest.mark.parametrize("shift", [True, False])
@pytest.mark.parametrize("name", list(SHAPES))
def test_both_input_gradients_equal_autograd(monkeypatch, name, shift):
    """The shifted-slice input gradient and bmm + col2im, each forced on every layer."""
    monkeypatch.setattr(conv, "_shift_pays", lambda layer: shift)
    _compare(name, "relu", drop=True)
    _compare(name, "tanh")


@pytest.mark.parametrize("unroll", [True, False])
@pytest.mark.parametrize("name", list(SHAPES))
def test_unrolled_and_im2col_convolutions_equal_autograd(monkeypatch, name, unroll):
    """Every convolution as a dense matmul with its unrolled weight, or every one through im2col."""
    monkeypatch.setattr(conv, "_dense_pays", lambda layer: unroll and layer.kind != "dense")
    _compare(name, "relu", drop=True)
    _compare(name, "gelu")


@pytest.mark.parametrize("name", ["cnn1d", "cnn2d"])
def test_chunks_of_models_give_the_same_gradients(monkeypatch, name):
    monkeypatch.setattr(conv, "CHUNK_ELEMENTS", 1)  # one model per chunk; masks still drawn for the population
    _compare(name, "relu", drop=True)
    _compare(name, "gelu")


def test_only_supported_networks_take_the_fast_path(monkeypatch):
    assert conv.is_conv(build("cnn1d", (1, 40), 10, depth=2, width=4, kernel_size=5))
    assert conv.is_conv(build("cnn2d", (1, 8, 8), 10, depth=2, width=4, kernel_size=3))
    assert not conv.is_conv(build("mlp", (1, 40), 10, depth=2, width=4, kernel_size=0))
    monkeypatch.setattr(conv, "FAST", False)
    assert not conv.is_conv(build("cnn1d", (1, 40), 10, depth=2, width=4, kernel_size=5))


MODELS = [
    ModelSettings(0, 0.05, 0.0, "torch.default", {}, 0.0),
    ModelSettings(1, 0.10, 1e-3, "torch.kaiming_normal", {}, 0.2),
    ModelSettings(0, 0.02, 0.0, "torch.xavier_uniform", {}, 0.5),
]


def _train(arch, dataset, options, *, optimizer="momentum", activation="relu"):
    pool = load_pool(dataset, options)
    layers = build(arch, pool.sample_shape, pool.n_classes, depth=2, width=4, kernel_size=5 if arch == "cnn1d" else 3)
    data = prepare_data(pool, seeds=[m.seed for m in MODELS], label_noise=[0.0] * len(MODELS), val_fraction=0.2,
                        train_size=96, dtype=F64)
    return train_population(layers, MODELS, data, activation=activation, loss="cross_entropy", optimizer=optimizer,
                            momentum=0.9, epochs=2, batch_size=16, dtype=F64, keep_params=True)


@pytest.mark.parametrize("arch,dataset,options,optimizer,activation", [
    ("cnn1d", "mnist1d", {"num_samples": 400}, "momentum", "relu"),
    ("cnn1d", "mnist1d", {"num_samples": 400}, "adam", "tanh"),
    ("cnn2d", "digits", {}, "momentum", "relu"),
])
def test_train_population_fast_path_equals_autograd(monkeypatch, arch, dataset, options, optimizer, activation):
    """Training with dropout, decay and three models: the fast path and autograd (forced) end equal."""
    fast = _train(arch, dataset, options, optimizer=optimizer, activation=activation)
    monkeypatch.setattr(conv, "FAST", False)
    slow = _train(arch, dataset, options, optimizer=optimizer, activation=activation)
    assert fast[0].steps == slow[0].steps > 0
    for a, b in zip(fast, slow):
        for (wa, ba), (wb, bb), (w0, _) in zip(a.params, b.params, a.init):
            assert float((wa - wb).abs().max()) < 1e-10 and float((ba - bb).abs().max()) < 1e-10
            assert float((wa - w0).abs().max()) > 1e-4  # the weights moved
        for ea, eb in zip(a.epochs, b.epochs):
            assert ea.keys() == eb.keys()
            assert all(abs(ea[k] - eb[k]) < 1e-9 for k in ea)


# -- the fused optimizer (train/fused.py): the same bits as opt_step ---------------------------------


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.view(torch.int32 if t.dtype == torch.float32 else torch.int64)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("kind", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("freeze", [False, True])
def test_fused_optimizer_gives_opt_steps_bits(monkeypatch, dtype, kind, freeze):
    from ponder.train import fused
    from ponder.train.fused import fused_opt_step
    from ponder.train.optim import opt_init, opt_step

    monkeypatch.setattr(fused, "MIN_ELEMENTS", 0)  # these small buffers too

    g = torch.Generator().manual_seed(0)
    m = 5  # blocks of 999 (weights) and 37 (bias) elements per model: runs that are not multiples of 64
    params = [(torch.randn(m, 37, 27, generator=g, dtype=dtype), torch.randn(m, 37, generator=g, dtype=dtype)),
              (torch.randn(m, 3, 37, generator=g, dtype=dtype), torch.randn(m, 3, generator=g, dtype=dtype))]
    flats = [flatten(params, requires_grad=False) for _ in range(2)]
    lr = flats[0].per_element(torch.tensor([0.05, 0.05, 0.1, 0.05, 0.3], dtype=dtype))
    wd = flats[0].per_element(torch.tensor([0.0, 1e-3, 1e-3, 0.0, 0.05], dtype=dtype))
    keep = flats[0].per_element(torch.tensor([True, False, True, True, False])) if freeze else None
    states = [opt_init(kind, f.data) for f in flats]
    for step in range(6):
        grad = torch.randn(flats[0].data.shape, generator=g, dtype=dtype)
        opt_step(states[0], flats[0].data, grad, lr=lr, weight_decay=wd, momentum=0.9, keep=keep if step > 2 else None)
        fused_opt_step(states[1], flats[1], grad, lr=lr, weight_decay=wd, momentum=0.9, keep=keep if step > 2 else None)
    assert torch.equal(_bits(flats[0].data), _bits(flats[1].data))
    assert all(torch.equal(_bits(a), _bits(b)) for a, b in zip(states[0].buffers, states[1].buffers))
    assert states[0].step == states[1].step == 6
    assert hasattr(states[1], "_fused_plan") == (kind != "adam")  # the fused kernel ran (Adam: opt_step itself)


@pytest.mark.parametrize("max_runs", [4, 64])
def test_the_fused_plan_is_made_once_whatever_the_gradient_tensor(monkeypatch, max_runs):
    """The search for runs of equal settings (a scan of the whole buffer, costlier than the update) is done once,
    not every step: also when there are too many runs to fuse (opt_step does the update; max_runs 4) and when
    each step hands over a new gradient tensor (the autograd path)."""
    from ponder.train import fused
    from ponder.train.optim import opt_init, opt_step

    monkeypatch.setattr(fused, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(fused, "MAX_RUNS", max_runs)
    calls = []
    real = fused._runs
    monkeypatch.setattr(fused, "_runs", lambda *a: calls.append(1) or real(*a))
    g = torch.Generator().manual_seed(1)
    params = [(torch.randn(6, 8, 5, generator=g), torch.randn(6, 8, generator=g))]
    flats = [flatten(params, requires_grad=False) for _ in range(2)]
    lr = flats[0].per_element(torch.tensor([0.1, 0.2, 0.1, 0.2, 0.1, 0.2]))
    states = [opt_init("momentum", f.data) for f in flats]
    for _ in range(5):
        grad = torch.randn(flats[0].data.shape, generator=g)
        opt_step(states[0], flats[0].data, grad, lr=lr, weight_decay=None, momentum=0.9)
        fused.fused_opt_step(states[1], flats[1], grad, lr=lr, weight_decay=None, momentum=0.9)
    assert len(calls) == 1 and torch.equal(_bits(flats[0].data), _bits(flats[1].data))
    assert (states[1]._fused_plan.groups is None) == (max_runs == 4)


def test_training_with_the_fused_optimizer_gives_the_same_bits(monkeypatch):
    """A float32 MLP population, mixed learning rates and decays, one model diverging: identical to opt_step."""
    import ponder.train.loop as loop
    from ponder.train import fused
    from ponder.train.optim import opt_step

    monkeypatch.setattr(fused, "MIN_ELEMENTS", 0)

    models = [ModelSettings(0, 0.05, 0.0, "torch.default", {}, 0.0), ModelSettings(1, 0.1, 1e-3, "torch.kaiming_normal", {}, 0.2),
              ModelSettings(2, 1e5, 0.0, "torch.default", {}, 0.0), ModelSettings(3, 0.02, 5e-2, "torch.default", {}, 0.0)]

    def train():
        pool = load_pool("mnist1d", {"num_samples": 400})
        layers = build("mlp", pool.sample_shape, pool.n_classes, depth=2, width=37, kernel_size=0)
        data = prepare_data(pool, seeds=[m.seed for m in models], label_noise=[0.0] * 4, val_fraction=0.2, train_size=200,
                            dtype=torch.float32)
        return train_population(layers, models, data, activation="relu", loss="cross_entropy", optimizer="momentum",
                                momentum=0.9, epochs=3, batch_size=16, dtype=torch.float32, keep_params=True)

    fused = train()
    monkeypatch.setattr(loop, "fused_opt_step", lambda st, flat, grad, **kw: opt_step(st, flat.data, grad, **kw))
    plain = train()
    assert [r.status for r in fused] == [r.status for r in plain] == ["ok", "ok", "diverged", "ok"]
    for a, b in zip(fused, plain):
        for pa, pb in zip(a.params, b.params):
            for x, y in zip(pa, pb):
                assert torch.equal(torch.isnan(x), torch.isnan(y))  # a diverged model: NaN where the other has NaN
                assert torch.equal(_bits(x[~torch.isnan(x)]), _bits(y[~torch.isnan(y)]))
        if a.status == "ok":
            assert a.epochs == b.epochs


def test_autograd_fallback_writes_the_same_gradients():
    """Off the CPU, conv_step runs the autograd path into the gradient views; it must agree with the fast path."""
    layers, flat, x, y, g = _case("cnn1d", True)
    loss_fn = registry.get("loss", "cross_entropy").fn
    mult = (torch.rand(3, 7, 6, 20, generator=g, dtype=F64) > 0.3) / 0.7
    grads = [torch.zeros_like(flat.data) for _ in range(2)]
    a = conv.conv_step(flat.views, flat.grad_views(grads[0]), layers, x, y, act=torch.tanh, act_name="tanh", loss_fn=loss_fn,
                       dropout=lambda t, i: mult if i == 0 else torch.ones(t.shape, dtype=F64))
    b = conv._autograd_step(flat.views, flat.grad_views(grads[1]), layers, x, y, torch.tanh, loss_fn,
                            lambda t, i: mult if i == 0 else torch.ones(t.shape, dtype=F64))
    assert float((a - b).abs().max()) < 1e-12 and float((grads[0] - grads[1]).abs().max()) < 1e-10


@pytest.mark.parametrize("name,activation,chunk", [("mlp", "relu", None), ("mlp", "relu", 2), ("mlp", "tanh", 2),
                                                   ("cnn1d", "relu", None),
                                                   ("cnn1d", "tanh", 2), ("cnn2d-3ch-odd", "relu", 1),
                                                   ("cnn1d-tiny", "gelu", None)])
def test_layer_probes_through_the_hand_written_step_equal_autograd(monkeypatch, name, activation, chunk):
    """Layer probes of MLPs and CNNs take the step training takes (in its chunks of models): every statistic of
    every layer and model equals the autograd probes' (float64), ReLU's pre-activation included."""
    from ponder.train import dense, probes

    if name == "mlp":
        layers = build("mlp", (1, 12), 5, depth=3, width=9, kernel_size=0)
        gens = [torch.Generator().manual_seed(10 + i) for i in range(3)]
        params = init_population(layers, [("torch.kaiming_normal", {})] * 3, gens, F64)
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(3, 7, 1, 12, generator=g, dtype=F64), torch.randint(0, 5, (3, 7), generator=g)
        flat = flatten(params)
    else:
        layers, flat, x, y, _ = _case(name, True)
    if chunk is not None:  # chunks of `chunk` models in both hand-written steps
        monkeypatch.setattr(dense, "CHUNK_ELEMENTS", chunk * x.shape[1] * max(l.out_shape[0] for l in layers))
        monkeypatch.setattr(conv, "_chunk", lambda layers, m, bsz: chunk)
    act, loss_fn = registry.get("activation", activation).fn, registry.get("loss", "cross_entropy").fn
    by_autograd = probes.layer_stats(flat.views, layers, act, loss_fn, x, y)
    calls = []
    monkeypatch.setattr(probes, "forward", lambda *a, **k: calls.append(1))  # the autograd path is not taken
    by_hand = probes.layer_stats(flat.views, layers, act, loss_fn, x, y, act_name=activation)
    assert not calls and len(by_hand) == len(by_autograd) == len(layers)
    for row_h, row_a in zip(by_hand, by_autograd):
        assert row_h.keys() == row_a.keys()
        for key in row_a:
            assert torch.allclose(row_h[key], row_a[key], rtol=1e-9, atol=1e-12, equal_nan=True), (key, row_h[key], row_a[key])
    if activation == "relu":
        assert by_hand[0]["zero_frac"].min() > 0 and (by_hand[0]["preact_std"] > 0).all()


@pytest.mark.parametrize("name", ["cnn1d", "cnn2d-3ch-odd"])
def test_conv_logits_keeps_its_zero_bordered_buffers_without_leaking_between_calls(name):
    """Evaluation's forward (conv_logits) keeps its padded buffers per population: calls with other examples, other
    batch sizes and another population in between all give the logits of the autograd forward."""
    (layers, a, xa, _, g), (_, b, xb, _, _) = _case(name, True), _case(name, True, m=2, bsz=5)
    calls = [(a, xa), (b, xb), (a, xa[:, :4]), (a, torch.randn(xa.shape, generator=g, dtype=F64)), (b, 2 * xb), (a, xa)]
    for flat, x in calls:
        got = conv.conv_logits(flat.views, layers, x, act=torch.relu, act_name="relu")
        torch.testing.assert_close(got, forward(flat.views, layers, x, torch.relu), rtol=0, atol=1e-10)
    assert conv._WORKSPACES.get(a.data) and conv._LOCAL.ws is None  # kept with the parameters, none left active
