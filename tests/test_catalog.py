"""Catalog entries: registry behaviour, activations, losses and the first initializers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

import ponder
from ponder import registry
from ponder.catalog.activations import numerical_gain
from ponder.errors import CatalogError

ACTIVATIONS = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "softplus", "softsign",
               "mish", "penalized_tanh", "hardtanh", "identity"]


def test_entry_counts_are_pinned():
    # A new entry must update this test on purpose.
    assert registry.names("activation") == sorted(ACTIVATIONS, key=str.lower)
    assert registry.names("loss") == ["cross_entropy", "squared_error", "squared_error_softmax"]
    assert set(registry.names("initializer")) >= {"torch.default", "torch.xavier_uniform", "torch.kaiming_normal"}
    assert registry.names("dataset") == ["cifar10_bin", "digits", "mnist1d", "mnist_idx", "npz", "spirals", "teacher"]
    assert registry.names("model") == ["cnn1d", "cnn2d", "hog_svm", "logreg", "mlp"]


@pytest.mark.parametrize("kind", registry.KINDS)
def test_every_entry_has_formula_citation_and_docstring(kind):
    for e in registry.entries(kind):
        assert e.formula and e.cites and e.source and e.doc, e.name


def test_miss_names_closest_and_list_command():
    with pytest.raises(CatalogError) as info:
        registry.get("initializer", "kaiming_norml")
    assert "did you mean 'torch.kaiming_normal'" in str(info.value) and "ponder list initializers" in str(info.value)
    msg = str(pytest.raises(CatalogError, registry.get, "initializer", "default").value)
    assert "torch.default" in msg


def test_list_takes_wildcards():
    assert registry.names("activation", "*tanh") == ["hardtanh", "penalized_tanh", "tanh"]


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_values_and_finite_gradients(name):
    f = registry.get("activation", name).fn
    x = torch.linspace(-6, 6, 241, dtype=torch.float64, requires_grad=True)
    y = f(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    assert y.shape == x.shape and torch.isfinite(y).all() and torch.isfinite(g).all()


def test_activation_formulas_at_points():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], dtype=torch.float64)
    get = lambda n: registry.get("activation", n).fn(x)  # noqa: E731
    assert torch.allclose(get("penalized_tanh"), torch.where(x > 0, torch.tanh(x), 0.25 * torch.tanh(x)))
    assert torch.allclose(get("softsign"), x / (1 + x.abs()))
    assert torch.allclose(get("selu"), torch.nn.functional.selu(x))
    assert torch.allclose(get("swish"), x * torch.sigmoid(x))
    assert torch.allclose(get("mish"), x * torch.tanh(torch.log1p(torch.exp(x))))
    assert torch.allclose(get("elu"), torch.where(x > 0, x, torch.exp(x) - 1))


def test_numerical_gain_matches_closed_forms():
    assert numerical_gain(registry.get("activation", "identity").fn) == pytest.approx(1.0, abs=1e-10)
    # E[relu(z)^2] = 1/2 -> gain sqrt(2); quadrature is only approximate at the kink
    assert numerical_gain(registry.get("activation", "relu").fn) == pytest.approx(math.sqrt(2), rel=1e-2)


def test_cross_entropy_gradient_is_p_minus_onehot():
    z = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    y = torch.tensor([0, 3, 1, 4])
    loss = registry.get("loss", "cross_entropy").fn(z, y)
    assert torch.allclose(loss, nn.functional.cross_entropy(z, y, reduction="none"))
    (g,) = torch.autograd.grad(loss.sum(), z)
    assert torch.allclose(g, torch.softmax(z, -1) - nn.functional.one_hot(y, 5))


def test_squared_errors():
    z = torch.tensor([[2.0, 0.0, -1.0]], dtype=torch.float64)
    y = torch.tensor([0])
    assert registry.get("loss", "squared_error").fn(z, y).item() == pytest.approx(0.5 * (1 + 0 + 1))
    p = torch.softmax(z, -1)[0]
    want = 0.5 * ((p[0] - 1) ** 2 + p[1] ** 2 + p[2] ** 2)
    assert registry.get("loss", "squared_error_softmax").fn(z, y).item() == pytest.approx(want.item())



@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(10,), (7, 3), (6, 33, 10), (2, 3, 5, 2)])
def test_softmax_losses_over_classes_match_torch_on_population_shapes(dtype, shape):
    """The classes-first layout (losses.over_classes) is the same function as torch's along the last axis, values
    and gradients, for one example, a batch, a population (M, B, C) and more axes (up to float rounding), and
    its entries are at version 2 (their numbers changed at rounding level, so their runs have new ids)."""
    g = torch.Generator().manual_seed(len(shape))
    z = (4 * torch.randn(shape, dtype=dtype, generator=g)).requires_grad_()
    y = torch.randint(0, shape[-1], shape[:-1], generator=g)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    onehot = nn.functional.one_hot(y, shape[-1]).to(dtype)
    refs = {"cross_entropy": lambda t: -(nn.functional.log_softmax(t, -1) * onehot).sum(-1),
            "squared_error_softmax": lambda t: 0.5 * ((torch.softmax(t, -1) - onehot) ** 2).sum(-1)}
    for name, ref in refs.items():
        entry = registry.get("loss", name)
        got, want = entry.fn(z, y), ref(z)
        assert got.shape == want.shape == shape[:-1] and got.dtype == dtype
        torch.testing.assert_close(got, want, **tol)
        torch.testing.assert_close(torch.autograd.grad(got.sum(), z)[0], torch.autograd.grad(want.sum(), z)[0], **tol)
        assert entry.version == "2"

@pytest.mark.parametrize("fan_in", [1, 7, 40, 300, 784])
def test_torch_default_is_bit_exact_to_nn_linear(fan_in):
    seed = 1234 + fan_in
    torch.manual_seed(seed)  # nn.Linear draws from the global generator; tests may touch it
    lin = nn.Linear(fan_in, 17)
    g = torch.Generator().manual_seed(seed)
    w = ponder.init("torch.default", (17, fan_in), generator=g)
    b = ponder.catalog.initializers.draw_bias("fan_in_uniform", 17, fan_in, generator=g)
    assert torch.equal(w, lin.weight.data) and torch.equal(b, lin.bias.data)


def test_torch_default_conv_bit_exact():
    torch.manual_seed(7)
    conv = nn.Conv1d(4, 8, 5)
    g = torch.Generator().manual_seed(7)
    w = ponder.init("torch.default", (8, 4, 5), generator=g)
    b = ponder.catalog.initializers.draw_bias("fan_in_uniform", 8, 20, generator=g)
    assert torch.equal(w, conv.weight.data) and torch.equal(b, conv.bias.data)


@pytest.mark.parametrize("shape", [(64, 32), (16, 8, 5), (8, 3, 3, 3)])
def test_glorot_and_he_bit_exact_to_torch_nn_init(shape):
    for name, ref in (("torch.xavier_uniform", lambda t, g: nn.init.xavier_uniform_(t, generator=g)),
                      ("torch.kaiming_normal", lambda t, g: nn.init.kaiming_normal_(t, generator=g))):
        ours = ponder.init(name, shape, generator=torch.Generator().manual_seed(3))
        theirs = ref(torch.empty(shape), torch.Generator().manual_seed(3))
        assert torch.equal(ours, theirs), name


def test_init_requires_generator_and_checks_rank():
    with pytest.raises(CatalogError, match="explicit generator"):
        ponder.init("torch.kaiming_normal", (3, 3), generator=None)
    with pytest.raises(CatalogError, match="at least 2 dimensions"):
        ponder.init("torch.kaiming_normal", (3,), generator=torch.Generator())


def test_he_normal_std_matches_formula():
    w = ponder.init("torch.kaiming_normal", (1000, 500), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # relative standard error of a normal sample std is 1/sqrt(2n); allow 5 of them
    assert w.std().item() == pytest.approx(math.sqrt(2 / 500), rel=5 / math.sqrt(2 * w.numel()))
    assert abs(w.mean().item()) < 5 * math.sqrt(2 / 500) / math.sqrt(w.numel())
    assert np.isclose(w.numel(), 500000)
