"""The `data` section of the parameter schema: the new sources' keys, refused before any node runs."""

from __future__ import annotations

import pytest

from memory_efficient_embeddings.parameters import ParameterError, validate_parameters


def _problems(data: dict) -> list[str]:
    with pytest.raises(ParameterError) as info:
        validate_parameters({"data": data})
    return str(info.value).splitlines()[1:]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (
            {"source": "ciao"},
            "`data.path` is missing: data.source 'ciao' reads the .mat file at data.path; set "
            "it (e.g. --params data.path=data/01_raw/rating.mat).",
        ),
        (
            {"source": "table", "path": None},
            "`data.path` is missing: data.source 'table' reads the .csv/.tsv/.parquet/.pq file "
            "at data.path; set it (e.g. --params data.path=data/01_raw/ratings.csv).",
        ),
        (
            {"source": "table", "path": "r.xlsx"},
            "`data.path` is 'r.xlsx'; allowed values: a .csv, .tsv, .parquet, .pq file for "
            "data.source 'table'.",
        ),
        (
            {"source": "ciao", "path": "rating.csv"},
            "`data.path` is 'rating.csv'; allowed values: a .mat file for data.source 'ciao'.",
        ),
        (
            {"path": "data/rating.mat"},
            "`data.path` is 'data/rating.mat', a .mat file, which data.source 'auto' (MovieLens) "
            "does not read: set data.source: ciao.",
        ),
        (
            {"source": "movielens", "path": "r.parquet"},
            "`data.path` is 'r.parquet', a .parquet file, which data.source 'movielens' "
            "(MovieLens) does not read: set data.source: table.",
        ),
        (
            {"source": "table", "path": "r.csv", "columns": {"user": "id", "item": "id"}},
            "`data.columns` is {'user': 'id', 'item': 'id'}; allowed values: three different "
            "column names for user, item and rating.",
        ),
        (
            {"source": "table", "path": "r.csv", "columns": {"rating": "  "}},
            "`data.columns.rating` is '  '; allowed values: a column name of the table.",
        ),
        (
            {"source": "table", "path": "r.csv", "columns": {"items": "product"}},
            "`data.columns.items` is not a known parameter. Did you mean `data.columns.item`? "
            "Allowed under data.columns: item, rating, user.",
        ),
        (
            {"source": "epinions", "path": "r.mat"},
            "`data.source` is 'epinions': Input should be 'auto', 'movielens', 'synthetic', "
            "'ciao' or 'table'.",
        ),
    ],
)
def test_a_data_path_or_columns_that_do_not_fit_the_source_are_refused(data, problem) -> None:
    assert f"  - {problem}" in _problems(data)


@pytest.mark.parametrize(
    "data",
    [
        {"source": "ciao", "path": "data/01_raw/rating.mat", "dataset": "ml-1m"},
        {"source": "table", "path": "mine.PARQUET", "columns": {"user": "customer"}},
        {"source": "table", "path": "mine.tsv", "drop_zero_ratings": False},
        {"source": "movielens", "path": "data/ml-20m/ratings.csv"},  # ml-20m's own CSV
    ],
)
def test_fitting_data_parameters_pass(data) -> None:
    validate_parameters({"data": data})
