"""Tang's Ciao/Epinions .mat files (`data.source: ciao`): rows, the stated rules, every bad file."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from memory_efficient_embeddings.ingest import (
    DataFileError,
    MalformedRatingsError,
    load_ratings,
    read_ciao,
)

# user, item, category, rating, helpfulness: a zero rating, a pair rated twice (3, 30), a pair
# whose later row is rated 0 (1, 20: the zero is dropped first, so its 3 stays).
CIAO_ROWS = [
    (1, 10, 2, 5, 4),
    (1, 20, 2, 3, 1),
    (2, 10, 7, 4, 2),
    (3, 30, 1, 1, 5),
    (1, 20, 2, 0, 3),
    (2, 40, 7, 2, 1),
    (3, 30, 1, 4, 2),
]


def write_mat(path, rows=CIAO_ROWS, dtype=np.int32, name="rating", **extra):
    """A .mat file as Tang's: one int32 array `rating`, one row per rating."""
    scipy.io.savemat(path, {name: np.asarray(rows, dtype=dtype), **extra})
    return path


def _naive(rows, drop_zero=True):
    """The stated rules one row at a time: zeros out, then the last row of each pair."""
    last = {}
    for index, (user, item, _, rating, *_) in enumerate(rows):
        if drop_zero and rating == 0:
            continue
        last[(user, item)] = (index, rating)
    kept = sorted((index, user, item, rating) for (user, item), (index, rating) in last.items())
    return [(user, item, float(rating)) for _, user, item, rating in kept]


def test_rows_and_rule_counts_against_a_naive_reading(tmp_path) -> None:
    path = write_mat(tmp_path / "rating.mat")
    ratings, provenance = load_ratings({"source": "ciao", "path": str(path)})
    assert list(ratings.itertuples(index=False, name=None)) == _naive(CIAO_ROWS)
    assert [str(t) for t in ratings.dtypes] == ["int64", "int64", "float32"]
    counts = {key: provenance[key] for key in provenance if key.endswith(("_read", "_kept"))}
    counts |= {key: provenance[key] for key in provenance if key.endswith(("dropped", "skipped"))}
    assert counts == {
        "rows_read": 7,
        "rows_kept": 5,
        "bad_rows_skipped": 0,
        "zero_rated_dropped": 1,
        "out_of_range_dropped": 0,
        "duplicates_dropped": 1,
    }
    assert (provenance["source"], provenance["file"]) == ("ciao", "rating.mat")
    assert (provenance["num_users"], provenance["num_movies"]) == (3, 4)
    # (3, 30)'s 1 was revised to 4: the lowest rating kept is 2.
    assert (provenance["rating_min"], provenance["rating_max"]) == (2.0, 5.0)


def test_zeros_are_kept_when_the_rule_is_off(tmp_path) -> None:
    path = write_mat(tmp_path / "rating.mat")
    ratings, provenance = load_ratings(
        {"source": "ciao", "path": str(path), "drop_zero_ratings": False}
    )
    assert list(ratings.itertuples(index=False, name=None)) == _naive(CIAO_ROWS, drop_zero=False)
    assert provenance["zero_rated_dropped"] == 0
    assert provenance["duplicates_dropped"] == 2


def test_epinions_layout_without_helpfulness_and_a_double_array(tmp_path) -> None:
    rows = [row[:4] for row in CIAO_ROWS]
    path = write_mat(tmp_path / "epinions.mat", rows, dtype=np.float64)
    ratings, _ = load_ratings({"source": "ciao", "path": str(path)})
    assert list(ratings.itertuples(index=False, name=None)) == _naive(CIAO_ROWS)


def test_a_file_of_only_zero_ratings_says_so(tmp_path) -> None:
    path = write_mat(tmp_path / "rating.mat", [(1, 2, 3, 0, 1)])
    with pytest.raises(MalformedRatingsError, match="no ratings once the 1 rows rated 0"):
        load_ratings({"source": "ciao", "path": str(path)})


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ((0, 10, 2, 5, 1), "the user id is not a positive integer"),
        ((4, -3, 2, 5, 1), "the item id is not a positive integer"),
        ((4, 1.5, 2, 5, 1), "the item id is not a positive integer"),
        ((4, 10, 2, np.nan, 1), "the rating is not a number"),
        ((4, 10, 2, 6, 1), "the rating is outside the scale 1..5 (0: no rating)"),
        ((4, 10, 2, -1, 1), "the rating is outside the scale 1..5 (0: no rating)"),
    ],
)
def test_a_bad_row_is_named_with_its_row_number_and_reason(tmp_path, row, reason) -> None:
    rows = [*CIAO_ROWS[:2], row, *CIAO_ROWS[2:]]
    path = write_mat(tmp_path / "rating.mat", rows, dtype=np.float64)
    with pytest.raises(MalformedRatingsError) as info:
        read_ciao(path)
    message = str(info.value)
    assert message.startswith(f"{path}, row 3 of `rating`: {reason}: ")
    assert "(1 bad row(s) in all; columns user, item, category, rating[, helpfulness])" in message
    assert "data.on_bad_lines: skip" in message


def test_skip_mode_drops_bad_rows_and_counts_off_scale_ones_apart(tmp_path) -> None:
    rows = [*CIAO_ROWS, (0, 10, 2, 5, 1), (4, 10, 2, 9, 1), (5, 10, 2, np.nan, 1)]
    path = write_mat(tmp_path / "rating.mat", rows, dtype=np.float64)
    _, provenance = load_ratings({"source": "ciao", "path": str(path), "on_bad_lines": "skip"})
    assert (provenance["bad_rows_skipped"], provenance["out_of_range_dropped"]) == (2, 1)
    assert (provenance["rows_read"], provenance["rows_kept"]) == (10, 5)


def _error(path) -> str:
    with pytest.raises(DataFileError) as info:
        load_ratings({"source": "ciao", "path": str(path)})
    return str(info.value)


def test_a_missing_file_and_a_folder_are_named(tmp_path) -> None:
    assert "but nothing is there" in _error(tmp_path / "absent.mat")
    assert "but a folder is there" in _error(tmp_path)


def test_a_file_that_is_not_a_mat_file_is_refused(tmp_path) -> None:
    path = tmp_path / "rating.mat"
    path.write_text("user,item,rating\n1,2,3\n")
    assert "is not a readable MATLAB .mat file" in _error(path)
    assert "data.source: table" in _error(path)


def test_a_mat_without_rating_lists_what_it_holds(tmp_path) -> None:
    path = write_mat(tmp_path / "trust.mat", name="trustnetwork", other=np.ones(2))
    message = _error(path)
    assert "has no variable `rating` (it holds: trustnetwork, other)" in message


@pytest.mark.parametrize(
    ("array", "shape"),
    [
        (np.ones((4, 3), dtype=np.int32), "(4, 3)"),  # too few columns
        (np.ones(5, dtype=np.int32), "(1, 5)"),  # one row of 5: fine as a shape...
        (np.array(["a", "b"]), "(2,)"),  # text
    ],
)
def test_an_unusable_rating_array_is_described(tmp_path, array, shape) -> None:
    path = tmp_path / "rating.mat"
    scipy.io.savemat(path, {"rating": array})
    if shape == "(1, 5)":  # ...savemat stores a vector as a row: a valid one-rating file
        ratings, _ = load_ratings({"source": "ciao", "path": str(path)})
        assert len(ratings) == 1
        return
    message = _error(path)
    assert "needs a numeric array with at least 4 columns" in message
    assert "rating" in message


def test_an_empty_rating_array_holds_no_ratings(tmp_path) -> None:
    path = tmp_path / "rating.mat"
    scipy.io.savemat(path, {"rating": np.zeros((0, 5), dtype=np.int32)})
    assert "holds no ratings" in _error(path)


def test_a_matlab_v73_file_is_named_with_the_fix(tmp_path) -> None:
    path = write_mat(tmp_path / "rating.mat")
    data = bytearray(path.read_bytes())
    data[124:126] = b"\x00\x02"  # the header's version field: 0x0200 is MATLAB v7.3 (HDF5)
    path.write_bytes(bytes(data))
    message = _error(path)
    assert "MATLAB v7.3 (HDF5) file" in message
    assert "save -v7" in message
