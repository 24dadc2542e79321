"""Study files: valid ones load, bad ones give one sentence naming file, key and the fix."""

from __future__ import annotations

import pytest

from ponder.errors import SpecError
from ponder.study import load_study
from ponder.study.spec import parse_study
from tests.conftest import TINY, write


def test_tiny_study_loads(tiny_study):
    s = load_study(tiny_study)
    assert s.name == "tiny" and s.seeds == 3
    assert s.factors == {"model.initializer": ["torch.default", "torch.kaiming_normal"]}
    assert s.dataset.options == {"n_train": 300, "n_test": 200}
    assert s.primary_metric == "accuracy"


def test_builtin_quickstart_loads_and_quick_overrides_apply():
    full = load_study("quickstart")
    quick = load_study("quickstart", quick=True)
    assert quick.seeds < full.seeds and quick.training.epochs < full.training.epochs
    assert load_study("quickstart", seeds=9).seeds == 9


@pytest.mark.parametrize("mutation, expected", [
    # unknown key with the closest valid name
    (("depth = 2", "dept = 2"), ["study.toml", "model.dept", "did you mean 'depth'"]),
    # unknown catalog name with the closest entry and the list command
    (('activation = "tanh"', 'activation = "tanhh"'), ["model.activation", "unknown activation 'tanhh'", "did you mean 'tanh'", "ponder list activations"]),
    # wrong type
    (("epochs = 3", 'epochs = "three"'), ["training.epochs", "integer"]),
    # out of range
    (("seeds = 3", "seeds = 0"), ["seeds", "greater than or equal to 1"]),
    # unknown level inside a factor
    (('"model.initializer" = ["torch.default", "torch.kaiming_normal"]', '"model.initializer" = ["torch.default", "torch.kaiming_norml"]'),
     ["factors", "model.initializer", "[1]", "did you mean 'torch.kaiming_normal'"]),
    # a factor key that is not a field
    (('"model.initializer" = ["torch.default", "torch.kaiming_normal"]', '"model.initialiser" = ["a"]'), ["factors key 'model.initialiser'", "did you mean 'model.initializer'"]),
    # impossible combination: batch larger than training set
    (("val_fraction = 0.2", "val_fraction = 0.2\ntrain_size = 16"), ["batch_size = 32", "train_size = 16"]),
    # the same setting as factor and tuned
    (('"training.lr" = [0.05, 0.2]', '"training.lr" = [0.05, 0.2]\n[factors2]'), ["factors2"]),
    # bad dropout
    (('activation = "tanh"', 'activation = "tanh"\ndropout = 1.0'), ["model.dropout", "less than 1"]),
    # path-like names are refused
    (('name = "tiny"', 'name = "../evil"'), ["name", "not a path"]),
    (('name = "tiny"', 'name = "Index.HTML"'), ["name", "reports folder's index page"]),
    # unknown optimizer
    (('optimizer = "sgd"', 'optimizer = "adamw"'), ["training.optimizer", "'sgd', 'momentum' or 'adam'"]),
])
def test_bad_files_give_one_clear_sentence(tmp_path, mutation, expected):
    old, new = mutation
    assert old in TINY
    path = write(tmp_path, TINY.replace(old, new, 1))
    with pytest.raises(SpecError) as info:
        load_study(path)
    msg = str(info.value)
    assert "\n" not in msg
    for part in expected:
        assert part in msg, (part, msg)


def test_factor_and_tune_overlap_is_refused(tmp_path):
    path = write(tmp_path, TINY.replace('"model.initializer" = ["torch.default", "torch.kaiming_normal"]', '"training.lr" = [0.1, 0.2]', 1))
    with pytest.raises(SpecError, match="set in two of factors, tune and search"):
        load_study(path)


@pytest.mark.parametrize("second", ['"model.activation" = ["relu", "tanh"]',
                                    '"model.activation+model.width" = [["relu", 8], ["tanh", 16]]'])
def test_a_setting_in_two_factors_is_refused(tmp_path, second):
    linked = '"model.activation+model.initializer" = [["relu", "torch.kaiming_normal"], ["tanh", "torch.xavier_uniform"]]'
    text = TINY.replace('"model.initializer" = ["torch.default", "torch.kaiming_normal"]', linked + "\n" + second, 1)
    with pytest.raises(SpecError, match=r"model.activation is set in two factors, 'model.activation\+model.initializer' "
                                        "and 'model.activation"):
        load_study(write(tmp_path, text))


def test_all_problems_reported_in_one_pass(tmp_path):
    path = write(tmp_path, TINY.replace("depth = 2", "depth = -1").replace("width = 16", "widht = 16"))
    msg = str(pytest.raises(SpecError, load_study, path).value)
    assert "model.depth" in msg and "model.widht" in msg


def test_not_toml_and_missing_file(tmp_path):
    bad = write(tmp_path, "name = [unclosed")
    assert "not valid TOML" in str(pytest.raises(SpecError, load_study, bad).value)
    assert "does not exist" in str(pytest.raises(SpecError, load_study, tmp_path / "nope.toml").value)
    msg = str(pytest.raises(SpecError, load_study, "quikstart").value)
    assert "did you mean 'quickstart'" in msg


def test_dataset_option_checked(tmp_path):
    from ponder.study.checks import check_plan
    from ponder.study import expand

    with pytest.raises(SpecError, match=r"study\.toml: dataset 'spirals' has no option 'n_trian'; did you mean 'n_train'"):
        load_study(write(tmp_path, TINY.replace("n_train = 300", "n_trian = 300")))  # names: when the file loads
    s = load_study(write(tmp_path, TINY.replace("n_train = 300", "n_train = 300, n_classes = 1")))
    with pytest.raises(SpecError, match=r"study\.toml: dataset 'spirals' option 'n_classes'"):
        check_plan(s, expand(s))  # values: when the data is built, still naming the file


def test_arch_that_does_not_fit_the_data_is_refused(tmp_path):
    from ponder.study.checks import check_plan
    from ponder.study import expand

    s = load_study(write(tmp_path, TINY.replace('arch = "mlp"', 'arch = "cnn2d"')))
    with pytest.raises(SpecError, match="cnn2d.*needs image samples"):
        check_plan(s, expand(s))


def test_bad_initializer_parameter_values_are_refused_before_training(tmp_path):
    from ponder.study.checks import check_plan
    from ponder.study import expand

    s = load_study(write(tmp_path, TINY.replace('"model.initializer" = ["torch.default", "torch.kaiming_normal"]',
                                                '"model.initializer" = ["torch.default", "caffe.gaussian(std=-1)"]')))
    with pytest.raises(SpecError, match="std > 0"):
        check_plan(s, expand(s))
    s = load_study(write(tmp_path, TINY.replace('"model.initializer" = ["torch.default", "torch.kaiming_normal"]',
                                                '"model.initializer" = ["torch.default", "keras.variance_scaling(mode=sideways)"]')))
    with pytest.raises(SpecError, match="fan_in, fan_out, fan_avg"):
        check_plan(s, expand(s))


def test_absurd_studies_are_refused_before_training_and_force_lifts_it(tmp_path):
    from ponder.errors import LimitError
    from ponder.study.checks import check_plan
    from ponder.study import expand

    s = load_study(write(tmp_path, TINY.replace("epochs = 3", "epochs = 100000")), seeds=30)
    runs = expand(s)
    with pytest.raises(LimitError, match=r"12,000,000 model epochs, above the limit of 5,000,000; shrink it or pass --force"):
        check_plan(s, runs)
    check_plan(s, runs, force=True)


def test_the_readme_study_example_is_a_valid_study():
    """The annotated study file in the README parses, in full and quick mode."""
    import re
    import tomllib
    from pathlib import Path

    text = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## The study file\n\n```toml\n(.*?)```", text, re.S).group(1)
    raw = tomllib.loads(block)
    full, quick = parse_study(raw), parse_study(raw, quick=True)
    assert len(full.draws) == 6 and len(quick.draws) == 3 and full.evaluate.convexity
