"""Every entry point of a saved string-id model takes what a pandas user passes, or says why not.

The scores are checked against a NumPy oracle over the model's own weights (the dot product of
the looked-up rows plus the biases, through 5 · sigmoid), never against the model's own path.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.embeddings import build_rating_model, with_string_ids
from memory_efficient_embeddings.embeddings.id_inputs import PredictionInputError
from memory_efficient_embeddings.modeling.recommend import recommend, score

USERS = [f"user_{i}" for i in range(1, 6)]
MOVIES = [f"movie_{i}" for i in range(10, 17)]
# Unknown ids (user_99, movie_99) take the zero row and zero bias.
PAIRS = pd.DataFrame(
    {
        "user_id": ["user_2", "user_5", "user_99", "user_1", "user_3"],
        "movie_id": ["movie_16", "movie_10", "movie_12", "movie_99", "movie_10"],
        "rating": [4.0, 3.0, 5.0, 1.0, 2.0],  # a column the model does not read
    }
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> keras.Model:
    """A string-id model with random biases, saved and reloaded with safe mode on."""
    keras.utils.set_random_seed(3)
    inner = build_rating_model(5, 7, {"type": "full"}, {"type": "full"}, 4, use_biases=True)
    rng = np.random.default_rng(0)
    for name in ("user_bias", "movie_bias", "score"):
        layer = inner.get_layer(name)
        layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.weights])
    path = Path(tmp_path_factory.mktemp("model")) / "model.keras"
    with_string_ids(inner, USERS, MOVIES).save(path)
    return keras.saving.load_model(path, safe_mode=True)


def _oracle(model: keras.Model, users: list[str], movies: list[str]) -> np.ndarray:
    """5 · sigmoid(<u, m> + b_u + b_m + g) by hand, unknown ids as zero rows and biases."""
    inner = model.get_layer("rating_model")

    def table(name: str) -> np.ndarray:
        weights = inner.get_layer(name).weights[0].numpy()
        return np.vstack([weights, np.zeros((1, weights.shape[1]), weights.dtype)])

    user_rows = [USERS.index(u) if u in USERS else len(USERS) for u in users]
    movie_rows = [MOVIES.index(m) if m in MOVIES else len(MOVIES) for m in movies]
    logits = (
        np.sum(table("user_embedding")[user_rows] * table("movie_embedding")[movie_rows], axis=1)
        + table("user_bias")[user_rows, 0]
        + table("movie_bias")[movie_rows, 0]
        + float(inner.get_layer("score").weights[0].numpy())
    )
    return 5.0 / (1.0 + np.exp(-logits.astype(np.float64)))


EXPECTED_ORDER = PAIRS["user_id"].tolist(), PAIRS["movie_id"].tolist()


def _entry_points(model: keras.Model) -> dict:
    return {
        "predict": lambda x: model.predict(x, verbose=0),
        "predict_on_batch": model.predict_on_batch,
        "model(x)": lambda x: model(x, training=False),
        "score": lambda x: score(model, x["user_id"], x["movie_id"]),
    }


ENTRY_POINTS = ["predict", "predict_on_batch", "model(x)"]
SHAPES = {
    "DataFrame (extra column kept out)": lambda: PAIRS,
    "dict of lists": lambda: {k: PAIRS[k].tolist() for k in ("user_id", "movie_id")},
    "dict of str Series": lambda: {k: PAIRS[k].astype("str") for k in ("user_id", "movie_id")},
    "dict of object Series": lambda: {k: PAIRS[k].astype(object) for k in ("user_id", "movie_id")},
    "dict of categorical Series": lambda: {
        k: PAIRS[k].astype("category") for k in ("user_id", "movie_id")
    },
    "dict of pyarrow string Series": lambda: {
        k: PAIRS[k].astype("string[pyarrow]") for k in ("user_id", "movie_id")
    },
    "dict of numpy unicode": lambda: {
        k: PAIRS[k].to_numpy(dtype=str) for k in ("user_id", "movie_id")
    },
    "dict of numpy bytes": lambda: {
        k: PAIRS[k].to_numpy(dtype="S") for k in ("user_id", "movie_id")
    },
    "dict of (n, 1) columns": lambda: {
        k: PAIRS[k].to_numpy(dtype=object).reshape(-1, 1) for k in ("user_id", "movie_id")
    },
    "numpy record array": lambda: (
        PAIRS[["user_id", "movie_id"]].astype(str).to_records(index=False)
    ),
}


@pytest.mark.parametrize("entry", [*ENTRY_POINTS, "score"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_what_a_pandas_user_passes_scores_like_the_oracle(model, entry, shape) -> None:
    x = SHAPES[shape]()
    predicted = np.asarray(_entry_points(model)[entry](x), np.float64).reshape(-1)
    np.testing.assert_allclose(predicted, _oracle(model, *EXPECTED_ORDER), rtol=1e-5)


def _pairs(**columns) -> dict:
    return {"user_id": PAIRS["user_id"].tolist(), "movie_id": PAIRS["movie_id"].tolist()} | columns


BAD_INPUTS = {
    "integer ids": (
        lambda: _pairs(user_id=np.arange(5)),
        r"`user_id` holds numbers \(e\.g\. 0\); .*such as 'user_42'",
    ),
    "a number among strings": (
        lambda: _pairs(movie_id=["movie_10", "movie_11", 12, "movie_13", "movie_14"]),
        r"`movie_id` holds numbers \(e\.g\. 12 at row 2\)",
    ),
    "NaN from pandas": (
        lambda: _pairs(movie_id=pd.Series(["movie_10", None, "movie_11", np.nan, "movie_12"])),
        r"`movie_id` has 2 missing value\(s\) \(None or NaN\), the first at row 1",
    ),
    "float ids with NaN": (
        lambda: _pairs(user_id=np.array([1.0, np.nan, 3.0, 4.0, 5.0])),
        r"`user_id` holds numbers \(e\.g\. 1\.0\)",
    ),
    "an empty id": (
        lambda: _pairs(user_id=["user_1", "user_2", "user_3", "", "user_4"]),
        r"`user_id` has 1 empty id\(s\), the first at row 3",
    ),
    "a bare number for a prefixed id": (
        lambda: _pairs(movie_id=["movie_10", "movie_10", "movie_10", "movie_10", "12"]),
        r"`movie_id` holds '12' at row 4, .* pass 'movie_12'",
    ),
    "a 2-D column": (
        lambda: _pairs(user_id=np.array([["user_1", "user_2"]] * 5, dtype=object)),
        r"`user_id` has shape \(5, 2\): pass one id per pair",
    ),
    "a set": (lambda: _pairs(user_id=set(USERS)), r"`user_id` is a set: pass its ids in pair"),
    "None": (lambda: _pairs(movie_id=None), r"`movie_id` is None"),
    "other objects": (
        lambda: _pairs(movie_id=["movie_10", "movie_11", {"id": 12}, "movie_13", "movie_14"]),
        r"`movie_id` holds a dict at row 2",
    ),
    "unequal lengths": (
        lambda: _pairs(movie_id=["movie_10"]),
        r"user_id has 5 ids but movie_id has 1: \w.* takes aligned",
    ),
    "nothing": (lambda: {"user_id": [], "movie_id": []}, r"got no ids"),
    "a tuple": (
        lambda: (PAIRS["user_id"].tolist(), PAIRS["movie_id"].tolist()),
        r"got a tuple \(its columns have no names, so users and movies could be swapped\)",
    ),
    "a bare 2-D array": (
        PAIRS[["user_id", "movie_id"]].to_numpy,
        r"got a ndarray of shape \(5, 2\) \(its columns have no names",
    ),
    "a DataFrame without movie_id": (
        lambda: PAIRS.rename(columns={"movie_id": "item"}),
        r"got a DataFrame without column\(s\) \['movie_id'\] \(its columns: \['user_id', 'item'",
    ),
    "a misspelt key": (
        lambda: {"user_id": ["user_1"], "movies": ["movie_10"]},
        r"missing: \['movie_id'\]; unknown keys: \['movies'\]",
    ),
    "swapped columns": (
        lambda: {"user_id": PAIRS["movie_id"], "movie_id": PAIRS["user_id"]},
        r"`user_id` holds movie ids: 4 of 5 are not users of this model but are its movies "
        r"\(e\.g\. 'movie_16' at row 0\)\. Are user_id and movie_id swapped\?",
    ),
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gets_one_line_naming_what_and_where(model, entry, case) -> None:
    make, message = BAD_INPUTS[case]
    with pytest.raises(PredictionInputError, match=message) as caught:
        _entry_points(model)[entry](make())
    assert "\n" not in str(caught.value)
    if "got" in message or "takes" in message:  # errors of the whole input name the entry point
        assert str(caught.value).startswith(entry) or f": {entry} takes" in str(caught.value)


def test_score_refuses_bad_ids_by_its_own_name(model) -> None:
    with pytest.raises(PredictionInputError, match="user_id has 2 ids but movie_id has 1: score"):
        score(model, ["user_1", "user_2"], ["movie_10"])
    with pytest.raises(PredictionInputError, match=r"`movie_id` has 1 missing value"):
        score(model, pd.Series(["user_1"]), pd.Series([None], dtype="str"))
    assert score(model, [], []).shape == (0,)  # no pairs, no predictions


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_id_is_checked_not_only_the_first_thousand(model, entry) -> None:
    users = np.array(["user_1"] * 6000, dtype=object)
    movies = np.array(["movie_10"] * 6000, dtype=object)
    movies[5321] = 42
    with pytest.raises(
        PredictionInputError, match=r"`movie_id` holds numbers \(e\.g\. 42 at row 5321"
    ):
        _entry_points(model)[entry]({"user_id": users, "movie_id": movies})
    movies[5321] = "5321"
    with pytest.raises(PredictionInputError, match=r"`movie_id` holds '5321' at row 5321"):
        _entry_points(model)[entry]({"user_id": users, "movie_id": movies})


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_bare_number_is_found_among_many_new_ids(model, entry) -> None:
    # 6,000 movies the model never saw (scored as unknown), one of them a bare number.
    users = np.array(["user_1"] * 6000, dtype=object)
    movies = np.array([f"movie_{1000 + i}" for i in range(6000)], dtype=object)
    movies[4321] = "4321"
    with pytest.raises(PredictionInputError, match=r"`movie_id` holds '4321' at row 4321"):
        _entry_points(model)[entry]({"user_id": users, "movie_id": movies})


def test_a_swap_names_the_first_row_holding_the_other_sides_id(model) -> None:
    users = ["user_1", "movie_10", "movie_11", "movie_12", "user_2"]
    with pytest.raises(PredictionInputError, match=r"3 of 5 .* \(e\.g\. 'movie_10' at row 1\)"):
        model.predict({"user_id": users, "movie_id": MOVIES[:5]}, verbose=0)


def test_a_minority_of_the_other_sides_ids_and_new_users_still_score(model) -> None:
    # Two of five user ids are movie ids (not a majority) and the rest are new users: scored,
    # as unknown ids, the other side's ids included.
    users = ["movie_10", "movie_11", "user_77", "user_78", "user_1"]
    movies = ["movie_10", "movie_11", "movie_12", "movie_13", "movie_14"]
    np.testing.assert_allclose(
        model.predict({"user_id": users, "movie_id": movies}, verbose=0),
        _oracle(model, users, movies),
        rtol=1e-5,
    )
    # All new users: unknown to the model but no movie's ids, so no swap is suspected.
    new_users = [f"user_{i}" for i in range(100, 105)]
    assert model.predict({"user_id": new_users, "movie_id": movies}, verbose=0).shape == (5,)


def test_swaps_are_not_guessed_when_the_vocabularies_share_ids() -> None:
    # Users and movies both numbered "1", "2", ...: an id of one side may be an id of the other,
    # so a column of "movie" ids proves nothing.
    inner = build_rating_model(3, 5, {"type": "full"}, {"type": "full"}, 2)
    model = with_string_ids(inner, ["1", "2", "3"], ["1", "2", "3", "4", "5"])
    predicted = model.predict({"user_id": ["4", "5", "4"], "movie_id": ["1", "2", "3"]}, verbose=0)
    assert predicted.shape == (3,)


def test_movie_ids_in_the_user_column_are_refused_the_other_way_round_too(model) -> None:
    with pytest.raises(PredictionInputError, match=r"`movie_id` holds user ids: 3 of 3"):
        model.predict({"user_id": ["user_1"] * 3, "movie_id": ["user_2"] * 3}, verbose=0)


def test_recommend_checks_its_arguments(model) -> None:
    vocabulary = pd.DataFrame({"id": MOVIES})
    with pytest.raises(
        PredictionInputError, match=r"recommend takes one user id as a str .* got 1 \(int\)"
    ):
        recommend(model, 1, vocabulary)
    with pytest.raises(PredictionInputError, match=r"recommend takes one user id .*\['user_1'\]"):
        recommend(model, ["user_1"], vocabulary)
    with pytest.raises(
        PredictionInputError, match=r"movie_vocabulary must be .*columns \['movie_id'\]"
    ):
        recommend(model, "user_1", pd.DataFrame({"movie_id": MOVIES}))
    with pytest.raises(PredictionInputError, match="top_k must be a positive int; got 0"):
        recommend(model, "user_1", vocabulary, top_k=0)
    with pytest.raises(PredictionInputError, match="seen_ratings must be a ratings DataFrame"):
        recommend(model, "user_1", vocabulary, seen_ratings=pd.DataFrame({"user": ["user_1"]}))
    # The user vocabulary passed as movies: the candidates are user ids.
    with pytest.raises(PredictionInputError, match=r"`movie_id` holds user ids"):
        recommend(model, "user_1", pd.DataFrame({"id": USERS}))
    # A movie id passed as the user.
    with pytest.raises(PredictionInputError, match=r"`user_id` holds movie ids"):
        recommend(model, "movie_10", vocabulary)


def test_recommend_ranks_by_the_oracle_and_leaves_out_what_was_seen(model) -> None:
    vocabulary = pd.DataFrame({"id": MOVIES})
    seen = pd.DataFrame({"user_id": ["user_2", "user_3"], "movie_id": ["movie_12", "movie_10"]})
    top = recommend(model, "user_2", vocabulary, seen_ratings=seen, top_k=3)
    candidates = [m for m in MOVIES if m != "movie_12"]
    expected = _oracle(model, ["user_2"] * len(candidates), candidates)
    order = np.argsort(-expected, kind="stable")[:3]
    assert top["movie_id"].tolist() == [candidates[i] for i in order]
    np.testing.assert_allclose(top["predicted_rating"], expected[order], rtol=1e-5)
    everything = pd.DataFrame({"user_id": ["user_2"] * len(MOVIES), "movie_id": MOVIES})
    nothing_left = recommend(model, "user_2", vocabulary, seen_ratings=everything)
    assert nothing_left.empty and list(nothing_left.columns) == ["movie_id", "predicted_rating"]
