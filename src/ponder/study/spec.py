"""The study file: schema, TOML loading and validation.

A study is a TOML file with a name, a one-sentence question, fixed settings in three tables
(``[dataset]``, ``[model]``, ``[training]``), ``[factors]`` (the scientific variables: a dotted
key such as ``"model.initializer"`` and its levels), ``[tune]`` (nuisance settings every arm
tunes on the validation split, e.g. ``"training.lr"``), ``seeds`` and ``metrics``. ``[quick]``
holds overrides applied by ``--quick``.

Validation reports every problem of a file in one pass, as one sentence naming the file,
the key, what was found and what would be right.
"""

from __future__ import annotations

import copy
import math
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ponder import registry
from ponder.errors import CatalogError, SpecError

__all__ = ["DatasetSpec", "ModelSpec", "TrainingSpec", "EvaluateSpec", "Study", "load_study", "parse_study",
           "builtin_studies", "resolve_study_path", "SECTIONS", "METRICS", "direction"]

SHIFTS = ("noise", "translation", "scaling")  # input shifts of [evaluate] (train/evals.py draws them)
SEARCH_KEYS = ("draws", "seed")  # [search] keys that are not settings
METRICS = {"accuracy": "max", "loss": "min"}  # measured every epoch; other metrics are catalog entries ("metric")
EPOCH_METRICS = tuple(METRICS)


def direction(metric: str) -> str:
    """``max`` or ``min``: the metric's declared direction (its catalog entry's ``direction``)."""
    return METRICS.get(metric) or registry.get("metric", metric).facts.direction
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def _catalog_name(kind: str, value: str) -> str:
    try:
        registry.get(kind, value)
    except CatalogError as exc:
        raise ValueError(str(exc)) from None
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class DatasetSpec(_Section):
    """``[dataset]``: which data, and how each seed draws its training set from it."""

    name: str = "mnist1d"
    options: dict[str, Any] = Field(default_factory=dict)
    inputs: str = "original"
    train_size: int | None = Field(default=None, ge=1)
    val_fraction: float = Field(default=0.2, ge=0.0, le=0.9)
    label_noise: float = Field(default=0.0, ge=0.0, le=1.0)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return _catalog_name("dataset", v)

    @field_validator("inputs")
    @classmethod
    def _inputs(cls, v: str) -> str:
        from ponder.catalog.datasets.prepare import INPUT_MODES

        if v not in INPUT_MODES:
            raise ValueError(registry.unknown("input mode", v, list(INPUT_MODES)))
        return v


class ModelSpec(_Section):
    """``[model]``: architecture, activation, initializer and dropout."""

    arch: str = "mlp"
    depth: int = Field(default=2, ge=0, le=256)
    width: int = Field(default=100, ge=1, le=16384)
    kernel_size: int = Field(default=5, ge=1, le=64)
    activation: str = "relu"
    initializer: str = "torch.default"
    init_params: dict[str, Any] = Field(default_factory=dict)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)

    @field_validator("arch")
    @classmethod
    def _arch(cls, v: str) -> str:
        return _catalog_name("model", v)

    @field_validator("activation")
    @classmethod
    def _act(cls, v: str) -> str:
        return _catalog_name("activation", v)

    @field_validator("initializer")
    @classmethod
    def _init(cls, v: str) -> str:
        from ponder.catalog.initializers.base import parse_init

        try:
            parse_init(v)
        except CatalogError as exc:
            raise ValueError(str(exc)) from None
        return v


class TrainingSpec(_Section):
    """``[training]``: optimizer, learning rate, epochs, batch size, weight decay, loss."""

    optimizer: Literal["sgd", "momentum", "adam"] = "sgd"
    lr: float = Field(default=0.05, gt=0.0, le=100.0)
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    epochs: int = Field(default=20, ge=1, le=100000)
    batch_size: int = Field(default=64, ge=1, le=1 << 20)
    weight_decay: float = Field(default=0.0, ge=0.0, le=10.0)
    loss: str = "cross_entropy"
    switch: float = Field(default=0.5, gt=0.0, lt=1.0)  # fraction of epochs on the first loss of a schedule "a>b"
    dtype: Literal["float32", "float64"] = "float32"

    @field_validator("loss")
    @classmethod
    def _loss(cls, v: str) -> str:
        parts = v.split(">")
        if len(parts) > 2:
            raise ValueError(f"a loss schedule has two losses, 'first>second', got {v!r}")
        for part in parts:
            _catalog_name("loss", part)
        return v


class EvaluateSpec(_Section):
    """``[evaluate]``: measurements of each trained model beyond its learning curve.

    ``shift`` maps a shift kind (noise, translation, scaling) to its levels; ``convexity`` asks for
    the loss along the line from initial to trained weights and between two seeds' solutions.
    ``every``, ``probe_every`` and ``train_subset`` bound what evaluation costs during training:
    the learning curve every k epochs, layer probes every k epochs, and training loss / accuracy on
    the first n of each model's training examples (the last epoch is always evaluated in full).
    """

    shift: dict[str, list[float]] = Field(default_factory=dict)
    convexity: bool = False
    every: int = Field(default=1, ge=1, le=100000)  # epochs between evaluations (epoch 0 and the last always)
    probe_every: int | None = Field(default=None, ge=1, le=100000)  # epochs between layer probes (default: every)
    train_subset: int | None = Field(default=None, ge=1)  # training examples scored per evaluation (default: all)

    @field_validator("shift")
    @classmethod
    def _shift(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        for kind, levels in v.items():
            if kind not in SHIFTS:
                raise ValueError(registry.unknown("shift", kind, list(SHIFTS)))
            if not levels:
                raise ValueError(f"shift {kind!r} has no levels; give at least one")
            if not all(math.isfinite(x) for x in levels):
                raise ValueError(f"shift {kind!r} levels must be finite numbers")
            if kind == "scaling" and any(l <= 0 for l in levels):
                raise ValueError("scaling levels are magnifications and must be positive")
        return v

    def config(self) -> dict[str, Any]:
        """What enters a run's config (empty when nothing is asked, so older run ids stay valid)."""
        out: dict[str, Any] = {}
        if self.shift:
            out["shift"] = {k: [float(x) for x in v] for k, v in self.shift.items()}
        if self.convexity:
            out["convexity"] = True
        for key in ("every", "probe_every", "train_subset"):  # only when set, so older run ids stay valid
            value = getattr(self, key)
            if value is not None and value != type(self).model_fields[key].default:
                out[key] = value
        return out

    @property
    def measures(self) -> bool:
        """True when trained models are measured beyond the learning curve (their weights are kept)."""
        return bool(self.shift or self.convexity)


SECTIONS: dict[str, type[_Section]] = {"dataset": DatasetSpec, "model": ModelSpec, "training": TrainingSpec}


class Study(BaseModel):
    """A validated study. Frozen: expanding it never changes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    question: str = Field(min_length=3, max_length=500)
    seeds: int = Field(default=5, ge=1, le=10000)
    metrics: list[str] = Field(default_factory=lambda: ["accuracy", "loss"], min_length=1)
    reference: str | None = None
    focus: str | None = None  # the factor the question is about; without it factors are reported by effect size
    plugins: list[str] = Field(default_factory=list)  # modules registering the user's own components
    rope: float = Field(default=0.01, ge=0.0, le=1.0)  # region of practical equivalence, in the metric's units
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    factors: dict[str, list[Any]] = Field(default_factory=dict)  # "a.b+c.d" links keys: levels are [x, y] pairs
    tune: dict[str, list[Any]] = Field(default_factory=dict)
    search: dict[str, Any] = Field(default_factory=dict)
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec)
    quick: dict[str, Any] = Field(default_factory=dict)
    source: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v) or ".." in v:
            raise ValueError(f"must be 1-64 letters, digits, '_', '-' or '.', not a path (got {v!r})")
        if v.lower() == "index.html":  # the reports folder's own page: the study's folder would take its place
            raise ValueError(f"{v!r} is the name of the reports folder's index page; choose another name")
        return v

    @field_validator("question")
    @classmethod
    def _question(cls, v: str) -> str:
        if any(ord(c) < 32 or ord(c) == 127 for c in v):
            raise ValueError("must be one line of text (no line breaks or control characters)")
        return v

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v: list[str]) -> list[str]:
        for m in v:
            _catalog_name("metric", m)
        if len(set(v)) != len(v):
            raise ValueError("names a metric twice; list each once (the first one answers)")
        return v

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

    @property
    def extra_metrics(self) -> tuple[str, ...]:
        """Metrics measured on each trained model beyond the per-epoch accuracy and loss."""
        return tuple(m for m in self.metrics if m not in EPOCH_METRICS)

    @property
    def directions(self) -> dict[str, str]:
        """Each metric's direction, stored with the plan so analysis never consults the catalog."""
        return {m: direction(m) for m in self.metrics}

    @property
    def bounds(self) -> dict[str, list[float | None] | None]:
        """Each metric's range ``[lo, hi]`` (None: unbounded on that side, or no range declared), stored with
        the plan beside the directions."""
        out: dict[str, list[float | None] | None] = {}
        for m in self.metrics:
            b = registry.get("metric", m).facts.bounds
            out[m] = None if b is None else [None if abs(v) == float("inf") else float(v) for v in b]
        return out

    def base_config(self) -> dict[str, Any]:
        """The fixed settings as a plain dict: {"dataset": {...}, "model": {...}, "training": {...}}."""
        return {s: getattr(self, s).model_dump() for s in SECTIONS}

    @property
    def draws(self) -> list[dict[str, Any]]:
        """The random-search draws: one dict (dotted key -> value) per draw, the same for every arm.

        Drawn from the stream ``search`` of ``search.seed`` (default 0), keys in sorted order.
        """
        import numpy as np

        from ponder.rng import np_rng_for

        n = int(self.search.get("draws", 0))
        space = {k: v for k, v in self.search.items() if k not in SEARCH_KEYS}
        rng = np_rng_for(int(self.search.get("seed", 0)), "search")
        out = []
        for _ in range(n):
            draw = {}
            for key in sorted(space):
                (dist, arg), = space[key].items()
                if dist == "choice":
                    draw[key] = arg[int(rng.integers(len(arg)))]
                elif dist == "uniform":
                    draw[key] = float(rng.uniform(arg[0], arg[1]))
                else:  # log_uniform
                    draw[key] = float(np.exp(rng.uniform(np.log(arg[0]), np.log(arg[1]))))
            out.append(draw)
        return out


# ---------------------------------------------------------------------------------------------
# Loading (validation rules: ponder.study.validate)

MAX_STUDY_BYTES = 1 << 20  # a study file is a page of TOML; 1 MiB is far beyond any real one


def _apply_quick(raw: dict[str, Any], origin: str = "<study>") -> dict[str, Any]:
    """The study with its ``[quick]`` overrides applied (``"section.key" = value`` or ``key = value``)."""
    raw = copy.deepcopy(raw)
    for key, value in raw.get("quick", {}).items():
        head, _, rest = key.partition(".")
        if head == "quick":  # [quick] overriding itself would change the table while it is read
            raise SpecError(f"{origin}: quick key {key!r} overrides [quick] itself; override a setting, e.g. seeds = 2")
        if rest:
            table = raw.setdefault(head, {})
            if not isinstance(table, dict):
                raise SpecError(f"{origin}: quick key {key!r} overrides {head!r}, which is not a table")
            table[rest] = value
        else:
            raw[head] = value
    return raw


def parse_study(raw: dict[str, Any], *, origin: str = "<study>", quick: bool = False,
                overrides: dict[str, Any] | None = None) -> Study:
    """Validate a study from its parsed TOML.

    Args:
        raw: The TOML document as a dict.
        origin: File name used in messages.
        quick: Apply the ``[quick]`` overrides first.
        overrides: Further top-level overrides (e.g. ``{"seeds": 3}``), applied last.

    Raises:
        SpecError: with every problem of the file in one sentence.
    """
    from ponder.study.validate import check_quick, validate

    if not isinstance(raw.get("quick", {}), dict):
        raise SpecError(f"{origin}: key 'quick' must be a table of overrides, e.g. [quick] seeds = 2 "
                        f"(found {type(raw['quick']).__name__})")
    if not quick:  # the [quick] overrides are checked even when not applied, so --quick never surprises
        check_quick(raw, origin)
    return validate(_apply_quick(raw, origin) if quick else raw, origin=origin, overrides=overrides)


def builtin_studies() -> dict[str, str]:
    """Built-in study names and their one-sentence questions."""
    out = {}
    for item in sorted(resources.files("ponder.studies").iterdir(), key=lambda p: p.name):
        if item.name.endswith(".toml"):
            data = tomllib.loads(item.read_text())
            out[item.name[:-5]] = data.get("question", "")
    return out


def resolve_study_path(name_or_path: str) -> tuple[str, str]:
    """(origin, TOML text) for a built-in study name or a ``.toml`` path."""
    p = Path(name_or_path)
    if name_or_path.endswith(".toml") or p.suffix or "/" in name_or_path:
        if not p.is_file():
            raise SpecError(f"study file {name_or_path!r} does not exist")
        if p.stat().st_size > MAX_STUDY_BYTES:
            raise SpecError(f"study file {name_or_path!r} is {p.stat().st_size:,} bytes; a study file is at most "
                            f"{MAX_STUDY_BYTES:,} bytes of TOML")
        try:
            return str(p), p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError(f"study file {name_or_path!r} is not UTF-8 text (byte {exc.start}); save it as UTF-8 TOML") from None
    names = builtin_studies()
    if name_or_path not in names:
            raise SpecError(registry.unknown("study", name_or_path, list(names),
                                         listing=f"built in: {', '.join(names)}; or give a .toml path"))
    return f"{name_or_path}.toml", resources.files("ponder.studies").joinpath(f"{name_or_path}.toml").read_text()


def load_study(name_or_path: str | Path, *, quick: bool = False, seeds: int | None = None,
               plugins: list[str] | None = None) -> Study:
    """Load and validate a built-in study by name, or a study file by path.

    ``plugins`` (and the study's own ``plugins`` key) are imported first, from the study file's folder
    or the Python path, so the study can name the components they register.

    Raises:
        SpecError: the file is missing, is not TOML, does not validate, or a plugin cannot be loaded.
    """
    origin, text = resolve_study_path(str(name_or_path))
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{origin}: not valid TOML ({exc})") from None
    except RecursionError:
        raise SpecError(f"{origin}: arrays or tables are nested too deeply to be a study") from None
    from ponder.plugins import load_plugins

    listed = raw.get("plugins", [])
    if not isinstance(listed, list):
        raise SpecError(f"{origin}: key 'plugins' must be a list of module names, e.g. plugins = [\"my_components\"]")
    base = Path(origin).parent if Path(origin).is_file() else None
    load_plugins([*listed, *(plugins or [])], base=base)
    overrides = {"seeds": seeds} if seeds is not None else {}
    if plugins:
        overrides["plugins"] = list(dict.fromkeys([*listed, *plugins]))
    return parse_study(raw, origin=origin, quick=quick, overrides=overrides or None)
