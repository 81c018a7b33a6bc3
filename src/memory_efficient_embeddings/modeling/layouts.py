"""Candidate layouts of a model and the rule that picks one on the validation split.

``memory_efficient.layouts`` names candidate layouts, each a (partial) override deep-merged into
``memory_efficient.model``. Pure Python on parameter dicts (no Keras, no Kedro): the parameter
schema checks every merged candidate with it before any node runs, and the selection node fits
them (``modeling/nodes.py``: ``select_layout``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from memory_efficient_embeddings.modeling.grid import deep_merge

# The one candidate of a model without layouts (`layouts: null`): the model as written.
AS_WRITTEN = "model"
# Keys a layout may not set: they are the model's, not its layout's (the Keras model's name, which
# the reports key on; the rating range, which data processing checks before any training).
MODEL_ONLY_KEYS = ("name", "output")


def layout_candidates(
    model: Mapping[str, Any], layouts: Mapping[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """Each named layout deep-merged into ``model`` (in order); a layout set to null is left out.

    ``layouts: null`` is one candidate, the model as written, named ``model``. Dicts merge key by
    key; any other value (a list, null) replaces what the model sets.
    """
    if layouts is None:
        return {AS_WRITTEN: deep_merge(dict(model), {})}
    return {
        str(name): deep_merge(dict(model), dict(override))
        for name, override in layouts.items()
        if override is not None
    }


def pick_layout(rows: list[Mapping[str, Any]]) -> str:
    """The layout with the lowest validation RMSE; ties go to fewer serving bytes, then the first.

    A candidate whose validation RMSE is not a number (a diverged fit) loses to every other.
    """
    if not rows:
        raise ValueError("pick_layout got no candidates: give at least one layout.")

    def key(row: Mapping[str, Any]) -> tuple[float, int]:
        rmse = float(row["val_rmse"])
        return (math.inf if math.isnan(rmse) else rmse, int(row["serving_bytes"]))

    return str(min(rows, key=key)["layout"])
