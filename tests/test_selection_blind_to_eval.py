"""The eval split cannot reach selection: scramble its ratings and nothing that training chose moves.

Selection (the epoch early stopping keeps, the weights it restores, the sweep's tuned L2) must read
the validation split only; the eval split is scored once, after training. Each test trains twice,
once with the real eval ratings and once with them scrambled, and checks that the chosen epoch, the
validation history and every trained weight are identical while the eval RMSE is not (proof that
eval was scored, and scored only afterwards).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from memory_efficient_embeddings.modeling.nodes import assign_blocks, build_model
from memory_efficient_embeddings.modeling.pipeline import create_modeling_pipeline
from memory_efficient_embeddings.modeling.training import Split, encode_split, fit_and_score

EVALUATION = {"popularity_blocks": 3}
TRAINING = {
    "seed": 7,
    "optimizer": "adam",
    "learning_rate": 0.01,
    "batch_size": 128,
    "epochs": 12,
    "steps_per_execution": 4,
    "validation_batch_size": 512,
    # Patience 1 stops early, so the kept epoch is a real choice, not the last one.
    "early_stopping": {
        "enabled": True,
        "monitor": "val_rmse",
        "patience": 1,
        "min_delta": 0.0,
        "restore_best_weights": True,
    },
    "deterministic": True,
    "verbose": 0,
}
MODEL = {
    "name": "blind",
    "seed": 3,
    "embedding_dim": 8,
    "use_biases": True,
    "embedding_l2": 0.01,
    "bias_l2": 0.0,
    "output": {"activation": "sigmoid", "min_rating": 0.0, "max_rating": 5.0},
    "user_embedding": {"type": "full"},
    "movie_embedding": {"type": "full"},
}


def _ratings(rows: int, seed: int) -> pd.DataFrame:
    """Biased-MF ratings: one fixed set of users and movies, rows drawn with ``seed``."""
    truth = np.random.default_rng(0)
    user_bias, movie_bias = truth.normal(0, 0.8, 60), truth.normal(0, 0.8, 40)
    user_factor, movie_factor = truth.normal(0, 0.7, (60, 2)), truth.normal(0, 0.7, (40, 2))
    rng = np.random.default_rng(seed)
    users, movies = rng.integers(0, 60, rows), rng.integers(0, 40, rows)
    interaction = (user_factor[users] * movie_factor[movies]).sum(axis=1)
    latent = 3.4 + user_bias[users] + movie_bias[movies] + interaction + rng.normal(0, 0.5, rows)
    return pd.DataFrame(
        {
            "user_id": [f"user_{u}" for u in users],
            "movie_id": [f"movie_{m}" for m in movies],
            "rating": np.clip(np.round(latent), 1, 5).astype(np.float32),
        }
    )


def _vocabulary(ratings: pd.DataFrame, column: str) -> pd.DataFrame:
    counts = ratings[column].value_counts()
    frame = pd.DataFrame({"id": counts.index.astype(str), "train_count": counts.to_numpy()})
    return frame.sort_values(["train_count", "id"], ascending=[False, True], ignore_index=True)


TRAIN, VALIDATION, EVAL = _ratings(3000, 1), _ratings(500, 2), _ratings(600, 3)
USERS, MOVIES = _vocabulary(TRAIN, "user_id"), _vocabulary(TRAIN, "movie_id")


def _scrambled(ratings: pd.DataFrame) -> pd.DataFrame:
    """The same rows with ratings redrawn: any use of them would change what is learned."""
    rng = np.random.default_rng(99)
    return ratings.assign(rating=rng.integers(1, 6, len(ratings)).astype(np.float32))


def _weights(model) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_weights()]


def _fit_and_score(eval_ratings: pd.DataFrame) -> tuple[dict, list[np.ndarray]]:
    plan = assign_blocks(USERS, MOVIES, MODEL, EVALUATION)
    model = build_model(plan, MODEL)
    splits = {
        name: encode_split(ratings, USERS, MOVIES)
        for name, ratings in (("train", TRAIN), ("validation", VALIDATION), ("eval", eval_ratings))
    }
    blocks = {side: plan[side]["report_blocks"] for side in ("user_embedding", "movie_embedding")}
    record = fit_and_score(model, splits, TRAINING, report_blocks=blocks)
    return record, _weights(model)


def test_fit_and_score_selects_the_same_epoch_and_weights_whatever_the_eval_ratings() -> None:
    real, real_weights = _fit_and_score(EVAL)
    scrambled, scrambled_weights = _fit_and_score(_scrambled(EVAL))
    assert real["epochs_run"] < TRAINING["epochs"]  # early stopping did choose
    assert (real["best_epoch"], real["epochs_run"]) == (
        scrambled["best_epoch"],
        scrambled["epochs_run"],
    )
    assert real["history"]["val_rmse"] == scrambled["history"]["val_rmse"]
    assert real["val_rmse"] == scrambled["val_rmse"]
    for before, after in zip(real_weights, scrambled_weights, strict=True):
        np.testing.assert_array_equal(before, after)
    # Eval was scored, on the eval split: the scrambled ratings score differently.
    assert abs(real["eval_rmse"] - scrambled["eval_rmse"]) > 0.05


def test_the_validation_split_does_move_selection() -> None:
    """The control: the same scrambling applied to validation changes what training keeps."""
    plan = assign_blocks(USERS, MOVIES, MODEL, EVALUATION)
    results = []
    for validation in (VALIDATION, _scrambled(VALIDATION)):
        model = build_model(plan, MODEL)
        splits = {
            "train": encode_split(TRAIN, USERS, MOVIES),
            "validation": encode_split(validation, USERS, MOVIES),
            "eval": encode_split(EVAL, USERS, MOVIES),
        }
        results.append(fit_and_score(model, splits, TRAINING))
    assert results[0]["history"]["val_rmse"] != results[1]["history"]["val_rmse"]


def test_the_eval_record_scores_the_eval_split_by_hand() -> None:
    record, _ = _fit_and_score(EVAL)
    plan = assign_blocks(USERS, MOVIES, MODEL, EVALUATION)
    model = build_model(plan, MODEL)
    assert set(record) >= {"val_rmse", "eval_rmse", "eval_mae", "serving_bytes", "by_popularity"}
    assert record["eval_rows"] == len(EVAL)
    # Bytes by hand: (60 users + 40 movies) rows of 8 floats and a bias each, float32.
    vocabulary_rows = len(USERS) + len(MOVIES)
    assert record["embedding_bytes_float32"] == 4 * (vocabulary_rows * 8 + vocabulary_rows)
    assert model.count_params() > 0


class _KeptDataset(MemoryDataset):
    """A memory dataset the runner cannot release, so the test reads it after the run."""

    def _release(self) -> None:
        pass


def _modeling_catalog(eval_ratings: pd.DataFrame) -> DataCatalog:
    parameters = {"baseline.model": MODEL, "training": TRAINING, "evaluation": EVALUATION}
    datasets = {
        "train_ratings": TRAIN,
        "validation_ratings": VALIDATION,
        "eval_ratings": eval_ratings,
        "user_vocabulary": USERS,
        "movie_vocabulary": MOVIES,
        "data_provenance": {"description": "test"},
        "split_summary": {"validation_is_eval": False},
    }
    catalog = DataCatalog(
        datasets={f"params:{k}": MemoryDataset(v) for k, v in parameters.items()}
        | {k: MemoryDataset(v) for k, v in datasets.items()}
    )
    for name in ("baseline.untrained_model", "baseline.model"):
        catalog[name] = _KeptDataset(copy_mode="assign")
    for name in ("baseline.training_history", "baseline.metrics"):
        catalog[name] = _KeptDataset()
    return catalog


def _run_modeling_pipeline(eval_ratings: pd.DataFrame) -> tuple[dict, dict, list[np.ndarray]]:
    catalog = _modeling_catalog(eval_ratings)
    pipeline = create_modeling_pipeline("baseline").only_nodes_with_tags("training", "evaluation")
    SequentialRunner().run(pipeline, catalog)
    model = catalog.load("baseline.model")
    return (
        catalog.load("baseline.training_history"),
        catalog.load("baseline.metrics"),
        _weights(model),
    )


@pytest.mark.slow
def test_the_model_pipeline_trains_the_same_model_whatever_the_eval_ratings() -> None:
    history, metrics, weights = _run_modeling_pipeline(EVAL)
    history_2, metrics_2, weights_2 = _run_modeling_pipeline(_scrambled(EVAL))
    assert history["best_epoch"] == history_2["best_epoch"]
    assert history["history"]["val_rmse"] == history_2["history"]["val_rmse"]
    for before, after in zip(weights, weights_2, strict=True):
        np.testing.assert_array_equal(before, after)
    assert metrics["val_rmse"] == metrics_2["val_rmse"]
    assert abs(metrics["eval_rmse"] - metrics_2["eval_rmse"]) > 0.05


def test_the_eval_split_is_no_input_of_any_training_node() -> None:
    pipeline = create_modeling_pipeline("baseline")
    for node in pipeline.only_nodes_with_tags("training").nodes:
        assert "eval_ratings" not in node.inputs, node.name


def test_split_objects_default_their_block_indices_to_the_inputs() -> None:
    inputs = {"user_id": np.array([0, 1]), "movie_id": np.array([1, 0])}
    split = Split(inputs, np.array([3.0, 4.0], np.float32))
    assert split.block_indices is inputs
    assert len(split) == 2


def _fit_calls(path) -> list[str]:
    """`<object>.fit(...)` calls in one source file, named by their enclosing function."""
    import ast  # noqa: PLC0415

    tree = ast.parse(path.read_text(encoding="utf-8"))
    calls = []
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "fit"
                ):
                    calls.append(f"{path.name}:{function.name}:{ast.unparse(node.func.value)}")
    return calls


def test_model_fit_is_called_from_one_function_in_src_and_benchmarks() -> None:
    from pathlib import Path  # noqa: PLC0415

    root = Path(__file__).resolve().parents[1]
    calls = sorted(
        call
        for folder in ("src", "benchmarks")
        for path in (root / folder).rglob("*.py")
        # The keras-io recipe's own script keeps its own fit (it is the reference, not the project).
        if path.name != "recipe_reference.py"
        for call in _fit_calls(path)
    )
    # The one Keras fit, scikit-surprise's peers (not Keras models: the benchmarks' and the
    # sweep's, fitted on the train split only) and StringIdModel.fit, which only refuses on JAX
    # before handing over to Keras.
    assert calls == [
        "below_one_float.py:surprise_baseline_only:algorithm",
        "long_tail_regime.py:surprise_peers:algorithm",
        "models.py:fit:super()",
        "peers.py:_fit_surprise:algorithm",
        "time_to_accuracy.py:run_peer:algorithm",
        "training.py:fit_rating_model:rating_model",
    ]
