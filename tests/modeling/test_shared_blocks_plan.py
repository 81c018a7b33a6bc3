"""Block assignment below one float per id: 0-dim and shared blocks in the plan, by hand.

Seven movies with 100 training ratings (50, 30, 10, 5, 3, 1, 1): three equal-mass blocks of 1, 1
and 5 movies with rating shares 0.5, 0.3, 0.2 and per-row probabilities 0.5, 0.3, 0.04.
"""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from memory_efficient_embeddings.embeddings import embedding_parameter_count
from memory_efficient_embeddings.modeling.nodes import (
    assign_blocks,
    build_model,
    plot_popularity_blocks,
)
from memory_efficient_embeddings.parameters import ParameterError, validate_parameters
from tests.test_parameters_strict import MD_SPEC, _problems, _set

EVALUATION = {"popularity_blocks": 3}
USERS = pd.DataFrame({"id": [f"user_{i}" for i in range(4)], "train_count": [40, 30, 20, 10]})
MOVIES = pd.DataFrame(
    {"id": [f"movie_{c}" for c in "abcdefg"], "train_count": [50, 30, 10, 5, 3, 1, 1]}
)
# α = 1 from base dim 8: λ = 8 / 0.5 = 16, rule dims 8, 4.8 and 0.64 (-> 8, 5, 1).
ALPHA_BLOCKS = {"num_blocks": 3, "alpha": 1.0, "base_dim": 8, "min_dim": 0}


def _model(bias_layout: str = "in_embedding", use_biases: bool = True, **blocks) -> dict:
    return {
        "name": "t",
        "seed": 0,
        "embedding_dim": None,
        "use_biases": use_biases,
        "bias_layout": bias_layout,
        "output": {"activation": "sigmoid", "min_rating": 0.0, "max_rating": 5.0},
        "user_embedding": {"type": "full"},
        "movie_embedding": {"type": "mixed_dimension", "projection": "pad", "blocks": blocks},
    }


def _table(plan: dict, side: str = "movie_embedding") -> list[tuple]:
    return [
        (r["rows"], r["dims"], r["storage"], r["table_rows"], r["parameters"], r["bytes"])
        for r in plan[side]["block_table"]
    ]


def test_a_hashed_tail_below_share_below_dim_in_embedding() -> None:
    tail = {"share": "hashed", "ids_per_bucket": 2}
    model = _model(**ALPHA_BLOCKS, share_below_dim=1.0, tail=tail)
    plan = assign_blocks(USERS, MOVIES, model, EVALUATION)
    movies = plan["movie_embedding"]
    assert movies["rule_dims"] == [8.0, 4.8, 0.64]
    assert movies["dims"] == [8, 5, 1]
    assert movies["storage"] == ["own", "own", "hashed"]
    assert movies["buckets"] == [0, 0, 2]  # 5 // 2
    # Stored widths 9, 6, 2 (the bias column); the tail's 5 movies share 2 rows of 2.
    assert _table(plan) == [
        (1, 8, "own", 1, 9, 36),
        (1, 5, "own", 1, 6, 24),
        (5, 1, "hashed", 2, 4, 16),
    ]
    assert [r["rating_share"] for r in movies["block_table"]] == [0.5, 0.3, 0.2]
    assert _table(plan, "user_embedding") == [(4, 8, "own", 4, 36, 144)]
    assert plan["embedding_parameters"] == 36 + 19
    assert plan["parameters_per_id"] == 5.0
    assert embedding_parameter_count(build_model(plan, model)) == 55


def test_a_quotient_remainder_tail_with_separate_biases() -> None:
    # ids_per_bucket null: ceil(sqrt(5)) = 3 remainder rows and ceil(5 / 3) = 2 quotient rows.
    tail = {"share": "quotient_remainder", "combiner": "add"}
    model = _model("separate", **ALPHA_BLOCKS, share_below_dim=1.0, tail=tail)
    plan = assign_blocks(USERS, MOVIES, model, EVALUATION)
    layer = plan["movie_embedding"]["layer"]
    assert layer["block_storage"] == ["own", "own", "quotient_remainder"]
    assert layer["block_buckets"] == [0, 0, 3]
    assert layer["shared_combiner"] == "add"
    # Bytes hold the block's share of the layer and its ids' separate bias rows.
    assert _table(plan) == [
        (1, 8, "own", 1, 8, 4 * (8 + 1)),
        (1, 5, "own", 1, 5, 4 * (5 + 1)),
        (5, 1, "quotient_remainder", 5, 5, 4 * (5 + 5)),
    ]
    assert plan["bias_parameters"] == 11
    built = build_model(plan, model)
    assert embedding_parameter_count(built) == plan["embedding_parameters"] == 32 + 18 + 11
    assert built.get_layer("movie_embedding").shared_combiner == "add"


def test_a_0_dim_block_holds_a_bias_or_nothing() -> None:
    blocks = {"num_blocks": 3, "dims": [8, 2, 0]}
    separate = assign_blocks(USERS, MOVIES, _model("separate", **blocks), EVALUATION)
    assert _table(separate) == [
        (1, 8, "own", 1, 8, 36),
        (1, 2, "own", 1, 2, 12),
        (5, 0, "bias_only", 0, 0, 20),
    ]
    inside = assign_blocks(USERS, MOVIES, _model(**blocks), EVALUATION)
    assert _table(inside)[2] == (5, 0, "bias_only", 5, 5, 20)
    plain = assign_blocks(USERS, MOVIES, _model(use_biases=False, **blocks), EVALUATION)
    assert _table(plain)[2] == (5, 0, "none", 0, 0, 0)
    assert plain["bias_layout"] is None
    for plan, model in ((separate, _model("separate", **blocks)), (inside, _model(**blocks))):
        assert embedding_parameter_count(build_model(plan, model)) == plan["embedding_parameters"]


def test_an_explicit_shared_list_marks_blocks() -> None:
    blocks = {
        "boundaries": [1, 2],
        "dims": [4, 2, 2],
        "shared": [False, True, True],
        "tail": {"share": "hashed", "ids_per_bucket": 4},
    }
    plan = assign_blocks(USERS, MOVIES, _model(**blocks), EVALUATION)
    assert plan["movie_embedding"]["storage"] == ["own", "hashed", "hashed"]
    assert plan["movie_embedding"]["buckets"] == [0, 1, 1]  # max(1, 1 // 4), max(1, 5 // 4)
    bad = copy.deepcopy(blocks) | {"shared": [True]}
    with pytest.raises(ValueError, match=r"t\.movie_embedding\.blocks\.shared has 1 entries"):
        assign_blocks(USERS, MOVIES, _model(**bad), EVALUATION)


def test_the_plot_names_each_blocks_rows_share_storage_and_bytes() -> None:
    tail = {"share": "hashed", "ids_per_bucket": 2}
    plan = assign_blocks(
        USERS, MOVIES, _model(**ALPHA_BLOCKS, share_below_dim=1.0, tail=tail), EVALUATION
    )
    figure = plot_popularity_blocks(USERS, MOVIES, plan, {"source": "synthetic"})
    texts = [text.get_text() for text in figure.axes[1].texts]
    assert texts == [
        "dim 8\n1 ids\n50% of ratings\n36 B",
        "dim 5\n1 ids\n30% of ratings\n24 B",
        "dim 1 hashed\n2 shared rows\n5 ids\n20% of ratings\n16 B",
    ]
    assert figure.axes[1].get_title() == (
        "items: mixed_dimension (alpha_power, α 1.0), 76 B, 2.71 floats per id"
    )


# --- the schema -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base() -> dict:
    from tests.test_parameters import _parameters  # noqa: PLC0415

    return _parameters()


def _with_blocks(base: dict, **blocks) -> dict:
    spec = copy.deepcopy(MD_SPEC)
    spec["blocks"].update(blocks)
    return _set(base, "memory_efficient.model.movie_embedding", spec)


KEY = "memory_efficient.model.movie_embedding.blocks"


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [
        ({"tail": {"share": "hashed", "ids_per_bucket": 2}}, "tail applies to no block"),
        ({"share_below_dim": 1.0}, "share_below_dim needs tail"),
        (
            {
                "share_below_dim": 1.0,
                "shared": [True, True, True],
                "tail": {"share": "quotient_remainder"},
            },
            "set share_below_dim or shared, not both",
        ),
        ({"shared": [True, False], "tail": {"share": "quotient_remainder"}}, "shared has 2"),
    ],
)
def test_inconsistent_sharing_is_refused(base, blocks, expected) -> None:
    (problem,) = _problems(_with_blocks(base, **blocks))
    assert problem.startswith(f"`{KEY}` is inconsistent") and expected in problem, problem


def test_tail_values_are_checked(base) -> None:
    (problem,) = _problems(_with_blocks(base, share_below_dim=1.0, tail={"share": "hashed"}))
    assert problem == (
        f"`{KEY}.tail` is inconsistent: share: hashed needs ids_per_bucket (ids per shared row)."
    )
    (problem,) = _problems(_with_blocks(base, share_below_dim=1.0, tail={"share": "bloom"}))
    assert problem == f"`{KEY}.tail.share` is 'bloom'; allowed values: hashed, quotient_remainder."


def test_min_dim_0_and_a_shared_tail_pass(base) -> None:
    parameters = _with_blocks(
        base, min_dim=0, share_below_dim=0.5, tail={"share": "hashed", "ids_per_bucket": 8}
    )
    validate_parameters(_set(parameters, "memory_efficient.model.bias_layout", "in_embedding"))
    with pytest.raises(ParameterError, match="min_dim"):
        validate_parameters(_with_blocks(base, min_dim=-1))


def test_a_sweep_grid_may_vary_the_tail(base) -> None:
    technique = {
        "embedding_dim": None,
        "bias_layout": "in_embedding",
        "embedding": {
            "type": "mixed_dimension",
            "projection": "pad",
            "blocks": {
                "num_blocks": 3,
                "dims": [2, 0, 0],
                "shared": [False, False, True],
                "tail": {"share": "hashed", "ids_per_bucket": 4},
            },
        },
        "grid": {"embedding.blocks.tail.ids_per_bucket": [4, 16]},
    }
    parameters = _set(base, "sweep.techniques.shared_tail", technique)
    validate_parameters(parameters)
    technique["grid"] = {"embedding.blocks.tail.ids_per_buckets": [4]}
    (problem,) = _problems(_set(base, "sweep.techniques.shared_tail", technique))
    assert problem.startswith(
        "`sweep.techniques.shared_tail.grid.embedding.blocks.tail.ids_per_buckets` is not a "
        "known key of `tail`. Did you mean "
        "`sweep.techniques.shared_tail.grid.embedding.blocks.tail.ids_per_bucket`?"
    ), problem


def test_unseen_ids_may_read_the_rarest_shared_block() -> None:
    tail = {"share": "hashed", "ids_per_bucket": 100, "unknown_ids": "tail"}
    blocks = {"num_blocks": 3, "dims": [2, 0, 0], "shared": [False, True, True], "tail": tail}
    plan = assign_blocks(USERS, MOVIES, _model(**blocks), EVALUATION)
    movies = plan["movie_embedding"]
    assert movies["layer"]["unknown_block"] == 2  # the rarer of the two shared blocks
    assert movies["unknown_ids"] == "block 2"
    assert plan["user_embedding"]["unknown_ids"] == "zero"
    built = build_model(plan, _model(**blocks)).get_layer("movie_embedding")
    assert built.unknown_block == 2
    nothing_shared = {**ALPHA_BLOCKS, "share_below_dim": 0.1, "tail": tail}  # rule dims >= 0.64
    with pytest.raises(ValueError, match=r"t\.movie_embedding\.blocks\.tail\.unknown_ids is tail"):
        assign_blocks(USERS, MOVIES, _model(**nothing_shared), EVALUATION)
