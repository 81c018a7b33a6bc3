"""What the layer tests need from the backend, written once for TensorFlow and JAX.

Gradients come as each backend makes them: TensorFlow gives a gathered table a row-sparse
``tf.IndexedSlices``, JAX a dense array (the rows summed into zeros). :func:`row_gradient` builds
either from the same rows, so one optimizer test drives the path a real step takes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

BACKEND = keras.backend.backend()
SPARSE_GRADIENTS = BACKEND == "tensorflow"


def row_gradient(values: Any, indices: Sequence[int], shape: Sequence[int], dtype: str = "float32"):
    """The gradient of a table whose rows ``indices`` got ``values``, as this backend gives it."""
    values = np.asarray(values, dtype=np.float64)
    if SPARSE_GRADIENTS:
        import tensorflow as tf  # noqa: PLC0415

        return tf.IndexedSlices(
            tf.constant(values, dtype=dtype),
            tf.constant(list(indices), dtype="int64"),
            tf.constant(list(shape), dtype="int64"),
        )
    dense = np.zeros(tuple(shape), np.float64)
    np.add.at(dense, list(indices), values)  # duplicates summed, as JAX's gradient of take
    return keras.ops.convert_to_tensor(dense.astype(dtype))


def dense_gradient(
    values: Any, indices: Sequence[int], shape: Sequence[int], dtype: str = "float32"
):
    """The same rows as a dense tensor (duplicates summed): what dense Adam is given."""
    dense = np.zeros(tuple(shape), np.float64)
    np.add.at(dense, list(indices), np.asarray(values, dtype=np.float64))
    return keras.ops.convert_to_tensor(dense.astype(dtype))


def embedding_table(values: np.ndarray, name: str = "table") -> keras.Variable:
    """A ``keras.layers.Embedding`` table holding ``values`` (its path ends in ``embeddings``)."""
    layer = keras.layers.Embedding(*values.shape, name=name, dtype=str(values.dtype))
    layer.build()
    layer.embeddings.assign(values)
    return layer.embeddings


def layer_gradients(
    layer: keras.layers.Layer, inputs: Any, loss: Callable[[Any], Any]
) -> dict[str, np.ndarray]:
    """Dense numpy gradients of ``loss(layer(inputs))`` for each trainable variable, by path."""
    if not layer.built:
        layer(inputs)
    variables = layer.trainable_variables
    if BACKEND == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        with tf.GradientTape() as tape:
            value = loss(layer(inputs))
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(value, variables)]
    else:
        import jax  # noqa: PLC0415

        non_trainable = [v.value for v in layer.non_trainable_variables]

        def stateless_loss(trainable: list) -> Any:
            outputs, _ = layer.stateless_call(trainable, non_trainable, inputs)
            return loss(outputs)

        grads = jax.grad(stateless_loss)([v.value for v in variables])
    return {v.path: keras.ops.convert_to_numpy(g) for v, g in zip(variables, grads, strict=True)}


def densified(gradient: Any) -> Any:
    """A gradient from :func:`row_gradient` as a dense tensor (duplicates summed)."""
    if SPARSE_GRADIENTS:
        import tensorflow as tf  # noqa: PLC0415

        return tf.convert_to_tensor(gradient)
    return gradient
