"""Scoring and top-K recommendation with a trained string-id model."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

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
    """
    candidates = movie_vocabulary["id"].astype(str)
    if seen_ratings is not None:
        seen = seen_ratings.loc[seen_ratings["user_id"] == user_id, "movie_id"]
        candidates = candidates[~candidates.isin(seen)]
    predicted = score(model, [user_id] * len(candidates), candidates.tolist())
    order = np.argsort(-predicted, kind="stable")[:top_k]
    top = pd.DataFrame(
        {"movie_id": candidates.to_numpy()[order], "predicted_rating": predicted[order]}
    ).reset_index(drop=True)
    return top if movies is None else with_titles(top, movies)
