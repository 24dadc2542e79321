"""The answer states planted truths exactly: null factors, strong factors, references, interactions, small samples.

Records are synthetic (no training): each test plants a known effect and checks the JSON analysis
and the sentences computed from it.
"""

from __future__ import annotations

import json

import numpy as np

from ponder.analysis import analyze



def _stable_noise(seed: int, cell: str, sd: float = 0.01) -> float:
    digest = sum(ord(c) * (i + 1) for i, c in enumerate(cell))
    return float(np.random.default_rng([seed, digest]).normal(0, sd))


def test_a_null_factor_listed_first_is_not_matters_while_a_strong_second_factor_is(synthetic_store, make_spec):
    study = make_spec(seeds=6, tune=None, factors={
        "model.initializer": ["torch.xavier_uniform", "keras.glorot_uniform"],  # the same law under two names
        "model.activation": ["relu", "tanh"]})

    def value(levels, tuned, seed):
        base = 0.80 if levels["model.activation"] == "relu" else 0.70
        acc = base + _stable_noise(seed, levels["model.activation"] + levels["model.initializer"], 0.005)
        return acc, acc, 0.95

    with synthetic_store(study, value) as st:
        out = analyze(st, "tiny").to_json()
    verdicts = {f["factor"]: f["verdict"] for f in out["factors"]}
    assert verdicts["model.activation"] == "matters" and verdicts["model.initializer"] != "matters"
    assert out["factors"][0]["factor"] == "model.activation"  # reported by effect size, not by file order
    assert out["factors"][0]["best"] == ["relu"]
    assert "model.activation" in out["headline"] and "relu" in out["headline"]
    json.dumps(out, allow_nan=False)


def test_an_arm_better_than_the_reference_is_named_better(synthetic_store, make_spec):
    inits = ["torch.default", "torch.kaiming_normal", "torch.xavier_uniform", "torch.orthogonal", "lsuv", "torch.zeros"]
    study = make_spec(seeds=8, tune=None, reference="torch.default", factors={"model.initializer": inits})
    means = {"torch.default": 0.70, "torch.kaiming_normal": 0.75, "torch.xavier_uniform": 0.65,
             "torch.orthogonal": 0.64, "lsuv": 0.63, "torch.zeros": 0.50}

    def value(levels, tuned, seed):
        acc = means[levels["model.initializer"]] + _stable_noise(seed, levels["model.initializer"], 0.003)
        return acc, acc, 0.9

    with synthetic_store(study, value) as st:
        an = analyze(st, "tiny")
    sentence = next(s for s in an.sentences if s.startswith("Against the reference"))
    assert "1 arm is better: 'initializer=torch.kaiming_normal'" in sentence
    assert "4 arms are worse" in sentence and "more" not in sentence  # nothing hidden


def test_a_crossover_is_an_interaction_and_the_headline_names_no_single_winner(synthetic_store, make_spec):
    study = make_spec(seeds=6, tune=None, model__depth=20, factors={
        "model.initializer": ["torch.kaiming_normal", "torch.xavier_uniform"], "model.activation": ["relu", "tanh"]})

    def value(levels, tuned, seed):
        he = levels["model.initializer"] == "torch.kaiming_normal"
        relu = levels["model.activation"] == "relu"
        acc = 0.70 + (0.08 if he == relu else -0.08) + _stable_noise(seed, str(levels), 0.01)
        return acc, acc, 0.9

    with synthetic_store(study, value) as st:
        out = analyze(st, "tiny").to_json()
    (inter,) = out["interactions"]
    assert inter["verdict"] == "interaction" and inter["kind"] == "crossover" and inter["p"] < 0.05
    assert "depends on" in out["headline"] and "No single level wins" in out["headline"]


def test_a_magnitude_interaction_is_detected_and_described(synthetic_store, make_spec):
    study = make_spec(seeds=6, tune=None, focus="model.activation", factors={
        "model.activation": ["relu", "tanh"], "model.depth": [3, 10]})

    def value(levels, tuned, seed):
        gap = 0.02 if levels["model.depth"] == 3 else 0.12
        acc = 0.80 - (gap if levels["model.activation"] == "tanh" else 0.0) + _stable_noise(seed, str(levels), 0.005)
        return acc, acc, 0.9

    with synthetic_store(study, value) as st:
        an = analyze(st, "tiny")
    (inter,) = an.to_json()["interactions"]
    assert inter["verdict"] == "interaction" and inter["kind"] == "magnitude"
    assert "more at model.depth=10" in an.answer or "more at depth=10" in an.answer


def test_no_interaction_is_claimed_for_additive_effects(synthetic_store, make_spec):
    study = make_spec(seeds=6, tune=None, factors={
        "model.initializer": ["torch.kaiming_normal", "torch.xavier_uniform"], "model.activation": ["relu", "tanh"]})

    def value(levels, tuned, seed):
        acc = 0.7 + 0.05 * (levels["model.activation"] == "relu") + 0.03 * (levels["model.initializer"] == "torch.kaiming_normal")
        acc += _stable_noise(seed, str(levels), 0.01)
        return acc, acc, 0.9

    with synthetic_store(study, value) as st:
        an = analyze(st, "tiny")
    assert [t.verdict for t in an.interaction_tests] == ["none"]
    assert "interaction between" not in an.headline


def test_three_seeds_print_no_meaningless_confidence_interval(synthetic_store, make_spec):
    study = make_spec(seeds=3, tune=None)

    def value(levels, tuned, seed):
        acc = 0.7 + 0.05 * (levels["model.initializer"] == "torch.kaiming_normal") + _stable_noise(seed, str(levels))
        return acc, acc, 0.9

    with synthetic_store(study, value) as st:
        an = analyze(st, "tiny")
    assert all(np.isnan(e["dz_lo"]) and np.isnan(e["dz_hi"]) for e in an.effects.values())
    assert any("cannot go below p = 0.25" in w for w in an.warnings)
    assert "significant" not in an.headline.replace("not significant", "")


def test_networks_that_fit_random_labels_are_not_counted_as_not_trained(synthetic_store, make_spec):
    study = make_spec(seeds=4, tune=None, factors={"dataset.label_noise": [0.0, 1.0]})

    def value(levels, tuned, seed):
        return (0.9, 0.9, 1.0) if levels["dataset.label_noise"] == 0.0 else (0.5, 0.5, 1.0)

    with synthetic_store(study, value) as st:
        an = analyze(st, "tiny")
    assert sum(a.n_chance for a in an.arms) == 0 and sum(a.n_memorized for a in an.arms) == 4
    assert "4 fit their training labels without generalizing" in an.answer


def test_a_study_where_nothing_trained_names_no_best_arm(synthetic_store, make_spec):
    study = make_spec(seeds=4, tune=None)

    def value(levels, tuned, seed):
        return 0.5, 0.5, 0.5  # chance everywhere (2 classes)

    with synthetic_store(study, value) as st:
        an = analyze(st, "tiny")
    assert an.headline.startswith("No arm trained")


def test_a_monotone_label_noise_curve_gets_a_trend_sentence(synthetic_store, make_spec):
    study = make_spec(seeds=5, tune=None, factors={"dataset.label_noise": [0.0, 0.2, 0.5, 0.8]})

    def value(levels, tuned, seed):
        acc = 0.9 - 0.5 * levels["dataset.label_noise"] + _stable_noise(seed, str(levels), 0.01)
        return acc, acc, 0.95

    with synthetic_store(study, value) as st:
        an = analyze(st, "tiny")
    (t,) = an.trends
    assert t.direction == "decreasing" and t.slope_ci[1] < 0
    assert any("decreases" in s and "dataset.label_noise" in s for s in an.sentences)


def test_linked_levels_pair_activation_with_its_initializer(synthetic_store, make_spec):
    study = make_spec(seeds=4, tune=None, factors={
        "model.activation+model.initializer": [["relu", "torch.kaiming_normal"], ["tanh", "torch.xavier_uniform"],
                                               ["selu", "torch.default"]]})
    from ponder.study import expand

    runs = expand(study)
    assert len(runs) == 3 * 4
    assert {(r.config.model.activation, r.config.model.initializer) for r in runs} == {
        ("relu", "torch.kaiming_normal"), ("tanh", "torch.xavier_uniform"), ("selu", "torch.default")}
    assert {r.arm.label for r in runs} == {"activation+initializer=relu+torch.kaiming_normal",
                                           "activation+initializer=tanh+torch.xavier_uniform",
                                           "activation+initializer=selu+torch.default"}

    def value(levels, tuned, seed):
        acc = {"relu": 0.8, "tanh": 0.75, "selu": 0.7}[levels["model.activation+model.initializer"][0]]
        return acc + 0.001 * seed, acc + 0.001 * seed, 0.9

    with synthetic_store(study, value) as st:
        out = analyze(st, "tiny").to_json()
    assert out["factors"][0]["best"] == ["relu+torch.kaiming_normal"]


def test_an_ordered_focus_with_a_trend_leads_the_headline_with_its_direction(synthetic_store, make_spec):
    study = make_spec(seeds=5, tune=None, focus="dataset.label_noise",
                      factors={"dataset.label_noise": [0.0, 0.2, 0.5, 0.8]})

    def value(levels, tuned, seed):
        acc = 0.9 - 0.5 * levels["dataset.label_noise"] + _stable_noise(seed, str(levels), 0.01)
        return acc, acc, 0.95

    with synthetic_store(study, value) as st:
        an = analyze(st, "tiny")
    assert an.headline.startswith("Test accuracy decreases as dataset.label_noise grows")


def test_a_reference_level_of_several_arms_is_the_reference_within_each_condition(synthetic_store, make_spec):
    """'torch.default' under two optimizers: each arm is compared with torch.default under its own optimizer, so a
    better optimizer does not make every one of its arms 'better than the reference'."""
    study = make_spec(seeds=8, tune=None, reference="torch.default", factors={
        "model.initializer": ["torch.default", "torch.kaiming_normal", "torch.xavier_uniform"],
        "training.optimizer": ["sgd", "adam"]})
    means = {("torch.default", "sgd"): 0.70, ("torch.kaiming_normal", "sgd"): 0.75, ("torch.xavier_uniform", "sgd"): 0.70,
             ("torch.default", "adam"): 0.85, ("torch.kaiming_normal", "adam"): 0.85, ("torch.xavier_uniform", "adam"): 0.80}

    def value(levels, tuned, seed):
        key = (levels["model.initializer"], levels["training.optimizer"])
        acc = means[key] + _stable_noise(seed, str(key), 0.003)
        return acc, acc, 0.9

    with synthetic_store(study, value) as st:
        an = analyze(st, "tiny")
    assert an.reference == "torch.default" and len(an.reference_arms) == 2
    pairs = {(c.other, c.ref) for c in an.comparisons}
    assert len(pairs) == 4 and all(("optimizer=sgd" in o) == ("optimizer=sgd" in r) for o, r in pairs)
    sentence = next(s for s in an.sentences if s.startswith("Against the reference"))
    assert sentence.startswith("Against the reference 'torch.default' within each condition of the other factors")
    assert "1 arm is better: 'initializer=torch.kaiming_normal, optimizer=sgd' by " in sentence
    assert "1 arm is worse: 'initializer=torch.xavier_uniform, optimizer=adam' by " in sentence
    assert "2 of the 4 other arms do not differ significantly" in sentence
    assert an.to_json()["reference_arms"] == an.reference_arms
    from ponder.reporting.markdown import summary_markdown

    md = summary_markdown(an)
    assert "within each condition of the other factors" in md and "| against |" in md


def test_arms_without_a_reference_in_their_condition_are_named_in_a_warning(synthetic_store, make_spec):
    """The reference arm of one condition has no finished run (all its runs lost): that condition's other arm is
    not compared, and a warning says so instead of leaving it out silently."""
    from ponder.study import expand

    study = make_spec(seeds=4, tune=None, reference="torch.default", factors={
        "model.initializer": ["torch.default", "torch.kaiming_normal"], "training.optimizer": ["sgd", "adam"]})

    def value(levels, tuned, seed):
        acc = 0.7 + 0.01 * seed + (0.05 if levels["training.optimizer"] == "adam" else 0.0)
        return acc, acc, 0.9

    lost = [r.id for r in expand(study) if r.arm.as_dict() == {"model.initializer": "torch.default",
                                                                 "training.optimizer": "adam"}]
    with synthetic_store(study, value) as st:
        st.con.execute("DELETE FROM epochs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [lost])
        st.con.execute("DELETE FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [lost])
        an = analyze(st, "tiny")
    assert an.reference == "torch.default" and len(an.reference_arms) == 1
    assert [(c.other, c.ref) for c in an.comparisons] == [("initializer=torch.kaiming_normal, optimizer=sgd",
                                                           "initializer=torch.default, optimizer=sgd")]
    assert "1 of the 2 other arms have no finished reference arm ('torch.default')" in " ".join(an.warnings)


def test_two_seeds_against_a_reference_are_not_tested_and_the_sentence_says_so(synthetic_store, make_spec):
    """A paired t-test over 2 seeds (1 degree of freedom) is no test: the reference sentence, the comparison
    table and the practical-equivalence verdicts say so, as the factor sentences do; intervals stay in 0-100%."""
    study = make_spec(seeds=2, tune=None, reference="sgd", focus="training.optimizer", factors={
        "model.width": [16, 64, 256], "training.optimizer": ["sgd", "momentum", "adam"]})
    gain = {"sgd": 0.0, "momentum": 0.10, "adam": 0.12}  # far beyond the rope: 2 seeds could "show" it

    def value(levels, tuned, seed):
        acc = min(0.999, 0.85 + gain[levels["training.optimizer"]] + (0.03 if seed else -0.03))
        return acc, acc, 0.99

    with synthetic_store(study, value) as st:
        an = analyze(st, "tiny")
    sentence = next(s for s in an.sentences if "reference 'sgd'" in s)
    assert sentence == ("No arm is tested against the reference 'sgd' within each condition of the other factors: "
                        "only 2 seeds in common with it, no test is possible (at least 3 needed).")
    assert all(c.n == 2 and c.t_p != c.t_p and c.p_holm != c.p_holm for c in an.comparisons)
    assert an.ropes == {}  # no "better (P = 0.97)" from a posterior that is mostly its prior
    assert all(0.0 <= a.test.lo <= a.test.hi <= 1.0 for a in an.arms if a.test.lo == a.test.lo)
    assert any(a.test.hi == 1.0 for a in an.arms)  # the t-interval reached past 100% and was cut there
    widths = [a.levels["model.width"] for a in an.arms]
    assert widths == sorted(widths)  # arms in the study's level order: 16, 64, 256 (not the text order 16, 256, 64)
    assert [c.label.split(",")[0] for c in an.conditions] == ["width=16", "width=64", "width=256"]
    assert all(list(c.levels) == ["sgd", "momentum", "adam"] for c in an.conditions)  # rows in the study's order too
    for c in an.conditions:  # no level is called tied with (or worse than) the best on 2 seeds: marked untested
        assert (c.tied, c.worse, sorted(c.untested)) == ([], [], sorted(set(c.levels) - {c.best}))
        assert {c.mark(lvl) for lvl in c.levels} == {"(best)", "?"}


def test_the_reference_sentence_counts_the_arms_it_could_not_test():
    from ponder.analysis.answer import reference_sentence
    from ponder.analysis.stats import Comparison

    nan = float("nan")
    tested = Comparison("ref", "a", 6, 0.05, 0.03, 0.07, 0.001, 0.03, 2.0, p_holm=0.002)
    same = Comparison("ref", "b", 6, 0.001, -0.01, 0.01, 0.8, 0.9, 0.1, p_holm=0.8)
    short = Comparison("ref", "c", 2, 0.2, -1.0, 1.4, nan, nan, nan, p_holm=nan)  # its other seeds failed
    assert reference_sentence("ref", [tested, same, short], "accuracy") == (
        "Against the reference 'ref' (paired t-test over seeds, Holm-corrected p < 0.05): 1 arm is better: 'a' by "
        "5.0 points; 1 of the 3 other arms do not differ significantly; 1 of the 3 other arms not tested (fewer than "
        "3 seeds in common with the reference).")
    assert reference_sentence("ref", [same, short], "accuracy") == (
        "No other arm differs significantly from the reference 'ref' (paired t-test over seeds, Holm-corrected "
        "p < 0.05); 1 of the 2 other arms not tested (fewer than 3 seeds in common with the reference).")


def test_the_scope_reads_built_in_initialisms_and_plugin_names_with_the_right_article():
    from ponder.analysis.answer import _model_words

    def words(arch: str) -> str:
        return _model_words({"model": {"arch": arch, "depth": 2, "width": 16}}, classical=False)

    assert words("mlp").startswith("an mlp (") and words("cnn1d").startswith("a cnn1d (")
    assert words("my.convnet").startswith("a my.convnet (") and words("acme.resnet").startswith("an acme.resnet (")


def test_the_scope_names_what_linked_and_data_factors_vary():
    from ponder.analysis.answer import scope

    spec = {"dataset": {"name": "spirals", "train_size": 300, "label_noise": 0.0},
            "model": {"arch": "mlp", "depth": 2, "width": 16},
            "training": {"optimizer": "momentum", "loss": "cross_entropy", "epochs": 5, "lr": 0.05},
            "factors": {"training.loss+training.batch_size": [["cross_entropy", 32], ["squared_error", 64]],
                        "dataset.label_noise": [0.0, 0.3], "training.epochs": [5, 10]}}
    assert scope(spec, 3) == ("on spirals (300 training examples) with each rate of corrupted labels, an mlp (2 hidden "
                              "layers, width 16) trained with momentum and each loss for each number of epochs, fixed "
                              "learning rate 0.05, 3 seeds per arm")


def test_a_study_where_most_runs_did_not_train_warns_before_anything_is_read(synthetic_store, make_spec):
    study = make_spec(seeds=3, tune=None, factors={"model.activation": ["relu", "tanh"]})

    def value(levels, tuned, seed):  # 2 classes: chance 50%; tanh never trains, relu in one seed of three
        trained = levels["model.activation"] == "relu" and seed == 0
        return (0.9, 0.9, 0.95) if trained else (0.5, 0.5, 0.51)

    with synthetic_store(study, value) as st:
        an = analyze(st, "tiny")
    assert any(w.startswith("5 of the 6 runs at the chosen settings diverged or did not train") for w in an.warnings)


def test_an_arm_whose_every_run_diverged_is_never_ranked_best(synthetic_store, make_spec):
    study = make_spec(seeds=3, tune=None, factors={"model.activation": ["relu", "tanh"]})

    def value(levels, tuned, seed):  # tanh diverges (scored at chance, 50%); relu ends below chance
        return (0.4, 0.4, 0.45) if levels["model.activation"] == "relu" else (0.5, None, 0.5)

    with synthetic_store(study, value) as st:
        an = analyze(st, "tiny")
    best = min(an.arms, key=lambda a: a.rank)
    assert best.levels["model.activation"] == "relu" and best.n_diverged == 0
