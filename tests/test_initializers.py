"""The initializer atlas: every entry against its formula, and against the real libraries
(PyTorch and OpenCV bit for bit, Keras bit for bit on its numpy backend and by distribution on
its torch backend); Caffe, which cannot be installed, against its published formulas."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from scipy import stats

import ponder
from ponder import registry
from ponder.catalog.initializers import caffe, init_network
from ponder.catalog.initializers.base import dense_forward, fans_caffe, fans_keras, fans_torch, to_keras_layout
from ponder.catalog.initializers.opencv import CvRNG
from ponder.catalog.initializers.torch_ import calculate_gain
from ponder.errors import CatalogError, PonderError

LAYER = [e.name for e in registry.entries("initializer") if not e.meta.get("network")]
NETWORK = [e.name for e in registry.entries("initializer") if e.meta.get("network")]
DENSE_ONLY = {"torch.eye", "torch.sparse", "keras.identity"}
CONV_ONLY = {"torch.dirac", "caffe.bilinear"}
CTX = {"activation": "tanh"}


def g(seed=0):
    return torch.Generator().manual_seed(seed)


def test_entry_count_is_pinned():
    assert len(registry.names("initializer")) == 50
    assert sorted(NETWORK) == ["lsuv", "nguyen_widrow_1990", "opencv.nguyen_widrow"]
    assert len(registry.names("initializer", "caffe.*")) == 8  # seven fillers + the unset default
    assert {"keras.he_normal", "tf1.truncated_normal", "tf1.variance_scaling", "critical", "lsuv", "orthogonal"} <= set(registry.names("initializer"))


@pytest.mark.parametrize("name", LAYER)
def test_layer_entry_shape_determinism_and_no_global_rng(name):
    shapes = [(8, 16, 3, 3)] if name in CONV_ONLY else [(12, 20)] if name in DENSE_ONLY else [(12, 20), (6, 4, 5), (8, 4, 3, 3)]
    needs = registry.get("initializer", name).meta.get("needs", ())
    extra = {k: CTX[k] for k in needs if k in CTX}
    for shape in shapes:
        before = torch.random.get_rng_state()
        np_before = np.random.get_state()[1].copy()
        a = ponder.init(name, shape, generator=g(5), **extra)
        b = ponder.init(name, shape, generator=g(5), **extra)
        assert torch.equal(torch.random.get_rng_state(), before), "touched the global torch RNG"
        assert np.array_equal(np.random.get_state()[1], np_before), "touched the global numpy RNG"
        assert a.shape == shape and a.dtype == torch.float32 and torch.isfinite(a).all()
        assert torch.equal(a, b)
        assert ponder.init(name, shape, generator=g(5), dtype=torch.float64, **extra).dtype == torch.float64


@pytest.mark.parametrize("name", [e.name for e in registry.entries("initializer")])
def test_every_entry_documents_its_math(name):
    e = registry.get("initializer", name)
    assert e.formula and e.cites and e.source and len(e.doc) > 40 and "sigma_w2" in e.meta


# --- PyTorch: bit for bit -----------------------------------------------------------------------

TORCH_CASES = [
    ("torch.uniform", {}, lambda t, gen: nn.init.uniform_(t, generator=gen)),
    ("torch.uniform", {"a": -0.3, "b": 0.7}, lambda t, gen: nn.init.uniform_(t, -0.3, 0.7, generator=gen)),
    ("torch.normal", {"std": 0.02}, lambda t, gen: nn.init.normal_(t, std=0.02, generator=gen)),
    ("torch.trunc_normal", {"std": 0.5}, lambda t, gen: nn.init.trunc_normal_(t, std=0.5, generator=gen)),
    ("torch.trunc_normal", {"std": 1.0, "a": -0.1, "b": 0.3}, lambda t, gen: nn.init.trunc_normal_(t, 0.0, 1.0, -0.1, 0.3, generator=gen)),
    ("torch.xavier_uniform", {"gain": 2.0}, lambda t, gen: nn.init.xavier_uniform_(t, gain=2.0, generator=gen)),
    ("torch.xavier_normal", {}, lambda t, gen: nn.init.xavier_normal_(t, generator=gen)),
    ("torch.kaiming_uniform", {}, lambda t, gen: nn.init.kaiming_uniform_(t, generator=gen)),
    ("torch.kaiming_uniform", {"mode": "fan_out", "nonlinearity": "tanh"}, lambda t, gen: nn.init.kaiming_uniform_(t, mode="fan_out", nonlinearity="tanh", generator=gen)),
    ("torch.kaiming_normal", {}, lambda t, gen: nn.init.kaiming_normal_(t, generator=gen)),
    ("torch.kaiming_normal", {"a": 0.2, "mode": "fan_out"}, lambda t, gen: nn.init.kaiming_normal_(t, a=0.2, mode="fan_out", generator=gen)),
    ("torch.orthogonal", {"gain": 1.5}, lambda t, gen: nn.init.orthogonal_(t, gain=1.5, generator=gen)),
    ("torch.constant", {"val": 0.3}, lambda t, gen: nn.init.constant_(t, 0.3)),
    ("torch.ones", {}, lambda t, gen: nn.init.ones_(t)),
    ("torch.zeros", {}, lambda t, gen: nn.init.zeros_(t)),
]


@pytest.mark.parametrize("shape", [(30, 17), (16, 8, 5), (8, 6, 3, 3), (4, 12, 3, 3)])
@pytest.mark.parametrize("name, params, ref", TORCH_CASES, ids=[f"{c[0]}{c[1]}" for c in TORCH_CASES])
def test_torch_bit_exact(name, params, ref, shape):
    ours = ponder.init(name, shape, generator=g(11), **params)
    theirs = ref(torch.empty(shape), g(11))
    assert torch.equal(ours, theirs)


def test_torch_eye_dirac_default_and_gain_table():
    assert torch.equal(ponder.init("torch.eye", (4, 6), generator=g()), nn.init.eye_(torch.empty(4, 6)))
    for shape, groups in (((6, 4, 3, 3), 2), ((4, 4, 3), 1), ((6, 3, 3, 3, 3), 3)):
        assert torch.equal(ponder.init("torch.dirac", shape, generator=g(), groups=groups), nn.init.dirac_(torch.empty(shape), groups))
    torch.manual_seed(3)
    lin = nn.Conv2d(16, 32, 3, groups=4)
    w = ponder.init("torch.default", (32, 4, 3, 3), generator=g(3))
    assert torch.equal(w, lin.weight.data)
    for nl, p in (("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
                  ("leaky_relu", 0.2), ("selu", None), ("conv_transpose2d", None)):
        assert calculate_gain(nl, p) == nn.init.calculate_gain(nl, p)
    with pytest.raises(CatalogError):
        calculate_gain("leaky_relu", True)


def test_torch_sparse_structure_and_draws():
    ours = ponder.init("torch.sparse", (20, 7), generator=g(4), sparsity=0.3)
    normal = torch.empty(20, 7).normal_(0, 0.01, generator=g(4))
    zeros = (ours == 0).sum(0)
    assert (zeros == math.ceil(0.3 * 20)).all()
    nz = ours != 0
    assert torch.equal(ours[nz], normal[nz])


# --- Fans ---------------------------------------------------------------------------------------

def test_fans_by_library():
    # dense, grouped conv, 1-D conv, transposed conv (torch layout (in, out/g, k, k))
    assert fans_torch((10, 20)) == (20, 10)
    assert fans_torch((32, 4, 3, 3)) == (36, 288)
    assert fans_torch((16, 32, 3, 3)) == (288, 144)  # ConvTranspose2d(16, 32, 3): torch's "fan_in" = out channels
    assert fans_caffe((10, 20)) == (20, 10) and fans_caffe((7,)) == (1, 7)
    assert fans_caffe((64, 3, 5, 5)) == (75, 1600)
    assert fans_keras(to_keras_layout((8, 4, 3, 3))) == (36, 72)
    assert fans_keras((3, 3, 4, 8)) == (36, 72) and fans_keras((1, 1, 1, 5, 6)) == (5, 6) and fans_keras((2, 3, 5)) == (6, 10)
    assert fans_keras(()) == (1, 1) and fans_keras((5,)) == (5, 5)
    assert fans_keras(to_keras_layout((8, 4, 3, 3), transposed=True)) == (36, 72)


# --- Caffe: exact where deterministic, by law where random --------------------------------------

BILINEAR = {1: [1], 2: [0.5, 0.5], 3: [0.5, 1, 0.5], 4: [0.25, 0.75, 0.75, 0.25], 5: [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3],
            6: [1 / 6, 1 / 2, 5 / 6, 5 / 6, 1 / 2, 1 / 6], 7: [0.25, 0.5, 0.75, 1, 0.75, 0.5, 0.25],
            8: [0.125, 0.375, 0.625, 0.875, 0.875, 0.625, 0.375, 0.125]}


@pytest.mark.parametrize("k", sorted(BILINEAR))
def test_caffe_bilinear_profiles(k):
    assert caffe.bilinear_kernel(k).tolist() == pytest.approx(BILINEAR[k])
    w = ponder.init("caffe.bilinear", (3, 1, k, k), generator=g(), dtype=torch.float64)
    want = torch.outer(torch.tensor(BILINEAR[k]), torch.tensor(BILINEAR[k])).double()
    assert all(torch.allclose(w[i, 0], want) for i in range(3))


def test_caffe_bilinear_refuses_bad_shapes():
    for shape in ((3, 4, 4), (2, 2, 3, 4)):
        with pytest.raises(CatalogError, match="square kernel"):
            ponder.init("caffe.bilinear", shape, generator=g())


def test_caffe_constant_default_and_unitball():
    assert (ponder.init("caffe.constant", (4, 5), generator=g(), value=0.25) == 0.25).all()
    assert (ponder.init("caffe.default", (4, 5), generator=g()) == 0).all()
    w = ponder.init("caffe.positive_unitball", (6, 3, 2, 2), generator=g(), dtype=torch.float64)
    assert torch.allclose(w.reshape(6, -1).sum(1), torch.ones(6, dtype=torch.float64), atol=1e-12)
    assert (w >= 0).all() and (w <= 1).all()


def _ks(sample: torch.Tensor, cdf) -> float:
    return stats.kstest(sample.double().flatten().numpy(), cdf).pvalue


def test_caffe_random_fillers_by_law():
    n = 200_000
    u = ponder.init("caffe.uniform", (400, 500), generator=g(1), dtype=torch.float64, min=-0.5, max=1.5)
    assert u.min() >= -0.5 and u.max() <= 1.5 and _ks(u, stats.uniform(-0.5, 2.0).cdf) > 1e-3
    gs = ponder.init("caffe.gaussian", (400, 500), generator=g(2), dtype=torch.float64, mean=0.1, std=0.01)
    se = 0.01 / math.sqrt(n)
    assert abs(gs.mean().item() - 0.1) < 5 * se and _ks(gs, stats.norm(0.1, 0.01).cdf) > 1e-3
    sp = ponder.init("caffe.gaussian", (50, 400), generator=g(3), dtype=torch.float64, sparse=10)
    frac = (sp != 0).double().mean().item()
    assert abs(frac - 10 / 50) < 5 * math.sqrt(0.2 * 0.8 / sp.numel())
    with pytest.raises(CatalogError, match="exceeds shape"):
        ponder.init("caffe.gaussian", (5, 4), generator=g(), sparse=6)
    with pytest.raises(CatalogError, match="std > 0"):
        ponder.init("caffe.gaussian", (5, 4), generator=g(), std=0.0)


@pytest.mark.parametrize("norm, bound", [("fan_in", 0.2), ("fan_out", math.sqrt(3 / 1600)), ("average", math.sqrt(3 / 837.5))])
def test_caffe_xavier_bounds(norm, bound):
    w = ponder.init("caffe.xavier", (64, 3, 5, 5), generator=g(7), dtype=torch.float64, variance_norm=norm)
    assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound
    assert _ks(w, stats.uniform(-bound, 2 * bound).cdf) > 1e-3


def test_caffe_msra_std_and_xavier_is_lecun_not_glorot():
    w = ponder.init("caffe.msra", (64, 3, 5, 5), generator=g(8), dtype=torch.float64)
    assert w.std().item() == pytest.approx(math.sqrt(2 / 75), rel=5 / math.sqrt(2 * w.numel()))
    assert _ks(w, stats.norm(0, math.sqrt(2 / 75)).cdf) > 1e-3
    caffe_x = ponder.init("caffe.xavier", (100, 400), generator=g(), dtype=torch.float64)
    glorot = ponder.init("keras.glorot_uniform", (100, 400), generator=g(), dtype=torch.float64)
    assert caffe_x.var().item() == pytest.approx(1 / 400, rel=0.02)
    assert glorot.var().item() == pytest.approx(2 / 500, rel=0.02)


# --- OpenCV: bit for bit against cv2.ml.ANN_MLP -------------------------------------------------

def _opencv_initial_weights(sizes, trains=1):
    import cv2  # a test dependency (opencv-python-headless 4.x, which still has cv2.ml)

    m = cv2.ml.ANN_MLP_create()
    m.setLayerSizes(np.array(sizes))
    m.setActivationFunction(cv2.ml.ANN_MLP_SIGMOID_SYM)
    m.setTrainMethod(cv2.ml.ANN_MLP_RPROP)
    m.setRpropDW0(0.0)  # the first RPROP step is 0: the weights after one iteration are the initial ones
    m.setTermCriteria((cv2.TERM_CRITERIA_COUNT, 1, 0))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, sizes[0])).astype(np.float32)
    y = rng.normal(size=(16, sizes[-1])).astype(np.float32)
    for _ in range(trains):
        m.train(x, cv2.ml.ROW_SAMPLE, y)
    return [m.getWeights(i) for i in range(1, len(sizes))]


@pytest.mark.parametrize("sizes", [[3, 5, 2], [40, 100, 100, 10], [2, 2, 1], [7, 3, 4, 2], [64, 2, 10]])
def test_opencv_nguyen_widrow_bit_exact(sizes):
    ref = _opencv_initial_weights(sizes)
    shapes = [(b, a) for a, b in zip(sizes[:-1], sizes[1:])]
    ours = init_network("opencv.nguyen_widrow", shapes, generator=g(), dtype=torch.float64, rng="opencv")
    for (w, b), cvw in zip(ours, ref):
        assert np.array_equal(torch.cat([w.t(), b[None]]).numpy(), cvw)


def test_opencv_structure_and_stream():
    sizes = [6, 8, 3]
    (w1, b1), (w2, b2) = init_network("opencv.nguyen_widrow", [(8, 6), (3, 8)], generator=g(), dtype=torch.float64, rng="opencv")
    assert torch.allclose(w1.abs().sum(1), torch.ones(8, dtype=torch.float64))  # hidden columns: L1 norm 1 over inputs
    gain = 0.7 * 6 ** (1 / 7)
    ramp = torch.tensor([gain * (-1 + 2 * j / 8) for j in range(8)], dtype=torch.float64)
    assert (b1.abs() <= ramp.abs() + 1e-12).all() and b1[4] == 0  # j = n2/2 has bias exactly 0
    assert w2.abs().max() < 1 and b2.abs().max() < 1  # output layer: raw U[-1, 1)
    # a second train() continues the same stream
    second = _opencv_initial_weights(sizes, trains=2)
    rng = CvRNG()
    for _ in range((6 + 1) * 8 + (8 + 1) * 3):
        rng.uniform01()
    assert not np.array_equal(second[0], torch.cat([w1.t(), b1[None]]).numpy())


def test_nguyen_widrow_1990_norms():
    params = init_network("nguyen_widrow_1990", [(10, 4), (3, 10)], generator=g(), dtype=torch.float64)
    beta = 0.7 * 10 ** (1 / 4)
    w, b = params[0]
    assert torch.allclose(w.norm(dim=1), torch.full((10,), beta, dtype=torch.float64))
    assert b.abs().max() <= beta


# --- Keras: bit for bit (numpy backend) and by law (torch backend), in subprocesses ---------------

KERAS_SCRIPT = r"""
import json, sys, numpy as np, torch, keras, ponder
from ponder.catalog.initializers.base import to_keras_layout, from_keras_layout
cases = json.loads(sys.argv[1])
out = []
for name, cls, params, shape in cases:
    ours = ponder.init(name, shape, generator=torch.Generator(), seed=123, **params)
    ref = getattr(keras.initializers, cls)(seed=123, **params)(to_keras_layout(shape))
    ref = from_keras_layout(torch.from_numpy(np.asarray(ref)))
    out.append(bool(torch.equal(ours, ref)))
print(json.dumps(out))
"""

KERAS_CASES = [[n, c, p, s] for n, c, p in [
    ("keras.glorot_uniform", "GlorotUniform", {}), ("keras.glorot_normal", "GlorotNormal", {}),
    ("keras.he_normal", "HeNormal", {}), ("keras.he_uniform", "HeUniform", {}),
    ("keras.lecun_normal", "LecunNormal", {}), ("keras.lecun_uniform", "LecunUniform", {}),
    ("keras.orthogonal", "Orthogonal", {}), ("keras.orthogonal", "Orthogonal", {"gain": 2.0}),
    ("keras.random_normal", "RandomNormal", {}), ("keras.random_uniform", "RandomUniform", {"minval": -0.2, "maxval": 0.3}),
    ("keras.truncated_normal", "TruncatedNormal", {"stddev": 0.3}),
    ("keras.variance_scaling", "VarianceScaling", {"scale": 3.0, "mode": "fan_out", "distribution": "untruncated_normal"}),
    ("keras.variance_scaling", "VarianceScaling", {"scale": 0.5, "mode": "fan_avg", "distribution": "normal"}),
] for s in ([5, 7], [8, 4, 3, 3], [4, 10], [10, 4, 5])]


def _run_keras(backend: str, script: str, arg: str) -> str:
    env = dict(os.environ, KERAS_BACKEND=backend)
    r = subprocess.run([sys.executable, "-c", script, arg], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.strip().splitlines()[-1]


def test_keras_bit_exact_on_numpy_backend():
    result = json.loads(_run_keras("numpy", KERAS_SCRIPT, json.dumps(KERAS_CASES)))
    failed = [c for c, ok in zip(KERAS_CASES, result) if not ok]
    assert not failed


KERAS_TORCH_SCRIPT = r"""
import json, numpy as np, torch, keras, ponder
from scipy import stats
from ponder.catalog.initializers.base import to_keras_layout, from_keras_layout
out = {}
for name, cls, shape in [("keras.he_normal", "HeNormal", (500, 400)), ("keras.glorot_uniform", "GlorotUniform", (300, 500)),
                         ("keras.glorot_normal", "GlorotNormal", (32, 16, 3, 3)), ("keras.lecun_uniform", "LecunUniform", (64, 32, 5))]:
    ref = from_keras_layout(torch.from_numpy(np.asarray(getattr(keras.initializers, cls)(seed=5)(to_keras_layout(shape))))).double()
    ours = ponder.init(name, shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    out[name] = [float(stats.ks_2samp(ref.flatten().numpy(), ours.flatten().numpy()).pvalue), float(ref.std()), float(ours.std())]
print(json.dumps(out))
"""


def test_keras_same_law_on_torch_backend():
    res = json.loads(_run_keras("torch", KERAS_TORCH_SCRIPT, ""))
    for name, (p, sd_ref, sd_ours) in res.items():
        assert p > 1e-3, (name, p)
        assert sd_ours == pytest.approx(sd_ref, rel=0.02), name


def test_keras_laws_and_tf1_differences():
    he = ponder.init("keras.he_normal", (1000, 1000), generator=g(), dtype=torch.float64)
    assert he.std().item() == pytest.approx(math.sqrt(2 / 1000), rel=0.01)
    assert he.abs().max().item() <= 2 * math.sqrt(2 / 1000) / 0.87962566103423978 + 1e-12
    old = ponder.init("tf1.variance_scaling", (1000, 1000), generator=g(), dtype=torch.float64, scale=2.0)
    assert old.std().item() == pytest.approx(0.8796 * math.sqrt(2 / 1000), rel=0.01)  # 12% smaller
    tn = ponder.init("tf1.truncated_normal", (500, 500), generator=g(), dtype=torch.float64)
    assert tn.std().item() == pytest.approx(0.8796, rel=0.01) and tn.abs().max() <= 2
    ktn = ponder.init("keras.truncated_normal", (500, 500), generator=g(), dtype=torch.float64)
    assert ktn.std().item() == pytest.approx(0.05 * 0.8796, rel=0.01)
    assert torch.equal(ponder.init("keras.identity", (3, 5), generator=g(), gain=2.0), 2 * torch.eye(3, 5))
    k = ponder.init("keras.orthogonal", (8, 4, 3, 3), generator=g(), dtype=torch.float64)
    cols = k.reshape(8, -1)  # each output filter is a unit vector, orthogonal to the others
    assert torch.allclose(cols @ cols.t(), torch.eye(8, dtype=torch.float64), atol=1e-10)


# --- Modern: LSUV, orthogonal, gain-matched, critical ------------------------------------------

@pytest.mark.parametrize("measure", ["preact", "postact"])
def test_lsuv_postcondition(measure):
    x = torch.randn(256, 20, generator=g(1), dtype=torch.float64) * 3
    shapes = [(50, 20), (50, 50), (50, 50), (10, 50)]
    fwd = dense_forward(x, torch.tanh)
    params = init_network("lsuv", shapes, generator=g(2), dtype=torch.float64, context={"forward": fwd}, measure=measure, tol_var=0.02, t_max=20)
    for i in range(len(shapes)):
        v = float(fwd(params, i, measure == "postact").var())
        if not (measure == "postact" and abs(v - 1) > 0.02):  # saturated tanh can cap the post-activation variance
            assert abs(v - 1) < 0.02, (i, v)
    assert all((b == 0).all() for _, b in params)  # the paper's variant never touches biases
    pre = init_network("lsuv", shapes, generator=g(2), dtype=torch.float64, context={"forward": fwd}, t_max=0)
    for (w, _), s in zip(pre, shapes):  # orthonormal pre-init: rows orthonormal where rows <= cols
        m = w.reshape(s[0], -1)
        gram = m @ m.t() if s[0] <= m.shape[1] else m.t() @ m
        assert torch.allclose(gram, torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-10)


def test_lsuv_needs_data():
    with pytest.raises(CatalogError, match="needs forward"):
        init_network("lsuv", [(4, 3)], generator=g())


def test_orthogonal_auto_gain_and_gain_matched():
    w = ponder.init("orthogonal", (64, 64), generator=g(), dtype=torch.float64, activation="relu", gain="auto")
    assert torch.allclose(w @ w.t(), 2 * torch.eye(64, dtype=torch.float64), atol=1e-10)
    gm = ponder.init("gain_matched", (2000, 500), generator=g(), dtype=torch.float64, activation="relu")
    assert gm.var().item() * 500 == pytest.approx(2.0, rel=0.01)


def test_critical_uses_the_mean_field_line():
    w, b = init_network("critical", [(1000, 500)], generator=g(), dtype=torch.float64, context={"activation": "tanh"}, sigma_b2=0.05)[0]
    assert w.var().item() * 500 == pytest.approx(1.7610, rel=0.01)
    assert b.var().item() == pytest.approx(0.05, rel=0.15)
    w, b = init_network("critical", [(1000, 500)], generator=g(), dtype=torch.float64, context={"activation": "relu"})[0]
    assert w.var().item() * 500 == pytest.approx(2.0, rel=0.01) and (b == 0).all()
    with pytest.raises(PonderError, match="single point"):
        init_network("critical", [(10, 5)], generator=g(), context={"activation": "relu"}, sigma_b2=0.1)


def test_aliases_warn_and_resolve():
    with pytest.warns(FutureWarning, match="torch.kaiming_normal"):
        w = ponder.init("he_normal", (4, 5), generator=g(1))
    assert torch.equal(w, ponder.init("torch.kaiming_normal", (4, 5), generator=g(1)))


def test_ponder_init_takes_a_study_level_and_refuses_bad_arguments_in_one_sentence():
    import ponder
    from ponder.errors import CatalogError

    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    written = ponder.init("caffe.gaussian(std=0.5)", (64, 32), generator=g())
    assert torch.equal(written, ponder.init("caffe.gaussian", (64, 32), generator=g(), std=0.5))  # as a study writes it
    for name, shape, needle in [("torch.kaiming_normal", (-1, 3), "shape must be positive whole numbers"),
                                ("torch.kaiming_normal", "4,3", "shape must be positive whole numbers"),
                                ("torch.kaiming_normal", (4, 2.5), "shape must be positive whole numbers"),
                                (None, (4, 3), "named by a string")]:
        with pytest.raises(CatalogError, match=needle):
            ponder.init(name, shape, generator=g())
    with pytest.raises(CatalogError, match="needs an explicit generator"):
        ponder.init("torch.kaiming_normal", (4, 3))
