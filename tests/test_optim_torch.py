"""ponder's optimizers equal PyTorch's, model by model, in float64.

Semantics proven here (see :mod:`ponder.train.optim`):

- ``sgd``:      ``torch.optim.SGD(lr, weight_decay=wd)``
- ``momentum``: ``torch.optim.SGD(lr, momentum=mu, dampening=0, nesterov=False, weight_decay=wd)``
  (heavy ball, ``v <- mu v + g; p <- p - lr v``)
- ``adam``:     ``torch.optim.Adam(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)``: decay is
  L2 added to the gradient (coupled), *not* AdamW's decoupled decay.

Every test runs a population of three models with different learning rates and decays in one
flat buffer; each model is compared with its own torch optimizer.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ponder.catalog.datasets import load_pool
from ponder.catalog.models import build
from ponder.rng import rng_for
from ponder.train import ModelSettings, prepare_data, train_population
from ponder.train.optim import flatten, opt_init, opt_step

F64 = torch.float64
MOMENTUM = 0.9
STEPS = 20
TOL = 1e-10
LRS = {"sgd": [0.1, 0.03, 0.3], "momentum": [0.05, 0.01, 0.1], "adam": [0.01, 0.003, 0.03]}
DECAYS = [1e-2, 0.0, 5e-2]  # one model without decay: zeros inside the per-element buffer


def _torch_opt(kind: str, params, lr: float, wd: float) -> torch.optim.Optimizer:
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    if kind == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=MOMENTUM, dampening=0.0, nesterov=False, weight_decay=wd)
    return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd, amsgrad=False)


# -- the optimizer alone: a 2-layer MLP on fixed random data ---------------------------------------


def _problem(m: int = 3, d: int = 5, h: int = 7, c: int = 3, b: int = 11):
    """Stacked initial weights [(W1, b1), (W2, b2)] (model axis first) and per-model data x (M, B, d), y (M, B)."""
    g = torch.Generator().manual_seed(0)
    params = [(torch.randn(m, h, d, generator=g, dtype=F64) / d**0.5, 0.1 * torch.randn(m, h, generator=g, dtype=F64)),
              (torch.randn(m, c, h, generator=g, dtype=F64) / h**0.5, 0.1 * torch.randn(m, c, generator=g, dtype=F64))]
    return params, torch.randn(m, b, d, generator=g, dtype=F64), torch.randint(0, c, (m, b), generator=g)


def _loss(w1, b1, w2, b2, x, y) -> torch.Tensor:
    """Mean cross-entropy of one model on x (B, d), y (B,)."""
    return F.cross_entropy(torch.tanh(x @ w1.T + b1) @ w2.T + b2, y)


def _ponder(kind: str, decay: bool, steps: int, freeze: tuple[int, int] | None = None):
    """Train the population with ponder's opt_step; ``freeze = (model, step)`` masks that model from that step on."""
    init, x, y = _problem()
    m = x.shape[0]
    flat = flatten(init)
    state = opt_init(kind, flat.data)
    lr = flat.per_element(torch.tensor(LRS[kind], dtype=F64))
    wd = flat.per_element(torch.tensor(DECAYS, dtype=F64)) if decay else None
    leaves = [t for pair in flat.views for t in pair]  # W1, b1, W2, b2, each (M, ...)
    for t in range(steps):
        total = sum(_loss(*(p[k] for p in leaves), x[k], y[k]) for k in range(m))
        grad = flat.flat_grad(torch.autograd.grad(total, leaves))
        keep = None
        if freeze is not None and t >= freeze[1]:
            keep = flat.per_element(torch.arange(m) != freeze[0])
        opt_step(state, flat.data, grad, lr=lr, weight_decay=wd, momentum=MOMENTUM, keep=keep)
    return [[p[k].detach() for p in leaves] for k in range(m)]


def _torch(kind: str, decay: bool, k: int, steps: int, opt_cls=None) -> list[torch.Tensor]:
    """Model k of the same population trained alone by a torch optimizer."""
    init, x, y = _problem()
    params = [t[k].clone().requires_grad_() for pair in init for t in pair]
    wd = DECAYS[k] if decay else 0.0
    opt = _torch_opt(kind, params, LRS[kind][k], wd) if opt_cls is None else opt_cls(params, lr=LRS[kind][k], weight_decay=wd)
    for _ in range(steps):
        opt.zero_grad()
        _loss(*params, x[k], y[k]).backward()
        opt.step()
    return [p.detach() for p in params]


def _max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((u - v).abs().max()) for u, v in zip(a, b))


@pytest.mark.parametrize("decay", [False, True], ids=["no_decay", "decay"])
@pytest.mark.parametrize("kind", ["sgd", "momentum", "adam"])
def test_opt_step_equals_torch_optim_per_model(kind, decay):
    init, _, _ = _problem()
    got = _ponder(kind, decay, STEPS)
    for k in range(len(got)):
        want = _torch(kind, decay, k, STEPS)
        assert _max_diff(got[k], want) < TOL, f"model {k}"
        assert _max_diff(got[k], [t[k] for pair in init for t in pair]) > 1e-3  # it did train


@pytest.mark.parametrize("kind", ["sgd", "momentum", "adam"])
def test_masked_model_freezes_while_the_others_follow_torch(kind):
    got = _ponder(kind, True, STEPS, freeze=(1, 10))
    assert _max_diff(got[1], _torch(kind, True, 1, 10)) < TOL  # frozen after its 10th step
    for k in (0, 2):
        assert _max_diff(got[k], _torch(kind, True, k, STEPS)) < TOL


def test_adam_decay_is_l2_not_decoupled():
    got = _ponder("adam", True, STEPS)
    assert _max_diff(got[0], _torch("adam", True, 0, STEPS, opt_cls=torch.optim.AdamW)) > 1e-6


# -- the training loop: train_population against a plain torch loop on the same batches ---------


POP = [ModelSettings(0, 0.05, 0.0, "torch.default", {}, 0.0),
       ModelSettings(1, 0.10, 1e-3, "torch.kaiming_normal", {}, 0.0),
       ModelSettings(0, 0.02, 1e-2, "torch.xavier_uniform", {}, 0.0)]
ADAM_POP = [ModelSettings(s.seed, s.lr / 10, s.weight_decay, s.initializer, {}, 0.0) for s in POP]


def _torch_net(layers, init) -> torch.nn.Sequential:
    """The same architecture as torch modules, loaded with a model's initial weights."""
    mods: list[torch.nn.Module] = []
    for layer, (w, b) in zip(layers, init):
        if layer.flatten:
            mods.append(torch.nn.Flatten())
        if layer.kind == "dense":
            mod = torch.nn.Linear(w.shape[1], w.shape[0], dtype=F64)
        else:
            conv = torch.nn.Conv1d if layer.kind == "conv1d" else torch.nn.Conv2d
            mod = conv(w.shape[1], w.shape[0], w.shape[2], stride=layer.stride, padding=layer.padding, dtype=F64)
        with torch.no_grad():
            mod.weight.copy_(w)
            mod.bias.copy_(b)
        mods += [mod, torch.nn.Tanh()] if layer.hidden else [mod]
    return torch.nn.Sequential(*mods)


@pytest.mark.parametrize("arch,optimizer", [("mlp", "sgd"), ("mlp", "momentum"), ("mlp", "adam"), ("cnn1d", "momentum")])
def test_train_population_equals_plain_torch_loop(arch, optimizer):
    """Each model of a trained population equals a torch.nn model trained by torch.optim on the same batches.

    The data order is ponder's contract: per epoch, one ``randperm`` of the model's training
    indices from the stream ``rng_for(seed, "order")``. MLPs also exercise the hand-written
    backward (train/dense.py), CNNs autograd.
    """
    models = ADAM_POP if optimizer == "adam" else POP
    dataset, options, sizes = ("spirals", {"n_train": 300, "n_test": 50}, (60, 12)) if arch == "mlp" else \
        ("mnist1d", {"num_samples": 400}, (50, 4))
    pool = load_pool(dataset, options)
    layers = build(arch, pool.sample_shape, pool.n_classes, depth=2, width=sizes[1], kernel_size=3)
    data = prepare_data(pool, seeds=[m.seed for m in models], label_noise=[0.1] * len(models), val_fraction=0.2,
                        train_size=sizes[0], dtype=F64)
    epochs, batch = 2, 16  # 60 or 50 examples: the last batch of each epoch is short
    recs = train_population(layers, models, data, activation="tanh", loss="cross_entropy", optimizer=optimizer,
                            momentum=MOMENTUM, epochs=epochs, batch_size=batch, dtype=F64, probes=False, keep_params=True)
    for k, (m, rec) in enumerate(zip(models, recs)):
        net = _torch_net(layers, rec.init)
        opt = _torch_opt(optimizer, net.parameters(), m.lr, m.weight_decay)
        order = rng_for(m.seed, "order")
        for _ in range(epochs):
            idx = data.train_idx[k][torch.randperm(data.train_idx.shape[1], generator=order)]
            for start in range(0, len(idx), batch):
                b = idx[start:start + batch]
                opt.zero_grad()
                F.cross_entropy(net(data.x_pool[b]), data.labels[k, b]).backward()
                opt.step()
        want = [p.detach() for mod in net if hasattr(mod, "weight") for p in (mod.weight, mod.bias)]
        got = [t for pair in rec.params for t in pair]
        assert rec.status == "ok" and rec.steps == epochs * -(-data.train_idx.shape[1] // batch)
        assert _max_diff(got, want) < TOL, f"model {k}"
        assert _max_diff(got, [t for pair in rec.init for t in pair]) > 1e-4  # it did train


@pytest.mark.parametrize("kind", ["sgd", "momentum", "adam"])
def test_frozen_models_keep_their_parameters_and_moments_and_the_others_their_bits(kind):
    """``keep`` (models marked diverged): their elements, NaN ones included, do not change; every other element gets
    exactly the bits of a step without ``keep``."""
    from ponder.train.optim import opt_init, opt_step

    g = torch.Generator().manual_seed(3)
    n = 4 * 257
    keep = torch.ones(n, dtype=torch.bool)
    keep[257:514] = False  # the second model is frozen
    data = [torch.randn(n, generator=g)]
    data[0][300] = float("nan")  # a diverged model's weight
    data.append(data[0].clone())
    lr = torch.full((n,), 0.05)
    states = [opt_init(kind, d) for d in data]
    for _ in range(4):
        grad = torch.randn(n, generator=g)
        before = [data[1].clone(), *(b.clone() for b in states[1].buffers)]
        opt_step(states[0], data[0], grad, lr=lr, weight_decay=None, momentum=0.9)
        opt_step(states[1], data[1], grad, lr=lr, weight_decay=None, momentum=0.9, keep=keep)
        for cur, prev in zip([data[1], *states[1].buffers], before):
            assert torch.equal(cur[~keep].view(torch.int32), prev[~keep].view(torch.int32))  # frozen: unchanged bits
    assert torch.equal(data[0][keep].view(torch.int32), data[1][keep].view(torch.int32))
    assert all(torch.equal(a[keep].view(torch.int32), b[keep].view(torch.int32))
               for a, b in zip(states[0].buffers, states[1].buffers))
