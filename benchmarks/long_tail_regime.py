"""Long-tail regime: do the project's models match Surprise's peers on Ciao, chosen on validation?

Issue 28. Ciao (Tang et al.'s product reviews, ``ciao-rating.mat``: 64% of items rated once) goes
through the project's own split (prefix -> 85/15 train/eval with 10% of the training part carved
out as validation, seed ``split.seed``) and vocabularies (training ids only: validation and eval
items unseen in training are out of vocabulary). Each named setting (a set of overrides of
conf/base's ``training`` and ``baseline.model``, validated by the project's schema) is fitted per
model (``dim64``: the baseline; ``dim4``: the same with a uniform dim-4 table; ``mixed4``:
conf/base's memory_efficient model) and seed through the project's fit-and-score path, and
Surprise's peers (global mean, BaselineOnly, SVD) train on the **same** train split.

Selection reads the validation split only: the default table prints validation RMSE overall, on
rows whose item was seen in training and on rows whose item was not (with their mean error, and
post hoc with the mean item row in place of the zero fallback), and by the item's training count.
``--eval`` adds the eval split's RMSE; use it for the settings already chosen, once.
``prototype.*`` keys in ``SETTINGS`` are no project parameters: this script applies them
(``start_global_bias_at_mean``, ``with_count_scaled_l2``) to test a hypothesis.

Usage (from the repository root, in the project's virtualenv)::

    PYTHONPATH=src python benchmarks/long_tail_regime.py --path ciao-rating.mat --peers-only
    PYTHONPATH=src python benchmarks/long_tail_regime.py --path ciao-rating.mat \\
        --settings current emb_l2_0.3 --models dim64 dim4 --seeds 1
    PYTHONPATH=src python benchmarks/long_tail_regime.py --path ciao-rating.mat \\
        --env long_tail --models dim64 dim4 mixed4 --seeds 1 2 3 --eval --json-out ciao.json
    PYTHONPATH=src python benchmarks/long_tail_regime.py --dataset ml-100k --path ml-100k.zip \\
        --no-verify-checksum --models dim64 dim4 mixed4 --seeds 1 2 3 --eval
    PYTHONPATH=src python benchmarks/long_tail_regime.py --from-json ciao.json

``--set KEY=VALUE`` adds ad-hoc overrides (``training.learning_rate=0.01``,
``model.embedding_l2=0.3``) to every setting named, for exploring before a setting is recorded;
``--env`` starts from another Kedro environment's parameters (``long_tail``: docs/long-tail.md).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_parameters, prepare_data, prepare_ratings  # noqa: E402

# Settings tried, as overrides of conf/base (``training.*`` and ``model.*``, the baseline's model
# section, which memory_efficient inherits). ``current`` is conf/base as it stands.
SETTINGS: dict[str, dict[str, Any]] = {
    "current": {},
    # Round 1 (coarse, seed 1): one knob at a time.
    "lr_0.01": {"training.learning_rate": 0.01},
    "lr_0.03": {"training.learning_rate": 0.03},
    "emb_l2_0.3": {"model.embedding_l2": 0.3},
    "bias_l2_0.3": {"model.bias_l2": 0.3},
    "linear": {"model.output.activation": "linear"},
    "range_0.5_5.5": {"model.output.min_rating": 0.5, "model.output.max_rating": 5.5},
    "sgd_b256": {
        "training.optimizer": "sgd",
        "training.learning_rate": 1.0,
        "training.batch_size": 256,
    },
    "adagrad_0.05": {"training.optimizer": "rowwise_adagrad", "training.learning_rate": 0.05},
    # Round 2 (seed 1): stronger L2 on the vectors, with the other knobs.
    "emb_l2_1": {"model.embedding_l2": 1.0},
    "emb_l2_0.1": {"model.embedding_l2": 0.1},
    "emb_l2_0.15": {"model.embedding_l2": 0.15},
    "emb_l2_0.3+bias_l2_0.3": {"model.embedding_l2": 0.3, "model.bias_l2": 0.3},
    "emb_l2_0.3+lr_0.01": {"model.embedding_l2": 0.3, "training.learning_rate": 0.01},
    "emb_l2_0.3+range_0.5_5.5": {
        "model.embedding_l2": 0.3,
        "model.output.min_rating": 0.5,
        "model.output.max_rating": 5.5,
    },
    "sgd_b256+emb_l2_0.1": {
        "training.optimizer": "sgd",
        "training.learning_rate": 1.0,
        "training.batch_size": 256,
        "model.embedding_l2": 0.1,
    },
    "sgd_b256+emb_l2_0.3": {
        "training.optimizer": "sgd",
        "training.learning_rate": 1.0,
        "training.batch_size": 256,
        "model.embedding_l2": 0.3,
    },
    # Round 3 (seed 1): the fallback's offset. ``prototype.*`` is no project parameter: the
    # script applies it (start_global_bias_at_mean).
    "emb_l2_0.3+mean_start": {"model.embedding_l2": 0.3, "prototype.global_bias_at_mean": True},
    "emb_l2_1+mean_start": {"model.embedding_l2": 1.0, "prototype.global_bias_at_mean": True},
    "mean_start": {"prototype.global_bias_at_mean": True},
    # Round 4 (seed 1): a constant prior per row (L2 per rating scaled by 1 / the row's
    # training count) in place of the per-rating L2, on vectors and biases.
    "row_l2_1": {
        "model.embedding_l2": 0.0,
        "model.bias_l2": 0.0,
        "prototype.row_l2": 1.0,
        "prototype.row_bias_l2": 1.0,
    },
    "row_l2_3": {
        "model.embedding_l2": 0.0,
        "model.bias_l2": 0.0,
        "prototype.row_l2": 3.0,
        "prototype.row_bias_l2": 3.0,
    },
    "row_l2_10": {
        "model.embedding_l2": 0.0,
        "model.bias_l2": 0.0,
        "prototype.row_l2": 10.0,
        "prototype.row_bias_l2": 10.0,
    },
    # Round 5 (seed 1): the per-rating L2 on vectors, a constant prior per row on the biases
    # only (added to their per-rating bias_l2), as BaselineOnly shrinks its biases.
    "emb_l2_0.3+row_bias_l2_10": {"model.embedding_l2": 0.3, "prototype.row_bias_l2": 10.0},
    "emb_l2_0.3+row_bias_l2_30": {"model.embedding_l2": 0.3, "prototype.row_bias_l2": 30.0},
    "emb_l2_0.1+row_bias_l2_10": {"model.embedding_l2": 0.1, "prototype.row_bias_l2": 10.0},
}

# Models: overrides of conf/base's baseline.model, or the memory_efficient model itself.
MODELS: dict[str, dict[str, Any] | None] = {
    "dim64": {},
    "dim4": {"embedding_dim": 4},
    "mixed4": None,  # conf/base's memory_efficient model (frequency blocks at a dim-4 budget)
}

# Surprise's peers, as in the issue: BaselineOnly with its defaults (ALS, reg_i 10, reg_u 15),
# SVD at a few sizes. ``random_state`` is the seed.
PEERS: dict[str, tuple[str, dict[str, Any]]] = {
    "BaselineOnly": ("BaselineOnly", {}),
    "SVD 1 factor": ("SVD", {"n_factors": 1}),
    "SVD 16 (reg 0.1)": ("SVD", {"n_factors": 16, "reg_all": 0.1}),
    "SVD 64 (reg 0.1)": ("SVD", {"n_factors": 64, "reg_all": 0.1}),
    "SVD 64 (defaults)": ("SVD", {"n_factors": 64}),
}

# Rows grouped by their item's training count: 0 is an item unseen in training (out of vocabulary).
COUNT_GROUPS: tuple[tuple[str, int, float], ...] = (
    ("unseen", 0, 0),
    ("1", 1, 1),
    ("2-4", 2, 4),
    ("5-19", 5, 19),
    ("20+", 20, np.inf),
)


def load_ciao_ratings(path: Path) -> pd.DataFrame:
    """Ciao's ``rating`` matrix (user, item, category, rating, helpfulness) as project ratings.

    Zero ratings (not on the 1-5 scale) are dropped and a repeated (user, item) pair keeps its
    last row, the file's order standing in for time. A scratch reader: switch to the project's
    ciao reader in ``ingest`` when it lands.
    """
    import scipy.io  # noqa: PLC0415 - only this data set needs it

    try:
        matrix = scipy.io.loadmat(str(path))["rating"]
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(
            f"--path {path}: not Ciao's rating.mat (a MATLAB file with a `rating` array): {exc}"
        ) from exc
    ratings = pd.DataFrame(
        {"user_id": matrix[:, 0], "movie_id": matrix[:, 1], "rating": matrix[:, 3]}
    ).astype({"user_id": np.int64, "movie_id": np.int64, "rating": np.float32})
    ratings = ratings[ratings["rating"] > 0]
    ratings = ratings.drop_duplicates(["user_id", "movie_id"], keep="last")
    return ratings.reset_index(drop=True)


def load_data(args: argparse.Namespace, params: dict[str, Any]) -> dict[str, Any]:
    """The data set through the project's data nodes: splits and training vocabularies."""
    if args.dataset == "ciao":
        prepared = prepare_ratings(load_ciao_ratings(args.path), params)
        prepared["description"] = f"Ciao ({args.path.name})"
    else:
        data = copy.deepcopy(params["data"])
        data |= {
            "dataset": args.dataset,
            "source": "movielens",
            "path": str(args.path),
            "verify_checksum": not args.no_verify_checksum,
        }
        prepared = prepare_data(data, params)
        prepared["description"] = f"real {args.dataset} ({args.path.name})"
    return prepared


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs (YAML values) as dotted overrides."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith(("training.", "model.", "prototype.")):
            raise SystemExit(
                f"--set {item!r}: write training.<key>=<value> or model.<key>=<value>, "
                "e.g. model.embedding_l2=0.3"
            )
        overrides[key] = yaml.safe_load(value)
    return overrides


def _assign(section: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        section = section.setdefault(key, {})
    section[leaf] = value


def setting_parameters(
    params: dict[str, Any], overrides: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """conf/base's parameters with a setting's overrides applied and validated by the schema."""
    from memory_efficient_embeddings.parameters import validate_parameters  # noqa: PLC0415

    params = copy.deepcopy(params)
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        if section == "prototype":
            params.setdefault("prototype", {})[key] = value
        elif section == "training":
            _assign(params["training"], key, value)
        else:  # model.*: the baseline's, which memory_efficient inherits unless it sets its own
            _assign(params["baseline"]["model"], key, value)
            if key.split(".")[0] not in ("user_embedding", "movie_embedding", "embedding_dim"):
                _assign(params["memory_efficient"]["model"], key, value)
    validate_parameters({k: v for k, v in params.items() if k != "prototype"})
    return params, overrides


def item_counts(prepared: dict[str, Any], split: str) -> np.ndarray:
    """Each row's item training count (0: unseen in training)."""
    counts = prepared["movies"].set_index("id")["train_count"]
    return prepared[split]["movie_id"].map(counts).fillna(0).to_numpy(np.int64)


def grouped_rmse(predictions: np.ndarray, targets: np.ndarray, counts: np.ndarray) -> dict:
    """RMSE overall, on seen and unseen items, and by the item's training count."""
    residuals = np.asarray(predictions, np.float64) - np.asarray(targets, np.float64)
    errors = residuals**2

    def rmse(mask: np.ndarray) -> float | None:
        return float(np.sqrt(errors[mask].mean())) if mask.any() else None

    record = {
        "rmse": rmse(np.ones_like(counts, bool)),
        "seen": rmse(counts > 0),
        "unseen": rmse(counts == 0),
        # Mean prediction minus rating on unseen items: the fallback's systematic offset.
        "unseen_mean_error": float(residuals[counts == 0].mean()) if (counts == 0).any() else None,
    }
    record["by_count"] = {
        label: rmse((counts >= low) & (counts <= high)) for label, low, high in COUNT_GROUPS
    }
    record["mean_error_by_count"] = {
        label: float(residuals[mask].mean()) if mask.any() else None
        for label, low, high in COUNT_GROUPS
        for mask in [(counts >= low) & (counts <= high)]
    }
    return record


def start_global_bias_at_mean(
    model: Any, output: dict[str, Any], train_targets: np.ndarray
) -> None:
    """Prototype (no project option yet): start the global bias where the output is the train mean.

    The project starts it at 0: a sigmoid output of 2.5 stars on [0, 5], a linear one of 0.
    """
    mean = float(np.mean(train_targets))
    if output["activation"] == "sigmoid":
        share = (mean - output["min_rating"]) / (output["max_rating"] - output["min_rating"])
        start = float(np.log(share / (1 - share)))
    else:
        start = mean
    model.get_layer("score").global_bias.assign(start)


def with_count_scaled_l2(
    model: Any, prepared: dict[str, Any], vector_l2: float, bias_l2: float
) -> Any:
    """Prototype (no project option yet): L2 per looked-up row scaled by 1 / its training count.

    Per rating, a row with ``n`` training ratings gets ``c / n`` instead of a fixed ``lambda``:
    over an epoch every row carries the same prior ``c |w|^2`` whatever its count (a MAP
    estimate's constant prior, as Surprise's BaselineOnly shrinks ``b_i`` by ``n / (n + reg_i)``),
    where a per-rating L2 carries ``n lambda |w|^2`` and shrinks a once-rated row no more than a
    popular one. Added to the model's own per-rating L2 (set that to 0 for a pure per-row prior).
    The model's layers are rewired, weights shared; nothing here is saved.
    """
    import keras  # noqa: PLC0415
    from keras import ops  # noqa: PLC0415

    class CountScaledL2(keras.layers.Layer):
        def __init__(self, counts: np.ndarray, strength: float, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.inverse_counts = np.asarray(1.0 / np.maximum(counts, 1), np.float32)
            self.strength = float(strength)

        def build(self, input_shape: Any = None) -> None:
            self.scale = self.add_weight(
                shape=self.inverse_counts.shape,
                initializer=keras.initializers.Constant(self.inverse_counts),
                trainable=False,
                name="inverse_count",
            )

        def call(self, inputs: Any) -> Any:
            ids, rows = inputs
            # Out-of-vocabulary ids have zero rows, so any in-range scale is fine for them.
            scale = ops.take(self.scale, ops.clip(ids, 0, self.inverse_counts.shape[0] - 1))
            self.add_loss(self.strength * ops.mean(scale * ops.sum(ops.square(rows), axis=-1)))
            return rows

    inputs = {name: model.get_layer(name).output for name in ("user_id", "movie_id")}
    counts = {
        "user_id": prepared["users"]["train_count"].to_numpy(),
        "movie_id": prepared["movies"]["train_count"].to_numpy(),
    }
    terms = []
    for layer, ids, strength in (
        ("user_embedding", "user_id", vector_l2),
        ("movie_embedding", "movie_id", vector_l2),
        ("user_bias", "user_id", bias_l2),
        ("movie_bias", "movie_id", bias_l2),
    ):
        rows = model.get_layer(layer).output
        if strength:
            rows = CountScaledL2(counts[ids], strength, name=f"{layer}_count_l2")(
                [inputs[ids], rows]
            )
        terms.append(rows)
    rating = model.get_layer("rating")(model.get_layer("score")(terms))
    return keras.Model(inputs=inputs, outputs=rating, name=model.name)


def fit_project_model(
    model_name: str,
    params: dict[str, Any],
    prepared: dict[str, Any],
    seed: int,
    with_eval: bool,
) -> dict[str, Any]:
    """Fit one model through the project's path; RMSE on validation (and eval) by item count."""
    from memory_efficient_embeddings.modeling import nodes as modeling  # noqa: PLC0415
    from memory_efficient_embeddings.modeling.specs import SIDES  # noqa: PLC0415
    from memory_efficient_embeddings.modeling.training import fit_and_score, score  # noqa: PLC0415

    overrides = MODELS[model_name]
    if overrides is None:
        model_params = copy.deepcopy(params["memory_efficient"]["model"])
    else:
        model_params = {**copy.deepcopy(params["baseline"]["model"]), **overrides}
    model_params |= {"name": model_name, "seed": seed}
    training = {**params["training"], "seed": seed, "verbose": 0}
    plan = modeling.assign_blocks(
        prepared["users"], prepared["movies"], model_params, params["evaluation"]
    )
    model = modeling.build_model(plan, model_params)
    splits = prepared["splits"]
    prototype = params.get("prototype", {})
    if prototype.get("global_bias_at_mean"):
        start_global_bias_at_mean(model, model_params["output"], splits["train"].targets)
    if prototype.get("row_l2") or prototype.get("row_bias_l2"):
        model = with_count_scaled_l2(
            model, prepared, prototype.get("row_l2", 0.0), prototype.get("row_bias_l2", 0.0)
        )
    blocks = {side: plan[side]["report_blocks"] for side in SIDES}
    record = fit_and_score(model, splits, training, report_blocks=blocks)
    result = {
        "best_epoch": record["best_epoch"],
        "epochs_run": record["epochs_run"],
        "embedding_parameters": record["embedding_parameters"],
        "val_rmse_keras": record["val_rmse"],
        # Per epoch, train and validation RMSE (under- or over-fitting at a glance).
        "train_rmse_by_epoch": [round(v, 4) for v in record["history"]["rmse"]],
        "val_rmse_by_epoch": [round(v, 4) for v in record["history"]["val_rmse"]],
    }
    for split in ("validation", "eval") if with_eval else ("validation",):
        predictions = score(
            model, splits[split].inputs["user_id"], splits[split].inputs["movie_id"]
        )
        prefix = "val" if split == "validation" else "eval"
        result[prefix] = grouped_rmse(
            predictions, splits[split].targets, item_counts(prepared, split)
        )
        result[prefix]["unseen_mean_item_row"] = unseen_with_mean_item_row(
            model, model_params["output"], prepared, split
        )
    return result


def unseen_with_mean_item_row(
    model: Any, output: dict[str, Any], prepared: dict[str, Any], split: str
) -> dict[str, float] | None:
    """Post hoc: RMSE on unseen items had they taken the mean item row instead of zeros.

    The mean of the item vectors and of the item biases, each weighted by training count; the
    user side and the global bias as trained. Plain tables only (None otherwise): a diagnostic
    of the zero fallback, no retraining.
    """
    from memory_efficient_embeddings.embeddings.layers import FullEmbedding  # noqa: PLC0415

    names = ("user_embedding", "movie_embedding", "user_bias", "movie_bias")
    layers = [model.get_layer(name) for name in names]
    if not all(isinstance(layer, FullEmbedding) for layer in layers):
        return None
    users, items, user_bias, item_bias = (layer.get_weights()[0] for layer in layers)
    weights = prepared["movies"]["train_count"].to_numpy()
    inputs, targets = prepared["splits"][split].inputs, prepared["splits"][split].targets
    unseen = inputs["movie_id"] >= len(items)
    if not unseen.any():
        return None
    user = inputs["user_id"][unseen]
    known = user < len(users)
    user = np.minimum(user, len(users) - 1)
    logits = (
        float(keras_global_bias(model))
        + known * (user_bias[user, 0] + users[user] @ np.average(items, axis=0, weights=weights))
        + np.average(item_bias[:, 0], weights=weights)
    )
    if output["activation"] == "sigmoid":
        low, high = output["min_rating"], output["max_rating"]
        predictions = low + (high - low) / (1 + np.exp(-logits))
    else:
        predictions = logits
    errors = predictions - targets[unseen]
    return {"rmse": float(np.sqrt(np.mean(errors**2))), "mean_error": float(np.mean(errors))}


def keras_global_bias(model: Any) -> float:
    """The trained global bias (the score layer's scalar)."""
    return float(model.get_layer("score").global_bias.numpy())


def surprise_peers(prepared: dict[str, Any], seed: int, names: list[str]) -> dict[str, Any]:
    """Surprise's peers fitted on the project's train split, scored on validation and eval."""
    import surprise  # noqa: PLC0415

    train = prepared["train"]
    scale = (float(train["rating"].min()), float(train["rating"].max()))
    trainset = surprise.Dataset.load_from_df(
        train[["user_id", "movie_id", "rating"]], surprise.Reader(rating_scale=scale)
    ).build_full_trainset()
    results: dict[str, Any] = {}
    for split in ("validation", "eval"):
        counts = item_counts(prepared, split)
        targets = prepared[split]["rating"].to_numpy(np.float64)
        mean = np.full_like(targets, trainset.global_mean)
        results.setdefault("global mean", {})[split] = grouped_rmse(mean, targets, counts)
    for name in names:
        kind, options = PEERS[name]
        algorithm = getattr(surprise, kind)(
            **options, **({"random_state": seed} if kind == "SVD" else {}), verbose=False
        )
        algorithm.fit(trainset)
        results[name] = {}
        for split in ("validation", "eval"):
            rows = prepared[split]
            predictions = np.array(
                [
                    algorithm.predict(u, i).est
                    for u, i in zip(rows["user_id"], rows["movie_id"], strict=True)
                ]
            )
            results[name][split] = grouped_rmse(
                predictions, rows["rating"].to_numpy(np.float64), item_counts(prepared, split)
            )
    return results


def _cell(values: list[float | None], spec: str = ".4f") -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:{spec}}"
    return f"{statistics.mean(values):{spec}} ± {statistics.stdev(values):.4f}"


def with_mean_item_row(record: dict[str, Any], unseen_share: float) -> float | None:
    """Overall RMSE had unseen items taken the mean item row: seen rows as scored, post hoc."""
    row = record.get("unseen_mean_item_row")
    if not row:
        return None
    return float(
        np.sqrt((1 - unseen_share) * record["seen"] ** 2 + unseen_share * row["rmse"] ** 2)
    )


def render(
    runs: list[dict[str, Any]],
    peers: dict[str, Any],
    with_eval: bool,
    unseen_share: dict[str, float],
) -> str:
    """Markdown tables: validation RMSE by setting and model (eval when asked), then the peers.

    ``unseen_share``: per split, the share of rows whose item is unseen in training.
    """
    groups = [label for label, _, _ in COUNT_GROUPS if label != "unseen"]
    splits = [("val", "validation")] + ([("eval", "eval")] if with_eval else [])
    lines = []
    for prefix, split in splits:
        lines += [
            f"{split} RMSE (mean ± sd over seeds; items by training count)",
            "",
            "| setting | model | seeds | best epoch | RMSE | seen items | unseen items | "
            "unseen mean error | unseen, mean item row | RMSE, mean item row | "
            + " | ".join(f"count {g}" for g in groups)
            + " |",
            "|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(groups),
        ]
        keyed: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for run in runs:
            keyed.setdefault((run["setting"], run["model"]), []).append(run)
        for (setting, model), group in keyed.items():
            records = [r[prefix] for r in group]
            lines.append(
                f"| {setting} | {model} | {','.join(str(r['seed']) for r in group)} | "
                f"{','.join(str(r['best_epoch']) for r in group)} | "
                f"{_cell([r['rmse'] for r in records])} | "
                f"{_cell([r['seen'] for r in records])} | "
                f"{_cell([r['unseen'] for r in records])} | "
                f"{_cell([r.get('unseen_mean_error') for r in records], '+.3f')} | "
                f"{_cell([(r.get('unseen_mean_item_row') or {}).get('rmse') for r in records])} | "
                f"{_cell([with_mean_item_row(r, unseen_share[split]) for r in records])} | "
                + " | ".join(_cell([r["by_count"][g] for r in records]) for g in groups)
                + " |"
            )
        lines.append("")
    if peers:
        lines += [
            "Surprise on the same train split (validation | eval)",
            "",
            "| peer | seeds | val RMSE | val seen | val unseen | eval RMSE | eval seen | "
            "eval unseen | " + " | ".join(f"val count {g}" for g in groups) + " |",
            "|---|---|---|---|---|---|---|---|" + "---|" * len(groups),
        ]
        names = dict.fromkeys(name for by_seed in peers.values() for name in by_seed)
        for name in names:
            val = [by_seed[name]["validation"] for by_seed in peers.values()]
            ev = [by_seed[name]["eval"] for by_seed in peers.values()]
            lines.append(
                f"| {name} | {','.join(map(str, peers))} | "
                + " | ".join(
                    _cell([r[key] for r in records])
                    for records in (val, ev)
                    for key in ("rmse", "seen", "unseen")
                )
                + " | "
                + " | ".join(_cell([r["by_count"][g] for r in val]) for g in groups)
                + " |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ciao", help="ciao, or a MovieLens release")
    parser.add_argument("--path", type=Path, help="ciao-rating.mat or a MovieLens zip")
    parser.add_argument("--no-verify-checksum", action="store_true", help="MovieLens only")
    parser.add_argument("--settings", nargs="+", default=["current"], choices=list(SETTINGS))
    parser.add_argument("--models", nargs="+", default=["dim64", "dim4"], choices=list(MODELS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--env", default="base", help="Kedro environment whose parameters the settings override"
    )
    parser.add_argument("--eval", action="store_true", help="also score the eval split")
    parser.add_argument("--peers", nargs="*", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--peers-only", action="store_true")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument(
        "--from-json", type=Path, help="print the tables of an earlier --json-out; fit nothing"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        with_eval = any("eval" in run for run in saved["runs"])
        print(saved["data"]["description"], saved["data"]["rows"])
        print(render(saved["runs"], saved["peers"], with_eval, saved["data"]["unseen_item"]))
        return saved
    if args.path is None or not args.path.exists():
        raise SystemExit(
            f"--path {args.path}: no such file (Ciao's rating.mat or a MovieLens zip)."
        )
    extra = parse_overrides(args.set)

    from memory_efficient_embeddings.modeling.training import encode_split  # noqa: PLC0415

    base = load_parameters(args.env)
    prepared = load_data(args, base)
    prepared["splits"] = {
        split: encode_split(prepared[split], prepared["users"], prepared["movies"])
        for split in ("train", "validation", "eval")
    }
    sizes = {split: len(prepared[split]) for split in ("train", "validation", "eval")}
    unseen = {
        split: float(np.mean(item_counts(prepared, split) == 0)) for split in ("validation", "eval")
    }
    print(
        f"{prepared['description']}: {sizes}; rows with an item unseen in training: "
        + ", ".join(f"{split} {share:.1%}" for split, share in unseen.items()),
        flush=True,
    )

    peers = {seed: surprise_peers(prepared, seed, args.peers) for seed in args.seeds}
    runs: list[dict[str, Any]] = []
    if not args.peers_only:
        for setting in args.settings:
            params, overrides = setting_parameters(base, {**SETTINGS[setting], **extra})
            label = (f"{args.env}: " if args.env != "base" else "") + setting
            label += f" + {extra}" if extra else ""
            for model in args.models:
                for seed in args.seeds:
                    started = time.perf_counter()
                    result = fit_project_model(model, params, prepared, seed, args.eval)
                    runs.append(
                        {"setting": label, "overrides": overrides, "model": model, "seed": seed}
                        | result
                    )
                    print(
                        f"  {label} {model} seed {seed}: validation RMSE "
                        f"{result['val']['rmse']:.4f} (seen {result['val']['seen']:.4f}, unseen "
                        f"{result['val']['unseen']:.4f}, its mean error "
                        f"{result['val']['unseen_mean_error']:+.3f}; with the mean item row "
                        f"{(result['val']['unseen_mean_item_row'] or {}).get('rmse', float('nan')):.4f}"
                        f"), best epoch {result['best_epoch']} of "
                        f"{result['epochs_run']} ({time.perf_counter() - started:.0f} s)",
                        flush=True,
                    )
    print(render(runs, peers, args.eval, unseen))
    result = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "data": {"description": prepared["description"], "rows": sizes, "unseen_item": unseen},
        "runs": runs,
        "peers": peers,
    }
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
