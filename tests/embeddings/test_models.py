"""Rating models: recipe parameter counts, string ids, save/load, OOV, quantization."""

import keras
import numpy as np
import pytest

from memory_efficient_embeddings.embeddings import (
    IdLookup,
    build_rating_model,
    embedding_parameter_count,
    make_embedding,
    with_string_ids,
)

RECIPE_QR_USERS = {"type": "quotient_remainder", "num_buckets": 120, "quotient_rows": 120}
RECIPE_MD_MOVIES = {
    "type": "mixed_dimension",
    "block_sizes": [400, 1300, 2006],
    "block_dims": [64, 32, 16],
    "extra_rows_per_block": 1,
    "projection_bias": True,
}
# Keras' own saving/quantization code trips numpy 2's `__array__(copy=...)` deprecation.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

USERS = [f"user_{i}" for i in range(1, 51)]
MOVIES = [f"movie_{i}" for i in range(1, 31)]
SMALL_MD = {"type": "mixed_dimension", "block_sizes": [5, 10, 15], "block_dims": [8, 4, 2]}
VARIANTS = {
    "full": ({"type": "full"}, {"type": "full"}),
    "qr_md": ({"type": "quotient_remainder"}, SMALL_MD),
    "hashed_projected": (
        {"type": "hashed", "num_buckets": 7, "seed": 1},
        {"type": "projected", "embedding_dim": 3, "use_bias": True},
    ),
    "qr_concat_add": (
        {"type": "quotient_remainder", "combiner": "concat", "num_buckets": 5},
        {"type": "quotient_remainder", "combiner": "add", "num_buckets": 4},
    ),
}


def string_batch(users, movies):
    return {
        "user_id": np.array(users, dtype=object),
        "movie_id": np.array(movies, dtype=object),
    }


def random_batch(size=64, seed=0):
    rng = np.random.default_rng(seed)
    # Ids 1..60 / 1..35: some are outside the vocabularies (OOV).
    return string_batch(
        [f"user_{i}" for i in rng.integers(1, 61, size)],
        [f"movie_{i}" for i in rng.integers(1, 36, size)],
    )


def spread_weights(model, seed=0):
    """Give the tables trained-looking magnitudes so that predictions actually vary."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = variable.numpy()
        if variable.path.endswith("embeddings"):
            variable.assign(value * 8 + rng.normal(0, 0.1, value.shape).astype(value.dtype))


def small_model(variant, use_biases=True):
    users, movies = VARIANTS[variant]
    model = build_rating_model(len(USERS), len(MOVIES), users, movies, 8, use_biases=use_biases)
    spread_weights(model)
    return model


def test_recipe_baseline_parameter_count():
    model = build_rating_model(6040, 3706, {"type": "full"}, {"type": "full"}, 64)
    assert model.count_params() == 623_744
    assert embedding_parameter_count(model) == 623_744


def test_recipe_memory_efficient_parameter_count():
    model = build_rating_model(6040, 3706, RECIPE_QR_USERS, RECIPE_MD_MOVIES, 64)
    assert model.count_params() == 117_968
    assert model.get_layer("user_embedding").count_params() == 15_360
    assert model.get_layer("movie_embedding").count_params() == 102_608
    assert embedding_parameter_count(model) == 117_968


def test_biases_add_one_row_per_id_and_a_global_bias():
    model = build_rating_model(6040, 3706, {"type": "full"}, {"type": "full"}, 64, use_biases=True)
    assert model.count_params() == 623_744 + 6040 + 3706 + 1
    assert embedding_parameter_count(model) == 623_744 + 6040 + 3706


def test_make_embedding_rejects_unknown_type():
    with pytest.raises(ValueError, match="cce.*full.*hashed.*mixed_dimension.*robe.*tt_rec"):
        make_embedding({"type": "no_such_type"}, 10, 4, "x")
    with pytest.raises(ValueError):
        make_embedding({"type": "full", "num_ids": 3}, 10, 4, "x")


def test_rating_output_range_and_linear():
    users, movies = VARIANTS["full"]
    model = build_rating_model(50, 30, users, movies, 8, output={"activation": "linear"})
    spread_weights(model)
    batch = {"user_id": np.arange(50) % 50, "movie_id": np.arange(50) % 30}
    scores = model.predict(batch, verbose=0)
    assert scores.shape == (50,)
    assert scores.min() < 0 < scores.max()
    sigmoid = build_rating_model(
        50, 30, users, movies, 8, output={"min_rating": 1, "max_rating": 5}
    )
    sigmoid.set_weights(model.get_weights())
    ratings = sigmoid.predict(batch, verbose=0)
    np.testing.assert_allclose(ratings, 1 + 4 / (1 + np.exp(-scores)), rtol=1e-5)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_string_model_save_load_round_trip(variant, tmp_path):
    model = with_string_ids(small_model(variant), USERS, MOVIES)
    batch = random_batch()
    expected = model.predict(batch, verbose=0)
    assert expected.shape == (64,)
    assert expected.std() > 0.05  # the check below is not trivially about constant outputs
    path = tmp_path / f"{variant}.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)  # safe_mode=True by default
    np.testing.assert_array_equal(reloaded.predict(batch, verbose=0), expected)
    single = reloaded.predict(string_batch(["user_42"], ["movie_7"]), verbose=0)
    np.testing.assert_allclose(
        single, model.predict(string_batch(["user_42"], ["movie_7"]), verbose=0)
    )


@pytest.mark.tensorflow_only
def test_string_model_shares_weights_and_trains():
    inner = small_model("qr_md")
    model = with_string_ids(inner, USERS, MOVIES)
    assert model.count_params() == inner.count_params()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    batch = random_batch(128, seed=1)
    before = [w.numpy().copy() for w in inner.weights]
    model.fit(batch, np.full(128, 4.0), batch_size=32, epochs=1, verbose=0)
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, inner.weights, strict=True))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_unknown_string_ids_fall_back_to_biases(variant):
    inner = small_model(variant, use_biases=True)
    model = with_string_ids(inner, USERS, MOVIES)
    known = model.predict(string_batch(["user_1", "nobody"], ["never_seen", "movie_2"]), verbose=0)
    assert np.all(np.isfinite(known))
    # Unknown user: zero user vector and zero user bias, so the rating is sigmoid(movie + global).
    movie_bias = inner.get_layer("movie_bias").table.embeddings.numpy()[1, 0]
    global_bias = float(inner.get_layer("score").global_bias.numpy())
    assert known[1] == pytest.approx(5 / (1 + np.exp(-(movie_bias + global_bias))), rel=1e-5)
    user_bias = inner.get_layer("user_bias").table.embeddings.numpy()[0, 0]
    assert known[0] == pytest.approx(5 / (1 + np.exp(-(user_bias + global_bias))), rel=1e-5)
    # Without biases, an unknown id gives the neutral score 0 -> 2.5.
    plain = with_string_ids(small_model(variant, use_biases=False), USERS, MOVIES)
    np.testing.assert_allclose(plain.predict(string_batch(["x"], ["movie_1"]), verbose=0), [2.5])


@pytest.mark.tensorflow_only
def test_large_vocabulary_id_lookup_saves_and_reloads(tmp_path):
    vocabulary = [f"user_{i}" for i in range(50_000)]
    inputs = keras.Input(shape=(), dtype="string", name="user_id")
    model = keras.Model(inputs, IdLookup(vocabulary, name="lookup")(inputs))
    path = tmp_path / "lookup.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    ids = np.array(["user_0", "user_49999", "user_123", "user_50000"], dtype=object)
    np.testing.assert_array_equal(np.asarray(reloaded(ids)), [0, 49_999, 123, 50_000])
    assert reloaded.get_layer("lookup").oov_index == 50_000


@pytest.mark.parametrize("variant", ["qr_md", "hashed_projected"])
def test_int8_quantization_keeps_predictions_close(variant, tmp_path):
    model = with_string_ids(small_model(variant), USERS, MOVIES)
    batch = random_batch(256)
    expected = model.predict(batch, verbose=0)
    float_bytes = sum(w.numpy().nbytes for w in model.weights)
    with pytest.warns(UserWarning):  # InputLayer / StringLookup have nothing to quantize
        model.quantize("int8")
    table_dtypes = {w.path: w.dtype for w in model.weights if w.path.endswith("embeddings")}
    assert table_dtypes and set(table_dtypes.values()) == {"int8"}
    assert sum(w.numpy().nbytes for w in model.weights) < float_bytes
    quantized = model.predict(batch, verbose=0)
    assert np.abs(quantized - expected).max() < 0.05
    # A quantized model saves and reloads too (the layers re-quantize their sublayers on load).
    path = tmp_path / "int8.keras"
    model.save(path)
    np.testing.assert_array_equal(
        keras.saving.load_model(path).predict(batch, verbose=0), quantized
    )
