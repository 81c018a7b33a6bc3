"""Do compact tables lose as much on synthetic data as on real MovieLens? Gaps side by side.

For each side (real: ``--archive``; synthetic: ``data.source=synthetic`` shaped like
``--dataset``, ``data.synthetic`` from conf/base plus ``--set`` overrides) the data goes through
the project's data nodes (ingest -> prefix -> seeded 85/15 split); then a seeded uniform draw
(``numpy.random.default_rng(--validation-seed)``) moves ``--validation-fraction`` of the train
rows into a validation split, which early stopping watches, and the vocabularies are built from
the remaining train rows. Each config is fitted per seed (model and training seed) with the
project's ``assign_blocks`` -> ``build_model`` -> ``fit_rating_model`` under conf/base's
``training`` and ``baseline.model``; the eval split is scored once. Printed per config and side:
eval RMSE mean ± sample std over seeds and the gap in % to the dim-64 baseline.

Configs: ``dim64`` (the baseline model), ``dim4``/``dim8``/``dim16`` (the same with a narrower
uniform full table) and ``mixed4`` (frequency blocks at the budget of a dim-4 table, the layout
commented in conf/base/parameters_modeling.yml).

Usage (from the repository root, in the project's virtualenv)::

    PYTHONPATH=src python benchmarks/synthetic_gaps.py --archive data/01_raw/ml-100k.zip \\
        --no-verify-checksum --dataset ml-100k --seeds 1 2 3 --json-out gaps.json
    PYTHONPATH=src python benchmarks/synthetic_gaps.py --sides synthetic \\
        --set interaction_sd=0.6 --real-json gaps.json    # reuse the real side's figures
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibrate_synthetic import parse_overrides  # noqa: E402
from training_speed import load_parameters  # noqa: E402

_FREQUENCY_BLOCKS = {
    "type": "mixed_dimension",
    "projection": "pad",
    "blocks": {
        "num_blocks": 3,
        "alpha": 0.4,
        "mean_dim": 4,
        "min_dim": 1,
        "max_dim": 64,
        "power_of_two": False,
    },
}
CONFIGS: dict[str, dict[str, Any]] = {
    "dim64": {},
    "dim4": {"embedding_dim": 4},
    "dim8": {"embedding_dim": 8},
    "dim16": {"embedding_dim": 16},
    "mixed4": {
        "embedding_dim": None,
        "user_embedding": _FREQUENCY_BLOCKS,
        "movie_embedding": _FREQUENCY_BLOCKS,
    },
}
REFERENCE = "dim64"


def split_data(data: dict[str, Any], params: dict[str, Any], args: argparse.Namespace) -> dict:
    """Project nodes for ingest/prefix/split; a seeded validation carve; vocabularies."""
    from memory_efficient_embeddings.pipelines.data_processing import (  # noqa: PLC0415
        nodes as data_nodes,
    )

    ratings, provenance = data_nodes.ingest_ratings(data)
    prefixed = data_nodes.prefix_ids(ratings)
    train_all, evaluation = data_nodes.split_ratings(prefixed, params["split"])
    draws = np.random.default_rng(args.validation_seed).uniform(size=len(train_all))
    in_validation = draws < args.validation_fraction
    train = train_all[~in_validation].reset_index(drop=True)
    validation = train_all[in_validation].reset_index(drop=True)
    users, movies = data_nodes.build_vocabularies(train, validation, params["vocabulary"])
    return {
        "provenance": provenance.get("description", provenance.get("source")),
        "parts": {"train": train, "validation": validation, "eval": evaluation},
        "users": users,
        "movies": movies,
    }


def run_side(data: dict[str, Any], params: dict[str, Any], args: argparse.Namespace) -> dict:
    """Eval RMSE per config and seed on one data set."""
    from memory_efficient_embeddings.modeling import nodes as modeling  # noqa: PLC0415
    from memory_efficient_embeddings.modeling.training import (  # noqa: PLC0415
        error_metrics,
        fit_rating_model,
        model_inputs,
        score,
    )

    split = split_data(data, params, args)
    arrays = {
        name: (
            model_inputs(part, split["users"], split["movies"]),
            part["rating"].to_numpy("float32"),
        )
        for name, part in split["parts"].items()
    }
    training = {**params["training"], "verbose": 0}
    results: dict[str, Any] = {"provenance": split["provenance"], "configs": {}}
    for name in args.configs:
        model = {**copy.deepcopy(params["baseline"]["model"]), **CONFIGS[name]}
        if name in args.l2:
            model["embedding_l2"] = args.l2[name]
        plan = modeling.assign_blocks(split["users"], split["movies"], model, params["evaluation"])
        runs = []
        for seed in args.seeds:
            started = time.perf_counter()
            rating_model = modeling.build_model(plan, {**model, "seed": seed})
            report = fit_rating_model(
                rating_model, arrays["train"], arrays["validation"], {**training, "seed": seed}
            )
            eval_inputs, eval_targets = arrays["eval"]
            predictions = score(rating_model, eval_inputs["user_id"], eval_inputs["movie_id"])
            rmse = error_metrics(predictions, eval_targets)["rmse"]
            runs.append({"seed": seed, "rmse": rmse, "best_epoch": report["best_epoch"]})
            print(
                f"  {name} seed {seed}: eval RMSE {rmse:.4f} (best epoch {report['best_epoch']}, "
                f"{time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        rmses = [r["rmse"] for r in runs]
        results["configs"][name] = {
            "runs": runs,
            "mean": statistics.mean(rmses),
            "std": statistics.stdev(rmses) if len(rmses) > 1 else 0.0,
        }
    return results


def render(sides: dict[str, dict[str, Any]]) -> str:
    """Markdown: per config, eval RMSE mean ± std and gap to dim64 for each side."""
    names = list(sides)
    header = "| config | " + " | ".join(f"{s} RMSE | {s} gap" for s in names) + " |"
    lines = [header, "|---|" + "---|---|" * len(names)]
    configs = dict.fromkeys(c for side in sides.values() for c in side["configs"])
    for config in configs:
        cells = []
        for side in sides.values():
            stats = side["configs"].get(config)
            if stats is None:
                cells += ["-", "-"]
                continue
            ref = side["configs"].get(REFERENCE)
            # Gap in % of the baseline's mean; the ± is the config's seed spread in the same %.
            gap = (
                f"{100 * (stats['mean'] / ref['mean'] - 1):+.2f}% ± {100 * stats['std'] / ref['mean']:.2f}"
                if ref
                else "-"
            )
            cells += [f"{stats['mean']:.4f} ± {stats['std']:.4f}", gap]
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archive", type=Path, help="real MovieLens zip, folder or ratings file")
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--no-verify-checksum", action="store_true")
    parser.add_argument("--sides", nargs="+", default=["real", "synthetic"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="data.synthetic overrides (YAML values)",
    )
    parser.add_argument(
        "--l2",
        nargs="*",
        default=[],
        metavar="CONFIG=L2",
        help="embedding_l2 per config instead of conf/base's",
    )
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--validation-seed", type=int, default=42)
    parser.add_argument("--real-json", type=Path, help="real side from an earlier --json-out")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    args.l2 = {k: float(v) for k, v in (item.split("=") for item in args.l2)}

    params = load_parameters("base")
    data = copy.deepcopy(params["data"])
    data["dataset"] = args.dataset
    synthetic = {**(data.get("synthetic") or {}), **parse_overrides(args.set)}
    side_data = {
        "real": {
            **data,
            "source": "movielens",
            "path": str(args.archive) if args.archive else None,
            "verify_checksum": not args.no_verify_checksum,
        },
        "synthetic": {**data, "source": "synthetic", "path": None, "synthetic": synthetic},
    }
    sides: dict[str, Any] = {}
    if args.real_json:
        sides["real"] = json.loads(args.real_json.read_text())["sides"]["real"]
    for side in args.sides:
        if side == "real" and args.real_json:
            continue
        print(f"{side}:", flush=True)
        sides[side] = run_side(side_data[side], params, args)
    sides = {s: sides[s] for s in ("real", "synthetic") if s in sides}
    for side, result in sides.items():
        print(f"{side}: {result['provenance']}")
    print(
        f"synthetic overrides: {args.set or 'none'}; seeds {args.seeds}; L2 {args.l2 or 'conf/base'}"
    )
    print(render(sides))
    result = {
        "args": vars(args)
        | {"archive": str(args.archive), "json_out": None, "real_json": str(args.real_json)},
        "sides": sides,
    }
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
