"""Train one model variant over several seeds on the pipeline's split; print its eval RMSE.

The quickest way to try a regime or a layout without editing conf/: the data goes through the
data-processing nodes (ingest, prefix, seeded split, vocabularies), the model through
``assign_blocks`` -> ``build_model`` -> ``fit_rating_model``, exactly as in ``kedro run``. Dotted
``--set`` overrides apply to conf/base's parameters (YAML values), e.g.::

    PYTHONPATH=src python benchmarks/train_variant.py --archive data/01_raw/ml-100k.zip \\
        --dataset ml-100k --model memory_efficient --seeds 1 2 3 \\
        --set model.embedding_l2=0.02 training.batch_size=4096 training.learning_rate=0.002

    # mixed dimensions at the budget of a dim-4 table, alpha 0.2, on the synthetic ml-1m default
    PYTHONPATH=src python benchmarks/train_variant.py --set 'model.embedding_dim=null' \\
        'model.user_embedding={type: mixed_dimension, projection: pad, blocks: {num_blocks: 3,
        alpha: 0.2, mean_dim: 4}}' 'model.movie_embedding={...the same...}'

``model.*`` keys address the chosen model's parameters (``<model>.model``), ``training.*`` the
shared training regime. Each seed sets the model's and the training seed. Figures printed per
seed: eval RMSE of the restored best epoch, epochs run, best epoch, training seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from time_to_accuracy import prepare_data  # noqa: E402
from training_speed import data_parameters, load_parameters  # noqa: E402


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archive", type=Path, help="MovieLens zip, folder or ratings file")
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--no-verify-checksum", action="store_true")
    parser.add_argument("--num-ratings", type=int, default=None, help="shrink synthetic data")
    parser.add_argument("--env", default="base")
    parser.add_argument("--model", default="memory_efficient", help="baseline | memory_efficient")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)

    from memory_efficient_embeddings.embeddings import (  # noqa: PLC0415
        embedding_parameter_count,
    )
    from memory_efficient_embeddings.modeling import nodes as modeling  # noqa: PLC0415
    from memory_efficient_embeddings.modeling.training import (  # noqa: PLC0415
        error_metrics,
        fit_rating_model,
        model_inputs,
        score,
    )

    params = load_parameters(args.env)
    model, training = params[args.model]["model"], params["training"]
    apply_overrides(model, training, args.set)
    training["verbose"] = 0
    data = prepare_data(data_parameters(params, args), params)
    train = (
        model_inputs(data["train"], data["users"], data["movies"]),
        data["train"]["rating"].to_numpy("float32"),
    )
    evaluation = (
        model_inputs(data["eval"], data["users"], data["movies"]),
        data["eval"]["rating"].to_numpy("float32"),
    )
    plan = modeling.assign_blocks(data["users"], data["movies"], model, params["evaluation"])
    rmses = []
    for seed in args.seeds:
        rating_model = modeling.build_model(plan, {**model, "seed": seed})
        report = fit_rating_model(rating_model, train, evaluation, {**training, "seed": seed})
        predictions = score(rating_model, evaluation[0]["user_id"], evaluation[0]["movie_id"])
        rmse = error_metrics(predictions, evaluation[1])["rmse"]
        rmses.append(rmse)
        print(
            f"seed {seed}: eval RMSE {rmse:.4f}, {report['epochs_run']} epochs (best "
            f"{report['best_epoch']}), {report['train_seconds']:.1f} s",
            flush=True,
        )
    spread = statistics.stdev(rmses) if len(rmses) > 1 else 0.0
    print(
        f"{args.model} {args.set}: {embedding_parameter_count(rating_model):,} embedding "
        f"parameters, eval RMSE {statistics.mean(rmses):.4f} ± {spread:.4f} (seeds {args.seeds})"
    )


if __name__ == "__main__":
    main()
