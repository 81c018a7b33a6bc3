"""Scoring and top-K recommendation with a trained string-id model."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from memory_efficient_embeddings.modeling.training import score

__all__ = ["recommend", "score"]


def recommend(
    model: keras.Model,
    user_id: str,
    movie_vocabulary: pd.DataFrame,
    seen_ratings: pd.DataFrame | None = None,
    top_k: int = 10,
) -> pd.DataFrame:
    """The top-K movies for one raw user id, excluding movies the user has already rated."""
    candidates = movie_vocabulary["id"].astype(str)
    if seen_ratings is not None:
        seen = seen_ratings.loc[seen_ratings["user_id"] == user_id, "movie_id"]
        candidates = candidates[~candidates.isin(seen)]
    predicted = score(model, [user_id] * len(candidates), candidates.tolist())
    order = np.argsort(-predicted, kind="stable")[:top_k]
    return pd.DataFrame(
        {"movie_id": candidates.to_numpy()[order], "predicted_rating": predicted[order]}
    ).reset_index(drop=True)
