"""HashEmbedding against a numpy oracle of Svenstrup et al.'s hash embedding."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.embeddings import HashEmbedding
from memory_efficient_embeddings.embeddings.hash_embedding import hash_embedding_sizes
from memory_efficient_embeddings.modeling.specs import _resolve_layer, resolve_embedding_plan
from tests.embeddings.backend_ops import layer_gradients

P = 2**31 - 1


def _oracle(layer: HashEmbedding, pool: np.ndarray, importance: np.ndarray, ids) -> np.ndarray:
    # e_w = sum_j p_w[j] * E[h_j(w)]: h_j universal hashes into the pool, p_w a row of the
    # importance table (its own row when there are as many rows as ids, else a hashed one).
    a, b = layer.bucket_coefficients
    c, e = layer.importance_coefficients
    rows = []
    for i in ids:
        weight_row = (
            i if layer.importance_rows >= layer.num_ids else ((c * i + e) % P) % len(importance)
        )
        vector = np.zeros(pool.shape[1])
        for j in range(layer.num_hashes):
            bucket = ((int(a[j]) * i + int(b[j])) % P) % len(pool)
            vector += importance[weight_row, j] * pool[bucket]
        rows.append(vector)
    return np.array(rows)


def _built(layer: HashEmbedding, seed: int = 0) -> tuple[HashEmbedding, np.ndarray, np.ndarray]:
    layer.build(None)
    rng = np.random.default_rng(seed)
    pool = rng.normal(size=(layer.num_buckets, layer.output_dim)).astype(np.float32)
    importance = rng.normal(size=(layer.importance_rows, layer.num_hashes)).astype(np.float32)
    layer.pool.embeddings.assign(pool)
    layer.importance.embeddings.assign(importance)
    return layer, pool, importance


@pytest.mark.parametrize("importance_rows", [7, 40])  # hashed weights, then one row per id
@pytest.mark.parametrize("num_hashes", [1, 2, 3])
def test_rows_match_the_oracle(num_hashes: int, importance_rows: int) -> None:
    layer, pool, importance = _built(
        HashEmbedding(40, 5, num_buckets=11, importance_rows=importance_rows, num_hashes=num_hashes)
    )
    ids = list(range(40))
    expected = _oracle(layer, pool, importance, ids)
    np.testing.assert_allclose(np.asarray(layer(np.array(ids))), expected, rtol=1e-5, atol=1e-6)


def test_hand_case_two_components_with_their_own_weights() -> None:
    layer, _, _ = _built(HashEmbedding(3, 2, num_buckets=4, importance_rows=3, num_hashes=2))
    pool = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [-1.0, 3.0]], np.float32)
    layer.pool.embeddings.assign(pool)
    layer.importance.embeddings.assign(np.array([[1.0, 0.5], [2.0, -1.0], [0.0, 1.0]], "float32"))
    (a0, a1), (b0, b1) = layer.bucket_coefficients
    # Id 1 uses importance row 1, (2, -1), on its two hashed pool rows.
    first, second = ((a0 + b0) % P) % 4, ((a1 + b1) % P) % 4
    expected = 2.0 * pool[first] - 1.0 * pool[second]
    np.testing.assert_allclose(np.asarray(layer(np.array([1])))[0], expected, rtol=1e-6)


def test_importance_rows_are_the_ids_themselves_when_there_are_enough() -> None:
    layer = HashEmbedding(30, 4, num_buckets=5, importance_rows=30)
    np.testing.assert_array_equal(np.asarray(layer.importance_index(np.arange(30))), range(30))
    hashed = HashEmbedding(30, 4, num_buckets=5, importance_rows=6)
    index = np.asarray(hashed.importance_index(np.arange(30)))
    assert index.min() >= 0 and index.max() < 6 and len(set(index.tolist())) > 1


def test_oov_is_zero_and_parameters_by_hand() -> None:
    layer = HashEmbedding(20, 6, num_buckets=9, importance_rows=13, num_hashes=3)
    out = np.asarray(layer(np.array([4, 20, -1])))
    assert np.any(out[0] != 0) and np.all(out[1:] == 0)
    assert sum(int(np.prod(w.shape)) for w in layer.weights) == 9 * 6 + 13 * 3


@pytest.mark.parametrize(
    ("num_ids", "budget", "expected"),
    [
        # K = min(100, 400 // 4) = 100 rows of 2 weights; the pool takes (400 - 200) // 8 = 25.
        (100, 400, (25, 100)),
        # K = min(1000, 100) = 100; B = (400 - 200) // 8 = 25.
        (1000, 400, (25, 100)),
        # K capped at the 30 ids; B = (400 - 60) // 8 = 42.
        (30, 400, (42, 30)),
    ],
)
def test_budget_sizes_by_hand(num_ids: int, budget: int, expected: tuple[int, int]) -> None:
    assert hash_embedding_sizes(num_ids, 8, 2, budget) == expected
    layer = HashEmbedding(num_ids, 8, parameter_budget=budget)
    assert (layer.num_buckets, layer.importance_rows) == expected
    layer.build(None)
    assert sum(int(np.prod(w.shape)) for w in layer.weights) <= budget


def test_budget_dim_resolves_to_a_budget_and_the_plan_records_the_sizes() -> None:
    layer = _resolve_layer({"type": "hash_embedding", "budget_dim": 4}, 100, None, "w")
    assert layer == {"type": "hash_embedding", "parameter_budget": 400}
    vocabularies = [
        pd.DataFrame({"id": [f"{side}_{i}" for i in range(n)], "train_count": np.arange(n, 0, -1)})
        for side, n in (("user", 100), ("movie", 30))
    ]
    spec = {"type": "hash_embedding", "budget_dim": 4}
    model = {"embedding_dim": 8, "user_embedding": spec, "movie_embedding": spec}
    plan = resolve_embedding_plan(*vocabularies, model, 3)
    # Users: 400 weights -> K = 100, B = (400 - 200) // 8 = 25; movies: 120 -> K = 30, B = 7.
    assert plan["user_embedding"]["layer_sizes"] == {
        "num_buckets": 25,
        "importance_rows": 100,
        "num_hashes": 2,
    }
    assert plan["movie_embedding"]["layer_sizes"]["num_buckets"] == 7
    assert plan["movie_embedding"]["parameter_count"] == 7 * 8 + 30 * 2 <= 120


def test_bad_sizes_are_named() -> None:
    with pytest.raises(ValueError, match="leaves no room for one 8-wide pool vector"):
        HashEmbedding(100, 8, parameter_budget=7)
    with pytest.raises(ValueError, match="or `parameter_budget` alone"):
        HashEmbedding(100, 8, num_buckets=3)
    with pytest.raises(ValueError, match="or `parameter_budget` alone"):
        HashEmbedding(100, 8, num_buckets=3, importance_rows=4, parameter_budget=100)
    with pytest.raises(ValueError, match="`num_hashes` must be a positive integer"):
        HashEmbedding(100, 8, num_buckets=3, importance_rows=4, num_hashes=0)


@pytest.mark.tensorflow_only
def test_pool_gradient_is_row_sparse_on_tensorflow() -> None:
    import tensorflow as tf  # noqa: PLC0415

    layer, _, _ = _built(HashEmbedding(10, 3, num_buckets=6, importance_rows=10))
    with tf.GradientTape() as tape:
        loss = keras.ops.sum(layer(np.array([4])))
    pool_gradient = tape.gradient(loss, layer.pool.embeddings.value)
    assert isinstance(pool_gradient, tf.IndexedSlices)  # row-sparse, like a plain table


def test_gradients_reach_the_pool_rows_and_the_weights() -> None:
    layer, pool, importance = _built(HashEmbedding(10, 3, num_buckets=6, importance_rows=10))
    gradients = layer_gradients(layer, np.array([4]), keras.ops.sum)
    pool_gradient = gradients[layer.pool.embeddings.path]
    weight_gradient = gradients[layer.importance.embeddings.path]
    a, b = layer.bucket_coefficients
    buckets = [((int(a[j]) * 4 + int(b[j])) % P) % 6 for j in range(2)]
    # d(sum of the row)/d pool[bucket_j] = p_4[j] (per column); d/d p_4[j] = sum(pool[bucket_j]).
    expected_pool = np.zeros((6, 3))
    for j, bucket in enumerate(buckets):
        expected_pool[bucket] += importance[4, j]
    np.testing.assert_allclose(pool_gradient, expected_pool, 1e-6)
    expected_weights = np.zeros((10, 2))
    expected_weights[4] = [pool[bucket].sum() for bucket in buckets]
    np.testing.assert_allclose(weight_gradient, expected_weights, rtol=1e-6)


def test_config_is_complete_and_reload_in_safe_mode_is_identical(tmp_path) -> None:
    layer = HashEmbedding(50, 8, parameter_budget=300, num_hashes=3, seed=5, name="hashes")
    config = layer.get_config()
    # The sizes the budget chose: K = min(50, 300 // 6) = 50, B = (300 - 50 * 3) // 8 = 18.
    sizes = [config[k] for k in ("num_buckets", "importance_rows", "num_hashes", "seed")]
    assert sizes == [18, 50, 3, 5] and "parameter_budget" not in config
    rebuilt = HashEmbedding.from_config(config)
    assert rebuilt.get_config() == config
    np.testing.assert_array_equal(rebuilt.bucket_coefficients, layer.bucket_coefficients)
    inputs = keras.Input((3,), dtype="int32")
    model = keras.Model(inputs, layer(inputs))
    ids = np.array([[0, 17, 50]])
    path = tmp_path / "hash_embedding.keras"
    model.save(path)
    reloaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(reloaded.predict(ids, verbose=0), model.predict(ids, verbose=0))
