"""The strict schema: each bad input the adversarial review tried stops the run with one line
naming the key, before any node (cases from issue 22)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader

from memory_efficient_embeddings.parameters import ParameterError, validate_parameters
from memory_efficient_embeddings.settings import CONFIG_LOADER_ARGS

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MD_SPEC = {
    "type": "mixed_dimension",
    "projection": "pad",
    "blocks": {"num_blocks": 3, "alpha": 0.4, "mean_dim": 4, "min_dim": 1, "max_dim": 64},
}


@pytest.fixture(scope="module")
def base() -> dict:
    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": "local"}
    )
    return loader["parameters"]


def _set(base: dict, dotted: str, value) -> dict:
    parameters = copy.deepcopy(base)
    *parents, leaf = dotted.split(".")
    target = parameters
    for key in parents:
        target = target[key]
    target[leaf] = value
    return parameters


def _problems(parameters: dict) -> list[str]:
    with pytest.raises(ParameterError) as caught:
        validate_parameters(parameters)
    return str(caught.value).split("\n  - ")[1:]


def _md(base: dict, **blocks) -> dict:
    spec = copy.deepcopy(MD_SPEC)
    spec["blocks"].update(blocks)
    parameters = _set(base, "memory_efficient.model.user_embedding", spec)
    return _set(parameters, "memory_efficient.model.embedding_dim", None)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (
            "training.batch_size",
            True,
            "`training.batch_size` is True: Input should be a valid integer",
        ),
        ("training.epochs", 2.5, "`training.epochs` is 2.5"),
        ("training.deterministic", "maybe", "`training.deterministic` is 'maybe'"),
        ("training.early_stopping", [], "`training.early_stopping` is []"),
        ("baseline.model.use_biases", 1, "`baseline.model.use_biases` is 1"),
        ("sweep.executor.workers", True, "`sweep.executor.workers` is True"),
        ("sweep.executor.type", "threads", "`sweep.executor.type` is 'threads'"),
    ],
)
def test_strict_types(base, key, value, expected):
    problems = _problems(_set(base, key, value))
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_a_misspelt_executor_key_gets_a_did_you_mean(base):
    parameters = _set(base, "sweep.executor.wrokers", 2)
    (problem,) = _problems(parameters)
    assert "`sweep.executor.wrokers` is not a known parameter" in problem
    assert "Did you mean `sweep.executor.workers`?" in problem


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [
        (
            {"power_of_two": "maybe"},
            "`memory_efficient.model.user_embedding.blocks.power_of_two` is 'maybe'",
        ),
        (
            {"alphaa": 0.3},
            "`memory_efficient.model.user_embedding.blocks.alphaa` is not a known parameter",
        ),
        ({"mean_dim": 128}, "mean_dim (128) is above max_dim (64)"),
        ({"min_dim": 65}, "min_dim (65) is above max_dim (64)"),
        ({"mean_dim": -4}, "`memory_efficient.model.user_embedding.blocks.mean_dim` is -4"),
        ({"num_blocks": None, "boundaries": []}, "boundaries is empty"),
        (
            {"num_blocks": None, "boundaries": [10, 5]},
            "boundaries [10, 5] must be strictly increasing",
        ),
        ({"alpha": None}, "set dims, or alpha"),
    ],
)
def test_block_problems(base, blocks, expected):
    problems = _problems(_md(base, **blocks))
    assert len(problems) == 1 and expected in problems[0], problems


def test_embedding_spec_keys_follow_the_layer_type(base):
    spec = {"type": "quotient_remainder", "num_bukets": 10, "combiner": "multiply"}
    (problem,) = _problems(_set(base, "baseline.model.user_embedding", spec))
    assert problem.startswith(
        "`baseline.model.user_embedding.num_bukets` is not a known key of a `quotient_remainder` "
        "embedding. Did you mean `baseline.model.user_embedding.num_buckets`?"
    )


def test_a_hashed_side_needs_a_size(base):
    (problem,) = _problems(_set(base, "baseline.model.movie_embedding", {"type": "hashed"}))
    assert "hashed embedding without a size: set num_buckets or ids_per_bucket" in problem


def test_blocks_on_a_full_table_and_md_without_blocks_are_refused(base):
    parameters = _set(base, "baseline.model.user_embedding", {"type": "full", "blocks": {}})
    parameters = _set(parameters, "baseline.model.movie_embedding", {"type": "mixed_dimension"})
    problems = _problems(parameters)
    assert any("user_embedding.blocks` applies only to mixed_dimension" in p for p in problems)
    assert any(
        "movie_embedding` is a mixed_dimension embedding without `blocks`" in p for p in problems
    )


def test_optimizer_options_are_the_optimizers_arguments(base):
    problems = _problems(_set(base, "training.lazy_adam", {"sparse_min_sise": 10, "beta_1": 0.9}))
    assert len(problems) == 1
    assert (
        "`training.lazy_adam.sparse_min_sise` is not a known key of the lazy_adam optimizer"
        in problems[0]
    )
    assert "Did you mean `training.lazy_adam.sparse_min_size`?" in problems[0]


def test_every_sweep_point_is_checked_as_a_model(base):
    parameters = copy.deepcopy(base)
    # A grid key that exists, with a value no model takes: each point is checked as a model.
    parameters["sweep"]["techniques"]["hashing"]["budget_knob"] = None  # sized by the grid
    parameters["sweep"]["techniques"]["hashing"]["grid"] = {"embedding.ids_per_bucket": [2, 0]}
    assert _problems(parameters) == [
        f"sweep.techniques.hashing (point hashing(ids_per_bucket=0)): `{side}.ids_per_bucket` "
        "is 0: Input should be greater than or equal to 1."
        for side in ("user_embedding", "movie_embedding")
    ]


def test_a_bad_recipe_model_is_named_by_its_own_key(base):
    # It used to be named `sweep.techniques.recipe (point recipe(baseline))`, a key that does
    # not exist: the recipe's models live under sweep.recipe.
    parameters = copy.deepcopy(base)
    parameters["sweep"]["recipe"]["baseline"] = {"embedding": {"type": "bogus"}}
    problems = _problems(parameters)
    assert problems and all(p.startswith("sweep.recipe.baseline: ") for p in problems)
    assert "`user_embedding.type` is 'bogus'" in problems[0]


def test_one_line_per_problem_all_at_once(base):
    parameters = _set(base, "training.batch_size", True)
    parameters = _set(parameters, "sweep.executor.wrokers", 2)
    parameters = _set(parameters, "baseline.model.movie_embedding", {"type": "hashed"})
    assert len(_problems(parameters)) == 3


def test_a_list_where_conf_base_has_a_mapping_gets_a_clear_message():
    from omegaconf import OmegaConf  # noqa: PLC0415

    from memory_efficient_embeddings.hooks import config_merge_error  # noqa: PLC0415

    try:  # what Kedro's soft merge does with `training.early_stopping: []` over conf/base
        OmegaConf.merge({"early_stopping": {"enabled": True}}, {"early_stopping": []})
    except Exception as exc:  # noqa: BLE001
        error = exc
    found = config_merge_error(RuntimeError("while loading parameters").with_traceback(None))
    assert found is None
    wrapped = RuntimeError("loading")
    wrapped.__cause__ = error
    message = str(config_merge_error(wrapped))
    assert "`training.early_stopping: []`" in message and "merge softly" in message


# Gaps left by the first strict schema (issue 22, item 1): checked from the layer's constructor.
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"type": "quotient_remainder", "combiner": "mul"},
            "`baseline.model.user_embedding.combiner` is 'mul': Input should be 'multiply', "
            "'add' or 'concat'.",
        ),
        (
            {"type": "mixed_dimension", "projection": "padd", "blocks": MD_SPEC["blocks"]},
            "`baseline.model.user_embedding.projection` is 'padd': Input should be 'dense' or 'pad'.",
        ),
        (
            {"type": "hashed", "num_buckets": 10, "seed": True},
            "`baseline.model.user_embedding.seed` is True: Input should be a valid integer.",
        ),
        (
            {"type": "projected", "embedding_dim": 8, "use_bias": "yes"},
            "`baseline.model.user_embedding.use_bias` is 'yes': Input should be a valid boolean.",
        ),
        (
            {"type": "projected"},
            "`baseline.model.user_embedding` is a projected embedding without a size: set "
            "embedding_dim (its layer requires embedding_dim).",
        ),
        (
            {"type": "robe"},
            "`baseline.model.user_embedding` is a robe embedding without a size: set array_size "
            "or budget_dim (its layer requires array_size).",
        ),
        (
            {"type": "full", "budget_dim": 4},
            "`baseline.model.user_embedding.budget_dim` applies only to cce and tt_rec and robe "
            "and hash_embedding and dhe embeddings, not full.",
        ),
    ],
)
def test_layer_arguments_are_checked_by_the_layers_signature(base, spec, expected):
    assert _problems(_set(base, "baseline.model.user_embedding", spec)) == [expected]


def test_a_bool_is_no_verbosity(base):
    assert _problems(_set(base, "training.verbose", True)) == [
        "`training.verbose` is True; allowed values: 0, 1, 2 or 'auto'."
    ]


@pytest.mark.parametrize(
    ("technique", "grid", "expected"),
    [
        (
            "hashing",
            {"embedding.ids_per_buckt": [2]},
            "`sweep.techniques.hashing.grid.embedding.ids_per_buckt` is not a known key of a "
            "`hashed` embedding. Did you mean `sweep.techniques.hashing.grid.embedding."
            "ids_per_bucket`?",
        ),
        (
            "mixed_dimension",
            {"embedding.blocks.mean_dims": [4]},
            "`sweep.techniques.mixed_dimension.grid.embedding.blocks.mean_dims` is not a known key "
            "of `blocks`. Did you mean `sweep.techniques.mixed_dimension.grid.embedding.blocks."
            "mean_dim`?",
        ),
        (
            "full",
            {"embeding_dim": [8]},
            "`sweep.techniques.full.grid.embeding_dim` is not a known key of a sweep point's "
            "model. Did you mean `sweep.techniques.full.grid.embedding_dim`?",
        ),
        ("full", {"embedding_dim": 8}, "`sweep.techniques.full.grid.embedding_dim` is 8: give a"),
    ],
)
def test_grid_keys_are_paths_of_the_techniques_model(base, technique, grid, expected):
    parameters = _set(base, f"sweep.techniques.{technique}.grid", grid)
    (problem,) = _problems(parameters)
    assert problem.startswith(expected), problem


def test_new_layer_types_are_covered_without_editing_the_schema(base, monkeypatch):
    # A layer registered later: its constructor alone tells the schema its keys and types.
    import keras  # noqa: PLC0415

    from memory_efficient_embeddings.embeddings import models  # noqa: PLC0415
    from memory_efficient_embeddings.parameters import _argument_checkers  # noqa: PLC0415

    class Sketch(keras.layers.Layer):
        def __init__(self, num_ids: int, output_dim: int, depth: int, wide: bool = False, **kw):
            super().__init__(**kw)

    monkeypatch.setitem(models.EMBEDDING_TYPES, "sketch", Sketch)
    _argument_checkers.cache_clear()
    try:
        spec = {"type": "sketch", "wide": 1, "deph": 3}
        problems = _problems(_set(base, "baseline.model.user_embedding", spec))
    finally:
        _argument_checkers.cache_clear()
    where = "`baseline.model.user_embedding"
    assert problems[0].startswith(f"{where}.deph` is not a known key of a `sketch` embedding.")
    assert f"Did you mean {where}.depth`?" in problems[0]
    assert problems[1:] == [
        f"{where}.wide` is 1: Input should be a valid boolean.",
        f"{where}` is a sketch embedding without a size: set depth (its layer requires depth).",
    ]
