"""The shape of the house: small files and functions, one direction of flow, a light ``import ponder``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ponder"

# Lower layers never import higher ones: spec -> plan -> train -> store -> analysis -> report.
LAYERS = [
    {"ponder", "errors", "rng", "quadrature", "registry", "escape", "studies", "plugins", "cache", "lazy"},
    {"theory"},
    {"catalog"},
    {"study"},
    {"train"},
    {"executors"},
    {"store"},
    {"runner"},
    {"analysis"},
    {"reporting", "export"},
    {"api"},
    {"cli", "commands", "__main__"},
]
# The registry loads the catalog on first lookup (so no caller depends on import order): the one
# upward import, made at call time.
ALLOWED = {("registry", "catalog")}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "ponder"


def _layer(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def _modules() -> dict[str, Path]:
    out = {}
    for p in SRC.rglob("*.py"):
        rel = p.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        out[name] = p
    return out


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("ponder")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ponder") and node.level == 0:
            found.add(node.module)
    return found


def test_no_file_over_400_lines_and_no_function_over_60():
    long_files = [f"{p.relative_to(SRC)}: {n}" for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400]
    long_funcs = []
    for p in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                long_funcs.append(f"{p.relative_to(SRC)}:{node.name} {node.end_lineno - node.lineno + 1}")
    assert not long_files and not long_funcs, (long_files, long_funcs)


def test_imports_flow_one_way():
    """Every import (module level or inside a function) goes to the same layer or a lower one."""
    units = {_unit(m) for m in _modules()}
    assert all(any(u in layer for layer in LAYERS) for u in units), units - set().union(*LAYERS)
    wrong = []
    for module, path in _modules().items():
        me = _unit(module)
        for target in _imports(path):
            them = _unit(target)
            if them != me and _layer(them) > _layer(me) and (me, them) not in ALLOWED:
                wrong.append(f"{module} imports {target}")
    assert not wrong, wrong


def test_import_ponder_loads_no_torch():
    code = "import sys, ponder, ponder.study.spec, ponder.store; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "False", out.stderr


def test_the_catalog_validates_and_plans_without_torch():
    """Every catalog entry registers, a built-in study validates and expands to its run ids, with torch not loaded;
    the first call of an entry loads it."""
    code = ("import sys; from ponder import registry; from ponder.study import load_study, expand; "
            "runs = expand(load_study('quickstart', quick=True)); n = len(registry.entries('initializer')); "
            "print(len(runs), n > 40, 'torch' in sys.modules); from ponder.catalog.initializers import init; "
            "from ponder.lazy import torch; w = init('torch.default', (3, 4), generator=torch.Generator().manual_seed(0)); "
            "print('torch' in sys.modules, tuple(w.shape), w.dtype)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["36", "True", "False", "True", "(3,", "4)", "torch.float32"]  # dtype default: None
