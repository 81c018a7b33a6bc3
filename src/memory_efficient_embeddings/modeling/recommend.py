"""Scoring and top-K recommendation with a trained string-id model."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pandas as pd

from memory_efficient_embeddings.embeddings.id_inputs import PredictionInputError
from memory_efficient_embeddings.modeling.training import score

__all__ = ["recommend", "score"]


def with_titles(frame: pd.DataFrame, movies: pd.DataFrame) -> pd.DataFrame:
    """Add each movie's title and genres (from the `movies` catalog entry) after its id."""
    described = frame.merge(
        movies[["movie_id", "title", "genres"]], on="movie_id", how="left", validate="many_to_one"
    )
    described["title"] = described["title"].fillna("(unknown title)")
    described["genres"] = described["genres"].fillna("")
    first = ["movie_id", "title", "genres"]
    return described[first + [c for c in frame.columns if c not in first]]


def _check_arguments(user_id: Any, movie_vocabulary: Any, seen_ratings: Any, top_k: Any) -> None:
    """One clear PredictionInputError for an argument `recommend` cannot use."""
    if not isinstance(user_id, str):
        raise PredictionInputError(
            f"recommend takes one user id as a str (e.g. 'user_42'); got {user_id!r} "
            f"({type(user_id).__name__}). To score many pairs, use score(model, users, movies)."
        )
    if not isinstance(movie_vocabulary, pd.DataFrame) or "id" not in movie_vocabulary:
        raise PredictionInputError(
            "recommend's movie_vocabulary must be the catalog's `movie_vocabulary` (a DataFrame "
            f"with an `id` column of movie ids); got {type(movie_vocabulary).__name__}"
            + (
                f" with columns {list(movie_vocabulary.columns)[:10]}"
                if hasattr(movie_vocabulary, "columns")
                else ""
            )
            + "."
        )
    if seen_ratings is not None and (
        not isinstance(seen_ratings, pd.DataFrame)
        or not {"user_id", "movie_id"} <= set(seen_ratings.columns)
    ):
        raise PredictionInputError(
            "recommend's seen_ratings must be a ratings DataFrame with columns user_id and "
            "movie_id (e.g. the catalog's `train_ratings`), or None."
        )
    if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
        raise PredictionInputError(f"recommend's top_k must be a positive int; got {top_k!r}.")


def recommend(
    model: keras.Model,
    user_id: str,
    movie_vocabulary: pd.DataFrame,
    seen_ratings: pd.DataFrame | None = None,
    top_k: int = 10,
    movies: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The top-K movies for one raw user id, excluding movies the user has already rated.

    With `movies` (the catalog's titles and genres), each row also says what the movie is.
    The arguments are checked first; the ids themselves by the model (see ``StringIdModel``).
    """
    _check_arguments(user_id, movie_vocabulary, seen_ratings, top_k)
    candidates = movie_vocabulary["id"].astype(str)
    if seen_ratings is not None:
        seen = seen_ratings.loc[seen_ratings["user_id"] == user_id, "movie_id"]
        candidates = candidates[~candidates.isin(seen)]
    # A user who has rated every movie gets an empty table (score takes no pairs as none).
    predicted = score(model, [user_id] * len(candidates), candidates.to_numpy(dtype=object))
    order = np.argsort(-predicted, kind="stable")[:top_k]
    top = pd.DataFrame(
        {"movie_id": candidates.to_numpy()[order], "predicted_rating": predicted[order]}
    ).reset_index(drop=True)
    return top if movies is None else with_titles(top, movies)
