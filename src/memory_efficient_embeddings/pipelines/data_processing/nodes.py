"""Nodes of the data_processing pipeline: small pure functions over pandas DataFrames."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from memory_efficient_embeddings.ingest import check_output_ranges, load_ratings
from memory_efficient_embeddings.ingest.movies import load_movies

logger = logging.getLogger(__name__)

VOCABULARY_SOURCES = ("train", "all")
# How a model scores a row whose user or item has no training rating, by `vocabulary.source`.
UNSEEN_ID_FALLBACK = {
    "train": (
        "an id unseen in training is out of vocabulary: its embedding and its bias are zero, so "
        "the row is scored by the other side's bias plus the global bias (the global bias alone "
        "when both ids are unseen), through the output activation"
    ),
    "all": (
        "an id unseen in training has a vocabulary row (train_count 0) that training never "
        "updates: its initial embedding and a zero bias, with the other side's bias and the "
        "global bias"
    ),
}


def ingest_ratings(data: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Load the ratings `data.source` names (MovieLens, synthetic, Ciao .mat, table) with provenance."""
    return load_ratings(data)


def check_output_range(data_provenance: dict[str, Any], **model_outputs: dict[str, Any]) -> None:
    """Refuse, before any training, ratings outside a model's sigmoid output range."""
    check_output_ranges(data_provenance, model_outputs)


def _prefixed(ids: pd.Series, prefix: str) -> pd.Series:
    """``prefix<id>`` strings, formatted once per distinct id and gathered (fast at 25M rows)."""
    codes, uniques = pd.factorize(ids, sort=False)
    labels = pd.array([f"{prefix}{i}" for i in uniques.tolist()], dtype="str")
    return pd.Series(labels.take(codes), index=ids.index, name=ids.name)


def ingest_movies(
    data: dict[str, Any], data_provenance: dict[str, Any], ratings: pd.DataFrame
) -> pd.DataFrame:
    """Item titles and genres: MovieLens titles, synthetic ones, or the ids where there are none."""
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


class EmptySplitError(ValueError):
    """A split of the ratings came out empty; the message names it, the rows and what to do."""


def _refuse_empty_splits(
    total: int, train: int, validation: int, evaluation: int, split: dict[str, Any]
) -> None:
    """Stop at the split, naming each empty split and the parameter that would fill it."""
    train_fraction, validation_fraction = split["train_fraction"], split["validation_fraction"]
    remedies = {
        "train": f"raise split.train_fraction ({train_fraction}) or lower "
        f"split.validation_fraction ({validation_fraction})",
        "validation": f"raise split.validation_fraction ({validation_fraction})",
        "eval": f"lower split.train_fraction ({train_fraction})",
    }
    if validation_fraction == 0:  # the recipe's mode: validation is the eval split itself
        remedies["validation"] = remedies["eval"]
    rows = {"train": train, "validation": validation, "eval": evaluation}
    empty = [name for name, count in rows.items() if count == 0]
    if not empty:
        return
    what = " and ".join(f"the {name} split" for name in empty)
    raise EmptySplitError(
        f"{what[0].upper()}{what[1:]} {'is' if len(empty) == 1 else 'are'} empty: splitting "
        f"{total} ratings (split.seed {split['seed']}) gave {train} train, {validation} "
        f"validation and {evaluation} eval rows, and training needs every split. Use a ratings "
        "file with more ratings (data.path / data.dataset), or "
        + " and ".join(dict.fromkeys(remedies[name] for name in empty))
        + "."
    )


def split_ratings(
    prefixed_ratings: pd.DataFrame, split: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split rows 85/15 into a training part and eval, then carve validation from the training part.

    A row is in the training part when a seeded uniform draw is <= ``train_fraction``; a second
    draw from the same generator moves ``validation_fraction`` of that part into the validation
    split, which early stopping and every selection read. The eval split is only ever scored.
    ``validation_fraction: 0`` has no validation split and validates on the eval split, as the
    keras-io recipe does (``--env=recipe``): selection then sees the split it is graded on.
    """
    rng = np.random.default_rng(split["seed"])
    is_training_part = rng.uniform(size=len(prefixed_ratings)) <= split["train_fraction"]
    training_part = prefixed_ratings[is_training_part].reset_index(drop=True)
    evaluation = prefixed_ratings[~is_training_part].reset_index(drop=True)
    fraction = split["validation_fraction"]
    if fraction == 0:
        logger.warning(
            "split.validation_fraction is 0: early stopping and selection read the eval split, "
            "as the keras-io recipe does, so eval figures are optimistic."
        )
        train, validation = training_part, evaluation.copy()
    else:
        is_validation = rng.uniform(size=len(training_part)) < fraction
        train = training_part[~is_validation].reset_index(drop=True)
        validation = training_part[is_validation].reset_index(drop=True)
    _refuse_empty_splits(len(prefixed_ratings), len(train), len(validation), len(evaluation), split)
    logger.info(
        "Split %d ratings into %d train, %d validation and %d eval",
        len(prefixed_ratings),
        len(train),
        len(validation),
        len(evaluation),
    )
    return train, validation, evaluation


def _unseen_rows(ratings: pd.DataFrame, train: pd.DataFrame) -> dict[str, int]:
    """Rows of a split whose user, item or either has no training rating."""
    unseen_user = ~ratings["user_id"].isin(train["user_id"].unique())
    unseen_movie = ~ratings["movie_id"].isin(train["movie_id"].unique())
    return {
        "rows": len(ratings),
        "unseen_user_rows": int(unseen_user.sum()),
        "unseen_movie_rows": int(unseen_movie.sum()),
        "unseen_either_rows": int((unseen_user | unseen_movie).sum()),
    }


def describe_splits(
    train_ratings: pd.DataFrame,
    validation_ratings: pd.DataFrame,
    eval_ratings: pd.DataFrame,
    split: dict[str, Any],
    vocabulary: dict[str, Any],
) -> dict[str, Any]:
    """Rows per split, how many validation and eval rows have an id unseen in training, and how
    the models score those rows."""
    return {
        "train_fraction": split["train_fraction"],
        "validation_fraction": split["validation_fraction"],
        "seed": split["seed"],
        # The recipe's mode: selection reads the eval split (see split_ratings).
        "validation_is_eval": split["validation_fraction"] == 0,
        "train": {"rows": len(train_ratings)},
        "validation": _unseen_rows(validation_ratings, train_ratings),
        "eval": _unseen_rows(eval_ratings, train_ratings),
        "unseen_id_fallback": UNSEEN_ID_FALLBACK[vocabulary["source"]],
    }


def _vocabulary(train_ids: pd.Series, held_out_ids: pd.Series, source: str) -> pd.DataFrame:
    """Ids with their training counts, most frequent first, ties by id."""
    counts = train_ids.value_counts(sort=False)
    if source == "all":
        unseen = pd.Index(held_out_ids.unique()).difference(counts.index)
        counts = pd.concat([counts, pd.Series(0, index=unseen, dtype=counts.dtype)])
    vocabulary = pd.DataFrame(
        {
            "id": pd.array(counts.index.astype(str), dtype="str"),
            "train_count": counts.to_numpy(dtype=np.int64),
        }
    )
    return vocabulary.sort_values(["train_count", "id"], ascending=[False, True], ignore_index=True)


def build_vocabularies(
    train_ratings: pd.DataFrame,
    validation_ratings: pd.DataFrame,
    eval_ratings: pd.DataFrame,
    vocabulary: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build user and item vocabularies (id, train_count) sorted by count desc, then id.

    ``vocabulary.source: train`` (default) uses training ids only, so ids seen only in the
    validation or eval split are out-of-vocabulary: the model maps them to an OOV index with a
    zero embedding and the prediction falls back to the other side and the biases (no held-out
    information leaks into the model). ``all`` reproduces the keras-io recipe: ids of every
    split, those without a training rating with train_count 0, sorted last.
    """
    source = vocabulary["source"]
    if source not in VOCABULARY_SOURCES:
        raise ValueError(
            f"vocabulary.source is {source!r}; use one of {', '.join(VOCABULARY_SOURCES)}."
        )
    held_out = pd.concat([validation_ratings, eval_ratings], ignore_index=True)
    users = _vocabulary(train_ratings["user_id"], held_out["user_id"], source)
    movies = _vocabulary(train_ratings["movie_id"], held_out["movie_id"], source)
    logger.info("Vocabularies (%s): %d users, %d items", source, len(users), len(movies))
    return users, movies
