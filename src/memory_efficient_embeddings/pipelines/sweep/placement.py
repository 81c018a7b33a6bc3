"""Placement: each budgeted sweep point's size knob set to the largest model that fits its budget.

A budget of ``b`` float32 values per id allows ``4·b·(users + movies)`` serving bytes for the
whole model: both sides' embedding layers and their biases, as ``training.size_record`` counts the
built model (index maps at their dtype, a projected table folded where it serves folded). The
global bias (one float) is not counted. Each side's knob scales with its own vocabulary (ids per
bucket, weights per id), so both sides get about the same bytes per id.

The knob (``sweep.techniques.<t>.budget_knob``, kinds in ``grid.BUDGET_KNOBS``) is searched over
integer steps whose models grow with the step: from a first guess, doubling or halving until one
side of the budget is found, then bisecting. Ints are placed exactly; a per-id float (mean_dim,
budget_dim) in steps of ``1 / PER_ID_STEPS`` and to within ``PER_ID_TOLERANCE`` of the largest
that fits. A step whose model the schema or its layer refuses (a TT-Rec budget below rank 1)
counts as not fitting.

Biases: a point keeps its model's ``bias_layout`` (default ``separate``: a per-id bias table per
side, 1 float per id) where that reaches the budget; where it does not (every budget of at most
1 float per id), ``in_embedding`` (the bias as column 0 of the compact table, so compressed with
it) is tried next when this version's schema has it. A budget no layout reaches is recorded as
unreachable, with the reason, and listed in the sweep's reports.

Unseen ids: a mixed-dimension side whose ``blocks.tail.unknown_ids`` is ``tail`` (ids unseen in
training read the rarest shared block's row) keeps it only at the knob's steps where one of its
blocks is shared; at larger steps no block is shared and that side's unseen ids read zeros
(``unknown_ids: zero``), so one hybrid spans every budget.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import keras
import pandas as pd
from pydantic import ValidationError

from memory_efficient_embeddings.embeddings.memory import shapes_only
from memory_efficient_embeddings.embeddings.mlet import holds_projection
from memory_efficient_embeddings.modeling.grid import BUDGET_KNOBS, EMBEDDING_SIDES, budget_label
from memory_efficient_embeddings.modeling.nodes import build_model
from memory_efficient_embeddings.modeling.specs import resolve_blocks, resolve_embedding_plan
from memory_efficient_embeddings.modeling.training import size_record
from memory_efficient_embeddings.parameters import (
    SPEC_KEY_ARGUMENTS,
    ModelSpec,
    embedding_keys,
    embedding_spec_problems,
)

logger = logging.getLogger(__name__)

BYTES_PER_FLOAT = 4  # budgets are in float32 values
PER_ID_STEPS = 1024  # a per-id knob moves in steps of 1/1024 weight per id
PER_ID_TOLERANCE = 1 / 256  # and stops within 0.4% of the largest step that fits
MAX_INT_KNOB = 1 << 16  # an int knob (a width, a bucket count) is searched up to this
SEPARATE, IN_EMBEDDING = "separate", "in_embedding"
# Model keys that cannot change a model's size: left out of the size cache's key.
KEYS_NOT_IN_SIZE = ("name", "seed", "embedding_l2", "bias_l2", "output")
# Loggers that speak once per built model: quiet while placement builds hundreds of them.
QUIET_LOGGERS = (
    "memory_efficient_embeddings.modeling.specs",
    "memory_efficient_embeddings.modeling.nodes",
)


def in_embedding_available() -> bool:
    """Whether this version's model schema has `bias_layout` (biases inside the compact table)."""
    return "bias_layout" in ModelSpec.model_fields


@contextlib.contextmanager
def _quiet_builds() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [each.level for each in loggers]
    for each in loggers:
        each.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for each, level in zip(loggers, levels, strict=True):
            each.setLevel(level)


class ModelSizer:
    """Serving bytes of a model spec on this vocabulary, by building it (cached by its sizes)."""

    def __init__(self, user_vocabulary: pd.DataFrame, movie_vocabulary: pd.DataFrame) -> None:
        self.user_vocabulary = user_vocabulary
        self.movie_vocabulary = movie_vocabulary
        self.num_ids = {
            "user_embedding": len(user_vocabulary),
            "movie_embedding": len(movie_vocabulary),
        }
        self._cache: dict[str, int | str] = {}

    @property
    def total_ids(self) -> int:
        return sum(self.num_ids.values())

    def vocabulary(self, side: str) -> pd.DataFrame:
        return self.user_vocabulary if side == "user_embedding" else self.movie_vocabulary

    def serving_bytes(self, model: dict[str, Any]) -> int | str:
        """The built model's float32 serving bytes, or why the schema or a layer refuses it."""
        key = json.dumps(
            {k: v for k, v in model.items() if k not in KEYS_NOT_IN_SIZE},
            sort_keys=True,
            default=str,
        )
        if key not in self._cache:
            self._cache[key] = self._measure(model)
        return self._cache[key]

    def _measure(self, model: dict[str, Any]) -> int | str:
        try:
            ModelSpec.model_validate(model)
        except ValidationError as error:
            return "; ".join(f"`{'.'.join(map(str, e['loc']))}` {e['msg']}" for e in error.errors())
        problems = [
            p for side in EMBEDDING_SIDES for p in embedding_spec_problems(model[side], side)
        ]
        if problems:
            return "; ".join(problems)
        try:
            with _quiet_builds():
                plan = resolve_embedding_plan(
                    self.user_vocabulary, self.movie_vocabulary, model, report_num_blocks=1
                )
                with shapes_only():  # shapes, not values: no initializer runs
                    rating_model = build_model(plan, model)
                    if not holds_projection(rating_model):
                        return size_record(rating_model)["serving_bytes"]
                # A projected table serves folded where that is smaller, and folding reads
                # its weights: this model is built with values.
                return size_record(build_model(plan, model))["serving_bytes"]
        except (ValueError, TypeError) as error:  # a size the layer refuses
            return str(error)


@dataclass(frozen=True)
class Probe:
    """One step of a knob's search: its value, the model and its bytes (or why it has none)."""

    step: int
    value: Any
    model: dict[str, Any]
    serving_bytes: int | None
    refused: str | None

    def fits(self, limit: float) -> bool:
        return self.serving_bytes is not None and self.serving_bytes <= limit


def largest_fitting(
    probe: Callable[[int], Probe],
    limit: float,
    start: int,
    high: int,
    close_enough: Callable[[int, int], bool] = lambda low, high: False,
) -> tuple[Probe | None, list[Probe]]:
    """The probe of the largest step in [1, high] whose model fits ``limit``, and every probe.

    Along the steps, models grow; the steps that build form one run (a layer refuses steps too
    small for it, the schema steps too large). From ``start`` the step doubles or halves until
    the largest fitting step is bracketed, then the bracket is bisected until adjacent or
    ``close_enough``. A step that does not build counts as not fitting.
    """
    probes: list[Probe] = []

    def at(step: int) -> Probe:
        probes.append(probe(step))
        return probes[-1]

    built = _first_built(at, start, high)
    if built is None:
        return None, probes
    if built.fits(limit):  # double while it fits
        best, above = built, None
        while best.step < high:
            candidate = at(min(2 * best.step, high))
            if not candidate.fits(limit):
                above = candidate
                break
            best = candidate
        if above is None:  # fits up to the cap
            return best, probes
    else:
        refused_below = max(
            (p.step for p in probes if p.refused and p.step < built.step), default=0
        )
        best, above = _fitting_below(at, built, refused_below, limit)
        if best is None:
            return None, probes
    while above.step - best.step > 1 and not close_enough(best.step, above.step):
        candidate = at((best.step + above.step) // 2)
        if candidate.fits(limit):
            best = candidate
        else:
            above = candidate
    return best, probes


def _fitting_below(
    at: Callable[[int], Probe], above: Probe, refused_below: int, limit: float
) -> tuple[Probe | None, Probe]:
    """A fitting step below a too-large one (halving, then bisecting towards the largest step
    too small to build), and the smallest too-large step seen; None when none fits."""
    halving = True
    while above.step - refused_below > 1:
        step = max(above.step // 2, refused_below + 1) if halving else None
        candidate = at(step or (refused_below + above.step) // 2)
        if candidate.fits(limit):
            return candidate, above
        if candidate.refused:  # below it nothing builds: look between it and `above`
            refused_below, halving = candidate.step, False
        else:
            above = candidate
    return None, above


def _first_built(at: Callable[[int], Probe], start: int, high: int) -> Probe | None:
    """The start's probe if its model builds, else the first that builds doubling up from it,
    else halving down from it; None when none does."""
    first = at(start)
    if not first.refused:
        return first
    for direction in (2, 0.5):
        step = start
        while (step < high) if direction > 1 else (step > 1):
            step = min(high, step * 2) if direction > 1 else step // 2
            candidate = at(step)
            if not candidate.refused:
                return candidate
    return None


def _budget_argument(kind: str) -> str:
    """The layer argument that `budget_dim` sets for this type (its weights budget)."""
    taken = sorted(SPEC_KEY_ARGUMENTS["budget_dim"] & embedding_keys(kind))
    if len(taken) != 1:
        raise ValueError(f"budget_dim does not apply to {kind!r} embeddings.")
    return taken[0]


class KnobSearch:
    """A technique's knob as integer steps 1, 2, ... whose models grow with the step."""

    def __init__(self, knob: str, num_ids: dict[str, int], floats_per_id: float) -> None:
        self.knob = knob
        head, *rest = knob.split(".")
        self.leaf = rest[-1] if rest else head
        self.kind = BUDGET_KNOBS[self.leaf]
        if head == "embedding":
            self.sides: tuple[str, ...] = EMBEDDING_SIDES
        else:
            self.sides = (head,) if head in EMBEDDING_SIDES else ()
        self.path_in_side = rest
        self.num_ids = num_ids
        # First guesses near the answer save probes; the search finds it from any start.
        self.start, self.high = 1, MAX_INT_KNOB
        if self.kind == "per_id":
            self.start, self.high = (
                max(1, round(floats_per_id * PER_ID_STEPS / 2)),
                (PER_ID_STEPS * 4096),
            )
        elif self.kind == "inverse_int":
            # A side of n ids has max(1, n // k) buckets at k ids per bucket: every model is one
            # of these values of k (where some side's bucket count changes), largest k first.
            counts = [num_ids[side] for side in self.sides]
            self.ids_per_bucket = sorted(
                {n // q for n in counts for q in range(1, n + 1)} | {max(counts)}, reverse=True
            )
            self.high = len(self.ids_per_bucket)

    def value(self, step: int) -> Any:
        """The knob's value at a step (ids per bucket fall as the step grows)."""
        if self.kind == "per_id":
            return step / PER_ID_STEPS
        if self.kind == "inverse_int":
            return self.ids_per_bucket[step - 1]
        return step

    def close_enough(self, low: int, high: int) -> bool:
        return self.kind == "per_id" and high - low <= low * PER_ID_TOLERANCE

    def apply(self, model: dict[str, Any], step: int) -> dict[str, Any]:
        """A copy of the model with the knob at this step."""
        value = self.value(step)
        candidate = copy.deepcopy(model)
        if not self.sides:
            candidate[self.knob] = value
            return candidate
        for side in self.sides:
            target = candidate[side]
            if self.leaf == "budget_dim":
                # Per side, in the layer's own budget argument: budget_dim itself takes only ints.
                target.pop("budget_dim", None)
                weights = math.floor(value * self.num_ids[side])
                target[_budget_argument(target["type"])] = max(1, weights)
                continue
            for key in self.path_in_side[:-1]:
                target = target.setdefault(key, {})
            target[self.leaf] = value
        return candidate


def unknown_ids_where_shared(model: dict[str, Any], sizer: ModelSizer) -> dict[str, Any]:
    """The model with each side's `tail.unknown_ids: tail` kept only where a block is shared."""
    model = copy.deepcopy(model)
    for side in EMBEDDING_SIDES:
        spec = model.get(side) or {}
        blocks = spec.get("blocks") or {}
        if (
            spec.get("type") != "mixed_dimension"
            or (blocks.get("tail") or {}).get("unknown_ids") != "tail"
        ):
            continue
        try:
            frequencies = sizer.vocabulary(side)["train_count"].to_numpy()
            storage = resolve_blocks(frequencies, blocks, side)["storage"]
        except (ValueError, TypeError, KeyError):
            continue  # the sizer names what is wrong with the blocks
        if all(kind == "own" for kind in storage):  # nothing shared to fall back on
            blocks["tail"]["unknown_ids"] = "zero"
    return model


def _value_label(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _search(
    point: dict[str, Any], model: dict[str, Any], sizer: ModelSizer
) -> tuple[Probe | None, list[Probe], float]:
    budget = point["budget"]["floats_per_id"]
    limit = BYTES_PER_FLOAT * budget * sizer.total_ids
    search = KnobSearch(point["budget"]["knob"], sizer.num_ids, budget)

    def probe(step: int) -> Probe:
        candidate = unknown_ids_where_shared(search.apply(model, step), sizer)
        size = sizer.serving_bytes(candidate)
        refused = size if isinstance(size, str) else None
        return Probe(step, search.value(step), candidate, None if refused else int(size), refused)

    best, probes = largest_fitting(probe, limit, search.start, search.high, search.close_enough)
    return best, probes, limit


def _why_not(knob: str, probes: list[Probe], limit: float, total_ids: int) -> str:
    built = [p for p in probes if p.serving_bytes is not None]
    if built:
        smallest = min(built, key=lambda p: p.serving_bytes)
        return (
            f"its smallest model that builds ({knob}={_value_label(smallest.value)}) holds "
            f"{smallest.serving_bytes / total_ids:.3g} bytes per id, above the budget's "
            f"{limit / total_ids:.3g}"
        )
    smallest = min(probes, key=lambda p: p.step)
    return f"no {knob} builds: at {_value_label(smallest.value)}, {smallest.refused}"


def place_point(point: dict[str, Any], sizer: ModelSizer) -> tuple[dict[str, Any], bool]:
    """The point with its knob placed (and a `placement` record), or marked `unreachable`;
    and whether any of its models built (False: it is misconfigured, not too large)."""
    model = point["model"]
    own_layout = model.get("bias_layout", SEPARATE)
    layouts = [own_layout]
    fallback = model.get("use_biases", True) and own_layout != IN_EMBEDDING
    if fallback and in_embedding_available():
        layouts.append(IN_EMBEDDING)
    reasons, built = [], False
    limit = BYTES_PER_FLOAT * point["budget"]["floats_per_id"] * sizer.total_ids
    for layout in layouts:
        if (
            layout == SEPARATE
            and model.get("use_biases", True)
            and limit <= BYTES_PER_FLOAT * sizer.total_ids
        ):
            # A bias table per side holds one float32 per id: nothing is left for the vectors.
            reasons.append(
                f"with bias_layout {layout}, the per-id bias tables alone take 4 bytes per id, the whole budget"
            )
            built = True  # not misconfigured: too small a budget
            continue
        candidate = model if layout == own_layout else {**model, "bias_layout": layout}
        best, probes, limit = _search(point, candidate, sizer)
        if best is not None:
            return _placed(point, best, layout, limit, sizer.total_ids, len(probes)), True
        built = built or any(p.serving_bytes is not None for p in probes)
        reasons.append(
            f"with bias_layout {layout}, "
            + _why_not(point["budget"]["knob"], probes, limit, sizer.total_ids)
        )
    if fallback and not in_embedding_available():
        reasons.append(
            "bias_layout: in_embedding (biases inside the compact table) is not in this version"
        )
    return {**copy.deepcopy(point), "unreachable": "; ".join(reasons)}, built


def _placed(
    point: dict[str, Any], best: Probe, layout: str, limit: float, total_ids: int, probes: int
) -> dict[str, Any]:
    knob = point["budget"]["knob"]
    placed = copy.deepcopy(point)
    placed["model"] = best.model
    placed["placement"] = {
        "knob": knob,
        "value": best.value,
        "bias_layout": layout,
        "serving_bytes": best.serving_bytes,
        "bytes_per_id": best.serving_bytes / total_ids,
        "budget_bytes_per_id": limit / total_ids,
        "probes": probes,
    }
    biases = ", biases in the table" if layout == IN_EMBEDDING else ""
    placed["settings"] = (
        f"{point['settings']} → {knob.split('.')[-1]}={_value_label(best.value)}{biases}"
    )
    return placed


def place_sweep_budgets(
    sweep_grid: list[dict[str, Any]],
    user_vocabulary: pd.DataFrame,
    movie_vocabulary: pd.DataFrame,
) -> list[dict[str, Any]]:
    """Place every budgeted point at the largest model that fits; mark the unreachable ones."""
    sizer = ModelSizer(user_vocabulary, movie_vocabulary)
    plan, never_built = [], {}
    for point in sweep_grid:
        if "budget" not in point:
            plan.append(point)
            continue
        placed, built = place_point(point, sizer)
        plan.append(placed)
        technique = point["technique"]
        never_built[technique] = never_built.get(technique, True) and not built
    keras.backend.clear_session()  # frees the throwaway models' graph state, once
    _refuse_misconfigured(plan, [t for t, never in never_built.items() if never])
    budgeted = [p for p in plan if "budget" in p]
    for point in budgeted:
        if "placement" in point:
            placement = point["placement"]
            logger.info(
                "Sweep placement %s: %s=%s (bias_layout %s), %.3g of %.3g bytes per id",
                point["point"],
                placement["knob"],
                _value_label(placement["value"]),
                placement["bias_layout"],
                placement["bytes_per_id"],
                placement["budget_bytes_per_id"],
            )
    unreachable = [p for p in budgeted if "unreachable" in p]
    if budgeted:
        logger.info(
            "Sweep placement: %d of %d budgeted points placed; %d unreachable (listed with the "
            "reason in sweep.md and sweep_summary.json)%s",
            len(budgeted) - len(unreachable),
            len(budgeted),
            len(unreachable),
            "".join(
                f"\n  {p['technique']} at {budget_label(p['budget']['floats_per_id'])} floats per "
                f"id: {p['unreachable']}"
                for p in unreachable
            ),
        )
    return plan


def _refuse_misconfigured(plan: list[dict[str, Any]], techniques: list[str]) -> None:
    """A technique none of whose models builds at any budget is misconfigured: say so."""
    if techniques:
        first = next(p for p in plan if p["technique"] == techniques[0] and "unreachable" in p)
        raise ValueError(
            f"sweep.techniques.{techniques[0]}: none of its models builds at any budget, so it "
            f"is misconfigured: {first['unreachable']}"
        )
