"""TTEmbedding against a numpy tensor-train contraction and hand-counted sizes."""

import keras
import numpy as np
import pytest

from memory_efficient_embeddings.embeddings import TTEmbedding
from memory_efficient_embeddings.embeddings.tt_rec import factor_rows, factor_width
from tests.embeddings.backend_ops import layer_gradients


def _oracle_row(cores, row_factors, i):
    # Full row = G1[i1] @ G2[i2] @ G3[i3] over the rank axes, laid out as (d1, d2, d3).
    _, n2, n3 = row_factors
    i1, i2, i3 = i // (n2 * n3), (i // n3) % n2, i % n3
    g1, g2, g3 = cores[0][i1][0], cores[1][i2], cores[2][i3][..., 0]  # (d1,r) (r,d2,r) (r,d3)
    d1, d2, d3 = g1.shape[0], g2.shape[1], g3.shape[1]
    out = np.zeros((d1, d2, d3))
    for a in range(d1):
        for c in range(d2):
            for e in range(d3):
                out[a, c, e] = g1[a] @ g2[:, c, :] @ g3[:, e]
    return out.reshape(-1)


def test_factors_by_hand():
    assert factor_rows(27) == (3, 3, 3)
    assert factor_rows(10) == (3, 2, 2)  # 12 >= 10
    assert factor_width(64) == (4, 4, 4)
    assert factor_width(12) == (2, 2, 3)


def test_rows_match_the_oracle():
    layer = TTEmbedding(10, 12, tt_rank=2)
    layer.build(None)
    rng = np.random.default_rng(0)
    cores = [
        rng.normal(size=w.shape).astype(np.float32)
        for w in (layer.core_1, layer.core_2, layer.core_3)
    ]
    for variable, value in zip((layer.core_1, layer.core_2, layer.core_3), cores, strict=True):
        variable.assign(value)
    got = np.asarray(layer(np.arange(10)))
    expected = np.stack([_oracle_row(cores, layer.row_factors, i) for i in range(10)])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_parameter_count_and_budget_by_hand():
    # 10 ids -> (3, 2, 2); width 12 -> (2, 2, 3); rank 2: 3*2*2 + 2*2*2*2 + 2*2*3 = 12 + 16 + 12.
    layer = TTEmbedding(10, 12, tt_rank=2)
    layer.build(None)
    assert sum(int(np.prod(w.shape)) for w in layer.weights) == 40
    # rank 3 needs 3*2*3 + 2*3*2*3 + 2*3*3 = 18 + 36 + 18 = 72 weights: a budget of 71 gives rank 2.
    assert TTEmbedding(10, 12, parameter_budget=71).tt_rank == 2
    assert TTEmbedding(10, 12, parameter_budget=72).tt_rank == 3
    with pytest.raises(ValueError, match="below the rank-1"):
        TTEmbedding(10, 12, parameter_budget=5)


def test_initial_rows_have_the_uniform_table_variance():
    # One layer's row variance is a product of three cores' and spreads by ±35% between draws:
    # average 8 seeded layers so a wrong core scale (×2 or ×0.5 in variance) cannot pass.
    keras.utils.set_random_seed(0)
    variances = [
        np.asarray(TTEmbedding(1000, 64, tt_rank=8)(np.arange(1000))).var() for _ in range(8)
    ]
    assert np.mean(variances) == pytest.approx(0.05**2 / 3, rel=0.2)


def test_oov_zero_gradient_flow_and_reload(tmp_path):

    layer = TTEmbedding(30, 8, tt_rank=3)
    out = np.asarray(layer(np.array([4, 30])))
    assert np.all(out[1] == 0) and np.any(out[0] != 0)
    grads = layer_gradients(layer, np.array([4]), keras.ops.sum)
    assert len(grads) == len(layer.trainable_variables)
    assert all(np.any(g != 0) for g in grads.values())
    inputs = keras.Input((2,), dtype="int32")
    model = keras.Model(inputs, TTEmbedding(30, 8, parameter_budget=200)(inputs))
    model.save(tmp_path / "tt.keras")
    reloaded = keras.models.load_model(tmp_path / "tt.keras", safe_mode=True)
    ids = np.array([[1, 29]])
    np.testing.assert_array_equal(reloaded.predict(ids, verbose=0), model.predict(ids, verbose=0))
    with pytest.raises(NotImplementedError, match="cannot be quantized"):
        layer.quantize("int8")
