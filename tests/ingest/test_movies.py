"""Movie titles and genres: each release's format, read beside its ratings."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from memory_efficient_embeddings.ingest import RELEASES
from memory_efficient_embeddings.ingest.movies import (
    MOVIES_FILES,
    MalformedMoviesError,
    load_movies,
    parse_movies_bytes,
)

# Two lines of ml-100k's u.item as published (latin-1): id|title|date|video date|URL|19 flags.
U_ITEM = (
    "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)"
    "|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
    "1153|Misérables, Les (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Mis%E9rables"
    "|0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|1|0\n"
    "267|unknown||||1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
).encode("latin-1")


def _ml100k_zip(directory: Path) -> Path:
    path = directory / "ml-100k.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ml-100k/u.data", "1\t1\t5\t100\n2\t1153\t3\t101\n")
        archive.writestr("ml-100k/u.item", U_ITEM)
    return path


def test_u_item_is_read_as_latin_1_with_genres_from_its_flags(tmp_path: Path) -> None:
    archive = _ml100k_zip(tmp_path)
    data = {"dataset": "ml-100k", "path": str(archive)}
    movies = load_movies(data, {"source": "movielens", "dataset": "ml-100k"}, np.array([1]))
    assert movies["movie_id"].tolist() == [1, 1153, 267]
    assert movies["title"].tolist() == ["Toy Story (1995)", "Misérables, Les (1995)", "unknown"]
    # Flags 4-6 of u.genre's order are Animation, Children's, Comedy; 9 and 18 Drama and War.
    assert movies["genres"].tolist() == ["Animation|Children's|Comedy", "Drama|War", "unknown"]


def test_movies_dat_and_movies_csv_are_parsed_with_their_own_separators() -> None:
    dat = "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Jumanji (1995)::\n"
    movies = parse_movies_bytes(dat.encode("latin-1"), "ml-1m", "movies.dat")
    assert movies["title"].tolist() == ["Toy Story (1995)", "Jumanji (1995)"]
    assert movies["genres"].tolist() == ["Animation|Children's|Comedy", "(no genres listed)"]
    csv_text = 'movieId,title,genres\n11,"American President, The (1995)",Comedy|Drama|Romance\n'
    movies = parse_movies_bytes(csv_text.encode(), "ml-20m", "movies.csv")
    assert movies.iloc[0].tolist() == [11, "American President, The (1995)", "Comedy|Drama|Romance"]


def test_a_malformed_line_is_named_with_its_file_and_line() -> None:
    with pytest.raises(MalformedMoviesError, match=r"movies.dat, line 2: expected 3 fields"):
        parse_movies_bytes(b"1::A (1995)::Drama\n2::B (1996)\n", "ml-1m", "movies.dat")


def test_every_release_has_a_movies_file() -> None:
    assert set(MOVIES_FILES) == set(RELEASES)


def test_synthetic_ratings_get_synthetic_titles() -> None:
    movies = load_movies({}, {"source": "synthetic"}, np.array([3, 1, 3]))
    assert movies["movie_id"].tolist() == [1, 3]
    assert movies["title"].tolist() == ["Synthetic movie 1", "Synthetic movie 3"]
