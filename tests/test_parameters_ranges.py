"""Ranges the schema checks before any node runs (issue 30, item 4): embedding sizes, optimizer
options, the sweep's seeds, tune and checkpoints, and the report's reference model. Each message
names the full dotted key and what it accepts."""

from __future__ import annotations

import pytest

from memory_efficient_embeddings.embeddings.optimizers import OPTIMIZERS
from memory_efficient_embeddings.parameters import (
    MAX_BUDGET_DIM,
    optimizer_option_problems,
    validate_parameters,
)
from tests.test_parameters import _parameters
from tests.test_parameters_strict import _problems, _set

USER = "baseline.model.user_embedding"


@pytest.fixture(scope="module")
def base() -> dict:
    return _parameters()


@pytest.mark.parametrize("env", ["local", "recipe", "frontier_1m", "default_choice"])
def test_the_shipped_configurations_still_pass(env):
    validate_parameters(_parameters(env))


# --- 1. embedding sizes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (4.5, "is 4.5: Input should be a valid integer"),
        ("8", "is '8': Input should be a valid integer"),
        (True, "is True: Input should be a valid integer"),
        ("four", "is 'four': Input should be a valid integer"),
        (0, f"is 0; allowed values: an int from 1 to {MAX_BUDGET_DIM}"),
        (-4, f"is -4; allowed values: an int from 1 to {MAX_BUDGET_DIM}"),
        (10**12, f"is {10**12}; allowed values: an int from 1 to {MAX_BUDGET_DIM}"),
    ],
)
def test_budget_dim_is_a_positive_int_within_the_cap(base, value, expected):
    spec = {"type": "cce", "budget_dim": value}
    (problem,) = _problems(_set(base, USER, spec))
    assert problem.startswith(f"`{USER}.budget_dim` {expected}"), problem


@pytest.mark.parametrize("kind", ["cce", "tt_rec", "hash_embedding", "dhe", "robe"])
def test_budget_dim_within_range_passes(base, kind):
    for value in (1, 8, MAX_BUDGET_DIM):
        validate_parameters(_set(base, USER, {"type": kind, "budget_dim": value}))


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"type": "cce", "budget_dim": 4, "num_chunks": 0}, "num_chunks"),
        ({"type": "hash_embedding", "budget_dim": 4, "num_hashes": 0}, "num_hashes"),
        ({"type": "dhe", "budget_dim": 4, "num_hashes": -1}, "num_hashes"),
        ({"type": "robe", "budget_dim": 4, "block_size": 0}, "block_size"),
        ({"type": "tt_rec", "tt_rank": 0}, "tt_rank"),
        ({"type": "cce", "num_clusters": 0}, "num_clusters"),
        ({"type": "dhe", "hidden_dim": 0}, "hidden_dim"),
    ],
)
def test_layer_sizes_are_at_least_one(base, spec, key):
    value = spec[key]
    assert _problems(_set(base, USER, spec)) == [
        f"`{USER}.{key}` is {value}: Input should be greater than or equal to 1 (a size of the "
        f"{spec['type']} layer)."
    ]


def test_a_seed_may_still_be_zero(base):
    validate_parameters(_set(base, USER, {"type": "cce", "budget_dim": 4, "seed": 0}))


@pytest.mark.parametrize(
    ("spec", "missing"),
    [
        ({"type": "cce"}, "num_clusters"),
        ({"type": "cce", "num_chunks": 4}, "num_clusters"),
        ({"type": "tt_rec"}, "tt_rank"),
        ({"type": "dhe", "num_hashes": 8}, "hidden_dim"),
        ({"type": "hash_embedding"}, "num_buckets and importance_rows"),
        ({"type": "hash_embedding", "num_buckets": 10}, "importance_rows (besides num_buckets)"),
    ],
)
def test_a_budgeted_side_without_any_size_is_refused(base, spec, missing):
    (problem,) = _problems(_set(base, USER, spec))
    assert problem.startswith(
        f"`{USER}` is a {spec['type']} embedding without a size: set {missing}, or budget_dim or "
        "parameter_budget"
    ), problem


def test_robe_without_a_size_names_array_size(base):
    (problem,) = _problems(_set(base, USER, {"type": "robe"}))
    assert problem.startswith(f"`{USER}` is a robe embedding without a size: set array_size or")


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "cce", "num_clusters": 8},
        {"type": "tt_rec", "tt_rank": 2},
        {"type": "dhe", "hidden_dim": 16},
        {"type": "hash_embedding", "num_buckets": 10, "importance_rows": 100},
        {"type": "hash_embedding", "ids_per_bucket": 10, "importance_rows": 100},
        {"type": "cce", "parameter_budget": 5000},
    ],
)
def test_explicit_sizes_or_a_budget_pass(base, spec):
    validate_parameters(_set(base, USER, spec))


def test_explicit_sizes_and_a_budget_together_are_refused(base):
    spec = {"type": "cce", "num_clusters": 8, "budget_dim": 4}
    assert _problems(_set(base, USER, spec)) == [
        f"`{USER}` sets both num_clusters and a budget (budget_dim or parameter_budget): keep one."
    ]


def test_a_bad_budget_dim_in_a_sweep_grid_is_refused_before_training(base):
    parameters = _set(base, "sweep.techniques.cce.budget_knob", None)  # sized by the grid
    parameters = _set(parameters, "sweep.techniques.cce.grid", {"embedding.budget_dim": [4, 0]})
    problems = _problems(parameters)
    assert problems and all(
        "`user_embedding.budget_dim` is 0" in p or "`movie_embedding.budget_dim` is 0" in p
        for p in problems
    ), problems


# --- 2. optimizer options -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("value", [0, -1e-7, "small", True])
def test_epsilon_above_zero_for_every_optimizer_that_takes_it(name, value):
    problems = optimizer_option_problems({name: {"epsilon": value}}, "training")
    if name == "sgd":  # SGD has no epsilon: the key itself is refused
        assert problems[0].startswith("`training.sgd.epsilon` is not a known key")
    else:
        assert problems == [
            f"`training.{name}.epsilon` is {value!r}; allowed values: a number above 0."
        ]


@pytest.mark.parametrize("name", ["adam", "lazy_adam"])
@pytest.mark.parametrize("key", ["beta_1", "beta_2"])
@pytest.mark.parametrize("value", [1, 1.0, 1.5, -0.1])
def test_betas_are_in_0_1(name, key, value):
    assert optimizer_option_problems({name: {key: value}}, "training") == [
        f"`training.{name}.{key}` is {value!r}; allowed values: a number from 0 up to, not "
        "including, 1."
    ]


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("adam", {"beta_1": 0.0, "beta_2": 0.999, "epsilon": 1e-7, "weight_decay": None}),
        ("lazy_adam", {"beta_1": 0.9, "beta_2": 0.99, "epsilon": 1, "sparse_min_size": 0}),
        ("rowwise_adagrad", {"epsilon": 1e-6, "initial_accumulator_value": 0.0}),
        ("sgd", {"momentum": 0.9, "clipnorm": 1.0, "gradient_accumulation_steps": 2}),
    ],
)
def test_options_in_range_pass(name, options):
    assert optimizer_option_problems({name: options}, "training") == []


@pytest.mark.parametrize(
    ("name", "key", "value", "allowed"),
    [
        ("sgd", "momentum", 1.5, "a number from 0 to 1"),
        ("adam", "clipnorm", 0, "a number above 0, or null"),
        ("adam", "weight_decay", -0.1, "a number at least 0, or null"),
        ("rowwise_adagrad", "initial_accumulator_value", -1, "a number at least 0"),
        ("adam", "gradient_accumulation_steps", 1, "an int of at least 2, or null"),
        ("lazy_adam", "sparse_min_size", -1, "an int of at least 0"),
    ],
)
def test_other_option_ranges(name, key, value, allowed):
    assert optimizer_option_problems({name: {key: value}}, "sweep.training") == [
        f"`sweep.training.{name}.{key}` is {value!r}; allowed values: {allowed}."
    ]


def test_option_ranges_reach_validate_parameters(base):
    parameters = _set(base, "training.lazy_adam", {"beta_2": 1.0})
    assert _problems(parameters) == [
        "`training.lazy_adam.beta_2` is 1.0; allowed values: a number from 0 up to, not "
        "including, 1."
    ]


@pytest.mark.parametrize("key", ["training.learning_rate", "sweep.training.learning_rate"])
@pytest.mark.parametrize("value", [1.5, 3, 0, -0.01])
def test_a_learning_rate_above_one_is_refused(base, key, value):
    assert _problems(_set(base, key, value)) == [
        f"`{key}` is {value!r}; allowed values: a rate above 0, at most 1.0."
    ]


def test_a_learning_rate_of_one_passes(base):
    validate_parameters(_set(base, "training.learning_rate", 1.0))


# --- 3. the sweep -------------------------------------------------------------------------------


def test_a_repeated_seed_is_refused(base):
    assert _problems(_set(base, "sweep.seeds", [1, 2, 1])) == [
        "`sweep.seeds` is [1, 2, 1], which repeats seed 1; allowed values: a non-empty list of "
        "distinct ints."
    ]


def test_tune_as_a_string_gets_a_clear_message(base):
    parameters = _set(base, "sweep.techniques.uniform.tune", "embedding_l2")
    assert _problems(parameters) == [
        "`sweep.techniques.uniform.tune` is 'embedding_l2' (write [embedding_l2]); "
        "allowed values: a list of this technique's grid keys (embedding_l2)."
    ]


def test_tune_naming_no_grid_key_is_refused(base):
    parameters = _set(base, "sweep.techniques.uniform.tune", ["embedding_l3"])
    (problem,) = _problems(parameters)
    assert problem.startswith(
        "`sweep.techniques.uniform.tune` is ['embedding_l3'], which names no grid key embedding_l3;"
    ), problem


def test_an_empty_checkpoint_dir_is_refused(base):
    (problem,) = _problems(_set(base, "sweep.checkpoint_dir", ""))
    assert problem.startswith("`sweep.checkpoint_dir` is ''; allowed values:"), problem
    assert "`sweep.resume: false`" in problem


def test_a_null_checkpoint_dir_passes(base):
    validate_parameters(_set(base, "sweep.checkpoint_dir", None))


def test_an_empty_list_of_grid_values_names_the_key(base):
    parameters = _set(base, "sweep.techniques.uniform.grid.embedding_l2", [])
    assert _problems(parameters) == [
        "`sweep.techniques.uniform.grid.embedding_l2` is []: give a non-empty list of values."
    ]


# --- 4. the report's reference ------------------------------------------------------------------


def test_an_unknown_reporting_reference_lists_the_models(base):
    assert _problems(_set(base, "reporting.reference", "foo")) == [
        "`reporting.reference` is 'foo'; allowed values: a model of the run (baseline, "
        "memory_efficient)."
    ]


@pytest.mark.parametrize("reference", ["baseline", "memory_efficient"])
def test_a_model_of_the_run_is_a_valid_reference(base, reference):
    validate_parameters(_set(base, "reporting.reference", reference))
