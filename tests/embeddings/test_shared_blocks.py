"""Mixed-dimension blocks of 0 dims and shared (hashed, quotient-remainder) blocks.

The oracle is a naive per-id lookup in numpy and Python integers: find the id's block, then read
its own row, its hashed bucket or its quotient and remainder rows, and zero-pad.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from memory_efficient_embeddings.embeddings import (
    MixedDimensionEmbedding,
    build_rating_model,
    embedding_parameter_count,
    with_string_ids,
)

# The oracles hold on JAX too (`make test` runs them there).
pytestmark = [
    pytest.mark.both_backends,
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

PRIME = 2**31 - 1
SIZES = [3, 4, 2, 10, 7]
DIMS = [4, 2, 0, 2, 3]
STORAGE = ["own", "own", "own", "hashed", "quotient_remainder"]
BUCKETS = [0, 0, 0, 3, 3]  # hashed: 3 rows; QR: 3 remainder rows, ceil(7 / 3) = 3 quotient rows


def _hybrid(combiner: str = "multiply", seed: int = 5) -> MixedDimensionEmbedding:
    layer = MixedDimensionEmbedding(
        SIZES,
        DIMS,
        4,
        projection="pad",
        block_storage=STORAGE,
        block_buckets=BUCKETS,
        shared_combiner=combiner,
        seed=seed,
    )
    layer.build()
    rng = np.random.default_rng(seed)
    for variable in layer.weights:
        variable.assign(rng.normal(0, 1, variable.shape).astype("float32"))
    return layer


def _weights(layer: keras.layers.Layer | None) -> np.ndarray:
    return keras.ops.convert_to_numpy(layer.embeddings)


def _oracle(layer: MixedDimensionEmbedding, ids: list[int], combiner: str) -> np.ndarray:
    """Each id's vector, one at a time, from the weights and Python integers."""
    out = np.zeros((len(ids), layer.output_dim), np.float32)
    for row, index in enumerate(ids):
        start = 0
        for b, (size, dim, kind) in enumerate(zip(SIZES, DIMS, STORAGE, strict=True)):
            if start <= index < start + size and dim > 0:
                local = index - start
                if kind == "own":
                    vector = _weights(layer.tables[b])[local]
                elif kind == "hashed":
                    a, c = layer.hash_coefficients[b]
                    vector = _weights(layer.tables[b])[((a * local + c) % PRIME) % BUCKETS[b]]
                else:
                    quotient = _weights(layer.tables[b])[local // BUCKETS[b]]
                    remainder = _weights(layer.remainder_tables[b])[local % BUCKETS[b]]
                    vector = (
                        quotient * remainder if combiner == "multiply" else quotient + remainder
                    )
                out[row, :dim] = vector
            start += size
    return out


@pytest.mark.parametrize("combiner", ["multiply", "add"])
def test_every_id_reads_what_a_naive_lookup_reads(combiner: str) -> None:
    layer = _hybrid(combiner)
    ids = [*range(sum(SIZES)), sum(SIZES), -1]  # every id, the OOV index and a negative one
    got = keras.ops.convert_to_numpy(layer(np.array(ids)))
    np.testing.assert_allclose(got, _oracle(layer, ids, combiner), rtol=1e-6)
    # The 0-dim block (ids 7 and 8) and the out-of-range ids are zero vectors.
    np.testing.assert_array_equal(got[[7, 8, 26, 27]], 0)


def test_hashed_ids_share_rows_and_qr_ids_get_distinct_pairs() -> None:
    layer = _hybrid()
    hashed = keras.ops.convert_to_numpy(layer(np.arange(9, 19)))
    # 10 ids in 3 buckets: at most 3 distinct rows, and some ids share one.
    assert len({tuple(row) for row in hashed}) <= 3
    qr_rows = {(local // 3, local % 3) for local in range(7)}
    assert len(qr_rows) == 7  # quotient-remainder: every id its own pair of rows


def test_weights_by_hand() -> None:
    layer = _hybrid()
    # Own 3·4 + 4·2; 0-dim block nothing; hashed 3·2; QR (3 + 3)·3.
    assert layer.count_params() == 12 + 8 + 0 + 6 + 18
    assert [
        sum(w.numpy().size for part in layer.block_layers(b) for w in part.weights)
        for b in range(5)
    ] == [12, 8, 0, 6, 18]
    assert layer.quotient_rows(4) == 3


def test_hash_coefficients_follow_the_seed_and_survive_the_config() -> None:
    layer = _hybrid(seed=5)
    clone = MixedDimensionEmbedding.from_config(layer.get_config())
    assert clone.hash_coefficients == layer.hash_coefficients
    assert clone.get_config() == layer.get_config()
    assert _hybrid(seed=6).hash_coefficients != layer.hash_coefficients


def test_every_block_at_0_dims_gives_zero_vectors() -> None:
    layer = MixedDimensionEmbedding([2, 3], [0, 0], 3, projection="pad")
    layer.build()
    assert layer.count_params() == 0
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(np.array([0, 4, 5]))), 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"block_storage": ["own", "sparse"], "block_buckets": [0, 2]}, r"block_storage\[1\]"),
        ({"block_storage": ["own", "hashed"], "block_buckets": [0, 0]}, r"block_buckets\[1\]"),
        ({"block_storage": ["own"], "block_buckets": [0]}, "one entry per block"),
        ({"shared_combiner": "concat"}, "`shared_combiner` must be one of"),
    ],
)
def test_bad_sharing_is_refused(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        MixedDimensionEmbedding([2, 3], [2, 1], 2, **kwargs)
    with pytest.raises(ValueError, match="non-negative integer"):
        MixedDimensionEmbedding([2, 3], [2, -1], 2)


def test_a_shared_bias_tail_trains_saves_and_reloads(tmp_path) -> None:
    # in_embedding: the tail block of width 1 is a hashed bias only (3 rows for 10 movies).
    movies = {
        "type": "mixed_dimension",
        "projection": "pad",
        "block_sizes": [2, 10],
        "block_dims": [3, 1],
        "block_storage": ["own", "hashed"],
        "block_buckets": [0, 3],
        "seed": 2,
    }
    model = build_rating_model(
        4, 12, {"type": "full"}, movies, 2, use_biases=True, bias_layout="in_embedding"
    )
    assert embedding_parameter_count(model) == 4 * 3 + 2 * 3 + 3
    ids = {"user_id": np.array([0, 1, 2, 3] * 3), "movie_id": np.arange(12)}
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    before = [w.numpy().copy() for w in model.weights]
    model.fit(ids, np.linspace(1, 5, 12), epochs=3, verbose=0)
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.weights, strict=True))
    expected = keras.ops.convert_to_numpy(model(ids))
    model.save(tmp_path / "hybrid.keras")
    reloaded = keras.saving.load_model(tmp_path / "hybrid.keras", safe_mode=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(reloaded(ids)), expected)


def test_unknown_ids_can_read_a_shared_blocks_row() -> None:
    layer = _hybrid()
    layer_config = {**layer.get_config(), "unknown_block": 4}
    fallback = MixedDimensionEmbedding.from_config(layer_config)
    fallback.build()
    fallback.set_weights(layer.get_weights())
    unknown = [sum(SIZES), sum(SIZES) + 5, -1]
    got = keras.ops.convert_to_numpy(fallback(np.array([19, *unknown, 3])))
    # The QR block starts at id 19: unknown ids read its row; known ids are untouched.
    first_tail_row = _oracle(layer, [19], "multiply")[0]
    assert np.abs(first_tail_row).sum() > 0
    np.testing.assert_allclose(got[:4], np.tile(first_tail_row, (4, 1)), rtol=1e-6)
    np.testing.assert_allclose(got[4], _oracle(layer, [3], "multiply")[0], rtol=1e-6)
    assert fallback.get_config()["unknown_block"] == 4


@pytest.mark.parametrize("block", [0, 5, True, "4"])
def test_unknown_ids_never_read_an_own_row(block) -> None:
    with pytest.raises(
        ValueError, match=r"`unknown_block` must name a shared block \(one of \[3, 4\]\)"
    ):
        MixedDimensionEmbedding(
            SIZES, DIMS, 4, block_storage=STORAGE, block_buckets=BUCKETS, unknown_block=block
        )


def test_an_unseen_string_id_scores_as_the_rarest_ids(tmp_path) -> None:
    # One shared bias row for the 3 rarest movies; an unseen movie reads it too.
    movies = {
        "type": "mixed_dimension",
        "projection": "pad",
        "block_sizes": [2, 3],
        "block_dims": [2, 1],
        "block_storage": ["own", "hashed"],
        "block_buckets": [0, 1],
        "unknown_block": 1,
    }
    inner = build_rating_model(
        3, 5, {"type": "full"}, movies, 1, use_biases=True, bias_layout="in_embedding"
    )
    rng = np.random.default_rng(0)
    for variable in inner.weights:
        variable.assign(rng.normal(0, 1, variable.shape).astype("float32"))
    model = with_string_ids(inner, ["u0", "u1", "u2"], [f"m{i}" for i in range(5)])
    batch = {
        "user_id": np.array(["u1"] * 4, dtype=object),
        "movie_id": np.array(["m2", "m4", "never_rated", "m0"], dtype=object),
    }
    scores = model.predict(batch, verbose=0)
    assert scores[0] == scores[1] == scores[2] != scores[3]
    model.save(tmp_path / "fallback.keras")
    reloaded = keras.saving.load_model(tmp_path / "fallback.keras", safe_mode=True)
    np.testing.assert_array_equal(reloaded.predict(batch, verbose=0), scores)
