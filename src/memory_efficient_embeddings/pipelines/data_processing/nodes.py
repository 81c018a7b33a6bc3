"""Nodes of the data_processing pipeline: small pure functions over pandas DataFrames."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from memory_efficient_embeddings.movielens import load_ratings
from memory_efficient_embeddings.movielens.movies import load_movies

logger = logging.getLogger(__name__)

VOCABULARY_SOURCES = ("train", "all")


def ingest_ratings(data: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Load MovieLens ratings (local archive, download, or synthetic fallback) with provenance."""
    return load_ratings(data)


def _prefixed(ids: pd.Series, prefix: str) -> pd.Series:
    """``prefix<id>`` strings, formatted once per distinct id and gathered (fast at 25M rows)."""
    codes, uniques = pd.factorize(ids, sort=False)
    labels = pd.array([f"{prefix}{i}" for i in uniques.tolist()], dtype="str")
    return pd.Series(labels.take(codes), index=ids.index, name=ids.name)


def ingest_movies(
    data: dict[str, Any], data_provenance: dict[str, Any], ratings: pd.DataFrame
) -> pd.DataFrame:
    """Movie titles and genres of the ratings' release (synthetic titles for synthetic ratings)."""
    movies = load_movies(data, data_provenance, ratings["movie_id"].to_numpy())
    return movies.assign(movie_id=_prefixed(movies["movie_id"], "movie_"))


def prefix_ids(ratings: pd.DataFrame) -> pd.DataFrame:
    """Turn integer ids into ``user_<id>`` / ``movie_<id>`` strings and drop the timestamp."""
    return pd.DataFrame(
        {
            "user_id": _prefixed(ratings["user_id"], "user_"),
            "movie_id": _prefixed(ratings["movie_id"], "movie_"),
            "rating": ratings["rating"].astype(np.float32),
        }
    )


def split_ratings(
    prefixed_ratings: pd.DataFrame, split: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assign each row to train when a seeded uniform draw is <= train_fraction, else to eval."""
    draws = np.random.default_rng(split["seed"]).uniform(size=len(prefixed_ratings))
    is_train = draws <= split["train_fraction"]
    train = prefixed_ratings[is_train].reset_index(drop=True)
    evaluation = prefixed_ratings[~is_train].reset_index(drop=True)
    logger.info(
        "Split %d ratings into %d train and %d eval", len(draws), len(train), len(evaluation)
    )
    return train, evaluation


def _vocabulary(train_ids: pd.Series, eval_ids: pd.Series, source: str) -> pd.DataFrame:
    """Ids with their training counts, most frequent first, ties by id."""
    counts = train_ids.value_counts(sort=False)
    if source == "all":
        unseen = pd.Index(eval_ids.unique()).difference(counts.index)
        counts = pd.concat([counts, pd.Series(0, index=unseen, dtype=counts.dtype)])
    vocabulary = pd.DataFrame(
        {
            "id": pd.array(counts.index.astype(str), dtype="str"),
            "train_count": counts.to_numpy(dtype=np.int64),
        }
    )
    return vocabulary.sort_values(["train_count", "id"], ascending=[False, True], ignore_index=True)


def build_vocabularies(
    train_ratings: pd.DataFrame, eval_ratings: pd.DataFrame, vocabulary: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build user and movie vocabularies (id, train_count) sorted by count desc, then id.

    ``vocabulary.source: train`` (default) uses training ids only, so eval-only ids are
    out-of-vocabulary: the model maps them to an OOV index with a zero embedding and the
    prediction falls back to the other side and the biases (no eval information leaks into
    the model). ``all`` reproduces the keras-io recipe: train ∪ eval ids, eval-only ids with
    train_count 0, sorted last.
    """
    source = vocabulary["source"]
    if source not in VOCABULARY_SOURCES:
        raise ValueError(
            f"vocabulary.source is {source!r}; use one of {', '.join(VOCABULARY_SOURCES)}."
        )
    users = _vocabulary(train_ratings["user_id"], eval_ratings["user_id"], source)
    movies = _vocabulary(train_ratings["movie_id"], eval_ratings["movie_id"], source)
    logger.info("Vocabularies (%s): %d users, %d movies", source, len(users), len(movies))
    return users, movies
