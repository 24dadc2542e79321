"""OpenCV's ``cv::ml::ANN_MLP`` initialization (``modules/ml/src/ann_mlp.cpp``, ``init_weights``)
and, separately, the Nguyen & Widrow (1990) algorithm it is named after.

OpenCV stores layer i as an ``(n_{i-1} + 1) x n_i`` double matrix whose last row is the bias,
with the forward pass ``y = x W[:-1] + W[-1]``; ponder returns ``W[:-1].T`` and ``W[-1]``.
The draws use a port of ``cv::RNG`` (64-bit multiply-with-carry). With ``rng="opencv"`` the
stream starts where a fresh ``ANN_MLP`` starts (state 2^64 - 1), so the weights equal, bit for
bit, the initial weights of ``cv2.ml.ANN_MLP`` with the same layer sizes (tested against
opencv-python-headless 4.14.0.94). With ``rng="ponder"`` (default) the same algorithm runs
on a state drawn from the run's generator.
"""

from __future__ import annotations

import math

from ponder.lazy import torch  # torch loads on first use: the catalog registers without it
from ponder.catalog.initializers.base import check_shape
from ponder.errors import CatalogError
from ponder.registry import register

__all__ = ["CvRNG", "opencv_layer_sizes"]

_MWC_COEFF = 4164903690  # CV_RNG_COEFF
_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF
_TWO_M64 = 2.0**-64


class CvRNG:
    """``cv::RNG``: state s (uint64); next() sets s = (s mod 2^32) * 4164903690 + (s >> 32) and returns s mod 2^32."""

    def __init__(self, state: int = _MASK64):
        self.state = (state & _MASK64) or _MASK32

    def next(self) -> int:
        self.state = ((self.state & _MASK32) * _MWC_COEFF + (self.state >> 32)) & _MASK64
        return self.state & _MASK32

    def uniform01(self) -> float:
        """``(double)rng``: ((first << 32) | second) * 2^-64, in [0, 1)."""
        hi = self.next()
        return float((hi << 32) | self.next()) * _TWO_M64


def opencv_layer_sizes(shapes) -> list[int]:
    """Layer sizes [n_0, ..., n_{L-1}] from ponder weight shapes [(n_1, n_0), (n_2, n_1), ...]."""
    sizes = [int(shapes[0][1])]
    for s in shapes:
        if len(s) != 2:
            raise CatalogError(f"Nguyen-Widrow initializes dense layers only, got a weight of shape {tuple(s)}")
        if int(s[1]) != sizes[-1]:
            raise CatalogError(f"layer shapes do not chain: {[tuple(x) for x in shapes]}")
        sizes.append(int(s[0]))
    return sizes


@register("initializer", "opencv.nguyen_widrow", law="nguyen_widrow",
          formula="hidden: u ~ U[-1,1), column / L1(inputs), bias *= G (2j/n2 - 1), G = 0.7 n1^(1/(n2-1)); output layer raw U[-1,1)",
          source="opencv/opencv modules/ml/src/ann_mlp.cpp ANN_MLPImpl::init_weights (4.x)",
          cites="Nguyen & Widrow 1990, as implemented by OpenCV", network=True, bias="own", sigma_w2="~4/(3 n1) hidden; n/3 output")
def nguyen_widrow(shapes, *, generator, dtype=None, rng: str = "ponder"):
    """OpenCV's Nguyen-Widrow: for each layer (n1 inputs, n2 neurons), G = 0.7 n1^(1/(n2-1)) if n2 > 2 else 1;
    neuron by neuron, n1 + 1 draws u = 2 U[0,1) - 1 (bias last). Hidden layers divide the column
    by the L1 norm of its n1 input weights (bias excluded) and multiply the bias by G (2j/n2 - 1);
    the output layer keeps the raw draws.

    Differs from the paper (``nguyen_widrow_1990``): base and exponent of G are swapped, the
    weights are L1-normalized to 1 and never scaled by G, and the bias is a deterministic ramp
    times a small random factor. Hidden sigma_w^2 is about 4 / (3 n1); the output layer's std is
    1/sqrt(3) whatever its fan-in.
    """
    sizes = opencv_layer_sizes(shapes)
    if any(n < 2 for n in sizes[1:-1]):
        raise CatalogError("OpenCV requires every hidden layer to have at least 2 neurons")
    if rng == "opencv":
        cv = CvRNG()
    elif rng == "ponder":
        cv = CvRNG(int(torch.randint(1, 2**62, (1,), generator=generator).item()))
    else:
        raise CatalogError(f"rng {rng!r} is not 'ponder' or 'opencv'")
    out = []
    last = len(sizes) - 1
    for i in range(1, len(sizes)):
        n1, n2 = sizes[i - 1], sizes[i]
        g = 0.7 * math.pow(float(n1), 1.0 / (n2 - 1)) if n2 > 2 else 1.0
        w = [[0.0] * n2 for _ in range(n1 + 1)]  # OpenCV's (n1 + 1) x n2, bias row last
        for j in range(n2):
            s = 0.0
            val = 0.0
            for k in range(n1 + 1):
                val = cv.uniform01() * 2 - 1.0
                w[k][j] = val
                s += abs(val)
            if i < last:
                s = 1.0 / (s - abs(val))
                for k in range(n1 + 1):
                    w[k][j] *= s
                w[n1][j] *= g * (-1 + j * 2.0 / n2)
        full = torch.tensor(w, dtype=torch.float64)
        dt = torch.float32 if dtype is None else dtype
        out.append((full[:-1].t().contiguous().to(dt), full[-1].clone().to(dt)))
    return out


@register("initializer", "nguyen_widrow_1990", law="nguyen_widrow",
          formula="hidden: w ~ U(-0.5, 0.5), each unit's weight vector rescaled to L2 norm beta = 0.7 H^(1/N), bias ~ U(-beta, beta)",
          source="Nguyen & Widrow 1990, applied to every hidden layer; the output layer is U(-0.5, 0.5)",
          cites="Nguyen & Widrow 1990 (Improving the learning speed of 2-layer neural networks, IJCNN)", network=True, bias="own",
          sigma_w2="N beta^2 / N = beta^2 per unit vector")
def nguyen_widrow_1990(shapes, *, generator, dtype=None):
    """The paper's algorithm (inputs assumed in [-1, 1]): for a hidden layer of H units with N inputs,
    draw U(-0.5, 0.5), scale each unit's incoming vector to Euclidean norm beta = 0.7 H^(1/N), and
    draw each bias from U(-beta, beta). The paper treats one hidden layer; ponder applies the rule
    to every hidden layer and draws the output layer from U(-0.5, 0.5)."""
    out = []
    for i, shape in enumerate(shapes):
        h, n = check_shape(shape, "nguyen_widrow_1990", 2)[:2]
        w = torch.empty((h, n), dtype=torch.float64).uniform_(-0.5, 0.5, generator=generator)
        if i < len(shapes) - 1:
            beta = 0.7 * h ** (1.0 / n)
            w = w * (beta / w.norm(dim=1, keepdim=True))
            b = torch.empty(h, dtype=torch.float64).uniform_(-beta, beta, generator=generator)
        else:
            b = torch.empty(h, dtype=torch.float64).uniform_(-0.5, 0.5, generator=generator)
        dt = torch.float32 if dtype is None else dtype
        out.append((w.to(dt), b.to(dt)))
    return out
