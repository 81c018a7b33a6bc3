"""Nodes of the data_processing pipeline, and a whole run on small synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset

from memory_efficient_embeddings.hooks import user_error
from memory_efficient_embeddings.ingest import RatingRangeError
from memory_efficient_embeddings.model_names import MODEL_NAMES
from memory_efficient_embeddings.pipelines.data_processing import create_pipeline
from memory_efficient_embeddings.pipelines.data_processing.nodes import (
    EmptySplitError,
    build_vocabularies,
    describe_splits,
    prefix_ids,
    split_ratings,
)

SPLIT = {"train_fraction": 0.85, "validation_fraction": 0.1, "seed": 42}
OUTPUT = {"activation": "sigmoid", "min_rating": 0.0, "max_rating": 5.0}


@pytest.fixture
def prefixed() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 20_000
    return prefix_ids(
        pd.DataFrame(
            {
                "user_id": rng.integers(1, 300, n),
                "movie_id": rng.integers(1, 500, n),
                "rating": rng.integers(1, 6, n).astype(np.float32),
                "timestamp": np.arange(n),
            }
        )
    )


def test_prefix_ids():
    ratings = pd.DataFrame(
        {
            "user_id": [1, 22, 1],
            "movie_id": [2858, 5, 5],
            "rating": [4.0, 3.0, 5.0],
            "timestamp": [1, 2, 3],
        }
    ).astype({"rating": np.float32})
    out = prefix_ids(ratings)
    assert list(out.columns) == ["user_id", "movie_id", "rating"]
    assert out["user_id"].tolist() == ["user_1", "user_22", "user_1"]
    assert out["movie_id"].tolist() == ["movie_2858", "movie_5", "movie_5"]
    assert pd.api.types.is_string_dtype(out["user_id"]) and pd.api.types.is_string_dtype(
        out["movie_id"]
    )
    assert out["rating"].dtype == np.float32


def test_split_fraction_and_reproducibility(prefixed):
    train, validation, evaluation = split_ratings(prefixed, SPLIT)
    assert len(train) + len(validation) + len(evaluation) == len(prefixed)
    assert abs(len(evaluation) / len(prefixed) - 0.15) < 0.01
    assert abs(len(validation) / (len(train) + len(validation)) - 0.1) < 0.01
    again = split_ratings(prefixed, SPLIT)
    for first, second in zip((train, validation, evaluation), again, strict=True):
        pd.testing.assert_frame_equal(first, second)
    other, _, _ = split_ratings(prefixed, {**SPLIT, "seed": 1})
    assert not train.equals(other)
    # Independently: rows whose first draw is <= 0.85 form the training part; eval is the rest.
    rng = np.random.default_rng(42)
    in_training_part = rng.uniform(size=len(prefixed)) <= 0.85
    pd.testing.assert_frame_equal(evaluation, prefixed[~in_training_part].reset_index(drop=True))
    part = prefixed[in_training_part].reset_index(drop=True)
    in_validation = rng.uniform(size=len(part)) < 0.1
    pd.testing.assert_frame_equal(validation, part[in_validation].reset_index(drop=True))
    pd.testing.assert_frame_equal(train, part[~in_validation].reset_index(drop=True))


def test_eval_split_does_not_move_with_the_validation_fraction(prefixed):
    _, _, evaluation = split_ratings(prefixed, SPLIT)
    for fraction in (0.0, 0.05, 0.3):
        train, validation, same = split_ratings(
            prefixed, {**SPLIT, "validation_fraction": fraction}
        )
        pd.testing.assert_frame_equal(same, evaluation)
        assert len(train) + len(validation) + len(same) == len(prefixed) + (
            len(same) if fraction == 0 else 0
        )


def test_no_validation_fraction_validates_on_eval_and_warns(prefixed, caplog):
    train, validation, evaluation = split_ratings(prefixed, {**SPLIT, "validation_fraction": 0})
    pd.testing.assert_frame_equal(validation, evaluation)
    assert len(train) + len(evaluation) == len(prefixed)
    assert "read the eval split" in caplog.text


def _six_ratings() -> pd.DataFrame:
    return prefix_ids(
        pd.DataFrame(
            {
                "user_id": [1, 2, 3, 4, 5, 6],
                "movie_id": [1, 2, 3, 4, 5, 6],
                "rating": [3.0, 4.0, 5.0, 1.0, 2.0, 3.0],
                "timestamp": [0, 1, 2, 3, 4, 5],
            }
        )
    )


# Seeds found by drawing the same uniforms by hand: the (train, validation, eval) rows each gives
# six ratings at train_fraction 0.7, and the one split left empty.
@pytest.mark.parametrize(
    ("seed", "validation_fraction", "rows", "message"),
    [
        (
            16,
            0.3,
            "4 train, 2 validation and 0 eval",
            r"The eval split is empty: .*lower "
            r"split\.train_fraction \(0\.7\)\.$",
        ),
        (
            0,
            0.3,
            "4 train, 0 validation and 2 eval",
            r"The validation split is empty: .*raise "
            r"split\.validation_fraction \(0\.3\)\.$",
        ),
        (
            124,
            0.3,
            "0 train, 1 validation and 5 eval",
            r"The train split is empty: .*raise "
            r"split\.train_fraction \(0\.7\) or lower split\.validation_fraction \(0\.3\)\.$",
        ),
        # The recipe's mode: validation is the eval split, so both are empty; one remedy.
        (
            16,
            0,
            "6 train, 0 validation and 0 eval",
            r"The validation split and the eval split "
            r"are empty: .*or lower split\.train_fraction \(0\.7\)\.$",
        ),
    ],
)
def test_an_empty_split_is_named_with_the_rows_and_the_parameter_to_change(
    seed, validation_fraction, rows, message
):
    split = {"train_fraction": 0.7, "validation_fraction": validation_fraction, "seed": seed}
    with pytest.raises(EmptySplitError, match=message) as caught:
        split_ratings(_six_ratings(), split)
    assert f"splitting 6 ratings (split.seed {seed}) gave {rows} rows" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_empty_split_is_a_user_error_printed_without_a_traceback():
    tiny = _six_ratings().head(2)
    with pytest.raises(
        EmptySplitError, match=r"raise split\.validation_fraction \(0\.1\) and lower"
    ) as caught:
        split_ratings(tiny, SPLIT)
    assert user_error(caught.value) is caught.value


def test_split_summary_counts_rows_with_ids_unseen_in_training():
    train = _ratings([("u1", "m1"), ("u2", "m2")])
    validation = _ratings([("u1", "m2"), ("u3", "m1"), ("u1", "m9")])
    evaluation = _ratings([("u3", "m9"), ("u2", "m1"), ("u4", "m2"), ("u2", "m8")])
    summary = describe_splits(train, validation, evaluation, SPLIT, {"source": "train"})
    assert summary["train"] == {"rows": 2}
    assert summary["validation"] == {
        "rows": 3,
        "unseen_user_rows": 1,
        "unseen_movie_rows": 1,
        "unseen_either_rows": 2,
    }
    assert summary["eval"] == {
        "rows": 4,
        "unseen_user_rows": 2,
        "unseen_movie_rows": 2,
        "unseen_either_rows": 3,
    }
    assert summary["validation_is_eval"] is False
    recipe = {**SPLIT, "validation_fraction": 0}
    assert describe_splits(train, evaluation, evaluation, recipe, {"source": "train"})[
        "validation_is_eval"
    ]


def test_split_summary_states_the_fallback_for_unseen_ids_by_vocabulary_source():
    train, held_out = _ratings([("u1", "m1")]), _ratings([("u2", "m1")])
    by_source = {
        source: describe_splits(train, held_out, held_out, SPLIT, {"source": source})[
            "unseen_id_fallback"
        ]
        for source in ("train", "all")
    }
    assert "out of vocabulary: its embedding and its bias are zero" in by_source["train"]
    assert "the other side's bias plus the global bias" in by_source["train"]
    assert "never updates" in by_source["all"] and "zero" not in by_source["all"].split(":")[0]


def _ratings(pairs):
    return pd.DataFrame(pairs, columns=["user_id", "movie_id"]).assign(rating=np.float32(3))


TRAIN = _ratings(
    [("user_2", "movie_b"), ("user_1", "movie_a"), ("user_2", "movie_a"), ("user_3", "movie_c")]
)
EVAL = _ratings([("user_9", "movie_z"), ("user_1", "movie_b")])
VALIDATION = _ratings([("user_8", "movie_y")])


def test_vocabularies_train_mode_order():
    users, movies = build_vocabularies(TRAIN, VALIDATION, EVAL, {"source": "train"})
    assert users.to_dict("list") == {"id": ["user_2", "user_1", "user_3"], "train_count": [2, 1, 1]}
    assert movies.to_dict("list") == {
        "id": ["movie_a", "movie_b", "movie_c"],
        "train_count": [2, 1, 1],
    }
    assert users["train_count"].dtype == np.int64


def test_vocabularies_all_mode_puts_held_out_only_ids_last():
    users, movies = build_vocabularies(TRAIN, VALIDATION, EVAL, {"source": "all"})
    assert users["id"].tolist() == ["user_2", "user_1", "user_3", "user_8", "user_9"]
    assert users["train_count"].tolist() == [2, 1, 1, 0, 0]
    assert movies["id"].tolist()[-2:] == ["movie_y", "movie_z"]


def test_vocabularies_reject_unknown_source():
    with pytest.raises(ValueError, match="vocabulary.source"):
        build_vocabularies(TRAIN, VALIDATION, EVAL, {"source": "eval"})


def _catalog() -> DataCatalog:
    data = {
        "dataset": "ml-100k",
        "source": "synthetic",
        "synthetic": {"seed": 3, "num_users": 200, "num_movies": 150, "num_ratings": 8_000},
    }
    return DataCatalog(
        datasets={
            "params:data": MemoryDataset(data),
            "params:split": MemoryDataset(SPLIT),
            "params:vocabulary": MemoryDataset({"source": "train"}),
            **{f"params:{name}.model.output": MemoryDataset(OUTPUT) for name in MODEL_NAMES},
        }
    )


def test_whole_pipeline_on_synthetic_data(tmp_path):
    catalog = _catalog()
    # ingest_movies reads the provenance too, so a memory copy would be released after it.
    catalog["data_provenance"] = JSONDataset(filepath=str(tmp_path / "data_provenance.json"))
    free_outputs = SequentialRunner().run(create_pipeline(), catalog)
    titles = free_outputs["movies"].load()
    assert titles["movie_id"].str.startswith("movie_").all()
    assert titles["title"].str.startswith("Synthetic movie ").all()
    provenance = catalog.load("data_provenance")
    assert provenance["source"] == "synthetic"
    assert provenance["shaped_like"] == "ml-100k"
    assert provenance["num_ratings"] == 8_000
    users, movies = catalog.load("user_vocabulary"), catalog.load("movie_vocabulary")
    assert users["id"].str.startswith("user_").all()
    assert movies["id"].str.startswith("movie_").all()
    assert users["train_count"].sum() == movies["train_count"].sum()
    assert abs(users["train_count"].sum() / 8_000 - 0.85 * 0.9) < 0.02
    summary = free_outputs["split_summary"].load()
    assert summary["train"]["rows"] == users["train_count"].sum()

    # Intermediate in-memory outputs are released by the runner: rerun up to the split.
    catalog = _catalog()
    splits = ("train_ratings", "validation_ratings", "eval_ratings")
    SequentialRunner().run(create_pipeline().to_outputs(*splits), catalog)
    train, validation, evaluation = (catalog.load(name) for name in splits)
    assert len(train) + len(validation) + len(evaluation) == 8_000
    assert summary["validation"]["rows"] == len(validation)
    assert len(train) == users["train_count"].sum()
    assert set(users["id"]) == set(train["user_id"])
    assert set(movies["id"]) == set(train["movie_id"])


def _table_catalog(path, **output) -> DataCatalog:
    data = {"source": "table", "path": str(path)}
    return DataCatalog(
        datasets={
            "params:data": MemoryDataset(data),
            "params:split": MemoryDataset({**SPLIT, "train_fraction": 0.7}),
            "params:vocabulary": MemoryDataset({"source": "train"}),
            **{
                f"params:{name}.model.output": MemoryDataset({**OUTPUT, **output})
                for name in MODEL_NAMES
            },
        }
    )


def _table(tmp_path, max_rating: int):
    rng = np.random.default_rng(4)
    n = 300
    frame = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in rng.integers(0, 40, n)],
            "item_id": rng.integers(0, 60, n),
            "rating": rng.integers(1, max_rating + 1, n),
        }
    )
    frame.to_csv(tmp_path / "mine.csv", index=False)
    return tmp_path / "mine.csv", frame


def test_whole_pipeline_on_a_users_table_labels_items_by_id(tmp_path):
    path, frame = _table(tmp_path, max_rating=5)
    catalog = _table_catalog(path)
    outputs = SequentialRunner().run(create_pipeline(), catalog)
    items = outputs["movies"].load()
    kept = frame.drop_duplicates(["user_id", "item_id"], keep="last")
    assert sorted(items["movie_id"]) == sorted(f"movie_{i}" for i in kept["item_id"].unique())
    assert set(items["title"]) == {f"item {i}" for i in kept["item_id"].unique()}
    summary = outputs["split_summary"].load()
    assert summary["train"]["rows"] + summary["validation"]["rows"] + summary["eval"][
        "rows"
    ] == len(kept)
    assert outputs["user_vocabulary"].load()["id"].str.fullmatch(r"user_u\d+").all()


def test_ratings_outside_the_output_range_stop_the_run_before_the_split(tmp_path):
    path, _ = _table(tmp_path, max_rating=10)
    catalog = _table_catalog(path)
    with pytest.raises(RatingRangeError, match=r"run from 1 to 10, outside the sigmoid output"):
        SequentialRunner().run(create_pipeline(), catalog)
    assert not catalog.exists("train_ratings")  # nothing was split, let alone trained
    outputs = SequentialRunner().run(create_pipeline(), _table_catalog(path, max_rating=10.0))
    assert "split_summary" in outputs
