"""Frequency blocks below one float per id: which layout at what budget (validation RMSE).

Each variant is the ``memory_efficient`` model of conf/base with a few keys replaced, trained on
the data-processing nodes' split through ``common.fit_and_score_model`` (the pipelines' path:
early stopping on the validation split, the eval split scored once). Printed per variant: float32
weights per id (biases included), serving bytes, validation RMSE (mean ± sample std over seeds;
compare variants on it). Eval RMSE is printed only for the variants named in ``--report-eval``
(the final choice), and Surprise's BaselineOnly is fitted on the same train split for reference.

Data: real MovieLens (``--archive ml-100k.zip --dataset ml-100k --no-verify-checksum``) or Ciao
(``--ciao ciao-rating.mat``: scipy .mat, variable ``rating`` with columns user, item, category,
rating, helpfulness; zero ratings dropped, each (user, item) pair's last row kept). The Ciao
reader here is a stand-in until ``ingest`` reads it::

    PYTHONPATH=src python benchmarks/below_one_float.py --ciao ciao-rating.mat --seeds 1 2 3 \\
        --variants baseline_64 biases_only hashed_tail_bias_k8 --report-eval hashed_tail_bias_k8
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    add_data_arguments,
    ciao_ratings,
    data_parameters,
    encoded_splits,
    fit_and_score_model,
    load_parameters,
    prepare_data,
    prepare_ratings,
)


def _blocks(**blocks: Any) -> dict[str, Any]:
    """A mixed-dimension side, zero-padded, in 4 equal-rating-mass blocks unless set."""
    return {"type": "mixed_dimension", "projection": "pad", "blocks": {"num_blocks": 4, **blocks}}


def _hashed(k: int) -> dict[str, Any]:
    return {"share": "hashed", "ids_per_bucket": k}


# Below one float per id the biases must sit inside the embedding (bias_layout: in_embedding):
# a block of 0 dims then holds its ids' own biases, a shared block hashed (or QR) biases.
IN_EMBEDDING = {"bias_layout": "in_embedding"}
OWN_BIASES = _blocks(dims=[0, 0, 0, 0])

# name -> keys replacing conf/base's memory_efficient.model (`both` sets both sides).
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline_64": {"embedding_dim": 64, "both": {"type": "full"}},
    "md4_default": {},  # conf/base's memory_efficient model as it is (separate biases)
    "md4_in_embedding": IN_EMBEDDING,
    "uniform_4": {"embedding_dim": 4, "both": {"type": "full"}},
    "uniform_1": {"embedding_dim": 1, "both": {"type": "full"}},
    # One float per id: per-id biases and nothing else (the uniform table of width 0).
    "biases_only": {**IN_EMBEDDING, "embedding_dim": 0, "both": {"type": "full"}},
    # Own biases for users and the three popular item blocks; the rarest item block (a quarter
    # of the ratings, most of the items) shares hashed biases, k items a row.
    **{
        f"hashed_tail_bias_k{k}": {
            **IN_EMBEDDING,
            "embedding_dim": 0,
            "user_embedding": OWN_BIASES,
            "movie_embedding": _blocks(
                dims=[0, 0, 0, 0], shared=[False, False, False, True], tail=_hashed(k)
            ),
        }
        for k in (2, 8, 64)
    },
    # One bias for the whole rarest item block (a row for a million ids: one row).
    "one_tail_bias": {
        **IN_EMBEDDING,
        "embedding_dim": 0,
        "user_embedding": OWN_BIASES,
        "movie_embedding": _blocks(
            dims=[0, 0, 0, 0], shared=[False, False, False, True], tail=_hashed(10**6)
        ),
    },
    # Six equal-mass blocks, the rarest (a sixth of the ratings) hashed 64 items a row.
    "six_blocks_hashed_tail_k64": {
        **IN_EMBEDDING,
        "embedding_dim": 0,
        "user_embedding": _blocks(num_blocks=6, dims=[0] * 6),
        "movie_embedding": _blocks(
            num_blocks=6, dims=[0] * 6, shared=[False] * 5 + [True], tail=_hashed(64)
        ),
    },
    # The two rarest item blocks (half the ratings) share hashed biases.
    "hashed_half_bias_k8": {
        **IN_EMBEDDING,
        "embedding_dim": 0,
        "user_embedding": OWN_BIASES,
        "movie_embedding": _blocks(
            dims=[0, 0, 0, 0], shared=[False, False, True, True], tail=_hashed(8)
        ),
    },
    # The rarest item block's biases through the quotient-remainder trick (sqrt(n) + sqrt(n)
    # rows, every item a distinct pair; add: b = q + r).
    "qr_tail_bias": {
        **IN_EMBEDDING,
        "embedding_dim": 0,
        "user_embedding": OWN_BIASES,
        "movie_embedding": _blocks(
            dims=[0, 0, 0, 0],
            shared=[False, False, False, True],
            tail={"share": "quotient_remainder", "combiner": "add"},
        ),
    },
    # Vectors for the popular blocks on both sides (dims 2, 1, 0, 0), the rarest items hashed.
    "head_dims_hashed_tail_k16": {
        **IN_EMBEDDING,
        "embedding_dim": None,
        "user_embedding": _blocks(dims=[2, 1, 0, 0]),
        "movie_embedding": _blocks(
            dims=[2, 1, 0, 0], shared=[False, False, False, True], tail=_hashed(16)
        ),
    },
    # The α rule decides (α 1 from a top-block dim of 4, min dim 0): rule dims below 0.2 share
    # hashed rows, 16 ids a row.
    "alpha_rule_hashed_k16": {
        **IN_EMBEDDING,
        "embedding_dim": None,
        "both": _blocks(alpha=1.0, base_dim=4, min_dim=0, share_below_dim=0.2, tail=_hashed(16)),
    },
}
# Stronger L2 where it may pay: the head's vectors, or the own biases.
# Items never rated in training (27% of Ciao's validation rows) read the rarest block's shared
# bias instead of zeros: a fallback trained on the rarest items.
VARIANTS["one_tail_bias_unknown_tail"] = {
    **VARIANTS["one_tail_bias"],
    "movie_embedding": _blocks(
        dims=[0, 0, 0, 0],
        shared=[False, False, False, True],
        tail={**_hashed(10**6), "unknown_ids": "tail"},
    ),
}
VARIANTS["head_dims_hashed_tail_k16_l2_0.3"] = {
    **VARIANTS["head_dims_hashed_tail_k16"],
    "embedding_l2": 0.3,
}


def variant_model(base: dict[str, Any], overrides: dict[str, Any], name: str) -> dict[str, Any]:
    """conf/base's memory_efficient model with the variant's keys replaced (`both` per side)."""
    model = copy.deepcopy(base)
    overrides = copy.deepcopy(overrides)
    both = overrides.pop("both", None)
    if both is not None:
        overrides.setdefault("user_embedding", both)
        overrides.setdefault("movie_embedding", copy.deepcopy(both))
    model.update(overrides)
    model["name"] = name
    return model


def surprise_baseline_only(data: dict[str, Any]) -> dict[str, float]:
    """Surprise's BaselineOnly (ALS defaults) fitted on the train split: validation and eval RMSE."""
    from surprise import BaselineOnly, Dataset, Reader, accuracy  # noqa: PLC0415

    reader = Reader(rating_scale=(1, 5))
    frame = data["train"][["user_id", "movie_id", "rating"]]
    algorithm = BaselineOnly(verbose=False)
    algorithm.fit(Dataset.load_from_df(frame, reader).build_full_trainset())
    scores = {}
    for split in ("validation", "eval"):
        rows = data[split][["user_id", "movie_id", "rating"]].itertuples(index=False)
        predictions = algorithm.test([(u, m, float(r)) for u, m, r in rows])
        scores[split] = accuracy.rmse(predictions, verbose=False)
    return scores


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_arguments(parser, dataset="ml-100k")
    parser.add_argument("--ciao", type=Path, help="ciao-rating.mat (instead of MovieLens)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--report-eval", nargs="*", default=[], help="variants to show eval for")
    parser.add_argument("--surprise", action="store_true", help="also fit BaselineOnly")
    parser.add_argument("--out", type=Path, help="append one JSON line per run here")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="model keys set in every variant (YAML values), e.g. bias_l2=0.2",
    )
    args = parser.parse_args(argv)

    params = load_parameters(args.env)
    training = {**params["training"], "verbose": 0}
    if args.ciao:
        data = prepare_ratings(ciao_ratings(args.ciao), params)
        source = f"Ciao ({args.ciao.name})"
    else:
        data = prepare_data(data_parameters(params, args), params)
        source = args.dataset
    data["splits"] = encoded_splits(data)
    num_ids = len(data["users"]) + len(data["movies"])
    print(
        f"{source}: {len(data['train']):,} train / {len(data['validation']):,} validation / "
        f"{len(data['eval']):,} eval ratings; {len(data['users']):,} users, "
        f"{len(data['movies']):,} items",
        flush=True,
    )
    if args.surprise:
        scores = surprise_baseline_only(data)
        print(
            f"Surprise BaselineOnly: val RMSE {scores['validation']:.4f}, "
            f"eval RMSE {scores['eval']:.4f}",
            flush=True,
        )
    base = params["memory_efficient"]["model"]
    settings = {
        key: yaml.safe_load(value) for key, _, value in (s.partition("=") for s in args.set)
    }
    suffix = "".join(f"_{key}_{value}" for key, value in settings.items())
    for variant in args.variants:
        name = f"{variant}{suffix}"
        model = variant_model(base, {**VARIANTS[variant], **settings}, name)
        runs = []
        for seed in args.seeds:
            record = fit_and_score_model(model, training, data, params["evaluation"], seed=seed)
            runs.append(record)
            if args.out:
                with args.out.open("a") as out:
                    line = {"source": source, "variant": name, "seed": seed, "model": model}
                    line |= {
                        key: record[key]
                        for key in ("val_rmse", "eval_rmse", "serving_bytes", "best_epoch")
                    }
                    out.write(json.dumps(line) + "\n")
        serving = runs[0]["serving_bytes"]
        text = (
            f"{name}: {serving / 4 / num_ids:.3f} floats per id ({serving:,} bytes), "
            f"val RMSE {_mean_std([r['val_rmse'] for r in runs])}, "
            f"best epochs {[r['best_epoch'] for r in runs]}"
        )
        if variant in args.report_eval:
            text += f", eval RMSE {_mean_std([r['eval_rmse'] for r in runs])}"
        print(text, flush=True)


if __name__ == "__main__":
    main()
