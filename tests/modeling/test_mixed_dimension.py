"""MixedDimensionEmbedding's projection modes: zero padding and the norm-matching identity."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from memory_efficient_embeddings.embeddings import MixedDimensionEmbedding


def _built(layer: MixedDimensionEmbedding) -> MixedDimensionEmbedding:
    layer.build((None,))
    return layer


def _table(layer: MixedDimensionEmbedding, block: int) -> np.ndarray:
    return keras.ops.convert_to_numpy(layer.tables[block].embeddings)


def test_pad_projection_puts_a_narrow_row_in_the_first_coordinates() -> None:
    layer = _built(MixedDimensionEmbedding([2, 3], [6, 2], 6, projection="pad"))
    vectors = keras.ops.convert_to_numpy(layer(np.array([1, 3, 5])))
    np.testing.assert_allclose(vectors[0], _table(layer, 0)[1])
    np.testing.assert_allclose(vectors[1], [*_table(layer, 1)[1], 0, 0, 0, 0])
    np.testing.assert_allclose(vectors[2], np.zeros(6))  # index 5 = OOV
    # No projection weights: the tables are all there is.
    assert layer.count_params() == 2 * 6 + 3 * 2


def test_scaled_identity_projection_keeps_the_expected_row_norm() -> None:
    layer = _built(
        MixedDimensionEmbedding(
            [2, 3], [8, 2], 8, projection_bias=False, kernel_initializer="scaled_identity"
        )
    )
    vector = keras.ops.convert_to_numpy(layer(np.array([2])))[0]
    # [I | 0] · sqrt(8 / 2): the row, doubled, in the first two coordinates.
    # Scaled by 2, a width-2 row has the expected squared norm of a width-8 row (2 · 4 = 8).
    np.testing.assert_allclose(vector, [*(2.0 * _table(layer, 1)[0]), 0, 0, 0, 0, 0, 0], rtol=1e-6)


def test_projection_modes_survive_a_config_round_trip() -> None:
    for kwargs in ({"projection": "pad"}, {"kernel_initializer": "scaled_identity"}):
        layer = MixedDimensionEmbedding([2, 3], [4, 2], 4, **kwargs)
        clone = MixedDimensionEmbedding.from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()


def test_bad_projection_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="`projection` must be one of"):
        MixedDimensionEmbedding([2, 3], [4, 2], 4, projection="sparse")
    with pytest.raises(ValueError, match="must not exceed `output_dim`"):
        MixedDimensionEmbedding([2, 3], [8, 2], 4)
