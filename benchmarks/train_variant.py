"""Train one model variant over several seeds on the pipeline's split; print its RMSEs.

The quickest way to try a regime or a layout without editing conf/: the data goes through the
data-processing nodes (ingest, prefix, seeded train/validation/eval split, vocabularies), the
model through ``assign_blocks`` -> ``build_model`` -> ``fit_and_score`` (one call of
``common.fit_and_score_model``), the path of ``kedro run``: early stopping and the restored epoch
read the validation split, the eval split is scored once after training. Dotted ``--set``
overrides apply to conf/base's parameters (YAML values), e.g.::

    PYTHONPATH=src python benchmarks/train_variant.py --archive data/01_raw/ml-100k.zip \\
        --dataset ml-100k --model memory_efficient --seeds 1 2 3 \\
        --set model.embedding_l2=0.02 training.batch_size=4096 training.learning_rate=0.002

    # mixed dimensions at the budget of a dim-4 table, alpha 0.2, on the synthetic ml-1m default
    PYTHONPATH=src python benchmarks/train_variant.py --set 'model.embedding_dim=null' \\
        'model.user_embedding={type: mixed_dimension, projection: pad, blocks: {num_blocks: 3,
        alpha: 0.2, mean_dim: 4}}' 'model.movie_embedding={...the same...}'

``model.*`` keys address the chosen model's parameters (``<model>.model``), ``training.*`` the
shared training regime. Each seed sets the model's and the training seed. Figures printed per
seed: validation RMSE of the restored best epoch (what selection read; compare variants on it),
eval RMSE scored once after training (what the project reports), epochs run, best epoch,
training seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    add_data_arguments,
    data_parameters,
    encoded_splits,
    fit_and_score_model,
    load_parameters,
    prepare_data,
)


def apply_overrides(model: dict[str, Any], training: dict[str, Any], overrides: list[str]) -> None:
    """Set ``model.a.b=value`` / ``training.a=value`` (values parsed as YAML) in place."""
    roots = {"model": model, "training": training}
    for item in overrides:
        key, separator, text = item.partition("=")
        root, _, path = key.partition(".")
        if not separator or root not in roots or not path:
            raise SystemExit(f"--set {item!r}: expected model.<key>=<value> or training.<key>=...")
        target = roots[root]
        *parents, leaf = path.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = yaml.safe_load(text)


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_arguments(parser, dataset="ml-1m")
    parser.add_argument("--model", default="memory_efficient", help="baseline | memory_efficient")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)

    params = load_parameters(args.env)
    model, training = params[args.model]["model"], params["training"]
    apply_overrides(model, training, args.set)
    training["verbose"] = 0
    data = prepare_data(data_parameters(params, args), params)
    data["splits"] = encoded_splits(data)  # encoded once for every seed
    val_rmses, eval_rmses = [], []
    for seed in args.seeds:
        record = fit_and_score_model(model, training, data, params["evaluation"], seed=seed)
        val_rmses.append(record["val_rmse"])
        eval_rmses.append(record["eval_rmse"])
        print(
            f"seed {seed}: validation RMSE {record['val_rmse']:.4f} (selection), eval RMSE "
            f"{record['eval_rmse']:.4f} (reported), {record['epochs_run']} epochs (best "
            f"{record['best_epoch']}), {record['train_seconds']:.1f} s",
            flush=True,
        )
    print(
        f"{args.model} {args.set}: {record['embedding_parameters']:,} embedding parameters, "
        f"validation RMSE {_mean_std(val_rmses)} (selection), eval RMSE "
        f"{_mean_std(eval_rmses)} (reported) (seeds {args.seeds})"
    )


if __name__ == "__main__":
    main()
