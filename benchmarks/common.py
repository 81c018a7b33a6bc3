"""What every benchmark shares: the project's parameters, its data nodes and its splits.

Each benchmark loads parameters as ``kedro run --env=<env>`` sees them, prepares the data with the
data_processing pipeline's own nodes (ingest -> prefix -> train/validation/eval split ->
vocabularies) and fits through ``modeling.training.fit_and_score``: the same path as
``kedro run``, so a benchmark's figure is a figure of the project.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_parameters(env: str, conf_source: Path = REPO_ROOT / "conf") -> dict[str, Any]:
    """The project's parameters as ``kedro run --env=<env>`` sees them."""
    from kedro.config import OmegaConfigLoader  # noqa: PLC0415 - keep importers light

    from memory_efficient_embeddings.settings import CONFIG_LOADER_ARGS  # noqa: PLC0415

    loader = OmegaConfigLoader(str(conf_source), **{**CONFIG_LOADER_ARGS, "default_run_env": env})
    return copy.deepcopy(dict(loader["parameters"]))


def add_data_arguments(parser: argparse.ArgumentParser, dataset: str = "ml-100k") -> None:
    """The data options every benchmark takes: a real archive, or synthetic data shaped so."""
    parser.add_argument("--dataset", default=dataset, help="MovieLens release (shape)")
    parser.add_argument("--archive", type=Path, help="a real MovieLens zip; default synthetic")
    parser.add_argument(
        "--no-verify-checksum", action="store_true", help="accept an archive of another MD5"
    )
    parser.add_argument("--num-ratings", type=int, help="synthetic only: fewer ratings")
    parser.add_argument("--env", default="base", help="Kedro configuration environment")


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    """``--backend``: the Keras backend(s) the project's runs use, each run in a subprocess.

    Keras reads ``KERAS_BACKEND`` once, when it is imported, so a benchmark never switches
    backend in its own process: it starts each run with the backend set, interleaving backends.
    """
    parser.add_argument(
        "--backend",
        dest="backends",
        nargs="+",
        choices=("tensorflow", "jax"),
        default=["tensorflow"],
        help="Keras backend(s) of the project's runs, interleaved (default: tensorflow)",
    )


def check_backends(parser: argparse.ArgumentParser, backends: list[str]) -> None:
    """Refuse a backend named twice (its runs would be counted as one)."""
    if len(set(backends)) != len(backends):
        parser.error(f"--backend names a backend twice: {' '.join(backends)}")


def data_parameters(params: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The ``data`` parameters with the benchmark's source choice applied."""
    from memory_efficient_embeddings.ingest import get_release  # noqa: PLC0415

    data = copy.deepcopy(params["data"])
    data["dataset"] = args.dataset
    if args.archive:
        data["source"] = "movielens"
        data["path"] = str(args.archive)
        data["verify_checksum"] = not args.no_verify_checksum
    else:
        data["source"] = "synthetic"
        data["path"] = None
        if getattr(args, "num_ratings", None):
            release = get_release(args.dataset)
            synthetic = dict(data.get("synthetic") or {})
            per_user = synthetic.get("min_ratings_per_user") or 20
            synthetic["num_ratings"] = int(args.num_ratings)
            # Shrink users and movies with the ratings, leaving room above the per-user minimum
            # and few enough movies that the generator can give every movie a rating.
            users = int(args.num_ratings * 0.8) // per_user
            synthetic["num_users"] = max(1, min(release.num_users, users))
            synthetic["num_movies"] = max(1, min(release.num_movies, args.num_ratings // 20))
            data["synthetic"] = synthetic
    return data


def prepare_data(
    data: dict[str, Any], params: dict[str, Any], vocabulary_source: str | None = None
) -> dict[str, Any]:
    """Ingest -> prefix -> split -> vocabularies with the data_processing pipeline's own nodes.

    ``vocabulary_source`` overrides ``vocabulary.source`` (the speed benchmark uses the recipe's
    ``all`` on both of its paths).
    """
    from memory_efficient_embeddings.pipelines.data_processing import (  # noqa: PLC0415
        nodes as data_nodes,
    )

    ratings, provenance = data_nodes.ingest_ratings(data)
    return {"provenance": provenance} | prepare_ratings(ratings, params, vocabulary_source)


def prepare_ratings(
    ratings: Any, params: dict[str, Any], vocabulary_source: str | None = None
) -> dict[str, Any]:
    """Prefix -> split -> vocabularies of ratings already loaded (``prepare_data`` less ingest)."""
    from memory_efficient_embeddings.pipelines.data_processing import (  # noqa: PLC0415
        nodes as data_nodes,
    )

    prefixed = data_nodes.prefix_ids(ratings)
    train, validation, evaluation = data_nodes.split_ratings(prefixed, params["split"])
    vocabulary = dict(params["vocabulary"])
    if vocabulary_source is not None:
        vocabulary["source"] = vocabulary_source
    users, movies = data_nodes.build_vocabularies(train, validation, evaluation, vocabulary)
    return {
        "ratings": ratings,
        "train": train,
        "validation": validation,
        "eval": evaluation,
        "users": users,
        "movies": movies,
    }


def encoded_splits(data: dict[str, Any]) -> dict[str, Any]:
    """The train, validation and eval splits as integer model inputs (``training.Split``)."""
    from memory_efficient_embeddings.modeling.training import encode_split  # noqa: PLC0415

    return {
        name: encode_split(data[name], data["users"], data["movies"])
        for name in ("train", "validation", "eval")
    }


def fit_and_score_model(
    model_params: dict[str, Any],
    training: dict[str, Any],
    data: dict[str, Any],
    evaluation: dict[str, Any],
    seed: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Assign blocks, build and ``fit_and_score`` one model: the pipelines' path, in one call.

    ``seed`` (when given) seeds both the model's initialisation and training; ``options`` go to
    ``fit_and_score`` (``quantize``, ``callbacks``).
    """
    from memory_efficient_embeddings.modeling import nodes as modeling  # noqa: PLC0415
    from memory_efficient_embeddings.modeling.specs import SIDES  # noqa: PLC0415
    from memory_efficient_embeddings.modeling.training import fit_and_score  # noqa: PLC0415

    if seed is not None:
        model_params, training = {**model_params, "seed": seed}, {**training, "seed": seed}
    plan = modeling.assign_blocks(data["users"], data["movies"], model_params, evaluation)
    model = modeling.build_model(plan, model_params)
    splits = data.get("splits") or encoded_splits(data)
    blocks = {side: plan[side]["report_blocks"] for side in SIDES}
    return fit_and_score(model, splits, training, report_blocks=blocks, **options)
