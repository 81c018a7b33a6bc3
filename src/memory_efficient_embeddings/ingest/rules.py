"""The stated rules every source's rows go through, counted for data_provenance.json.

1. Bad rows (a missing or malformed id, a MovieLens or Ciao id below 1, a non-numeric or NaN
   rating, a rating off the source's scale): `data.on_bad_lines: error` stops at the first one,
   named; `skip` drops and counts them. Each reader applies this rule, since it knows where a row
   came from (a line, a row of a `.mat` array).
2. Rows rated 0: Tang's Ciao and Epinions files mark "no rating" with 0, below their 1-5 scale.
   For the `ciao` and `table` sources they are dropped and counted while `data.drop_zero_ratings`
   is true (the default); MovieLens has no zero ratings (a 0 is off its scale: rule 1).
3. Repeated (user, item) pairs: the last row in file order is kept, the earlier ones are dropped
   and counted (a later rating revises an earlier one).

The counts always add up: rows_read = bad_rows_skipped + zero_rated_dropped +
out_of_range_dropped + duplicates_dropped + rows_kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import MalformedRatingsError, RatingRangeError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadRatings:
    """What a reader found: its valid rows (user_id, movie_id, rating) and what it dropped.

    ``rows_read`` counts every row of the source (bad ones included); ``bad_rows_skipped`` and
    ``out_of_range_dropped`` are the rows rule 1 dropped (`data.on_bad_lines: skip`).
    """

    ratings: pd.DataFrame
    rows_read: int
    bad_rows_skipped: int = 0
    out_of_range_dropped: int = 0


def drop_zero_ratings(ratings: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rule 2: the rows whose rating is not 0, and how many were dropped."""
    zero = ratings["rating"].to_numpy() == 0
    return ratings[~zero].reset_index(drop=True), int(zero.sum())


def _codes(ids: pd.Series, factorize: bool) -> tuple[np.ndarray, int]:
    """Non-negative int64 codes of ids and their bound: the ids themselves when they are
    non-negative integers (no hashing needed), else their factorized codes."""
    if not factorize and pd.api.types.is_integer_dtype(ids) and (len(ids) == 0 or ids.min() >= 0):
        values = ids.to_numpy(np.int64)
        return values, int(values.max(initial=0)) + 1
    codes, uniques = pd.factorize(ids)
    return codes.astype(np.int64), max(len(uniques), 1)


def keep_last_of_each_pair(ratings: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rule 3: one row per (user, item) pair, the last in file order; and how many were dropped."""
    # One int64 key per pair (codes of each id), sorted; each key's largest row position is its
    # last row. A plain sort: several times faster than DataFrame.duplicated at ml-25m's size.
    (users, num_users), (items, num_items) = (
        _codes(ratings["user_id"], factorize=False),
        _codes(ratings["movie_id"], factorize=False),
    )
    if num_users * num_items >= 2**62:  # ids too large to combine: number them first
        (users, num_users), (items, num_items) = (
            _codes(ratings["user_id"], factorize=True),
            _codes(ratings["movie_id"], factorize=True),
        )
    keys = users * num_items + items
    order = np.argsort(keys)
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    if len(starts) == len(ratings):
        return ratings, 0
    kept = np.zeros(len(ratings), dtype=bool)
    kept[np.maximum.reduceat(order, starts)] = True
    return ratings[kept].reset_index(drop=True), int((~kept).sum())


def apply_rules(
    read: ReadRatings, drop_zero: bool, where: str
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rules 2 and 3 on a reader's valid rows; the ratings kept and every rule's count."""
    ratings, zeros = drop_zero_ratings(read.ratings) if drop_zero else (read.ratings, 0)
    if ratings.empty:
        raise MalformedRatingsError(
            f"{where} holds no ratings once the {zeros:,} rows rated 0 are dropped "
            "(data.drop_zero_ratings: true; set it to false if 0 is a rating on your scale)."
        )
    ratings, duplicates = keep_last_of_each_pair(ratings)
    counts = {
        "rows_read": read.rows_read,
        "bad_rows_skipped": read.bad_rows_skipped,
        "zero_rated_dropped": zeros,
        "out_of_range_dropped": read.out_of_range_dropped,
        "duplicates_dropped": duplicates,
        "rows_kept": len(ratings),
    }
    dropped = {
        key: value for key, value in counts.items() if key.endswith(("_dropped", "_skipped"))
    }
    if any(dropped.values()):
        logger.info(
            "Of %s rows read: %s; %s kept",
            f"{read.rows_read:,}",
            ", ".join(
                f"{value:,} {key.replace('_', ' ')}" for key, value in dropped.items() if value
            ),
            f"{len(ratings):,}",
        )
    return ratings, counts


def rating_range(ratings: pd.DataFrame) -> dict[str, float]:
    """The lowest and highest rating kept (the models' output range must cover them)."""
    values = ratings["rating"].to_numpy(np.float64)
    return {"rating_min": float(values.min()), "rating_max": float(values.max())}


def check_output_ranges(provenance: Mapping[str, Any], outputs: Mapping[str, Any]) -> None:
    """Refuse data whose ratings a model's sigmoid output cannot reach, naming the keys to set.

    ``outputs`` maps each model's name to its `<name>.model.output` parameters. A linear output
    has no range; a sigmoid one predicts within (min_rating, max_rating), so every rating must
    lie within [min_rating, max_rating].
    """
    low, high = provenance.get("rating_min"), provenance.get("rating_max")
    if low is None or high is None:
        return
    outside = {
        name: output
        for name, output in outputs.items()
        if output.get("activation", "sigmoid") == "sigmoid"
        and not (output.get("min_rating", 0.0) <= low and high <= output.get("max_rating", 5.0))
    }
    if not outside:
        return
    ranges = ", ".join(
        f"{name} {output.get('min_rating', 0.0):g}..{output.get('max_rating', 5.0):g}"
        for name, output in outside.items()
    )
    keys = " and ".join(f"`{name}.model.output.min_rating`/`max_rating`" for name in outside)
    settings = []  # only the bounds the data crosses
    for name, output in outside.items():
        if low < output.get("min_rating", 0.0):
            settings.append(f"{name}.model.output.min_rating={low:g}")
        if high > output.get("max_rating", 5.0):
            settings.append(f"{name}.model.output.max_rating={high:g}")
    example = ",".join(settings)
    data = provenance.get("file") or provenance.get("description", "the data")
    raise RatingRangeError(
        f"The ratings of {data} run from {low:g} to "
        f"{high:g}, outside the sigmoid output range of {ranges}: set {keys} to cover them "
        f'(conf/local/parameters.yml or e.g. --params "{example}"), or use '
        "`output.activation: linear`."
    )
