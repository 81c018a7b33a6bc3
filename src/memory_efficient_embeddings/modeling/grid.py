"""The sweep's grid: each technique's entry expanded into named points, each a full model spec.

Pure Python on parameter dicts (no Keras, no Kedro): the parameter schema checks every point
with it before any node runs, and the sweep pipeline plans its runs with it.
"""

from __future__ import annotations

import copy
import itertools
import logging
import re
from typing import Any

from omegaconf import OmegaConf

logger = logging.getLogger(__name__)

RECIPE = "recipe"  # technique name of the keras-io recipe's models: marked, not a frontier
EMBEDDING_SIDES = ("user_embedding", "movie_embedding")
# The size keys a technique's `budget_knob` may name, by their last part, with how placement
# (pipelines/sweep/placement.py) searches each: an int that grows the model, ids per bucket (fewer
# is larger), or a float of weights per id (a mixed-dimension side's mean_dim; budget_dim, set on
# each side as its layer's budget of that many weights per id).
BUDGET_KNOBS = {
    "embedding_dim": "int",
    "num_buckets": "int",
    "ids_per_bucket": "inverse_int",
    "budget_dim": "per_id",
    "mean_dim": "per_id",
}
# A budgeted point holds its size knob at this value until placement (pipelines/sweep/placement.py)
# sets it for the vocabulary: every size key accepts 1, so the schema checks the point as a model.
UNPLACED_KNOB_VALUE = 1


def budget_label(floats_per_id: float) -> str:
    """A budget as the points name it: 0.125, 1, 4 (float32 values per id)."""
    return f"{floats_per_id:g}"


def quantize_modes(quantize: str | list[str] | None) -> list[str]:
    """`sweep.quantize` as a list of modes: null -> [], "int8" -> ["int8"], a list as it is."""
    if quantize is None:
        return []
    return [quantize] if isinstance(quantize, str) else list(quantize)


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`overrides` over `base`: dicts merge key by key, any other value (a list, None) replaces."""
    merged = OmegaConf.merge(OmegaConf.create(base), OmegaConf.create(overrides))
    return OmegaConf.to_container(merged, resolve=True)


def _set_path(target: dict[str, Any], dotted_key: str, value: Any) -> None:
    *parents, leaf = dotted_key.split(".")
    for key in parents:
        target = target.setdefault(key, {})
    target[leaf] = value


def _format_value(value: Any) -> str:
    return "auto" if value is None else str(value)


def _model_overrides(template: dict[str, Any]) -> dict[str, Any]:
    """Expand the `embedding` shorthand (both sides) into user_ and movie_embedding specs."""
    overrides = copy.deepcopy(template)
    shared = overrides.pop("embedding", None)
    if shared is not None:
        for side in EMBEDDING_SIDES:
            overrides[side] = deep_merge(shared, overrides.get(side, {}))
    return overrides


def _budget_axis(technique: str, knob: str | None, grid: dict, sweep: dict) -> list[Any]:
    """The budgets a technique is placed at: each of `sweep.budgets` with a knob, else [None]."""
    if knob is None:
        return [None]
    budgets = (sweep.get("budgets") or {}).get("floats_per_id") or []
    if not budgets:
        raise ValueError(
            f"sweep.techniques.{technique}.budget_knob needs budgets to place the technique at: "
            "set sweep.budgets.floats_per_id, or remove the knob and give its sizes in `grid`."
        )
    if knob in grid:
        raise ValueError(
            f"sweep.techniques.{technique}: {knob!r} is both the budget_knob and a grid key; "
            "placement sets the knob at each budget, so keep it out of `grid`."
        )
    return list(budgets)


def plan_sweep(sweep: dict[str, Any], base_model: dict[str, Any]) -> list[dict[str, Any]]:
    """Expand each technique's grid (and budgets, where it has a knob) into named points.

    A technique with a `budget_knob` gets one point per budget of `sweep.budgets` and grid
    setting, its knob held at ``UNPLACED_KNOB_VALUE`` until placement sets it for the data.
    """
    plan = []
    # (technique, its entry, a fixed label): the recipe's models are named, not gridded.
    # A null entry is switched off: parameters merge softly, so an overlay cannot remove a key.
    entries = [(name, spec, None) for name, spec in sweep["techniques"].items() if spec is not None]
    entries += [
        (RECIPE, spec, name)
        for name, spec in (sweep.get("recipe") or {}).items()
        if spec is not None
    ]
    for technique, entry, fixed_label in entries:
        spec = dict(entry)
        grid = spec.pop("grid", None) or {}
        # Grid keys tuned per point: the summary keeps, for each setting of the other keys, the
        # value with the lowest mean val RMSE (e.g. a uniform table with its own best L2).
        tuned = spec.pop("tune", None) or []
        unknown = sorted(set(tuned) - set(grid))
        if unknown:
            raise ValueError(f"sweep.techniques.{technique}.tune names no grid key: {unknown}")
        knob = spec.pop("budget_knob", None)
        keys = list(grid)
        budget_axis = _budget_axis(technique, knob, grid, sweep)
        for budget, values in itertools.product(
            budget_axis, itertools.product(*(grid[key] for key in keys))
        ):
            settings = dict(zip(keys, values, strict=True))
            template = copy.deepcopy(spec)
            for key, value in settings.items():
                _set_path(template, key, value)
            if budget is not None:
                _set_path(template, knob, UNPLACED_KNOB_VALUE)
                # The budget reads first in the name and is one of the tuning group's settings.
                settings = {"budget": budget_label(budget), **settings}
            # Top-level keys replace the base model's: an embedding spec is replaced whole, since
            # a leftover key of another type (say num_buckets on a full table) would be an error.
            model = {**copy.deepcopy(base_model), **_model_overrides(template)}
            label = fixed_label or ", ".join(
                f"{k.split('.')[-1]}={_format_value(v)}" for k, v in settings.items()
            )
            # Parentheses, not brackets: rich log output would read [..] as markup.
            name = f"{technique}({label})" if label else technique
            # Keras model names must be valid TensorFlow scope names.
            model["name"] = re.sub(r"[^A-Za-z0-9_.]+", "_", name).strip("_")
            point = {"point": name, "technique": technique, "settings": label, "model": model}
            if budget is not None:
                point["budget"] = {"floats_per_id": budget, "knob": knob}
            if tuned:
                fixed = [
                    f"{k.split('.')[-1]}={_format_value(v)}"
                    for k, v in settings.items()
                    if k not in tuned
                ]
                point["tuning_group"] = f"{technique}({', '.join(fixed)})"
            plan.append(point)
    names = [p["point"] for p in plan]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"sweep points must be unique; repeated: {duplicates}")
    if not any(p["technique"] == sweep["reference"] for p in plan):
        raise ValueError(f"sweep.reference {sweep['reference']!r} is not a technique of the grid.")
    logger.info("Sweep plan: %d points × %d seeds", len(plan), len(sweep["seeds"]))
    return plan
