"""Do compact tables lose as much on synthetic data as on real MovieLens? Gaps side by side.

For each side (real: ``--archive``; synthetic: ``data.source=synthetic`` shaped like
``--dataset``, ``data.synthetic`` from conf/base plus ``--set`` overrides) the data goes through
the project's data nodes (ingest -> prefix -> train/validation/eval split -> vocabularies), and
each config is fitted per seed (model and training seed) through the project's fit-and-score
path under conf/base's ``training`` and ``baseline.model``: early stopping reads the validation
split, the eval split is scored once. Printed per config and side: eval RMSE mean ± sample std
over seeds and the gap in % to the dim-64 baseline.

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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibrate_synthetic import parse_overrides  # noqa: E402
from common import encoded_splits, fit_and_score_model, load_parameters, prepare_data  # noqa: E402

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


def run_side(data: dict[str, Any], params: dict[str, Any], args: argparse.Namespace) -> dict:
    """Eval RMSE (validation RMSE beside it) per config and seed on one data set."""
    prepared = prepare_data(data, params)
    prepared["splits"] = encoded_splits(prepared)
    training = {**params["training"], "verbose": 0}
    description = prepared["provenance"]
    results: dict[str, Any] = {
        "provenance": description.get("description", description.get("source")),
        "configs": {},
    }
    for name in args.configs:
        model = {**copy.deepcopy(params["baseline"]["model"]), **CONFIGS[name]}
        if name in args.l2:
            model["embedding_l2"] = args.l2[name]
        runs = []
        for seed in args.seeds:
            started = time.perf_counter()
            record = fit_and_score_model(model, training, prepared, params["evaluation"], seed=seed)
            runs.append(
                {
                    "seed": seed,
                    "rmse": record["eval_rmse"],
                    "val_rmse": record["val_rmse"],
                    "best_epoch": record["best_epoch"],
                }
            )
            print(
                f"  {name} seed {seed}: eval RMSE {record['eval_rmse']:.4f} (validation "
                f"{record['val_rmse']:.4f}, best epoch {record['best_epoch']}, "
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
