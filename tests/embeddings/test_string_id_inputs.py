"""A saved string-id model takes what a user naturally passes, or says what it takes."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.embeddings import build_rating_model, with_string_ids

# Runs on JAX too in CI (`make test`): see pyproject.toml's markers.
pytestmark = pytest.mark.both_backends

USERS = ["user_1", "user_2", "user_3"]
MOVIES = ["movie_10", "movie_20"]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> keras.Model:
    """A string-id model, saved and reloaded as the catalog does."""
    keras.utils.set_random_seed(0)
    inner = build_rating_model(3, 2, {"type": "full"}, {"type": "full"}, 4, use_biases=True)
    path = Path(tmp_path_factory.mktemp("model")) / "model.keras"
    with_string_ids(inner, USERS, MOVIES).save(path)
    return keras.saving.load_model(path)


def _reference(model: keras.Model) -> np.ndarray:
    """Scores from the object arrays Keras has always taken."""
    inputs = {
        "user_id": np.array(["user_2", "user_3", "nobody"], dtype=object),
        "movie_id": np.array(["movie_20", "movie_10", "movie_10"], dtype=object),
    }
    return model.predict(inputs, verbose=0)


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(np.array, id="numpy unicode"),
        pytest.param(list, id="list"),
        pytest.param(lambda ids: pd.Series(ids, dtype="str"), id="pandas str Series"),
        pytest.param(lambda ids: pd.Series(ids, dtype=object), id="pandas object Series"),
        pytest.param(lambda ids: np.array(ids, dtype="S"), id="numpy bytes"),
    ],
)
def test_natural_inputs_score_like_object_arrays(saved_model: keras.Model, convert) -> None:
    inputs = {
        "user_id": convert(["user_2", "user_3", "nobody"]),
        "movie_id": convert(["movie_20", "movie_10", "movie_10"]),
    }
    np.testing.assert_array_equal(saved_model.predict(inputs, verbose=0), _reference(saved_model))


def test_integer_ids_get_a_message_naming_the_prefixed_form(saved_model: keras.Model) -> None:
    with pytest.raises(ValueError, match=r"`user_id` holds numbers .*'user_42'"):
        saved_model.predict({"user_id": np.array([1, 2]), "movie_id": MOVIES}, verbose=0)


def test_a_bare_number_string_is_refused_rather_than_scored_as_unknown(
    saved_model: keras.Model,
) -> None:
    with pytest.raises(ValueError, match=r"`movie_id` holds '10'.*pass 'movie_10'"):
        saved_model.predict({"user_id": ["user_1"], "movie_id": ["10"]}, verbose=0)


def test_string_ids_score_as_their_vocabulary_indices(saved_model: keras.Model) -> None:
    # Vocabulary positions by hand (unknown -> the OOV index, len(vocabulary)), scored by the
    # integer model itself: the lookup, in the graph or in numpy, must give exactly these.
    by_index = saved_model.get_layer("rating_model")(
        {"user_id": np.array([1, 2, 3], "int32"), "movie_id": np.array([1, 0, 0], "int32")}
    )
    by_string = saved_model(
        {
            "user_id": np.array(["user_2", "user_3", "nobody"], dtype=object),
            "movie_id": np.array(["movie_20", "movie_10", "movie_10"], dtype=object),
        }
    )
    np.testing.assert_allclose(np.asarray(by_string), np.asarray(by_index), rtol=1e-6)
    np.testing.assert_allclose(_reference(saved_model), np.asarray(by_index), rtol=1e-6)
    assert len(set(np.asarray(by_index).round(6).tolist())) == 3  # the three pairs differ
