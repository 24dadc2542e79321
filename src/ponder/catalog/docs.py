"""Generate ``docs/initializers.md`` from the catalog itself, so the page never drifts from the code."""

from __future__ import annotations

from ponder import registry

__all__ = ["initializers_markdown"]

SAME_NAME = [
    ("xavier / glorot_uniform", "caffe.xavier (default FAN_IN): U(+-sqrt(3/fan_in)), var 1/fan_in",
     "keras.glorot_uniform, torch.xavier_uniform: U(+-sqrt(6/(fan_in+fan_out)))", "Caffe's default is LeCun uniform; only variance_norm = average is Glorot"),
    ("glorot_normal / xavier_normal", "keras.glorot_normal: truncated at 2 sigma, rescaled", "torch.xavier_normal: untruncated", "same variance, different tails"),
    ("he_normal / msra / kaiming_normal", "caffe.msra, torch.kaiming_normal: N(0, 2/fan_in)", "keras.he_normal: truncated at 2 sigma, post-truncation std sqrt(2/fan_in)", "tails; TF1 he_normal was 12% smaller (tf1.variance_scaling)"),
    ("he_uniform / kaiming_uniform", "keras.he_uniform, torch.kaiming_uniform: U(+-sqrt(6/fan_in))", "torch.default (a = sqrt(5)): U(+-1/sqrt(fan_in))", "the torch module default is not He: var 1/(3 fan_in)"),
    ("lecun_uniform", "keras.lecun_uniform: U(+-sqrt(3/fan_in))", "torch.default: U(+-1/sqrt(fan_in))", "factor 3 in variance"),
    ("truncated_normal", "keras.truncated_normal: cut at 2 stddev (relative), default stddev 0.05", "torch.trunc_normal: cut at absolute [-2, 2], default std 1; tf1.truncated_normal: stddev 1.0", "bounds and defaults"),
    ("variance_scaling 'normal'", "keras.variance_scaling: truncated, corrected by 1/0.8796", "tf1.variance_scaling: truncated, uncorrected", "12% in std"),
    ("normal / gaussian default", "keras.random_normal: N(0, 0.05^2)", "caffe.gaussian, torch.normal, tf1.random_normal: N(0, 1)", "20x in std"),
    ("uniform default", "keras.random_uniform: U[-0.05, 0.05)", "caffe.uniform: U[0, 1] (closed); torch.uniform, tf1.random_uniform: U[0, 1)", "sign and range"),
    ("orthogonal", "keras.orthogonal: flatten (prod(kernel[:-1]), kernel[-1]) in Keras layout", "torch.orthogonal, orthogonal: (out, prod(rest)) in torch layout", "different raw arrays, both orthonormal per output"),
    ("sparse", "caffe.gaussian(sparse=s): Bernoulli mask, p = s / shape[0]", "torch.sparse: exactly ceil(sparsity rows) zeros per column, std 0.01", "random vs fixed count"),
    ("identity", "keras.identity: gain I, 2-D only", "torch.eye (no gain), torch.dirac (conv)", "-"),
    ("Nguyen-Widrow", "opencv.nguyen_widrow: L1-normalized columns, G only in the bias ramp, output layer raw U[-1,1)", "nguyen_widrow_1990: L2 norm beta = 0.7 H^(1/N), bias U(+-beta)", "different algorithms under one name"),
    ("default dense/conv init", "caffe.default: constant 0", "keras.glorot_uniform + zero bias; torch.default: U(+-1/sqrt(fan_in)) weight and bias", "-"),
]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def initializers_markdown() -> str:
    """The whole page: one section per source, every entry's law, formula, defaults and citation."""
    import inspect

    lines = ["# Initializers", "",
             "Generated from the catalog by `python -m ponder.catalog.docs` (a test checks this page matches the code).",
             "Weights use PyTorch's layout; fans follow the library each entry imitates. `sigma_w2` is fan_in x Var(W),",
             "the mean-field variance (1 = LeCun, 2 = He, 1/3 = torch default).", ""]
    groups = {"torch": "PyTorch (torch.nn.init, torch 2.13)", "caffe": "Caffe (filler.hpp)", "keras": "Keras 3",
              "tf1": "TensorFlow 1.x defaults that differ", "opencv": "OpenCV ANN_MLP", "": "Modern and paper versions"}
    entries = registry.entries("initializer")
    for prefix, title in groups.items():
        chosen = [e for e in entries if (e.name.split(".")[0] == prefix if prefix else "." not in e.name)]
        lines += [f"## {title}", "", "| name | law | formula | parameters | sigma_w2 | bias | source | cites |",
                  "|---|---|---|---|---|---|---|---|"]
        for e in chosen:
            sig = inspect.signature(e.fn)
            params = ", ".join(f"{p}={v.default!r}" for p, v in sig.parameters.items()
                               if v.kind == v.KEYWORD_ONLY and p not in ("generator", "dtype", *e.facts.needs))
            kind = "network" if e.facts.network else e.facts.bias
            lines.append(f"| `{e.name}` | {e.facts.law} | {_cell(e.formula)} | {_cell(params) or '-'} | "
                         f"{_cell(e.facts.sigma_w2)} | {kind} | {_cell(e.source)} | {_cell(e.cites)} |")
        lines.append("")
        for e in chosen:
            lines += [f"### `{e.name}`", "", e.doc.replace("\n    ", "\n"), ""]
    lines += ["## Same name, different math", "", "| name | one library | another | difference |", "|---|---|---|---|"]
    lines += [f"| {a} | {_cell(b)} | {_cell(c)} | {_cell(d)} |" for a, b, c, d in SAME_NAME]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import pathlib
    import sys

    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "docs/initializers.md")
    out.write_text(initializers_markdown(), encoding="utf-8")
    print(out)
