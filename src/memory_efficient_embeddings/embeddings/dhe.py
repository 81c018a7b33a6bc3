"""Deep Hash Embedding (Kang et al., KDD 2021): hash the id k ways, then an MLP. No table at all."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from memory_efficient_embeddings.embeddings import hashing
from memory_efficient_embeddings.embeddings.layers import (
    PACKAGE,
    CompactEmbedding,
    _check_positive_int,
)

DHE_DISTRIBUTIONS = ("uniform", "gaussian")
DHE_ACTIVATIONS = ("relu", "mish")
# float32 holds every integer below 2**24 exactly, so the encoding is exact up to that range.
_MAX_HASH_RANGE = 2**24


def dhe_parameter_count(
    output_dim: int, num_hashes: int, hidden_dim: int, num_hidden_layers: int, batch_norm: bool
) -> int:
    """Weights of the MLP: hidden Dense layers with biases, batch norm (4 per unit), output."""
    hidden = num_hashes * hidden_dim + hidden_dim
    hidden += (num_hidden_layers - 1) * (hidden_dim * hidden_dim + hidden_dim)
    if batch_norm:  # gamma, beta, moving mean and moving variance
        hidden += 4 * hidden_dim * num_hidden_layers
    return hidden + hidden_dim * output_dim + output_dim


def dhe_hidden_dim(
    output_dim: int,
    num_hashes: int | None,
    num_hidden_layers: int,
    batch_norm: bool,
    parameter_budget: int,
) -> int:
    """The widest hidden layer whose MLP fits the budget (``num_hashes=None``: as wide as it)."""

    def count(width: int) -> int:
        return dhe_parameter_count(
            output_dim, num_hashes or width, width, num_hidden_layers, batch_norm
        )

    if count(1) > parameter_budget:
        raise ValueError(
            f"`parameter_budget`={parameter_budget} is below the smallest DHE MLP "
            f"({count(1)} weights with one hidden unit)."
        )
    width = 1
    while count(width + 1) <= parameter_budget:
        width += 1
    return width


@keras.saving.register_keras_serializable(package=PACKAGE)
class DHEEmbedding(CompactEmbedding):
    """``row(i) = MLP(encode(i))``: a dense hash encoding of the id fed through Dense layers.

    The encoding has ``num_hashes`` values ``h_j(i) = ((a_j·i + b_j) mod p) mod m`` (universal
    hashes, ``p = 2**31 - 1``, ``m = hash_range``) mapped to reals: ``"uniform"`` is ``2·h/(m-1)
    - 1`` in ``[-1, 1]``; ``"gaussian"`` turns pairs of uniforms ``u = (h + 1)/m`` in ``(0, 1]``
    into standard normals with the Box-Muller transform, as the paper does. The MLP has
    ``num_hidden_layers`` Dense layers of ``hidden_dim`` units (each optionally batch-normalised)
    with the activation, then a linear Dense layer to ``output_dim``. Every weight is in the MLP;
    the hash coefficients derive from the seed.

    Args:
        num_hashes: ``k``; None: as many as ``hidden_dim`` (thomasahle/cce's dhe.py).
        hidden_dim: units per hidden layer; or give ``parameter_budget`` for the widest that fits.
        num_hidden_layers: at least 1.
        activation: ``"relu"`` (which the reference found to train better) or ``"mish"`` (the
            paper's).
        distribution: ``"uniform"`` or ``"gaussian"``.
        batch_norm: batch normalisation after each hidden Dense layer (before the activation).
        hash_range: ``m`` (the paper's 10**6), at most ``2**24``.
        parameter_budget: most weights (batch norm's moving statistics included).
        seed: picks the hash coefficients.
    """

    budget_sizes = ("num_hashes", "hidden_dim", "num_hidden_layers")
    size_arguments = ("hidden_dim",)

    def __init__(
        self,
        num_ids: int,
        output_dim: int,
        num_hashes: int | None = None,
        hidden_dim: int | None = None,
        num_hidden_layers: int = 1,
        activation: str = "relu",
        distribution: str = "uniform",
        batch_norm: bool = False,
        hash_range: int = 1_000_000,
        parameter_budget: int | None = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_ids, output_dim, **kwargs)
        hashing.check_hashable(num_ids)
        if activation not in DHE_ACTIVATIONS:
            raise ValueError(f"`activation` must be one of {DHE_ACTIVATIONS}; got {activation!r}.")
        if distribution not in DHE_DISTRIBUTIONS:
            raise ValueError(
                f"`distribution` must be one of {DHE_DISTRIBUTIONS}; got {distribution!r}."
            )
        if (hidden_dim is None) == (parameter_budget is None):
            raise ValueError("DHEEmbedding needs exactly one of `hidden_dim`, `parameter_budget`.")
        self.num_hidden_layers = _check_positive_int("num_hidden_layers", num_hidden_layers)
        self.batch_norm = bool(batch_norm)
        if num_hashes is not None:
            num_hashes = _check_positive_int("num_hashes", num_hashes)
        if hidden_dim is None:
            hidden_dim = dhe_hidden_dim(
                self.output_dim,
                num_hashes,
                self.num_hidden_layers,
                self.batch_norm,
                _check_positive_int("parameter_budget", parameter_budget),
            )
        self.hidden_dim = _check_positive_int("hidden_dim", hidden_dim)
        self.num_hashes = num_hashes or self.hidden_dim
        self.hash_range = _check_positive_int("hash_range", hash_range)
        if not 2 <= self.hash_range <= _MAX_HASH_RANGE:
            raise ValueError(f"`hash_range` must be in [2, 2**24]; got {hash_range}.")
        self.activation = activation
        self.distribution = distribution
        self.seed = int(seed)
        # The Box-Muller transform turns two uniforms into two normals: draw an even count.
        num_uniforms = self.num_hashes + (self.num_hashes % 2 if distribution == "gaussian" else 0)
        rng = np.random.default_rng(self.seed)
        coefficients = hashing.draw_coefficients(rng, num_uniforms)
        self.hash_coefficients = np.stack(coefficients).astype("int64")
        self.hidden_layers = [
            keras.layers.Dense(self.hidden_dim, name=f"hidden_{n}", dtype=self.dtype_policy)
            for n in range(self.num_hidden_layers)
        ]
        self.normalizations = [
            keras.layers.BatchNormalization(name=f"batch_norm_{n}", dtype=self.dtype_policy)
            for n in range(self.num_hidden_layers if self.batch_norm else 0)
        ]
        self.output_layer = keras.layers.Dense(
            self.output_dim, name="output", dtype=self.dtype_policy
        )

    def build(self, input_shape: tuple | None = None) -> None:
        width = self.num_hashes
        for n, dense in enumerate(self.hidden_layers):
            dense.build((None, width))
            if self.batch_norm:
                self.normalizations[n].build((None, self.hidden_dim))
            width = self.hidden_dim
        self.output_layer.build((None, width))
        self.built = True

    def hashes(self, indices: Any) -> Any:
        """The integer hashes ``h_j(i)`` in ``[0, hash_range)``: shape ``S + (uniforms,)``."""
        a, b = self.hash_coefficients
        return hashing.universal_hashes(indices, a, b, self.hash_range)

    def encode(self, indices: Any) -> Any:
        """The dense encoding fed to the MLP: shape ``S + (num_hashes,)``."""
        hashed = ops.cast(self.hashes(indices), "float32")  # exact, as m <= 2**24
        if self.distribution == "uniform":
            encoded = 2.0 * hashed / (self.hash_range - 1) - 1.0
        else:
            uniform = (hashed + 1.0) / self.hash_range  # (0, 1]: the log below stays finite
            first, second = uniform[..., 0::2], uniform[..., 1::2]
            radius = ops.sqrt(-2.0 * ops.log(first))
            angle = 2.0 * math.pi * second
            pairs = ops.stack([radius * ops.cos(angle), radius * ops.sin(angle)], axis=-1)
            encoded = ops.reshape(pairs, (*ops.shape(first)[:-1], -1))[..., : self.num_hashes]
        return ops.cast(encoded, self.compute_dtype)

    def lookup(self, indices: Any) -> Any:
        activation = keras.activations.get(self.activation)
        # One row per id (batch norm was built for 2-D inputs), shaped back at the end.
        vectors = self.encode(ops.reshape(indices, (-1,)))
        for n, dense in enumerate(self.hidden_layers):
            vectors = dense(vectors)
            if self.batch_norm:
                vectors = self.normalizations[n](vectors)
            vectors = activation(vectors)
        return ops.reshape(self.output_layer(vectors), (*ops.shape(indices), self.output_dim))

    def get_config(self) -> dict[str, Any]:
        # The sizes the weights were built with; a budget only chose them.
        return {
            **super().get_config(),
            "num_hashes": self.num_hashes,
            "hidden_dim": self.hidden_dim,
            "num_hidden_layers": self.num_hidden_layers,
            "activation": self.activation,
            "distribution": self.distribution,
            "batch_norm": self.batch_norm,
            "hash_range": self.hash_range,
            "seed": self.seed,
        }
