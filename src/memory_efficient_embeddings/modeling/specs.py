"""Parameter specs -> resolved embedding plans: popularity blocks, dims, bucket counts, sizes.

A plan is plain JSON: what `build_model` builds from, what the catalog versions and what the
popularity plot draws. Every model gets one: a full table is a one-block plan, so every model
reports error by the same kind of popularity blocks. No training here.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from memory_efficient_embeddings.embeddings import (
    alpha_power_dims,
    make_embedding,
    popularity_blocks,
)

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
    """Group popularity-sorted ids into blocks and give each block its dimension.

    ``blocks`` holds ``boundaries`` or ``num_blocks`` (equal query mass), then either explicit
    ``dims`` or the α-power rule (``alpha`` with ``base_dim``, ``budget`` or ``mean_dim``).
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
        rule, alpha = "explicit", None
    else:
        if blocks.get("alpha") is None:
            raise ValueError(f"{where}.blocks needs `dims` or `alpha` (the α-power rule).")
        rule, alpha = "alpha_power", float(blocks["alpha"])
        dims = alpha_power_dims(
            grouped.sizes,
            grouped.row_probabilities,
            alpha=alpha,
            base_dim=blocks.get("base_dim"),
            budget=_alpha_budget(blocks, len(frequencies)),
            min_dim=blocks.get("min_dim", 1),
            max_dim=blocks.get("max_dim"),
            power_of_two=blocks.get("power_of_two", False),
        )
    return {
        "rule": rule,
        "alpha": alpha,
        "boundaries": [int(b) for b in grouped.boundaries],
        "sizes": [int(s) for s in grouped.sizes],
        "dims": [int(d) for d in dims],
        "query_shares": [round(float(s), 6) for s in grouped.query_shares],
        "row_probabilities": [float(p) for p in grouped.row_probabilities],
    }


def _resolve_layer(
    spec: dict[str, Any], num_ids: int, blocks: dict[str, Any] | None, where: str
) -> dict[str, Any]:
    """Layer arguments for this vocabulary: bucket counts from ``ids_per_bucket``, block sizes.

    A null value means "not set" (the layer's default), so an overlay environment can remove a
    key that conf/base sets (parameters merge softly).
    """
    layer = {key: copy.deepcopy(value) for key, value in spec.items() if value is not None}
    layer.pop("blocks", None)
    ids_per_bucket = layer.pop("ids_per_bucket", None)
    if ids_per_bucket is not None:  # e.g. the recipe's QR rule: num_buckets = n // 50.
        if layer["type"] not in ("hashed", "quotient_remainder"):
            raise ValueError(f"{where}: `ids_per_bucket` does not apply to {layer['type']!r}.")
        layer["num_buckets"] = max(1, num_ids // int(ids_per_bucket))
    budget_dim = layer.pop("budget_dim", None)
    if budget_dim is not None:  # at most the weights of a uniform dim-k table of this side
        budget = int(budget_dim) * num_ids
        if layer["type"] == "robe":
            layer["array_size"] = budget
        elif layer["type"] in ("tt_rec", "cce", "hash_embedding", "dhe"):
            # Their sizes depend on the output width too: the layer picks the largest that fits
            # (hash_embedding: half the budget to importance weights, the rest to the pool; dhe:
            # the widest hidden layer), and the plan records what it picked (`layer_sizes`).
            layer["parameter_budget"] = budget
        else:
            raise ValueError(f"{where}: `budget_dim` does not apply to {layer['type']!r}.")
    if layer["type"] == "quotient_remainder" and layer.pop("quotient_rows_equal_buckets", False):
        # The recipe sizes both tables alike.
        layer["quotient_rows"] = max(
            layer["num_buckets"], math.ceil(num_ids / layer["num_buckets"])
        )
    if blocks is not None:
        layer["block_sizes"] = blocks["sizes"]
        layer["block_dims"] = blocks["dims"]
    return layer


# Sizes a layer chooses for itself from a `parameter_budget`, recorded in the plan.
CHOSEN_SIZES = {
    "cce": ("num_clusters",),
    "tt_rec": ("tt_rank",),
    "hash_embedding": ("num_buckets", "importance_rows", "num_hashes"),
    "dhe": ("num_hashes", "hidden_dim", "num_hidden_layers"),
}


def _layer_size(layer: dict[str, Any], num_ids: int, output_dim: int) -> tuple[int, dict]:
    """The layer's weight count and the sizes it chose (``CHOSEN_SIZES``), by building it."""
    # Building the layer alone (no model, no training) counts exactly what the model will hold.
    embedding = make_embedding(layer, num_ids, output_dim, name="count")
    embedding.build(None)
    count = int(sum(math.prod(variable.shape) for variable in embedding.weights))
    config = embedding.get_config()
    return count, {key: config[key] for key in CHOSEN_SIZES.get(layer["type"], ())}


def equal_mass_boundaries(frequencies: np.ndarray, num_blocks: int) -> list[int]:
    """Cumulative ends of ``num_blocks`` blocks that carry about equal shares of the queries."""
    return [int(b) for b in popularity_blocks(frequencies, num_blocks=num_blocks).boundaries]


def _side_plan(
    vocabulary: pd.DataFrame, spec: dict[str, Any], report_num_blocks: int, where: str
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
        spec, num_ids, blocks if spec["type"] == "mixed_dimension" else None, where
    )
    # Error by popularity is reported over the model's own blocks when it has several, else over
    # a fixed equal-mass split, so that every model gets the same kind of head/torso/tail.
    own_blocks = len(blocks["sizes"]) > 1
    report_boundaries = (
        blocks["boundaries"]
        if own_blocks
        else equal_mass_boundaries(frequencies, min(report_num_blocks, num_ids))
    )
    return {
        "num_ids": int(num_ids),
        "type": spec["type"],
        **blocks,
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
    vocabularies = {"user_embedding": user_vocabulary, "movie_embedding": movie_vocabulary}
    plans = {
        side: _side_plan(vocabularies[side], model[side], report_num_blocks, f"{name}.{side}")
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
    for side, plan in plans.items():
        if plan["type"] != "mixed_dimension":
            plan["dims"] = [output_dim]
        plan["parameter_count"], sizes = _layer_size(plan["layer"], plan["num_ids"], output_dim)
        if sizes:
            plan["layer_sizes"] = sizes
    bias_parameters = (
        (plans["user_embedding"]["num_ids"] + plans["movie_embedding"]["num_ids"])
        if model.get("use_biases", True)  # the schema's default (parameters.py)
        else 0
    )
    embedding_plan = {
        "model": name,
        "embedding_dim": output_dim,
        **plans,
        "bias_parameters": bias_parameters,
        "embedding_parameters": sum(p["parameter_count"] for p in plans.values()) + bias_parameters,
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
