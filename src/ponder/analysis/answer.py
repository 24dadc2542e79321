"""The answer: a headline of at most two sentences, then the paragraph, computed from the analysis.

Each sentence names its family of tests: the factor verdicts (repeated-measures ANOVA / paired t
and their rank twins over seeds), the interaction tests (two-way RM ANOVA), the trend tests
(Page's L), and, with a reference, the arm-level comparisons (paired t, Holm). Nothing is hidden:
a list that is cut says how many more and in which direction.
"""

from __future__ import annotations

from typing import Any

from ponder.analysis.stats import MIN_SEEDS, Comparison
from ponder.study.keys import varied_keys

__all__ = ["scope", "scope_short", "reference_sentence", "outcome_sentence", "ALPHA", "CHANCE_MARGIN", "UNTESTED"]

ALPHA = 0.05
CHANCE_MARGIN = 0.05  # a run "did not train" when its final training accuracy <= chance + 5 points
UNTESTED = f"not tested against the best (fewer than {MIN_SEEDS} seeds)"  # what a '?' in the tables means


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _fmt(metric: str, v: float) -> str:
    return f"{100 * v:.1f}%" if metric == "accuracy" else f"{v:.3f}"


def _diff(metric: str, v: float) -> str:
    return f"{abs(100 * v):.1f} points" if metric == "accuracy" else f"{abs(v):.3f}"


def _model_words(spec: dict[str, Any], classical: bool) -> str:
    m, factors = spec["model"], varied_keys(spec.get("factors", {}))
    archs = [m["arch"]] if "model.arch" not in factors else None
    if archs is None:
        return "models of each architecture"
    if classical:
        return f"{'an' if m['arch'][:1] in 'aeiou' else 'a'} {m['arch']} (classic pipeline)"
    depth = "depth varied" if "model.depth" in factors else _plural(m["depth"], "hidden layer")
    width = "width varied" if "model.width" in factors else f"width {m['width']}"
    # built-in names are initialisms ("an mlp", "a cnn1d"); a plugin's dotted name reads as a word ("a my.convnet")
    article = "an" if m["arch"][:1] in ("aeiou" if "." in m["arch"] else "aefhilmnorsx") else "a"
    return f"{article} {m['arch']} ({depth}, {width})"


def _lr_words(spec: dict[str, Any]) -> str:
    t, tune, factors = spec["training"], spec.get("tune", {}), varied_keys(spec.get("factors", {}))
    search = {k: v for k, v in spec.get("search", {}).items() if k not in ("draws", "seed")}
    if search:
        names = ", ".join(k.split(".", 1)[1].replace("lr", "learning rate").replace("_", " ") for k in search)
        return (f"{names} tuned per arm by random search ({spec['search']['draws']} draws shared by all arms, "
                "best on the validation split)")
    if "training.lr" in tune:
        grid = ", ".join(f"{v:g}" for v in tune["training.lr"])
        return f"learning rate tuned per arm on the validation split over {{{grid}}}"
    if "training.lr" in factors:
        return "learning rate as a factor"
    return f"fixed learning rate {t['lr']:g}"


def scope(spec: dict[str, Any], seeds: int, *, classical: bool = False) -> str:
    """The protocol in words: data, model, optimizer, learning rate, epochs, seeds (correct for every model kind).

    ``classical``: the study's (fixed) architecture is the classic pipeline, which has no depth,
    width, optimizer or epochs.
    """
    ds, t, factors = spec["dataset"], spec["training"], varied_keys(spec.get("factors", {}))
    data = "each dataset" if "dataset.name" in factors else ds["name"]
    if "dataset.train_size" in factors:
        data += " (training set size varied)"
    elif ds.get("train_size"):
        data += f" ({ds['train_size']} training examples)"
    if "dataset.label_noise" in factors:
        data += " with each rate of corrupted labels"
    elif ds.get("label_noise"):
        data += f" with {100 * ds['label_noise']:.0f}% corrupted labels"
    model = _model_words(spec, classical)
    if "classic pipeline" in model:
        return f"on {data}, {model}, {_plural(seeds, 'seed')} per arm"
    optimizer = "each optimizer" if "training.optimizer" in factors else t["optimizer"]
    loss = "each loss" if "training.loss" in factors else t["loss"]
    epochs = "each number of epochs" if "training.epochs" in factors else _plural(t["epochs"], "epoch")
    return (f"on {data}, {model} trained with {optimizer} and {loss} for {epochs}, "
            f"{_lr_words(spec)}, {_plural(seeds, 'seed')} per arm")


def scope_short(spec: dict[str, Any], *, classical: bool = False) -> str:
    """Where the answer holds, in a few words: "on mnist1d mlps (2 hidden layers)", "for mlps on each dataset"."""
    ds, m, factors = spec["dataset"], spec["model"], varied_keys(spec.get("factors", {}))
    varied = "dataset.name" in factors
    if "model.arch" in factors:
        return "on each dataset" if varied else f"on {ds['name']}"
    if classical:
        return f"with {m['arch']} on {'each dataset' if varied else ds['name']}"
    depth = "" if "model.depth" in factors else f" ({_plural(m['depth'], 'hidden layer')})"
    return f"for {m['arch']}s{depth} on each dataset" if varied else f"on {ds['name']} {m['arch']}s{depth}"


def reference_sentence(ref: str, comps: list[Comparison], metric: str, *, higher: bool = True, where: str = "") -> str:
    """Arms against the reference (paired t over seeds, Holm): better ones and worse ones, none hidden.

    Where the t-test rejects and Wilcoxon cannot (its floor with few seeds), the word is "suggestive".
    ``where`` qualifies the reference (" within each condition of the other factors"). Arms with fewer
    than :data:`MIN_SEEDS` seeds in common with their reference are not tested, and the sentence says so.
    """
    if not comps:
        return ""
    tested = [c for c in comps if c.p_holm == c.p_holm]
    if not tested:
        n = max(c.n for c in comps)
        return (f"No arm is tested against the reference '{ref}'{where}: only {_plural(n, 'seed')} in common with it, "
                f"no test is possible (at least {MIN_SEEDS} needed).")
    untested = len(comps) - len(tested)
    skipped = (f"; {untested} of the {_plural(len(comps), 'other arm')} not tested (fewer than {MIN_SEEDS} seeds in "
               "common with the reference)") if untested else ""
    sig = [c for c in tested if c.p_holm < ALPHA]
    better = [c for c in sig if (c.diff > 0) == higher]
    worse = [c for c in sig if (c.diff > 0) != higher]
    family = f"paired t-test over seeds, Holm-corrected p < {ALPHA}"
    if not sig:
        return f"No other arm differs significantly from the reference '{ref}'{where} ({family}){skipped}."
    parts = []
    for word, group in (("better", better), ("worse", worse)):
        if group:
            group = sorted(group, key=lambda c: -abs(c.diff))
            items = [f"'{c.other}' by {_diff(metric, c.diff)}" + ("" if c.wilcoxon_p < ALPHA else " (suggestive: "
                     "Wilcoxon does not reject)") for c in group[:6]]
            more = f" and {len(group) - 6} more {word}" if len(group) > 6 else ""
            parts.append(f"{_plural(len(group), 'arm')} {'is' if len(group) == 1 else 'are'} {word}: "
                         + "; ".join(items) + more)
    rest = len(tested) - len(sig)
    tail = f"; {rest} of the {_plural(len(comps), 'other arm')} do not differ significantly" if rest else ""
    return f"Against the reference '{ref}'{where} ({family}): " + "; ".join(parts) + tail + skipped + "."


def outcome_sentence(total: int, diverged: int, no_train: int, memorized: int) -> str:
    """How the runs at the chosen settings ended: diverged, did not train, fit without generalizing."""
    parts = [f"{diverged} diverged", f"{no_train} did not train (training accuracy within "
             f"{100 * CHANCE_MARGIN:.0f} points of chance)"]
    if memorized:
        parts.append(f"{memorized} fit their training labels without generalizing (test accuracy at chance)")
    return f"Of the {_plural(total, 'run')} at the chosen settings, " + ", ".join(parts[:-1]) + " and " + parts[-1] + "."
