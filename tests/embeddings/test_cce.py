"""CCEEmbedding against a numpy oracle of the reference's per-chunk cluster + hashed sum."""

import keras
import numpy as np
import pytest

from memory_efficient_embeddings.embeddings import CCEEmbedding, CCEReclusterCallback
from memory_efficient_embeddings.embeddings.cce import kmeans
from memory_efficient_embeddings.modeling.specs import _resolve_layer
from memory_efficient_embeddings.modeling.training import _callbacks
from tests.embeddings.backend_ops import layer_gradients

P = 2**31 - 1


def _oracle(clusters, residual, assignments, hash_ab, ids):
    # Chunk c of id i: clusters[c, assign[i, c]] + residual[c, h_c(i)], chunks side by side.
    rows = []
    for i in ids:
        parts = []
        for c in range(clusters.shape[0]):
            h = ((int(hash_ab[c, 0]) * i + int(hash_ab[c, 1])) % P) % clusters.shape[1]
            parts.append(clusters[c, assignments[i, c]] + residual[c, h])
        rows.append(np.concatenate(parts))
    return np.array(rows)


def _layer(num_ids=12, output_dim=6, num_chunks=3, num_clusters=4):
    layer = CCEEmbedding(num_ids, output_dim, num_chunks=num_chunks, num_clusters=num_clusters)
    layer.build(None)
    return layer


def test_rows_match_the_oracle():
    layer = _layer()
    rng = np.random.default_rng(1)
    clusters = rng.normal(size=(3, 4, 2)).astype(np.float32)
    residual = rng.normal(size=(3, 4, 2)).astype(np.float32)
    assignments = rng.integers(0, 4, size=(12, 3)).astype(np.int32)
    layer.cluster_tables.assign(clusters)
    layer.residual_tables.assign(residual)
    layer.assignments.assign(assignments)
    hash_ab = np.asarray(layer.residual_hash)
    expected = _oracle(clusters, residual, assignments, hash_ab, range(12))
    np.testing.assert_allclose(np.asarray(layer(np.arange(12))), expected, rtol=1e-6)


def test_hand_case_one_chunk():
    layer = _layer(num_ids=3, output_dim=2, num_chunks=1, num_clusters=2)
    layer.cluster_tables.assign(np.array([[[1.0, 2.0], [3.0, 4.0]]], np.float32))
    layer.residual_tables.assign(np.zeros((1, 2, 2), np.float32))
    layer.assignments.assign(np.array([[1], [0], [1]], np.int32))
    np.testing.assert_array_equal(
        np.asarray(layer(np.array([0, 1, 2, 3]))), [[3, 4], [1, 2], [3, 4], [0, 0]]
    )


def test_parameter_count_budget_and_assignment_bytes():
    layer = _layer()
    trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    assert trainable == 2 * 3 * 4 * 2  # two tables of 4 rows x 2 columns per chunk
    assert layer.assignments.dtype == "int32" and not layer.assignments.trainable
    assert tuple(layer.assignments.shape) == (12, 3)
    # budget 100 for width 6: 2 * 6 * rows <= 100 -> 8 rows.
    assert CCEEmbedding(12, 6, num_chunks=3, parameter_budget=100).num_clusters == 8
    with pytest.raises(ValueError, match="multiple of `num_chunks`"):
        CCEEmbedding(12, 7, num_chunks=3, num_clusters=2)


def test_kmeans_separates_two_obvious_groups():
    points = np.array([[0.0], [0.1], [10.0], [10.1]], np.float32)
    centroids, assignments = kmeans(points, 2, iterations=5, seed=0)
    assert assignments[0] == assignments[1] != assignments[2] == assignments[3]
    np.testing.assert_allclose(sorted(centroids[:, 0]), [0.05, 10.05], rtol=1e-5)


def test_recluster_makes_rows_centroids_and_keeps_well_separated_rows():
    layer = _layer(num_ids=4, output_dim=2, num_chunks=1, num_clusters=2)
    layer.cluster_tables.assign(np.array([[[0.0, 0.0], [5.0, 5.0]]], np.float32))
    layer.residual_tables.assign(np.array([[[0.0, 0.0], [0.0, 0.0]]], np.float32))
    layer.assignments.assign(np.array([[0], [1], [0], [1]], np.int32))
    layer.recluster(iterations=5)
    rows = np.asarray(layer(np.arange(4)))
    np.testing.assert_allclose(rows, [[0, 0], [5, 5], [0, 0], [5, 5]], atol=1e-6)
    assert np.all(np.asarray(layer.residual_tables) == 0)


def test_callback_reclusters_at_the_chosen_epochs(monkeypatch):
    calls = []
    monkeypatch.setattr(
        CCEEmbedding, "recluster", lambda self, iterations: calls.append(iterations)
    )
    inputs = keras.Input((1,), dtype="int32")
    outputs = keras.ops.sum(CCEEmbedding(8, 4, num_chunks=2, num_clusters=2)(inputs), axis=(1, 2))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.arange(8).reshape(8, 1), np.zeros(8)
    model.fit(
        x, y, epochs=3, verbose=0, callbacks=[CCEReclusterCallback(epochs=[1, 3], iterations=7)]
    )
    assert calls == [7, 7]


def test_oov_gradient_reload_and_int8_refused(tmp_path):

    layer = _layer()
    out = np.asarray(layer(np.array([5, 12])))
    assert np.all(out[1] == 0) and np.any(out[0] != 0)
    grads = layer_gradients(layer, np.array([5]), keras.ops.sum)
    assert len(grads) == 2 and all(np.any(g != 0) for g in grads.values())
    inputs = keras.Input((2,), dtype="int32")
    model = keras.Model(inputs, CCEEmbedding(20, 8, num_chunks=2, num_clusters=3)(inputs))
    model.layers[-1].recluster(iterations=2)  # the reloaded model must keep the new assignments
    model.save(tmp_path / "cce.keras")
    reloaded = keras.models.load_model(tmp_path / "cce.keras", safe_mode=True)
    ids = np.array([[1, 19]])
    np.testing.assert_array_equal(reloaded.predict(ids, verbose=0), model.predict(ids, verbose=0))
    with pytest.raises(NotImplementedError, match="cannot be quantized"):
        layer.quantize("int8")


def test_training_adds_the_recluster_callback_only_when_epochs_are_given():

    callbacks = _callbacks({"cce_recluster_epochs": [2, 4]})
    assert [c.epochs for c in callbacks if isinstance(c, CCEReclusterCallback)] == [{2, 4}]
    assert not any(isinstance(c, CCEReclusterCallback) for c in _callbacks({}))


def test_budget_dim_resolves_to_each_layer_size():

    # 100 ids at budget dim 8: 800 weights at most.
    assert _resolve_layer({"type": "robe", "budget_dim": 8}, 100, None, "w")["array_size"] == 800
    for kind in ("cce", "tt_rec"):
        layer = _resolve_layer({"type": kind, "budget_dim": 8}, 100, None, "w")
        assert layer["parameter_budget"] == 800 and "budget_dim" not in layer
    with pytest.raises(ValueError, match="`budget_dim` does not apply to 'hashed'"):
        _resolve_layer({"type": "hashed", "budget_dim": 8}, 100, None, "w")


@pytest.mark.both_backends
def test_a_recluster_inside_fit_reaches_the_training_state():
    # JAX trains on a copy of the variables' values: the callback's new tables must reach it.
    keras.utils.set_random_seed(0)
    layer = CCEEmbedding(8, 4, num_chunks=2, num_clusters=2)
    inputs = keras.Input((1,), dtype="int32")
    model = keras.Model(inputs, keras.ops.sum(layer(inputs), axis=(1, 2)))
    # SGD at rate 0 leaves the weights alone: only the recluster after epoch 1 changes them.
    jit = keras.backend.backend() == "jax"
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse", jit_compile=jit)
    assert np.any(np.asarray(layer.residual_tables) != 0)
    x, y = np.arange(8).reshape(8, 1), np.zeros(8)
    model.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[CCEReclusterCallback([1], 3)])
    # Epoch 2 trained on the reclustered tables (the recluster zeroes the residual tables), and
    # did not write the pre-recluster values back at its end.
    np.testing.assert_array_equal(np.asarray(layer.residual_tables), 0)
