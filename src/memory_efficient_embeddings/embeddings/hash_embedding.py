"""Hash embeddings (Svenstrup, Hansen & Winther, NeurIPS 2017): k hashed vectors, learned weights."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from memory_efficient_embeddings.embeddings import hashing
from memory_efficient_embeddings.embeddings.layers import (
    PACKAGE,
    CompactEmbedding,
    _check_positive_int,
    gather_rows,
)


def hash_embedding_sizes(
    num_ids: int, output_dim: int, num_hashes: int, parameter_budget: int
) -> tuple[int, int]:
    """``(num_buckets, importance_rows)`` for a budget: half to the weights, the rest to the pool.

    The importance table gets ``min(num_ids, budget // (2k))`` rows (as thomasahle/cce's hemb.py
    halves the budget, but never more rows than ids: past that, every id already has its own
    weights) and the pool of ``output_dim``-wide vectors takes what is left.
    """
    importance_rows = max(1, min(num_ids, parameter_budget // (2 * num_hashes)))
    num_buckets = (parameter_budget - importance_rows * num_hashes) // output_dim
    if num_buckets < 1:
        raise ValueError(
            f"`parameter_budget`={parameter_budget} leaves no room for one {output_dim}-wide pool "
            f"vector beside {importance_rows} x {num_hashes} importance weights."
        )
    return num_buckets, importance_rows


@keras.saving.register_keras_serializable(package=PACKAGE)
class HashEmbedding(CompactEmbedding):
    """``row(i) = sum_j p_i[j] · pool[h_j(i)]`` for ``j < num_hashes`` (the paper's ``k``).

    ``pool`` holds ``num_buckets`` (the paper's ``B``) shared component vectors and ``h_j(i) =
    ((a_j·i + b_j) mod p) mod B`` are ``k`` universal hashes (``p = 2**31 - 1``). The importance
    weights ``p_i`` are row ``D(i)`` of a trainable ``importance_rows × k`` table (the paper's
    ``K``), ``D(i) = ((c·i + e) mod p) mod K`` – or ``D(i) = i`` when ``K >= num_ids``, where
    every id has weights of its own. The paper's optional concatenation of ``p_i`` to the
    vector is not used, so the row is ``output_dim`` wide.

    Both tables are ``keras.layers.Embedding`` sublayers: gathers with row-sparse gradients, and
    ``model.quantize`` reaches them.

    Args:
        num_buckets: ``B``; with ``importance_rows``, or give ``parameter_budget``.
        importance_rows: ``K``.
        num_hashes: ``k`` (the paper typically uses 2).
        parameter_budget: most weights; sizes from :func:`hash_embedding_sizes`.
        seed: picks the hash coefficients.
        embeddings_initializer: the pool's (default ``"uniform"``, ±0.05 like a plain table).
        importance_initializer: default uniform in ±1, as the reference's hemb.py.
    """

    budget_sizes = ("num_buckets", "importance_rows", "num_hashes")
    size_arguments = ("num_buckets", "importance_rows")

    def __init__(
        self,
        num_ids: int,
        output_dim: int,
        num_buckets: int | None = None,
        importance_rows: int | None = None,
        num_hashes: int = 2,
        parameter_budget: int | None = None,
        seed: int = 0,
        *,
        embeddings_initializer: Any = "uniform",
        importance_initializer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_ids, output_dim, **kwargs)
        hashing.check_hashable(num_ids)
        self.num_hashes = _check_positive_int("num_hashes", num_hashes)
        sized = num_buckets is not None and importance_rows is not None
        if sized == (parameter_budget is not None):
            raise ValueError(
                "HashEmbedding needs `num_buckets` and `importance_rows`, or `parameter_budget` "
                "alone."
            )
        if parameter_budget is not None:
            num_buckets, importance_rows = hash_embedding_sizes(
                self.num_ids,
                self.output_dim,
                self.num_hashes,
                _check_positive_int("parameter_budget", parameter_budget),
            )
        self.num_buckets = _check_positive_int("num_buckets", num_buckets)
        self.importance_rows = _check_positive_int("importance_rows", importance_rows)
        self.seed = int(seed)
        rng = np.random.default_rng(self.seed)
        # (a_j, b_j) per component hash, then (c, e) for the importance row; from the seed.
        buckets = hashing.draw_coefficients(rng, self.num_hashes)
        self.bucket_coefficients = np.stack(buckets).astype("int64")
        self.importance_coefficients = tuple(int(x) for x in hashing.draw_coefficients(rng))
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.importance_initializer = keras.initializers.get(
            importance_initializer or keras.initializers.RandomUniform(-1.0, 1.0)
        )
        self.pool = keras.layers.Embedding(
            self.num_buckets,
            self.output_dim,
            embeddings_initializer=self.embeddings_initializer,
            name="pool",
            dtype=self.dtype_policy,
        )
        self.importance = keras.layers.Embedding(
            self.importance_rows,
            self.num_hashes,
            embeddings_initializer=self.importance_initializer,
            name="importance",
            dtype=self.dtype_policy,
        )

    def build(self, input_shape: tuple | None = None) -> None:
        self.pool.build()
        self.importance.build()
        self.built = True

    def buckets(self, indices: Any) -> Any:
        """Pool row of each component of each index: shape ``S + (num_hashes,)``, int64."""
        a, b = self.bucket_coefficients
        return hashing.universal_hashes(indices, a, b, self.num_buckets)

    def importance_index(self, indices: Any) -> Any:
        """Row of the importance table for each index: the id itself when every id has one."""
        ids = ops.cast(indices, "int64")
        if self.importance_rows >= self.num_ids:
            return ids
        c, e = self.importance_coefficients
        return hashing.universal_hash(ids, c, e, self.importance_rows)

    def lookup(self, indices: Any) -> Any:
        components = gather_rows(self.pool, self.buckets(indices))  # S + (k, output_dim)
        weights = gather_rows(self.importance, self.importance_index(indices))  # S + (k,)
        return ops.sum(components * ops.expand_dims(weights, -1), axis=-2)

    def get_config(self) -> dict[str, Any]:
        # The sizes the weights were built with; a budget only chose them.
        return {
            **super().get_config(),
            "num_buckets": self.num_buckets,
            "importance_rows": self.importance_rows,
            "num_hashes": self.num_hashes,
            "seed": self.seed,
            "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
            "importance_initializer": keras.initializers.serialize(self.importance_initializer),
        }
