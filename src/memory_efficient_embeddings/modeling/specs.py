"""Parameter specs -> resolved embedding plans: popularity blocks, dims, bucket counts, sizes.

A plan is plain JSON: what `build_model` builds from, what the catalog versions and what the
popularity plot draws. Every model gets one: a full table is a one-block plan, so every model
reports error by the same kind of popularity blocks. No training here.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
from typing import Any

import keras
import numpy as np
import pandas as pd

from memory_efficient_embeddings.embeddings import (
    EMBEDDING_TYPES,
    MixedDimensionEmbedding,
    alpha_power_dims,
    make_embedding,
    popularity_blocks,
)
from memory_efficient_embeddings.embeddings.memory import shapes_only
from memory_efficient_embeddings.parameters import SPEC_KEY_ARGUMENTS

logger = logging.getLogger(__name__)

SIDES = {"user_embedding": "user", "movie_embedding": "movie"}
THREE_BLOCK_LABELS = ("head", "torso", "tail")


class BlocksDoNotFitError(ValueError):
    """Explicit block boundaries that the vocabulary is too small for."""


def _block_labels(num_blocks: int) -> list[str]:
    if num_blocks == len(THREE_BLOCK_LABELS):
        return list(THREE_BLOCK_LABELS)
    return [f"block_{b}" for b in range(num_blocks)]


def _alpha_budget(blocks: dict[str, Any], num_ids: int) -> float | None:
    budget = blocks.get("budget")
    if blocks.get("mean_dim") is not None:
        # A budget that scales with the vocabulary: the memory of a uniform mean_dim table.
        budget = blocks["mean_dim"] * num_ids
    return budget


def resolve_blocks(frequencies: np.ndarray, blocks: dict[str, Any], where: str) -> dict[str, Any]:
    """Group popularity-sorted ids into blocks and give each block its dimension and storage.

    ``blocks`` holds ``boundaries`` or ``num_blocks`` (equal query mass), then either explicit
    ``dims`` or the α-power rule (``alpha`` with ``base_dim``, ``budget`` or ``mean_dim``;
    ``min_dim: 0`` lets a rare block get 0 dims). Blocks whose rule dim (the α rule's before
    rounding, or the explicit dim) is below ``share_below_dim``, or those marked in ``shared``,
    read a small hashed or quotient-remainder table (``tail``) instead of own rows.
    """
    boundaries = blocks.get("boundaries")
    if boundaries is not None and max(boundaries) >= len(frequencies):
        raise BlocksDoNotFitError(
            f"{where}.blocks.boundaries {list(boundaries)} must be below the vocabulary size "
            f"{len(frequencies)}; use smaller boundaries or blocks.num_blocks for this dataset."
        )
    grouped = popularity_blocks(
        frequencies, boundaries=boundaries, num_blocks=blocks.get("num_blocks")
    )
    if blocks.get("dims") is not None:
        dims = [int(d) for d in blocks["dims"]]
        if len(dims) != grouped.num_blocks:
            raise ValueError(
                f"{where}.blocks.dims has {len(dims)} entries but there are "
                f"{grouped.num_blocks} blocks."
            )
        rule, alpha, rule_dims = "explicit", None, [float(d) for d in dims]
    else:
        if blocks.get("alpha") is None:
            raise ValueError(f"{where}.blocks needs `dims` or `alpha` (the α-power rule).")
        rule, alpha = "alpha_power", float(blocks["alpha"])
        sizing = {
            "alpha": alpha,
            "base_dim": blocks.get("base_dim"),
            "budget": _alpha_budget(blocks, len(frequencies)),
        }
        dims = alpha_power_dims(
            grouped.sizes,
            grouped.row_probabilities,
            **sizing,
            min_dim=blocks.get("min_dim", 1),
            max_dim=blocks.get("max_dim"),
            power_of_two=blocks.get("power_of_two", False),
        )
        # The rule's own value, unclamped and unrounded: what share_below_dim compares.
        rule_dims = alpha_power_dims(
            grouped.sizes, grouped.row_probabilities, **sizing, min_dim=0, round_dims=False
        )
    storage, buckets = _block_storage(blocks, rule_dims, list(grouped.sizes), where)
    return {
        "rule": rule,
        "alpha": alpha,
        "boundaries": [int(b) for b in grouped.boundaries],
        "sizes": [int(s) for s in grouped.sizes],
        "dims": [int(d) for d in dims],
        "rule_dims": [round(float(d), 4) for d in rule_dims],
        "storage": storage,
        "buckets": buckets,
        "query_shares": [round(float(s), 6) for s in grouped.query_shares],
        "row_probabilities": [float(p) for p in grouped.row_probabilities],
    }


def _shared_bucket_count(tail: dict[str, Any], size: int) -> int:
    """A shared block's rows: ``n // k`` hashed rows, or ``n // k`` remainder rows (QR, √n)."""
    ids_per_bucket = tail.get("ids_per_bucket")
    if tail["share"] == "quotient_remainder" and ids_per_bucket is None:
        return math.isqrt(size - 1) + 1  # ceil(sqrt(n)): the fewest rows with unique pairs
    if ids_per_bucket is None:
        raise ValueError("blocks.tail.share: hashed needs `ids_per_bucket`.")
    return max(1, size // int(ids_per_bucket))


def _block_storage(
    blocks: dict[str, Any], rule_dims: list[float], sizes: list[int], where: str
) -> tuple[list[str], list[int]]:
    """Each block's storage (own, hashed, quotient_remainder) and its shared table's rows."""
    tail = blocks.get("tail")
    if blocks.get("shared") is not None:
        shared = [bool(flag) for flag in blocks["shared"]]
        if len(shared) != len(sizes):
            raise ValueError(
                f"{where}.blocks.shared has {len(shared)} entries but there are "
                f"{len(sizes)} blocks."
            )
    elif blocks.get("share_below_dim") is not None:
        shared = [dim < float(blocks["share_below_dim"]) for dim in rule_dims]
    else:
        shared = [False] * len(sizes)
    if any(shared) and not tail:
        raise ValueError(f"{where}.blocks: shared blocks need `tail` (share, ids_per_bucket).")
    storage = [tail["share"] if flag else "own" for flag in shared]
    buckets = [
        _shared_bucket_count(tail, size) if flag else 0
        for flag, size in zip(shared, sizes, strict=True)
    ]
    return storage, buckets


def _spec_key_argument(key: str, kind: str, where: str) -> str:
    """The layer argument that spec key ``key`` sets for this type, read from its constructor."""
    layer_class = EMBEDDING_TYPES.get(kind)
    arguments = inspect.signature(layer_class.__init__).parameters if layer_class else {}
    taken = [argument for argument in SPEC_KEY_ARGUMENTS[key] if argument in arguments]
    if len(taken) != 1:
        raise ValueError(f"{where}: `{key}` does not apply to {kind!r}.")
    return taken[0]


def _resolve_layer(
    spec: dict[str, Any],
    num_ids: int,
    blocks: dict[str, Any] | None,
    where: str,
    bias_column: int = 0,
) -> dict[str, Any]:
    """Layer arguments for this vocabulary: bucket counts from ``ids_per_bucket``, block sizes.

    A null value means "not set" (the layer's default), so an overlay environment can remove a
    key that conf/base sets (parameters merge softly).
    """
    layer = {key: copy.deepcopy(value) for key, value in spec.items() if value is not None}
    layer.pop("blocks", None)
    kind = layer["type"]
    ids_per_bucket = layer.pop("ids_per_bucket", None)
    if ids_per_bucket is not None:  # e.g. the recipe's QR rule: num_buckets = n // 50.
        argument = _spec_key_argument("ids_per_bucket", kind, where)
        layer[argument] = max(1, num_ids // int(ids_per_bucket))
    budget_dim = layer.pop("budget_dim", None)
    if budget_dim is not None:  # at most the weights of a uniform dim-k table of this side
        # ROBE's array_size, or a parameter_budget: a layer whose sizes depend on the output width
        # too picks the largest that fits, and the plan records what it picked (`layer_sizes`).
        layer[_spec_key_argument("budget_dim", kind, where)] = int(budget_dim) * num_ids
    if layer.pop("quotient_rows_equal_buckets", False):  # the recipe sizes both QR tables alike
        argument = _spec_key_argument("quotient_rows_equal_buckets", kind, where)
        layer[argument] = max(layer["num_buckets"], math.ceil(num_ids / layer["num_buckets"]))
    if blocks is not None:
        tail = spec["blocks"].get("tail") or {}
        if tail.get("unknown_ids") == "tail" and all(kind == "own" for kind in blocks["storage"]):
            raise ValueError(
                f"{where}.blocks.tail.unknown_ids is tail, but no block is shared: lower "
                "share_below_dim or mark a block in `shared`, or set unknown_ids: zero."
            )
        layer["block_sizes"] = blocks["sizes"]
        # Stored widths: an in_embedding block holds its ids' bias in one more column.
        layer["block_dims"] = [dim + bias_column for dim in blocks["dims"]]
        if any(kind != "own" for kind in blocks["storage"]):
            layer["block_storage"] = blocks["storage"]
            layer["block_buckets"] = blocks["buckets"]
            if "quotient_remainder" in blocks["storage"]:
                layer["shared_combiner"] = tail.get("combiner", "multiply")
            if tail.get("unknown_ids", "zero") == "tail":
                # The rarest shared block: its row is what ids unseen in training read.
                shared = [b for b, kind in enumerate(blocks["storage"]) if kind != "own"]
                layer["unknown_block"] = shared[-1]
    return layer


def _layer_size(
    layer: dict[str, Any], num_ids: int, output_dim: int
) -> tuple[int, dict, list[tuple[int, int]]]:
    """The layer's weight count, the sizes it chose (its ``budget_sizes``) and, per block, its
    weights and stored table rows, by building it."""
    # Building the layer alone (no model, no training) counts exactly what the model will hold.
    embedding = make_embedding(layer, num_ids, output_dim, name="count")
    with shapes_only():  # counted, never run: no initial values drawn
        embedding.build(None)
    count = int(sum(math.prod(variable.shape) for variable in embedding.weights))
    config = embedding.get_config()
    if isinstance(embedding, MixedDimensionEmbedding):
        parts = [embedding.block_layers(b) for b in range(embedding.num_blocks)]
    else:
        parts = [[embedding]]
    per_block = [
        (
            int(sum(math.prod(v.shape) for part in layers for v in part.weights)),
            int(
                sum(
                    table.input_dim
                    for part in layers
                    for table in [part, *part._flatten_layers(include_self=False)]
                    if isinstance(table, keras.layers.Embedding)
                )
            ),
        )
        for layers in parts
    ]
    return count, {key: config[key] for key in embedding.budget_sizes}, per_block


def _storage_label(plan: dict[str, Any], b: int, stored_width: int, use_biases: bool) -> str:
    """own, hashed, quotient_remainder, bias_only (no vector dims) or none (no weights)."""
    if plan["type"] != "mixed_dimension":
        return "own" if plan["type"] in ("full", "projected") else plan["type"]
    storage = plan["storage"][b]
    if plan["dims"][b] > 0 or (stored_width > 0 and storage != "own"):
        return storage  # a shared block of 0 vector dims shares its ids' biases
    return "bias_only" if use_biases else "none"


def _block_table(
    plan: dict[str, Any], per_block: list[tuple[int, int]], bias_column: int, use_biases: bool
) -> list[dict[str, Any]]:
    """Per block: rows, rating share, dims, storage, stored table rows, weights and bytes.

    ``bytes`` are float32 bytes of everything the block's ids hold: its share of the embedding
    layer and, with separate bias tables, its ids' bias rows.
    """
    separate_bias = int(use_biases and not bias_column)
    rows = []
    for b, ((parameters, table_rows), size) in enumerate(
        zip(per_block, plan["sizes"], strict=True)
    ):
        stored_width = plan["dims"][b] + bias_column
        rows.append(
            {
                "block": b,
                "rows": size,
                "rating_share": plan["query_shares"][b],
                "dims": plan["dims"][b],
                "storage": _storage_label(plan, b, stored_width, use_biases),
                "table_rows": table_rows,
                "parameters": parameters,
                "bytes": 4 * (parameters + separate_bias * size),
            }
        )
    return rows


def equal_mass_boundaries(frequencies: np.ndarray, num_blocks: int) -> list[int]:
    """Cumulative ends of ``num_blocks`` blocks that carry about equal shares of the queries."""
    return [int(b) for b in popularity_blocks(frequencies, num_blocks=num_blocks).boundaries]


def _side_plan(
    vocabulary: pd.DataFrame,
    spec: dict[str, Any],
    report_num_blocks: int,
    where: str,
    bias_column: int = 0,
) -> dict[str, Any]:
    """One side's blocks, layer arguments and reporting blocks; its width comes later."""
    frequencies = vocabulary["train_count"].to_numpy()
    num_ids = len(frequencies)
    if "type" not in spec:
        raise ValueError(f"{where} needs a `type`.")
    if spec["type"] == "mixed_dimension":
        if not spec.get("blocks"):
            raise ValueError(f"{where}: a mixed_dimension spec needs `blocks`.")
        blocks = resolve_blocks(frequencies, spec["blocks"], where)
    else:
        # One block: the whole vocabulary at the model's width (set once that is known).
        share = 1.0 if frequencies.sum() > 0 else 0.0
        blocks = {
            "rule": "one_block",
            "alpha": None,
            "boundaries": [num_ids],
            "sizes": [num_ids],
            "dims": [],
            "query_shares": [share],
            "row_probabilities": [share / num_ids],
        }
    layer = _resolve_layer(
        spec, num_ids, blocks if spec["type"] == "mixed_dimension" else None, where, bias_column
    )
    # Error by popularity is reported over the model's own blocks when it has several, else over
    # a fixed equal-mass split, so that every model gets the same kind of head/torso/tail.
    own_blocks = len(blocks["sizes"]) > 1
    report_boundaries = (
        blocks["boundaries"]
        if own_blocks
        else equal_mass_boundaries(frequencies, min(report_num_blocks, num_ids))
    )
    unknown = layer.get("unknown_block")
    return {
        "num_ids": int(num_ids),
        "type": spec["type"],
        **blocks,
        # What ids unseen in training read: zeros, or a shared block's trained row.
        "unknown_ids": "zero" if unknown is None else f"block {unknown}",
        "layer": layer,
        "parameter_count": None,  # filled in once the output width is known
        "report_blocks": {
            "source": "model" if own_blocks else "equal_mass",
            "boundaries": report_boundaries,
            "labels": _block_labels(len(report_boundaries)),
        },
    }


def resolve_embedding_plan(
    user_vocabulary: pd.DataFrame,
    movie_vocabulary: pd.DataFrame,
    model: dict[str, Any],
    report_num_blocks: int,
) -> dict[str, Any]:
    """Resolve both sides' embedding specs into plans: blocks, dims, layer arguments, sizes.

    ``model.embedding_dim: null`` makes the output width the largest top-block dim of the
    mixed-dimension sides, so no block is projected above its own width.
    """
    name = model.get("name", "model")
    use_biases = model.get("use_biases", True)  # the schema's defaults (parameters.py)
    bias_layout = model.get("bias_layout", "separate")
    # in_embedding: each side's layer is one column wider and holds the biases (column 0).
    bias_column = int(use_biases and bias_layout == "in_embedding")
    vocabularies = {"user_embedding": user_vocabulary, "movie_embedding": movie_vocabulary}
    plans = {
        side: _side_plan(
            vocabularies[side], model[side], report_num_blocks, f"{name}.{side}", bias_column
        )
        for side in SIDES
    }
    output_dim = model["embedding_dim"]
    if output_dim is None:
        top_dims = [p["dims"][0] for p in plans.values() if p["type"] == "mixed_dimension"]
        if not top_dims:
            raise ValueError(
                f"{name}.embedding_dim is null, which needs a mixed_dimension side to take "
                "its top-block dim from."
            )
        output_dim = max(top_dims)
    output_dim = int(output_dim)
    if output_dim == 0 and not bias_column:
        raise ValueError(
            f"{name}: the vectors are 0 wide (embedding_dim 0, or every mixed-dimension block "
            "at 0 dims), which only a model whose biases live in the embedding can hold: set "
            f"{name}.bias_layout: in_embedding (with use_biases: true), or give the vectors a width."
        )
    for plan in plans.values():
        if plan["type"] != "mixed_dimension":
            plan["dims"] = [output_dim]
        plan["parameter_count"], sizes, per_block = _layer_size(
            plan["layer"], plan["num_ids"], output_dim + bias_column
        )
        if sizes:
            plan["layer_sizes"] = sizes
        plan["block_table"] = _block_table(plan, per_block, bias_column, use_biases)
    num_ids = plans["user_embedding"]["num_ids"] + plans["movie_embedding"]["num_ids"]
    # Separate bias tables: one float per id; in_embedding biases are in the layers' counts.
    bias_parameters = num_ids if use_biases and not bias_column else 0
    embedding_parameters = sum(p["parameter_count"] for p in plans.values()) + bias_parameters
    embedding_plan = {
        "model": name,
        "embedding_dim": output_dim,
        "bias_layout": bias_layout if use_biases else None,  # null: no per-id biases
        **plans,
        "bias_parameters": bias_parameters,
        "embedding_parameters": embedding_parameters,
        # float32 weights per id, biases included: the budget axis below one float per id.
        "parameters_per_id": round(embedding_parameters / num_ids, 6),
    }
    for side, plan in plans.items():
        logger.info(
            "%s %s: %s blocks of sizes %s, dims %s, %s parameters",
            name,
            SIDES[side],
            plan["rule"],
            plan["sizes"],
            plan["dims"],
            f"{plan['parameter_count']:,}",
        )
    return embedding_plan


def block_of(indices: np.ndarray, boundaries: list[int]) -> np.ndarray:
    """Block number of each vocabulary index; indices past the last boundary (OOV) get -1."""
    blocks = np.searchsorted(np.asarray(boundaries), indices, side="right")
    return np.where(indices < boundaries[-1], blocks, -1)


def uniform_width_at_bytes(
    num_users: int, num_movies: int, max_bytes: int, use_biases: bool
) -> int | None:
    """The widest plain full table (both sides) whose float32 serving bytes fit ``max_bytes``.

    With biases, ``4 · (n_u + n_m) · (d + 1)`` bytes (in separate tables or in the embedding's
    column 0, the same bytes), so width 0 is a biases-only model; without, ``4 · (n_u + n_m) · d``
    and width 0 is no model. None when not even the smallest one fits.
    """
    per_column = 4 * (num_users + num_movies)
    width = max_bytes // per_column - (1 if use_biases else 0)
    smallest = 0 if use_biases else 1
    return int(width) if width >= smallest else None


def uniform_model_at_bytes(
    model: dict[str, Any], num_users: int, num_movies: int, max_bytes: int, name: str
) -> dict[str, Any] | None:
    """``model``'s parameters (seed, L2, output, biases and their layout) with plain full tables on
    both sides at the widest width that fits ``max_bytes``; None when none fits.

    A full table takes the same bytes with either bias layout; width 0 (biases only) needs
    them in the embedding.
    """
    use_biases = model.get("use_biases", True)
    width = uniform_width_at_bytes(num_users, num_movies, max_bytes, use_biases)
    if width is None:
        return None
    return {
        **copy.deepcopy(model),
        "name": name,
        "embedding_dim": width,
        "bias_layout": model.get("bias_layout", "separate") if width else "in_embedding",
        "user_embedding": {"type": "full"},
        "movie_embedding": {"type": "full"},
    }
