"""Compact embedding layers: parameter counts, OOV, uniqueness, gradients, block masking."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from memory_efficient_embeddings.embeddings import (
    FullEmbedding,
    HashedEmbedding,
    IdLookup,
    MixedDimensionEmbedding,
    ProjectedEmbedding,
    QuotientRemainderEmbedding,
)
from tests.embeddings.backend_ops import layer_gradients


def built(layer, n=4):
    layer(np.zeros((n,), dtype="int32"))
    return layer


def every_layer(num_ids=30, dim=8):
    return [
        FullEmbedding(num_ids, dim),
        ProjectedEmbedding(num_ids, 3, dim, use_bias=True),
        HashedEmbedding(num_ids, 7, dim, seed=3),
        QuotientRemainderEmbedding(num_ids, dim),
        QuotientRemainderEmbedding(num_ids, dim, combiner="add"),
        QuotientRemainderEmbedding(num_ids, dim + 1, combiner="concat"),
        MixedDimensionEmbedding([5, 10, 15], [dim, 4, 2], dim),
    ]


def test_parameter_count_formulas():
    assert built(FullEmbedding(6040, 64)).count_params() == 6040 * 64
    assert built(ProjectedEmbedding(100, 12, 64)).count_params() == 100 * 12 + 12 * 64
    assert built(ProjectedEmbedding(100, 12, 64, use_bias=True)).count_params() == 1200 + 768 + 64
    assert built(HashedEmbedding(6040, 500, 64)).count_params() == 500 * 64
    # QR default: m = ceil(sqrt(6040)) = 78, ceil(6040 / 78) = 78 quotient rows.
    qr = built(QuotientRemainderEmbedding(6040, 64))
    assert (qr.num_buckets, qr.quotient_rows) == (78, 78)
    assert qr.count_params() == 9_984
    # The recipe: both tables with 6040 // 50 = 120 rows.
    recipe_qr = built(QuotientRemainderEmbedding(6040, 64, num_buckets=120, quotient_rows=120))
    assert recipe_qr.count_params() == 15_360
    concat = built(QuotientRemainderEmbedding(100, 7, num_buckets=10, combiner="concat"))
    assert concat.count_params() == 10 * 3 + 10 * 4
    # The recipe's MD: tables with one OOV row per block, Dense (with bias) for blocks 1 and 2.
    md = built(MixedDimensionEmbedding([400, 1300, 2006], [64, 32, 16], 64, extra_rows_per_block=1))
    assert md.count_params() == 401 * 64 + 1301 * 32 + 2007 * 16 + (32 * 64 + 64) + (16 * 64 + 64)
    assert md.count_params() == 102_608
    md0 = built(MixedDimensionEmbedding([400, 1300, 2006], [64, 32, 16], 64, projection_bias=False))
    assert md0.count_params() == 400 * 64 + 1300 * 32 + 2006 * 16 + 32 * 64 + 16 * 64


@pytest.mark.parametrize("num_ids,num_buckets", [(100, 10), (101, 10), (6040, 78), (7, 3), (5, 1)])
def test_quotient_remainder_pairs_unique_and_no_dead_rows(num_ids, num_buckets):
    layer = QuotientRemainderEmbedding(num_ids, 4, num_buckets=num_buckets)
    ids = np.arange(num_ids)
    quotients, remainders = ids // layer.num_buckets, ids % layer.num_buckets
    assert len(set(zip(quotients, remainders, strict=True))) == num_ids
    assert layer.quotient_rows == math.ceil(num_ids / num_buckets)
    assert set(quotients) == set(range(layer.quotient_rows))  # every quotient row is used
    assert remainders.max() < layer.num_buckets


@pytest.mark.parametrize("combiner", ["multiply", "add", "concat"])
def test_quotient_remainder_vectors_distinct(combiner):
    layer = QuotientRemainderEmbedding(101, 6, num_buckets=10, combiner=combiner)
    vectors = np.asarray(layer(np.arange(101)))
    assert len({tuple(np.round(v, 7)) for v in vectors}) == 101


def test_quotient_remainder_multiply_init_scale():
    # The remainder factor starts near 1, so products have a plain embedding's scale (~0.05),
    # not the ~1e-3 of two small uniform factors.
    layer = QuotientRemainderEmbedding(6040, 64)
    vectors = np.asarray(layer(np.arange(6040)))
    assert 0.015 < np.abs(vectors).mean() < 0.04
    assert np.abs(vectors).max() <= 0.05 * 1.6


def test_quotient_remainder_validation():
    with pytest.raises(ValueError, match="quotient_rows"):
        QuotientRemainderEmbedding(6040, 64, num_buckets=120, quotient_rows=50)
    with pytest.raises(ValueError, match="combiner"):
        QuotientRemainderEmbedding(10, 4, combiner="max")


def test_hashed_buckets_in_range_and_deterministic():
    layer = HashedEmbedding(10_000, 97, 4, seed=1)
    buckets = np.asarray(layer.buckets(np.arange(10_000)))
    assert buckets.min() >= 0 and buckets.max() < 97
    assert len(np.unique(buckets)) == 97
    again = np.asarray(HashedEmbedding(10_000, 97, 4, seed=1).buckets(np.arange(10_000)))
    np.testing.assert_array_equal(buckets, again)


@pytest.mark.parametrize("layer", every_layer(), ids=lambda layer: type(layer).__name__)
def test_out_of_range_indices_give_zero_vectors(layer):
    out = np.asarray(layer(np.array([[0, 30], [-1, 29], [1000, 5]])))
    assert out.shape == (3, 2, layer.output_dim)
    np.testing.assert_array_equal(out[0, 1], 0.0)
    np.testing.assert_array_equal(out[1, 0], 0.0)
    np.testing.assert_array_equal(out[2, 0], 0.0)
    assert np.abs(out[0, 0]).sum() > 0 and np.abs(out[1, 1]).sum() > 0


@pytest.mark.tensorflow_only
def test_id_lookup_maps_vocabulary_and_oov():
    import tensorflow as tf  # noqa: PLC0415 - strings in tensors

    lookup = IdLookup(["b", "a", "c"])
    assert lookup.oov_index == 3
    out = lookup(tf.constant(["a", "zzz", "c", "b"]))
    assert out.dtype == tf.int32
    np.testing.assert_array_equal(np.asarray(out), [1, 3, 2, 0])
    # The numpy mapping (other backends) agrees with StringLookup's.
    ids = np.array([["a", "zzz"], ["c", "b"]], dtype=object)
    np.testing.assert_array_equal(lookup.indices_of(ids), np.asarray(lookup(tf.constant(ids))))
    with pytest.raises(ValueError):
        IdLookup(["a", "a"])


@pytest.mark.both_backends
def test_id_lookup_numpy_mapping_by_hand():
    lookup = IdLookup(["b", "a", "c"])
    indices = lookup.indices_of(np.array([["a", "zzz"], [b"c", "b"]], dtype=object))
    assert indices.dtype == np.int32
    np.testing.assert_array_equal(indices, [[1, 3], [2, 0]])  # unknown -> 3 (the OOV index)
    np.testing.assert_array_equal(lookup.indices_of(["c"]), [2])


@pytest.mark.both_backends
@pytest.mark.parametrize("layer", every_layer(), ids=lambda layer: type(layer).__name__)
def test_gradients_reach_every_weight(layer):
    indices = np.arange(30)  # touches every MD block and every table row
    layer(indices)
    grads = layer_gradients(layer, indices, lambda out: ops.sum(ops.square(out - 1.0)))
    assert len(grads) == len(layer.trainable_variables) > 0
    for path, grad in grads.items():
        assert np.abs(grad).sum() > 0, path


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("layer", every_layer(), ids=lambda layer: type(layer).__name__)
def test_table_gradients_are_row_sparse_on_tensorflow(layer):
    import tensorflow as tf  # noqa: PLC0415

    indices = tf.constant(np.arange(30))
    layer(indices)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(indices) - 1.0))
    variables = layer.trainable_variables
    for variable, grad in zip(variables, tape.gradient(loss, variables), strict=True):
        if variable.path.endswith("embeddings"):
            # Gathers from the table: sparse updates, not dense vocabulary-sized gradients.
            assert isinstance(grad, tf.IndexedSlices), variable.path


@pytest.mark.parametrize("layer", every_layer(), ids=lambda layer: type(layer).__name__)
def test_config_round_trip(layer):
    layer(np.arange(4))
    clone = type(layer).from_config(layer.get_config())
    clone(np.arange(4))
    clone.set_weights(layer.get_weights())
    indices = np.array([0, 7, 29, 30])
    np.testing.assert_allclose(np.asarray(clone(indices)), np.asarray(layer(indices)))


def test_mixed_dimension_matches_per_block_reference():
    layer = MixedDimensionEmbedding([3, 5, 7], [6, 4, 2], 6)
    indices = np.array([14, 0, 3, 8, 2, 7, 3, 12])
    out = np.asarray(layer(indices))
    for row, i in zip(out, indices, strict=True):
        block = int(np.searchsorted([3, 8], i, side="right"))
        local = i - [0, 3, 8][block]
        vector = layer.tables[block].embeddings.numpy()[local]
        projection = layer.projections[block]
        if projection is not None:
            vector = vector @ projection.kernel.numpy() + projection.bias.numpy()
        np.testing.assert_allclose(row, vector, rtol=1e-5, atol=1e-6)


@pytest.mark.tensorflow_only
def test_mixed_dimension_eager_equals_tf_function():
    import tensorflow as tf  # noqa: PLC0415

    layer = MixedDimensionEmbedding([3, 5, 7], [6, 4, 2], 6)
    indices = tf.constant([[14, 0], [3, 15]])
    eager = np.asarray(layer(indices))
    traced = tf.function(layer, reduce_retracing=True)
    np.testing.assert_allclose(np.asarray(traced(indices)), eager)
    np.testing.assert_allclose(np.asarray(traced(tf.constant([[1, 2, 9]]))).shape, (1, 3, 6))


@pytest.mark.both_backends
def test_mixed_dimension_trains_only_the_blocks_of_the_batch_ids():
    layer = MixedDimensionEmbedding([3, 5, 7], [6, 4, 2], 6)
    indices = np.array([4, 6, 7, 3])  # all in the middle block
    gradients = layer_gradients(layer, indices, lambda out: ops.sum(out**2))
    for name, dense in gradients.items():
        if "block_1" in name:
            assert np.abs(dense).sum() > 0, name
        else:  # the other blocks looked up clipped rows, masked out: no gradient reaches them
            assert np.abs(dense).sum() == 0, name
    table_gradient = gradients[layer.tables[1].embeddings.path]
    assert np.flatnonzero(np.abs(table_gradient).sum(axis=1)).tolist() == [0, 1, 3, 4]


def _traced_op_count(layer):
    import tensorflow as tf  # noqa: PLC0415

    fn = tf.function(layer).get_concrete_function(tf.TensorSpec([None], tf.int32))
    return len(fn.graph.get_operations())


@pytest.mark.tensorflow_only
def test_mixed_dimension_graph_does_not_grow_with_vocabulary():
    import tensorflow as tf  # noqa: PLC0415

    small = MixedDimensionEmbedding([10, 90, 900], [8, 4, 2], 8)
    large = MixedDimensionEmbedding([100, 900, 99_000], [8, 4, 2], 8)
    assert _traced_op_count(small) == _traced_op_count(large)
    # Every gather in the graph is batch-sized: no op is shaped by the vocabulary.
    fn = tf.function(large).get_concrete_function(tf.TensorSpec([None], tf.int32))
    for op in fn.graph.get_operations():
        if op.type in ("GatherV2", "ResourceGather"):
            assert op.outputs[0].shape[0] is None, op.name


def test_layers_reject_bad_arguments():
    with pytest.raises(ValueError):
        FullEmbedding(0, 4)
    with pytest.raises(ValueError):
        MixedDimensionEmbedding([3, 4], [2], 4)
    with pytest.raises(ValueError):
        MixedDimensionEmbedding([3, 4], [2, 2], 4, num_ids=8)
    assert keras.saving.get_registered_name(MixedDimensionEmbedding) == (
        "memory_efficient_embeddings>MixedDimensionEmbedding"
    )


@pytest.mark.parametrize(
    "layer",
    [
        FullEmbedding(1000, 8),
        QuotientRemainderEmbedding(1000, 8),
        MixedDimensionEmbedding([100, 900], [8, 4], 8),
    ],
    ids=["full", "quotient_remainder", "mixed_dimension"],
)
@pytest.mark.tensorflow_only
def test_lookups_gather_rows_from_the_variable_without_reading_the_whole_table(layer) -> None:
    import tensorflow as tf  # noqa: PLC0415

    # Reading a table into a tensor before gathering costs O(table) per step (and makes the
    # optimizer's in-place row update copy the table); a resource gather reads only the rows.
    layer.build()
    traced = tf.function(layer).get_concrete_function(tf.TensorSpec([None], tf.int32))
    op_types = [op.type for op in traced.graph.get_operations()]
    assert "ResourceGather" in op_types
    assert "ReadVariableOp" not in [
        op.type
        for op in traced.graph.get_operations()
        if any(consumer.type == "GatherV2" for out in op.outputs for consumer in out.consumers())
    ]
