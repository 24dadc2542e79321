"""The atlas from the shell and in docs: ponder init, ponder theory, the generated docs page, the init study."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ponder.catalog.docs import initializers_markdown
from ponder.study import expand, load_study
from ponder.catalog.folklore import exact_fraction, near_zero_table, verdict
from tests.test_cli import ponder_cli

ROOT = Path(__file__).resolve().parents[1]


def test_docs_page_is_generated_from_the_catalog():
    page = (ROOT / "docs" / "initializers.md").read_text(encoding="utf-8")
    assert page == initializers_markdown(), "docs/initializers.md is stale: run python -m ponder.catalog.docs"
    assert "## Same name, different math" in page and "`opencv.nguyen_widrow`" in page


def test_ponder_init_shape_json_and_save(tmp_path):
    r = ponder_cli("init", "caffe.msra", "--shape", "256,128", "--json", "--save", tmp_path / "w.npy", "--seed", "3")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    (layer,) = info["layers"]
    assert layer["fan_in"] == 128 and layer["std"] == pytest.approx((2 / 128) ** 0.5, rel=0.02)
    w = np.load(tmp_path / "w.npy")
    assert w.shape == (256, 128) and float(w.std(ddof=1)) == pytest.approx(layer["std"])


def test_ponder_init_network_and_opencv_stream(tmp_path):
    r = ponder_cli("init", "opencv.nguyen_widrow", "--layers", "3,5,2", "--rng", "opencv", "--save", tmp_path / "nw.npz")
    assert r.returncode == 0, r.stderr
    z = np.load(tmp_path / "nw.npz")
    assert z["W0"].shape == (5, 3) and z["W1"].shape == (2, 5)
    assert z["W0"][0, 0] == pytest.approx(-0.57386316, abs=1e-8)  # OpenCV's first initial weight for 3-5-2
    r = ponder_cli("init", "lsuv", "--shape", "4,4")
    assert r.returncode == 2 and "use --layers" in r.stderr
    r = ponder_cli("init", "caffe.gaussian(stdd=1)", "--shape", "4,4")
    assert r.returncode == 2 and "did you mean 'std'" in r.stderr


def test_theory_commands(tmp_path):
    r = ponder_cli("theory", "critical", "--activation", "tanh", "--sigma-b2", "0.05")
    assert r.returncode == 0 and "1.76095" in r.stdout
    r = ponder_cli("theory", "meanfield", "--activation", "relu", "--sigma-w2", "2", "--json")
    assert json.loads(r.stdout)["phase"] == "critical"
    r = ponder_cli("theory", "phase", "--activation", "tanh", "--out", tmp_path / "p.png")
    assert r.returncode == 0 and (tmp_path / "p.png").stat().st_size > 10_000


def test_theory_phase_never_replaces_a_file_without_force(tmp_path):
    for name in ("mine.png", "mine.svg"):  # the PNG named, or the SVG written beside it
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        (folder / name).write_bytes(b"my own picture")
        r = ponder_cli("theory", "phase", "--activation", "tanh", "--out", folder / "mine.png")
        assert r.returncode == 2 and "exists already; pass --force" in r.stderr and name in r.stderr
        assert (folder / name).read_bytes() == b"my own picture"
    r = ponder_cli("theory", "phase", "--activation", "tanh", "--out", folder / "mine.png", "--force")
    assert r.returncode == 0 and (folder / "mine.svg").read_bytes() != b"my own picture"


def test_folklore_verdict_is_computed():
    assert exact_fraction("uniform", 0.25) == pytest.approx(0.25 / 3**0.5)
    assert exact_fraction("normal", 1.0) == pytest.approx(0.682689, abs=1e-6)
    assert "false" in verdict(0.25) and "normal law puts the most weight near 0" in verdict(0.25)
    rows = {r.name: r for r in near_zero_table(0.25)}
    for name in ("keras.glorot_uniform", "torch.kaiming_normal", "keras.he_normal"):
        assert rows[name].sampled == pytest.approx(rows[name].exact, abs=0.01)


def test_init_study_covers_the_seed():
    s = load_study("init")
    inits = s.factors["model.initializer"]
    for needed in ("opencv.nguyen_widrow", "caffe.xavier", "caffe.msra", "caffe.positive_unitball", "caffe.uniform",
                   "keras.glorot_uniform", "tf1.truncated_normal", "lsuv", "critical"):
        assert any(i.startswith(needed) for i in inits), needed
    assert s.seeds >= 8 and set(s.factors["model.activation"]) >= {"relu", "tanh"} and len(s.factors["model.depth"]) >= 2
    assert "training.lr" in s.tune
    assert len(expand(load_study("init", quick=True))) == 384
