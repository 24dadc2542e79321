"""Validation of a study file: every value through the typed field it sets, every problem in one pass.

Factor, tune, search and ``[quick]`` values go through the same section models as the fixed
settings (coerced as pydantic coerces them, ``"2"`` -> 2 for a depth, or refused), and levels
that are equal after that are refused as duplicates. The result is one sentence naming the file,
each key, what was found and what would be right.
"""

from __future__ import annotations

import json
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from ponder import registry
from ponder.errors import SpecError
from ponder.study.keys import varied_keys
from ponder.study.spec import SEARCH_KEYS, SECTIONS, Study

__all__ = ["validate", "check_quick", "SEARCH_DISTS", "split_key"]

SEARCH_DISTS = ("log_uniform", "uniform", "choice")


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
        valid = [v for v in getattr(parent, "model_fields", {}) if v != "source"] if parent is not None else []
        hint = registry.did_you_mean(str(err["loc"][-1]), valid) or f" (valid keys: {', '.join(valid)})"
        return f"key {loc!r} is not a known key{hint}"
    if err["type"] == "missing":
        return f"key {loc!r} is required"
    msg = err["msg"].removeprefix("Value error, ")
    found = repr(err.get("input"))
    return f"key {loc!r} {msg[0].lower() + msg[1:]} (found {found[:80] + '...' if len(found) > 80 else found})"


def split_key(key: str, where: str) -> list[tuple[str, str]] | str:
    """``"model.depth"`` -> [("model", "depth")]; a linked ``"a.b+c.d"`` gives one pair per key; an error text
    when a part is not a field."""
    out = []
    for part in key.split("+"):
        section, _, field = part.partition(".")
        if section not in SECTIONS or not field:
            return f"{where} key {key!r} must be '<section>.<field>' with section one of {', '.join(SECTIONS)}"
        fields = list(SECTIONS[section].model_fields)
        if field not in fields:
            hint = registry.did_you_mean(field, fields, prefix=f"{section}.")
            return f"{where} key {part!r} is not a field of [{section}]{hint}"
        out.append((section, field))
    if len(set(out)) != len(out):
        return f"{where} key {key!r} links the same setting twice"
    return out


def _normalize(base: dict[str, Any], section: str, field: str, value: Any, where: str) -> tuple[Any, list[str]]:
    """The value as the section's typed field holds it, or the problems that refuse it."""
    current = base[section].get(field)
    if isinstance(value, bool) and not isinstance(current, bool):  # pydantic would read true as 1
        kind = {int: "a whole number", float: "a number", str: "a name"}.get(type(current), "another value")
        return None, [f"{where}: {str(value).lower()} is not a value of {section}.{field}; give {kind}"]
    try:
        typed = SECTIONS[section].model_validate(dict(base[section], **{field: value}))
    except ValidationError as exc:
        return None, [f"{where}: " + _describe(e, SECTIONS[section]).replace(f"key {field!r} ", "", 1)
                      for e in exc.errors()]
    return getattr(typed, field), []


def _levels(study: Study, table: dict[str, list[Any]], where: str) -> tuple[dict[str, list[Any]], list[str]]:
    """Every level of a factor or tune table normalized through its typed field; duplicates refused."""
    problems: list[str] = []
    base = study.base_config()
    out: dict[str, list[Any]] = {}
    for key, levels in table.items():
        parts = split_key(key, where)
        if isinstance(parts, str):
            problems.append(parts)
            continue
        if not isinstance(levels, list) or not levels:
            problems.append(f"{where} key {key!r} has no levels; give a list with at least one")
            continue
        normal = []
        for i, level in enumerate(levels):
            values = level if len(parts) > 1 else [level]
            if len(parts) > 1 and (not isinstance(level, list) or len(level) != len(parts)):
                problems.append(f"{where}.{key!r}[{i}] must be a list of {len(parts)} values, one per linked key "
                                f"(found {level!r})")
                continue
            got = [_normalize(base, s, f, v, f"{where}.{key!r}[{i}]") for (s, f), v in zip(parts, values)]
            problems += [p for _, errs in got for p in errs]
            normal.append([v for v, _ in got] if len(parts) > 1 else got[0][0])
        dumped = [json.dumps(v, sort_keys=True, default=str) for v in normal]
        if len(set(dumped)) != len(dumped):
            problems.append(f"{where} key {key!r} repeats a level (after reading each as its type, e.g. 1 and 1.0); "
                            "each level must appear once")
        out[key] = normal
    return out, problems


def _check_overlap(study: Study) -> list[str]:
    seen: dict[str, str] = {}
    for key in study.factors:  # "a+b" and "a" (or "a+c") would both set a: one factor's pairing silently lost
        for part in key.split("+"):
            if part in seen:
                return [f"{part} is set in two factors, {seen[part]!r} and {key!r}; each setting may appear in one "
                        "factor (link its levels with the other setting's in one \"a+b\" factor)"]
            seen[part] = key
    keys = {"factors": varied_keys(study.factors), "tune": set(study.tune),
            "search": {k for k in study.search if k not in SEARCH_KEYS}}
    both = (keys["factors"] & keys["tune"]) | (keys["factors"] & keys["search"]) | (keys["tune"] & keys["search"])
    if both:
        return [f"{', '.join(sorted(both))} is set in two of factors, tune and search; a setting is a scientific "
                "factor, tuned on a grid or drawn at random, one of these"]
    return []


def _check_search(study: Study) -> list[str]:
    """``[search]``: ``draws``, optional ``seed``, and dotted keys each with one distribution."""
    table = study.search
    if not table:
        return []
    problems: list[str] = []
    draws = table.get("draws")
    if not isinstance(draws, int) or isinstance(draws, bool) or not 1 <= draws <= 1000:
        problems.append(f"search.draws must be a whole number from 1 to 1000 (found {draws!r})")
    if "seed" in table and (not isinstance(table["seed"], int) or isinstance(table["seed"], bool)):
        problems.append(f"search.seed must be a whole number (found {table['seed']!r})")
    space = {k: v for k, v in table.items() if k not in SEARCH_KEYS}
    if not space:
        problems.append("search has no setting to draw; add e.g. \"training.lr\" = {log_uniform = [1e-4, 1e-1]}")
    for key, dist in space.items():
        problems += _check_distribution(study, key, dist)
    return problems


def _check_distribution(study: Study, key: str, dist: Any) -> list[str]:
    parts = split_key(key, "search")
    if isinstance(parts, str):
        return [parts]
    if len(parts) > 1:
        return [f"search key {key!r} links keys; draw each setting on its own"]
    if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in SEARCH_DISTS:
        return [f"search key {key!r} needs one distribution: {{log_uniform = [lo, hi]}}, {{uniform = [lo, hi]}} "
                f"or {{choice = [...]}} (found {dist!r})"]
    (name, arg), = dist.items()
    if not isinstance(arg, list) or not arg:
        return [f"search key {key!r}: {name} needs a list (found {arg!r})"]
    if name != "choice":
        if len(arg) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in arg) \
                or not arg[0] < arg[1]:
            return [f"search key {key!r}: {name} needs [lo, hi] with lo < hi (found {arg!r})"]
        if name == "log_uniform" and arg[0] <= 0:
            return [f"search key {key!r}: log_uniform needs lo > 0 (found {arg[0]!r})"]
    (section, fld), = parts
    base = study.base_config()
    field = type(getattr(study, section)).model_fields.get(fld)
    whole = field is not None and int in (field.annotation, *get_args(field.annotation))
    if name != "choice" and whole:  # an integer setting (depth, batch size, train size): draws would be fractions
        return [f"search key {key!r} is a whole number: draw it with {{choice = [...]}} (e.g. {{choice = {arg!r}}}), "
                f"not {name}"]
    for value in arg:
        _, errs = _normalize(base, section, fld, value, f"search.{key!r} value {value!r}")
        if errs:
            return errs[:1]
    return []


def _check_combinations(study: Study) -> list[str]:
    problems = []
    bs = study.training.batch_size
    for size in study.factors.get("dataset.train_size", [study.dataset.train_size]):
        if size is not None and bs > size and "training.batch_size" not in study.factors:
            problems.append(f"training.batch_size = {bs} is larger than dataset.train_size = {size}; "
                            f"use a batch size of at most {size}")
    if study.reference is not None:
        problems += _check_reference(study)
    if not {"dataset.name", "dataset.options"} & varied_keys(study.factors):
        from ponder.catalog.datasets.base import check_options  # options checked by their names here, values on run

        try:
            check_options(study.dataset.name, study.dataset.options)
        except SpecError as exc:
            problems.append(str(exc))
    if study.focus is not None and study.focus not in study.factors:
        problems.append(registry.unknown("focus factor", study.focus, list(study.factors)))
    return problems


def _level_texts(study: Study) -> dict[str, list[str]]:
    """Each factor's levels as a reference names them: the text of a level, or of a linked level's parts joined by '+'."""
    return {key: [str(v) if not isinstance(v, list) else "+".join(str(x) for x in v) for v in lv]
            for key, lv in study.factors.items()}


def _reference_text(study: Study) -> str | None:
    """The level text the reference names: itself, or the level it equals as a number ('0' for a level 0.0)."""
    ref = study.reference
    for texts in _level_texts(study).values():
        for text in texts:
            if text == ref:
                return text
            try:
                if float(text) == float(ref):
                    return text
            except (TypeError, ValueError):
                continue
    return None


def _check_reference(study: Study) -> list[str]:
    text = _reference_text(study)
    texts = _level_texts(study)
    if not texts:
        return [f"reference {study.reference!r} names a level of a factor, and the study has no [factors]; add one or "
                "drop the reference"]
    if text is None:
        return [registry.unknown("reference level", study.reference, [t for lv in texts.values() for t in lv])]
    owners = [key for key, lv in texts.items() if text in lv]
    if len(owners) > 1:
        return [f"reference {study.reference!r} is a level of {len(owners)} factors ({', '.join(owners)}); a reference "
                "must name a level of one factor only (drop the reference, or give the factors distinct levels)"]
    return []


def validate(raw: dict[str, Any], *, origin: str, overrides: dict[str, Any] | None = None) -> Study:
    """The validated :class:`Study` of a parsed TOML document (``[quick]`` already applied if wanted).

    Raises:
        SpecError: with every problem of the file in one sentence.
    """
    raw = dict(raw, **(overrides or {}), source=origin)
    try:
        study = Study.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{origin}: " + "; ".join(_describe(e, Study) for e in exc.errors())) from None
    factors, problems = _levels(study, study.factors, "factors")
    tune, more = _levels(study, study.tune, "tune")
    study = study.model_copy(update={"factors": factors, "tune": tune})  # later checks see levels as typed
    problems += more + _check_overlap(study) + _check_search(study) + _check_combinations(study)
    if problems:
        raise SpecError(f"{origin}: " + "; ".join(problems))
    if study.reference is not None:  # as the factor writes it: reference = "0" names the level 0.0
        study = study.model_copy(update={"reference": _reference_text(study)})
    return study


def check_quick(raw: dict[str, Any], origin: str) -> None:
    """Refuse a ``[quick]`` table whose overrides would not validate, even when ``--quick`` is not given."""
    from ponder.study.spec import _apply_quick

    if not raw.get("quick"):
        return
    try:
        validate(_apply_quick(raw, origin), origin=origin)
    except SpecError as exc:
        raise SpecError(f"{str(exc).split(': ', 1)[0]}: with its [quick] overrides: {str(exc).split(': ', 1)[-1]}") from None
