"""The saved model's string-id front: large batches by default, clear errors for bad inputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from memory_efficient_embeddings.embeddings import build_rating_model, with_string_ids
from memory_efficient_embeddings.embeddings.models import StringIdModel
from memory_efficient_embeddings.modeling.training import score

USERS = [f"user_{i}" for i in range(5)]
MOVIES = [f"movie_{i}" for i in range(7)]


@pytest.fixture(scope="module")
def model() -> keras.Model:
    keras.utils.set_random_seed(0)
    rating_model = build_rating_model(5, 7, {"type": "full"}, {"type": "full"}, 3, use_biases=True)
    return with_string_ids(rating_model, USERS, MOVIES)


def test_predict_uses_large_batches_unless_told(model, monkeypatch) -> None:
    seen = []
    original = keras.Model.predict

    def spy(self, x, *args, **kwargs):
        seen.append(kwargs.get("batch_size"))
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "predict", spy)
    ids = {"user_id": ["user_1"] * 3, "movie_id": ["movie_1", "movie_2", "movie_3"]}
    model.predict(ids, verbose=0)
    model.predict(ids, batch_size=2, verbose=0)
    assert seen == [StringIdModel.default_predict_batch_size, 2]
    assert StringIdModel.default_predict_batch_size >= 65_536


def test_batching_does_not_change_predictions(model) -> None:
    users = [USERS[i % 5] for i in range(50)]
    movies = [MOVIES[i % 7] for i in range(50)]
    ids = {"user_id": users, "movie_id": movies}
    np.testing.assert_allclose(
        model.predict(ids, verbose=0), model.predict(ids, batch_size=3, verbose=0), rtol=1e-6
    )
    np.testing.assert_allclose(
        score(model, users, movies, batch_size=7),
        model.predict(ids, verbose=0).reshape(-1),
        rtol=1e-6,
    )


def test_empty_input_is_a_clear_error(model) -> None:
    with pytest.raises(ValueError, match=r"predict got no ids \(user_id and movie_id are empty\)"):
        model.predict({"user_id": [], "movie_id": []}, verbose=0)


def test_unequal_lengths_are_a_clear_error(model) -> None:
    with pytest.raises(ValueError, match="user_id has 2 ids but movie_id has 1"):
        model.predict({"user_id": ["user_1", "user_2"], "movie_id": ["movie_1"]}, verbose=0)
    with pytest.raises(ValueError, match="user_id has 2 ids but movie_id has 1: score takes"):
        score(model, ["user_1", "user_2"], ["movie_1"])


def test_missing_or_unknown_keys_are_a_clear_error(model) -> None:
    with pytest.raises(ValueError, match=r"missing: \['movie_id'\]"):
        model.predict({"user_id": ["user_1"]}, verbose=0)
    with pytest.raises(ValueError, match=r"unknown keys: \['movie'\]"):
        model.predict({"user_id": ["user_1"], "movie": ["movie_1"]}, verbose=0)
