"""The modeling template: one definition, instantiated once per model under its own namespace."""

from kedro.pipeline import Pipeline, node

from memory_efficient_embeddings.modeling.nodes import (
    assign_blocks,
    build_model,
    evaluate_model,
    plot_popularity_blocks,
    plot_training_curves,
    train_model,
)

SHARED_INPUTS = {
    "train_ratings",
    "validation_ratings",
    "eval_ratings",
    "split_summary",
    "user_vocabulary",
    "movie_vocabulary",
    "data_provenance",
}


def create_modeling_pipeline(namespace: str) -> Pipeline:
    """Assign blocks, build, train, evaluate and plot one model under `namespace`."""
    model_nodes = [
        node(
            assign_blocks,
            inputs=["user_vocabulary", "movie_vocabulary", "params:model", "params:evaluation"],
            outputs="embedding_plan",
            name="assign_blocks",
            tags=["training"],
        ),
        node(
            plot_popularity_blocks,
            inputs=["user_vocabulary", "movie_vocabulary", "embedding_plan", "data_provenance"],
            outputs="popularity_blocks",
            name="plot_popularity_blocks",
            tags=["reporting"],
        ),
        node(
            build_model,
            inputs=["embedding_plan", "params:model"],
            outputs="untrained_model",
            name="build_model",
            tags=["training"],
        ),
        node(
            train_model,
            # No eval split here: selection reads the validation split only.
            inputs=[
                "untrained_model",
                "train_ratings",
                "validation_ratings",
                "user_vocabulary",
                "movie_vocabulary",
                "params:training",
            ],
            outputs=["model", "training_history"],
            name="train_model",
            tags=["training"],
        ),
        node(
            evaluate_model,
            inputs=[
                "model",
                "eval_ratings",
                "train_ratings",
                "training_history",
                "data_provenance",
                "split_summary",
                "embedding_plan",
                "user_vocabulary",
                "movie_vocabulary",
            ],
            outputs="metrics",
            name="evaluate_model",
            tags=["evaluation"],
        ),
        node(
            plot_training_curves,
            inputs=["training_history", "data_provenance"],
            outputs="training_curves",
            name="plot_training_curves",
            tags=["reporting"],
        ),
    ]
    return Pipeline(
        model_nodes,
        namespace=namespace,
        inputs=SHARED_INPUTS,
        # Both models train and are scored under the same regime, so the comparison is fair.
        parameters={"params:training", "params:evaluation"},
        tags=[namespace],  # select one model's nodes: `kedro run --tags=memory_efficient`
    )
