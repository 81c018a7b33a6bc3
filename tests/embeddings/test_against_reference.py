"""The five compression layers against their reference implementation, thomasahle/cce.

Each layer's forward pass is compared with a numpy transcription of the reference's PyTorch
forward (file and function cited, the reference's names and structure kept), fed with our layer's
weights after a few training steps and with our layer's own resolved index maps (hashes recomputed
from its stored coefficients, CCE's stored assignments), so the deliberate hash differences do not
matter. The sizing rules the reference applies to a parameter budget (``cce/__init__.py``,
``make_embedding``) are transcribed too and checked on the reference's own configurations; where a
layer deliberately differs (docs/techniques.md and docs/techniques-2.md, "Against the reference"),
the test asserts that difference.

Reference configurations used:

* ``tests/test_all.py``: ``vocab=512, num_params=1024, dimension=16, n_chunks=4`` for every method.
* ``examples/movielens.py`` defaults: ``--dim 32 --ppd 200 --n-chunks 4`` and
  ``num_params = ppd * dim``; ``examples/run_all.py`` sweeps ``ppd = 2**i`` for ``i`` in 1..12.
* vocabularies of the reference's synthetic runs, ``syn-<vocab>-<interactions>`` in ``results/``
  (``movielens.py`` reads ``_, v, n = args.dataset.split("-")`` and ``v`` is the vocabulary):
  6000, 10_000, 60_000, 95_456 and 100_000.
"""

from __future__ import annotations

import math
from itertools import count, takewhile

import keras
import numpy as np
import pytest
from keras import ops

from memory_efficient_embeddings.embeddings import (
    CCEEmbedding,
    DHEEmbedding,
    HashEmbedding,
    ROBEEmbedding,
    TTEmbedding,
)
from memory_efficient_embeddings.embeddings.dhe import dhe_parameter_count
from memory_efficient_embeddings.embeddings.hash_embedding import hash_embedding_sizes
from memory_efficient_embeddings.embeddings.tt_rec import (
    factor_rows,
    factor_width,
    tt_parameter_count,
)
from memory_efficient_embeddings.modeling.specs import _resolve_layer
from tests.embeddings.backend_ops import layer_gradients

P = 2**31 - 1  # the prime of our universal hashes

# (vocab, num_params, dimension, n_chunks)
TEST_ALL = (512, 1024, 16, 4)  # tests/test_all.py, test_make_embedding
MOVIELENS_DEFAULTS = (6000, 200 * 32, 32, 4)  # movielens.py defaults on the syn-6000 vocabulary
REFERENCE_CASES = [TEST_ALL, MOVIELENS_DEFAULTS]
# The forwards on JAX too (`make test`), at the reference's test size: JAX compiles each eager op
# once per shape, so the larger vocabulary adds CI time and no new path.
FORWARD_CASES = [pytest.param(*TEST_ALL, marks=pytest.mark.both_backends), MOVIELENS_DEFAULTS]
SYNTHETIC_VOCABS = [6000, 10_000, 60_000, 95_456, 100_000]  # results/syn-*
RUN_ALL_PPDS = [2**i for i in range(1, 13)]  # run_all.py: lo_pow=1, hi_pow=12
DIM, N_CHUNKS = 32, 4  # movielens.py: --dim 32, --n-chunks 4 ("we always used n_chunks=4")
VOCABS = [TEST_ALL[0], *SYNTHETIC_VOCABS]
BUDGETS = [ppd * DIM for ppd in [*RUN_ALL_PPDS, 200]]  # num_params = ppd * dim, 64 .. 131_072

# Float32 layer against a float64 transcription: rtol for the values, a small atol for entries
# where a sum of two trained values cancels to near zero.
TOL = {"rtol": 1e-5, "atol": 1e-6}


def _flatten(tensor: np.ndarray, start_dim: int, end_dim: int = -1) -> np.ndarray:
    """``torch.Tensor.flatten(start_dim, end_dim)``: merge the axes start..end (inclusive)."""
    start, end = start_dim % tensor.ndim, end_dim % tensor.ndim
    return tensor.reshape(*tensor.shape[:start], -1, *tensor.shape[end + 1 :])


def _random_ids(vocab: int, seed: int) -> np.ndarray:
    # Random ids plus both ends of the vocabulary (the last digit / last hash row).
    ids = np.random.default_rng(seed).integers(0, vocab, 253)
    return np.concatenate([[0, 1, vocab - 2, vocab - 1], ids]).astype("int64")


def _train(layer: keras.layers.Layer, ids: np.ndarray, steps: int = 4, seed: int = 0) -> None:
    """A few Adam steps towards random rows, so the weights are no longer the initial ones."""
    target = np.random.default_rng(seed).normal(size=(len(ids), layer.output_dim))
    optimizer = keras.optimizers.Adam(learning_rate=0.05)
    for _ in range(steps):
        gradients = layer_gradients(layer, ids, lambda out: ops.mean((out - target) ** 2))
        variables = layer.trainable_variables
        optimizer.apply_gradients((ops.convert_to_tensor(gradients[v.path]), v) for v in variables)


def _universal(a: np.ndarray, b: np.ndarray, x: np.ndarray, modulus: int) -> np.ndarray:
    """Our layers' hash ``((a·x + b) mod p) mod m`` from their stored coefficients, exact in int64."""
    return ((x[..., None] * a + b) % P) % modulus


def _ref_rank(size, num_params: int) -> int | None:
    """cce/__init__.py, make_embedding (tt, dhe): the largest rank whose size is < num_params.

    None where the reference raises "Too few parameters".
    """
    if size(1) > num_params:
        return None
    return max(takewhile(lambda r: size(r) < num_params, count(1)))


# ---------------------------------------------------------------------------------------------
# CCE: cce/cce.py, CCEmbedding


def reference_cce_forward(
    table0: np.ndarray, table1: np.ndarray, h0: np.ndarray, h1: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """cce/cce.py, CCEmbedding.forward."""
    rows, n_chunks, chunk_size = table0.shape
    part0 = table0[h0[x], range(n_chunks)]
    part1 = table1[h1[x], range(n_chunks)]
    return _flatten(part0 + part1, 1, 2)


def reference_cce_rows(num_params: int, chunk_size: int, n_chunks: int) -> int:
    """cce/cce.py, CCEmbedding.__init__."""
    dimension = n_chunks * chunk_size
    rows = num_params // dimension // 2
    return rows


@pytest.mark.parametrize(("vocab", "num_params", "dimension", "n_chunks"), FORWARD_CASES)
def test_cce_forward_equals_the_reference(vocab, num_params, dimension, n_chunks):
    layer = CCEEmbedding(vocab, dimension, num_chunks=n_chunks, parameter_budget=num_params)
    ids = _random_ids(vocab, seed=1)
    # Train, recluster (k-means assignments, a redrawn residual hash), train again so the
    # residual tables are off zero: the state a trained model serves from.
    _train(layer, ids)
    layer.recluster(iterations=3)
    _train(layer, ids, seed=1)
    # Our tables are chunk-major (chunks, clusters, chunk_dim); the reference's table0/table1 are
    # (rows, n_chunks, chunk_size).
    table0 = np.asarray(layer.cluster_tables).transpose(1, 0, 2).astype("float64")
    table1 = np.asarray(layer.residual_tables).transpose(1, 0, 2).astype("float64")
    # h0: the stored (vocab, n_chunks) assignments, as the reference's h0 after cluster().
    h0 = np.asarray(layer.assignments)
    # h1: the reference stores a random (vocab, n_chunks) array; ours is a universal hash (a
    # documented difference), resolved here for every id from the layer's stored coefficients.
    coefficients = np.asarray(layer.residual_hash)
    h1 = _universal(coefficients[:, 0], coefficients[:, 1], np.arange(vocab), layer.num_clusters)
    expected = reference_cce_forward(table0, table1, h0, h1, ids)
    np.testing.assert_allclose(np.asarray(layer(ids)), expected, **TOL)


@pytest.mark.parametrize("vocab", VOCABS)
def test_cce_sizing_is_the_reference_rule(vocab):
    # make_embedding: chunk_dim = dimension // n_chunks; CCEmbedding: rows from num_params.
    chunk_dim = DIM // N_CHUNKS
    for num_params in BUDGETS:
        layer = CCEEmbedding(vocab, DIM, num_chunks=N_CHUNKS, parameter_budget=num_params)
        assert layer.chunk_dim == chunk_dim
        assert layer.num_clusters == reference_cce_rows(num_params, chunk_dim, N_CHUNKS)
        # table0 + table1 of the reference, (rows, n_chunks, chunk_size) each.
        assert 2 * layer.num_clusters * N_CHUNKS * chunk_dim <= num_params


def test_cce_sizing_on_the_test_all_case():
    vocab, num_params, dimension, n_chunks = TEST_ALL
    layer = CCEEmbedding(vocab, dimension, num_chunks=n_chunks, parameter_budget=num_params)
    assert layer.num_clusters == reference_cce_rows(num_params, dimension // n_chunks, n_chunks)
    assert layer.num_clusters == 32  # 1024 // 16 // 2


# ---------------------------------------------------------------------------------------------
# TT-Rec: cce/tt.py, TensorTrainEmbedding (split_dim=True, as make_embedding builds it)


def reference_tt_forward(
    start_core: np.ndarray,
    cores: np.ndarray,
    end_core: np.ndarray,
    hs: np.ndarray,
    dim: int,
) -> np.ndarray:
    """cce/tt.py, TensorTrainEmbedding.forward, the ``split_dim`` branch."""
    v = end_core[hs[:, -1]]  # (batch, dim, rank)
    for i in range(hs.shape[1] - 2):
        core = cores[i, hs[:, i + 1]]
        v = np.einsum("bdsr,ber->bdes", core, v)
        v = _flatten(v, 1, 2)
    v = np.einsum("bdr,ber->bde", start_core[hs[:, 0]], v)
    v = _flatten(v, 1, 2)
    v = v[:, :dim]
    return v


def reference_tt_size(vocab: int, dim: int, n_chunks: int, rank: int) -> int:
    """make_embedding's ``make(rank).size()`` for "tt": QRHash range and TensorTrainEmbedding."""
    hrange = int(math.ceil(vocab ** (1 / n_chunks)))  # make_embedding: output_range
    dim = int(math.ceil(dim ** (1 / n_chunks)))  # TensorTrainEmbedding.__init__, split_dim
    start_core = hrange * dim * rank
    end_core = hrange * dim * rank
    cores = (n_chunks - 2) * hrange * dim * rank * rank
    return start_core + end_core + cores


@pytest.mark.parametrize(("vocab", "num_params", "dimension", "n_chunks"), FORWARD_CASES)
def test_tt_forward_equals_the_reference(vocab, num_params, dimension, n_chunks):
    # Our layer has three cores; the reference's n_chunks - 2 middle cores are one here.
    layer = TTEmbedding(vocab, dimension, parameter_budget=num_params)
    ids = _random_ids(vocab, seed=2)
    _train(layer, ids)
    core_1, core_2, core_3 = (
        np.asarray(w).astype("float64") for w in (layer.core_1, layer.core_2, layer.core_3)
    )
    # Ours (n, r_left, d, r_right) -> the reference's layouts: start (hrange, dim, rank), cores
    # (n_chunks - 2, hrange, dim, rank_start_side, rank_end_side), end (hrange, dim, rank).
    start_core = core_1[:, 0]
    cores = core_2.transpose(0, 2, 1, 3)[None]
    end_core = core_3[..., 0].transpose(0, 2, 1)
    # hs: our row digits i = (i1·n2 + i2)·n3 + i3, i1 on the start core. The reference's QRHash
    # puts the least significant digit there instead: which digit drives which core only
    # relabels the ids, so our resolved digits are what the maths must be compared on.
    _, n2, n3 = layer.row_factors
    hs = np.stack([ids // (n2 * n3), (ids // n3) % n2, ids % n3], axis=-1)
    expected = reference_tt_forward(start_core, cores, end_core, hs, dimension)
    np.testing.assert_allclose(np.asarray(layer(ids)), expected, **TOL)


@pytest.mark.parametrize("vocab", VOCABS)
def test_tt_sizing_against_the_reference_rule(vocab):
    # Documented difference: three cores with near-cube-root row factors and an exact
    # factorisation of the width, where the reference gives each of its n_chunks cores
    # ceil(vocab^(1/n)) rows and ceil(dim^(1/n)) columns and crops the output. Compared at the
    # reference's n_chunks = 3, the same number of cores.
    hrange = int(math.ceil(vocab ** (1 / 3)))
    ref_dim = int(math.ceil(DIM ** (1 / 3)))
    rows, width = factor_rows(vocab), factor_width(DIM)
    assert rows[0] == hrange and vocab <= math.prod(rows) <= hrange**3
    assert math.prod(width) == DIM <= ref_dim**3 and max(width) <= ref_dim
    # So at every rank our train is no larger than the reference's ...
    for rank in range(1, 65):
        assert tt_parameter_count(vocab, DIM, rank) <= reference_tt_size(vocab, DIM, 3, rank)
    # ... and a budget buys at least the reference's rank; ours refuses only where it does.
    for num_params in BUDGETS:
        ref_rank = _ref_rank(lambda r: reference_tt_size(vocab, DIM, 3, r), num_params)
        if tt_parameter_count(vocab, DIM, 1) > num_params:
            assert ref_rank is None
            with pytest.raises(ValueError, match="below the rank-1"):
                TTEmbedding(vocab, DIM, parameter_budget=num_params)
            continue
        ours = TTEmbedding(vocab, DIM, parameter_budget=num_params).tt_rank
        assert tt_parameter_count(vocab, DIM, ours) <= num_params
        assert ref_rank is None or ours >= ref_rank, (num_params, ours, ref_rank)


def test_tt_rank_rule_is_at_most_the_budget_where_the_reference_is_below_it():
    # Documented difference: the reference keeps ranks whose size is < num_params (takewhile),
    # ours <= the budget; on a budget that is exactly a rank's count the two differ by one.
    vocab, _, dimension, _ = TEST_ALL
    budget = tt_parameter_count(vocab, dimension, 6)
    assert TTEmbedding(vocab, dimension, parameter_budget=budget).tt_rank == 6
    assert _ref_rank(lambda r: tt_parameter_count(vocab, dimension, r), budget) == 5


def test_tt_sizing_on_the_test_all_case():
    # tests/test_all.py runs TT with n_chunks=4: four cores of ceil(512^(1/4)) = 5 rows and
    # ceil(16^(1/4)) = 2 columns, 20r + 20r^2 weights: rank 6 (840 < 1024; rank 7 is 1120).
    vocab, num_params, dimension, n_chunks = TEST_ALL
    assert reference_tt_size(vocab, dimension, n_chunks, 6) == 840
    assert _ref_rank(lambda r: reference_tt_size(vocab, dimension, n_chunks, r), num_params) == 6
    # Ours, three cores (8, 8, 8) x (2, 2, 4): 8·2r + 8·2r² + 8·4r = 48r + 16r² weights, rank 6
    # (864; rank 7 is 1120): the same rank as the reference's four cores. The unbalanced
    # (1, 4, 4) split (40r + 32r², rank 5) bought one rank less.
    layer = TTEmbedding(vocab, dimension, parameter_budget=num_params)
    assert (layer.row_factors, layer.width_factors, layer.tt_rank) == ((8, 8, 8), (2, 2, 4), 6)
    assert tt_parameter_count(vocab, dimension, 6) == 864
    assert tt_parameter_count(vocab, dimension, 7) == 1120


# ---------------------------------------------------------------------------------------------
# ROBE: cce/robe.py, get_slices and RobeEmbedding


def reference_get_slices(table: np.ndarray, indices: np.ndarray, chunk_size: int) -> np.ndarray:
    """cce/robe.py, get_slices (``torch.gather`` on the 1-D table is plain indexing)."""
    rot_indices = (indices[..., None] + np.arange(chunk_size)) % len(table)
    old_shape = rot_indices.shape
    rot_indices = rot_indices.flatten()
    gathered = table[rot_indices]
    return gathered.reshape(old_shape)


def reference_robe_forward(table: np.ndarray, hash_values: np.ndarray, chunk_size: int):
    """cce/robe.py, RobeEmbedding.forward (``hash_values = self.hash(input_tensor)``)."""
    slices = reference_get_slices(table, hash_values, chunk_size)
    return _flatten(slices, -2)


def test_the_robe_transcription_reproduces_the_get_slices_docstring():
    # The example in get_slices' docstring.
    table = np.array([0, 1, 2, 3, 4])
    indices = np.array([[0, 3], [2, 1]])
    expected = [[[0, 1], [3, 4]], [[2, 3], [1, 2]]]
    np.testing.assert_array_equal(reference_get_slices(table, indices, 2), expected)


def test_robe_reads_the_reference_test_case(monkeypatch):
    # tests/test_robe.py, test_identity_hash_with_arange_table: size 8, chunk_size 3, two
    # chunks, an identity hash and table = arange(8); our ring read on the same start positions.
    layer = ROBEEmbedding(8, 6, array_size=8, block_size=3, use_sign=False)
    layer.build(None)
    layer.array.assign(np.arange(8, dtype="float32"))
    monkeypatch.setattr(
        layer,
        "block_starts",
        lambda x: ops.repeat(ops.expand_dims(ops.cast(x, "int64"), -1), 2, -1),
    )
    expected = [[1, 2, 3, 1, 2, 3], [3, 4, 5, 3, 4, 5], [6, 7, 0, 6, 7, 0]]
    np.testing.assert_array_equal(np.asarray(layer(np.array([1, 3, 6]))), expected)


@pytest.mark.parametrize("use_sign", [False, True])
@pytest.mark.parametrize(("vocab", "num_params", "dimension", "n_chunks"), FORWARD_CASES)
def test_robe_forward_equals_the_reference(vocab, num_params, dimension, n_chunks, use_sign):
    # make_embedding("robe"): RobeEmbedding(size=num_params, chunk_size=dimension // n_chunks).
    chunk_size = dimension // n_chunks
    layer = ROBEEmbedding(
        vocab, dimension, array_size=num_params, block_size=chunk_size, use_sign=use_sign
    )
    ids = _random_ids(vocab, seed=3)
    _train(layer, ids)
    table = np.asarray(layer.array).astype("float64")
    # hash_values: our block starts ((a·i + b·j + c) mod p) mod size for block j, recomputed
    # from the layer's stored coefficients (the reference's PolyHash is a documented difference).
    a, b, c = layer.offset_coefficients
    blocks = np.arange(layer.num_blocks)
    hash_values = ((ids[:, None] * a + blocks * b + c) % P) % num_params
    expected = reference_robe_forward(table, hash_values, chunk_size)
    if use_sign:
        # The reference has no sign: with use_sign each block is the reference's block times
        # the layer's hashed ±1 and nothing else.
        sa, sb, sc = layer.sign_coefficients
        signs = 2 * (((ids[:, None] * sa + blocks * sb + sc) % P) % 2) - 1
        expected = expected * np.repeat(signs, chunk_size, axis=-1)
    np.testing.assert_allclose(np.asarray(layer(ids)), expected, **TOL)


@pytest.mark.parametrize("vocab", [TEST_ALL[0], *SYNTHETIC_VOCABS])
def test_robe_sizing_is_the_reference_rule(vocab):
    # make_embedding("robe"): the whole budget is the array, read in n_chunks hashed chunks of
    # dimension // n_chunks. Our array_size is the budget and block_size the chunk size.
    for ppd in [*RUN_ALL_PPDS, 200]:
        num_params = ppd * DIM
        layer = ROBEEmbedding(vocab, DIM, array_size=num_params, block_size=DIM // N_CHUNKS)
        layer.build(None)
        assert sum(int(np.prod(w.shape)) for w in layer.weights) == num_params
        assert layer.num_blocks == N_CHUNKS
    # budget_dim (our budget, k weights per id) gives the array the whole budget too.
    assert _resolve_layer({"type": "robe", "budget_dim": 8}, vocab, None, "w") == {
        "type": "robe",
        "array_size": 8 * vocab,
    }


# ---------------------------------------------------------------------------------------------
# Hash embeddings: cce/hemb.py, HashEmbedding with METHOD_ORIGINAL (the method ours follows)


def reference_hemb_forward(
    table: np.ndarray, self_weights: np.ndarray, hash0_x: np.ndarray, hash1_x: np.ndarray
) -> np.ndarray:
    """cce/hemb.py, HashEmbedding.forward, ``self.method == METHOD_ORIGINAL``."""
    vecs = table[hash0_x]  # (batch_size, num_hashes, dim)
    weights = self_weights[hash1_x]  # (batch_size, 1, num_hashes)
    return (weights @ vecs).squeeze(1)  # (batch_size, dim)


def reference_hemb_sizes(num_params: int, dim: int, n_hash: int) -> tuple[int, int]:
    """cce/hemb.py, HashEmbedding.__init__: ``(B, K)``."""
    B = max(num_params // (2 * dim), 1)
    K = max(num_params // (2 * n_hash), 1)
    return B, K


@pytest.mark.parametrize(
    ("vocab", "num_params", "dimension", "n_chunks"),
    # The reference's cases, and movielens.py's ppd 200 on the test_all vocabulary: K = 800
    # importance rows would exceed the 512 ids, so ours gives every id its own (documented).
    [*FORWARD_CASES, (512, 200 * 32, 32, 4)],
)
def test_hemb_forward_equals_the_reference(vocab, num_params, dimension, n_chunks):
    # make_embedding("hemb_original"): HashEmbedding(num_params, dimension, n_chunks).
    layer = HashEmbedding(vocab, dimension, num_hashes=n_chunks, parameter_budget=num_params)
    ids = _random_ids(vocab, seed=4)
    _train(layer, ids)
    table = np.asarray(layer.pool.embeddings).astype("float64")
    self_weights = np.asarray(layer.importance.embeddings).astype("float64")  # (K, n_hash)
    # hash0 (n_hash PolyHashes into B) and hash1 (one PolyHash into K) resolved through our
    # stored coefficients; hash1 is the id itself when every id has its own weights.
    a, b = layer.bucket_coefficients
    hash0_x = _universal(a, b, ids, layer.num_buckets)
    c, e = layer.importance_coefficients
    if layer.importance_rows >= vocab:
        hash1_x = ids[:, None]
    else:
        hash1_x = _universal(np.array([c]), np.array([e]), ids, layer.importance_rows)
    expected = reference_hemb_forward(table, self_weights, hash0_x, hash1_x)
    np.testing.assert_allclose(np.asarray(layer(ids)), expected, **TOL)


@pytest.mark.parametrize("n_hash", [N_CHUNKS, 2])  # movielens.py's n_chunks; our sweep's k = 2
@pytest.mark.parametrize("vocab", VOCABS)
def test_hemb_sizing_against_the_reference_rule(vocab, n_hash):
    for num_params in BUDGETS:
        B, K = reference_hemb_sizes(num_params, DIM, n_hash)  # the reference's names
        num_buckets, importance_rows = hash_embedding_sizes(vocab, DIM, n_hash, num_params)
        # Half the budget to the importance weights, as the reference, but never more rows than
        # ids (documented): past that every id has its own weights already.
        assert importance_rows == min(vocab, K)
        if importance_rows == K:
            assert num_buckets == B  # the reference's split exactly
        else:
            # ... and the pool takes the rest of the budget (documented): more than the
            # reference's half.
            assert num_buckets == (num_params - vocab * n_hash) // DIM > B
        # The reference's own assertion: table.numel() + weights.numel() <= num_params.
        assert num_buckets * DIM + importance_rows * n_hash <= num_params


def test_hemb_sizing_on_the_test_all_case():
    vocab, num_params, dimension, n_chunks = TEST_ALL
    assert reference_hemb_sizes(num_params, dimension, n_chunks) == (32, 128)
    assert hash_embedding_sizes(vocab, dimension, n_chunks, num_params) == (32, 128)


# ---------------------------------------------------------------------------------------------
# DHE: cce/dhe.py, DeepHashEmbedding


def reference_dhe_forward(
    layers: list[tuple[np.ndarray, np.ndarray]],
    hash_x: np.ndarray,
    hash_range: int,
    num_hashes: int,
) -> np.ndarray:
    """cce/dhe.py, DeepHashEmbedding.forward; ``layers`` are nn.Linear (weight, bias) pairs."""

    def linear(layer, x):  # nn.Linear: x @ weight.T + bias, weight (out_features, in_features)
        weight, bias = layer
        return x @ weight.T + bias

    hs = hash_x / hash_range  # [0, 1)
    hs = (2 * hs - 1) / num_hashes**0.5  # Normalize to the usual
    for layer in layers[:-1]:
        hs = np.maximum(linear(layer, hs), 0)  # torch.relu(layer(hs))
    hs = linear(layers[-1], hs)
    return hs


def reference_dhe_size(dim: int, n_chunks: int, rank: int) -> int:
    """make_embedding's ``make(rank).size()`` for "dhe": n_hidden Linear(rank, rank), then dim."""
    n_hidden = int(math.ceil(rank ** (1 / n_chunks)))
    return n_hidden * (rank * rank + rank) + rank * dim + dim


def _reference_dhe_n_hidden(rank: int, n_chunks: int) -> int:
    return int(math.ceil(rank ** (1 / n_chunks)))  # make_embedding, make(rank) for "dhe"


@pytest.mark.parametrize(("vocab", "num_params", "dimension", "n_chunks"), FORWARD_CASES)
def test_dhe_forward_equals_the_reference(vocab, num_params, dimension, n_chunks):
    # The reference's own sizes for this case: rank hashes, n_hidden Linear(rank, rank) layers.
    rank = _ref_rank(lambda r: reference_dhe_size(dimension, n_chunks, r), num_params)
    n_hidden = _reference_dhe_n_hidden(rank, n_chunks)
    layer = DHEEmbedding(
        vocab, dimension, num_hashes=rank, hidden_dim=rank, num_hidden_layers=n_hidden
    )
    ids = _random_ids(vocab, seed=5)
    _train(layer, ids)
    # hash(x): our k hashes into [0, m) from the stored coefficients (the reference's MultiHash
    # into [0, 2**62) is a documented hash difference); hash.range is our m.
    a, b = layer.hash_coefficients
    m, k = layer.hash_range, layer.num_hashes
    hash_x = _universal(a, b, ids, m).astype("float64")
    # Documented difference: our encoding is 2h/(m-1) - 1 in [-1, 1], the reference's is
    # (2h/m - 1)/sqrt(k); ours = alpha·reference + beta exactly ...
    alpha, beta = m * math.sqrt(k) / (m - 1), 1 / (m - 1)
    reference_encoding = (2 * hash_x / m - 1) / math.sqrt(k)
    np.testing.assert_allclose(
        np.asarray(layer.encode(ids)), alpha * reference_encoding + beta, **TOL
    )
    # ... an affine map the first Linear absorbs: weight·alpha, bias + beta·sum of the weights.
    dense = [*layer.hidden_layers, layer.output_layer]
    kernels = [np.asarray(d.kernel).astype("float64") for d in dense]
    biases = [np.asarray(d.bias).astype("float64") for d in dense]
    biases[0] = biases[0] + beta * kernels[0].sum(axis=0)
    kernels[0] = alpha * kernels[0]
    layers = [(kernel.T, bias) for kernel, bias in zip(kernels, biases, strict=True)]
    expected = reference_dhe_forward(layers, hash_x, m, k)
    np.testing.assert_allclose(np.asarray(layer(ids)), expected, **TOL)


def test_dhe_parameter_count_is_the_reference_size():
    # With k = h (the reference's rank is both), our count is make(rank).size() at the
    # reference's number of hidden layers, for every rank.
    for rank in range(1, 300):
        n_hidden = _reference_dhe_n_hidden(rank, N_CHUNKS)
        assert dhe_parameter_count(DIM, rank, rank, n_hidden, False) == reference_dhe_size(
            DIM, N_CHUNKS, rank
        )


@pytest.mark.parametrize("num_params", BUDGETS)
def test_dhe_sizing_against_the_reference_rule(num_params):
    vocab = SYNTHETIC_VOCABS[0]  # DHE has no table: its size does not depend on the vocabulary
    rank = _ref_rank(lambda r: reference_dhe_size(DIM, N_CHUNKS, r), num_params)
    if rank is None:  # the reference's "Too few parameters": ours refuses too
        with pytest.raises(ValueError, match="below the smallest DHE MLP"):
            DHEEmbedding(vocab, DIM, parameter_budget=num_params)
        return
    # Documented difference: the reference grows its hidden layers with the rank
    # (ceil(rank^(1/n_chunks))), ours keeps num_hidden_layers fixed. Fixed at the reference's
    # count for its rank, our budget picks a width as wide (k = h, as its rank) or, only where the
    # reference would have added a layer at rank + 1 or sits on the budget, wider.
    n_hidden = _reference_dhe_n_hidden(rank, N_CHUNKS)
    layer = DHEEmbedding(vocab, DIM, num_hidden_layers=n_hidden, parameter_budget=num_params)
    assert layer.num_hashes == layer.hidden_dim >= rank
    if layer.hidden_dim > rank:
        assert _reference_dhe_n_hidden(rank + 1, N_CHUNKS) > n_hidden or (
            reference_dhe_size(DIM, N_CHUNKS, rank + 1) == num_params
        )


def test_dhe_sizing_on_the_reference_cases():
    # tests/test_all.py: rank 16 with 2 hidden layers (816 < 1024); rank 17 would take 3 layers
    # (1206). At a fixed 2 layers ours is 18 wide (988 <= 1024).
    _, num_params, dimension, n_chunks = TEST_ALL
    assert _ref_rank(lambda r: reference_dhe_size(dimension, n_chunks, r), num_params) == 16
    assert _reference_dhe_n_hidden(16, n_chunks) == 2
    assert DHEEmbedding(512, dimension, num_hidden_layers=2, parameter_budget=1024).hidden_dim == 18
    # movielens.py defaults: rank 40 with 3 hidden layers; ours at 3 layers is the same.
    _, num_params, dimension, n_chunks = MOVIELENS_DEFAULTS
    assert _ref_rank(lambda r: reference_dhe_size(dimension, n_chunks, r), num_params) == 40
    assert _reference_dhe_n_hidden(40, n_chunks) == 3
    layer = DHEEmbedding(6000, dimension, num_hidden_layers=3, parameter_budget=num_params)
    assert (layer.hidden_dim, layer.num_hashes) == (40, 40)
