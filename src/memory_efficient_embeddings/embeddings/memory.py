"""Bytes that embedding layers occupy: when serving (weights as stored) and when training.

Both count the variables of the :class:`CompactEmbedding` layers (embedding and bias tables), each
once, at the dtype it is stored in, so that a comparison at equal bytes is honest:

* serving bytes: every such variable, trainable or not: int8 tables with their float32 per-row
  scales, int4 tables packed two values per byte with their scales and zero points, index maps
  (CCE's int32 cluster assignments) and stored hash coefficients;
* training bytes: the float model's serving bytes plus the optimizer's slot variables that belong
  to those variables (Adam: two full copies; row-wise Adagrad: one value per row; LazyAdam's
  catch-up: one int64 step per row).

Dense layers outside the embeddings (none in these rating models) are not counted.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from memory_efficient_embeddings.embeddings.layers import CompactEmbedding

# Dtypes numpy does not know without ml_dtypes; int4 would be packed two per byte.
_ITEM_BYTES = {"bfloat16": 2.0, "float8_e4m3fn": 1.0, "float8_e5m2": 1.0, "int4": 0.5}


@contextlib.contextmanager
def shapes_only() -> Iterator[None]:
    """Layers built inside hold their weights' shapes and dtypes but no values.

    Counting bytes needs only shapes, and drawing the initial values is what a build costs: on
    JAX each new weight shape compiles its initializer (0.3-0.6 s each, measured), so a
    placement search over hundreds of sizes spent minutes there. Inside a Keras
    ``StatelessScope`` a weight's initialization is deferred; this scope never initializes
    them, and forgets them on exit so that no later scope initializes them either. The weights
    never get values: such a model is for sizing (and symbolic calls), not for running.
    """
    # Keras keeps deferred variables in this global list until a scope initializes them.
    from keras.src.backend.common import global_state  # noqa: PLC0415 - Keras' own registry

    registry = "uninitialized_variables"
    pending = list(global_state.get_global_attribute(registry, []) or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        global_state.set_global_attribute(registry, pending)


def variable_bytes(variable: Any) -> int:
    """Bytes of one variable at its stored dtype (an int4 variable packs two values per byte)."""
    dtype = keras.backend.standardize_dtype(variable.dtype)
    item_bytes = _ITEM_BYTES.get(dtype) or float(np.dtype(dtype).itemsize)
    return math.ceil(math.prod(variable.shape) * item_bytes)


def embedding_variables(model: keras.Model) -> list[Any]:
    """Each variable of the model's :class:`CompactEmbedding` layers, once (nested models too)."""
    unique: dict[int, Any] = {}
    # `_flatten_layers` is the walk Keras itself uses (e.g. in `Model.quantize`).
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, CompactEmbedding):
            unique.update((id(variable), variable) for variable in layer.weights)
    return list(unique.values())


def serving_bytes(model: keras.Model) -> int:
    """Bytes of every variable of the embedding layers, as stored (after any quantization)."""
    return sum(variable_bytes(variable) for variable in embedding_variables(model))


def _slot_lists(optimizer: keras.optimizers.Optimizer) -> list[list[Any]]:
    """The optimizer's per-variable slot lists (entry ``i`` belongs to trainable variable ``i``).

    Keras optimizers keep each kind of slot as one list parallel to the variables they train
    (Adam's ``_momentums`` and ``_velocities``, Adagrad's ``_accumulators``, LazyAdam's
    ``_last_updates``...), with ``None`` where a variable has no such slot. Finding them by that
    shape rather than by name covers every optimizer, including ours.
    """
    trained = optimizer._trainable_variables
    owned = {id(variable) for variable in optimizer.variables}
    slot_lists = []
    for name, value in vars(optimizer).items():
        if name == "_variables" or not isinstance(value, (list, tuple)):
            continue
        if len(value) != len(trained) or all(entry is None for entry in value):
            continue
        if all(entry is None or id(entry) in owned for entry in value):
            slot_lists.append(list(value))
    return slot_lists


def optimizer_slot_bytes(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> int:
    """Bytes of the optimizer slots that belong to the embedding layers' variables.

    An optimizer not yet built is built on the model's trainable variables first (the slots are
    what ``fit`` would create on its first step).
    """
    # A LossScaleOptimizer (mixed precision) keeps the slots in the optimizer it wraps.
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    embedding_ids = {id(variable) for variable in embedding_variables(model)}
    trained = optimizer._trainable_variables
    return sum(
        variable_bytes(slot)
        for slots in _slot_lists(optimizer)
        for variable, slot in zip(trained, slots, strict=True)
        if slot is not None and id(variable) in embedding_ids
    )


def training_bytes(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> int:
    """Serving bytes of the (float) model plus the optimizer's slots for its embedding variables."""
    return serving_bytes(model) + optimizer_slot_bytes(model, optimizer)
