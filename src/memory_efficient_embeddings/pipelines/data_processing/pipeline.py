"""Wiring of the data_processing pipeline."""

from kedro.pipeline import Node, Pipeline

from memory_efficient_embeddings.model_names import MODEL_NAMES

from .nodes import (
    build_vocabularies,
    check_output_range,
    describe_splits,
    ingest_movies,
    ingest_ratings,
    prefix_ids,
    split_ratings,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Ingest ratings and titles, check the ratings against the models' output range, prefix ids,
    split train/validation/eval, build vocabularies."""
    return Pipeline(
        [
            Node(
                ingest_ratings,
                inputs="params:data",
                outputs=["ratings", "data_provenance"],
                name="ingest_ratings",
            ),
            # No output: it runs right after ingest (its only data input), long before training.
            Node(
                check_output_range,
                inputs={
                    "data_provenance": "data_provenance",
                    **{name: f"params:{name}.model.output" for name in MODEL_NAMES},
                },
                outputs=None,
                name="check_output_range",
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
                inputs=[
                    "train_ratings",
                    "validation_ratings",
                    "eval_ratings",
                    "params:split",
                    "params:vocabulary",
                ],
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
