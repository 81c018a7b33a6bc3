"""Clustered Compositional Embeddings (Tsang & Ahle, NeurIPS 2023), after thomasahle/cce."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from memory_efficient_embeddings.embeddings import hashing
from memory_efficient_embeddings.embeddings.layers import (
    PACKAGE,
    CompactEmbedding,
    Unquantizable,
    _check_positive_int,
)


def kmeans(points: np.ndarray, num_clusters: int, iterations: int, seed: int) -> tuple:
    """Lloyd's k-means: ``(centroids, assignments)``; empty clusters keep their old centroid."""
    rng = np.random.default_rng(seed)
    k = min(num_clusters, len(points))
    centroids = points[rng.choice(len(points), size=k, replace=False)].copy()
    for _ in range(iterations):
        distances = ((points[:, None, :] - centroids[None, :, :]) ** 2).sum(-1)
        assignments = distances.argmin(1)
        for c in range(k):
            members = points[assignments == c]
            if len(members):
                centroids[c] = members.mean(0)
    distances = ((points[:, None, :] - centroids[None, :, :]) ** 2).sum(-1)
    padded = np.zeros((num_clusters, points.shape[1]), points.dtype)
    padded[:k] = centroids
    return padded, distances.argmin(1).astype("int32")


@keras.saving.register_keras_serializable(package=PACKAGE)
class CCEEmbedding(Unquantizable, CompactEmbedding):
    """Per column chunk ``c``: ``row_c(i) = T_c[assign_c[i]] + R_c[h_c(i)]``; chunks concatenated.

    ``assign_c`` is a stored int32 map (non-trainable; hashed at first, then k-means clusters after
    :meth:`recluster`); ``h_c(i) = ((a_c·i + b_c) mod p) mod num_clusters`` is a universal hash
    whose coefficients are non-trainable weights, redrawn at every recluster.

    Args:
        num_chunks: column chunks; ``output_dim`` must divide evenly.
        num_clusters: rows of every chunk's cluster table and residual table; or give
            ``parameter_budget`` (weights ``2·num_clusters·output_dim``) and the most that fit.
        seed: initial hashes.
    """

    budget_sizes = ("num_clusters",)
    size_arguments = ("num_clusters",)
    quantize_refusal = "its tables are shared by clusters and rewritten by recluster()."

    def __init__(
        self,
        num_ids: int,
        output_dim: int,
        num_chunks: int = 4,
        num_clusters: int | None = None,
        parameter_budget: int | None = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_ids, output_dim, **kwargs)
        hashing.check_hashable(num_ids)
        self.num_chunks = _check_positive_int("num_chunks", num_chunks)
        if self.output_dim % self.num_chunks:
            raise ValueError(
                f"`output_dim`={self.output_dim} must be a multiple of `num_chunks`={num_chunks}."
            )
        if (num_clusters is None) == (parameter_budget is None):
            raise ValueError(
                "CCEEmbedding needs exactly one of `num_clusters`, `parameter_budget`."
            )
        if num_clusters is None:
            budget = _check_positive_int("parameter_budget", parameter_budget)
            num_clusters = budget // (2 * self.output_dim)
            if num_clusters < 1:
                raise ValueError(
                    f"`parameter_budget`={budget} is below one cluster row per chunk "
                    f"({2 * self.output_dim} weights)."
                )
        self.num_clusters = _check_positive_int("num_clusters", num_clusters)
        self.chunk_dim = self.output_dim // self.num_chunks
        self.seed = int(seed)
        self._reclusters = 0

    def _hash_coefficients(self, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return np.stack(hashing.draw_coefficients(rng, self.num_chunks), axis=1).astype("int64")

    def _hashed_ids(self, coefficients: np.ndarray) -> np.ndarray:
        ids = np.arange(self.num_ids, dtype="int64")[:, None]
        a, b = coefficients[:, 0], coefficients[:, 1]
        return hashing.universal_hash(ids, a, b, self.num_clusters)

    def build(self, input_shape: tuple | None = None) -> None:
        shape = (self.num_chunks, self.num_clusters, self.chunk_dim)
        self.cluster_tables = self.add_weight(shape=shape, initializer="uniform", name="clusters")
        self.residual_tables = self.add_weight(shape=shape, initializer="uniform", name="residual")
        initial = self._hashed_ids(self._hash_coefficients(self.seed)).astype("int32")
        self.assignments = self.add_weight(
            shape=(self.num_ids, self.num_chunks),
            initializer=keras.initializers.Constant(initial),
            dtype="int32",
            trainable=False,
            name="assignments",
        )
        self.residual_hash = self.add_weight(
            shape=(self.num_chunks, 2),
            initializer=keras.initializers.Constant(self._hash_coefficients(self.seed + 1)),
            dtype="int64",
            trainable=False,
            name="residual_hash",
        )
        self.built = True

    def lookup(self, indices: Any) -> Any:
        a, b = self.residual_hash[:, 0], self.residual_hash[:, 1]
        residual_rows = hashing.universal_hashes(indices, a, b, self.num_clusters)  # S + (chunks,)
        cluster_rows = ops.take(self.assignments, indices, axis=0)  # S + (chunks,)
        chunk = ops.arange(self.num_chunks, dtype="int64")
        flat_clusters = ops.reshape(self.cluster_tables, (-1, self.chunk_dim))
        flat_residual = ops.reshape(self.residual_tables, (-1, self.chunk_dim))
        vectors = ops.take(
            ops.cast(flat_clusters, self.compute_dtype),
            chunk * self.num_clusters + ops.cast(cluster_rows, "int64"),
            axis=0,
        ) + ops.take(
            ops.cast(flat_residual, self.compute_dtype),
            chunk * self.num_clusters + residual_rows,
            axis=0,
        )  # S + (chunks, chunk_dim)
        return ops.reshape(vectors, (*ops.shape(indices), self.output_dim))

    def recluster(self, iterations: int = 10) -> None:
        """k-means per chunk on the current full rows: clusters := centroids, ids := nearest.

        As in the reference, the residual tables are reset to zero and rehashed, so right after a
        recluster every row is its chunks' centroids.
        """
        rows = keras.ops.convert_to_numpy(self.lookup(ops.arange(self.num_ids, dtype="int32")))
        chunks = rows.reshape(self.num_ids, self.num_chunks, self.chunk_dim)
        self._reclusters += 1
        centroids, assignments = [], []
        for c in range(self.num_chunks):
            centres, assigned = kmeans(chunks[:, c], self.num_clusters, iterations, self.seed + c)
            centroids.append(centres)
            assignments.append(assigned)
        self.cluster_tables.assign(np.stack(centroids).astype("float32"))
        self.assignments.assign(np.stack(assignments, axis=1))
        self.residual_tables.assign(np.zeros(self.residual_tables.shape, "float32"))
        self.residual_hash.assign(self._hash_coefficients(self.seed + 1 + 1000 * self._reclusters))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_chunks": self.num_chunks,
            "num_clusters": self.num_clusters,
            "seed": self.seed,
        }


class CCEReclusterCallback(keras.callbacks.Callback):
    """Calls :meth:`CCEEmbedding.recluster` on every CCE layer at the end of the given epochs.

    Args:
        epochs: 1-based epoch numbers, e.g. ``[1, 2]``.
    """

    def __init__(self, epochs: Sequence[int] = (1, 2), iterations: int = 10) -> None:
        super().__init__()
        self.epochs = {int(e) for e in epochs}
        self.iterations = int(iterations)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch + 1 not in self.epochs:
            return
        for layer in self.model._flatten_layers(include_self=False, recursive=True):
            if isinstance(layer, CCEEmbedding):
                layer.recluster(self.iterations)
