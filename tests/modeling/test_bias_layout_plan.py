"""The plan and the schema for `model.bias_layout`: counts by hand, the built model agrees."""

from __future__ import annotations

import pandas as pd
import pytest

from memory_efficient_embeddings.embeddings import embedding_bytes, embedding_parameter_count
from memory_efficient_embeddings.modeling.nodes import assign_blocks, build_model
from memory_efficient_embeddings.parameters import ParameterError, validate_parameters
from tests.test_parameters_strict import _set

EVALUATION = {"popularity_blocks": 3}
USERS = pd.DataFrame({"id": [f"user_{i}" for i in range(4)], "train_count": [40, 30, 20, 10]})
MOVIES = pd.DataFrame(
    {"id": [f"movie_{c}" for c in "abcdefg"], "train_count": [50, 30, 10, 5, 3, 1, 1]}
)
MODEL = {
    "name": "t",
    "seed": 0,
    "embedding_dim": 6,
    "use_biases": True,
    "bias_layout": "in_embedding",
    "output": {"activation": "sigmoid", "min_rating": 0.0, "max_rating": 5.0},
    "user_embedding": {"type": "full"},
    "movie_embedding": {
        "type": "mixed_dimension",
        "projection": "pad",
        "blocks": {"boundaries": [1, 2], "dims": [6, 2, 0]},
    },
}


def test_in_embedding_plan_counts_the_bias_column_by_hand() -> None:
    plan = assign_blocks(USERS, MOVIES, MODEL, EVALUATION)
    # Users: 4 rows of 6 + 1. Movies: blocks of 1, 1 and 5 rows at 6 + 1, 2 + 1 and 0 + 1.
    assert plan["bias_layout"] == "in_embedding"
    assert plan["user_embedding"]["parameter_count"] == 4 * 7
    assert plan["movie_embedding"]["layer"]["block_dims"] == [7, 3, 1]
    assert plan["movie_embedding"]["dims"] == [6, 2, 0]  # the vectors' own widths
    assert plan["movie_embedding"]["parameter_count"] == 7 + 3 + 5
    assert plan["bias_parameters"] == 0  # inside the layers
    assert plan["embedding_parameters"] == 28 + 15
    assert plan["parameters_per_id"] == pytest.approx(43 / 11, abs=1e-6)
    model = build_model(plan, MODEL)
    assert embedding_parameter_count(model) == 43
    assert embedding_bytes(model) == 4 * 43


def test_separate_biases_add_one_float_per_id() -> None:
    separate = {**MODEL, "bias_layout": "separate"}
    separate["movie_embedding"] = {
        **MODEL["movie_embedding"],
        "blocks": {"boundaries": [1, 2], "dims": [6, 2, 1]},
    }
    plan = assign_blocks(USERS, MOVIES, separate, EVALUATION)
    assert plan["movie_embedding"]["layer"]["block_dims"] == [6, 2, 1]
    assert plan["bias_parameters"] == 4 + 7
    assert plan["embedding_parameters"] == 4 * 6 + (6 + 2 + 5) + 11
    assert embedding_parameter_count(build_model(plan, separate)) == plan["embedding_parameters"]


def test_zero_wide_vectors_need_in_embedding_biases() -> None:
    biases_only = {**MODEL, "embedding_dim": 0, "movie_embedding": {"type": "full"}}
    plan = assign_blocks(USERS, MOVIES, biases_only, EVALUATION)
    assert plan["embedding_parameters"] == 4 + 7
    with pytest.raises(ValueError, match=r"t: the vectors are 0 wide.*t\.bias_layout"):
        assign_blocks(USERS, MOVIES, {**biases_only, "bias_layout": "separate"}, EVALUATION)


@pytest.fixture(scope="module")
def base() -> dict:
    from tests.test_parameters import _parameters  # noqa: PLC0415

    return _parameters()


def test_the_schema_knows_the_layouts(base) -> None:
    validate_parameters(_set(base, "memory_efficient.model.bias_layout", "in_embedding"))
    with pytest.raises(ParameterError) as caught:
        validate_parameters(_set(base, "memory_efficient.model.bias_layout", "inside"))
    assert (
        "`memory_efficient.model.bias_layout` is 'inside'; allowed values: separate, in_embedding"
        in str(caught.value)
    )


def test_the_schema_refuses_width_0_without_in_embedding(base) -> None:
    parameters = _set(base, "memory_efficient.model.embedding_dim", 0)
    parameters = _set(parameters, "memory_efficient.model.user_embedding", {"type": "full"})
    parameters = _set(parameters, "memory_efficient.model.movie_embedding", {"type": "full"})
    # conf/base's candidate layouts set mixed-dimension blocks: this model is tried alone.
    parameters = _set(parameters, "memory_efficient.layouts", None)
    with pytest.raises(ParameterError) as caught:
        validate_parameters(parameters)
    assert (
        "`memory_efficient.model` is inconsistent: embedding_dim 0 (no vectors) holds only "
        "biases, which needs use_biases: true and bias_layout: in_embedding"
    ) in str(caught.value)
    validate_parameters(_set(parameters, "memory_efficient.model.bias_layout", "in_embedding"))
