"""Wiring of the data_processing pipeline."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    build_vocabularies,
    describe_splits,
    ingest_movies,
    ingest_ratings,
    prefix_ids,
    split_ratings,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Ingest ratings and titles, prefix ids, split train/validation/eval, build vocabularies."""
    return Pipeline(
        [
            Node(
                ingest_ratings,
                inputs="params:data",
                outputs=["ratings", "data_provenance"],
                name="ingest_ratings",
            ),
            Node(
                ingest_movies,
                inputs=["params:data", "data_provenance", "ratings"],
                outputs="movies",
                name="ingest_movies",
            ),
            Node(prefix_ids, inputs="ratings", outputs="prefixed_ratings", name="prefix_ids"),
            Node(
                split_ratings,
                inputs=["prefixed_ratings", "params:split"],
                outputs=["train_ratings", "validation_ratings", "eval_ratings"],
                name="split_ratings",
            ),
            Node(
                describe_splits,
                inputs=["train_ratings", "validation_ratings", "eval_ratings", "params:split"],
                outputs="split_summary",
                name="describe_splits",
            ),
            Node(
                build_vocabularies,
                inputs=["train_ratings", "validation_ratings", "eval_ratings", "params:vocabulary"],
                outputs=["user_vocabulary", "movie_vocabulary"],
                name="build_vocabularies",
            ),
        ],
        tags="data",
    )
