"""`bias_layout: in_embedding`: biases in column 0 of each side's (one column wider) embedding.

Oracles: the same numbers put into a separate-bias model, and predictions and regularization
losses recomputed in numpy from the weights.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from memory_efficient_embeddings.embeddings import (
    ColumnSlice,
    build_rating_model,
    embedding_bytes,
    embedding_parameter_count,
    with_string_ids,
)

# Keras' own saving code trips numpy 2's `__array__(copy=...)` deprecation.
# The oracles hold on JAX too (`make test` runs them there).
pytestmark = [
    pytest.mark.both_backends,
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

NUM_USERS, NUM_MOVIES, DIM = 7, 5, 3
FULL = {"type": "full"}
IDS = {
    "user_id": np.array([0, 1, 6, 3, 7, 2], "int32"),  # 7 = OOV
    "movie_id": np.array([4, 0, 2, 5, 1, 3], "int32"),  # 5 = OOV
}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _table(model: keras.Model, layer: str) -> np.ndarray:
    return keras.ops.convert_to_numpy(model.get_layer(layer).table.embeddings)


def _randomise(model: keras.Model, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        variable.assign(rng.normal(0, 0.7, variable.shape).astype("float32"))


def _in_embedding(dim: int = DIM, **kwargs) -> keras.Model:
    return build_rating_model(
        NUM_USERS,
        NUM_MOVIES,
        FULL,
        FULL,
        dim,
        use_biases=True,
        bias_layout="in_embedding",
        **kwargs,
    )


def _oracle(users: np.ndarray, movies: np.ndarray, global_bias: float) -> np.ndarray:
    """5 · sigmoid(<u, m> + b_u + b_m + g) with column 0 the bias; OOV rows are zero."""
    user_rows = np.vstack([users, np.zeros((1, users.shape[1]))])[IDS["user_id"]]
    movie_rows = np.vstack([movies, np.zeros((1, movies.shape[1]))])[IDS["movie_id"]]
    score = (user_rows[:, 1:] * movie_rows[:, 1:]).sum(1) + user_rows[:, 0] + movie_rows[:, 0]
    return 5 * _sigmoid(score + global_bias)


def test_column_0_is_the_bias_and_the_rest_the_vector_by_numpy() -> None:
    model = _in_embedding()
    _randomise(model)
    users, movies = _table(model, "user_embedding"), _table(model, "movie_embedding")
    assert users.shape == (NUM_USERS, DIM + 1) and movies.shape == (NUM_MOVIES, DIM + 1)
    global_bias = float(keras.ops.convert_to_numpy(model.get_layer("score").global_bias))
    predicted = keras.ops.convert_to_numpy(model(IDS))
    np.testing.assert_allclose(predicted, _oracle(users, movies, global_bias), rtol=1e-5)


def test_in_embedding_equals_a_separate_model_holding_the_same_numbers() -> None:
    regularised = {"bias_l2": 0.3, "embedding_l2": 0.05}
    separate = build_rating_model(
        NUM_USERS, NUM_MOVIES, FULL, FULL, DIM, use_biases=True, **regularised
    )
    _randomise(separate, seed=1)
    combined = _in_embedding(**regularised)
    for side in ("user", "movie"):
        rows = np.hstack([_table(separate, f"{side}_bias"), _table(separate, f"{side}_embedding")])
        combined.get_layer(f"{side}_embedding").table.set_weights([rows])
    combined.get_layer("score").set_weights(separate.get_layer("score").get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(combined(IDS)), keras.ops.convert_to_numpy(separate(IDS)), 1e-6
    )
    # Same regularization: bias_l2 on the biases, embedding_l2 on the vectors, per batch row.
    expected = 0.0
    for side, key in (("user", "user_id"), ("movie", "movie_id")):
        rows = np.hstack([_table(separate, f"{side}_bias"), _table(separate, f"{side}_embedding")])
        looked_up = np.vstack([rows, np.zeros((1, DIM + 1))])[IDS[key]]
        expected += 0.3 * (looked_up[:, 0] ** 2).sum() / len(looked_up)
        expected += 0.05 * (looked_up[:, 1:] ** 2).sum() / len(looked_up)
    for model in (separate, combined):
        model(IDS)
        total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in model.losses)
        assert total == pytest.approx(expected, rel=1e-5)


def test_biases_count_inside_the_layers() -> None:
    full = _in_embedding()
    assert embedding_parameter_count(full) == (NUM_USERS + NUM_MOVIES) * (DIM + 1)
    assert embedding_bytes(full) == 4 * (NUM_USERS + NUM_MOVIES) * (DIM + 1)
    assert {layer.name for layer in full.layers} >= {"user_bias", "movie_bias"}
    assert not any(layer.name == "user_bias" and layer.weights for layer in full.layers)
    # A compact layer now compresses the biases: QR with 3 buckets of 7 users holds 3 + 3 rows.
    qr = build_rating_model(
        NUM_USERS,
        NUM_MOVIES,
        {"type": "quotient_remainder", "num_buckets": 3},
        FULL,
        DIM,
        use_biases=True,
        bias_layout="in_embedding",
    )
    assert embedding_parameter_count(qr) == (3 + 3) * (DIM + 1) + NUM_MOVIES * (DIM + 1)


def test_width_0_is_a_biases_only_model() -> None:
    model = _in_embedding(dim=0)
    _randomise(model, seed=2)
    users, movies = _table(model, "user_embedding"), _table(model, "movie_embedding")
    assert users.shape == (NUM_USERS, 1)
    assert embedding_parameter_count(model) == NUM_USERS + NUM_MOVIES
    global_bias = float(keras.ops.convert_to_numpy(model.get_layer("score").global_bias))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(IDS)), _oracle(users, movies, global_bias), rtol=1e-5
    )


def test_width_0_without_in_embedding_biases_is_refused() -> None:
    with pytest.raises(ValueError, match="needs `use_biases` with `bias_layout='in_embedding'`"):
        build_rating_model(NUM_USERS, NUM_MOVIES, FULL, FULL, 0, use_biases=True)
    with pytest.raises(ValueError, match="`bias_layout` must be one of"):
        build_rating_model(NUM_USERS, NUM_MOVIES, FULL, FULL, 2, bias_layout="inside")


def test_without_biases_both_layouts_are_the_same_model() -> None:
    plain = build_rating_model(NUM_USERS, NUM_MOVIES, FULL, FULL, DIM, bias_layout="in_embedding")
    assert embedding_parameter_count(plain) == (NUM_USERS + NUM_MOVIES) * DIM


@pytest.mark.parametrize(
    "movies",
    [
        FULL,
        {
            "type": "mixed_dimension",
            "block_sizes": [2, 3],
            "block_dims": [4, 1],
            "projection": "pad",
        },
        {"type": "hashed", "num_buckets": 3, "seed": 2},
    ],
)
def test_in_embedding_saves_and_reloads_in_safe_mode(movies, tmp_path) -> None:
    inner = build_rating_model(
        NUM_USERS,
        NUM_MOVIES,
        {"type": "quotient_remainder", "num_buckets": 3},
        movies,
        DIM,
        use_biases=True,
        bias_layout="in_embedding",
        bias_l2=0.1,
        embedding_l2=0.01,
    )
    _randomise(inner, seed=3)
    users = [f"user_{i}" for i in range(NUM_USERS)]
    model = with_string_ids(inner, users, [f"movie_{i}" for i in range(NUM_MOVIES)])
    batch = {
        "user_id": np.array(["user_0", "user_6", "nobody", "user_2"], dtype=object),
        "movie_id": np.array(["movie_4", "nothing", "movie_1", "movie_0"], dtype=object),
    }
    expected = model.predict(batch, verbose=0)
    assert expected.std() > 0.05
    path = tmp_path / "in_embedding.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(reloaded.predict(batch, verbose=0), expected)
    slices = [layer for layer in reloaded.layers[-1].layers if isinstance(layer, ColumnSlice)]
    assert sorted((s.name, s.start, s.stop) for s in slices) == [
        ("movie_bias", 0, 1),
        ("movie_vector", 1, None),
        ("user_bias", 0, 1),
        ("user_vector", 1, None),
    ]


def test_column_slice_checks_its_bounds() -> None:
    with pytest.raises(ValueError, match="`start` must be a non-negative integer"):
        ColumnSlice(-1)
    with pytest.raises(ValueError, match="must not be below `start`"):
        ColumnSlice(3, 1)
    assert ColumnSlice(1).compute_output_shape((None, 1)) == (None, 0)
    assert ColumnSlice(0, 1).compute_output_shape((None, 5)) == (None, 1)
