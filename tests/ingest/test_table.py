"""A user's own table (`data.source: table`): CSV, TSV and Parquet read alike, and as the same
rows in a Ciao .mat file; ids of either kind; one clear error for every bad file."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.ingest import (
    DataFileError,
    MalformedRatingsError,
    dataset_name,
    load_ratings,
    read_table,
)
from memory_efficient_embeddings.lineage import data_component, describe_component
from memory_efficient_embeddings.pipelines.data_processing.nodes import prefix_ids, split_ratings

from .test_ciao import CIAO_ROWS, write_mat

SPLIT = {"train_fraction": 0.6, "validation_fraction": 0.3, "seed": 5}


def _frame(rows=CIAO_ROWS) -> pd.DataFrame:
    """The .mat rows as a user's export: named columns, extra ones (category, helpfulness)."""
    return pd.DataFrame(rows, columns=["user_id", "item_id", "category", "rating", "helpfulness"])


def _write(frame: pd.DataFrame, path):
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, sep="\t" if path.suffix == ".tsv" else ",")
    return path


def _load(path, **data):
    return load_ratings({"source": "table", "path": str(path), **data})


def test_mat_csv_tsv_and_parquet_of_the_same_rows_give_the_same_ratings_and_split(tmp_path):
    mat_ratings, mat_provenance = load_ratings(
        {"source": "ciao", "path": str(write_mat(tmp_path / "rating.mat"))}
    )
    mat_split = split_ratings(prefix_ids(mat_ratings), SPLIT)
    counts = ("rows_read", "zero_rated_dropped", "duplicates_dropped", "rows_kept", "num_movies")
    for name in ("rating.csv", "rating.tsv", "rating.parquet"):
        ratings, provenance = _load(_write(_frame(), tmp_path / name))
        pd.testing.assert_frame_equal(ratings, mat_ratings)
        assert [provenance[c] for c in counts] == [mat_provenance[c] for c in counts]
        assert provenance["file"] == name
        for ours, theirs in zip(split_ratings(prefix_ids(ratings), SPLIT), mat_split, strict=True):
            pd.testing.assert_frame_equal(ours, theirs)


def test_text_ids_stay_text_and_plain_integers_become_int64(tmp_path):
    frame = pd.DataFrame(
        {
            "user_id": ["alice", "bob", "alice", "7"],
            "item_id": ["007", "12", "12", "0"],  # a leading zero: text, not 7
            "rating": [4.5, 3, 2, 1],
        }
    )
    ratings, _ = _load(_write(frame, tmp_path / "r.csv"))
    assert ratings["user_id"].tolist() == ["alice", "bob", "alice", "7"]
    assert ratings["movie_id"].tolist() == ["007", "12", "12", "0"]
    assert prefix_ids(ratings)["movie_id"].tolist() == [
        "movie_007",
        "movie_12",
        "movie_12",
        "movie_0",
    ]
    numeric = frame.assign(item_id=["5", "12", "12", "0"])
    ratings, _ = _load(_write(numeric, tmp_path / "n.csv"))
    assert ratings["movie_id"].dtype == np.int64
    assert ratings["movie_id"].tolist() == [5, 12, 12, 0]  # 0 is an id like any other in a table


def test_explicit_column_names_and_an_ignored_timestamp(tmp_path):
    frame = pd.DataFrame({"ts": [9, 8], "stars": [5, 3], "customer": [1, 2], "product": ["a", "b"]})
    columns = {"user": "customer", "item": "product", "rating": "stars"}
    ratings, provenance = _load(_write(frame, tmp_path / "r.parquet"), columns=columns)
    assert list(ratings.itertuples(index=False, name=None)) == [(1, "a", 5.0), (2, "b", 3.0)]
    assert provenance["columns"] == columns


def test_a_missing_column_lists_the_columns_found(tmp_path):
    frame = pd.DataFrame({"user": [1], "item_id": [2], "stars": [3]})
    for name in ("r.csv", "r.parquet"):
        with pytest.raises(DataFileError) as info:
            _load(_write(frame, tmp_path / name))
        message = str(info.value)
        assert "has no column 'user_id' nor 'rating'" in message
        assert "data.columns.user = 'user_id', data.columns.rating = 'rating'" in message
        assert "Its columns: 'user', 'item_id', 'stars'." in message


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("abc", "the rating is missing or not a number"),
        ("", "the rating is missing or not a number"),
    ],
)
def test_a_non_numeric_or_empty_rating_is_named_with_its_row(tmp_path, value, reason):
    path = tmp_path / "r.csv"
    path.write_text(f"user_id,item_id,rating\n1,2,3\n1,3,{value}\n2,2,nan\n")
    with pytest.raises(MalformedRatingsError) as info:
        _load(path)
    assert str(info.value) == (
        f"{path}, data row 2: {reason}: {{'user': '1', 'item': '3', 'rating': {value!r}}} "
        "(2 bad row(s) in all). Fix the file, or set `data.on_bad_lines: skip` to drop bad rows."
    )


def test_a_row_with_another_field_count_is_named_and_skip_mode_counts_every_bad_row(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user_id,item_id,rating\n1,2,3\n1,3\n,4,5\n2,2,x\n3,3,4,extra\n4,4,4\n")
    with pytest.raises(MalformedRatingsError, match=r"data row 2 has another number of fields"):
        _load(path)
    ratings, provenance = _load(path, on_bad_lines="skip")
    assert list(ratings.itertuples(index=False, name=None)) == [(1, 2, 3.0), (4, 4, 4.0)]
    assert (provenance["rows_read"], provenance["bad_rows_skipped"]) == (6, 4)


def test_the_first_bad_row_is_found_after_skipped_short_rows(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user_id,item_id,rating\n1,2,3\n4,5,6\n1,2,x\n1,3\n")
    with pytest.raises(MalformedRatingsError, match=r"data row 3: the rating is missing"):
        _load(path)


def test_parquet_ids_that_are_not_whole_numbers_are_bad_rows(tmp_path):
    frame = pd.DataFrame({"user_id": [1.0, 2.5, np.nan], "item_id": [1, 2, 3], "rating": [1, 2, 3]})
    with pytest.raises(MalformedRatingsError, match=r"data row 2: the user id is missing or not"):
        _load(_write(frame, tmp_path / "r.parquet"))
    ratings, provenance = _load(tmp_path / "r.parquet", on_bad_lines="skip")
    assert ratings["user_id"].tolist() == [1] and provenance["bad_rows_skipped"] == 2


def test_a_column_of_another_type_is_refused(tmp_path):
    frame = pd.DataFrame({"user_id": [True], "item_id": [1], "rating": [1.0]})
    with pytest.raises(DataFileError, match="holds bool values; ids must be integers or text"):
        _load(_write(frame, tmp_path / "r.parquet"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty: no header, no ratings"),
        (b"user_id,item_id,rating\n", "has a header but no ratings"),
    ],
)
def test_empty_files_are_refused(tmp_path, content, message):
    path = tmp_path / "r.csv"
    path.write_bytes(content)
    with pytest.raises(DataFileError, match=message):
        _load(path)


def test_an_unknown_extension_a_compressed_csv_and_a_fake_parquet_are_refused(tmp_path):
    with pytest.raises(DataFileError, match=r"ends in '.xlsx': data.source: table reads"):
        _load(_write(_frame(), tmp_path / "r.csv").rename(tmp_path / "r.xlsx"))
    disguised = tmp_path / "g.csv"
    disguised.write_bytes(gzip.compress(b"user_id,item_id,rating\n1,2,3\n"))
    with pytest.raises(DataFileError, match=r"is a .gz \(gzip\) archive, not a .csv text file"):
        _load(disguised)
    fake = tmp_path / "f.parquet"
    fake.write_text("user_id,item_id,rating\n")
    with pytest.raises(DataFileError, match="is not a readable Parquet file"):
        _load(fake)


def test_a_missing_path_is_named(tmp_path):
    with pytest.raises(DataFileError, match="but nothing is there"):
        read_table(tmp_path / "absent.csv")
    with pytest.raises(DataFileError, match="data.path is not set"):
        load_ratings({"source": "table"})


def test_a_utf8_bom_does_not_hide_the_first_column(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfuser_id,item_id,rating\n1,2,3\n")
    ratings, _ = _load(path)
    assert ratings["user_id"].tolist() == [1]


def test_titles_and_lineage_name_the_file(tmp_path):
    _, provenance = _load(_write(_frame(), tmp_path / "mine.csv"))
    assert dataset_name(provenance) == "mine.csv"
    assert describe_component("data", data_component(provenance)) == (
        f"table file mine.csv (md5 {provenance['md5']}), 5 ratings"
    )
