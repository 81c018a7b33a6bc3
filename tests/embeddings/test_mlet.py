"""MLET: a projected table folded into a plain one gives the same predictions from n·d weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from memory_efficient_embeddings.embeddings import (
    FullEmbedding,
    ProjectedEmbedding,
    build_rating_model,
    embedding_parameter_count,
    fold_projected,
    serving_bytes,
    with_string_ids,
)
from memory_efficient_embeddings.embeddings.mlet import fold_if_smaller, folded_table


def test_hand_case_table_times_kernel_plus_bias() -> None:
    layer = ProjectedEmbedding(2, 2, 3, use_bias=True)
    layer.build()
    layer.table.embeddings.assign(np.array([[1.0, 2.0], [0.0, -1.0]], np.float32))
    layer.projection.kernel.assign(np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], np.float32))
    layer.projection.bias.assign(np.array([0.5, 0.0, 0.0], np.float32))
    np.testing.assert_array_equal(folded_table(layer), [[1.5, 2.0, 3.0], [0.5, -1.0, -1.0]])


def _trained_projected_model(use_bias: bool) -> keras.Model:
    keras.utils.set_random_seed(0)
    spec = {"type": "projected", "embedding_dim": 16, "use_bias": use_bias}
    model = build_rating_model(40, 30, spec, spec, 4, use_biases=True)
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    x = {"user_id": rng.integers(0, 40, 500), "movie_id": rng.integers(0, 30, 500)}
    model.fit(x, rng.uniform(1, 5, 500), epochs=3, batch_size=64, verbose=0)
    return model


@pytest.mark.parametrize("use_bias", [False, True])
def test_folded_model_predicts_the_same_from_plain_tables(use_bias: bool) -> None:
    model = _trained_projected_model(use_bias)
    folded = fold_projected(model)
    # Every id and both OOV indices.
    users, movies = np.meshgrid(np.arange(-1, 41), np.arange(-1, 31))
    x = {"user_id": users.ravel().astype("int32"), "movie_id": movies.ravel().astype("int32")}
    np.testing.assert_allclose(
        folded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=0, atol=1e-6
    )
    side = folded.get_layer("user_embedding")
    assert isinstance(side, FullEmbedding) and side.output_dim == 4
    # Served: (40 + 30) ids x 4 columns plus their biases, against the 16-wide tables trained.
    assert embedding_parameter_count(folded) == 70 * 4 + 70
    assert serving_bytes(folded) == 4 * 70 * 5
    assert embedding_parameter_count(model) == 70 * 16 + 2 * (16 * 4 + 4 * use_bias) + 70
    assert folded.name == model.name


def test_a_string_id_model_folds_its_inner_model(tmp_path) -> None:
    model = _trained_projected_model(False)
    users, movies = [f"u{i}" for i in range(40)], [f"m{i}" for i in range(30)]
    wrapped = with_string_ids(model, users, movies)
    folded = fold_projected(wrapped)
    x = {"user_id": ["u3", "u39", "nobody"], "movie_id": ["m0", "m7", "m29"]}
    np.testing.assert_allclose(
        folded.predict(x, verbose=0), wrapped.predict(x, verbose=0), rtol=0, atol=1e-6
    )
    assert serving_bytes(folded) == 4 * 70 * 5
    # The folded model saves and reloads in safe mode like any other.
    folded.save(tmp_path / "folded.keras")
    reloaded = keras.models.load_model(tmp_path / "folded.keras", safe_mode=True)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), folded.predict(x, verbose=0))


def test_fold_only_where_it_is_smaller() -> None:
    wide = _trained_projected_model(False)  # 16 -> 4: folding stores 4 of every 16 columns
    assert isinstance(fold_if_smaller(wide).get_layer("movie_embedding"), FullEmbedding)
    narrow = build_rating_model(
        40, 30, {"type": "projected", "embedding_dim": 2}, {"type": "full"}, 8
    )
    assert fold_if_smaller(narrow) is narrow  # 2 -> 8: the fold would be 4x larger
    plain = build_rating_model(40, 30, {"type": "full"}, {"type": "full"}, 8)
    assert fold_if_smaller(plain) is plain


def test_a_quantized_projection_is_refused() -> None:
    layer = ProjectedEmbedding(10, 6, 4)
    layer.build()
    layer.table.quantize("int8")
    with pytest.raises(ValueError, match="fold the float model, then quantize the folded one"):
        folded_table(layer)
