"""A hand-written forward and backward pass for populations of small CNNs (im2col + batched matmuls).

Autograd through grouped convolutions (``groups = M``) is slow on CPUs: oneDNN's grouped kernels
with one to a few dozen channels per group spend their time on layout conversions, not on
arithmetic. Here each convolution of M models is batched matmuls on the model axis:

    cols  (M, B * positions, k * C_in)   the input windows, channels-last: one copy in runs of k * C
    h     = cols @ W^T, + b, activation  (M, B * positions, C_out): channels-last already; ReLU writes
                                         straight into the next layer's zero-bordered input buffer
    dW    = delta^T @ cols               one bmm, then permuted into the flat gradient buffer
    dx    = sum over ceil(k / stride) shifts of (contiguous slice of a zero-gapped delta buffer) @ W
          (:func:`_input_grad`, no col2im), or bmm + col2im adds where that does less work

Activations stay channels-last ``(M, B, *spatial, C)`` between layers. The dense layer after the last convolution uses
its weight with the columns permuted to that order (PyTorch flattens channels-first); its gradient is permuted back.
Zero-bordered buffers are kept between steps (only their interiors are rewritten). Populations are processed in chunks
of models that keep the im2col matrices near cache size (:data:`CHUNK_ELEMENTS`). Dropout masks are drawn channels-first
for the whole population first, layer by layer, exactly as the autograd path draws them. Tests check the gradients
against autograd to 1e-10 in float64; the float32 numbers differ from the autograd path's (oneDNN's) by rounding only.
"""

from __future__ import annotations

import itertools
import math
import threading
from contextlib import contextmanager
from typing import Callable

import torch
from torch.utils.weak import WeakIdKeyDictionary

from ponder import registry
from ponder.catalog.models import Layer
from ponder.train.dense import _act_backward, equal_chunks, loss_delta
from ponder.train.engine import forward

__all__ = ["FAST", "is_conv", "conv_step", "conv_logits"]

FAST = True  # False forces the autograd path (tests compare the two)


def is_conv(layers: tuple[Layer, ...]) -> bool:
    """Convolutions (1-D or 2-D, square stride) then dense layers, the last one the output: this module's networks."""
    if not FAST or not layers or layers[0].kind == "dense":
        return False
    n_conv = next((i for i, l in enumerate(layers) if l.kind == "dense"), len(layers))
    convs_ok = all(l.kind in ("conv1d", "conv2d") and len(l.weight_shape) == (3 if l.kind == "conv1d" else 4)
                   for l in layers[:n_conv])
    return (convs_ok and all(l.kind == "dense" for l in layers[n_conv:])
            and all(l.hidden for l in layers[:-1]) and not layers[-1].hidden)


def _windows(t: torch.Tensor, layer: Layer, sizes_tail: tuple[int, ...], offset: int = 0) -> torch.Tensor:
    """A strided view of t (M, B, *padded spatial, C), channels-last contiguous, with sizes (M, B, *positions, *tail).

    Tail ``(*k[:-1], k[-1] * C)``: every window (the last kernel axis and the channels are one
    contiguous run); tail ``(r * C,)`` with ``offset``: one kernel offset's run of r positions.
    """
    m, bsz, *padded, c = t.shape
    strides = [c]
    for n in reversed(padded[1:]):
        strides.insert(0, strides[0] * n)  # element stride of each padded spatial axis
    positions = layer.out_shape[1:]
    tail_strides = strides[:-1] + [1] if len(sizes_tail) > 1 else [1]
    return t.as_strided((m, bsz, *positions, *sizes_tail),
                        (t.stride(0), t.stride(1), *(st * layer.stride for st in strides), *tail_strides),
                        t.storage_offset() + offset)


def _cols(a: torch.Tensor, layer: Layer) -> torch.Tensor:
    """im2col: a (M, B, *padded spatial, C) channels-last contiguous -> (M, B * positions, prod(k) * C), columns (*k, c)."""
    k = layer.weight_shape[2:]
    win = _windows(a, layer, (*k[:-1], k[-1] * a.shape[-1]))
    return win.reshape(a.shape[0], -1, math.prod(k) * a.shape[-1])  # one copy, in runs of k[-1] * C


_WORKSPACES = WeakIdKeyDictionary()  # a population's buffer -> its zero-bordered buffers (freed with it)
_LOCAL = threading.local()  # .ws: the workspace of the pass running in this thread


@contextmanager
def _workspace(view: torch.Tensor):
    """This thread's passes keep their zero-bordered buffers with the population buffer ``view`` is a view of."""
    _LOCAL.ws = _WORKSPACES.setdefault(view._base if view._base is not None else view, {})
    try:
        yield
    finally:
        _LOCAL.ws = None


def _zeroed(role: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """A zero-initialized buffer kept between the steps of one population: callers only ever write
    the same interior region, so its padding (borders, gap rows) stays zero without re-zeroing."""
    ws = getattr(_LOCAL, "ws", None)
    if ws is None:
        return like.new_zeros(shape)
    key = (role, tuple(shape), like.dtype, like.device)
    buf = ws.get(key)
    if buf is None:
        buf = ws[key] = like.new_zeros(shape)
    return buf


def _padded(like: torch.Tensor, shape: tuple[int, ...], pad: int, role: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A zero-bordered buffer (M, B, *(spatial + 2 pad), C) and its interior view (M, B, *spatial, C)."""
    m, bsz, *spatial, c = shape
    buf = _zeroed(role, (m, bsz, *(n + 2 * pad for n in spatial), c), like)
    return buf, buf[(slice(None), slice(None), *(slice(pad, pad + n) for n in spatial))]


def _col2im(gcols: torch.Tensor, layer: Layer, m: int, bsz: int) -> torch.Tensor:
    """The adjoint of :func:`_cols`: (M, B * positions, prod(k) * C) -> (M, B, *spatial, C) (a cropped view).

    One strided add per kernel offset, except that ``stride`` consecutive offsets along the last
    axis are one add (their targets interleave without overlapping): 5 -> 3 adds for k 5 stride 2.
    """
    c, *spatial = layer.in_shape
    k, p, s = layer.weight_shape[2:], layer.padding, layer.stride
    g = gcols.view(m, bsz, *layer.out_shape[1:], *k[:-1], k[-1] * c)
    gx = gcols.new_zeros(m, bsz, *(n + 2 * p for n in spatial), c)
    inner = [gx.stride(2 + d) for d in range(len(spatial))]
    for off in itertools.product(*(range(kd) for kd in k[:-1])):
        for k0 in range(0, k[-1], s):
            r = min(s, k[-1] - k0)
            start = sum(o * st for o, st in zip(off, inner)) + k0 * c
            _windows(gx, layer, (r * c,), start).add_(g[(..., *off, slice(k0 * c, (k0 + r) * c))])
    return gx[(slice(None), slice(None), *(slice(p, p + n) for n in spatial))]


def _shift_pays(layer: Layer) -> bool:
    """Whether :func:`_input_grad` beats ``bmm`` + :func:`_col2im` for this layer's input gradient.

    The shifts do extra multiply-adds (the kernel rounded up to whole strides, a row for every
    ``stride`` padded positions) but no col2im. Measured (1 thread, 32 models, batch 64): 1-D k 5
    stride 2 on 20 positions, 1.44x the work, 40% faster; on 10 positions, 1.68x, even. 2-D col2im
    adds are slower (short runs): 3 x 3 stride 2 on 8 x 8 and 14 x 14, 2.8x and 2.3x the work,
    15-20% faster; on 4 x 4 and 2 x 2, 4x and 7x, slower.
    """
    k, s = layer.weight_shape[2:], layer.stride
    rows = math.prod(-(-(n + 2 * layer.padding) // s) for n in layer.in_shape[1:])
    extra = math.prod(-(-kd // s) * s for kd in k) * rows / (math.prod(k) * math.prod(layer.out_shape[1:]))
    return extra <= (1.5 if len(k) == 1 else 3.0)


def _input_grad(delta: torch.Tensor, w: torch.Tensor, layer: Layer, m: int, bsz: int) -> torch.Tensor:
    """dL/d(input) (M, B, *spatial, C) of a convolution from delta (M, B * positions, out), without col2im.

    Input position ``t = stride * q + r`` (per axis) receives, from every shift ``sigma`` of
    ``n = ceil(k / stride)``, ``delta[q - n + 1 + sigma] @ W[:, :, r + stride * (n - 1 - sigma)]``.
    Laid out with ``P = ceil(padded / stride)`` rows per sample and ``n - 1`` zero rows in front,
    the rows ``delta[q - n + 1 + sigma]`` of every (sample, q) are ONE contiguous slice of that
    buffer (out-of-range rows land on zeros), so each shift is one ``bmm`` with no copy, and the
    result comes out with input positions in order: (sample, q, r, C) = (sample, t, C).
    """
    c, *spatial = layer.in_shape
    k, p, s = layer.weight_shape[2:], layer.padding, layer.stride
    nd, out = len(k), w.shape[1]
    n = [-(-kd // s) for kd in k]
    rows = [-(-(sp + 2 * p) // s) for sp in spatial]  # P per axis
    row_stride = [math.prod(rows[d + 1:]) for d in range(nd)]
    lead = sum((nn - 1) * st for nn, st in zip(n, row_stride))
    total = bsz * math.prod(rows)
    buf = _zeroed("delta", (m, total + lead, out), delta)
    grid = buf[:, lead:].view(m, bsz, *rows, out)
    grid[(slice(None), slice(None), *(slice(0, lo) for lo in layer.out_shape[1:]))] = delta.view(m, bsz, *layer.out_shape[1:], out)
    wpad = w.new_zeros(m, out, c, *(nn * s for nn in n))
    wpad[(..., *(slice(0, kd) for kd in k))] = w
    # (M, out, C, n0, s, n1, s, ...) -> (M, n0, n1, ..., out, s, s, ..., C): block i (kernel index r + s * i)
    wv = wpad.view(m, out, c, *[v for nn in n for v in (nn, s)])
    wv = wv.permute(0, *(3 + 2 * d for d in range(nd)), 1, *(4 + 2 * d for d in range(nd)), 2)
    wv = wv.reshape(m, math.prod(n), out, s**nd * c)
    g = None
    for j, blk in enumerate(itertools.product(*(range(nn) for nn in n))):
        start = sum((nn - 1 - i) * st for nn, i, st in zip(n, blk, row_stride))  # shift sigma = n - 1 - i
        a = buf[:, start:start + total]
        g = torch.bmm(a, wv[:, j]) if g is None else g.baddbmm_(a, wv[:, j])
    g = g.view(m, bsz, *rows, *([s] * nd), c)  # (M, B, *q, *r, C)
    g = g.permute(0, 1, *[v for d in range(nd) for v in (2 + d, 2 + nd + d)], 2 + 2 * nd)
    g = g.reshape(m, bsz, *(r * s for r in rows), c)  # a view in 1-D, one copy in 2-D
    return g[(slice(None), slice(None), *(slice(p, p + sp) for sp in spatial))]


def _dense_weight(layer: Layer, w: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """The dense weight (M, out, in) with its columns in the order of a channels-last input."""
    if not channels_last:
        return w
    m, out = w.shape[:2]
    return w.view(m, out, *layer.in_shape).movedim(2, -1).reshape(m, out, -1)


def _dense_pays(layer: Layer) -> bool:
    """Whether a convolution on a tiny input runs faster as one dense matmul with its unrolled weight
    (:func:`_unrolled`): that does ``prod(input positions) / prod(k)`` times the multiply-adds (padding
    taps included) but no im2col and no col2im. Measured (2 threads, 32 models): cnn2d on 8 x 8 digits,
    whose second and third layers see 4 x 4 and 2 x 2 inputs, 1.35x (w32 d3) to 1.6x (w16 d2) faster;
    cnn1d's third layer (10 positions, k 5) even."""
    return layer.kind != "dense" and math.prod(layer.in_shape[1:]) <= 2 * math.prod(layer.weight_shape[2:])


_UNROLL: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}  # (layer, device) -> (dense index, weight index)


def _unroll_index(layer: Layer, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices: entry ``dst`` of the unrolled (out positions * O, in positions * C) matrix is weight entry ``src``."""
    key = (layer, device)
    if key not in _UNROLL:
        c, *spatial = layer.in_shape
        o, *out_sp = layer.out_shape
        k, s, p = layer.weight_shape[2:], layer.stride, layer.padding
        flat = lambda idx, dims: sum(i * math.prod(dims[d + 1:]) for d, i in enumerate(idx))  # noqa: E731
        taps = []
        for po in itertools.product(*(range(n) for n in out_sp)):
            for t in itertools.product(*(range(n) for n in k)):
                pi = [s * a + b - p for a, b in zip(po, t)]  # the input position this tap reads (padding: outside)
                if all(0 <= v < n for v, n in zip(pi, spatial)):
                    taps.append((flat(po, out_sp), flat(pi, spatial), flat(t, k)))
        e = torch.tensor(taps)[:, :, None, None]  # (taps, 3, 1, 1) against (O, 1) and (1, C)
        oo, cc = torch.arange(o)[:, None], torch.arange(c)[None, :]
        dst = (e[:, 0] * o + oo) * (math.prod(spatial) * c) + e[:, 1] * c + cc
        src = oo * (c * math.prod(k)) + cc * math.prod(k) + e[:, 2]
        _UNROLL[key] = (dst.reshape(-1).to(device), src.reshape(-1).to(device))
    return _UNROLL[key]


def _unrolled(layer: Layer, w: torch.Tensor) -> torch.Tensor:
    """The convolution as a dense weight (M, out positions * O, in positions * C), both sides channels-last."""
    dst, src = _unroll_index(layer, w.device)
    m, rows, cols = w.shape[0], math.prod(layer.out_shape), math.prod(layer.in_shape)
    return w.new_zeros(m, rows * cols).index_copy_(1, dst, w.reshape(m, -1).index_select(1, src)).view(m, rows, cols)


def _activate(h: torch.Tensor, b: torch.Tensor, act: Callable, kind: str | None, into: torch.Tensor | None,
              keep_pre: bool = False):
    """Bias, then activation: (pre-activation or None for ReLU, activation). ReLU writes into ``into`` when given,
    unless ``keep_pre`` asks for the pre-activation."""
    h.add_(b.view(b.shape[0], *[1] * (h.dim() - 2), b.shape[1]))
    if kind == "threshold" and not keep_pre:  # its backward needs only the output: no pre-activation kept
        return None, torch.clamp_min(h, 0.0, out=into) if into is not None else h.clamp_min_(0.0)
    return h, act(h)


def _forward(views, layers: tuple[Layer, ...], x: torch.Tensor, act: Callable, kind: str | None,
             dropout: Callable | None, keep_pre: bool = False) -> tuple[list, torch.Tensor]:
    """Logits (M, B, C) and, per layer, (input matrix, weight matrix, pre-activation, activation, dropout scale).

    Hidden activations are channels-last; one that feeds a padded convolution is written
    straight into the interior of the next layer's zero-padded input buffer.
    """
    m, bsz = x.shape[:2]
    pad0 = 0 if _dense_pays(layers[0]) else layers[0].padding  # an unrolled convolution reads its input unpadded
    a, inner = _padded(x, (m, bsz, *x.shape[3:], x.shape[2]), pad0, "input 0")
    inner.copy_(x.movedim(2, -1))
    saved = []
    for i, (layer, (w, b)) in enumerate(zip(layers, views)):
        if layer.kind == "dense":
            inp, wmat = a.reshape(m, bsz, -1), _dense_weight(layer, w, a.dim() > 3)
        elif _dense_pays(layer):
            inp, wmat = a.reshape(m, bsz, -1), _unrolled(layer, w)
        else:
            inp, wmat = _cols(a, layer), w.movedim(2, -1).reshape(m, w.shape[1], -1)  # columns (*k, c)
        if not layer.hidden:
            saved.append((inp, wmat, None, None, None))
            return saved, torch.baddbmm(b.unsqueeze(1), inp, wmat.transpose(1, 2))
        h = torch.bmm(inp, wmat.transpose(1, 2)).view(m, bsz, *layer.out_shape[1:], layer.out_shape[0])  # channels-last
        nxt = layers[i + 1]
        padded = nxt.kind != "dense" and nxt.padding and not _dense_pays(nxt)
        buf, inner = _padded(h, h.shape, nxt.padding, f"input {i + 1}") if padded else (None, None)
        pre, act_out = _activate(h, b, act, kind, inner if dropout is None else None, keep_pre)
        scale = None
        if dropout is not None:  # the mask is drawn channels-first, as the autograd path draws it
            scale = dropout(act_out.movedim(-1, 2), i).movedim(2, -1)
        saved.append((inp, wmat, pre, act_out, scale))
        if buf is None:
            a = act_out if scale is None else act_out * scale
        elif scale is not None:
            a = buf
            torch.mul(act_out, scale, out=inner)
        else:
            a = buf
            if act_out is not inner:
                inner.copy_(act_out)
    raise ValueError("the last layer must be the (non-hidden) output layer")


def _weight_grad(layer: Layer, gw: torch.Tensor, delta: torch.Tensor, inp: torch.Tensor, wmat: torch.Tensor,
                 w: torch.Tensor) -> None:
    """dL/dW into the gradient view gw: straight in with ``out=``, or permuted back for a channels-last dense input."""
    m, out = gw.shape[:2]
    if _dense_pays(layer):  # sum the unrolled gradient's entries back onto the weights they copy
        dst, src = _unroll_index(layer, w.device)
        g = torch.bmm(delta.transpose(1, 2), inp).view(m, -1)
        gw.view(m, -1).zero_().index_add_(1, src, g.index_select(1, dst))
        return
    if wmat is w:
        torch.bmm(delta.transpose(1, 2), inp, out=gw.view(m, out, -1))
        return
    g = torch.bmm(delta.transpose(1, 2), inp)  # columns channels-last: (*spatial, C) or (*k, C)
    target = gw.view(m, out, *layer.in_shape) if layer.kind == "dense" else gw  # (M, out, C, *spatial or *k)
    target.copy_(g.view(m, out, *target.shape[3:], target.shape[2]).movedim(-1, 2))


def _step(views, grad_views, layers: tuple[Layer, ...], x: torch.Tensor, y: torch.Tensor, act: Callable,
          kind: str | None, loss_fn: Callable, dropout: Callable | None, observe: Callable | None = None) -> torch.Tensor:
    """:func:`conv_step` for one chunk of models (``observe(records, logits)`` sees the forward pass)."""
    m, bsz = x.shape[:2]
    with torch.no_grad():
        saved, logits = _forward(views, layers, x, act, kind, dropout, keep_pre=observe is not None)
    if observe is not None:
        observe([(s[2], s[3]) for s in saved if s[3] is not None], logits)
    per_model, delta = loss_delta(logits, y, loss_fn)  # (M,), (M, B, C)
    with torch.no_grad():
        for i in range(len(layers) - 1, -1, -1):
            layer, (w, _), (gw, gb) = layers[i], views[i], grad_views[i]
            inp, wmat = saved[i][:2]
            torch.sum(delta, dim=1, out=gb)  # (M, out) from delta (M, rows, out)
            if _dense_pays(layer):  # an unrolled convolution: one row per example
                delta = delta.reshape(m, bsz, -1)
            _weight_grad(layer, gw, delta, inp, wmat, w)
            if i == 0:
                break
            _, _, h_prev, a_prev, scale = saved[i - 1]
            if layer.kind == "dense" or _dense_pays(layer):
                grad_a = torch.bmm(delta, wmat).view(a_prev.shape)
            elif _shift_pays(layer):
                grad_a = _input_grad(delta, w, layer, m, bsz)
            else:
                grad_a = _col2im(torch.bmm(delta, wmat), layer, m, bsz)
            if scale is not None:
                grad_a = grad_a * scale
            delta = _act_backward(kind, act, h_prev, a_prev, grad_a).reshape(m, -1, a_prev.shape[-1])
    return per_model.detach()


def _autograd_step(views, grad_views, layers, x, y, act, loss_fn, dropout) -> torch.Tensor:
    """The autograd path of ``train_step`` (grouped convolutions), writing its gradients into ``grad_views``."""
    logits = forward(views, layers, x, act, dropout=(lambda a, i: a * dropout(a, i)) if dropout is not None else None)
    per_model = loss_fn(logits, y).mean(dim=1)
    grads = torch.autograd.grad(per_model.sum(), [t for pair in views for t in pair])
    with torch.no_grad():
        for target, g in zip([t for pair in grad_views for t in pair], grads):
            target.copy_(g)
    return per_model.detach()


CHUNK_ELEMENTS = 1 << 22  # the largest intermediate of a chunk stays under this (16 MiB in float32); measured, 2 threads:
# cnn1d w25 32 models (10 MiB im2col) fastest unchunked, 2-D 28 x 28 w16 2x faster in chunks of 9 than whole


def _chunk(layers: tuple[Layer, ...], m: int, bsz: int) -> int:
    """Models per chunk: whole populations of small nets, fewer models where one model's im2col matrix is large."""
    per_model = max(bsz * math.prod(l.out_shape[1:]) * max(math.prod(l.weight_shape[1:]), l.out_shape[0])
                    for l in layers if l.kind != "dense")
    return equal_chunks(m, max(1, min(m, CHUNK_ELEMENTS // per_model)))  # 32 models: 11 + 11 + 10, not 13 + 13 + 6


def conv_step(views, grad_views, layers: tuple[Layer, ...], x: torch.Tensor, y: torch.Tensor, *, act: Callable,
              act_name: str, loss_fn: Callable, dropout: Callable | None = None,
              observe: Callable | None = None) -> torch.Tensor:
    """Forward and backward of M CNNs on x (M, B, C, *spatial) with labels y (M, B).

    ``dropout(a, layer)`` returns the inverted-dropout multiplier for hidden layer ``layer`` (``a`` channels-first,
    as :func:`ponder.train.engine.forward` passes it). Writes d(mean loss over the batch)/d(params) of every model
    into ``grad_views`` and returns the per-model mean loss (M,). Models are processed in chunks that keep the
    intermediates in cache; the dropout masks are drawn first, for the whole population, layer by layer, so they are
    the ones the autograd path draws. ``observe([(pre-activation, activation) per hidden layer, channels-last],
    logits)`` sees each chunk's forward pass in model order (CPU only; buffers reused by the next).
    """
    if x.device.type != "cpu":  # measured on CPUs only: elsewhere the autograd path, as before
        if observe is not None:
            raise ValueError("conv_step observes forward passes on the CPU only")
        return _autograd_step(views, grad_views, layers, x, y, act, loss_fn, dropout)
    kind = registry.get("activation", act_name).facts.backward
    m, bsz = x.shape[:2]
    masks = None
    if dropout is not None:
        masks = [dropout(x.new_empty(()).expand(m, bsz, *layer.out_shape), i) for i, layer in enumerate(layers[:-1])]
    size = _chunk(layers, m, bsz)
    out = []
    with _workspace(grad_views[0][0]):
        for m0 in range(0, m, size):
            sl = slice(m0, m0 + size)
            drop = (lambda a, i, sl=sl: masks[i][sl]) if masks is not None else None
            out.append(_step([(w[sl], b[sl]) for w, b in views], [(gw[sl], gb[sl]) for gw, gb in grad_views], layers,
                             x[sl], y[sl], act, kind, loss_fn, drop, observe))
    return out[0] if len(out) == 1 else torch.cat(out)


@torch.no_grad()
def conv_logits(views, layers: tuple[Layer, ...], x: torch.Tensor, *, act: Callable, act_name: str) -> torch.Tensor:
    """Logits (M, B, C) of M CNNs on x (M, B, C, *spatial), by the forward pass training uses (no dropout).

    Evaluation calls it: a CNN is scored with the arithmetic it trained with, at the hand-written path's speed (not
    oneDNN's grouped convolutions), in :func:`conv_step`'s chunks, with zero-bordered buffers kept per population.
    """
    kind, size = registry.get("activation", act_name).facts.backward, _chunk(layers, x.shape[0], x.shape[1])
    with _workspace(views[0][0]):
        out = [_forward([(w[m0:m0 + size], b[m0:m0 + size]) for w, b in views], layers, x[m0:m0 + size], act, kind,
                        None)[1] for m0 in range(0, x.shape[0], size)]
    return out[0] if len(out) == 1 else torch.cat(out)
