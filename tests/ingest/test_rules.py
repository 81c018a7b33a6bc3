"""The stated rules (zeros, repeated pairs, counts) against a naive reading, and the output-range check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.ingest import RatingRangeError, ReadRatings, check_output_ranges
from memory_efficient_embeddings.ingest.rules import apply_rules


def _random_ratings(seed: int, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user_id": rng.integers(1, 15, n),  # few ids: many repeated pairs
            "movie_id": rng.integers(1, 12, n),
            "rating": rng.integers(0, 6, n).astype(np.float32),  # 0..5: some zeros
        }
    )


def _naive(frame: pd.DataFrame, drop_zero: bool) -> list[tuple]:
    """Zeros out (if asked), then each pair's last row, in the order of those last rows."""
    last = {}
    for index, (user, item, rating) in enumerate(frame.itertuples(index=False, name=None)):
        if drop_zero and rating == 0:
            continue
        last[(user, item)] = index
    return [tuple(frame.iloc[i]) for i in sorted(last.values())]


# Ids of every kind the readers produce: small ints, text, ints too large to combine directly,
# negative ints (a table's own ids).
ID_KINDS = {
    "int": lambda ids: ids,
    "text": lambda ids: ids.map(lambda i: f"id{i}").astype("str"),
    "huge": lambda ids: ids * 2**40,
    "negative": lambda ids: -ids,
}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("drop_zero", [True, False])
@pytest.mark.parametrize("kind", sorted(ID_KINDS))
def test_rules_keep_what_a_naive_reading_keeps_and_the_counts_add_up(seed, drop_zero, kind) -> None:
    frame = _random_ratings(seed)
    frame = frame.assign(
        user_id=ID_KINDS[kind](frame["user_id"]), movie_id=ID_KINDS[kind](frame["movie_id"])
    )
    read = ReadRatings(frame, rows_read=len(frame) + 9, bad_rows_skipped=5, out_of_range_dropped=4)
    kept, counts = apply_rules(read, drop_zero, "f")
    expected = _naive(frame, drop_zero)
    assert [tuple(row) for row in kept.itertuples(index=False, name=None)] == expected
    zeros = int((frame["rating"] == 0).sum()) if drop_zero else 0
    assert counts == {
        "rows_read": len(frame) + 9,
        "bad_rows_skipped": 5,
        "zero_rated_dropped": zeros,
        "out_of_range_dropped": 4,
        "duplicates_dropped": len(frame) - zeros - len(expected),
        "rows_kept": len(expected),
    }
    assert counts["duplicates_dropped"] > 0 and (zeros > 0) == drop_zero


def test_the_last_row_of_a_pair_wins_even_when_it_is_lower() -> None:
    frame = pd.DataFrame({"user_id": [1, 1, 2], "movie_id": [5, 5, 5], "rating": [5.0, 1.0, 3.0]})
    kept, counts = apply_rules(ReadRatings(frame, 3), drop_zero=True, where="f")
    assert kept["rating"].tolist() == [1.0, 3.0]
    assert counts["duplicates_dropped"] == 1


SIGMOID_0_5 = {"activation": "sigmoid", "min_rating": 0.0, "max_rating": 5.0}


@pytest.mark.parametrize(
    ("low", "high", "outputs", "refused"),
    [
        (1.0, 5.0, {"baseline": SIGMOID_0_5}, []),  # MovieLens: the top star on the bound
        (0.0, 5.0, {"baseline": SIGMOID_0_5}, []),
        (
            1.0,
            10.0,
            {"baseline": SIGMOID_0_5, "memory_efficient": SIGMOID_0_5},
            ["baseline", "memory_efficient"],
        ),
        (-1.0, 4.0, {"baseline": SIGMOID_0_5}, ["baseline"]),
        (1.0, 10.0, {"baseline": {**SIGMOID_0_5, "activation": "linear"}}, []),
        (
            1.0,
            10.0,
            {"baseline": {**SIGMOID_0_5, "max_rating": 10.0}, "memory_efficient": SIGMOID_0_5},
            ["memory_efficient"],
        ),
    ],
)
def test_ratings_outside_a_sigmoid_range_are_refused_naming_the_keys(low, high, outputs, refused):
    provenance = {"rating_min": low, "rating_max": high, "description": "table r.csv"}
    if not refused:
        check_output_ranges(provenance, outputs)
        return
    with pytest.raises(RatingRangeError) as info:
        check_output_ranges(provenance, outputs)
    message = str(info.value)
    assert "\n" not in message
    assert f"The ratings of table r.csv run from {low:g} to {high:g}" in message
    for name in outputs:
        named = f"`{name}.model.output.min_rating`/`max_rating`" in message
        assert named == (name in refused)
    # The example sets only the bound the data crosses.
    crossed = "max_rating" if high > 5 else "min_rating"
    bound = high if crossed == "max_rating" else low
    assert f"{refused[0]}.model.output.{crossed}={bound:g}" in message
    assert (f"{refused[0]}.model.output.min_rating=" in message) == (crossed == "min_rating")
