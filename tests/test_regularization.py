"""Per-rating L2 on looked-up vectors and biases: the training loss against a hand computation."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.modeling.nodes import assign_blocks, build_model

USERS = pd.DataFrame({"id": ["u0", "u1"], "train_count": [2, 1]})
MOVIES = pd.DataFrame({"id": ["m0", "m1", "m2"], "train_count": [3, 2, 1]})


def _model(embedding_l2: float, bias_l2: float) -> keras.Model:
    params = {
        "name": "tiny",
        "seed": 0,
        "embedding_dim": 2,
        "use_biases": True,
        "embedding_l2": embedding_l2,
        "bias_l2": bias_l2,
        "output": {"activation": "linear"},
        "user_embedding": {"type": "full"},
        "movie_embedding": {"type": "full"},
    }
    model = build_model(assign_blocks(USERS, MOVIES, params, {"popularity_blocks": 1}), params)
    weights = {
        "user_embedding": [[1.0, 2.0], [0.5, -1.0]],
        "movie_embedding": [[3.0, 0.0], [-1.0, 1.0], [2.0, 2.0]],
        "user_bias": [[0.25], [-0.5]],
        "movie_bias": [[1.0], [0.0], [-2.0]],
    }
    for name, values in weights.items():
        model.get_layer(name).set_weights([np.asarray(values, np.float32)])
    return model


# Batch: (u0, m0), (u1, m2), (u0, OOV movie 3), (u1, m1); ratings 4, 1, 2, 0.
INPUTS = {"user_id": np.array([0, 1, 0, 1], np.int32), "movie_id": np.array([0, 2, 3, 1], np.int32)}
RATINGS = np.array([4.0, 1.0, 2.0, 0.0], np.float32)


def _loss(model: keras.Model) -> float:
    model.compile(optimizer="sgd", loss="mse")
    return float(model.evaluate(INPUTS, RATINGS, batch_size=4, verbose=0))


def test_the_loss_adds_l2_of_the_looked_up_rows_per_rating_by_hand() -> None:
    # Predictions: u0·m0 = 3 + 0.25 + 1 = 4.25; u1·m2 = 1 - 2 - 0.5 - 2 = -3.5;
    # u0·OOV = 0 + 0.25 + 0 = 0.25; u1·m1 = -0.5 - 1 - 0.5 + 0 = -2.
    errors = np.array([4.25 - 4, -3.5 - 1, 0.25 - 2, -2 - 0])
    mse = np.mean(errors**2)
    # Squared norms of the looked-up rows, one per rating (the OOV movie is a zero row):
    user_norms = np.array([5.0, 1.25, 5.0, 1.25])
    movie_norms = np.array([9.0, 8.0, 0.0, 2.0])
    user_biases = np.array([0.0625, 0.25, 0.0625, 0.25])
    movie_biases = np.array([1.0, 4.0, 0.0, 0.0])
    expected = (
        mse
        + 0.1 * (user_norms.mean() + movie_norms.mean())
        + 0.01 * (user_biases.mean() + movie_biases.mean())
    )
    assert _loss(_model(0.1, 0.01)) == pytest.approx(expected, rel=1e-5)


def test_without_l2_the_loss_is_the_mse() -> None:
    errors = np.array([0.25, -4.5, -1.75, -2.0])
    assert _loss(_model(0.0, 0.0)) == pytest.approx(np.mean(errors**2), rel=1e-6)


def test_bias_l2_alone_leaves_the_vectors_unregularised() -> None:
    errors = np.array([0.25, -4.5, -1.75, -2.0])
    biases = np.array([0.0625 + 1.0, 0.25 + 4.0, 0.0625, 0.25])
    expected = np.mean(errors**2) + 0.5 * biases.mean()
    assert _loss(_model(0.0, 0.5)) == pytest.approx(expected, rel=1e-6)
