"""Nodes of the data_processing pipeline, and a whole run on small synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset

from memory_efficient_embeddings.pipelines.data_processing import create_pipeline
from memory_efficient_embeddings.pipelines.data_processing.nodes import (
    build_vocabularies,
    prefix_ids,
    split_ratings,
)

SPLIT = {"train_fraction": 0.85, "seed": 42}


@pytest.fixture
def prefixed() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 20_000
    return prefix_ids(
        pd.DataFrame(
            {
                "user_id": rng.integers(1, 300, n),
                "movie_id": rng.integers(1, 500, n),
                "rating": rng.integers(1, 6, n).astype(np.float32),
                "timestamp": np.arange(n),
            }
        )
    )


def test_prefix_ids():
    ratings = pd.DataFrame(
        {
            "user_id": [1, 22, 1],
            "movie_id": [2858, 5, 5],
            "rating": [4.0, 3.0, 5.0],
            "timestamp": [1, 2, 3],
        }
    ).astype({"rating": np.float32})
    out = prefix_ids(ratings)
    assert list(out.columns) == ["user_id", "movie_id", "rating"]
    assert out["user_id"].tolist() == ["user_1", "user_22", "user_1"]
    assert out["movie_id"].tolist() == ["movie_2858", "movie_5", "movie_5"]
    assert pd.api.types.is_string_dtype(out["user_id"]) and pd.api.types.is_string_dtype(
        out["movie_id"]
    )
    assert out["rating"].dtype == np.float32


def test_split_fraction_and_reproducibility(prefixed):
    train, evaluation = split_ratings(prefixed, SPLIT)
    assert len(train) + len(evaluation) == len(prefixed)
    assert abs(len(train) / len(prefixed) - 0.85) < 0.01
    again, _ = split_ratings(prefixed, SPLIT)
    pd.testing.assert_frame_equal(train, again)
    other, _ = split_ratings(prefixed, {**SPLIT, "seed": 1})
    assert not train.equals(other)
    expected = np.random.default_rng(42).uniform(size=len(prefixed)) <= 0.85
    pd.testing.assert_frame_equal(train, prefixed[expected].reset_index(drop=True))


def _ratings(pairs):
    return pd.DataFrame(pairs, columns=["user_id", "movie_id"]).assign(rating=np.float32(3))


TRAIN = _ratings(
    [("user_2", "movie_b"), ("user_1", "movie_a"), ("user_2", "movie_a"), ("user_3", "movie_c")]
)
EVAL = _ratings([("user_9", "movie_z"), ("user_1", "movie_b")])


def test_vocabularies_train_mode_order():
    users, movies = build_vocabularies(TRAIN, EVAL, {"source": "train"})
    assert users.to_dict("list") == {"id": ["user_2", "user_1", "user_3"], "train_count": [2, 1, 1]}
    assert movies.to_dict("list") == {
        "id": ["movie_a", "movie_b", "movie_c"],
        "train_count": [2, 1, 1],
    }
    assert users["train_count"].dtype == np.int64


def test_vocabularies_all_mode_puts_eval_only_ids_last():
    users, movies = build_vocabularies(TRAIN, EVAL, {"source": "all"})
    assert users["id"].tolist() == ["user_2", "user_1", "user_3", "user_9"]
    assert users["train_count"].tolist() == [2, 1, 1, 0]
    assert movies["id"].tolist()[-1] == "movie_z"


def test_vocabularies_reject_unknown_source():
    with pytest.raises(ValueError, match="vocabulary.source"):
        build_vocabularies(TRAIN, EVAL, {"source": "eval"})


def _catalog() -> DataCatalog:
    data = {
        "dataset": "ml-100k",
        "source": "synthetic",
        "synthetic": {"seed": 3, "num_users": 200, "num_movies": 150, "num_ratings": 8_000},
    }
    return DataCatalog(
        datasets={
            "params:data": MemoryDataset(data),
            "params:split": MemoryDataset(SPLIT),
            "params:vocabulary": MemoryDataset({"source": "train"}),
        }
    )


def test_whole_pipeline_on_synthetic_data(tmp_path):
    catalog = _catalog()
    # ingest_movies reads the provenance too, so a memory copy would be released after it.
    catalog["data_provenance"] = JSONDataset(filepath=str(tmp_path / "data_provenance.json"))
    free_outputs = SequentialRunner().run(create_pipeline(), catalog)
    titles = free_outputs["movies"].load()
    assert titles["movie_id"].str.startswith("movie_").all()
    assert titles["title"].str.startswith("Synthetic movie ").all()
    provenance = catalog.load("data_provenance")
    assert provenance["source"] == "synthetic"
    assert provenance["shaped_like"] == "ml-100k"
    assert provenance["num_ratings"] == 8_000
    users, movies = catalog.load("user_vocabulary"), catalog.load("movie_vocabulary")
    assert users["id"].str.startswith("user_").all()
    assert movies["id"].str.startswith("movie_").all()
    assert users["train_count"].sum() == movies["train_count"].sum()
    assert abs(users["train_count"].sum() / 8_000 - 0.85) < 0.02

    # Intermediate in-memory outputs are released by the runner: rerun up to the split.
    catalog = _catalog()
    SequentialRunner().run(create_pipeline().to_outputs("train_ratings", "eval_ratings"), catalog)
    train, evaluation = catalog.load("train_ratings"), catalog.load("eval_ratings")
    assert len(train) + len(evaluation) == 8_000
    assert len(train) == users["train_count"].sum()
    assert set(users["id"]) == set(train["user_id"])
    assert set(movies["id"]) == set(train["movie_id"])
