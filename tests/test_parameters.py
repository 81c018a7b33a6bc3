"""The parameter schema: the shipped configurations pass, and each bad value is named clearly."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader

from memory_efficient_embeddings.embeddings.models import EMBEDDING_TYPES
from memory_efficient_embeddings.parameters import (
    ParameterError,
    optimizer_names,
    validate_parameters,
)
from memory_efficient_embeddings.settings import CONFIG_LOADER_ARGS

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _parameters(env: str = "local") -> dict:
    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": env}
    )
    return loader["parameters"]


@pytest.fixture(scope="module")
def base() -> dict:
    return _parameters()


def _error(parameters: dict) -> str:
    with pytest.raises(ParameterError) as caught:
        validate_parameters(parameters)
    return str(caught.value)


def _with(base: dict, section: str, **changes) -> dict:
    parameters = copy.deepcopy(base)
    parameters[section].update(changes)
    return parameters


@pytest.mark.parametrize("env", ["local", "recipe", "long_tail"])
def test_the_shipped_parameters_are_valid(env):
    validate_parameters(_parameters(env))


def test_a_misspelt_key_is_refused_with_the_key_it_resembles(base):
    message = _error(_with(base, "training", epoch=1))
    assert "`training.epoch` is not a known parameter" in message
    assert "Did you mean `training.epochs`?" in message
    assert "batch_size" in message and "learning_rate" in message  # the allowed keys


def test_a_misspelt_section_is_refused(base):
    parameters = copy.deepcopy(base)
    parameters["traning"] = {"epochs": 1}
    assert "Did you mean `training`?" in _error(parameters)


@pytest.mark.parametrize("fraction", [1.5, 0, 1, -0.2])
def test_a_train_fraction_outside_0_1_is_refused(base, fraction):
    message = _error(_with(base, "split", train_fraction=fraction))
    assert "`split.train_fraction`" in message
    assert "strictly between 0 and 1" in message


@pytest.mark.parametrize(("key", "value"), [("epochs", 0), ("batch_size", 0), ("epochs", -3)])
def test_sizes_below_one_are_refused(base, key, value):
    message = _error(_with(base, "training", **{key: value}))
    assert f"`training.{key}` is {value}" in message
    assert "greater than or equal to 1" in message


def test_an_unknown_optimizer_lists_the_known_ones(base):
    message = _error(_with(base, "training", optimizer="foo"))
    assert "`training.optimizer` is 'foo'" in message
    for name in ("adam", "lazy_adam", "sgd"):
        assert name in message


def test_an_unknown_layer_type_lists_every_registered_type(base):
    parameters = copy.deepcopy(base)
    parameters["memory_efficient"]["model"]["movie_embedding"] = {"type": "tensor_train"}
    message = _error(parameters)
    assert "`memory_efficient.model.movie_embedding.type` is 'tensor_train'" in message
    for name in EMBEDDING_TYPES:
        assert name in message


def test_a_layer_type_keeps_its_own_keys(base):
    # Per-type arguments belong to the layer: the schema lets them through.
    parameters = copy.deepcopy(base)
    parameters["memory_efficient"]["model"]["user_embedding"] = {
        "type": "quotient_remainder",
        "combiner": "multiply",
        "ids_per_bucket": 4,
    }
    # conf/base's candidate layouts set mixed-dimension blocks: this model is tried alone.
    parameters["memory_efficient"]["layouts"] = None
    validate_parameters(parameters)


def test_every_problem_is_listed_at_once(base):
    parameters = _with(base, "training", epochs=0, optimizer="foo")
    parameters["split"]["train_fraction"] = 1.5
    message = _error(parameters)
    assert message.count("\n  - ") == 3


def test_types_are_checked(base):
    message = _error(_with(base, "training", batch_size="many"))
    assert "`training.batch_size` is 'many'" in message and "valid integer" in message


def test_the_schema_knows_the_optimizers_that_training_knows():
    # The schema reads the registry that training uses; no second list to drift.
    assert set(optimizer_names()) == {"adam", "lazy_adam", "rowwise_adagrad", "sgd"}
