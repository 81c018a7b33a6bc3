"""Recommendations name the movies: titles and genres beside the ids."""

from __future__ import annotations

import pandas as pd

from memory_efficient_embeddings.modeling.recommend import with_titles

MOVIES = pd.DataFrame(
    {
        "movie_id": ["movie_1", "movie_2"],
        "title": ["Toy Story (1995)", "GoldenEye (1995)"],
        "genres": ["Animation|Children's|Comedy", "Action|Adventure|Thriller"],
    }
)


def test_each_id_gets_its_own_title_and_unknown_ids_say_so() -> None:
    top = pd.DataFrame(
        {"movie_id": ["movie_2", "movie_9", "movie_1"], "predicted_rating": [4.5, 4.0, 3.5]}
    )
    described = with_titles(top, MOVIES)
    assert described.columns.tolist() == ["movie_id", "title", "genres", "predicted_rating"]
    assert described["title"].tolist() == [
        "GoldenEye (1995)",
        "(unknown title)",
        "Toy Story (1995)",
    ]
    assert described["genres"].tolist()[0] == "Action|Adventure|Thriller"
    assert described["predicted_rating"].tolist() == [4.5, 4.0, 3.5]  # order kept
