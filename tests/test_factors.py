"""Planted truths for factors.py and verdict.py: synthetic studies drawn from fixed generators."""

from __future__ import annotations

import itertools
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from ponder.analysis.factors import is_ordered, interactions, main_effects, trend
from ponder.analysis.verdict import (ci_meaningful, factor_sentence, headline, interaction_sentence,
                                     min_seeds_for_significance, trend_sentence)

INIT, ACT, DEPTH, OPT, NOISE = "model.initializer", "model.activation", "model.depth", "training.optimizer", "data.label_noise"
PT = 0.01  # one point of accuracy


def study(levels: dict[str, list], mean, *, seeds: int, sd: float, seed: int, shared: tuple[str, ...] = ()) -> pd.DataFrame:
    """One run per seed and cell: mean(cell) + a seed effect (block) + N(0, sd) noise.

    Factors in ``shared`` do not change the draw: their levels get identical values in a seed.
    """
    rng = np.random.default_rng(seed)
    block = rng.normal(0.0, 2 * PT, size=seeds)
    keys = list(levels)
    rows, noise = [], {}
    for s, cell in itertools.product(range(seeds), itertools.product(*levels.values())):
        c = dict(zip(keys, cell))
        key = (s, *(v for k, v in c.items() if k not in shared))
        if key not in noise:
            noise[key] = rng.normal(0.0, sd)
        rows.append({"seed": s, **c, "value": mean(c) + block[s] + noise[key]})
    return pd.DataFrame(rows)


def sentences(text: str) -> int:
    return len(re.findall(r"[.!?](?:\s+(?=[A-Z])|$)", text))


def crossover_df() -> pd.DataFrame:
    def mean(c):
        sign = 1 if c[ACT] == "relu" else -1
        return 0.80 + (4 * PT if c[INIT] == "he" else -4 * PT) * sign  # he - xavier = +8 with relu, -8 with tanh
    return study({INIT: ["he", "xavier"], ACT: ["relu", "tanh"]}, mean, seeds=5, sd=PT, seed=1)


def magnitude_df() -> pd.DataFrame:
    def mean(c):
        act = (2 * PT if c[DEPTH] == 3 else 12 * PT) * (c[ACT] == "relu")
        return 0.80 + act + 1 * PT * (c[DEPTH] == 10)
    return study({ACT: ["relu", "tanh"], DEPTH: [3, 10]}, mean, seeds=5, sd=0.5 * PT, seed=2)


def test_null_factor_listed_first_never_matters_and_strong_factor_ranks_first():
    def mean(c):
        return 0.80 + 10 * PT * (c[INIT] == "he")
    df = study({OPT: ["adam", "adam_alias"], INIT: ["xavier", "he"]}, mean, seeds=5, sd=PT, seed=3, shared=(OPT,))
    effects = main_effects(df, [OPT, INIT], higher=True, rope=PT)
    assert [e.factor for e in effects] == [INIT, OPT]
    strong, null = effects
    assert strong.verdict == "matters" and strong.best == ["he"] and strong.avoid == ["xavier"]
    assert strong.effect == pytest.approx(10 * PT, abs=2 * PT)
    assert strong.effect_ci[0] > 0
    assert null.verdict == "equivalent" and null.p == 1.0 and sorted(null.best) == ["adam", "adam_alias"]
    assert main_effects(df, [INIT, OPT], higher=True, rope=PT) == effects  # order of the study file decides nothing
    tiny = df.assign(value=df["value"] + np.random.default_rng(4).normal(0, 1e-4, len(df)))
    assert {e.factor: e.verdict for e in main_effects(tiny, [OPT, INIT], higher=True, rope=PT)}[OPT] != "matters"


def test_crossover_interaction_and_a_headline_without_a_single_winner():
    df = crossover_df()
    (test,) = interactions(df, [INIT, ACT], higher=True)
    assert test.verdict == "interaction" and test.kind == "crossover" and INIT in test.crossover_in
    assert {s.at: s.best for s in test.simple[INIT]} == {"relu": "he", "tanh": "xavier"}
    assert "changes with" in interaction_sentence(test)
    effects = main_effects(df, [INIT, ACT], higher=True, rope=PT)
    text = headline(effects, [test], focus=INIT, metric="accuracy", scope_short="on MNIST-1D MLPs")
    assert "depends on model.activation" in text and "he at activation=relu" in text
    assert "Use " not in text and "Prefer " not in text and "No single level wins" in text
    assert sentences(text) <= 2


def test_magnitude_interaction_with_ratio_and_where():
    df = magnitude_df()
    (test,) = interactions(df, [ACT, DEPTH], higher=True)
    assert test.verdict == "interaction" and test.kind == "magnitude" and test.crossover_in == []
    assert test.described == ACT and test.largest_at == "10" and test.smallest_at == "3"
    assert 4 < test.ratio < 9
    text = interaction_sentence(test, "accuracy")
    assert "more at depth=10 than at depth=3" in text and "model.activation matters" in text
    head = headline(main_effects(df, [ACT, DEPTH], higher=True, rope=PT), [test], focus=ACT, metric="accuracy",
                    scope_short="here")
    assert "more at depth=10" in head and sentences(head) <= 2


def test_additive_effects_show_no_interaction():
    def mean(c):
        return 0.80 + 5 * PT * (c[INIT] == "he") + 3 * PT * (c[ACT] == "relu") + 2 * PT * (c[DEPTH] == 10)
    df = study({INIT: ["he", "xavier"], ACT: ["relu", "tanh", "gelu"], DEPTH: [3, 10]}, mean, seeds=8, sd=PT, seed=5)
    tests = interactions(df, [INIT, ACT, DEPTH], higher=True)
    assert len(tests) == 3 and all(t.verdict == "none" and t.kind is None for t in tests)
    assert all(t.test.startswith("two-way repeated-measures ANOVA over 8 seeds") for t in tests)
    assert all(interaction_sentence(t).startswith("No evidence of interaction between") for t in tests)


def test_three_seeds_quote_t_intervals_never_bootstrap_or_dz():
    def mean(c):
        return 0.80 + 10 * PT * (c[INIT] == "he") - 6 * PT * (c[INIT] == "caffe.gaussian")
    df = study({INIT: ["he", "xavier", "caffe.gaussian"]}, mean, seeds=3, sd=PT, seed=6)
    effects = main_effects(df, [INIT], higher=True, rope=PT)
    texts = [factor_sentence(e, "accuracy") for e in effects]
    texts.append(headline(effects, [], focus=None, metric="accuracy", scope_short="on MNIST-1D"))
    assert effects[0].n == 3 and not ci_meaningful(3)[0]
    for text in texts:
        assert "bootstrap" not in text and "d_z" not in text
        assert "95% CI" in text


def test_five_seeds_t_rejects_wilcoxon_cannot_is_suggestive():
    def mean(c):
        return 0.80 + 3 * PT * (c[INIT] == "he")
    df = study({INIT: ["he", "xavier"]}, mean, seeds=5, sd=PT, seed=7)
    (effect,) = main_effects(df, [INIT], higher=True, rope=PT)
    assert effect.p < 0.05 and effect.p_rank == pytest.approx(0.0625) and effect.rank_floor == 0.0625
    assert effect.verdict == "matters" and effect.strength == "suggestive"
    text = factor_sentence(effect, "accuracy")
    head = headline([effect], [], focus=INIT, metric="accuracy", scope_short="here")
    for t in (text, head):
        assert "uggestive" in t and "significant" not in t
    assert "cannot go below 0.0625 with 5 seeds" in text and min_seeds_for_significance() == 6


def test_levels_within_rope_are_equivalent():
    def mean(c):
        return 0.80 + {"sgd": 0.0, "adam": 0.1 * PT, "adamw": 0.2 * PT}[c[OPT]]
    df = study({OPT: ["sgd", "adam", "adamw"]}, mean, seeds=8, sd=0.5 * PT, seed=8)
    (effect,) = main_effects(df, [OPT], higher=True, rope=PT)
    assert effect.verdict == "equivalent" and effect.p_equivalence < 0.05 and effect.strength is None
    assert sorted(effect.best) == ["adam", "adamw", "sgd"] and effect.avoid == []
    assert "practically equivalent" in factor_sentence(effect, "accuracy") and "within 1.0 point " in factor_sentence(
        effect, "accuracy")


def test_monotone_decrease_with_label_noise_is_a_trend():
    def mean(c):
        return 0.90 - 0.5 * c[NOISE]
    df = study({NOISE: [0.0, 0.1, 0.2, 0.3, 0.4]}, mean, seeds=5, sd=PT, seed=9)
    tr = trend(df, NOISE, higher=True)
    assert tr.direction == "decreasing" and tr.improves is False and tr.p < 0.05
    assert tr.slope_ci[1] < 0 and tr.rho < 0 and tr.levels == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert "Accuracy decreases (worsens) as data.label_noise grows" in trend_sentence(tr, "accuracy")
    assert trend(crossover_df(), INIT, higher=True) is None
    assert is_ordered([3, 10, 0.5]) and not is_ordered([True, False]) and not is_ordered(["3", "10"])


def test_loss_like_metric_best_level_is_the_lowest():
    def mean(c):
        return 0.50 + {"he": -0.05, "xavier": 0.0, "orthogonal": 0.04}[c[INIT]]
    df = study({INIT: ["he", "xavier", "orthogonal"]}, mean, seeds=8, sd=0.01, seed=10)
    (effect,) = main_effects(df, [INIT], higher=False, rope=0.01)
    assert effect.levels[0] == "he" and effect.best == ["he"] and effect.effect < 0
    assert effect.verdict == "matters" and effect.strength == "significant"
    text = factor_sentence(effect, "loss")
    assert text.startswith("model.initializer matters") and "use he" in text and re.search(r"\+0\.0\d\d", text)


def test_zero_variance_and_too_few_seeds_and_missing_runs_stay_clean():
    flat = pd.DataFrame([{"seed": s, INIT: lv, ACT: a, "value": 0.7} for s in range(4) for lv in ["he", "xavier", "lecun"]
                         for a in ["relu", "tanh"]])
    effects = main_effects(flat, [INIT, ACT], higher=True, rope=PT)
    assert all(e.verdict == "equivalent" and e.p == 1.0 and e.mde == 0.0 for e in effects)
    assert interactions(flat, [INIT, ACT], higher=True)[0].p == 1.0
    two = crossover_df().query("seed < 2")
    (e,) = main_effects(two, [INIT], higher=True, rope=PT)
    assert e.verdict == "no evidence" and e.p is None and "only 2 seeds" in e.reason
    one = crossover_df().query("seed < 1")
    assert "1 seed " in factor_sentence(main_effects(one, [INIT], higher=True, rope=PT)[0], "accuracy")
    assert interactions(two, [INIT, ACT], higher=True)[0].verdict == "none"
    holed = crossover_df()
    holed.loc[(holed["seed"] == 3) & (holed[INIT] == "he") & (holed[ACT] == "tanh"), "value"] = math.nan
    (t,) = interactions(holed, [INIT, ACT], higher=True)
    assert t.n == 4 and "seed 3 dropped" in t.note and "seed 3 dropped" in interaction_sentence(t)


def test_interaction_with_zero_error_term_is_decided_from_the_data():
    def mean(c):
        return 0.80 + 4 * PT * (c[INIT] == "he") * (c[ACT] == "relu")  # identical interaction in every seed, no noise
    df = study({INIT: ["he", "xavier"], ACT: ["relu", "tanh"]}, mean, seeds=6, sd=0.0, seed=11)
    (t,) = interactions(df, [INIT, ACT], higher=True)
    assert t.p == pytest.approx(2 / 2**6) and "sign-flip" in t.test and t.verdict == "interaction"


def test_linked_factor_is_a_factor_like_any_other():
    link = "model.activation+model.initializer"
    def mean(c):
        return 0.80 + 5 * PT * (c[link] == "relu+torch.kaiming_normal") + 2 * PT * (c[DEPTH] == 3)
    df = study({link: ["relu+torch.kaiming_normal", "tanh+torch.xavier_uniform"], DEPTH: [3, 10]}, mean, seeds=6, sd=PT,
               seed=12)
    effects = main_effects(df, [DEPTH, link], higher=True, rope=PT)
    assert effects[0].factor == link and effects[0].best == ["relu+torch.kaiming_normal"]
    (t,) = interactions(df, [DEPTH, link], higher=True)
    assert "activation+initializer" not in interaction_sentence(t) or t.verdict == "interaction"


def test_every_result_is_strict_json():
    frames = [crossover_df(), magnitude_df(), crossover_df().query("seed < 2")]
    for df in frames:
        factors = [c for c in df.columns if c not in ("seed", "value")]
        objs = main_effects(df, factors, higher=True, rope=PT) + interactions(df, factors, higher=True)
        for obj in objs:
            json.dumps(obj.to_json(), allow_nan=False)
    noise = study({NOISE: [0.0, 0.2, 0.4]}, lambda c: 0.7, seeds=3, sd=0.0, seed=13)
    json.dumps(trend(noise, NOISE, higher=True).to_json(), allow_nan=False)
    json.dumps(main_effects(noise, [NOISE], higher=True, rope=PT)[0].to_json(), allow_nan=False)
