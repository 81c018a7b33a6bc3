"""The modeling template: one definition, instantiated once per model under its own namespace (a
model with candidate layouts fits them and keeps the one validation prefers); and the uniform
table at the same bytes as the model it is matched to."""

from kedro.pipeline import Node, Pipeline, node

from memory_efficient_embeddings.model_names import MATCHED_MODEL, UNIFORM_AT_SAME_BYTES
from memory_efficient_embeddings.modeling.nodes import (
    assign_blocks,
    assign_uniform_at_same_bytes,
    build_model,
    evaluate_model,
    fit_uniform_at_same_bytes,
    plot_popularity_blocks,
    plot_training_curves,
    select_layout,
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


def _select_layout_node() -> Node:
    """Fit every candidate of `params:layouts` over `params:model`; the winner comes out trained."""
    return node(
        select_layout,
        # No eval split here: the layout, like the epoch, is chosen on the validation split.
        inputs=[
            "train_ratings",
            "validation_ratings",
            "user_vocabulary",
            "movie_vocabulary",
            "params:model",
            "params:layouts",
            "params:training",
            "params:evaluation",
        ],
        outputs=[
            "chosen_model_parameters",
            "layout_selection",
            "embedding_plan",
            "model",
            "training_history",
        ],
        name="select_layout",
        tags=["training"],
    )


def _train_nodes() -> list[Node]:
    """Assign blocks, build and train the one model `params:model` describes."""
    return [
        node(
            assign_blocks,
            inputs=["user_vocabulary", "movie_vocabulary", "params:model", "params:evaluation"],
            outputs="embedding_plan",
            name="assign_blocks",
            tags=["training"],
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
    ]


def create_modeling_pipeline(namespace: str, select_layouts: bool = False) -> Pipeline:
    """Train (or, with `select_layouts`, choose on validation among `params:layouts`), evaluate
    and plot one model under `namespace`."""
    model_nodes = [
        *([_select_layout_node()] if select_layouts else _train_nodes()),
        node(
            plot_popularity_blocks,
            inputs=["user_vocabulary", "movie_vocabulary", "embedding_plan", "data_provenance"],
            outputs="popularity_blocks",
            name="plot_popularity_blocks",
            tags=["reporting"],
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


def create_uniform_at_same_bytes_pipeline(matched: str = MATCHED_MODEL) -> Pipeline:
    """Size a plain full table at `matched`'s serving bytes (its chosen layout's), then fit and
    score it the same way."""
    nodes = [
        node(
            assign_uniform_at_same_bytes,
            inputs=[
                f"{matched}.metrics",
                "user_vocabulary",
                "movie_vocabulary",
                # The chosen layout's parameters (seed, L2, biases), sized at its serving bytes.
                f"{matched}.chosen_model_parameters",
                "params:evaluation",
            ],
            # Sized from a reported figure, so it is a report too (kedro-viz: reporting layer).
            outputs="matched_plan",
            name="size_uniform_table",
            tags=["training"],
        ),
        node(
            fit_uniform_at_same_bytes,
            # fit_and_score: early stopping on validation; eval scored once, after fit returns.
            inputs=[
                "matched_plan",
                "train_ratings",
                "validation_ratings",
                "eval_ratings",
                "user_vocabulary",
                "movie_vocabulary",
                "params:training",
                "data_provenance",
                "split_summary",
            ],
            outputs="metrics",
            name="fit_and_score",
            tags=["training", "evaluation"],
        ),
    ]
    return Pipeline(
        nodes,
        namespace=UNIFORM_AT_SAME_BYTES,
        inputs=SHARED_INPUTS | {f"{matched}.metrics", f"{matched}.chosen_model_parameters"},
        # The matched model's seed, L2 and output, and the shared regime: a fair comparison.
        parameters={"params:training", "params:evaluation"},
        tags=[UNIFORM_AT_SAME_BYTES],
    )
