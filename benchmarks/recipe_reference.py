"""Reference "(a)": the keras-io memory-efficient-embeddings recipe, Keras 3 / TF.

A self-contained re-implementation of the models and the training path of the
keras-io recipe "Memory-efficient embeddings for recommendation systems"
(Khalid Salama, 2021, last modified 2023/11/15), kept as close to the recipe as
Keras 3 allows so that it can serve as the speed/quality reference in a
benchmark. Deliberately *not* idiomatic where the recipe is not:

* ratings go through ``|``-separated CSV files that ``make_csv_dataset``
  re-parses on every epoch;
* string ids are mapped inside the model by ``StringLookup`` layers;
* the MD embedding looks every id up in every block and masks the results;
* the head is ``keras.activations.sigmoid(logits) * 5`` applied to symbolic
  tensors (Keras 3 wraps those ops into the functional graph), and the
  64-dim MD block uses ``layers.Lambda(lambda x: x)`` as its "projection",
  exactly as in the recipe. Neither is serializable without
  ``safe_mode=False``; this module is for benchmarking, not for saving.

Differences from the recipe text, all forced by Keras 3 / kept minimal:

* ``from keras import layers`` / ``keras.layers.StringLookup`` instead of
  ``tensorflow.keras.layers.experimental.preprocessing``;
* the module-level globals (``base_embedding_dim``, vocabularies, ...) are
  function arguments / layer attributes.

Index ranges: the recipe's baseline and QR lookups use ``num_oov_indices=0``,
so ``StringLookup`` returns ``0 .. len(vocab) - 1`` and
``Embedding(input_dim=len(vocab))`` is in range (no ``+1`` needed; an unknown
id would raise in ``StringLookup`` instead). The MD blocks use
``num_oov_indices=1`` with ``Embedding(len(block_vocab) + 1)``.

Parameter counts on MovieLens-1M (6,040 users, 3,706 movies, base dim 64):
baseline 623,744; memory-efficient 117,968 = 15,360 (QR, 2 x 120 x 64) +
102,608 (MD: 401x64 + 1301x32 + 2007x16 + Dense(32->64) + Dense(16->64)).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras import layers

CSV_HEADER = ["user_id", "movie_id", "rating"]
TARGET_FEATURE_NAME = "rating"
# The recipe's memory-efficient sizes, fixed for ml-1m: QR buckets = users // 50, movie blocks
# [top 400, next 1,300, rest] of 3,706 movies.
RECIPE_IDS_PER_BUCKET = 50
RECIPE_BOUNDARIES = (400, 1700)
RECIPE_NUM_MOVIES = 3706


# --------------------------------------------------------------------------- data


def write_recipe_csvs(
    train_df: pd.DataFrame, eval_df: pd.DataFrame, directory: str | Path
) -> tuple[Path, Path]:
    """Write ``train_data.csv`` / ``eval_data.csv`` as the recipe does.

    ``|``-separated, no header, columns ``user_id, movie_id, rating`` (ids are
    the recipe's strings such as ``user_1`` / ``movie_1``, ratings floats).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for df, name in ((train_df, "train_data.csv"), (eval_df, "eval_data.csv")):
        path = directory / name
        frame = df[CSV_HEADER].copy()
        frame["rating"] = frame["rating"].astype(float)
        frame.to_csv(path, index=False, sep="|", header=False)
        paths.append(path)
    return paths[0], paths[1]


def get_dataset_from_csv(
    csv_file_path: str | Path, batch_size: int = 128, shuffle: bool = True
) -> tf.data.Dataset:
    """The recipe's input pipeline: CSV text re-parsed on every iteration."""
    return tf.data.experimental.make_csv_dataset(
        str(csv_file_path),
        batch_size=batch_size,
        column_names=CSV_HEADER,
        label_name=TARGET_FEATURE_NAME,
        num_epochs=1,
        header=False,
        field_delim="|",
        shuffle=shuffle,
    )


# ------------------------------------------------------------------------- models


def embedding_encoder(
    vocabulary: Sequence[str],
    embedding_dim: int,
    num_oov_indices: int = 0,
    name: str | None = None,
) -> keras.Sequential:
    """``StringLookup`` + ``Embedding`` as one small Sequential, as in the recipe."""
    return keras.Sequential(
        [
            layers.StringLookup(
                vocabulary=list(vocabulary),
                mask_token=None,
                num_oov_indices=num_oov_indices,
            ),
            layers.Embedding(
                input_dim=len(vocabulary) + num_oov_indices,
                output_dim=embedding_dim,
            ),
        ],
        name=f"{name}_embedding" if name else None,
    )


def _rating_head(
    user_embedding: keras.KerasTensor, movie_embedding: keras.KerasTensor
) -> keras.KerasTensor:
    # Recipe: dot similarity, then sigmoid(logits) * 5 on symbolic tensors.
    logits = layers.Dot(axes=1, name="dot_similarity")([user_embedding, movie_embedding])
    return keras.activations.sigmoid(logits) * 5


def build_recipe_baseline(
    user_vocabulary: Sequence[str],
    movie_vocabulary: Sequence[str],
    base_embedding_dim: int = 64,
) -> keras.Model:
    """The recipe's baseline: one full 64-dim table per side, dot, sigmoid * 5."""
    user_input = layers.Input(name="user_id", shape=(), dtype="string")
    user_embedding = embedding_encoder(
        vocabulary=user_vocabulary, embedding_dim=base_embedding_dim, name="user"
    )(user_input)
    movie_input = layers.Input(name="movie_id", shape=(), dtype="string")
    movie_embedding = embedding_encoder(
        vocabulary=movie_vocabulary, embedding_dim=base_embedding_dim, name="movie"
    )(movie_input)
    prediction = _rating_head(user_embedding, movie_embedding)
    return keras.Model(inputs=[user_input, movie_input], outputs=prediction, name="baseline_model")


class QREmbedding(layers.Layer):
    """Recipe's quotient-remainder embedding: q-table row * r-table row."""

    def __init__(
        self,
        vocabulary: Sequence[str],
        embedding_dim: int,
        num_buckets: int,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.num_buckets = num_buckets
        self.index_lookup = layers.StringLookup(
            vocabulary=list(vocabulary), mask_token=None, num_oov_indices=0
        )
        self.q_embeddings = layers.Embedding(num_buckets, embedding_dim)
        self.r_embeddings = layers.Embedding(num_buckets, embedding_dim)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        embedding_index = self.index_lookup(inputs)
        quotient_index = tf.math.floordiv(embedding_index, self.num_buckets)
        remainder_index = tf.math.floormod(embedding_index, self.num_buckets)
        quotient_embedding = self.q_embeddings(quotient_index)
        remainder_embedding = self.r_embeddings(remainder_index)
        return quotient_embedding * remainder_embedding


class MDEmbedding(layers.Layer):
    """Recipe's mixed-dimension embedding.

    Every id is looked up in *every* block (``num_oov_indices=1``, so ids of
    other blocks hit the OOV row), projected to the base dim, masked by block
    membership (a ``StaticHashTable`` id -> block, as in the recipe) and summed.
    """

    def __init__(
        self,
        blocks_vocabulary: Sequence[Sequence[str]],
        blocks_embedding_dims: Sequence[int],
        base_embedding_dim: int,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.num_blocks = len(blocks_vocabulary)
        self.base_embedding_dim = base_embedding_dim

        keys: list[str] = []
        values: list[int] = []
        for block_idx, block_vocab in enumerate(blocks_vocabulary):
            keys.extend(block_vocab)
            values.extend([block_idx] * len(block_vocab))
        self.vocab_to_block = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(keys, dtype=tf.string), tf.constant(values, dtype=tf.int32)
            ),
            default_value=-1,
        )

        self.block_embedding_encoders = []
        self.block_embedding_projectors = []
        for vocabulary, embedding_dim in zip(blocks_vocabulary, blocks_embedding_dims):
            self.block_embedding_encoders.append(
                embedding_encoder(vocabulary, embedding_dim, num_oov_indices=1)
            )
            if embedding_dim == base_embedding_dim:
                # Recipe: identity "projection" for the full-dimension block.
                self.block_embedding_projectors.append(layers.Lambda(lambda x: x))
            else:
                self.block_embedding_projectors.append(layers.Dense(units=base_embedding_dim))

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        block_indices = self.vocab_to_block.lookup(inputs)
        embeddings = tf.zeros(shape=(tf.shape(inputs)[0], self.base_embedding_dim))
        for idx in range(self.num_blocks):
            block_embeddings = self.block_embedding_encoders[idx](inputs)
            block_embeddings = self.block_embedding_projectors[idx](block_embeddings)
            mask = tf.expand_dims(tf.cast(block_indices == idx, tf.float32), 1)
            embeddings += block_embeddings * mask
        return embeddings

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        return (*input_shape, self.base_embedding_dim)


def recipe_movie_blocks(
    movie_frequencies_sorted_vocab: Sequence[str],
    boundaries: Sequence[int] = RECIPE_BOUNDARIES,
) -> list[list[str]]:
    """Recipe's popularity blocks: top 400, next 1,300, the rest (or other ``boundaries``)."""
    vocab = list(movie_frequencies_sorted_vocab)
    first, second = boundaries
    return [vocab[:first], vocab[first:second], vocab[second:]]


def check_user_buckets(num_users: int, num_buckets: int | None = None) -> None:
    """Refuse a bucket count (default the recipe's ``num_users // 50``) that cannot index every user."""
    num_buckets = num_users // 50 if num_buckets is None else num_buckets
    if num_buckets == 0 or (num_users - 1) // num_buckets >= num_buckets:
        # The recipe's rule only covers every index when len(vocab) // 50
        # squared exceeds the vocabulary (>= ~2,500 users; ML-1M: 120 buckets,
        # quotient <= 50). Below that the quotient lookup is out of range
        # (an error on CPU, silently zero rows on GPU), so fail early.
        raise ValueError(
            f"QR with num_buckets = {num_buckets} cannot index {num_users} users; the recipe's "
            "num_users // 50 rule needs >= 2,500 users."
        )


def recipe_sizes(num_users: int, num_movies: int, *, scale: bool = True) -> dict[str, Any]:
    """QR bucket count and MD block boundaries: the recipe's, or scaled where they cannot apply.

    On smaller data (ml-100k: 943 users, 1,682 movies) ``users // 50`` buckets cannot index every
    user and a 1,700-movie boundary leaves the last block empty. ``scale`` then uses
    ``max(users // 50, ceil(sqrt(users)))`` buckets (both tables that many rows, as the recipe
    sizes them) and boundaries at the recipe's shares of the movies (400 / 3,706 and
    1,700 / 3,706). ``rule`` says which applied.
    """
    buckets = num_users // RECIPE_IDS_PER_BUCKET
    fits = buckets > 0 and (num_users - 1) // buckets < buckets
    if fits and num_movies > RECIPE_BOUNDARIES[-1]:
        return {"rule": "recipe", "num_buckets": buckets, "boundaries": list(RECIPE_BOUNDARIES)}
    if not scale:
        raise ValueError(
            f"the recipe's sizes (users // 50 buckets, movie blocks 400 / 1,300 / rest) do not fit "
            f"{num_users:,} users and {num_movies:,} movies."
        )
    buckets = max(buckets, math.isqrt(num_users - 1) + 1)
    boundaries = [max(1, round(num_movies * b / RECIPE_NUM_MOVIES)) for b in RECIPE_BOUNDARIES]
    if not boundaries[0] < boundaries[1] < num_movies:
        raise ValueError(f"{num_movies} movies are too few for three popularity blocks.")
    return {"rule": "scaled", "num_buckets": buckets, "boundaries": boundaries}


def build_recipe_memory_efficient(
    user_vocabulary: Sequence[str],
    movie_vocabulary: Sequence[str],
    movie_frequencies_sorted_vocab: Sequence[str],
    base_embedding_dim: int = 64,
    *,
    num_buckets: int | None = None,
    boundaries: Sequence[int] = RECIPE_BOUNDARIES,
) -> keras.Model:
    """The recipe's memory-efficient model: QR users, MD movies (64/32/16).

    ``movie_vocabulary`` is accepted for signature symmetry; as in the recipe,
    the MD blocks are built from the popularity-sorted vocabulary only.
    ``num_buckets`` (default the recipe's ``users // 50``) and ``boundaries`` come from
    :func:`recipe_sizes` on data the recipe's fixed sizes do not fit.
    """
    del movie_vocabulary  # the recipe only uses the sorted vocabulary here
    if num_buckets is None:
        num_buckets = len(user_vocabulary) // RECIPE_IDS_PER_BUCKET
    check_user_buckets(len(user_vocabulary), num_buckets)
    user_input = layers.Input(name="user_id", shape=(), dtype="string")
    user_embedding = QREmbedding(
        vocabulary=user_vocabulary,
        embedding_dim=base_embedding_dim,
        num_buckets=num_buckets,
        name="user_embedding",
    )(user_input)
    movie_input = layers.Input(name="movie_id", shape=(), dtype="string")
    movie_embedding = MDEmbedding(
        blocks_vocabulary=recipe_movie_blocks(movie_frequencies_sorted_vocab, boundaries),
        blocks_embedding_dims=[64, 32, 16],
        base_embedding_dim=base_embedding_dim,
        name="movie_embedding",
    )(movie_input)
    prediction = _rating_head(user_embedding, movie_embedding)
    # The recipe names this model "baseline_model" too; a distinct name here.
    return keras.Model(
        inputs=[user_input, movie_input],
        outputs=prediction,
        name="memory_efficient_model",
    )


# ----------------------------------------------------------------------- training


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds per epoch (training + validation of that epoch)."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch_seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._start)


def train_recipe(
    model: keras.Model,
    train_csv: str | Path,
    eval_csv: str | Path,
    epochs: int = 3,
    batch_size: int = 128,
    *,
    verbose: int | str = "auto",
) -> dict[str, Any]:
    """The recipe's ``run_experiment``: Adam(1e-3), MSE, MAE, fit on CSV datasets.

    Returns ``epoch_seconds`` (the first includes tracing), ``history`` (the
    ``History.history`` dict), ``val_mae`` and ``val_mse`` of the last epoch.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.001),
        loss=keras.losses.MeanSquaredError(),
        metrics=[keras.metrics.MeanAbsoluteError(name="mae")],
        steps_per_execution=1,
    )
    train_dataset = get_dataset_from_csv(train_csv, batch_size)
    eval_dataset = get_dataset_from_csv(eval_csv, batch_size, shuffle=False)
    timer = EpochTimer()
    history = model.fit(
        train_dataset,
        epochs=epochs,
        validation_data=eval_dataset,
        callbacks=[timer],
        verbose=verbose,
    )
    return {
        "epoch_seconds": timer.epoch_seconds,
        "history": history.history,
        "val_mae": float(history.history["val_mae"][-1]),
        "val_mse": float(history.history["val_loss"][-1]),
    }


def read_ratings(path: str | Path) -> pd.DataFrame:
    """The recipe's ``pd.read_csv(ratings.dat, sep="::")`` on a zip, a folder or a ratings file.

    ml-100k's ``u.data`` is tab-separated; every other release's ratings file uses ``::``.
    """
    path = Path(path)
    names = ["user_id", "movie_id", "rating", "unix_timestamp"]
    members = ("ratings.dat", "u.data", "ratings.csv")
    if path.is_dir():
        path = next(f for m in members for f in sorted(path.rglob(m)))
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            member = next(n for n in archive.namelist() if n.rsplit("/", 1)[-1] in members)
            with archive.open(member) as handle:
                return _read_ratings_text(io.TextIOWrapper(handle, "latin-1"), member, names)
    with open(path, encoding="latin-1") as handle:
        return _read_ratings_text(handle, path.name, names)


def _read_ratings_text(handle: Any, name: str, names: list[str]) -> pd.DataFrame:
    if name.endswith("u.data"):
        return pd.read_csv(handle, sep="\t", names=names)
    if name.endswith(".csv"):
        return pd.read_csv(handle).set_axis(names, axis=1)
    return pd.read_csv(handle, sep="::", names=names, engine="python")


def run_recipe_script(
    ratings_path: str | Path, workdir: str | Path, epochs: int, batch_size: int, seed: int
) -> dict[str, Any]:
    """The recipe's whole script: read, prepare, split, write CSVs, train and validate both models.

    Its steps, in its order; only the split is seeded (``seed``) so that reruns compare.
    """
    ratings_data = read_ratings(ratings_path)
    ratings_data["movie_id"] = ratings_data["movie_id"].apply(lambda x: f"movie_{x}")
    ratings_data["user_id"] = ratings_data["user_id"].apply(lambda x: f"user_{x}")
    ratings_data["rating"] = ratings_data["rating"].apply(float)
    del ratings_data["unix_timestamp"]
    random_selection = np.random.default_rng(seed).random(len(ratings_data.index)) <= 0.85
    train_csv, eval_csv = write_recipe_csvs(
        ratings_data[random_selection], ratings_data[~random_selection], workdir
    )
    movie_vocabulary = list(ratings_data.movie_id.unique())
    user_vocabulary = list(ratings_data.user_id.unique())
    movie_frequencies = ratings_data["movie_id"].value_counts()
    sorted_movies = list(movie_frequencies.keys())
    sizes = recipe_sizes(len(user_vocabulary), len(movie_vocabulary))
    results = {"memory_efficient_sizes": sizes}
    for name, model in (
        ("baseline", build_recipe_baseline(user_vocabulary, movie_vocabulary)),
        (
            "memory_efficient",
            build_recipe_memory_efficient(
                user_vocabulary,
                movie_vocabulary,
                sorted_movies,
                num_buckets=sizes["num_buckets"],
                boundaries=sizes["boundaries"],
            ),
        ),
    ):
        result = train_recipe(model, train_csv, eval_csv, epochs=epochs, batch_size=batch_size)
        results[name] = {"val_mae": result["val_mae"], "epoch_seconds": result["epoch_seconds"]}
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``python benchmarks/recipe_reference.py --ratings PATH``: the recipe's whole script."""
    parser = argparse.ArgumentParser(description="The keras-io recipe's whole script.")
    parser.add_argument("--ratings", type=Path, required=True, help="zip, folder or ratings file")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42, help="seed of the 85/15 split")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="recipe_") as workdir:
        results = run_recipe_script(args.ratings, workdir, args.epochs, args.batch_size, args.seed)
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main()
