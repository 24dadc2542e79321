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
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ponder import registry
from ponder.catalog.datasets.prepare import INPUT_MODES
from ponder.errors import CatalogError, SpecError

__all__ = ["DatasetSpec", "ModelSpec", "TrainingSpec", "EvaluateSpec", "Study", "load_study", "parse_study",
           "builtin_studies", "resolve_study_path", "SECTIONS", "METRICS"]

METRICS = {"accuracy": "max", "loss": "min"}  # metric -> direction, declared, never guessed
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
    inputs: Literal[INPUT_MODES] = "original"  # type: ignore[valid-type]
    train_size: int | None = Field(default=None, ge=1)
    val_fraction: float = Field(default=0.2, ge=0.0, le=0.9)
    label_noise: float = Field(default=0.0, ge=0.0, le=1.0)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return _catalog_name("dataset", v)


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
    """

    shift: dict[str, list[float]] = Field(default_factory=dict)
    convexity: bool = False

    @field_validator("shift")
    @classmethod
    def _shift(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        from ponder.train.evals import SHIFTS

        for kind, levels in v.items():
            if kind not in SHIFTS:
                near = registry.closest(kind, list(SHIFTS))
                raise ValueError(f"unknown shift {kind!r}" + (f"; did you mean {near[0]!r}?" if near else "") + f" (valid: {', '.join(SHIFTS)})")
            if not levels:
                raise ValueError(f"shift {kind!r} has no levels; give at least one")
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
        return out


SECTIONS: dict[str, type[_Section]] = {"dataset": DatasetSpec, "model": ModelSpec, "training": TrainingSpec}


class Study(BaseModel):
    """A validated study. Frozen: expanding it never changes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    question: str = Field(min_length=3, max_length=500)
    seeds: int = Field(default=5, ge=1, le=10000)
    metrics: list[str] = Field(default_factory=lambda: ["accuracy", "loss"], min_length=1)
    reference: str | None = None
    rope: float = Field(default=0.01, ge=0.0, le=1.0)  # region of practical equivalence, in the metric's units
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    factors: dict[str, list[Any]] = Field(default_factory=dict)
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
        return v

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v: list[str]) -> list[str]:
        for m in v:
            if m not in METRICS:
                near = registry.closest(m, list(METRICS))
                raise ValueError(f"unknown metric {m!r}" + (f"; did you mean {near[0]!r}?" if near else "") + f" (valid: {', '.join(METRICS)})")
        return v

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

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
# Loading and validation


def _fmt_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe(err: dict[str, Any], model: type[BaseModel]) -> str:
    loc = _fmt_loc(err["loc"])
    if err["type"] == "extra_forbidden":
        parent: Any = model
        for part in err["loc"][:-1]:
            field = getattr(parent, "model_fields", {}).get(part)
            parent = field.annotation if field is not None else None
        valid = list(getattr(parent, "model_fields", {})) if parent is not None else []
        valid = [v for v in valid if v != "source"]
        near = registry.closest(str(err["loc"][-1]), valid)
        hint = f"; did you mean {near[0]!r}?" if near else f" (valid keys: {', '.join(valid)})"
        return f"key {loc!r} is not a known key{hint}"
    if err["type"] == "missing":
        return f"key {loc!r} is required"
    msg = err["msg"].removeprefix("Value error, ")
    return f"key {loc!r} {msg[0].lower() + msg[1:]} (found {err.get('input')!r})"


def _check_dotted(key: str, where: str) -> tuple[str, str] | str:
    """Split a factor/tune key like 'model.depth'; return an error text when it is not a field."""
    section, _, field = key.partition(".")
    if section not in SECTIONS or not field:
        return f"{where} key {key!r} must be '<section>.<field>' with section one of {', '.join(SECTIONS)}"
    fields = list(SECTIONS[section].model_fields)
    if field not in fields:
        near = registry.closest(field, fields)
        hint = f"; did you mean '{section}.{near[0]}'?" if near else ""
        return f"{where} key {key!r} is not a field of [{section}]{hint}"
    return section, field


def _check_levels(study: Study) -> list[str]:
    """Every factor and tune level must validate inside its section."""
    problems: list[str] = []
    base = study.base_config()
    for where, table in (("factors", study.factors), ("tune", study.tune)):
        for key, levels in table.items():
            parsed = _check_dotted(key, where)
            if isinstance(parsed, str):
                problems.append(parsed)
                continue
            section, field = parsed
            if not levels:
                problems.append(f"{where} key {key!r} has no levels; give at least one")
                continue
            if len({repr(v) for v in levels}) != len(levels):
                problems.append(f"{where} key {key!r} repeats a level; each level must appear once")
            for i, level in enumerate(levels):
                trial = dict(base[section], **{field: level})
                try:
                    SECTIONS[section].model_validate(trial)
                except ValidationError as exc:
                    for e in exc.errors():
                        problems.append(f"{where}.{key!r}[{i}]: " + _describe(e, SECTIONS[section]).replace(f"key {field!r} ", "", 1))
    both = set(study.factors) & set(study.tune)
    if both:
        problems.append(f"{', '.join(sorted(both))} is both a factor and tuned; a setting is either a scientific factor or a nuisance, not both")
    return problems


SEARCH_KEYS = ("draws", "seed")
SEARCH_DISTS = ("log_uniform", "uniform", "choice")


def _check_search(study: Study) -> list[str]:
    """``[search]``: ``draws``, optional ``seed``, and dotted keys each with one distribution."""
    problems: list[str] = []
    table = study.search
    if not table:
        return problems
    draws = table.get("draws")
    if not isinstance(draws, int) or isinstance(draws, bool) or not 1 <= draws <= 1000:
        problems.append(f"search.draws must be a whole number from 1 to 1000 (found {draws!r})")
    if "seed" in table and (not isinstance(table["seed"], int) or isinstance(table["seed"], bool)):
        problems.append(f"search.seed must be a whole number (found {table['seed']!r})")
    space = {k: v for k, v in table.items() if k not in SEARCH_KEYS}
    if not space:
        problems.append("search has no setting to draw; add e.g. \"training.lr\" = {log_uniform = [1e-4, 1e-1]}")
    base = study.base_config()
    for key, dist in space.items():
        parsed = _check_dotted(key, "search")
        if isinstance(parsed, str):
            problems.append(parsed)
            continue
        if key in study.factors or key in study.tune:
            problems.append(f"search key {key!r} is also a factor or tuned; a setting is drawn, tuned on a grid or a factor, not two of these")
            continue
        if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in SEARCH_DISTS:
            problems.append(f"search key {key!r} needs one distribution: {{log_uniform = [lo, hi]}}, {{uniform = [lo, hi]}} or {{choice = [...]}} (found {dist!r})")
            continue
        (name, arg), = dist.items()
        if not isinstance(arg, list) or not arg:
            problems.append(f"search key {key!r}: {name} needs a list (found {arg!r})")
            continue
        if name != "choice":
            if len(arg) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in arg) or not arg[0] < arg[1]:
                problems.append(f"search key {key!r}: {name} needs [lo, hi] with lo < hi (found {arg!r})")
                continue
            if name == "log_uniform" and arg[0] <= 0:
                problems.append(f"search key {key!r}: log_uniform needs lo > 0 (found {arg[0]!r})")
                continue
        section, fld = parsed
        for value in (arg if name == "choice" else arg):
            try:
                SECTIONS[section].model_validate(dict(base[section], **{fld: value}))
            except ValidationError as exc:
                problems.append(f"search.{key!r} value {value!r}: " + _describe(exc.errors()[0], SECTIONS[section]).replace(f"key {fld!r} ", "", 1))
                break
    return problems


def _check_combinations(study: Study) -> list[str]:
    problems = []
    ts, bs = study.dataset.train_size, study.training.batch_size
    sizes = study.factors.get("dataset.train_size", [ts])
    for size in sizes:
        if size is not None and bs > size and "training.batch_size" not in study.factors:
            problems.append(f"training.batch_size = {bs} is larger than dataset.train_size = {size}; use a batch size of at most {size}")
    if study.reference is not None and not any(study.reference == str(v) for lv in study.factors.values() for v in lv):
        problems.append(f"reference {study.reference!r} is not a level of any factor")
    return problems


def _apply_quick(raw: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    for key, value in raw.get("quick", {}).items():
        head, _, rest = key.partition(".")
        if head in ("factors", "tune") and rest:
            raw.setdefault(head, {})[rest] = value
        elif rest:
            raw.setdefault(head, {})[rest] = value
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
    if quick:
        raw = _apply_quick(raw)
    raw = dict(raw, **(overrides or {}), source=origin)
    try:
        study = Study.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(e, Study) for e in exc.errors()]
        raise SpecError(f"{origin}: " + "; ".join(problems)) from None
    problems = _check_levels(study) + _check_search(study) + _check_combinations(study)
    if problems:
        raise SpecError(f"{origin}: " + "; ".join(problems))
    return study


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
        return str(p), p.read_text(encoding="utf-8")
    names = builtin_studies()
    if name_or_path not in names:
        near = registry.closest(name_or_path, list(names))
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise SpecError(f"unknown study {name_or_path!r}{hint} (built in: {', '.join(names)}; or give a .toml path)")
    return f"{name_or_path}.toml", resources.files("ponder.studies").joinpath(f"{name_or_path}.toml").read_text()


def load_study(name_or_path: str | Path, *, quick: bool = False, seeds: int | None = None) -> Study:
    """Load and validate a built-in study by name, or a study file by path.

    Raises:
        SpecError: the file is missing, is not TOML, or does not validate.
    """
    origin, text = resolve_study_path(str(name_or_path))
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{origin}: not valid TOML ({exc})") from None
    overrides = {"seeds": seeds} if seeds is not None else None
    return parse_study(raw, origin=origin, quick=quick, overrides=overrides)
