"""The catalog registry: named building blocks with their math and provenance.

An entry is a plain function registered with :func:`register`. Its metadata says what kind of
block it is, where the math comes from (``source``), what to cite (``cites``), a formula for
listings, and a ``version`` string that enters the id of every run using it, so that changing
an entry's math never silently reuses old results.

The registry is the only module-level mutable state in ponder.
"""

from __future__ import annotations

import difflib
import functools
import fnmatch
import re
import warnings
from dataclasses import dataclass, fields
from typing import Any, Callable

from ponder.errors import CatalogError

__all__ = ["Entry", "register", "alias", "get", "names", "entries", "KINDS", "closest", "unknown", "FACTS",
           "ActivationFacts", "InitializerFacts", "ModelFacts", "NoFacts"]

KINDS = ("initializer", "activation", "loss", "dataset", "model", "metric")

_REGISTRY: dict[str, dict[str, "Entry"]] = {kind: {} for kind in KINDS}
_ALIASES: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
_ENTRY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")  # what a study file can write: no spaces, no "(...)"


@dataclass(frozen=True)
class ActivationFacts:
    """What the engine and the theory need to know about an activation, declared where it is registered.

    Attributes:
        backward: A fused derivative the dense backward pass may use instead of autograd:
            ``"threshold"`` (ReLU: the derivative from the output), ``"tanh"``, ``"sigmoid"`` or
            ``"identity"``; None means autograd.
        homogeneous: For a positively homogeneous activation, the constant c with
            E[phi(sqrt(q) z)^2] = c q and E[phi'(sqrt(q) z)^2] = c for every q (mean field in
            closed form); None otherwise.
        saturating: True when phi is bounded on both sides (sigmoid, tanh, ...): such networks
            can lose their gradient in saturation, which the reports check for.
    """

    backward: str | None = None
    homogeneous: float | None = None
    saturating: bool = False


@dataclass(frozen=True)
class InitializerFacts:
    """What is known about an initializer beyond its function.

    Attributes:
        law: The distribution family (``normal``, ``uniform``, ``truncated_normal``, ``orthogonal``,
            ``constant``, ``deterministic``, ...).
        bias: How the layer's bias is set: ``zeros``, ``fan_in_uniform`` or ``own`` (the
            function returns it).
        needs: Context the function needs besides the shape (``activation``, ``forward``).
        network: True when it initializes every layer at once (Nguyen-Widrow, LSUV).
        sigma_w2: The effective sigma_w^2 = fan_in Var(W) in words, for listings.
        variance: ``variance(shape, **params) -> float``, Var(W) of one weight for a weight of
            ``shape`` (PyTorch layout) and the entry's parameters; None where it depends on data
            or on the whole network. Tests check it against drawn tensors.
    """

    law: str = ""
    bias: str = "zeros"
    needs: tuple[str, ...] = ()
    network: bool = False
    sigma_w2: str = ""
    variance: Callable[..., float] | None = None


@dataclass(frozen=True)
class ModelFacts:
    """Attributes:
        classical: True for a scikit-learn model fitted without gradient training (no depth,
            width, optimizer or epochs).
        module: True for a factory ``fn(in_shape, n_classes, **settings) -> torch.nn.Module``
            (a user's own network), trained as a population through ``torch.func``.
    """

    classical: bool = False
    module: bool = False


@dataclass(frozen=True)
class MetricFacts:
    """Attributes:
        direction: ``max`` (higher is better, accuracy) or ``min`` (lower is better, loss, ECE).
        bounds: The range the metric's values lie in (``(0, 1)`` for an accuracy); reports cut the
            confidence intervals of means to it. None: unbounded.
    """

    direction: str = "max"
    bounds: tuple[float, float] | None = None


@dataclass(frozen=True)
class NoFacts:
    """Kinds with nothing to declare beyond formula and provenance."""


FACTS: dict[str, type] = {"initializer": InitializerFacts, "activation": ActivationFacts, "model": ModelFacts,
                          "loss": NoFacts, "dataset": NoFacts, "metric": MetricFacts}


@dataclass(frozen=True)
class Entry:
    """One catalog entry.

    Attributes:
        kind: One of :data:`KINDS`.
        name: Stable name, e.g. ``caffe.xavier`` or ``relu``.
        fn: The function implementing the entry.
        formula: The math in one line, for listings and reports.
        source: Library file or paper the math follows.
        cites: Reference to cite.
        version: Bumped whenever the numbers the entry produces change.
        facts: Kind-specific typed facts (:class:`InitializerFacts`, :class:`ActivationFacts`, ...).
    """

    kind: str
    name: str
    fn: Callable[..., Any]
    formula: str
    source: str
    cites: str
    version: str = "1"
    facts: Any = None

    @property
    def meta(self) -> dict[str, Any]:
        """The facts as a plain dict (read-only view, for listings)."""
        return {f.name: getattr(self.facts, f.name) for f in fields(self.facts)}

    @property
    def doc(self) -> str:
        return (self.fn.__doc__ or "").strip()

    @property
    def plugin(self) -> bool:
        """True for an entry registered outside ponder (a user's plugin module)."""
        return not (self.fn.__module__ or "").startswith("ponder.")

    @property
    def identity(self) -> str:
        """What enters a run id: the version string for built-ins; for a plugin, also a hash of its
        code (the function's source and its module's file), so an edited plugin retrains."""
        return self.version if not self.plugin else f"{self.version}+{code_hash(self.fn)}"

    @property
    def summary(self) -> str:
        return self.doc.splitlines()[0] if self.doc else ""


@functools.lru_cache(maxsize=1024)
def code_hash(fn: Callable[..., Any]) -> str:
    """12 hex digits of SHA-256 over a function's source and the text of the module file it lives in.

    Cached per function object: a re-imported (edited) plugin registers new function objects, so
    it is hashed afresh, while expanding a study does not re-read the file for every run."""
    import hashlib
    import inspect

    parts = []
    for get in (inspect.getsource, inspect.getsourcefile):
        try:
            parts.append(get(fn) or "")
        except (OSError, TypeError):
            parts.append("")
    try:
        with open(parts[1], encoding="utf-8") as fh:
            parts[1] = fh.read()
    except (OSError, TypeError):
        pass
    if not parts[0] and hasattr(fn, "__code__"):  # defined in `python -c`, stdin or a REPL: no source to read, so
        import marshal  # the compiled code stands for it (an edited function must not reuse the old runs)

        parts.append(marshal.dumps(fn.__code__).hex())
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def register(kind: str, name: str, *, formula: str, source: str = "", cites: str = "",
             version: str = "1", **facts: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn`` as catalog entry ``name`` of ``kind``; ``facts`` are the kind's typed facts.

    Built-in entries must give ``source`` and ``cites``; a plugin (a function defined outside
    ponder) may leave them out. Re-registering a name from the same module (a re-imported plugin,
    a re-run notebook cell) replaces the entry.

    Raises:
        CatalogError: ``kind`` is unknown, ``name`` is not a name a study can write or is already taken
            (by a built-in or another module), a fact is not one of the kind's, ``fn`` is not callable.
        ValueError: a built-in lacks its citation (a programming error).
    """
    if kind not in _REGISTRY:
        raise CatalogError(unknown("catalog kind", kind, list(KINDS)))
    if not isinstance(name, str) or not _ENTRY_NAME.fullmatch(name):
        raise CatalogError(f"{kind} name {name!r} cannot be written in a study: use letters, digits, '_', '-' and "
                           "'.', starting with a letter or '_' (e.g. 'mylab.swish')")
    if not isinstance(formula, str) or not formula.strip():
        raise CatalogError(f"{kind} {name!r} needs a formula: a line saying what it computes")
    try:
        typed = FACTS[kind](**facts)
    except TypeError:
        valid = ", ".join(f.name for f in fields(FACTS[kind])) or "none"
        raise CatalogError(f"{kind} {name!r}: unknown facts {sorted(facts)} (the facts of {kind} entries: {valid})") from None

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(fn):
            raise CatalogError(f"{kind} {name!r}: register decorates a function (or a class), not {type(fn).__name__}")
        if not (fn.__module__ or "").startswith("ponder."):  # a plugin: the built-ins first, so names cannot collide
            _ensure_loaded()
        old = _REGISTRY[kind].get(name)
        if old is not None and not old.plugin and not (fn.__module__ or "").startswith("ponder."):
            lab = (fn.__module__ or "").rsplit(".", 1)[-1].strip("_") or "mine"
            raise CatalogError(f"{kind} {name!r} is a built-in name; give yours another (e.g. "
                               f"'{'mine' if lab == 'main' else lab}.{name}')")
        if old is not None and old.fn.__module__ != fn.__module__:
            raise CatalogError(f"{kind} {name!r} is already registered by {old.fn.__module__}; choose another name")
        if (fn.__module__ or "").startswith("ponder.") and not (cites and source):
            raise ValueError(f"built-in {kind} {name!r} needs a source and a citation")
        _REGISTRY[kind][name] = Entry(kind, name, fn, formula, source, cites, version, typed)
        return fn

    return decorator


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def closest(name: str, candidates: list[str]) -> list[str]:
    """The up to three candidates closest to ``name`` (difflib ratio, then suffix match)."""
    found = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
    if not found:
        # "kaiming_normal" should find "torch.kaiming_normal": compare the part after the dot.
        tails = {c.split(".", 1)[-1]: c for c in candidates}
        found = [tails[t] for t in difflib.get_close_matches(name.split(".", 1)[-1], list(tails), n=3, cutoff=0.6)]
    return found


def did_you_mean(name: str, candidates: list[str], *, prefix: str = "") -> str:
    """``"; did you mean 'x'?"`` for the closest candidate (``prefix`` before it), or ``""``."""
    near = closest(name, list(candidates))
    return f"; did you mean '{prefix}{near[0]}'?" if near else ""


def unknown(what: str, name: str, candidates: list[str], *, listing: str = "") -> str:
    """The one sentence for a miss: ``unknown <what> '<name>'; did you mean 'x'? (<listing>)``.

    ``listing`` is the valid set or the command that lists it; without it the candidates are listed.
    """
    near = closest(name, list(candidates))
    hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
    tail = listing or ("valid: " + ", ".join(str(c) for c in candidates))
    return f"unknown {what} {name!r}{hint} ({tail})"


def alias(kind: str, old: str, new: str) -> None:
    """Keep a renamed entry reachable under its old name; using it warns and names the new one."""
    _ALIASES[kind][old] = new


def get(kind: str, name: str) -> Entry:
    """Look an entry up; a miss names the closest entries and the list command."""
    _ensure_loaded()
    table = _REGISTRY[kind]
    if name in table:
        return table[name]
    if name in _ALIASES[kind]:
        new = _ALIASES[kind][name]
        warnings.warn(f"{kind} {name!r} is now called {new!r}; the old name still works", FutureWarning, stacklevel=2)
        return table[new]
    plural = {"activation": "activations", "loss": "losses"}.get(kind, f"{kind}s")
    raise CatalogError(unknown(kind, name, list(table), listing=f"ponder list {plural}"))


def names(kind: str, pattern: str = "*") -> list[str]:
    """Entry names of ``kind`` matching the fnmatch ``pattern``, naturally sorted."""
    _ensure_loaded()
    return sorted((n for n in _REGISTRY[kind] if fnmatch.fnmatchcase(n, pattern)), key=_natural_key)


def entries(kind: str, pattern: str = "*") -> list[Entry]:
    """Entries of ``kind`` matching ``pattern``, naturally sorted by name."""
    return [_REGISTRY[kind][n] for n in names(kind, pattern)]


def _ensure_loaded() -> None:
    # Importing the catalog package registers every entry; doing it here means no caller
    # depends on import order.
    import ponder.catalog  # noqa: F401
