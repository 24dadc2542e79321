"""Mean-field theory against closed forms, the published tanh critical line, and a wide random net."""

from __future__ import annotations

import importlib
import math

import pytest
import torch

from ponder import registry
from ponder.errors import PonderError

mf = importlib.import_module("ponder.theory.meanfield")


@pytest.mark.parametrize("sw2, sb2", [(1.0, 0.1), (1.5, 0.3), (0.5, 0.0)])
def test_relu_closed_forms(sw2, sb2):
    r = mf.meanfield("relu", sw2, sb2)
    assert r.chi1 == pytest.approx(sw2 / 2)
    assert r.q_star == pytest.approx(sb2 / (1 - sw2 / 2))
    assert r.xi_c == pytest.approx(-1 / math.log(sw2 / 2))


def test_relu_and_linear_critical_points():
    assert mf.critical_sigma_w2("relu") == 2.0 and mf.critical_sigma_w2("identity") == 1.0
    assert mf.meanfield("identity", 0.8, 0.2).chi1 == pytest.approx(0.8)
    assert mf.meanfield("relu", 2.0, 0.0).phase == "critical"
    with pytest.raises(PonderError, match="single point"):
        mf.critical_sigma_w2("relu", 0.1)


def test_quadrature_matches_the_relu_closed_form():
    # tanh-like quadrature path on relu-shaped integrands: E[relu(sqrt(q) z)^2] = q / 2
    assert mf.expect("relu", 3.0) == pytest.approx(1.5, rel=1e-8)
    assert mf.expect("relu", 3.0, "dphi2") == pytest.approx(0.5, rel=1e-8)


def test_tanh_at_zero_bias():
    assert mf.fixed_point_q("tanh", 0.9, 0.0) == 0.0
    assert mf.chi1("tanh", 0.9, 0.0) == pytest.approx(0.9, rel=1e-6)
    assert mf.critical_sigma_w2("tanh", 0.0) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("sb2, sw2, q", [(0.01, 1.424, 0.273), (0.05, 1.761, 0.570), (0.10, 1.986, 0.806),
                                         (0.30, 2.505, 1.461), (1.00, 3.443, 3.036)])
def test_tanh_critical_line(sb2, sw2, q):
    s = mf.critical_sigma_w2("tanh", sb2)
    assert s == pytest.approx(sw2, abs=1e-3)
    assert mf.fixed_point_q("tanh", s, sb2) == pytest.approx(q, abs=1e-3)


def test_phases_and_depth_scales():
    ordered = mf.meanfield("tanh", 1.2, 0.1)
    chaotic = mf.meanfield("tanh", 3.0, 0.05)
    assert ordered.phase == "ordered" and ordered.c_star == 1.0 and ordered.xi_c == pytest.approx(-1 / math.log(ordered.chi1))
    assert chaotic.phase == "chaotic" and 0 < chaotic.c_star < 1 and math.isfinite(chaotic.xi_c)
    near = mf.meanfield("tanh", mf.critical_sigma_w2("tanh", 0.05) * 1.01, 0.05)
    assert near.xi_c > 50 > chaotic.xi_c  # the correlation depth scale diverges at criticality


def test_kinked_activations_at_zero_bias_use_one_sided_limits():
    # SELU: E[phi'(0+/-)^2] = (lambda^2 + (lambda alpha)^2) / 2; penalized tanh: (1 + 0.25^2) / 2
    lam, alpha = 1.0507009873554805, 1.6732632423543772
    assert mf.critical_sigma_w2("selu") == pytest.approx(2 / (lam**2 * (1 + alpha**2)), rel=1e-4)
    assert mf.critical_sigma_w2("penalized_tanh") == pytest.approx(2 / 1.0625, rel=1e-4)


def test_prediction_matches_a_wide_random_network():
    """q^l measured in a 1500-wide tanh net at initialization follows the length map."""
    sw2, sb2, width, depth = 1.8, 0.05, 1500, 8
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(64, width, generator=gen, dtype=torch.float64)  # q^0 = 1
    q = 1.0
    for _ in range(depth):
        w = torch.randn(width, width, generator=gen, dtype=torch.float64) * math.sqrt(sw2 / width)
        b = torch.randn(width, generator=gen, dtype=torch.float64) * math.sqrt(sb2)
        h = torch.tanh(h) @ w.t() + b
        q = sw2 * mf.expect("tanh", q) + sb2
        assert h.pow(2).mean().item() == pytest.approx(q, rel=0.05)


def test_unknown_activation():
    with pytest.raises(Exception, match="unknown activation"):
        mf.meanfield("tanhh", 1.0)
    assert set(registry.names("activation")) >= {"tanh", "relu"}
