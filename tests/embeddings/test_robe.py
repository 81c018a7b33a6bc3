"""ROBEEmbedding against a numpy oracle of ROBE-Z's hashed circular blocks."""

import keras
import numpy as np
import pytest

from memory_efficient_embeddings.embeddings import ROBEEmbedding
from tests.embeddings.backend_ops import layer_gradients

P = 2**31 - 1


def _oracle_rows(layer: ROBEEmbedding, array: np.ndarray, ids: list[int]) -> np.ndarray:
    # Each block: start = ((a*i + b*j + c) mod p) mod size, then Z elements wrapping around.
    a, b, c = layer.offset_coefficients
    sa, sb, sc = layer.sign_coefficients
    rows = []
    for i in ids:
        row = []
        for j in range(layer.num_blocks):
            start = ((a * i + b * j + c) % P) % layer.array_size
            sign = 2 * (((sa * i + sb * j + sc) % P) % 2) - 1 if layer.use_sign else 1
            row += [sign * array[(start + z) % layer.array_size] for z in range(layer.block_size)]
        rows.append(row[: layer.output_dim])
    return np.array(rows, dtype=np.float32)


def _built(layer: ROBEEmbedding, array: np.ndarray) -> ROBEEmbedding:
    layer.build(None)
    layer.array.assign(array)
    return layer


@pytest.mark.parametrize("use_sign", [False, True])
def test_rows_match_the_oracle_with_wrap_around(use_sign):
    array = np.arange(1, 8, dtype=np.float32)  # 7 elements, distinct values
    layer = _built(ROBEEmbedding(20, 5, array_size=7, block_size=3, use_sign=use_sign), array)
    ids = list(range(20))
    np.testing.assert_array_equal(np.asarray(layer(np.array(ids))), _oracle_rows(layer, array, ids))


def test_hand_case_block_starting_at_the_end_wraps_to_the_front():
    array = np.array([10.0, 20.0, 30.0, 40.0, 50.0], dtype=np.float32)
    layer = _built(ROBEEmbedding(30, 3, array_size=5, block_size=3, use_sign=False), array)
    a, b, c = layer.offset_coefficients
    # Find an id whose only block starts at the last element: it must read 50, 10, 20.
    wrapping = [i for i in range(30) if ((a * i + c) % P) % 5 == 4]
    assert wrapping, "seed gives no id starting at the end; pick another seed"
    np.testing.assert_array_equal(np.asarray(layer(np.array(wrapping[:1])))[0], [50.0, 10.0, 20.0])


def test_oov_is_zero_and_parameters_are_the_array():
    layer = ROBEEmbedding(10, 6, array_size=13, block_size=4)
    out = np.asarray(layer(np.array([3, 10, -1])))
    assert np.all(out[1:] == 0) and np.any(out[0] != 0)
    assert sum(int(np.prod(w.shape)) for w in layer.weights) == 13


def test_gradient_reaches_the_array_elements_read():
    array = np.zeros(11, np.float32)
    layer = _built(ROBEEmbedding(5, 4, array_size=11, block_size=2, use_sign=False), array)

    grad = layer_gradients(layer, np.array([2]), keras.ops.sum)[layer.array.path]
    a, b, c = layer.offset_coefficients
    expected = np.zeros(11)
    for j in range(2):
        start = ((a * 2 + b * j + c) % P) % 11
        for z in range(2):
            expected[(start + z) % 11] += 1
    np.testing.assert_array_equal(grad, expected)


def test_save_reload_safe_mode_and_int8_refused(tmp_path):
    inputs = keras.Input((3,), dtype="int32")
    model = keras.Model(inputs, ROBEEmbedding(40, 8, array_size=50, seed=3)(inputs))
    ids = np.array([[0, 17, 39]])
    path = tmp_path / "robe.keras"
    model.save(path)
    reloaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(reloaded.predict(ids, verbose=0), model.predict(ids, verbose=0))
    with pytest.raises(NotImplementedError, match="cannot be quantized"):
        model.layers[-1].quantize("int8")


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="array_size"):
        ROBEEmbedding(10, 4, array_size=0)
