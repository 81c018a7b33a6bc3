"""MLET (Ghaemmaghami et al., arXiv 2006.05623): train a factorised table wide, fold it to serve.

A :class:`ProjectedEmbedding` stores ``n × k`` weights and a ``k × d`` projection (plus a bias);
its rows are ``table[i] @ kernel + bias``, a linear map of a stored row. Training it with an inner
width ``k > d`` can train better than a plain ``n × d`` table (the factorisation changes the
optimisation, not what the model can express: the paper explains it by the lower effective rank
that linear layers trained in sequence tend to), and at export the product is computed once:
a plain ``n × d`` :class:`FullEmbedding` gives the same rows with ``n·d`` weights.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from memory_efficient_embeddings.embeddings.layers import FullEmbedding, ProjectedEmbedding
from memory_efficient_embeddings.embeddings.memory import serving_bytes


def folded_table(layer: ProjectedEmbedding) -> np.ndarray:
    """``table @ kernel (+ bias)``: every id's projected row, computed in float64."""
    if layer.table.quantization_mode or layer.projection.quantization_mode:
        raise ValueError(
            f"ProjectedEmbedding {layer.name!r} is already quantized: fold the float model, "
            "then quantize the folded one."
        )
    table = keras.ops.convert_to_numpy(layer.table.embeddings).astype(np.float64)
    kernel = keras.ops.convert_to_numpy(layer.projection.kernel).astype(np.float64)
    rows = table @ kernel
    if layer.use_bias:
        rows = rows + keras.ops.convert_to_numpy(layer.projection.bias).astype(np.float64)
    return rows


def _clone_folding(layer: keras.layers.Layer) -> keras.layers.Layer:
    if isinstance(layer, ProjectedEmbedding):
        return FullEmbedding(
            layer.num_ids,
            layer.output_dim,
            activity_regularizer=layer.activity_regularizer,
            name=layer.name,
            dtype=layer.dtype_policy,
        )
    return layer.__class__.from_config(layer.get_config())


def _copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Copy every layer's weights by name; a projected layer's go in folded."""
    for layer in source.layers:
        copy: Any = target.get_layer(layer.name)
        if isinstance(layer, keras.Model):
            _copy_weights(layer, copy)
        elif isinstance(layer, ProjectedEmbedding):
            copy.table.embeddings.assign(folded_table(layer).astype(copy.table.embeddings.dtype))
        else:
            copy.set_weights(layer.get_weights())


def fold_projected(model: keras.Model) -> keras.Model:
    """An equivalent model with every :class:`ProjectedEmbedding` folded into a plain table.

    Predictions are the same up to float32 rounding (the product is computed once in float64
    instead of per lookup in float32); other layers keep their weights. The result is for
    serving (or quantizing), not for further training.
    """
    folded = keras.models.clone_model(model, clone_function=_clone_folding, recursive=True)
    _copy_weights(model, folded)
    folded.name = model.name
    return folded


def holds_projection(model: keras.Model) -> bool:
    """Whether the model holds a projected table (MLET), which may serve folded."""
    layers = model._flatten_layers(include_self=False, recursive=True)
    return any(isinstance(layer, ProjectedEmbedding) for layer in layers)


def fold_if_smaller(model: keras.Model) -> keras.Model:
    """The model to serve: folded when that stores fewer bytes (inner width above the output's).

    A projected table narrower than its output (``k < d``) is smaller as it is, so a model is
    folded only when the folded form holds fewer embedding bytes; otherwise it is returned as is.
    """
    if not holds_projection(model):
        return model
    folded = fold_projected(model)
    return folded if serving_bytes(folded) < serving_bytes(model) else model
