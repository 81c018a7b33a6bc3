"""Each sweep point's embedding plan (blocks, dims, sizes), resolved before any training."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from memory_efficient_embeddings.modeling.specs import BlocksDoNotFitError, resolve_embedding_plan

logger = logging.getLogger(__name__)


def assign_sweep_blocks(
    sweep_plan: list[dict[str, Any]],
    user_vocabulary: pd.DataFrame,
    movie_vocabulary: pd.DataFrame,
    evaluation: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Resolve every point's embedding plan (blocks, dims, sizes); record points that cannot fit."""
    # Resolving every point before training anything surfaces a configuration error in
    # seconds, not after an hour of training.
    plans = {}
    for point in sweep_plan:
        if "unreachable" in point:  # a budget its technique cannot reach (see placement.py)
            budget = point["budget"]["floats_per_id"]
            plans[point["point"]] = {
                "skipped": f"budget {budget:g} floats per id unreachable: {point['unreachable']}"
            }
            continue
        try:
            plans[point["point"]] = resolve_embedding_plan(
                user_vocabulary, movie_vocabulary, point["model"], evaluation["popularity_blocks"]
            )
        except BlocksDoNotFitError as error:  # e.g. the recipe's fixed boundaries on ml-100k
            logger.warning("Sweep point %s skipped: %s", point["point"], error)
            plans[point["point"]] = {"skipped": str(error)}
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError(f"Sweep point {point['point']} is misconfigured: {error}") from error
    return plans
