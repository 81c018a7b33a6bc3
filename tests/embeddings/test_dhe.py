"""DHEEmbedding against a numpy oracle of Deep Hash Embedding's encoding and MLP."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from memory_efficient_embeddings.embeddings import DHEEmbedding
from memory_efficient_embeddings.embeddings.dhe import dhe_hidden_dim, dhe_parameter_count
from memory_efficient_embeddings.modeling.specs import _resolve_layer
from tests.embeddings.backend_ops import layer_gradients

P = 2**31 - 1


def _numpy_encoding(layer: DHEEmbedding, ids) -> np.ndarray:
    # k hashes h_j(i) = ((a_j i + b_j) mod p) mod m, then uniform 2h/(m-1) - 1, or Box-Muller
    # on pairs of uniforms (h + 1)/m.
    a, b = layer.hash_coefficients
    m = layer.hash_range
    hashed = np.array(
        [[((int(aj) * i + int(bj)) % P) % m for aj, bj in zip(a, b, strict=True)] for i in ids],
        np.float64,
    )
    if layer.distribution == "uniform":
        return 2 * hashed / (m - 1) - 1
    uniform = (hashed + 1) / m
    encoded = []
    for row in uniform:
        values = []
        for u1, u2 in zip(row[0::2], row[1::2], strict=True):
            radius = np.sqrt(-2 * np.log(u1))
            values += [radius * np.cos(2 * np.pi * u2), radius * np.sin(2 * np.pi * u2)]
        encoded.append(values[: layer.num_hashes])
    return np.array(encoded)


def _numpy_mlp(layer: DHEEmbedding, encoded: np.ndarray) -> np.ndarray:
    def activation(x):
        if layer.activation == "relu":
            return np.maximum(x, 0)
        return x * np.tanh(np.log1p(np.exp(x)))  # mish: x tanh(softplus(x))

    x = encoded
    for n, dense in enumerate(layer.hidden_layers):
        kernel, bias = (w.numpy() for w in dense.weights)
        x = x @ kernel + bias
        if layer.batch_norm:  # inference: the moving statistics, Keras' epsilon 1e-3
            gamma, beta, mean, variance = (w.numpy() for w in layer.normalizations[n].weights)
            x = gamma * (x - mean) / np.sqrt(variance + 1e-3) + beta
        x = activation(x)
    kernel, bias = (w.numpy() for w in layer.output_layer.weights)
    return x @ kernel + bias


def _randomised(layer: DHEEmbedding) -> DHEEmbedding:
    layer.build(None)
    rng = np.random.default_rng(3)
    for weight in layer.weights:
        values = rng.normal(size=weight.shape)
        if "variance" in weight.path:
            values = np.abs(values) + 0.5
        weight.assign(values.astype(np.float32))
    return layer


@pytest.mark.parametrize(
    "options",
    [
        {"distribution": "uniform", "activation": "relu"},
        {"distribution": "gaussian", "activation": "mish"},
        {"distribution": "gaussian", "num_hashes": 5, "num_hidden_layers": 2},  # odd k
        {"distribution": "uniform", "batch_norm": True, "num_hidden_layers": 2},
    ],
)
def test_rows_match_the_oracle(options: dict) -> None:
    options = {"num_hashes": 6, "hidden_dim": 7, **options}
    layer = _randomised(DHEEmbedding(60, 4, seed=2, **options))
    ids = list(range(60))
    expected = _numpy_mlp(layer, _numpy_encoding(layer, ids))
    np.testing.assert_allclose(np.asarray(layer(np.array(ids))), expected, rtol=1e-4, atol=1e-4)


def test_hand_case_uniform_encoding_ends() -> None:
    # With m = 2, every hash is 0 or 1: the encoding is exactly -1 or +1.
    layer = DHEEmbedding(20, 3, num_hashes=4, hidden_dim=2, hash_range=2)
    values = np.asarray(layer.encode(np.arange(20)))
    assert set(np.unique(values).tolist()) <= {-1.0, 1.0}
    assert values.shape == (20, 4)
    wide = np.asarray(DHEEmbedding(500, 3, num_hashes=8, hidden_dim=2).encode(np.arange(500)))
    assert -1 <= wide.min() < -0.9 and 0.9 < wide.max() <= 1  # spread over [-1, 1]


def test_gaussian_encoding_is_roughly_standard_normal() -> None:
    layer = DHEEmbedding(4000, 3, num_hashes=16, hidden_dim=2, distribution="gaussian")
    values = np.asarray(layer.encode(np.arange(4000)))
    assert abs(values.mean()) < 0.03 and abs(values.std() - 1) < 0.03


def test_oov_is_zero_and_distinct_ids_get_distinct_rows() -> None:
    layer = DHEEmbedding(30, 5, num_hashes=8, hidden_dim=6)
    out = np.asarray(layer(np.array([0, 1, 29, 30, -1])))
    assert np.all(out[3:] == 0)
    assert not np.allclose(out[0], out[1]) and not np.allclose(out[1], out[2])


def test_parameter_count_by_hand() -> None:
    layer = DHEEmbedding(100, 8, num_hashes=5, hidden_dim=6, num_hidden_layers=2)
    layer.build(None)
    # 5 -> 6 (30 + 6), 6 -> 6 (36 + 6), 6 -> 8 (48 + 8): 134; no table at all.
    assert sum(int(np.prod(w.shape)) for w in layer.weights) == 134
    assert dhe_parameter_count(8, 5, 6, 2, False) == 134
    # Batch norm adds gamma, beta, moving mean and variance per hidden unit: 4 x 6 x 2.
    assert dhe_parameter_count(8, 5, 6, 2, True) == 134 + 48
    normed = DHEEmbedding(100, 8, num_hashes=5, hidden_dim=6, num_hidden_layers=2, batch_norm=True)
    normed.build(None)
    assert sum(int(np.prod(w.shape)) for w in normed.weights) == 182


def test_budget_picks_the_widest_hidden_layer_by_hand() -> None:
    # k = h (one hidden layer), d = 8: h*h + h + 8h + 8 <= 400 -> h = 15 (368); h = 16 is 408.
    assert dhe_hidden_dim(8, None, 1, False, 400) == 15
    layer = DHEEmbedding(100, 8, parameter_budget=400)
    assert (layer.hidden_dim, layer.num_hashes) == (15, 15)
    layer.build(None)
    assert sum(int(np.prod(w.shape)) for w in layer.weights) == 368
    # A fixed k = 32: 32h + h + 8h + 8 <= 400 -> h = 9 (377); h = 10 is 418.
    assert DHEEmbedding(100, 8, num_hashes=32, parameter_budget=400).hidden_dim == 9
    with pytest.raises(ValueError, match="below the smallest DHE MLP"):
        DHEEmbedding(100, 8, parameter_budget=10)
    layer = _resolve_layer({"type": "dhe", "budget_dim": 4}, 100, None, "w")
    assert layer == {"type": "dhe", "parameter_budget": 400}


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="`activation` must be one of"):
        DHEEmbedding(10, 4, hidden_dim=3, activation="tanh")
    with pytest.raises(ValueError, match="`distribution` must be one of"):
        DHEEmbedding(10, 4, hidden_dim=3, distribution="cauchy")
    with pytest.raises(ValueError, match="exactly one of `hidden_dim`, `parameter_budget`"):
        DHEEmbedding(10, 4)
    with pytest.raises(ValueError, match=r"`hash_range` must be in \[2, 2\*\*24\]"):
        DHEEmbedding(10, 4, hidden_dim=3, hash_range=2**25)


def test_gradients_reach_every_layer() -> None:
    layer = DHEEmbedding(20, 4, num_hashes=6, hidden_dim=5, num_hidden_layers=2)
    gradients = layer_gradients(layer, np.arange(20), lambda out: keras.ops.sum(out**2))
    assert len(gradients) == 6  # three Dense layers, kernel and bias each
    assert all(np.abs(g).sum() > 0 for g in gradients.values())


def test_config_is_complete_and_reload_in_safe_mode_is_identical(tmp_path) -> None:
    layer = DHEEmbedding(
        50, 8, parameter_budget=500, distribution="gaussian", batch_norm=True, seed=4, name="dhe"
    )
    config = layer.get_config()
    assert "parameter_budget" not in config  # the budget only chose the width
    assert DHEEmbedding.from_config(config).get_config() == config
    inputs = keras.Input((3,), dtype="int32")
    model = keras.Model(inputs, layer(inputs))
    ids = np.array([[0, 17, 50]])
    path = tmp_path / "dhe.keras"
    model.save(path)
    reloaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(reloaded.predict(ids, verbose=0), model.predict(ids, verbose=0))


def test_batch_norm_learns_its_statistics_in_fit() -> None:
    # `training` reaches the batch norm inside the layer's lookup: fit moves the moving mean.
    layer = DHEEmbedding(30, 2, num_hashes=4, hidden_dim=3, batch_norm=True)
    inputs = keras.Input((), dtype="int32")
    model = keras.Model(inputs, layer(inputs))
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.arange(30, dtype="int32"), np.zeros((30, 2)), epochs=1, verbose=0)
    assert np.any(layer.normalizations[0].moving_mean.numpy() != 0)
