"""The modeling template: one definition, instantiated once per model under its own namespace."""

from kedro.pipeline import Pipeline, node

from memory_efficient_embeddings.modeling.nodes import (
    build_model,
    evaluate_model,
    plot_training_curves,
    train_model,
)

SHARED_INPUTS = {
    "train_ratings",
    "eval_ratings",
    "user_vocabulary",
    "movie_vocabulary",
    "data_provenance",
}


def create_modeling_pipeline(namespace: str) -> Pipeline:
    """Build, train, evaluate and plot one model under `namespace`."""
    model_nodes = [
        node(
            build_model,
            inputs=["user_vocabulary", "movie_vocabulary", "params:model"],
            outputs="untrained_model",
            name="build_model",
        ),
        node(
            train_model,
            inputs=[
                "untrained_model",
                "train_ratings",
                "eval_ratings",
                "user_vocabulary",
                "movie_vocabulary",
                "params:training",
            ],
            outputs=["model", "training_history"],
            name="train_model",
        ),
        node(
            evaluate_model,
            inputs=[
                "model",
                "eval_ratings",
                "train_ratings",
                "training_history",
                "data_provenance",
            ],
            outputs="metrics",
            name="evaluate_model",
        ),
        node(
            plot_training_curves,
            inputs="training_history",
            outputs="training_curves",
            name="plot_training_curves",
        ),
    ]
    return Pipeline(
        model_nodes,
        namespace=namespace,
        inputs=SHARED_INPUTS,
        # Both models train under the same regime, so the comparison is fair.
        parameters={"params:training"},
    )
