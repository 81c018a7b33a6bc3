"""`kedro run --pipelines=reporting`: compare the latest trained models."""

from kedro.pipeline import Pipeline, node

from memory_efficient_embeddings.pipelines.reporting.nodes import (
    compare_models,
    plot_accuracy_vs_parameters,
    plot_error_by_popularity,
    plot_loss_curves,
    render_comparison_table,
)

MODELS = ("baseline", "memory_efficient")


def create_pipeline(**kwargs) -> Pipeline:
    """Compare every model namespace in MODELS against the first."""
    return Pipeline(
        [
            node(
                compare_models,
                inputs={"reference": "params:reporting.reference"}
                | {name: f"{name}.metrics" for name in MODELS},
                outputs="comparison",
                name="compare_models",
            ),
            node(
                render_comparison_table,
                inputs="comparison",
                outputs="comparison_table",
                name="render_comparison_table",
            ),
            node(
                plot_accuracy_vs_parameters,
                inputs="comparison",
                outputs="accuracy_vs_parameters",
                name="plot_accuracy_vs_parameters",
            ),
            node(
                plot_error_by_popularity,
                inputs="comparison",
                outputs="error_by_popularity",
                name="plot_error_by_popularity",
            ),
            node(
                plot_loss_curves,
                inputs={name: f"{name}.training_history" for name in MODELS},
                outputs="loss_curves",
                name="plot_loss_curves",
            ),
        ]
    )
