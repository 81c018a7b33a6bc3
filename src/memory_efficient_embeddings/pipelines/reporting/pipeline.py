"""`kedro run --pipelines=reporting`: compare the latest trained models."""

import warnings

from kedro.pipeline import Node, Pipeline

from memory_efficient_embeddings.model_names import (
    MATCHED_MODEL,
    MODEL_NAMES,
    UNIFORM_AT_SAME_BYTES,
)
from memory_efficient_embeddings.pipelines.reporting.nodes import (
    compare_models,
    plot_accuracy_vs_parameters,
    plot_error_by_popularity,
    plot_loss_curves,
    render_comparison_table,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Compare every model namespace in MODEL_NAMES (and the uniform table at the memory_efficient
    model's bytes) against `reporting.reference`."""
    # The dotted inputs (`baseline.metrics`, ...) are the models' namespaces, the very use Kedro
    # reserves dots for; its warning about them is meant for hand-made dotted names.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"One or more dataset names contain '\.'")
        nodes = [
            Node(
                compare_models,
                inputs={
                    "reference": "params:reporting.reference",
                    # A plain table at the memory_efficient model's bytes: a row every run.
                    "uniform_at_same_bytes": f"{UNIFORM_AT_SAME_BYTES}.metrics",
                    # The candidate layouts of the matched model, chosen on validation.
                    "layout_selection": f"{MATCHED_MODEL}.layout_selection",
                }
                | {name: f"{name}.metrics" for name in MODEL_NAMES},
                outputs="comparison",
                name="compare_models",
            ),
            Node(
                render_comparison_table,
                inputs="comparison",
                outputs="comparison_table",
                name="render_comparison_table",
            ),
            Node(
                plot_accuracy_vs_parameters,
                inputs="comparison",
                outputs="accuracy_vs_parameters",
                name="plot_accuracy_vs_parameters",
            ),
            Node(
                plot_error_by_popularity,
                inputs="comparison",
                outputs="error_by_popularity",
                name="plot_error_by_popularity",
            ),
            Node(
                plot_loss_curves,
                inputs={"data_provenance": "data_provenance"}
                | {name: f"{name}.training_history" for name in MODEL_NAMES},
                outputs="loss_curves",
                name="plot_loss_curves",
            ),
        ]
    return Pipeline(nodes, tags="reporting")
