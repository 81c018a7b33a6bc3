"""Titles of the items: a MovieLens release's movie titles and genres (u.item, movies.dat or
movies.csv), made-up titles for synthetic ratings, and the ids themselves where there are none
(Ciao/Epinions, tables, a bare MovieLens ratings file)."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .archive import RatingsLocation, find_local, read_member_bytes, resolve_user_path
from .errors import MemberNotFoundError, MovieLensError
from .releases import Release, get_release

logger = logging.getLogger(__name__)

MOVIE_COLUMNS = ("movie_id", "title", "genres")
NO_GENRES = "(no genres listed)"  # MovieLens's own words for a movie without genres

# ml-100k's u.genre, in the order of u.item's 19 genre flags.
ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)


class MalformedMoviesError(MovieLensError):
    """The movies file of a release cannot be parsed."""


@dataclass(frozen=True)
class MoviesFile:
    """Where a release keeps its movies and how they are written (from its README)."""

    member: str
    separator: str
    encoding: str
    has_header: bool = False
    genre_flags: tuple[str, ...] | None = None  # ml-100k: one 0/1 column per genre

    @property
    def name(self) -> str:
        """The file's name inside its folder, e.g. ``u.item``."""
        return self.member.rsplit("/", 1)[-1]


MOVIES_FILES: dict[str, MoviesFile] = {
    "ml-100k": MoviesFile("ml-100k/u.item", "|", "latin-1", genre_flags=ML100K_GENRES),
    "ml-1m": MoviesFile("ml-1m/movies.dat", "::", "latin-1"),
    "ml-10m": MoviesFile("ml-10M100K/movies.dat", "::", "utf-8"),
    "ml-20m": MoviesFile("ml-20m/movies.csv", ",", "utf-8", has_header=True),
    "ml-25m": MoviesFile("ml-25m/movies.csv", ",", "utf-8", has_header=True),
}


def _rows(text: str, movies: MoviesFile) -> list[list[str]]:
    """Split the text into fields; CSV files quote titles that hold commas."""
    if movies.separator == ",":
        rows = list(csv.reader(io.StringIO(text)))
    else:
        rows = [line.split(movies.separator) for line in text.splitlines()]
    return rows[1:] if movies.has_header else rows


def parse_movies_bytes(data: bytes, release_name: str, where: str) -> pd.DataFrame:
    """Parse a release's movies file into (movie_id int64, title, genres "A|B")."""
    movies = MOVIES_FILES[release_name]
    try:
        text = data.decode(movies.encoding)
    except UnicodeDecodeError as exc:
        raise MalformedMoviesError(
            f"{where} is not {movies.encoding} text ({exc}). Is it the movies file of "
            f"{release_name}?"
        ) from exc
    ids, titles, genres = [], [], []
    expected = 5 + len(movies.genre_flags) if movies.genre_flags else 3
    for line_number, fields in enumerate(_rows(text, movies), start=1 + movies.has_header):
        if not fields or fields == [""]:
            continue
        if len(fields) != expected or not fields[0].strip().isdigit():
            raise MalformedMoviesError(
                f"{where}, line {line_number}: expected {expected} fields separated by "
                f"{movies.separator!r}, the first an integer movie id; got {len(fields)}: "
                f"{movies.separator.join(fields)[:120]!r}."
            )
        ids.append(int(fields[0]))
        titles.append(fields[1].strip())
        if movies.genre_flags:
            flags = fields[-len(movies.genre_flags) :]
            names = [g for g, flag in zip(movies.genre_flags, flags, strict=True) if flag == "1"]
            genres.append("|".join(names) or NO_GENRES)
        else:
            genres.append(fields[2].strip() or NO_GENRES)
    if not ids:
        raise MalformedMoviesError(f"{where} holds no movies. Is it the right file?")
    return pd.DataFrame(
        {
            "movie_id": np.asarray(ids, dtype=np.int64),
            "title": pd.array(titles, dtype="str"),
            "genres": pd.array(genres, dtype="str"),
        }
    )


def movies_location(ratings: RatingsLocation, release: Release) -> RatingsLocation:
    """The movies file beside a ratings file: same zip, same folder, or same directory."""
    movies = MOVIES_FILES[release.name]
    if ratings.kind == "zip":
        return RatingsLocation(ratings.path, movies.member, "zip")
    if ratings.kind == "folder":
        member = str(Path(ratings.member).with_name(movies.name))
        return RatingsLocation(ratings.path, member, "folder")
    return RatingsLocation(ratings.path.with_name(movies.name), movies.name, "file")


def synthetic_movies(movie_ids: np.ndarray) -> pd.DataFrame:
    """Made-up titles for synthetic ratings, so that nothing reads as a real film."""
    ids = np.unique(np.asarray(movie_ids, dtype=np.int64))
    return pd.DataFrame(
        {
            "movie_id": ids,
            "title": pd.array([f"Synthetic movie {i}" for i in ids.tolist()], dtype="str"),
            "genres": pd.array([NO_GENRES] * len(ids), dtype="str"),
        }
    )


def id_titles(movie_ids: np.ndarray | pd.Series) -> pd.DataFrame:
    """Items labelled by their ids ("item 42"), without genres: for data that has no titles."""
    ids = pd.Series(movie_ids).drop_duplicates().sort_values(ignore_index=True)
    return pd.DataFrame(
        {
            "movie_id": ids,
            "title": pd.array([f"item {i}" for i in ids.tolist()], dtype="str"),
            "genres": pd.array([""] * len(ids), dtype="str"),
        }
    )


def load_movies(
    data: Mapping[str, Any], provenance: Mapping[str, Any], movie_ids: np.ndarray
) -> pd.DataFrame:
    """Titles and genres from the archive the ratings came from; synthetic titles for synthetic
    ratings; the ids as titles where the data has no titles."""
    if provenance.get("source") == "synthetic":
        return synthetic_movies(movie_ids)
    if provenance.get("source") != "movielens":
        logger.info(
            "%s has no item titles: items are labelled by their ids.", provenance.get("file")
        )
        return id_titles(movie_ids)
    release = get_release(provenance.get("dataset") or data.get("dataset", "ml-1m"))
    if data.get("path"):
        ratings = resolve_user_path(data["path"], release)
    else:
        ratings = find_local(release, data.get("raw_dir", "data/01_raw"))
    if ratings is None:
        raise MalformedMoviesError(
            f"The ratings came from {provenance.get('archive')}, but it is no longer in "
            f"{data.get('raw_dir', 'data/01_raw')}: put it back or set data.path."
        )
    location = movies_location(ratings, release)
    try:
        text = read_member_bytes(location)
    except MemberNotFoundError:
        # E.g. data.path is a bare u.data: the ratings are all the models need.
        logger.info(
            "No %s beside the ratings (%s): items are labelled by their ids.",
            MOVIES_FILES[release.name].name,
            location.display,
        )
        return id_titles(movie_ids)
    frame = parse_movies_bytes(text, release.name, location.display)
    logger.info("Loaded %d movie titles from %s", len(frame), location.display)
    return frame
